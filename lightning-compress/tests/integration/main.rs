//! Integration suite of lightning-compress: round trips, scheme choice, predicates on encoded
//! data, and hostile input.

#![cfg(test)] // test-only code throughout: clippy treats helpers like test functions

use lightning_compress::{
    Predicate, Scheme, decode, decode_into, encode, explain, filter, i64_from_key, i64_key,
    scheme_of, sum, sum_selected,
};
use proptest::prelude::*;

mod predicates;

fn round_trip(values: &[u64]) -> Vec<u8> {
    let block = encode(values).unwrap();
    let mut back = Vec::new();
    decode(&block, &mut back).unwrap();
    assert_eq!(back, values, "{}", explain(&block).unwrap());
    // The same values into a caller's buffer (with room to spare; the rest is untouched),
    // and a refusal, writing nothing, when the buffer is one value short.
    let mut buf = vec![u64::MAX - 1; values.len() + 3];
    assert_eq!(decode_into(&block, &mut buf).unwrap(), values.len());
    assert_eq!(&buf[..values.len()], values);
    assert!(buf[values.len()..].iter().all(|v| *v == u64::MAX - 1));
    if let Some(short) = values.len().checked_sub(1) {
        let mut small = vec![7u64; short];
        let err = decode_into(&block, &mut small).unwrap_err();
        assert!(
            matches!(err, lightning_compress::Error::BufferTooSmall { need, have } if need == values.len() && have == short),
            "{err}"
        );
        assert!(small.iter().all(|v| *v == 7));
    }
    block
}

#[test]
fn edge_cases_round_trip() {
    round_trip(&[]);
    round_trip(&[7]);
    round_trip(&[0, u64::MAX]);
    round_trip(&[u64::MAX; 100]);
    round_trip(&[u64::MAX, 0, u64::MAX, 0]);
    let signed: Vec<u64> = [i64::MIN, -1, 0, 1, i64::MAX]
        .iter()
        .map(|v| i64_key(*v))
        .collect();
    let block = round_trip(&signed);
    let mut back = Vec::new();
    decode(&block, &mut back).unwrap();
    assert_eq!(
        back.iter().map(|k| i64_from_key(*k)).collect::<Vec<_>>(),
        vec![i64::MIN, -1, 0, 1, i64::MAX]
    );
}

#[test]
fn a_million_values_round_trip_and_compress() {
    let sorted: Vec<u64> = (0..1_000_000u64).map(|i| 1_700_000_000 + i * 3).collect();
    let block = round_trip(&sorted);
    assert_eq!(scheme_of(&block).unwrap(), Scheme::Delta);
    assert!(
        block.len() < 1000,
        "constant deltas pack to nothing: {} bytes",
        block.len()
    );
    let mut rng = lightning_testkit::Rng::new(5);
    let random: Vec<u64> = (0..1_000_000).map(|_| rng.next_u64()).collect();
    let block = round_trip(&random);
    assert_eq!(scheme_of(&block).unwrap(), Scheme::Plain);
}

/// A dictionary block whose codes point past its dictionary is corrupt, for byte-wide codes
/// (looked up in a padded table) as for wider ones.
#[test]
fn dictionary_codes_past_the_dictionary_are_corrupt() {
    for distinct in [3u64, 300] {
        let values: Vec<u64> = (0..5000u64)
            .map(|i| (i % distinct) * 1_000_000_000_007)
            .collect();
        let mut block = encode(&values).unwrap();
        assert_eq!(scheme_of(&block).unwrap(), Scheme::Dictionary, "{distinct}");
        // The codes end the block: set every bit of a stretch of them.
        let len = block.len();
        block[len - 40..len - 8].fill(0xff);
        let mut out = Vec::new();
        assert!(
            decode(&block, &mut out).is_err(),
            "{distinct} values: codes past the dictionary decoded"
        );
    }
}

#[test]
fn the_chooser_picks_the_obvious_scheme() {
    let cases: Vec<(Vec<u64>, Scheme)> = vec![
        (vec![42; 5000], Scheme::Constant),
        ((0..5000).map(|i| 1_000_000 + i).collect(), Scheme::Delta),
        (
            (0..5000).map(|i| (i / 500) * 1_000_000_007).collect(),
            Scheme::RunLength,
        ),
        (
            (0..5000)
                .map(|i| [3, 1_000_000_000_007, 77, 5_000_000_000_011][i % 4])
                .collect(),
            Scheme::Dictionary,
        ),
        (
            (0..5000).map(|i| (i * 7919) % 1000).collect(),
            Scheme::FrameOfReference,
        ),
        (
            (0..5000)
                .map(|i| {
                    if i % 997 == 0 {
                        u64::MAX - i
                    } else {
                        (i * 7919) % 1000
                    }
                })
                .collect(),
            Scheme::PatchedFrame,
        ),
    ];
    for (values, expected) in cases {
        let block = round_trip(&values);
        assert_eq!(
            scheme_of(&block).unwrap(),
            expected,
            "{}",
            explain(&block).unwrap()
        );
        assert!(
            block.len() < values.len() * 8 / 4,
            "{} should compress 4x+",
            explain(&block).unwrap()
        );
    }
}

fn values() -> impl Strategy<Value = Vec<u64>> {
    prop_oneof![
        proptest::collection::vec(any::<u64>(), 0..2000),
        proptest::collection::vec(0u64..16, 0..2000),
        // Prices and keys far from zero: a frame of reference with a large minimum.
        (
            0u64..u64::MAX / 2,
            proptest::collection::vec(0u64..100_000, 0..3000)
        )
            .prop_map(|(base, v)| v.into_iter().map(|x| base + x).collect()),
        proptest::collection::vec(
            prop_oneof![Just(0u64), Just(u64::MAX), Just(1 << 63)],
            0..500
        ),
        (any::<u64>(), 0u64..5, 0usize..3000).prop_map(|(start, step, n)| (0..n as u64)
            .map(|i| start.wrapping_add(i * step))
            .collect()),
        proptest::collection::vec((any::<u64>(), 1usize..50), 0..60).prop_map(|runs| runs
            .into_iter()
            .flat_map(|(v, n)| std::iter::repeat_n(v, n))
            .collect()),
        (
            proptest::collection::vec(0u64..300, 100..2000),
            proptest::collection::vec((any::<prop::sample::Index>(), any::<u64>()), 0..8)
        )
            .prop_map(|(mut v, outliers)| {
                for (at, x) in outliers {
                    let i = at.index(v.len());
                    v[i] = x;
                }
                v
            }),
    ]
}

fn predicate() -> impl Strategy<Value = Predicate> {
    let c = prop_oneof![any::<u64>(), 0u64..20, Just(0), Just(u64::MAX)];
    prop_oneof![
        c.clone().prop_map(Predicate::Eq),
        c.clone().prop_map(Predicate::Lt),
        c.clone().prop_map(Predicate::Le),
        c.clone().prop_map(Predicate::Gt),
        c.clone().prop_map(Predicate::Ge),
        (c.clone(), c.clone()).prop_map(|(a, b)| Predicate::Between(a.min(b), a.max(b))),
        proptest::collection::vec(c, 0..5).prop_map(Predicate::In),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(u32::try_from(lightning_testkit::scaled(512)).unwrap_or(u32::MAX)))]

    #[test]
    fn every_distribution_round_trips(v in values()) {
        round_trip(&v);
    }

    #[test]
    fn predicates_on_encoded_data_match_decoded(v in values(), p in predicate()) {
        let block = encode(&v).unwrap();
        let sel = filter(&block, &p).unwrap();
        prop_assert_eq!(sel.len(), v.len());
        for (i, x) in v.iter().enumerate() {
            prop_assert_eq!(sel.get(i), p.test(*x), "value {} under {:?} ({})", x, p, explain(&block).unwrap());
        }
    }

    #[test]
    fn sums_on_encoded_data_match_decoded(v in values()) {
        let block = encode(&v).unwrap();
        let want: u128 = v.iter().map(|x| u128::from(*x)).sum();
        prop_assert_eq!(sum(&block).unwrap(), (want, v.len()), "{}", explain(&block).unwrap());
    }

    #[test]
    fn sums_of_selected_values_match_decoded(v in values(), bits in proptest::collection::vec(any::<u64>(), 0..60), sparse in any::<bool>()) {
        let block = encode(&v).unwrap();
        // Dense random bits, or sparse ones (a few per word) as a selective filter leaves.
        let words: Vec<u64> = bits.iter().map(|b| if sparse { b & (b >> 7) & (b >> 13) } else { *b }).collect();
        let picked = |i: usize| words.get(i / 64).is_some_and(|w| w >> (i % 64) & 1 == 1);
        let want: u128 = v.iter().enumerate().filter(|(i, _)| picked(*i)).map(|(_, x)| u128::from(*x)).sum();
        let count = (0..v.len()).filter(|i| picked(*i)).count();
        prop_assert_eq!(sum_selected(&block, &words).unwrap(), (want, count), "{}", explain(&block).unwrap());
    }

    #[test]
    fn damaged_blocks_are_errors_never_panics(v in values(), cut in any::<prop::sample::Index>(), bit in any::<prop::sample::Index>(), junk in proptest::collection::vec(any::<u8>(), 0..300)) {
        let block = encode(&v).unwrap();
        let mut out = Vec::new();
        if !block.is_empty() {
            let n = cut.index(block.len());
            prop_assert!(decode(&block[..n], &mut out).is_err(), "a truncated block must not decode");
            let mut flipped = block.clone();
            let b = bit.index(block.len() * 8);
            flipped[b / 8] ^= 1 << (b % 8);
            out.clear();
            if decode(&flipped, &mut out).is_ok() {
                // Payload bits carry no checksum (segments do): decoding may succeed with
                // other values, but never with more than the block holds.
                prop_assert!(out.len() <= lightning_compress::MAX_VALUES);
            }
            drop(filter(&flipped, &Predicate::Lt(10)));
            drop(sum(&flipped));
            drop(sum_selected(&flipped, &[u64::MAX; 40]));
            prop_assert!(sum(&block[..n]).is_err(), "a truncated block must not sum");
        }
        out.clear();
        drop(decode(&junk, &mut out));
        drop(filter(&junk, &Predicate::Eq(0)));
        drop(sum(&junk));
    }
}

/// Ascending runs (as timestamps and keys are), in half the cases with a step back now and
/// then, some wrapping past `u64::MAX`: the shapes the delta scheme takes, over several
/// 1024-value chunks.
fn ascending() -> impl Strategy<Value = Vec<u64>> {
    (
        prop_oneof![any::<u64>(), 0u64..1000, (u64::MAX - 100_000)..=u64::MAX],
        any::<bool>(),
        proptest::collection::vec((0u64..1000, 0u8..20), 1..4000),
    )
        .prop_map(|(start, backs, steps)| {
            let mut v = start;
            let mut out = vec![v];
            for (step, back) in steps {
                // With `backs`, one step in twenty goes back a little.
                v = if backs && back == 0 {
                    v.wrapping_sub(step / 4)
                } else {
                    v.wrapping_add(step)
                };
                out.push(v);
            }
            out
        })
}

/// Predicates whose constants come from the values, so ranges start and end inside the block.
fn predicate_within(values: Vec<u64>) -> impl Strategy<Value = Predicate> {
    let n = values.len();
    // Any value, or one at a chunk's edge (chunks hold 1024 values).
    let at = prop_oneof![
        0..n,
        prop::sample::select(vec![1023usize, 1024, 2047, 2048, 3071, 3072])
            .prop_map(move |i| i.min(n - 1)),
    ];
    let c = (at, 0u64..3).prop_map(move |(i, off)| values[i].wrapping_add(off).wrapping_sub(1));
    prop_oneof![
        c.clone().prop_map(Predicate::Eq),
        c.clone().prop_map(Predicate::Lt),
        c.clone().prop_map(Predicate::Le),
        c.clone().prop_map(Predicate::Gt),
        c.clone().prop_map(Predicate::Ge),
        (c.clone(), c.clone()).prop_map(|(a, b)| Predicate::Between(a.min(b), a.max(b))),
        (c.clone(), c.clone()).prop_map(|(a, b)| Predicate::Between(a.max(b), a.min(b))),
        proptest::collection::vec(c, 0..4).prop_map(Predicate::In),
    ]
}

#[test]
fn a_range_on_an_ascending_delta_block_selects_one_run() {
    let values: Vec<u64> = (0..10_000u64)
        .map(|i| 1_700_000_000_000 + i * 1000 + i % 7)
        .collect();
    let block = encode(&values).unwrap();
    assert_eq!(scheme_of(&block).unwrap(), Scheme::Delta);
    let (lo, hi) = (values[3_000] + 1, values[7_777]);
    let sel = filter(&block, &Predicate::Between(lo, hi)).unwrap();
    let picked: Vec<usize> = (0..values.len()).filter(|i| sel.get(*i)).collect();
    assert_eq!(picked, (3_001..=7_777).collect::<Vec<_>>());
    assert_eq!(sel.count(), 4_777);
    assert_eq!(
        filter(&block, &Predicate::Gt(u64::MAX - 1))
            .unwrap()
            .count(),
        0
    );
    assert_eq!(filter(&block, &Predicate::Ge(0)).unwrap().count(), 10_000);
    assert_eq!(
        filter(&block, &Predicate::Lt(values[0])).unwrap().count(),
        0
    );
    assert_eq!(
        filter(&block, &Predicate::Le(values[9_999]))
            .unwrap()
            .count(),
        10_000
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(u32::try_from(lightning_testkit::scaled(512)).unwrap_or(u32::MAX)))]

    #[test]
    fn delta_blocks_filter_like_decoded(
        (v, p) in ascending().prop_flat_map(|v| (Just(v.clone()), predicate_within(v))),
        bit in any::<prop::sample::Index>(),
    ) {
        let block = encode(&v).unwrap();
        let sel = filter(&block, &p).unwrap();
        prop_assert_eq!(sel.len(), v.len());
        for (i, x) in v.iter().enumerate() {
            prop_assert_eq!(sel.get(i), p.test(*x), "value {} at {} under {:?} ({})", x, i, p, explain(&block).unwrap());
        }
        // A damaged block that still decodes filters as its decoded values say.
        let mut flipped = block.clone();
        let b = bit.index(block.len() * 8);
        flipped[b / 8] ^= 1 << (b % 8);
        let mut out = Vec::new();
        if decode(&flipped, &mut out).is_ok() {
            let sel = filter(&flipped, &p).unwrap();
            for (i, x) in out.iter().enumerate() {
                prop_assert_eq!(sel.get(i), p.test(*x), "damaged: value {} at {} under {:?}", x, i, p);
            }
        }
    }
}
