//! I/O faults along a B+tree workload: the N-th I/O call fails — once, or for good — for
//! every N along inserts, replacements, overflow values, removals, splits, merges and
//! checkpoints, through small buffer pools whose evictions write pages back at every
//! step. After each failure the operation either did all it was asked or nothing:
//! `check()` is clean (which includes the allocator cross-check: no page leaked, none both
//! reachable and free) and the tree equals the model; a later checkpoint works unless
//! the page file refused writes for good, in which case the store refuses them too; and
//! a power cut after it all reopens to a state some checkpoint recorded.

use lightning_page::Lsn;
use std::collections::BTreeMap;
use std::sync::Arc;

use lightning_btree::{BTree, Error, Store};
use lightning_page::vfs::{CrashMode, CrashVfs, Fault, FaultKind, FaultOp, Vfs};
use lightning_page::{OpenOptions, PageFile, PageSize};
use lightning_testkit::{Rng, scaled};

use crate::same;

type Model = BTreeMap<Vec<u8>, Vec<u8>>;

#[derive(Debug, Clone)]
enum Step {
    Insert(Vec<u8>, Vec<u8>),
    Remove(Vec<u8>),
    Checkpoint,
    /// A repacking step from the branch holding this key.
    Repack(Vec<u8>),
}

fn key(rng: &mut Rng) -> Vec<u8> {
    format!("key{:04}", rng.below(900)).into_bytes()
}

fn value(rng: &mut Rng) -> Vec<u8> {
    let len = if rng.chance(6) {
        3_000 + rng.below(7_000) as usize
    } else {
        rng.below(240) as usize
    };
    rng.bytes(len)
}

/// The steps before the faults (a tree with a durable image to copy from) and the steps
/// the faults hit.
fn workload(seed: u64) -> (Vec<Step>, Vec<Step>) {
    let mut rng = Rng::new(seed);
    let mut setup: Vec<Step> = (0..700)
        .map(|_| Step::Insert(key(&mut rng), value(&mut rng)))
        .collect();
    setup.push(Step::Checkpoint);
    let work = (0..320)
        .map(|i| {
            if i % 80 == 79 {
                Step::Checkpoint
            } else if rng.chance(35) {
                Step::Remove(key(&mut rng))
            } else {
                Step::Insert(key(&mut rng), value(&mut rng))
            }
        })
        .collect();
    (setup, work)
}

/// Long keys (300 to 900 bytes: 4 to 12 a page) make a tree four levels deep whose splits
/// and merges change several pages of the current generation in place in one operation
/// before a step that can fail: the undo must put every one of them back.
fn deep_workload(seed: u64) -> (Vec<Step>, Vec<Step>) {
    let mut rng = Rng::new(seed);
    let key = |rng: &mut Rng| {
        let n = rng.below(400);
        let mut k = format!("k{n:04}").into_bytes();
        k.resize(300 + (n as usize * 37) % 600, b'.');
        k
    };
    let mut setup: Vec<Step> = (0..250)
        .map(|_| {
            let k = key(&mut rng);
            let len = rng.below(60) as usize;
            Step::Insert(k, rng.bytes(len))
        })
        .collect();
    setup.push(Step::Checkpoint);
    let work = (0..240)
        .map(|i| {
            if i % 120 == 119 {
                Step::Checkpoint
            } else if rng.chance(40) {
                Step::Remove(key(&mut rng))
            } else {
                let k = key(&mut rng);
                let len = rng.below(60) as usize;
                Step::Insert(k, rng.bytes(len))
            }
        })
        .collect();
    (setup, work)
}

/// A tree left loose by removing two keys in three, then a repacking walk (each step
/// rewrites a branch's leaves, frees the old ones and may merge branches) among a few
/// inserts and checkpoints: the faults hit repacking.
fn loose_workload(seed: u64) -> (Vec<Step>, Vec<Step>) {
    let mut rng = Rng::new(seed);
    let key = |i: u64| format!("key{i:04}").into_bytes();
    let mut setup: Vec<Step> = (0..900)
        .map(|i| {
            let len = 100 + rng.below(100) as usize;
            Step::Insert(key(i), rng.bytes(len))
        })
        .collect();
    setup.push(Step::Checkpoint);
    setup.extend(
        (0..900)
            .filter(|i| i % 3 != 0)
            .map(|i| Step::Remove(key(i))),
    );
    setup.push(Step::Checkpoint);
    let mut work = Vec::new();
    for j in 0..30 {
        work.push(Step::Repack(key(j * 30)));
        if j % 10 == 9 {
            work.push(Step::Checkpoint);
        } else if j % 3 == 0 {
            work.push(Step::Insert(key(j * 30 + 1), rng.bytes(150)));
        }
    }
    (setup, work)
}

type Workload = fn(u64) -> (Vec<Step>, Vec<Step>);

fn create(vfs: &dyn Vfs, frames: u64) -> BTree {
    let file = Arc::new(PageFile::create(vfs, "data.ldb".as_ref(), PageSize::MIN).unwrap());
    BTree::create(Arc::new(Store::open(file, frames * 4096).unwrap())).unwrap()
}

fn reopen(vfs: &dyn Vfs) -> Result<BTree, String> {
    let file = PageFile::open(vfs, "data.ldb".as_ref(), OpenOptions::default())
        .map_err(|e| format!("reopen: {e}"))?;
    let root = file
        .superblock()
        .catalog_root
        .ok_or("reopened image has no root")?;
    let store = Store::open(Arc::new(file), 64 * 4096).map_err(|e| format!("reopen: {e}"))?;
    BTree::open(Arc::new(store), root).map_err(|e| format!("reopen: {e}"))
}

fn apply(tree: &BTree, step: &Step, lsn: u64) -> Result<(), Error> {
    match step {
        Step::Insert(k, v) => tree.insert(k, v),
        Step::Remove(k) => tree.remove(k).map(drop),
        Step::Checkpoint => tree.checkpoint(Lsn::new(lsn)).map(drop),
        Step::Repack(from) => tree.repack_step(from).map(drop),
    }
}

fn model_apply(model: &mut Model, step: &Step) {
    match step {
        Step::Insert(k, v) => {
            model.insert(k.clone(), v.clone());
        }
        Step::Remove(k) => {
            model.remove(k);
        }
        Step::Checkpoint | Step::Repack(_) => {}
    }
}

fn poisoned(tree: &BTree) -> bool {
    tree.store().poisoned().is_some()
}

/// What one faulted run saw.
#[derive(Debug, Default, Clone, Copy)]
struct Outcome {
    /// Operations that returned an error.
    failed: u64,
    /// Whether the store ended poisoned.
    poisoned: bool,
}

/// Runs the workload with `fault` armed after the setup, then checks everything.
fn run(
    workload: Workload,
    seed: u64,
    frames: u64,
    fault: Option<Fault>,
    crash: CrashMode,
) -> Result<Outcome, String> {
    let (setup, work) = workload(seed);
    let vfs = CrashVfs::new(seed);
    let tree = create(&vfs, frames);
    let mut model = Model::new();
    for step in &setup {
        apply(&tree, step, 1).map_err(|e| format!("setup: {e}"))?;
        model_apply(&mut model, step);
    }
    // Images a power cut may bring back: the last acknowledged checkpoint, and any that
    // reported failure after it (its superblock may still have reached the disk).
    let mut durable: Vec<Model> = vec![model.clone()];
    let mut outcome = Outcome::default();
    if let Some(f) = fault {
        vfs.inject(f);
    }
    let permanent = fault.is_some_and(|f| f.permanent);
    for (i, step) in work.iter().enumerate() {
        let lsn = 2 + i as u64;
        match apply(&tree, step, lsn) {
            Ok(()) => {
                model_apply(&mut model, step);
                if matches!(step, Step::Checkpoint) {
                    durable = vec![model.clone()];
                }
            }
            Err(e) => {
                outcome.failed += 1;
                if matches!(step, Step::Checkpoint) {
                    durable.push(model.clone());
                }
                if matches!(e, Error::Poisoned { .. }) || poisoned(&tree) {
                    outcome.poisoned = true;
                    break;
                }
                if permanent {
                    break;
                }
                // A transient fault: the failed step changed nothing.
                same(&tree, &model).map_err(|m| format!("after failed step {i} ({e}): {m}"))?;
            }
        }
    }
    vfs.clear_faults();
    if outcome.poisoned {
        // Refused for good, and said so.
        match tree.insert(b"after", b"poison") {
            Err(Error::Poisoned { .. }) => {}
            other => return Err(format!("a poisoned store took an insert: {other:?}")),
        }
    } else {
        same(&tree, &model).map_err(|m| format!("after the faults: {m}"))?;
        let file_refuses = tree.store().file().is_poisoned();
        match tree.checkpoint(Lsn::new(1_000)) {
            Ok(_) => {
                if file_refuses {
                    return Err("a checkpoint succeeded on a poisoned page file".into());
                }
                durable = vec![model.clone()];
            }
            Err(e) => {
                // Only a page file that refuses writes for good may refuse it, and then the
                // store must refuse writes too (never both continue and refuse).
                if !file_refuses {
                    return Err(format!(
                        "the checkpoint after a transient fault failed: {e}"
                    ));
                }
                if tree.insert(b"after", b"refused").is_ok() {
                    return Err(
                        "the store took an insert after its checkpoint failed for good".into(),
                    );
                }
                outcome.poisoned = true;
            }
        }
    }
    drop(tree);
    vfs.crash(crash);
    let tree = reopen(&vfs)?;
    let report = tree
        .check()
        .map_err(|e| format!("check after reopen: {e}"))?;
    if !report.is_ok() {
        return Err(format!("after the power cut ({crash:?}): {report}"));
    }
    let back: Model = tree
        .iter()
        .collect::<Result<_, _>>()
        .map_err(|e| format!("scan after reopen: {e}"))?;
    if !durable.contains(&back) {
        return Err(format!(
            "after the power cut ({crash:?}) the tree ({} entries) matches none of the {} images a checkpoint recorded",
            back.len(),
            durable.len()
        ));
    }
    // It works on.
    tree.insert(b"more", b"work")
        .and_then(|()| tree.checkpoint(Lsn::new(2_000)).map(drop))
        .map_err(|e| format!("after reopen: {e}"))?;
    Ok(outcome)
}

/// How many I/O calls the faulted part of the workload makes with no fault.
fn io_calls(workload: Workload, seed: u64, frames: u64) -> u64 {
    let (setup, work) = workload(seed);
    let vfs = CrashVfs::new(seed);
    let tree = create(&vfs, frames);
    for step in &setup {
        apply(&tree, step, 1).unwrap();
    }
    let before = vfs.io_calls();
    for step in &work {
        apply(&tree, step, 2).unwrap();
    }
    vfs.io_calls() - before
}

/// Every position of `op` faults along the workload, for pools of 8, 12 and 24 frames.
fn every_position(op: FaultOp, permanent: bool, kind: FaultKind) {
    every_position_of(workload, &[8, 12, 24], 600, op, permanent, kind);
}

/// Up to `positions` positions of `op`, evenly spread, fault along `workload` for each
/// pool size in `pools`.
fn every_position_of(
    workload: Workload,
    pools: &[u64],
    positions: u64,
    op: FaultOp,
    permanent: bool,
    kind: FaultKind,
) {
    let crashes = [
        CrashMode::DropUnsynced,
        CrashMode::RandomSubset,
        CrashMode::TornWrite { garbage: true },
    ];
    let mut runs = 0u64;
    let mut failing = 0u64;
    let mut poisoned = 0u64;
    let mut errors = Vec::new();
    for (v, &frames) in pools.iter().enumerate() {
        for s in 0..scaled(1) {
            let seed = 100 * v as u64 + s;
            let calls = io_calls(workload, seed, frames);
            let step = (calls / positions).max(1);
            let mut n = 0;
            while n < calls {
                let fault = Fault {
                    op,
                    nth: n,
                    permanent,
                    kind,
                };
                let crash = crashes[(n / step) as usize % crashes.len()];
                match run(workload, seed, frames, Some(fault), crash) {
                    Ok(outcome) => {
                        runs += 1;
                        failing += u64::from(outcome.failed > 0);
                        poisoned += u64::from(outcome.poisoned);
                        if outcome.failed == 0 && op != FaultOp::Any {
                            // Past the last call of this kind: no later position fires.
                            break;
                        }
                    }
                    Err(e) => {
                        runs += 1;
                        errors.push(format!(
                            "  {frames} frames, seed {seed}, fault {fault:?}: {e}"
                        ));
                        if errors.len() >= 8 {
                            break;
                        }
                    }
                }
                n += step;
            }
        }
    }
    assert!(
        errors.is_empty(),
        "{} of {runs} faulted runs went wrong:\n{}",
        errors.len(),
        errors.join("\n")
    );
    // The faults really hit operations (a loop whose faults never fire checks nothing).
    assert!(
        failing * 2 > runs,
        "only {failing} of {runs} runs saw a failed operation"
    );
    eprintln!(
        "{op:?} permanent={permanent} {kind:?}: {runs} runs, {failing} with failed operations, {poisoned} poisoned"
    );
}

#[test]
fn fault_free_runs_are_clean() {
    for (seed, frames) in [(0, 8), (1, 12), (2, 24)] {
        run(workload, seed, frames, None, CrashMode::RandomSubset).unwrap();
        run(deep_workload, seed, frames, None, CrashMode::RandomSubset).unwrap();
        run(loose_workload, seed, frames, None, CrashMode::RandomSubset).unwrap();
    }
}

/// The walk really repacks (a fault loop over steps that change nothing checks nothing).
#[test]
fn the_loose_workload_repacks() {
    let (setup, work) = loose_workload(0);
    let tree = create(&lightning_page::vfs::MemVfs::new(), 64);
    for step in &setup {
        apply(&tree, step, 1).unwrap();
    }
    let before = tree.check().unwrap().leaves;
    let mut freed = 0;
    for step in &work {
        if let Step::Repack(from) = step {
            freed += tree.repack_step(from).unwrap().freed;
        } else {
            apply(&tree, step, 2).unwrap();
        }
    }
    assert!(freed * 3 > before, "{freed} of {before} leaves freed");
}

#[test]
fn a_transient_error_while_repacking_loses_or_damages_nothing() {
    every_position_of(
        loose_workload,
        &[8, 16],
        400,
        FaultOp::Any,
        false,
        FaultKind::Io,
    );
}

#[test]
fn a_permanent_error_while_repacking_loses_or_damages_nothing() {
    every_position_of(
        loose_workload,
        &[8, 16],
        400,
        FaultOp::Any,
        true,
        FaultKind::Io,
    );
}

#[test]
fn a_transient_error_at_any_io_call_loses_or_damages_nothing() {
    every_position(FaultOp::Any, false, FaultKind::Io);
}

#[test]
fn a_permanent_error_at_any_io_call_loses_or_damages_nothing() {
    every_position(FaultOp::Any, true, FaultKind::Io);
}

#[test]
fn a_full_disk_at_any_write_loses_or_damages_nothing() {
    every_position(FaultOp::Write, false, FaultKind::NoSpace);
}

#[test]
fn a_failed_sync_anywhere_poisons_cleanly() {
    every_position(FaultOp::Sync, false, FaultKind::Io);
}

#[test]
fn a_transient_error_in_a_deep_tree_loses_or_damages_nothing() {
    every_position_of(
        deep_workload,
        &[8, 16],
        u64::MAX,
        FaultOp::Any,
        false,
        FaultKind::Io,
    );
}
