//! Model test: pin, modify, release, flush and evict sequences against a map of what each
//! page last held. Every page read back is bit-identical to what was last written.

use std::collections::BTreeMap;

use lightning_page::{PageId, PageType};
use proptest::prelude::*;

use crate::pool;

#[derive(Debug, Clone)]
enum Op {
    Write {
        page: u64,
        byte: u8,
        len: usize,
    },
    Read {
        page: u64,
    },
    Flush,
    /// Hold several pins at once, then release them.
    HoldMany {
        pages: Vec<u64>,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => (2u64..40, any::<u8>(), 0usize..300).prop_map(|(page, byte, len)| Op::Write { page, byte, len }),
        5 => (2u64..40).prop_map(|page| Op::Read { page }),
        1 => Just(Op::Flush),
        1 => proptest::collection::vec(2u64..40, 1..4).prop_map(|pages| Op::HoldMany { pages }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(u32::try_from(lightning_testkit::scaled(256)).unwrap_or(u32::MAX)))]

    #[test]
    fn pages_read_back_as_last_written(frames in 4u64..8, ops in proptest::collection::vec(op(), 1..200)) {
        let pool = pool(frames, 40);
        let mut model: BTreeMap<u64, Vec<u8>> = BTreeMap::new();
        for op in &ops {
            match op {
                Op::Write { page, byte, len } => {
                    let data = vec![*byte; *len];
                    let mut g = if model.contains_key(page) {
                        pool.pin_mut(PageId::new(*page)).unwrap()
                    } else {
                        pool.create(PageId::new(*page), PageType::Overflow).unwrap()
                    };
                    g.page_mut().set_payload(&data).unwrap();
                    model.insert(*page, data);
                }
                Op::Read { page } => {
                    if let Some(expected) = model.get(page) {
                        let g = pool.pin(PageId::new(*page)).unwrap();
                        prop_assert_eq!(g.payload(), &expected[..], "page {}", page);
                    } else {
                        prop_assert!(pool.pin(PageId::new(*page)).is_err(), "never-written page {} read", page);
                    }
                }
                Op::Flush => pool.flush().unwrap(),
                Op::HoldMany { pages } => {
                    let mut held = Vec::new();
                    for p in pages {
                        if model.contains_key(p) && !held.iter().any(|(q, _)| q == p) {
                            held.push((*p, pool.pin(PageId::new(*p)).unwrap()));
                        }
                    }
                    for (p, g) in &held {
                        prop_assert_eq!(g.payload(), &model[p][..]);
                    }
                }
            }
        }
        pool.flush().unwrap();
        for (page, data) in &model {
            let (buf, _) = pool.file().read_page(PageId::new(*page), None).unwrap();
            prop_assert_eq!(buf.payload(), &data[..], "page {} on disk after flush", page);
        }
    }
}
