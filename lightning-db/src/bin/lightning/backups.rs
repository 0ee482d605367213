//! The backup commands: backup, verify, restore, backups, prune.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use lightning_db::backup::manifest::{Kind, Manifest};
use lightning_db::backup::{self, Repository, RestoreOptions, Retention, State, Target};
use lightning_db::page::vfs::{OsVfs, Vfs};
use lightning_db::wal::Lsn;
use serde_json::json;

use crate::args::Format;
use crate::commands::open_existing;
use crate::out::{self, CliError, Outcome, Result, count, size};

fn os_vfs() -> Arc<dyn Vfs> {
    Arc::new(OsVfs::new())
}

fn kind(m: &Manifest) -> &'static str {
    match m.kind {
        Kind::Full => "full",
        Kind::Incremental => "incremental",
    }
}

#[expect(clippy::cast_precision_loss, reason = "a rate for people")]
fn rate(bytes: u64, secs: f64) -> f64 {
    if secs > 0.0 {
        bytes as f64 / secs / 1e6
    } else {
        0.0
    }
}

/// `lightning backup DIR DEST [--incremental]`.
pub(crate) fn backup(
    dir: &Path,
    dest: &Path,
    incremental: bool,
    format: Format,
) -> Result<Outcome> {
    let db = open_existing(dir, false)?;
    let bar = out::progress(
        1,
        if incremental {
            "incremental backup"
        } else {
            "full backup"
        },
    );
    let started = Instant::now();
    let m = db.backup_with_progress(dest, incremental, &mut |done, total| {
        bar.set_length(total.max(1));
        bar.set_position(done);
    })?;
    let secs = started.elapsed().as_secs_f64();
    bar.finish_and_clear();
    db.close()?;
    let copied: u64 = m.extents.iter().map(|e| e.count).sum();
    let mut w = out::stdout();
    if format == Format::Json {
        out::json(
            &mut w,
            &json!({
                "id": m.id, "kind": kind(&m), "parent": m.parent, "generation": m.generation,
                "pages_copied": copied, "pages_in_image": m.live_pages(), "bytes": m.bytes(),
                "checkpoint_lsn": m.checkpoint_lsn.get(), "end_lsn": m.end_lsn.get(),
                "end_time": out::rfc3339(m.end_time_us), "seconds": secs,
                "mb_per_s": rate(m.bytes(), secs),
            }),
        )?;
    } else {
        writeln!(
            w,
            "backup {} ({}{}) of {} in {}",
            m.id,
            kind(&m),
            m.parent.map_or_else(String::new, |p| format!(" on {p}")),
            dir.display(),
            dest.display()
        )?;
        writeln!(
            w,
            "  pages    {} copied of {} in the image ({})",
            count(copied),
            count(m.live_pages()),
            size(m.pages_len)
        )?;
        writeln!(
            w,
            "  wal      {} segment(s), LSN {} to {}",
            m.wal.len(),
            m.checkpoint_lsn,
            m.end_lsn
        )?;
        writeln!(
            w,
            "  restores to LSN {} ({}); {} in {:.2} s, {:.0} MB/s",
            m.end_lsn,
            out::rfc3339(m.end_time_us),
            size(m.bytes()),
            secs,
            rate(m.bytes(), secs)
        )?;
    }
    w.flush()?;
    Ok(Outcome::Done)
}

/// `lightning verify DEST [--backup ID]`.
pub(crate) fn verify(dest: &Path, id: Option<u64>, format: Format) -> Result<Outcome> {
    let bar = out::progress(1, "verifying");
    let started = Instant::now();
    let report = backup::verify(&os_vfs(), dest, id, &mut |done, total| {
        bar.set_length(total.max(1));
        bar.set_position(done);
    })
    .map_err(lightning_db::Error::from)?;
    let secs = started.elapsed().as_secs_f64();
    bar.finish_and_clear();
    let mut w = out::stdout();
    if format == Format::Json {
        out::json(
            &mut w,
            &json!({
                "backups": report.chain, "bytes": report.bytes, "pages": report.pages,
                "wal_records": report.wal_records, "seconds": secs,
                "mb_per_s": rate(report.bytes, secs), "ok": true,
            }),
        )?;
    } else {
        writeln!(
            w,
            "verified {} backup(s) in {}: {} read, {} pages, {} WAL records; every hash matches ({:.0} MB/s)",
            report.chain.len(),
            dest.display(),
            size(report.bytes),
            count(report.pages),
            count(report.wal_records),
            rate(report.bytes, secs)
        )?;
    }
    w.flush()?;
    Ok(Outcome::Done)
}

/// Arguments of `lightning restore`.
pub(crate) struct RestoreArgs {
    pub(crate) backup: Option<u64>,
    pub(crate) to_lsn: Option<u64>,
    pub(crate) to_time: Option<String>,
    pub(crate) latest: bool,
    pub(crate) wal_from: Vec<PathBuf>,
    pub(crate) force: bool,
}

/// `lightning restore DEST NEWDIR [...]`.
pub(crate) fn restore(
    dest: &Path,
    to: &Path,
    args: &RestoreArgs,
    format: Format,
) -> Result<Outcome> {
    let target = match (&args.to_lsn, &args.to_time, args.latest) {
        (Some(l), _, _) => Some(Target::Lsn(Lsn::new(*l))),
        (None, Some(t), _) => Some(Target::TimeUs(out::parse_time(t).ok_or_else(|| {
            CliError::Input(format!(
                "--to-time {t:?}: give RFC 3339 in UTC (2026-12-07T09:30:00Z) or microseconds since the Unix epoch"
            ))
        })?)),
        (None, None, true) => Some(Target::Latest),
        (None, None, false) => None,
    };
    let opts = RestoreOptions {
        backup: args.backup,
        target,
        wal_dirs: args.wal_from.clone(),
        overwrite: args.force,
    };
    let bar = out::progress(1, "restoring");
    let started = Instant::now();
    let report = backup::restore(&os_vfs(), dest, to, &opts, &mut |done, total| {
        bar.set_length(total.max(1));
        bar.set_position(done);
    })
    .map_err(lightning_db::Error::from)?;
    bar.set_message("opening (replaying the log)");
    let db = open_existing(to, false)?;
    let keyspaces = db.keyspaces().len();
    db.close()?;
    let secs = started.elapsed().as_secs_f64();
    bar.finish_and_clear();
    let mut w = out::stdout();
    if format == Format::Json {
        out::json(
            &mut w,
            &json!({
                "backups": report.chain, "lsn": report.lsn.get(), "time": out::rfc3339(report.time_us),
                "time_us": report.time_us, "records_replayed": report.records_replayed,
                "pages": report.pages, "bytes": report.bytes, "keyspaces": keyspaces,
                "seconds": secs,
            }),
        )?;
    } else {
        writeln!(
            w,
            "restored backup(s) {} into {}",
            report
                .chain
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(" <- "),
            to.display()
        )?;
        writeln!(
            w,
            "  state at LSN {} ({}), {} commit record(s) replayed after the image",
            report.lsn,
            out::rfc3339(report.time_us),
            count(report.records_replayed)
        )?;
        writeln!(
            w,
            "  {} pages, {} read; opened with {} keyspace(s) in {:.2} s",
            count(report.pages),
            size(report.bytes),
            keyspaces,
            secs
        )?;
    }
    w.flush()?;
    Ok(Outcome::Done)
}

/// `lightning backups DEST`.
pub(crate) fn list(dest: &Path, format: Format) -> Result<Outcome> {
    if !dest.is_dir() {
        return Err(CliError::Input(format!(
            "{} is not a backup directory",
            dest.display()
        )));
    }
    let vfs = os_vfs();
    let repo = Repository::open(&*vfs, dest).map_err(lightning_db::Error::from)?;
    let mut w = out::stdout();
    let mut problems = false;
    if format == Format::Json {
        let rows: Vec<serde_json::Value> = repo
            .entries()
            .map(|e| match &e.state {
                State::Complete(m) => json!({
                    "id": m.id, "state": "complete", "kind": kind(m), "parent": m.parent,
                    "created": out::rfc3339(m.created_us), "generation": m.generation,
                    "checkpoint_lsn": m.checkpoint_lsn.get(), "end_lsn": m.end_lsn.get(),
                    "end_time": out::rfc3339(m.end_time_us), "bytes": m.bytes(),
                    "database_id": format!("{:016x}", m.database_id),
                }),
                State::Incomplete => json!({"id": e.id, "state": "incomplete"}),
                State::Damaged(why) => {
                    problems = true;
                    json!({"id": e.id, "state": "damaged", "error": why})
                }
            })
            .collect();
        out::json(&mut w, &json!({ "backups": rows }))?;
    } else {
        writeln!(
            w,
            "{:>6}  {:<11} {:>6}  {:<20} {:>10}  {:<20} {:>10}",
            "id", "kind", "parent", "created (UTC)", "end LSN", "end time (UTC)", "size"
        )?;
        for e in repo.entries() {
            match &e.state {
                State::Complete(m) => writeln!(
                    w,
                    "{:>6}  {:<11} {:>6}  {:<20} {:>10}  {:<20} {:>10}",
                    m.id,
                    kind(m),
                    m.parent.map_or_else(|| "-".into(), |p| p.to_string()),
                    out::rfc3339(m.created_us),
                    m.end_lsn.get(),
                    out::rfc3339(m.end_time_us),
                    size(m.bytes())
                )?,
                State::Incomplete => writeln!(
                    w,
                    "{:>6}  incomplete (interrupted; `lightning prune` removes it)",
                    e.id
                )?,
                State::Damaged(why) => {
                    problems = true;
                    writeln!(w, "{:>6}  DAMAGED: {why}", e.id)?;
                }
            }
        }
    }
    w.flush()?;
    Ok(if problems {
        Outcome::Problems
    } else {
        Outcome::Done
    })
}

/// `lightning prune DEST [--keep-full N] [--max-age-days D] [--wal-archive DIR]...`.
pub(crate) fn prune(
    dest: &Path,
    keep_full: Option<usize>,
    max_age_days: Option<f64>,
    archives: &[PathBuf],
    format: Format,
) -> Result<Outcome> {
    if keep_full.is_none() && max_age_days.is_none() {
        return Err(CliError::Input(
            "say what to keep: --keep-full N and/or --max-age-days D".into(),
        ));
    }
    let max_age_us = match max_age_days {
        Some(d) if d.is_finite() && d >= 0.0 => {
            #[expect(
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                reason = "checked finite and non-negative; saturates"
            )]
            let us = (d * 86_400e6) as u64;
            Some(us)
        }
        Some(d) => {
            return Err(CliError::Input(format!(
                "--max-age-days {d}: give a number of days, 0 or more"
            )));
        }
        None => None,
    };
    let policy = Retention {
        keep_full,
        max_age_us,
        now_us: out::now_us(),
    };
    let vfs = os_vfs();
    let report =
        backup::prune(&*vfs, dest, &policy, archives).map_err(lightning_db::Error::from)?;
    let mut w = out::stdout();
    if format == Format::Json {
        out::json(
            &mut w,
            &json!({
                "kept": report.kept, "removed": report.removed,
                "archived_segments_removed": report.archived_segments_removed,
                "archive_kept_from_lsn": report.archive_kept_from.map(Lsn::get),
            }),
        )?;
    } else {
        writeln!(
            w,
            "kept {} backup(s), removed {}; {} archived WAL segment(s) removed{}",
            report.kept.len(),
            report.removed.len(),
            report.archived_segments_removed,
            report
                .archive_kept_from
                .map_or_else(String::new, |l| format!(" (archive kept from LSN {l})"))
        )?;
    }
    w.flush()?;
    Ok(Outcome::Done)
}
