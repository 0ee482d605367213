//! Predicates on float and string blocks agree with decoding and testing every value.

use lightning_compress::{
    FloatPredicate, StringPredicate, decode_f64, decode_strings, encode_f64, encode_strings,
    filter_f64, filter_strings,
};
use proptest::prelude::*;

fn floats() -> impl Strategy<Value = Vec<f64>> {
    let special = prop_oneof![
        Just(f64::NAN),
        Just(-f64::NAN),
        Just(f64::from_bits(0x7ff8_dead_beef_0001)),
        Just(0.0),
        Just(-0.0),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(f64::MIN_POSITIVE / 2.0),
        Just(f64::MAX),
        Just(f64::MIN),
    ];
    prop_oneof![
        // Prices with two decimals, a few specials among them (decimal blocks + exceptions).
        proptest::collection::vec(
            prop_oneof![
                8 => (-100_000i32..100_000).prop_map(|c| f64::from(c) / 100.0),
                1 => special.clone(),
            ],
            0..3000
        ),
        // Small integers (exponent 0), long enough for interleaved chunks.
        proptest::collection::vec((-50i32..50).prop_map(f64::from), 1000..2500),
        // Any bit pattern (raw blocks).
        proptest::collection::vec(any::<u64>().prop_map(f64::from_bits), 0..300),
    ]
}

fn float_predicate(values: Vec<f64>) -> impl Strategy<Value = FloatPredicate> {
    let constant = prop_oneof![
        3 => any::<prop::sample::Index>().prop_map(move |i| if values.is_empty() { 1.5 } else { values[i.index(values.len())] }),
        1 => (-1000i32..1000).prop_map(|c| f64::from(c) / 100.0 + 0.005),
        1 => prop_oneof![Just(f64::NAN), Just(-0.0), Just(0.0), Just(f64::INFINITY), Just(f64::NEG_INFINITY), Just(f64::MAX)],
    ];
    prop_oneof![
        constant.clone().prop_map(FloatPredicate::Eq),
        constant.clone().prop_map(FloatPredicate::Lt),
        constant.clone().prop_map(FloatPredicate::Le),
        constant.clone().prop_map(FloatPredicate::Gt),
        constant.clone().prop_map(FloatPredicate::Ge),
        (constant.clone(), constant.clone()).prop_map(|(a, b)| FloatPredicate::Between(a, b)),
        proptest::collection::vec(constant, 0..4).prop_map(FloatPredicate::In),
    ]
}

fn strings() -> impl Strategy<Value = Vec<Vec<u8>>> {
    let word = proptest::collection::vec(
        prop_oneof![Just(b'a'), Just(b'b'), Just(b'c'), Just(0u8), Just(255u8)],
        0..6,
    );
    prop_oneof![
        // Few distinct strings, many repeats: dictionary blocks.
        (
            proptest::collection::vec(word.clone(), 1..12),
            proptest::collection::vec(any::<prop::sample::Index>(), 0..2500)
        )
            .prop_map(|(dict, picks)| picks
                .iter()
                .map(|i| dict[i.index(dict.len())].clone())
                .collect()),
        // Mostly distinct text: FSST or plain blocks.
        proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 0..200),
        proptest::collection::vec(word, 0..200),
    ]
}

fn string_predicate(values: Vec<Vec<u8>>) -> impl Strategy<Value = StringPredicate> {
    let constant = prop_oneof![
        3 => any::<prop::sample::Index>().prop_map(move |i| if values.is_empty() { b"b".to_vec() } else { values[i.index(values.len())].clone() }),
        1 => proptest::collection::vec(prop_oneof![Just(b'a'), Just(b'b'), Just(b'c')], 0..4),
    ];
    prop_oneof![
        constant.clone().prop_map(StringPredicate::Eq),
        constant.clone().prop_map(StringPredicate::Lt),
        constant.clone().prop_map(StringPredicate::Le),
        constant.clone().prop_map(StringPredicate::Gt),
        constant.clone().prop_map(StringPredicate::Ge),
        (constant.clone(), constant.clone()).prop_map(|(a, b)| StringPredicate::Between(a, b)),
        proptest::collection::vec(constant.clone(), 0..4).prop_map(StringPredicate::In),
        constant.prop_map(|mut c| {
            c.truncate(2);
            StringPredicate::StartsWith(c)
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(u32::try_from(lightning_testkit::scaled(256)).unwrap_or(u32::MAX)))]

    #[test]
    fn float_predicates_match_decoded((v, p) in floats().prop_flat_map(|v| (Just(v.clone()), float_predicate(v)))) {
        let block = encode_f64(&v).unwrap();
        let sel = filter_f64(&block, &p).unwrap();
        let mut back = Vec::new();
        decode_f64(&block, &mut back).unwrap();
        prop_assert_eq!(sel.len(), v.len());
        for (i, x) in back.iter().enumerate() {
            prop_assert_eq!(sel.get(i), p.test(*x), "value {} ({:#x}) under {:?}", x, x.to_bits(), p);
        }
    }

    #[test]
    fn string_predicates_match_decoded((v, p) in strings().prop_flat_map(|v| (Just(v.clone()), string_predicate(v)))) {
        let block = encode_strings(&v).unwrap();
        let sel = filter_strings(&block, &p).unwrap();
        let mut back = Vec::new();
        decode_strings(&block, &mut back).unwrap();
        prop_assert_eq!(sel.len(), v.len());
        for (i, s) in back.iter().enumerate() {
            prop_assert_eq!(sel.get(i), p.test(s), "string {:?} under {:?}", s, p);
        }
    }

    #[test]
    fn damaged_float_and_string_blocks_never_panic_a_filter(
        f in floats(),
        s in strings(),
        cut in any::<prop::sample::Index>(),
        bit in any::<prop::sample::Index>(),
        junk in proptest::collection::vec(any::<u8>(), 0..300),
    ) {
        let floats = encode_f64(&f).unwrap();
        let strings = encode_strings(&s).unwrap();
        for block in [&floats, &strings] {
            let n = cut.index(block.len());
            let mut flipped = block.clone();
            let b = bit.index(block.len() * 8);
            flipped[b / 8] ^= 1 << (b % 8);
            for bytes in [&block[..n], &flipped[..], &junk[..]] {
                drop(filter_f64(bytes, &FloatPredicate::Lt(1.0)));
                drop(filter_f64(bytes, &FloatPredicate::In(vec![0.0])));
                drop(filter_strings(bytes, &StringPredicate::Ge(b"b".to_vec())));
                drop(filter_strings(bytes, &StringPredicate::In(vec![Vec::new()])));
            }
        }
        // A truncated block is an error, never a shorter selection.
        prop_assert!(filter_f64(&floats[..cut.index(floats.len())], &FloatPredicate::Lt(1.0)).is_err());
        prop_assert!(filter_strings(&strings[..cut.index(strings.len())], &StringPredicate::Lt(b"b".to_vec())).is_err());
    }
}
