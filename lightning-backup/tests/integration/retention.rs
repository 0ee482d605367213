//! Retention never removes a backup that a kept backup's chain needs, nor archived WAL the
//! recovery window of the kept backups needs (property test over random repositories).

use std::collections::BTreeSet;
use std::path::Path;

use lightning_backup::manifest::{Kind, Manifest};
use lightning_backup::{Repository, Retention, State, prune};
use lightning_page::vfs::{MemVfs, OpenMode, Vfs};
use lightning_wal::Lsn;
use proptest::prelude::*;

fn manifest(id: u64, parent: Option<u64>, created_us: u64) -> Manifest {
    Manifest {
        id,
        kind: if parent.is_some() {
            Kind::Incremental
        } else {
            Kind::Full
        },
        parent,
        database_id: 7,
        page_size: 4096,
        generation: id * 10,
        base_generation: parent.map_or(0, |p| p * 10),
        checkpoint_lsn: Lsn::new(id * 100),
        image_lsn: Lsn::new(id * 100),
        image_time_us: created_us,
        end_lsn: Lsn::new(id * 100 + 5),
        end_time_us: created_us,
        created_us,
        page_count: 2,
        superblock: 0,
        live: Vec::new(),
        extents: Vec::new(),
        pages_len: 0,
        pages_hash: *blake3::hash(b"").as_bytes(),
        wal: Vec::new(),
    }
}

fn write(vfs: &dyn Vfs, dest: &Path, m: &Manifest) {
    vfs.create_dir_all(&dest.join(format!("{:06}", m.id)))
        .unwrap();
    let pages = vfs
        .open(
            &dest.join(format!("{:06}/pages", m.id)),
            OpenMode::CreateNew,
        )
        .unwrap();
    drop(pages);
    let f = vfs
        .open(
            &dest.join(format!("{:06}.manifest", m.id)),
            OpenMode::CreateNew,
        )
        .unwrap();
    f.write_at(m.encode().as_bytes(), 0).unwrap();
}

/// A random history: each backup full or incremental on the one before it.
fn history() -> impl Strategy<Value = Vec<(bool, u64)>> {
    prop::collection::vec((any::<bool>(), 0u64..1_000), 1..14)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    #[test]
    fn pruning_keeps_every_chain_a_kept_backup_needs(
        hist in history(),
        keep_full in prop::option::of(0usize..4),
        max_age in prop::option::of(0u64..3_000),
        incomplete_at in prop::option::of(0usize..14),
    ) {
        let vfs = MemVfs::new();
        let dest: &Path = "repo".as_ref();
        let mut all = Vec::new();
        let mut created = 1_000u64;
        for (i, (full, step)) in hist.iter().enumerate() {
            let id = i as u64 + 1;
            created += step;
            // An incremental builds on the newest complete backup, as `backup` does.
            let parent = if *full { None } else { all.last().map(|m: &Manifest| m.id) };
            let m = manifest(id, parent, created);
            if incomplete_at == Some(i) {
                // An interrupted backup: its marker and no manifest.
                vfs.open(&dest.join(format!("{id:06}.partial")), OpenMode::CreateNew).unwrap();
                continue;
            }
            write(&vfs, dest, &m);
            all.push(m);
        }
        let policy = Retention { keep_full, max_age_us: max_age, now_us: created };
        let report = prune(&vfs, dest, &policy, &[]).unwrap();
        let repo = Repository::open(&vfs, dest).unwrap();
        let kept: BTreeSet<u64> = repo.complete().map(|m| m.id).collect();
        prop_assert_eq!(kept.iter().copied().collect::<Vec<_>>(), report.kept.clone());
        // Every kept backup's chain restores: each link is there.
        for id in &kept {
            let chain = repo.chain(*id);
            prop_assert!(chain.is_ok(), "backup {} lost its chain: {:?}", id, chain.err());
        }
        // What the policy asks for is kept.
        for m in &all {
            let young = max_age.is_some_and(|a| m.created_us >= created.saturating_sub(a));
            let fulls: Vec<u64> = all.iter().filter(|m| m.kind == Kind::Full).map(|m| m.id).collect();
            let in_newest = keep_full.is_some_and(|n| n > 0 && fulls.len().checked_sub(n).and_then(|i| fulls.get(i)).is_none_or(|from| m.id >= *from));
            let keep_all = keep_full.is_none() && max_age.is_none();
            if young || in_newest || keep_all {
                prop_assert!(kept.contains(&m.id), "backup {} should be kept", m.id);
            }
        }
        // Nothing is left half-removed, and an interrupted backup older than the newest
        // complete one is gone.
        for e in repo.entries() {
            if let State::Incomplete = e.state {
                prop_assert!(e.id > all.last().map_or(0, |m| m.id), "stale incomplete backup {} kept", e.id);
            }
        }
        // The archive is kept from the oldest kept backup's checkpoint.
        let oldest = all.iter().filter(|m| kept.contains(&m.id)).map(|m| m.checkpoint_lsn).min();
        prop_assert_eq!(report.archive_kept_from, oldest);
    }
}

#[test]
fn archived_segments_below_the_oldest_kept_backup_are_pruned_and_no_others() {
    use lightning_wal::{Durability, Wal, WalOptions};
    let vfs = std::sync::Arc::new(MemVfs::new());
    let archive: &Path = "archive".as_ref();
    let wal = Wal::open(
        vfs.clone(),
        "wal".as_ref(),
        WalOptions {
            segment_size: 4096,
            preallocate: false,
            archive_dir: Some(archive.into()),
            ..WalOptions::default()
        },
    )
    .unwrap();
    for _ in 0..400 {
        wal.append(1, &[7u8; 100], Durability::None).unwrap();
    }
    wal.sync().unwrap();
    wal.truncate_before(Lsn::new(380)).unwrap();
    let before = lightning_wal::load_index(&*vfs, archive).unwrap();
    assert!(before.len() > 5);
    let dest: &Path = "repo".as_ref();
    // One kept backup whose checkpoint is at LSN 200 (manifest ids give LSN id * 100).
    write(&*vfs, dest, &manifest(2, None, 10));
    let report = prune(&*vfs, dest, &Retention::default(), &[archive.into()]).unwrap();
    let after = lightning_wal::load_index(&*vfs, archive).unwrap();
    assert_eq!(report.archive_kept_from, Some(Lsn::new(200)));
    assert_eq!(report.archived_segments_removed, before.len() - after.len());
    assert!(report.archived_segments_removed > 0);
    assert!(
        after.first().is_some_and(|s| s.first <= Lsn::new(200)),
        "the segment holding LSN 200 stays"
    );
    assert!(
        before.iter().filter(|s| s.last < Lsn::new(200)).count()
            == report.archived_segments_removed
    );
    // Every record from 200 on is still readable from the archive and the log.
    let (_, records) =
        lightning_wal::read_only(vfs.clone(), archive, 1 << 20, Lsn::new(200)).unwrap();
    assert_eq!(
        records.map(|r| r.unwrap()).next().map(|r| r.lsn),
        Some(Lsn::new(200))
    );
}
