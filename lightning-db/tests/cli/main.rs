//! The `lightning` tool as a person runs it: every subcommand as a real process on a real
//! temporary database, asserting exit codes, with snapshots of the human output (figures
//! that change from run to run masked) and of the JSON's structure; `check` against a
//! flipped bit in a page, in the catalog and in a WAL record; bad input of every kind.
//! One binary (`cli`) for nextest to select; needs the `cli` feature.

#![cfg(test)] // test-only code throughout: clippy treats helpers like test functions

use std::path::Path;
use std::process::{Command, Output};

use lightning_db::{Database, Options};
use serde_json::Value;

/// Runs `lightning ARGS`; standard output is not a terminal, so no progress bar.
fn lightning<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lightning"))
        .args(args)
        .env_remove("RUST_BACKTRACE")
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

/// Asserts the exit code and that nothing panicked.
#[track_caller]
fn expect_code(o: &Output, code: i32) {
    let (out, err) = (stdout(o), stderr(o));
    assert_eq!(
        o.status.code(),
        Some(code),
        "stdout:\n{out}\nstderr:\n{err}"
    );
    assert!(
        !err.contains("panicked") && !err.contains("RUST_BACKTRACE"),
        "a panic: {err}"
    );
}

/// `text` with `dir` replaced by `[DIR]`, every figure by `#` (runs of digits with their
/// separators), sizes' units by `<size>` and runs of spaces by one (their widths follow
/// the figures'), so that snapshots hold what a run must say, not what it measured.
fn masked(text: &str, dir: &Path) -> String {
    let text = text.replace(&dir.display().to_string(), "[DIR]");
    let mut out = String::with_capacity(text.len());
    let mut in_figure = false;
    for c in text.chars() {
        let part = c.is_ascii_digit() || (in_figure && (c == ',' || c == '.'));
        if part {
            if !in_figure {
                out.push('#');
            }
        } else if !(c == ' ' && out.ends_with(' ')) {
            out.push(c);
        }
        in_figure = part;
    }
    // A size's unit follows its figure (512 B, 3.0 KiB, 1.2 MiB).
    for unit in ["KiB", "MiB", "GiB", "TiB"] {
        out = out.replace(&format!("# {unit}"), "# <size>");
    }
    for end in [',', ')', ' ', '\n'] {
        out = out.replace(&format!("# B{end}"), &format!("# <size>{end}"));
    }
    out
}

/// The structure of a JSON document: every value replaced by its type.
fn shape(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(m.iter().map(|(k, v)| (k.clone(), shape(v))).collect()),
        Value::Array(a) => Value::Array(a.first().map(shape).into_iter().collect()),
        Value::String(_) => "string".into(),
        Value::Number(_) => "number".into(),
        Value::Bool(_) => "bool".into(),
        Value::Null => "null".into(),
    }
}

/// A database with keyspace `users` holding 1,000 keys written in one transaction (so each
/// leaf exists once in the file), closed.
fn sample_db(dir: &Path) {
    let db = Database::open(dir, Options::default()).unwrap();
    let ks = db.keyspace("users").unwrap();
    db.keyspace("needle-keyspace").unwrap();
    db.update(|tx| {
        for i in 0..1000u32 {
            tx.put(
                &ks,
                format!("user:{i:04}").as_bytes(),
                format!("needle-value-{i:04}").as_bytes(),
            )?;
        }
        Ok(())
    })
    .unwrap();
    db.close().unwrap();
}

/// Flips one bit of the first occurrence of `needle` in `file`; panics if there is none.
fn flip_in(file: &Path, needle: &[u8]) -> usize {
    let mut bytes = std::fs::read(file).unwrap();
    let at = bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .unwrap_or_else(|| panic!("{needle:?} not in {}", file.display()));
    bytes[at + 2] ^= 0x10;
    std::fs::write(file, bytes).unwrap();
    at
}

#[test]
fn help_names_every_subcommand_and_each_has_an_example() {
    let o = lightning(&["--help"]);
    expect_code(&o, 0);
    let text = stdout(&o);
    assert!(
        text.lines().all(|l| l.chars().count() <= 80),
        "80 columns:\n{text}"
    );
    insta::assert_snapshot!("help", text);
    for sub in [
        "demo",
        "stats",
        "check",
        "dump",
        "keyspaces",
        "compact",
        "get",
        "put",
        "delete",
        "bench",
        "backup",
        "verify",
        "restore",
        "backups",
        "prune",
    ] {
        let o = lightning(&[sub, "--help"]);
        expect_code(&o, 0);
        assert!(
            stdout(&o).contains("Example"),
            "{sub} --help has an example"
        );
    }
}

#[test]
fn the_demo_runs_reopens_and_verifies_and_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("demo-db");
    let o = lightning(&[
        "demo".as_ref(),
        dir.as_os_str(),
        "--seconds".as_ref(),
        "1".as_ref(),
    ]);
    expect_code(&o, 0);
    let text = stdout(&o);
    assert!(text.contains("verified after reopen"), "{text}");
    // 80 columns, but for the path of the database, which is as long as the system makes it.
    assert!(
        text.lines()
            .filter(|l| !l.starts_with("database "))
            .all(|l| l.chars().count() <= 80),
        "80 columns:\n{text}"
    );
    insta::assert_snapshot!("demo_text", masked(&text, &dir));
    // Kept: a database the other commands can open.
    let o = lightning(&["check".as_ref(), dir.as_os_str()]);
    expect_code(&o, 0);
    let o = lightning(&["keyspaces".as_ref(), dir.as_os_str()]);
    expect_code(&o, 0);
    assert_eq!(stdout(&o), "accounts\nevents\nusers\n");
    // A second demo into the same directory is refused: it only creates.
    let o = lightning(&[
        "demo".as_ref(),
        dir.as_os_str(),
        "--seconds".as_ref(),
        "1".as_ref(),
    ]);
    expect_code(&o, 1);
    assert!(stderr(&o).contains("exists already"), "{}", stderr(&o));
}

#[test]
fn the_demo_in_json_reports_every_figure() {
    let o = lightning(&["demo", "--seconds", "1", "--format", "json"]);
    expect_code(&o, 0);
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["verified"]["ok"], Value::Bool(true), "{v}");
    assert_eq!(v["kept"], Value::Bool(false));
    assert_eq!(v["operations"].as_array().unwrap().len(), 6);
    for op in v["operations"].as_array().unwrap() {
        assert!(op["ops"].as_u64().unwrap() > 0, "every kind ran: {op}");
    }
    // The temporary database is gone.
    assert!(!Path::new(v["dir"].as_str().unwrap()).exists());
    insta::assert_snapshot!(
        "demo_json_shape",
        serde_json::to_string_pretty(&shape(&v)).unwrap()
    );
}

#[test]
fn an_operator_puts_gets_dumps_deletes_and_compacts() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    sample_db(dir);
    let d = dir.as_os_str();
    let run = |args: &[&str]| {
        let mut all: Vec<&std::ffi::OsStr> = vec![args[0].as_ref(), d];
        all.extend(args[1..].iter().map(|a| std::ffi::OsStr::new(*a)));
        lightning(&all)
    };
    let o = run(&["get", "users", "user:0007"]);
    expect_code(&o, 0);
    assert_eq!(stdout(&o), "needle-value-0007\n");
    let o = run(&["put", "users", "user:0007", "new\nvalue"]);
    expect_code(&o, 0);
    insta::assert_snapshot!("put", stdout(&o));
    let o = run(&["get", "users", "user:0007"]);
    assert_eq!(stdout(&o), "new\\nvalue\n", "escaped for the terminal");
    let o = run(&["get", "users", "757365723a30303037", "--hex"]);
    assert_eq!(stdout(&o), "6e65770a76616c7565\n");
    let o = run(&["delete", "users", "user:0007"]);
    expect_code(&o, 0);
    let o = run(&["get", "users", "user:0007"]);
    expect_code(&o, 1);
    assert!(stderr(&o).contains("not found"), "{}", stderr(&o));
    let o = run(&["dump", "users", "--prefix", "user:000", "--limit", "3"]);
    expect_code(&o, 0);
    insta::assert_snapshot!("dump_prefix", stdout(&o));
    let o = run(&[
        "dump",
        "users",
        "--range",
        "user:0998..",
        "--format",
        "json",
    ]);
    expect_code(&o, 0);
    let rows: Value = serde_json::from_str(&stdout(&o)).unwrap();
    insta::assert_snapshot!(
        "dump_range_json",
        serde_json::to_string_pretty(&rows).unwrap()
    );
    let o = run(&["keyspaces", "--format", "json"]);
    assert_eq!(
        stdout(&o).split_whitespace().collect::<String>(),
        r#"["needle-keyspace","users"]"#
    );
    let o = run(&["stats"]);
    expect_code(&o, 0);
    insta::assert_snapshot!("stats", masked(&stdout(&o), dir));
    let o = run(&["stats", "--format", "json"]);
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    insta::assert_snapshot!(
        "stats_json_shape",
        serde_json::to_string_pretty(&shape(&v)).unwrap()
    );
    let o = run(&["stats", "--prometheus"]);
    expect_code(&o, 0);
    assert!(stdout(&o).contains("# TYPE"), "{}", stdout(&o));
    let o = run(&["compact"]);
    expect_code(&o, 0);
    assert!(stdout(&o).starts_with("compacted"), "{}", stdout(&o));
    let o = run(&["check"]);
    expect_code(&o, 0);
    insta::assert_snapshot!("check_clean", masked(&stdout(&o), dir));
    let o = run(&["check", "--format", "json"]);
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["clean"], Value::Bool(true));
}

#[test]
fn check_finds_a_flipped_bit_in_a_page_and_names_it() {
    let tmp = tempfile::tempdir().unwrap();
    sample_db(tmp.path());
    let data = tmp.path().join("data.ldb");
    let at = flip_in(&data, b"needle-value-0500");
    let o = lightning(&["check".as_ref(), tmp.path().as_os_str()]);
    expect_code(&o, 1);
    let page = at / 8192;
    let text = stdout(&o);
    assert!(text.contains("problem"), "{text}");
    assert!(
        text.contains(&format!("page {page}")),
        "names page {page}:\n{text}"
    );
}

#[test]
fn check_finds_a_flipped_bit_in_the_catalog() {
    let tmp = tempfile::tempdir().unwrap();
    sample_db(tmp.path());
    let data = tmp.path().join("data.ldb");
    // The catalog's root, as the newest superblock records it (older copies of catalog
    // pages may lie in free pages, which are no part of the database).
    let root = {
        let file = lightning_db::page::PageFile::open(
            &lightning_db::page::vfs::OsVfs::new(),
            &data,
            lightning_db::page::OpenOptions::default(),
        )
        .unwrap();
        file.superblock().catalog_root.unwrap().get()
    };
    let mut bytes = std::fs::read(&data).unwrap();
    let at = usize::try_from(root).unwrap() * 8192 + 4000;
    bytes[at] ^= 0x04;
    std::fs::write(&data, bytes).unwrap();
    let o = lightning(&["check".as_ref(), tmp.path().as_os_str()]);
    expect_code(&o, 1);
    let text = stdout(&o);
    assert!(text.contains("data.ldb"), "names the file:\n{text}");
    assert!(
        text.contains(&format!("page {root}")),
        "names the page:\n{text}"
    );
}

#[test]
fn check_finds_a_flipped_bit_in_a_wal_record() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("db");
    // A database whose writer dies (SIGKILL) with records in its WAL.
    let mut child = Command::new(env!("CARGO_BIN_EXE_lightning"))
        .args([
            "demo".as_ref(),
            dir.as_os_str(),
            "--seconds".as_ref(),
            "60".as_ref(),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let wal = dir.join("wal");
    let segment = loop {
        std::thread::sleep(std::time::Duration::from_millis(50));
        let big = std::fs::read_dir(&wal).ok().and_then(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "wal"))
                .find(|p| {
                    // Records well past the first one, which later frames vouch for.
                    std::fs::read(p).is_ok_and(|b| b.iter().skip(64 << 10).any(|&x| x != 0))
                })
        });
        if let Some(p) = big {
            break p;
        }
        assert!(child.try_wait().unwrap().is_none(), "the demo ended early");
    };
    child.kill().unwrap();
    child.wait().unwrap();
    let o = lightning(&["check".as_ref(), dir.as_os_str()]);
    expect_code(&o, 0);
    // The first record's payload: after the segment header (32 bytes) and its frame header.
    let mut bytes = std::fs::read(&segment).unwrap();
    bytes[32 + 40 + 4] ^= 0x01;
    std::fs::write(&segment, bytes).unwrap();
    let o = lightning(&["check".as_ref(), dir.as_os_str()]);
    expect_code(&o, 1);
    let text = stdout(&o);
    let name = segment.file_name().unwrap().to_str().unwrap();
    assert!(
        text.contains("WAL") && text.contains(name),
        "names the segment:\n{text}"
    );
}

#[test]
fn bad_input_gets_a_clear_error_and_the_right_exit_code() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    sample_db(dir);
    let d = dir.as_os_str();
    // A directory that is not there.
    let o = lightning(&["stats", "/nonexistent/lightning-db"]);
    expect_code(&o, 1);
    assert!(stderr(&o).contains("does not exist"), "{}", stderr(&o));
    // A directory that holds no database, and a file.
    let empty = tempfile::tempdir().unwrap();
    let o = lightning(&["check".as_ref(), empty.path().as_os_str()]);
    expect_code(&o, 1);
    assert!(
        stdout(&o).contains("not a Lightning DB database"),
        "{}",
        stdout(&o)
    );
    // A directory whose data.ldb is not a page file.
    let junk = tempfile::tempdir().unwrap();
    std::fs::write(junk.path().join("data.ldb"), vec![0x5a; 20_000]).unwrap();
    for cmd in ["stats", "check", "dump"] {
        let o = lightning(&[cmd.as_ref(), junk.path().as_os_str()]);
        expect_code(&o, 1);
        let said = stdout(&o) + &stderr(&o);
        assert!(said.contains("data.ldb"), "{cmd} names the file: {said}");
    }
    let file = dir.join("data.ldb");
    let o = lightning(&["stats".as_ref(), file.as_os_str()]);
    expect_code(&o, 1);
    assert!(stderr(&o).contains("is a file"), "{}", stderr(&o));
    // An unknown keyspace: the error lists the ones there are.
    let o = lightning(&["get".as_ref(), d, "nope".as_ref(), "k".as_ref()]);
    expect_code(&o, 1);
    assert!(stderr(&o).contains("\"users\""), "{}", stderr(&o));
    // put without --create does not create a keyspace by a typo.
    let o = lightning(&[
        "put".as_ref(),
        d,
        "userz".as_ref(),
        "k".as_ref(),
        "v".as_ref(),
    ]);
    expect_code(&o, 1);
    // A key over the limit.
    let long = "k".repeat(100_000);
    let o = lightning(&[
        "put".as_ref(),
        d,
        "users".as_ref(),
        long.as_ref(),
        "v".as_ref(),
    ]);
    expect_code(&o, 1);
    assert!(stderr(&o).contains("key"), "{}", stderr(&o));
    // Not hexadecimal with --hex.
    let o = lightning(&[
        "get".as_ref(),
        d,
        "users".as_ref(),
        "xyz".as_ref(),
        "--hex".as_ref(),
    ]);
    expect_code(&o, 1);
    assert!(stderr(&o).contains("hexadecimal"), "{}", stderr(&o));
    // Usage errors: exit code 2.
    expect_code(&lightning(&["frobnicate"]), 2);
    expect_code(&lightning(&["get", "only-a-dir"]), 2);
    expect_code(&lightning(&["stats", "x", "--format", "yaml"]), 2);
    // Invalid UTF-8: a keyspace name must be text (usage error); a key may be any bytes.
    #[cfg(unix)]
    {
        use std::ffi::OsStr;
        use std::os::unix::ffi::OsStrExt;
        let bad = OsStr::from_bytes(b"us\xffers");
        let o = lightning(&["get".as_ref(), d, bad, "k".as_ref()]);
        expect_code(&o, 2);
        let o = lightning(&["put".as_ref(), d, "users".as_ref(), bad, "v".as_ref()]);
        expect_code(&o, 0);
        let o = lightning(&[
            "dump".as_ref(),
            d,
            "users".as_ref(),
            "--prefix".as_ref(),
            bad,
        ]);
        expect_code(&o, 0);
        assert_eq!(stdout(&o), "users\tus\\xffers\tv\n");
    }
    // Nothing was lost along the way.
    let o = lightning(&["get".as_ref(), d, "users".as_ref(), "user:0999".as_ref()]);
    assert_eq!(stdout(&o), "needle-value-0999\n");
}

#[test]
fn a_database_in_use_names_the_process_that_holds_it() {
    let tmp = tempfile::tempdir().unwrap();
    let db = Database::open(tmp.path(), Options::default()).unwrap();
    let o = lightning(&["stats".as_ref(), tmp.path().as_os_str()]);
    expect_code(&o, 1);
    let me = format!("in use by process {}", std::process::id());
    assert!(stderr(&o).contains(&me), "{}", stderr(&o));
    db.close().unwrap();
    expect_code(&lightning(&["stats".as_ref(), tmp.path().as_os_str()]), 0);
}

#[test]
fn bench_prints_throughput_and_percentiles_and_leaves_no_keyspace() {
    let tmp = tempfile::tempdir().unwrap();
    let o = lightning(&[
        "bench".as_ref(),
        tmp.path().as_os_str(),
        "--seconds".as_ref(),
        "1".as_ref(),
    ]);
    expect_code(&o, 0);
    insta::assert_snapshot!("bench", masked(&stdout(&o), tmp.path()));
    let o = lightning(&["keyspaces".as_ref(), tmp.path().as_os_str()]);
    assert!(stdout(&o).starts_with("no keyspaces"), "{}", stdout(&o));
}

#[test]
#[expect(
    clippy::too_many_lines,
    reason = "an operator's session, command after command"
)]
fn an_operator_backs_up_verifies_restores_lists_and_prunes() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, dest) = (tmp.path().join("db"), tmp.path().join("backups"));
    sample_db(&dir);
    let o = lightning(&[
        std::ffi::OsStr::new("backup"),
        dir.as_os_str(),
        dest.as_os_str(),
    ]);
    expect_code(&o, 0);
    assert!(stdout(&o).contains("backup 1 (full)"), "{}", stdout(&o));
    // A change, then an incremental backup, in JSON.
    let db = Database::open(&dir, Options::default()).unwrap();
    let ks = db.open_keyspace("users").unwrap();
    db.put(&ks, b"user:0001", b"changed").unwrap();
    db.close().unwrap();
    let args = |list: &[&dyn AsRef<std::ffi::OsStr>]| -> Vec<std::ffi::OsString> {
        list.iter().map(|a| a.as_ref().to_owned()).collect()
    };
    let o = lightning(&args(&[
        &"backup",
        &dir,
        &dest,
        &"--incremental",
        &"--format",
        &"json",
    ]));
    expect_code(&o, 0);
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["kind"], "incremental");
    assert_eq!(v["parent"], 1);
    assert!(v["pages_copied"].as_u64().unwrap() < v["pages_in_image"].as_u64().unwrap());
    insta::assert_snapshot!(
        "backup_json_shape",
        serde_json::to_string_pretty(&shape(&v)).unwrap()
    );

    let o = lightning(&args(&[&"backups", &dest]));
    expect_code(&o, 0);
    insta::assert_snapshot!("backups", masked(&stdout(&o), &dest));
    let o = lightning(&args(&[&"verify", &dest]));
    expect_code(&o, 0);
    assert!(
        stdout(&o).contains("verified 2 backup(s)"),
        "{}",
        stdout(&o)
    );

    // The newest state, then the full backup's alone.
    let new = tmp.path().join("restored");
    let o = lightning(&args(&[&"restore", &dest, &new]));
    expect_code(&o, 0);
    assert!(
        stdout(&o).contains("restored backup(s) 1 <- 2"),
        "{}",
        stdout(&o)
    );
    let o = lightning(&args(&[&"get", &new, &"users", &"user:0001"]));
    expect_code(&o, 0);
    assert_eq!(stdout(&o).trim_end(), "changed");
    let o = lightning(&args(&[&"restore", &dest, &new, &"--backup", &"1"]));
    expect_code(&o, 1);
    assert!(stderr(&o).contains("not empty"), "{}", stderr(&o));
    let o = lightning(&args(&[
        &"restore",
        &dest,
        &new,
        &"--backup",
        &"1",
        &"--force",
    ]));
    expect_code(&o, 0);
    let o = lightning(&args(&[&"get", &new, &"users", &"user:0001"]));
    assert_eq!(stdout(&o).trim_end(), "needle-value-0001");
    let o = lightning(&args(&[
        &"restore",
        &dest,
        &new,
        &"--to-time",
        &"noon",
        &"--force",
    ]));
    expect_code(&o, 1);
    assert!(stderr(&o).contains("RFC 3339"), "{}", stderr(&o));

    // A flipped bit in the incremental's pages: verify names it, restore refuses it.
    let pages = dest.join("000002").join("pages");
    let mut bytes = std::fs::read(&pages).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 4;
    std::fs::write(&pages, &bytes).unwrap();
    let o = lightning(&args(&[&"verify", &dest]));
    expect_code(&o, 1);
    assert!(stderr(&o).contains("000002/pages"), "{}", stderr(&o));
    let o = lightning(&args(&[&"restore", &dest, &tmp.path().join("again")]));
    expect_code(&o, 1);
    assert!(stderr(&o).contains("hash does not match"), "{}", stderr(&o));
    bytes[mid] ^= 4;
    std::fs::write(&pages, &bytes).unwrap();

    // Keep the newest chain: both backups form it, nothing goes.
    let o = lightning(&args(&[
        &"prune",
        &dest,
        &"--keep-full",
        &"1",
        &"--format",
        &"json",
    ]));
    expect_code(&o, 0);
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["kept"], serde_json::json!([1, 2]));
    let o = lightning(&args(&[&"prune", &dest]));
    expect_code(&o, 1);
    assert!(stderr(&o).contains("say what to keep"), "{}", stderr(&o));
}
