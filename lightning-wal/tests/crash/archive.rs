//! Archiving under power cuts: segments retired by `truncate_before` into `wal-archive/`
//! stay listed in the index, their files stay where the index says, and the archive plus
//! the live log hold every record from LSN 1 on, without a gap.
//!
//! Each scenario runs two rounds of appends and truncations, each ended by a power cut,
//! either at a random I/O call (often in the middle of archiving) or after the round.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use lightning_page::vfs::{CrashMode, CrashVfs, Vfs};
use lightning_testkit::{Outcome, Rng, run_seeds, scaled};
use lightning_wal::{ArchivedSegment, Durability, Lsn, Wal, WalOptions, load_index};

use super::{DIR, power_cut_at};

const ARCHIVE: &str = "db/wal-archive";

fn record(lsn: u64, len: usize) -> Vec<u8> {
    let mut p = lsn.to_le_bytes().to_vec();
    p.extend(Rng::new(lsn).bytes(len));
    p
}

/// The records of the segments in `dir`, read by opening them as a log (the last step of a
/// scenario: opening rewrites the last segment's tail).
fn records_in(
    vfs: &Arc<CrashVfs>,
    dir: &Path,
    opts: &WalOptions,
) -> Result<Vec<(Lsn, Vec<u8>)>, String> {
    let opts = WalOptions {
        archive_dir: None,
        ..opts.clone()
    };
    let wal =
        Wal::open(vfs.clone(), dir, opts).map_err(|e| format!("open {}: {e}", dir.display()))?;
    wal.read_from(Lsn::new(1))
        .map_err(|e| e.to_string())?
        .map(|r| r.map(|r| (r.lsn, r.payload)).map_err(|e| e.to_string()))
        .collect()
}

/// Checks the archive after a power cut: every segment whose archiving returned is listed
/// and in the archive; every listed segment's file exists (in the log directory if the cut
/// came between the index update and the move); the listed ranges run from LSN 1 without
/// a gap and reach the live log.
fn check_archive(
    vfs: &Arc<CrashVfs>,
    archived: &BTreeMap<Lsn, ArchivedSegment>,
    live_first: Lsn,
    mode: CrashMode,
) -> Result<Vec<ArchivedSegment>, String> {
    let index = load_index(&**vfs, Path::new(ARCHIVE))
        .map_err(|e| format!("{mode:?}: archive index: {e}"))?;
    let listed: BTreeMap<Lsn, &ArchivedSegment> = index.iter().map(|s| (s.first, s)).collect();
    for (first, seg) in archived {
        let Some(entry) = listed.get(first) else {
            return Err(format!(
                "{mode:?}: archived segment {first}..={} is missing from the index ({} entries)",
                seg.last,
                index.len()
            ));
        };
        if (entry.last, &entry.path) != (seg.last, &seg.path) {
            return Err(format!(
                "{mode:?}: index entry {entry:?} differs from {seg:?}"
            ));
        }
        if !vfs.exists(&seg.path).unwrap() {
            return Err(format!(
                "{mode:?}: archived file {} is gone",
                seg.path.display()
            ));
        }
    }
    for seg in &index {
        let in_log = Path::new(DIR).join(seg.path.file_name().unwrap());
        if !vfs.exists(&seg.path).unwrap() && !vfs.exists(&in_log).unwrap() {
            return Err(format!(
                "{mode:?}: listed segment {} exists nowhere",
                seg.first
            ));
        }
    }
    lightning_wal::segments_through(&index, Lsn::new(u64::MAX - 1))
        .map_err(|e| format!("{mode:?}: {e}"))?;
    let reach = index.last().map_or(Lsn::new(1), |s| s.last.next());
    if index.first().is_some_and(|s| s.first != Lsn::new(1)) || live_first > reach {
        return Err(format!(
            "{mode:?}: records {reach} to {live_first} are neither archived nor in the log"
        ));
    }
    Ok(index)
}

fn scenario(seed: u64) -> Result<Outcome, String> {
    let mut rng = Rng::new(seed);
    let vfs = Arc::new(CrashVfs::new(seed));
    let opts = WalOptions {
        segment_size: 4096,
        preallocate: rng.chance(50),
        flush_interval: std::time::Duration::ZERO,
        archive_dir: Some(ARCHIVE.into()),
        ..WalOptions::default()
    };
    let mut lens: BTreeMap<u64, usize> = BTreeMap::new();
    let mut acked = Lsn::ZERO;
    // What truncations that returned Ok archived: durable from then on.
    let mut archived: BTreeMap<Lsn, ArchivedSegment> = BTreeMap::new();
    let mut outcome = Outcome::NONE;
    for round in 0..2 {
        let cut_mid_round = rng.chance(60);
        if cut_mid_round {
            power_cut_at(&vfs, rng.below(400));
        }
        if let Ok(wal) = Wal::open(vfs.clone(), Path::new(DIR), opts.clone()) {
            for _ in 0..20 + rng.below(30) {
                let lsn = wal.last_lsn().get() + 1;
                let len = usize::try_from(rng.below(1500)).unwrap();
                match wal.append(1, &record(lsn, len), Durability::Immediate) {
                    Ok(a) => {
                        lens.insert(a.lsn().get(), len);
                        acked = acked.max(a.lsn());
                    }
                    Err(_) => break,
                }
                if rng.chance(15) {
                    let upto = Lsn::new(rng.below(wal.last_lsn().get() + 2));
                    let Ok(mut live) = vfs.list(Path::new(DIR)) else {
                        break;
                    };
                    live.sort();
                    // The oldest `gone` segments went, each archived before the call returned.
                    if let Ok(gone) = wal.truncate_before(upto) {
                        for pair in live.windows(2).take(gone) {
                            let first = |p: &Path| {
                                Lsn::new(p.file_stem().unwrap().to_str().unwrap().parse().unwrap())
                            };
                            let seg = ArchivedSegment {
                                first: first(&pair[0]),
                                last: Lsn::new(first(&pair[1]).get() - 1),
                                min_time_us: 0,
                                max_time_us: 0,
                                path: Path::new(ARCHIVE).join(pair[0].file_name().unwrap()),
                            };
                            archived.insert(seg.first, seg);
                        }
                    }
                }
            }
            drop(wal);
        }
        let mode = CrashMode::from_index(rng.next_u64());
        let report = vfs.crash(mode);
        outcome = outcome.and(Outcome::crash(report.pending, report.kept));
        let wal = Wal::open(vfs.clone(), Path::new(DIR), opts.clone())
            .map_err(|e| format!("round {round} {mode:?}: reopen: {e}"))?;
        let live_first = wal.recovery().first_lsn;
        if wal.recovery().last_lsn < acked {
            return Err(format!(
                "round {round} {mode:?}: acknowledged record {acked} lost"
            ));
        }
        drop(wal);
        check_archive(&vfs, &archived, live_first, mode)
            .map_err(|e| format!("round {round} {e}"))?;
    }
    // Archive and live log together replay every record from 1, each exactly as written.
    let mut all = records_in(&vfs, Path::new(ARCHIVE), &opts)?;
    let live = records_in(&vfs, Path::new(DIR), &opts)?;
    let next = all.last().map_or(1, |(l, _)| l.get() + 1);
    all.extend(live.into_iter().filter(|(l, _)| l.get() >= next));
    for (i, (lsn, payload)) in all.iter().enumerate() {
        if lsn.get() != i as u64 + 1 {
            return Err(format!("archive + log: position {i} holds record {lsn}"));
        }
        if lens
            .get(&lsn.get())
            .is_some_and(|len| *payload != record(lsn.get(), *len))
        {
            return Err(format!(
                "archive + log: record {lsn} differs from what was written"
            ));
        }
    }
    if (all.len() as u64) < acked.get() {
        return Err(format!(
            "archive + log end at {}, before acknowledged {acked}",
            all.len()
        ));
    }
    Ok(outcome)
}

#[test]
fn archived_segments_survive_power_cuts_indexed_and_without_gaps() {
    let run = run_seeds("wal archive crash", scaled(300), scenario);
    println!("{run}");
    let ran = run.scenarios;
    run.assert_dropping(10);
    assert!(ran >= 300);
}
