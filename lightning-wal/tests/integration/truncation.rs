//! `truncate_before(L)` against a model of the segments: it removes exactly the segments
//! whose records all precede `L`, so record `L` stays readable and nothing before the
//! segment holding it is kept.

use std::sync::Arc;

use lightning_page::vfs::{MemVfs, Vfs};
use lightning_wal::{Durability, Lsn, WalOptions};
use proptest::prelude::*;

use crate::{all_records, dir, open, payload, small};

/// The first LSN of every segment in the log directory, oldest first (from the file names).
fn segment_starts(vfs: &MemVfs) -> Vec<u64> {
    let mut starts: Vec<u64> = vfs
        .list(dir())
        .unwrap()
        .iter()
        .filter_map(|p| p.file_stem()?.to_str()?.parse().ok())
        .collect();
    starts.sort_unstable();
    starts
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    /// For every `L` (one or more per log, increasing, as checkpoints advance): the first
    /// record left is at or below `L`, `L` itself reads back, the segment holding `L` is
    /// the first one kept (every segment wholly below `L` went), and a reopened log agrees.
    #[test]
    fn truncation_keeps_the_segment_holding_the_boundary(
        lens in proptest::collection::vec(0usize..2500, 1..40),
        cuts in proptest::collection::vec(0u64..45, 1..4),
        archive in any::<bool>(),
    ) {
        let vfs = Arc::new(MemVfs::new());
        let opts = WalOptions {
            archive_dir: archive.then(|| "db/wal-archive".into()),
            ..small()
        };
        let wal = open(&vfs, &opts).unwrap();
        for (i, len) in lens.iter().enumerate() {
            wal.append(1, &payload(i as u64 + 1, *len), Durability::Immediate).unwrap();
        }
        let last = lens.len() as u64;
        let mut cuts = cuts;
        cuts.sort_unstable();
        for l in cuts {
            let before = segment_starts(&vfs);
            let gone = wal.truncate_before(Lsn::new(l)).unwrap();
            let after = segment_starts(&vfs);
            prop_assert_eq!(&after[..], &before[gone..], "only the oldest segments go");
            // The model: segment i goes when the one after it starts at or below L (all
            // its records precede L); the last (active) segment always stays.
            let model = (0..before.len() - 1).take_while(|&i| before[i + 1] <= l).count();
            prop_assert_eq!(gone, model, "L {}: segments {:?}", l, before);
            let records = all_records(&wal);
            let first = records[0].lsn.get();
            prop_assert_eq!(first, after[0]);
            prop_assert_eq!(records.last().unwrap().lsn.get(), last);
            if (1..=last).contains(&l) {
                prop_assert!(first <= l, "L {l}: first record left {first}");
                let at_l = wal.read_from(Lsn::new(l)).unwrap().next().unwrap().unwrap();
                prop_assert_eq!(at_l.lsn, Lsn::new(l));
                prop_assert_eq!(at_l.payload, payload(l, lens[usize::try_from(l).unwrap() - 1]));
            }
            if archive {
                let index = lightning_wal::load_index(&*vfs, "db/wal-archive".as_ref()).unwrap();
                let covered = index.last().map_or(1, |s| s.last.get() + 1);
                prop_assert_eq!(covered, first, "archive and live log meet");
            }
        }
        drop(wal);
        let wal = open(&vfs, &opts).unwrap();
        let first = all_records(&wal)[0].lsn;
        prop_assert_eq!(wal.recovery().first_lsn, first);
        prop_assert_eq!(wal.recovery().last_lsn, Lsn::new(last));
    }
}
