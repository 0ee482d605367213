//! Encoded column blocks of every kind: decoding and filtering must fail cleanly or work, and
//! a filter that works agrees with decoding and testing every value.
#![no_main]
use libfuzzer_sys::fuzz_target;
use lightning_compress::{
    FloatPredicate, Predicate, StringPredicate, decode, decode_bools, decode_f64, decode_into,
    decode_strings, decode_strings_into, filter, filter_f64, filter_strings,
};

fuzz_target!(|data: &[u8]| {
    let mut values = Vec::new();
    let decoded = decode(data, &mut values);
    let pred = Predicate::Between(3, 1_000);
    if let (Ok(()), Ok(sel)) = (&decoded, filter(data, &pred)) {
        for (i, v) in values.iter().enumerate() {
            assert_eq!(sel.get(i), pred.test(*v));
        }
    }
    let mut buf = vec![0u64; 4096];
    if let Ok(n) = decode_into(data, &mut buf) {
        assert_eq!(
            Some(&buf[..n]),
            decoded.is_ok().then_some(values.as_slice())
        );
    }
    let mut floats = Vec::new();
    let fpred = FloatPredicate::Lt(2.5);
    if let (Ok(()), Ok(sel)) = (decode_f64(data, &mut floats), filter_f64(data, &fpred)) {
        for (i, v) in floats.iter().enumerate() {
            assert_eq!(sel.get(i), fpred.test(*v));
        }
    }
    let _ = decode_bools(data, &mut Vec::new());
    let mut strings = Vec::new();
    let spred = StringPredicate::StartsWith(b"a".to_vec());
    if let (Ok(()), Ok(sel)) = (
        decode_strings(data, &mut strings),
        filter_strings(data, &spred),
    ) {
        for (i, s) in strings.iter().enumerate() {
            assert_eq!(sel.get(i), spred.test(s));
        }
    }
    let (mut bytes, mut ends) = (vec![7u8], vec![1usize]);
    if decode_strings_into(data, &mut bytes, &mut ends).is_err() {
        assert_eq!(
            (bytes.as_slice(), ends.as_slice()),
            (&[7u8][..], &[1usize][..])
        );
    }
});
