//! A real process killed with SIGKILL: a child commits in a loop and prints each commit once
//! it returned (durable); the parent kills it at random moments, reopens the database and
//! checks that every acknowledged commit is there and every transaction whole. 20 rounds
//! (`LIGHTNING_TEST_SCALE=N` for N times as many) on one database, each round's child
//! carrying on from where the last one died.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use lightning_db::{Database, Options};
use lightning_testkit::{Rng, scaled};

const CHILD_DIR: &str = "LIGHTNING_KILL_CHILD_DIR";

fn options() -> Options {
    Options {
        cache_bytes: 8 << 20,
        wal_segment_bytes: 256 << 10,
        // Background checkpoints every few milliseconds: kills land inside them too.
        checkpoint_interval_ms: 5,
        checkpoint_wal_bytes: 1 << 20,
        ..Options::default()
    }
}

fn part(n: u64, p: &str) -> Vec<u8> {
    format!("txn-{n:08}-{p}").into_bytes()
}

/// The child: commits transactions 0, 1, 2, ... (continuing after the last one the
/// database holds), each writing three keys over two keyspaces, and prints `acked N`
/// once commit N returned. Runs until killed. Only runs as the parent's child.
#[test]
#[ignore = "the SIGKILL test's child process; run by kill::a_killed_process_loses_nothing_acknowledged"]
fn kill_child() {
    let Ok(dir) = std::env::var(CHILD_DIR) else {
        return;
    };
    let db = Database::open(&dir, options()).unwrap();
    let a = db.keyspace("a").unwrap();
    let b = db.keyspace("b").unwrap();
    let mut n = db
        .get(&a, b"next")
        .unwrap()
        .map_or(0, |v| u64::from_le_bytes(v.try_into().unwrap()));
    loop {
        let mut tx = db.begin_write().unwrap();
        tx.put(&a, &part(n, "x"), &[1; 64]).unwrap();
        tx.put(&b, &part(n, "y"), &[2; 200]).unwrap();
        tx.put(&b, &part(n, "z"), &[3; 10]).unwrap();
        tx.put(&a, b"next", &(n + 1).to_le_bytes()).unwrap();
        tx.commit().unwrap();
        println!("acked {n}");
        n += 1;
    }
}

#[test]
fn a_killed_process_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut rng = Rng::new(42);
    let rounds = scaled(20);
    let mut acked_total = 0;
    let mut max_acked: Option<u64> = None;
    for round in 0..rounds {
        let mut child = Command::new(&exe)
            .args(["--ignored", "--exact", "kill::kill_child", "--nocapture"])
            .env(CHILD_DIR, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if let Some(n) = line.strip_prefix("acked ")
                    && tx.send(n.parse::<u64>().unwrap()).is_err()
                {
                    break;
                }
            }
        });
        // Kill it some time after its first acknowledged commit (or if it never gets
        // there: then the round checks the database it left).
        let first = rx.recv_timeout(Duration::from_secs(30));
        std::thread::sleep(Duration::from_millis(rng.below(150)));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        reader.join().unwrap();
        let mut acked: Vec<u64> = first.into_iter().collect();
        acked.extend(rx.try_iter());
        acked_total += acked.len();
        if let Some(m) = acked.iter().max() {
            max_acked = Some(max_acked.map_or(*m, |x: u64| x.max(*m)));
        }
        let db = Database::open(dir.path(), options()).unwrap();
        let a = db.open_keyspace("a").unwrap();
        let b = db.open_keyspace("b").unwrap();
        let next = db
            .get(&a, b"next")
            .unwrap()
            .map_or(0, |v| u64::from_le_bytes(v.try_into().unwrap()));
        if let Some(m) = max_acked {
            assert!(
                next > m,
                "round {round}: commit {m} was acknowledged, the database holds up to {next}"
            );
        }
        // Every transaction below `next` whole, none above it.
        let snap = db.begin_read().unwrap();
        for n in 0..next + 2 {
            let parts = [
                snap.get(&a, &part(n, "x")).unwrap().is_some(),
                snap.get(&b, &part(n, "y")).unwrap().is_some(),
                snap.get(&b, &part(n, "z")).unwrap().is_some(),
            ];
            let want = n < next;
            assert_eq!(
                parts, [want; 3],
                "round {round}: transaction {n} (next {next})"
            );
        }
        drop(snap);
        assert!(
            db.check().unwrap().is_empty(),
            "round {round}: {:?}",
            db.check()
        );
        drop(db);
    }
    println!("{rounds} kills, {acked_total} acknowledged commits checked");
    assert!(
        acked_total as u64 > rounds,
        "the children must commit before the kills"
    );
}
