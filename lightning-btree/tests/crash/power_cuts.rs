//! Power cuts around checkpoints, through the crash VFS: the durable image opens and checks
//! after a cut, later writes never touch its pages, a cut inside a checkpoint leaves the
//! previous image or the new one, and a damaged newest superblock falls back to the older
//! image, whole. Every suite also shows that its cuts really dropped unsynced writes.

use lightning_page::Lsn;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use lightning_btree::{BTree, Store};
use lightning_page::vfs::{CrashMode, CrashVfs, Fault, FaultKind, FaultOp, OpenMode, Vfs};
use lightning_page::{OpenOptions, PageFile, PageId, PageSize};
use lightning_testkit::{Outcome, Rng, run_seeds, scaled};

use crate::same;

type Model = BTreeMap<Vec<u8>, Vec<u8>>;

const PATH: &str = "data.ldb";

fn tree_on(vfs: &dyn Vfs, frames: u64) -> BTree {
    let file = Arc::new(PageFile::create(vfs, PATH.as_ref(), PageSize::MIN).unwrap());
    BTree::create(Arc::new(Store::open(file, frames * 4096).unwrap())).unwrap()
}

/// The tree of the newest valid superblock.
fn reopen(vfs: &dyn Vfs, frames: u64) -> Result<BTree, String> {
    let file = PageFile::open(vfs, PATH.as_ref(), OpenOptions::default())
        .map_err(|e| format!("reopen: {e}"))?;
    let root = file
        .superblock()
        .catalog_root
        .ok_or("reopened image has no root")?;
    let store = Store::open(Arc::new(file), frames * 4096).map_err(|e| format!("reopen: {e}"))?;
    BTree::open(Arc::new(store), root).map_err(|e| format!("reopen: {e}"))
}

fn churn(tree: &BTree, model: &mut Model, rng: &mut Rng, ops: u64) {
    for _ in 0..ops {
        let k = format!("key{:04}", rng.below(3000)).into_bytes();
        if rng.chance(30) {
            tree.remove(&k).unwrap();
            model.remove(&k);
        } else {
            let len = if rng.chance(3) {
                3000 + rng.below(6000) as usize
            } else {
                rng.below(100) as usize
            };
            let v = rng.bytes(len);
            tree.insert(&k, &v).unwrap();
            model.insert(k, v);
        }
    }
}

fn outcome(report: lightning_page::vfs::CrashReport) -> Outcome {
    Outcome::crash(report.pending, report.kept)
}

#[test]
fn the_checkpoint_image_survives_power_cuts_and_is_never_written_again() {
    // Scenarios whose pool (16 to 63 frames) wrote pages back after the checkpoint.
    let wrote = std::sync::atomic::AtomicU64::new(0);
    let run = run_seeds(
        "btree checkpoint",
        scaled(40),
        |seed| -> Result<Outcome, String> {
            let vfs = CrashVfs::new(seed);
            let mut rng = Rng::new(seed);
            let tree = tree_on(&vfs, 16 + rng.below(48));
            let mut model = BTreeMap::new();
            let n = 500 + rng.below(1500);
            churn(&tree, &mut model, &mut rng, n);
            let cp = tree.checkpoint(Lsn::new(7)).map_err(|e| e.to_string())?;
            let image: BTreeSet<PageId> = tree.check().unwrap().reachable.into_iter().collect();
            assert!(
                cp.dirty_pages
                    .iter()
                    .all(|p| cp.superblock.page_count > p.get())
            );
            let durable = model.clone();
            // Writes after the checkpoint, with evictions writing pages back meanwhile.
            tree.store().record_writes(true);
            let n = 200 + rng.below(800);
            churn(&tree, &mut model, &mut rng, n);
            // Taking what was recorded so far keeps recording.
            let mut written = Vec::new();
            if rng.chance(50) {
                written = tree.store().record_writes(true);
            }
            written.extend(tree.store().record_writes(false));
            // Counted: a check over no writes would prove nothing.
            if !written.is_empty() {
                wrote.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            let touched: Vec<&PageId> = written.iter().filter(|p| image.contains(p)).collect();
            if !touched.is_empty() {
                return Err(format!(
                    "pages of the checkpoint image written after it: {touched:?}"
                ));
            }
            same(&tree, &model)?;
            let mode = match rng.below(5) {
                0 => CrashMode::DropUnsynced,
                1 => CrashMode::RandomPrefix,
                2 => CrashMode::RandomSubset,
                3 => CrashMode::TornWrite { garbage: true },
                _ => CrashMode::Arbitrary,
            };
            drop(tree);
            let first = vfs.crash(mode);
            let tree = reopen(&vfs, 32)?;
            same(&tree, &durable).map_err(|e| format!("after {mode:?}: {e}"))?;
            // The reopened tree works on: copy-on-write from its image, then another checkpoint.
            let mut model = durable;
            churn(&tree, &mut model, &mut rng, 300);
            tree.checkpoint(Lsn::new(8)).map_err(|e| e.to_string())?;
            drop(tree);
            let second = vfs.crash(CrashMode::DropUnsynced);
            same(&reopen(&vfs, 32)?, &model).map_err(|e| format!("second reopen: {e}"))?;
            Ok(outcome(first).and(outcome(second)))
        },
    );
    println!("{run}");
    assert_eq!(run.scenarios, scaled(40), "{run}");
    // Evictions after the checkpoint leave page writes unsynced for the cut to drop.
    run.assert_dropping(60);
    // Most scenarios wrote pages after the checkpoint, so "none of them is an image page"
    // was checked against real writes.
    let wrote = wrote.into_inner();
    assert!(
        wrote * 2 > run.scenarios,
        "only {wrote} of {run} wrote pages after the checkpoint"
    );
}

#[test]
fn a_power_cut_inside_a_checkpoint_leaves_the_previous_image_or_the_new_one() {
    let (mut old, mut new) = (0, 0);
    let run = run_seeds(
        "btree cut inside a checkpoint",
        scaled(100),
        |seed| -> Result<Outcome, String> {
            let vfs = CrashVfs::new(seed);
            let mut rng = Rng::new(seed ^ 0x00c0_ffee);
            let tree = tree_on(&vfs, 16 + rng.below(48));
            let mut model = BTreeMap::new();
            let n = 300 + rng.below(700);
            churn(&tree, &mut model, &mut rng, n);
            tree.checkpoint(Lsn::new(1)).map_err(|e| e.to_string())?;
            let first = model.clone();
            let n = 100 + rng.below(900);
            churn(&tree, &mut model, &mut rng, n);
            // The power goes out at the n-th I/O call of the second checkpoint (page
            // writes, free list, superblock, syncs), or after it when it has fewer; or at
            // one of its first syncs, when the writes before it are all still pending.
            let (op, nth) = match rng.below(3) {
                0 => (FaultOp::Any, rng.below(120)),
                _ => (FaultOp::Sync, rng.below(2)),
            };
            vfs.inject(Fault {
                op,
                nth,
                permanent: true,
                kind: FaultKind::PowerCut,
            });
            let finished = tree.checkpoint(Lsn::new(2)).is_ok();
            drop(tree);
            // Order-keeping modes, and ones that keep any subset of the unsynced writes
            // (whole, or with torn writes among them) in any order.
            let mode = match rng.below(4) {
                0 => CrashMode::RandomPrefix,
                1 => CrashMode::TornWrite {
                    garbage: rng.chance(50),
                },
                2 => CrashMode::RandomSubset,
                _ => CrashMode::Arbitrary,
            };
            let report = vfs.crash(mode);
            let tree = reopen(&vfs, 32).map_err(|e| format!("after {mode:?}: {e}"))?;
            let check = tree.check().map_err(|e| e.to_string())?;
            if !check.is_ok() {
                return Err(format!("after {mode:?} {report:?}: {check}"));
            }
            let all: Vec<(Vec<u8>, Vec<u8>)> = tree
                .iter()
                .collect::<Result<_, _>>()
                .map_err(|e| e.to_string())?;
            if all.iter().map(|(k, v)| (k, v)).eq(first.iter()) && !finished {
                old += 1;
            } else if all.iter().map(|(k, v)| (k, v)).eq(model.iter()) {
                new += 1;
            } else {
                return Err(format!(
                    "after {mode:?} {report:?}: the tree is neither checkpoint ({} entries)",
                    all.len()
                ));
            }
            Ok(outcome(report))
        },
    );
    println!("{run}; previous image {old} times, new image {new} times");
    assert_eq!(run.scenarios, scaled(100), "{run}");
    // Both outcomes occur: the cut really lands inside the checkpoint sometimes.
    assert!(
        old > 0 && new > 0,
        "previous image {old} times, new image {new} times"
    );
    // A cut at one of the checkpoint's syncs finds its writes pending; one after the
    // checkpoint finds nothing to drop.
    run.assert_dropping(30);
}

/// Flips one bit of the superblock in `slot` (page 0 or 1), durably, as media rot would.
fn damage_superblock(vfs: &CrashVfs, slot: PageId, rng: &mut Rng) -> Result<(), String> {
    let at = slot.get() * PageSize::MIN.len() as u64 + rng.below(PageSize::MIN.len() as u64);
    let file = vfs
        .open(PATH.as_ref(), OpenMode::ReadOnly)
        .map_err(|e| e.to_string())?;
    let mut b = [0u8];
    file.read_at(&mut b, at).map_err(|e| e.to_string())?;
    drop(file);
    vfs.corrupt(PATH.as_ref(), at, &[b[0] ^ (1 << rng.below(8))])
        .map_err(|e| e.to_string())
}

#[test]
fn a_damaged_newest_superblock_falls_back_to_the_older_image_whole() {
    let mut rolled_back = 0;
    let run = run_seeds(
        "btree superblock fallback",
        scaled(40),
        |seed| -> Result<Outcome, String> {
            let vfs = CrashVfs::new(seed);
            let mut rng = Rng::new(seed ^ 0x5afe);
            let frames = 16 + rng.below(48);
            let tree = tree_on(&vfs, frames);
            let mut model = BTreeMap::new();
            let n = 300 + rng.below(900);
            churn(&tree, &mut model, &mut rng, n);
            let older = tree
                .checkpoint(Lsn::new(1))
                .map_err(|e| e.to_string())?
                .superblock;
            let at_older = model.clone();
            // The next checkpoint rewrites much of the tree (copy-on-write, so image 1's
            // pages are left alone), then more writes go on, some evicted to the file.
            let n = 200 + rng.below(900);
            churn(&tree, &mut model, &mut rng, n);
            let newer = tree
                .checkpoint(Lsn::new(2))
                .map_err(|e| e.to_string())?
                .superblock;
            let n = 100 + rng.below(600);
            churn(&tree, &mut model, &mut rng, n);
            drop(tree);
            let mode = CrashMode::from_index(rng.next_u64());
            let report = vfs.crash(mode);
            let what = format!("after {mode:?}");
            // The cut kept the newest checkpoint; then its superblock rots.
            let file = PageFile::open(&vfs, PATH.as_ref(), OpenOptions::default())
                .map_err(|e| format!("{what}: {e}"))?;
            if file.superblock() != newer {
                return Err(format!(
                    "{what}: opened {:?}, not {newer:?}",
                    file.superblock()
                ));
            }
            drop(file);
            damage_superblock(&vfs, newer.slot(), &mut rng)?;
            let file = PageFile::open(&vfs, PATH.as_ref(), OpenOptions::default())
                .map_err(|e| format!("{what}, newest superblock damaged: {e}"))?;
            if file.superblock() != older {
                return Err(format!(
                    "{what}: fell back to {:?}, not {older:?}",
                    file.superblock()
                ));
            }
            drop(file);
            let tree = reopen(&vfs, 32)?;
            same(&tree, &at_older).map_err(|e| format!("{what}, older image: {e}"))?;
            rolled_back += 1;
            // The older image is a working tree: writes, a checkpoint and a clean reopen.
            let mut model = at_older;
            churn(&tree, &mut model, &mut rng, 300);
            tree.checkpoint(Lsn::new(3))
                .map_err(|e| format!("{what}: checkpoint after: {e}"))?;
            drop(tree);
            let again = vfs.crash(CrashMode::DropUnsynced);
            same(&reopen(&vfs, 32)?, &model).map_err(|e| format!("{what}, after: {e}"))?;
            Ok(outcome(report).and(outcome(again)))
        },
    );
    println!("{run}");
    assert_eq!(rolled_back, run.scenarios);
    assert_eq!(run.scenarios, scaled(40), "{run}");
    run.assert_dropping(60);
}
