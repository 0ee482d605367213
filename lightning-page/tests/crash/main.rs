//! Crash suite of lightning-page: seeded power cuts during superblock commits.
//!
//! `LIGHTNING_TEST_SCALE=N` multiplies the scenario count (10,000 by default);
//! `LIGHTNING_TEST_SEED=S` starts at seed `S` to replay a failure.

#![cfg(test)] // test-only code throughout: clippy treats helpers like test functions

use std::collections::BTreeSet;
use std::path::Path;

use lightning_page::vfs::{CrashMode, CrashVfs, Fault, FaultKind, FaultOp};
use lightning_page::{
    Error, Lsn, OpenOptions, PageAllocator, PageBuf, PageFile, PageId, PageSize, PageType,
    Superblock,
};
use lightning_testkit::{Outcome, Rng, run_seeds, scaled};

const PATH: &str = "db/data.ldb";

/// The checkpoint LSN recorded with generation `g`, to check that a superblock's fields
/// belong together.
fn lsn_of(g: u64) -> Lsn {
    Lsn::new(g * 1000 + 7)
}

/// The payload checkpoint `g` writes to page `id`: whoever reads the page back can tell
/// which checkpoint wrote it and that it sits where it was written.
fn tag(g: u64, id: u64) -> Vec<u8> {
    let mut p = g.to_le_bytes().to_vec();
    p.extend_from_slice(&id.to_le_bytes());
    p.extend(Rng::new(g << 32 ^ id).bytes(usize::try_from(id % 97).unwrap_or(0)));
    p
}

/// Checks the image recovered after a cut: its superblock belongs to a generation that was
/// attempted and is at least the acknowledged one, its fields belong together, and every
/// data page of it holds what the checkpoint that wrote it put there (`written_by[i]`:
/// the commit that wrote page `i + 2`).
fn check_image(
    file: &PageFile,
    mode: CrashMode,
    acked: Option<u64>,
    attempted: u64,
    ps: PageSize,
    written_by: &[u64],
) -> Result<(), String> {
    let sb = file.superblock();
    if acked.is_some_and(|a| sb.generation < a) {
        return Err(format!(
            "{mode:?}: opened generation {} but {acked:?} was acknowledged",
            sb.generation
        ));
    }
    if sb.generation > attempted {
        return Err(format!(
            "{mode:?}: generation {} was never written",
            sb.generation
        ));
    }
    if sb.generation > 0 && sb.checkpoint_lsn != lsn_of(sb.generation) {
        return Err(format!(
            "{mode:?}: generation {} carries a foreign LSN",
            sb.generation
        ));
    }
    if sb.page_size != ps {
        return Err(format!("{mode:?}: page size changed"));
    }
    for id in 2..sb.page_count {
        let wrote = usize::try_from(id - 2)
            .ok()
            .and_then(|i| written_by.get(i))
            .copied()
            .filter(|&w| w <= sb.generation)
            .ok_or_else(|| {
                format!(
                    "{mode:?}: generation {} counts page {id}, which none of its \
                     checkpoints wrote",
                    sb.generation
                )
            })?;
        let (page, _) = file
            .read_page(PageId::new(id), Some(PageType::BTreeLeaf))
            .map_err(|e| {
                format!(
                    "{mode:?}: generation {}, page {id} (written by {wrote}): {e}",
                    sb.generation
                )
            })?;
        if page.payload() != tag(wrote, id).as_slice() {
            return Err(format!(
                "{mode:?}: generation {}, page {id} does not hold what checkpoint \
                 {wrote} wrote",
                sb.generation
            ));
        }
    }
    Ok(())
}

/// One scenario: create a file, commit superblocks (each after writing fresh data pages,
/// copy-on-write: a commit never overwrites a page an earlier one wrote), cut the power at
/// a random I/O call, crash with a random mode, reopen, and check the recovered image:
/// its superblock's fields belong together and every page of it holds what the
/// checkpoint that wrote it put there.
fn superblock_scenario(seed: u64, tally: &mut Tally) -> Result<Outcome, String> {
    let mut rng = Rng::new(seed);
    let vfs = CrashVfs::new(seed);
    let ps = PageSize::ALL[usize::try_from(rng.below(3)).unwrap_or(0)];
    let commits = 1 + rng.below(6);
    let cut_at = rng.below(10 + commits * 7);
    let cut_during_create = rng.chance(5);
    let arm = |vfs: &CrashVfs| {
        vfs.inject(Fault {
            op: FaultOp::Any,
            nth: cut_at,
            permanent: true,
            kind: FaultKind::PowerCut,
        });
    };

    if cut_during_create {
        arm(&vfs);
    }
    let mut acked: Option<u64> = None;
    let mut attempted = 0;
    // written_by[i]: the commit that wrote page i + 2.
    let mut written_by: Vec<u64> = Vec::new();
    if let Ok(file) = PageFile::create(&vfs, Path::new(PATH), ps) {
        acked = Some(0);
        if !cut_during_create {
            arm(&vfs);
        }
        for g in 1..=commits {
            // Fresh data pages, as a checkpoint writes before its superblock.
            let old = file.page_count();
            let pages = old + rng.below(3);
            if file.extend_to(pages).is_err() {
                break;
            }
            for id in old..pages {
                written_by.push(g);
                let mut p = PageBuf::new(ps, PageType::BTreeLeaf);
                let _written = p
                    .set_payload(&tag(g, id))
                    .map(|()| file.write_page(PageId::new(id), g, &mut p));
            }
            attempted = g;
            let sb = Superblock {
                generation: g,
                checkpoint_lsn: lsn_of(g),
                page_count: pages,
                ..file.superblock()
            };
            if file.commit_superblock(sb).is_err() {
                break;
            }
            acked = Some(g);
        }
        // The next checkpoint is under way when the power goes (if it has not gone yet):
        // its pages are written but not synced.
        let old = file.page_count();
        let pages = old + 1 + rng.below(3);
        if acked == Some(commits) && file.extend_to(pages).is_ok() {
            for id in old..pages {
                let mut p = PageBuf::new(ps, PageType::BTreeLeaf);
                let _written = p
                    .set_payload(&tag(commits + 1, id))
                    .map(|()| file.write_page(PageId::new(id), commits + 1, &mut p));
            }
        }
    }
    let mode = CrashMode::from_index(rng.next_u64());
    let report = vfs.crash(mode);

    match PageFile::open(&vfs, Path::new(PATH), OpenOptions::default()) {
        Ok(file) => {
            let sb = file.superblock();
            check_image(&file, mode, acked, attempted, ps, &written_by)?;
            tally.pages_checked += sb.page_count - 2;
            PageAllocator::load(&file).map_err(|e| format!("{mode:?}: allocator: {e}"))?;
            if acked.is_some_and(|a| sb.generation > a) {
                tally.unacked_survived += 1;
            } else if attempted > acked.unwrap_or(0) {
                tally.unacked_lost += 1;
            } else {
                tally.completed += 1;
            }
        }
        // Creation never completed: no file at all is the only acceptable outcome.
        Err(Error::Io { source, .. })
            if acked.is_none() && source.kind() == std::io::ErrorKind::NotFound =>
        {
            tally.no_file += 1;
        }
        Err(e) => return Err(format!("{mode:?}: reopen failed (acked {acked:?}): {e}")),
    }
    Ok(Outcome::crash(report.pending, report.kept))
}

/// How the scenarios ended, to show the cuts land everywhere that matters.
#[derive(Debug, Default)]
struct Tally {
    /// Power cut before creation finished; no file afterwards.
    no_file: u64,
    /// A commit was interrupted and its superblock did not survive.
    unacked_lost: u64,
    /// A commit was interrupted after its superblock write, which survived the cut.
    unacked_survived: u64,
    /// Every commit returned before the cut.
    completed: u64,
    /// Data pages of recovered images read back and compared.
    pages_checked: u64,
}

#[test]
fn superblock_torture_power_cuts_during_alternating_commits() {
    let mut tally = Tally::default();
    let run = run_seeds("superblock torture", scaled(10_000), |seed| {
        superblock_scenario(seed, &mut tally)
    });
    println!("{run}; {tally:?}");
    assert_eq!(run.scenarios, scaled(10_000), "{run}");
    // Every kind of outcome must occur, or the torture is not reaching the interesting cuts.
    let n = tally.no_file + tally.unacked_lost + tally.unacked_survived + tally.completed;
    assert_eq!(n, run.scenarios, "{tally:?}");
    for count in [
        tally.no_file,
        tally.unacked_lost,
        tally.unacked_survived,
        tally.completed,
    ] {
        assert!(
            count * 200 > run.scenarios,
            "an outcome below 0.5 %: {tally:?}"
        );
    }
    // Recovered images hold data pages (about one per scenario per commit), and the cuts
    // really lose unsynced writes.
    assert!(tally.pages_checked > run.scenarios, "{tally:?}");
    run.assert_dropping(40);
}

/// Builds a file whose generation 1 holds 600 tagged pages, frees every other one, and
/// returns the pieces (with the page ids), ready for checkpoint 2.
fn before_second_checkpoint(seed: u64) -> (CrashVfs, PageFile, PageAllocator, Vec<PageId>) {
    let vfs = CrashVfs::new(seed);
    let file = PageFile::create(&vfs, Path::new(PATH), PageSize::MIN).unwrap();
    let mut alloc = PageAllocator::load(&file).unwrap();
    let ids: Vec<PageId> = (0..600).map(|_| alloc.allocate()).collect();
    file.extend_to(alloc.page_count()).unwrap();
    for id in &ids {
        let mut p = PageBuf::new(PageSize::MIN, PageType::BTreeLeaf);
        p.set_payload(&id.get().to_le_bytes()).unwrap();
        file.write_page(*id, alloc.generation(), &mut p).unwrap();
    }
    alloc.checkpoint(&file, None, Lsn::new(1)).unwrap();
    for id in ids.iter().step_by(2) {
        alloc.free(*id).unwrap();
    }
    (vfs, file, alloc, ids)
}

/// A whole checkpoint (free list + superblock) cut at every one of its I/O calls in turn,
/// under every crash mode: the reopened file holds generation 1 or 2, whole — every page of
/// the image intact, and free, pending and free-list pages exactly the rest.
#[test]
fn checkpoint_cut_at_every_io_call_recovers_a_complete_image() {
    let (vfs, file, mut alloc, _) = before_second_checkpoint(0);
    let before = vfs.io_calls();
    alloc.checkpoint(&file, None, Lsn::new(2)).unwrap();
    let calls = vfs.io_calls() - before;
    assert!(
        calls >= 5,
        "a checkpoint syncs, writes the list, syncs, writes the superblock, syncs"
    );
    let mut outcomes = [0u32; 2];
    let (mut cuts, mut dropping) = (0u64, 0u64);
    for nth in 0..calls {
        for mode in 0..CrashMode::INDEXED {
            let (vfs, file, mut alloc, ids) =
                before_second_checkpoint(nth * CrashMode::INDEXED + mode);
            vfs.inject(Fault {
                op: FaultOp::Any,
                nth,
                permanent: true,
                kind: FaultKind::PowerCut,
            });
            assert!(
                alloc.checkpoint(&file, None, Lsn::new(2)).is_err(),
                "the cut must interrupt the checkpoint"
            );
            let report = vfs.crash(CrashMode::from_index(mode));
            cuts += 1;
            dropping += u64::from(report.dropped() > 0);
            let file = PageFile::open(&vfs, Path::new(PATH), OpenOptions::default()).unwrap();
            let sb = file.superblock();
            let alloc = PageAllocator::load(&file).unwrap();
            let what = format!(
                "cut {nth} {:?} generation {}",
                CrashMode::from_index(mode),
                sb.generation
            );
            let image: BTreeSet<PageId> = match sb.generation {
                1 => ids.iter().copied().collect(),
                2 => ids.iter().copied().skip(1).step_by(2).collect(),
                g => panic!("{what}: generation {g}"),
            };
            assert_eq!(sb.checkpoint_lsn.get(), sb.generation, "{what}");
            for id in &image {
                let (page, _) = file.read_page(*id, Some(PageType::BTreeLeaf)).unwrap();
                assert_eq!(page.payload(), id.get().to_le_bytes(), "{what}: page {id}");
            }
            // Generation 2's freed pages are held by image 1, so they come back pending.
            let pending: BTreeSet<PageId> = alloc.pending_pages().collect();
            let expected_pending: BTreeSet<PageId> = if sb.generation == 2 {
                ids.iter().copied().step_by(2).collect()
            } else {
                BTreeSet::new()
            };
            assert_eq!(pending, expected_pending, "{what}");
            let mut all: BTreeSet<PageId> = image.clone();
            for p in alloc
                .free_pages()
                .chain(alloc.pending_pages())
                .chain(alloc.list_pages().iter().copied())
            {
                assert!(all.insert(p), "{what}: page {p} counted twice");
            }
            assert_eq!(
                all,
                (2..sb.page_count).map(PageId::new).collect(),
                "{what}: pages leaked"
            );
            outcomes[usize::try_from(sb.generation - 1).unwrap()] += 1;
        }
    }
    // Cuts before the superblock write keep generation 1; a cut superblock sync under a
    // mode that keeps pending writes can land generation 2.
    assert!(outcomes[0] > 0 && outcomes[1] > 0, "outcomes {outcomes:?}");
    println!("checkpoint cuts: {dropping} of {cuts} dropped pending operations; {outcomes:?}");
    // And the cuts really lose what the checkpoint had not synced: a cut at one of its
    // syncs finds writes pending, and every mode but `LoseDirOps` may drop them.
    assert!(
        dropping * 100 >= cuts * 25,
        "only {dropping} of {cuts} cuts dropped pending operations"
    );
}
