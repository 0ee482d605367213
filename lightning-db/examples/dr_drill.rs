//! The application side of the disaster-recovery drill (`scripts/dr-drill.sh`).
//!
//! ```text
//! dr_drill workload DB BACKUPS ARCHIVE COMMITS LEDGER   # commits, backups, a ledger of it all
//! dr_drill check RESTORED LEDGER LSN [TIME_US]          # the restored state against the ledger
//! ```
//!
//! `workload` opens DB with WAL archiving into ARCHIVE, commits COMMITS `Immediate`
//! transactions (puts and some deletes of `order:<n>` keys), takes a full backup a quarter of
//! the way and incremental backups at the half and three quarters, and writes every
//! acknowledged commit to LEDGER: `lsn before_us after_us key value|-` (times taken before
//! the commit began and after it returned). It prints the time at the middle of the run for
//! the drill's point-in-time target. `check` compares every key of the restored database with
//! the ledger replayed through LSN, and with `TIME_US` checks that LSN is where a recovery to
//! that time must stop: every commit that returned by then is in, none that began after it.
#![expect(
    clippy::print_stdout,
    reason = "a command-line example reports on stdout"
)]

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use lightning_db::{Database, Durability, Options};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

fn workload(
    db_dir: &Path,
    backups: &Path,
    archive: &Path,
    commits: u64,
    ledger: &Path,
) -> Result<()> {
    let opts = Options {
        wal_archive_dir: Some(archive.to_path_buf()),
        wal_segment_bytes: 1 << 20,
        checkpoint_wal_bytes: 4 << 20,
        durability: Durability::Immediate,
        ..Options::default()
    };
    let db = Database::open(db_dir, opts)?;
    let ks = db.keyspace("orders")?;
    let mut out = std::io::BufWriter::new(std::fs::File::create(ledger)?);
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut middle = 0;
    for i in 0..commits {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let key = format!("order:{:06}", state % (commits / 2).max(1));
        let delete = state.is_multiple_of(10);
        let value = format!("v{i}-{:x}", state >> 20);
        let before = now_us();
        let mut tx = db.begin_write()?;
        if delete {
            tx.delete(&ks, key.as_bytes())?;
        } else {
            tx.put(&ks, key.as_bytes(), value.as_bytes())?;
        }
        let info = tx.commit()?;
        let after = now_us();
        let lsn = info.lsn.map_or(0, lightning_db::Lsn::get);
        writeln!(
            out,
            "{lsn} {before} {after} {key} {}",
            if delete { "-" } else { &value }
        )?;
        if i == commits / 2 {
            middle = after;
        }
        if i == commits / 4 {
            db.backup(backups, false)?;
        } else if i == commits / 2 || i == commits * 3 / 4 {
            db.backup(backups, true)?;
        }
    }
    out.flush()?;
    // Drop without a close: the drill destroys the database next, as a disaster would.
    drop(db);
    println!("{middle}");
    Ok(())
}

struct Entry {
    lsn: u64,
    before: u64,
    after: u64,
    key: String,
    value: Option<String>,
}

fn read_ledger(path: &Path) -> Result<Vec<Entry>> {
    let mut out = Vec::new();
    for line in std::fs::read_to_string(path)?.lines() {
        let f: Vec<&str> = line.split(' ').collect();
        let [lsn, before, after, key, value] = f.as_slice() else {
            return Err(format!("bad ledger line {line:?}").into());
        };
        out.push(Entry {
            lsn: lsn.parse()?,
            before: before.parse()?,
            after: after.parse()?,
            key: (*key).to_string(),
            value: (*value != "-").then(|| (*value).to_string()),
        });
    }
    Ok(out)
}

fn check(restored: &Path, ledger: &Path, lsn: u64, time: Option<u64>) -> Result<()> {
    let entries = read_ledger(ledger)?;
    let mut want = BTreeMap::new();
    for e in entries.iter().filter(|e| e.lsn <= lsn) {
        match &e.value {
            Some(v) => want.insert(e.key.clone(), v.clone()),
            None => want.remove(&e.key),
        };
    }
    if let Some(t) = time {
        if let Some(e) = entries.iter().find(|e| e.after <= t && e.lsn > lsn) {
            return Err(format!(
                "commit at LSN {} returned before the target time but is not restored",
                e.lsn
            )
            .into());
        }
        if let Some(e) = entries.iter().find(|e| e.before > t && e.lsn <= lsn) {
            return Err(format!(
                "commit at LSN {} began after the target time but is restored",
                e.lsn
            )
            .into());
        }
    }
    let db = Database::open(
        restored,
        Options {
            create_if_missing: false,
            ..Options::default()
        },
    )?;
    let ks = db.open_keyspace("orders")?;
    let snap = db.begin_read()?;
    let got: BTreeMap<String, String> = snap
        .range::<&[u8]>(&ks, ..)?
        .map(|r| {
            r.map(|(k, v)| {
                (
                    String::from_utf8_lossy(&k).into_owned(),
                    String::from_utf8_lossy(&v).into_owned(),
                )
            })
        })
        .collect::<std::result::Result<_, _>>()?;
    drop(snap);
    if got != want {
        let diff = want.iter().filter(|(k, v)| got.get(*k) != Some(v)).count()
            + got.keys().filter(|k| !want.contains_key(*k)).count();
        return Err(format!(
            "the restored database differs from the ledger at LSN {lsn} in {diff} keys"
        )
        .into());
    }
    let lost = entries.iter().filter(|e| e.lsn > lsn).count();
    db.close()?;
    println!(
        "ok: {} keys equal to the ledger through LSN {lsn}; {lost} acknowledged commits after it",
        got.len()
    );
    Ok(())
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let p = |i: usize| -> Result<&Path> { Ok(Path::new(args.get(i).ok_or("missing argument")?)) };
    match args.first().map(String::as_str) {
        Some("workload") => workload(p(1)?, p(2)?, p(3)?, args.get(4).ok_or("COMMITS")?.parse()?, p(5)?),
        Some("check") => check(p(1)?, p(2)?, args.get(3).ok_or("LSN")?.parse()?, args.get(4).map(|t| t.parse()).transpose()?),
        _ => Err("usage: dr_drill workload DB BACKUPS ARCHIVE COMMITS LEDGER | check RESTORED LEDGER LSN [TIME_US]".into()),
    }
}
