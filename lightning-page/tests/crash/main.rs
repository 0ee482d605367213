//! Crash suite of lightning-page: seeded power cuts during superblock commits.
//!
//! `LIGHTNING_TEST_SCALE=N` multiplies the scenario count (10,000 by default);
//! `LIGHTNING_TEST_SEED=S` starts at seed `S` to replay a failure.

#![cfg(test)] // test-only code throughout: clippy treats helpers like test functions

use std::collections::BTreeSet;
use std::path::Path;

use lightning_page::vfs::{CrashMode, CrashVfs, Fault, FaultKind, FaultOp};
use lightning_page::{
    Error, OpenOptions, PageAllocator, PageBuf, PageFile, PageId, PageSize, PageType, Superblock,
};
use lightning_testkit::{Rng, run_seeds, scaled};

const PATH: &str = "db/data.ldb";

/// The checkpoint LSN recorded with generation `g`, to check that a superblock's fields
/// belong together.
fn lsn_of(g: u64) -> u64 {
    g * 1000 + 7
}

/// One scenario: create a file, commit superblocks (with data pages between them), cut the
/// power at a random I/O call, crash with a random mode, reopen.
fn superblock_scenario(seed: u64, tally: &mut Tally) -> Result<(), String> {
    let mut rng = Rng::new(seed);
    let vfs = CrashVfs::new(seed);
    let ps = PageSize::ALL[usize::try_from(rng.below(3)).unwrap_or(0)];
    let commits = 1 + rng.below(6);
    let cut_at = rng.below(8 + commits * 6);
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
    if let Ok(file) = PageFile::create(&vfs, Path::new(PATH), ps) {
        acked = Some(0);
        if !cut_during_create {
            arm(&vfs);
        }
        for g in 1..=commits {
            // Some data pages, as a checkpoint writes before its superblock.
            let pages = file.page_count() + rng.below(3);
            if file.extend_to(pages).is_err() {
                break;
            }
            for id in 2..pages {
                let mut p = PageBuf::new(ps, PageType::BTreeLeaf);
                let _written = p
                    .set_payload(&g.to_le_bytes())
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
    }
    let mode = CrashMode::from_index(rng.next_u64());
    vfs.crash(mode);

    match PageFile::open(&vfs, Path::new(PATH), OpenOptions::default()) {
        Ok(file) => {
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
            PageAllocator::load(&file).map_err(|e| format!("{mode:?}: allocator: {e}"))?;
            if acked.is_some_and(|a| sb.generation > a) {
                tally.unacked_survived += 1;
            } else if attempted > acked.unwrap_or(0) {
                tally.unacked_lost += 1;
            } else {
                tally.completed += 1;
            }
            Ok(())
        }
        // Creation never completed: no file at all is the only acceptable outcome.
        Err(Error::Io { source, .. })
            if acked.is_none() && source.kind() == std::io::ErrorKind::NotFound =>
        {
            tally.no_file += 1;
            Ok(())
        }
        Err(e) => Err(format!("{mode:?}: reopen failed (acked {acked:?}): {e}")),
    }
}

/// How the scenarios ended, to show the cuts land everywhere that matters.
#[derive(Debug, Default)]
struct Tally {
    /// Power cut before creation finished; no file afterwards.
    no_file: u32,
    /// A commit was interrupted and its superblock did not survive.
    unacked_lost: u32,
    /// A commit was interrupted after its superblock write, which survived the cut.
    unacked_survived: u32,
    /// Every commit returned before the cut.
    completed: u32,
}

#[test]
fn superblock_torture_power_cuts_during_alternating_commits() {
    let mut tally = Tally::default();
    let ran = run_seeds("superblock torture", scaled(10_000), |seed| {
        superblock_scenario(seed, &mut tally)
    });
    assert!(ran >= 10_000);
    println!("superblock torture: {ran} scenarios, {tally:?}");
    // Every kind of outcome must occur, or the torture is not reaching the interesting cuts.
    let n =
        u64::from(tally.no_file + tally.unacked_lost + tally.unacked_survived + tally.completed);
    assert_eq!(n, ran, "{tally:?}");
    for count in [
        tally.no_file,
        tally.unacked_lost,
        tally.unacked_survived,
        tally.completed,
    ] {
        assert!(
            u64::from(count) * 200 > ran,
            "an outcome below 0.5 %: {tally:?}"
        );
    }
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
    alloc.checkpoint(&file, None, 1).unwrap();
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
    alloc.checkpoint(&file, None, 2).unwrap();
    let calls = vfs.io_calls() - before;
    assert!(
        calls >= 5,
        "a checkpoint syncs, writes the list, syncs, writes the superblock, syncs"
    );
    let mut outcomes = [0u32; 2];
    for nth in 0..calls {
        for mode in 0..6 {
            let (vfs, file, mut alloc, ids) = before_second_checkpoint(nth * 6 + mode);
            vfs.inject(Fault {
                op: FaultOp::Any,
                nth,
                permanent: true,
                kind: FaultKind::PowerCut,
            });
            assert!(
                alloc.checkpoint(&file, None, 2).is_err(),
                "the cut must interrupt the checkpoint"
            );
            vfs.crash(CrashMode::from_index(mode));
            let file = PageFile::open(&vfs, Path::new(PATH), OpenOptions::default()).unwrap();
            let sb = file.superblock();
            let alloc = PageAllocator::load(&file).unwrap();
            let what = format!("cut {nth} mode {mode} generation {}", sb.generation);
            let image: BTreeSet<PageId> = match sb.generation {
                1 => ids.iter().copied().collect(),
                2 => ids.iter().copied().skip(1).step_by(2).collect(),
                g => panic!("{what}: generation {g}"),
            };
            assert_eq!(sb.checkpoint_lsn, sb.generation, "{what}");
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
}
