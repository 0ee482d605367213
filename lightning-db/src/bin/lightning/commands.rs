//! The operator's commands: stats, check, dump, keyspaces, compact, get, put, delete.

use std::ffi::OsStr;
use std::io::Write;
use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;

use lightning_db::page::vfs::OsVfs;
use lightning_db::wal::Lsn;
use lightning_db::{DATA_FILE, Database, Keyspace, Options, WAL_DIR};
use serde_json::json;

use crate::args::Format;
use crate::out::{self, CliError, Outcome, Result, count, escape, hex, size};

/// Options for the tool's opens: any record a database wrote can be read back (the largest
/// transaction size), nothing in the background.
fn options(read_only: bool) -> Options {
    Options {
        read_only,
        create_if_missing: false,
        max_txn_bytes: 1 << 30,
        checkpoint_interval_ms: if read_only { 0 } else { 30_000 },
        ..Options::default()
    }
}

/// Opens the existing database in `dir`: a missing directory or one without a database is
/// an error that says so, never a new database.
pub(crate) fn open_existing(dir: &Path, read_only: bool) -> Result<Database> {
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            return Err(CliError::Input(format!(
                "{} is a file, not a database directory",
                dir.display()
            )));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(CliError::Input(format!(
                "{} does not exist; give the directory of a Lightning DB database (`lightning demo DIR` creates one)",
                dir.display()
            )));
        }
        Err(source) => {
            return Err(CliError::Io {
                what: "look at",
                path: dir.to_path_buf(),
                source,
            });
        }
    }
    Ok(Database::open(dir, options(read_only))?)
}

fn keyspace(db: &Database, name: &str) -> Result<Keyspace> {
    db.open_keyspace(name).map_err(|e| match e {
        lightning_db::Error::NoSuchKeyspace { .. } => {
            let names = db.keyspaces();
            CliError::Input(format!(
                "no keyspace named {name:?} in {}; it has {}",
                db.path().display(),
                if names.is_empty() {
                    "none".to_string()
                } else {
                    names
                        .iter()
                        .map(|n| format!("{n:?}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            ))
        }
        other => other.into(),
    })
}

/// `lightning stats DIR`.
pub(crate) fn stats(dir: &Path, prometheus: bool, format: Format) -> Result<Outcome> {
    let db = open_existing(dir, true)?;
    let s = db.stats();
    let mut w = out::stdout();
    if prometheus {
        write!(w, "{}", s.to_prometheus())?;
    } else if format == Format::Json {
        let value = serde_json::to_value(&s).map_err(|e| CliError::Failed(e.to_string()))?;
        out::json(&mut w, &value)?;
    } else {
        writeln!(w, "database     {}", dir.display())?;
        writeln!(
            w,
            "files        data.ldb {} ({} pages of {}, {} free, {} held for an older image), {} keyspaces",
            size(s.file.data_bytes),
            count(s.file.pages),
            size(s.file.page_size),
            count(s.file.free_pages),
            count(s.file.pending_pages),
            s.file.keyspaces
        )?;
        writeln!(
            w,
            "wal          {} records replayed on open, last LSN {}, durable LSN {}",
            count(s.tx.recovered_commits),
            s.wal.last_lsn,
            s.wal.durable_lsn
        )?;
        writeln!(
            w,
            "cache        {} frames, {} hits, {} misses (hit ratio {:.1} %)",
            count(s.cache.frames),
            count(s.cache.hits),
            count(s.cache.misses),
            s.cache.hit_ratio * 100.0
        )?;
        writeln!(
            w,
            "checkpoint   LSN {} (newest durable image)",
            db.checkpoint_lsn().get()
        )?;
        writeln!(
            w,
            "(figures of this inspection's own open; a running database reports its own with db.stats())"
        )?;
    }
    w.flush()?;
    Ok(Outcome::Done)
}

/// `lightning check DIR`.
pub(crate) fn check(dir: &Path, format: Format) -> Result<Outcome> {
    let mut problems = Vec::new();
    let mut checked = json!({});
    let bar = out::progress(2, "checking the WAL");
    // The whole WAL, every record's frame and checksum (the open below reads only what
    // lies above the checkpoint).
    let wal_dir = dir.join(WAL_DIR);
    let mut records = 0u64;
    match lightning_db::wal::read_only(Arc::new(OsVfs::new()), &wal_dir, 1 << 30, Lsn::new(1)) {
        Ok((recovery, iter)) => {
            for r in iter {
                match r {
                    Ok(_) => records += 1,
                    Err(e) => {
                        problems.push(format!("WAL: {e}"));
                        break;
                    }
                }
            }
            if let Some(t) = &recovery.torn_tail {
                checked["wal_torn_tail"] = json!(format!(
                    "{} at offset {}: {} (unacknowledged records, cut at the next read-write open)",
                    t.segment.display(),
                    t.offset,
                    t.what
                ));
            }
        }
        Err(e) => problems.push(format!("WAL: {e}")),
    }
    checked["wal_records"] = json!(records);
    bar.set_position(1);
    bar.set_message("checking pages and trees".to_string());
    // Opening verifies the superblocks, the catalog and the replay; check() every tree,
    // every reachable page's checksum and the free-page accounting.
    match open_existing(dir, true) {
        Ok(db) => {
            let found = db.check()?;
            checked["keyspaces"] = json!(db.keyspaces());
            checked["pages"] = json!(db.stats().file.pages);
            problems.extend(found);
        }
        Err(CliError::Db(e)) => problems.push(e.to_string()),
        Err(other) => return Err(other),
    }
    bar.finish_and_clear();
    let mut w = out::stdout();
    if format == Format::Json {
        checked["clean"] = json!(problems.is_empty());
        checked["problems"] = json!(problems);
        out::json(&mut w, &checked)?;
    } else if problems.is_empty() {
        writeln!(
            w,
            "clean: {} ({} pages, keyspaces {}), {} WAL records",
            dir.join(DATA_FILE).display(),
            checked["pages"],
            checked["keyspaces"],
            count(records)
        )?;
        if let Some(t) = checked.get("wal_torn_tail") {
            writeln!(w, "note: the WAL ends in a torn tail: {t}")?;
        }
    } else {
        writeln!(w, "{} problem(s) in {}:", problems.len(), dir.display())?;
        for p in &problems {
            writeln!(w, "  {p}")?;
        }
    }
    w.flush()?;
    Ok(if problems.is_empty() {
        Outcome::Done
    } else {
        Outcome::Problems
    })
}

/// `--range FROM..TO`: either end may be empty.
/// A key range: its start and end bound.
type KeyRange = (Bound<Vec<u8>>, Bound<Vec<u8>>);

fn parse_range(arg: &OsStr, hex_args: bool) -> Result<KeyRange> {
    let bytes = out::arg_bytes("range", arg, false)?;
    let Some(at) = bytes.windows(2).position(|w| w == b"..") else {
        return Err(CliError::Input(
            "--range wants FROM..TO (either end may be left out: a.. or ..m)".into(),
        ));
    };
    let end = |b: &[u8]| -> Result<Bound<Vec<u8>>> {
        if b.is_empty() {
            return Ok(Bound::Unbounded);
        }
        if hex_args {
            let text = std::str::from_utf8(b).unwrap_or_default();
            out::from_hex(text)
                .map(Bound::Included)
                .ok_or_else(|| CliError::Input(format!("--range end {text:?} is not hexadecimal")))
        } else {
            Ok(Bound::Included(b.to_vec()))
        }
    };
    let from = end(&bytes[..at])?;
    let to = match end(&bytes[at + 2..])? {
        Bound::Included(b) => Bound::Excluded(b),
        other => other,
    };
    Ok((from, to))
}

/// `lightning dump DIR [KEYSPACE]`.
pub(crate) fn dump(
    dir: &Path,
    keyspace_name: Option<&str>,
    prefix: Option<&OsStr>,
    range: Option<&OsStr>,
    limit: Option<u64>,
    hex_bytes: bool,
    format: Format,
) -> Result<Outcome> {
    let db = open_existing(dir, true)?;
    let names = match keyspace_name {
        Some(n) => vec![keyspace(&db, n)?.name().to_string()],
        None => db.keyspaces(),
    };
    let bounds = match range {
        Some(r) => Some(parse_range(r, hex_bytes)?),
        None => None,
    };
    let prefix = match prefix {
        Some(p) => Some(out::arg_bytes("prefix", p, hex_bytes)?),
        None => None,
    };
    let tx = db.begin_read()?;
    let mut w = out::stdout();
    let mut left = limit.unwrap_or(u64::MAX);
    let mut rows = Vec::new();
    for name in &names {
        let ks = keyspace(&db, name)?;
        let iter = match (&prefix, &bounds) {
            (Some(p), _) => tx.prefix(&ks, p)?,
            (None, Some(b)) => tx.range(&ks, b.clone())?,
            (None, None) => tx.range::<&[u8]>(&ks, ..)?,
        };
        for row in iter {
            if left == 0 {
                break;
            }
            let (k, v) = row?;
            left -= 1;
            if format == Format::Json {
                let mut r = json!({"keyspace": name, "key_hex": hex(&k), "value_hex": hex(&v)});
                if !hex_bytes {
                    r["key"] = json!(std::str::from_utf8(&k).ok());
                    r["value"] = json!(std::str::from_utf8(&v).ok());
                }
                rows.push(r);
            } else if hex_bytes {
                writeln!(w, "{name}\t{}\t{}", hex(&k), hex(&v))?;
            } else {
                writeln!(w, "{name}\t{}\t{}", escape(&k), escape(&v))?;
            }
        }
    }
    if format == Format::Json {
        out::json(&mut w, &json!(rows))?;
    }
    w.flush()?;
    Ok(Outcome::Done)
}

/// `lightning keyspaces DIR`.
pub(crate) fn keyspaces(dir: &Path, format: Format) -> Result<Outcome> {
    let db = open_existing(dir, true)?;
    let names = db.keyspaces();
    let mut w = out::stdout();
    if format == Format::Json {
        out::json(&mut w, &json!(names))?;
    } else if names.is_empty() {
        writeln!(w, "no keyspaces in {}", dir.display())?;
    } else {
        for n in names {
            writeln!(w, "{}", escape(n.as_bytes()))?;
        }
    }
    w.flush()?;
    Ok(Outcome::Done)
}

/// `lightning compact DIR`.
pub(crate) fn compact(dir: &Path, format: Format) -> Result<Outcome> {
    let db = open_existing(dir, false)?;
    let before = db.stats().file.data_bytes;
    let bar = out::progress(1, "compacting");
    db.compact()?;
    bar.finish_and_clear();
    let after = db.stats().file.data_bytes;
    let removed = db.stats().gc.versions_removed;
    db.close()?;
    let mut w = out::stdout();
    if format == Format::Json {
        out::json(
            &mut w,
            &json!({"data_bytes_before": before, "data_bytes_after": after, "versions_removed": removed}),
        )?;
    } else {
        writeln!(
            w,
            "compacted {}: data.ldb {} -> {}, {} old versions removed",
            dir.display(),
            size(before),
            size(after),
            count(removed)
        )?;
    }
    w.flush()?;
    Ok(Outcome::Done)
}

/// `lightning get DIR KEYSPACE KEY`.
pub(crate) fn get(
    dir: &Path,
    keyspace_name: &str,
    key: &OsStr,
    hex_bytes: bool,
    format: Format,
) -> Result<Outcome> {
    let key = out::arg_bytes("key", key, hex_bytes)?;
    let db = open_existing(dir, true)?;
    let ks = keyspace(&db, keyspace_name)?;
    let value = db.get(&ks, &key)?;
    let mut w = out::stdout();
    match (&value, format) {
        (_, Format::Json) => out::json(
            &mut w,
            &json!({
                "keyspace": keyspace_name,
                "key_hex": hex(&key),
                "found": value.is_some(),
                "value_hex": value.as_deref().map(hex),
                "value": value.as_deref().and_then(|v| std::str::from_utf8(v).ok()),
            }),
        )?,
        (Some(v), Format::Text) if hex_bytes => writeln!(w, "{}", hex(v))?,
        (Some(v), Format::Text) => writeln!(w, "{}", escape(v))?,
        (None, Format::Text) => {}
    }
    w.flush()?;
    if value.is_none() {
        eprintln!(
            "not found: key {} in keyspace {keyspace_name:?}",
            if hex_bytes { hex(&key) } else { escape(&key) }
        );
        return Ok(Outcome::Problems);
    }
    Ok(Outcome::Done)
}

/// `lightning put DIR KEYSPACE KEY VALUE` (`value` given) and `lightning delete`.
pub(crate) fn write(
    dir: &Path,
    keyspace_name: &str,
    key: &OsStr,
    value: Option<&OsStr>,
    create: bool,
    hex_bytes: bool,
    format: Format,
) -> Result<Outcome> {
    let key = out::arg_bytes("key", key, hex_bytes)?;
    let value = match value {
        Some(v) => Some(out::arg_bytes("value", v, hex_bytes)?),
        None => None,
    };
    let db = open_existing(dir, false)?;
    let ks = if create {
        db.keyspace(keyspace_name)?
    } else {
        keyspace(&db, keyspace_name)?
    };
    let existed = db.get(&ks, &key)?.is_some();
    let info = match &value {
        Some(v) => db.put(&ks, &key, v)?,
        None => db.delete(&ks, &key)?,
    };
    db.close()?;
    let mut w = out::stdout();
    let shown = if hex_bytes { hex(&key) } else { escape(&key) };
    if format == Format::Json {
        out::json(
            &mut w,
            &json!({
                "keyspace": keyspace_name,
                "key_hex": hex(&key),
                "op": if value.is_some() { "put" } else { "delete" },
                "existed": existed,
                "commit_ts": info.ts.get(),
            }),
        )?;
    } else if value.is_some() {
        writeln!(
            w,
            "{} {shown} in {keyspace_name:?} (committed durably)",
            if existed { "updated" } else { "created" }
        )?;
    } else if existed {
        writeln!(
            w,
            "deleted {shown} from {keyspace_name:?} (committed durably)"
        )?;
    } else {
        writeln!(w, "{shown} was not in {keyspace_name:?}: nothing to delete")?;
    }
    w.flush()?;
    Ok(Outcome::Done)
}
