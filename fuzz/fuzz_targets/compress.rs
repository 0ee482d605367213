//! Encoded column blocks of every kind: decoding and filtering must fail cleanly or work.
#![no_main]
use libfuzzer_sys::fuzz_target;
use lightning_compress::{
    Predicate, decode, decode_bools, decode_f64, decode_strings, decode_strings_into, filter,
};

fuzz_target!(|data: &[u8]| {
    let _ = decode(data, &mut Vec::new());
    let _ = filter(data, &Predicate::Between(3, 1_000));
    let _ = decode_f64(data, &mut Vec::new());
    let _ = decode_bools(data, &mut Vec::new());
    let _ = decode_strings(data, &mut Vec::new());
    let (mut bytes, mut ends) = (vec![7u8], vec![1usize]);
    if decode_strings_into(data, &mut bytes, &mut ends).is_err() {
        assert_eq!(
            (bytes.as_slice(), ends.as_slice()),
            (&[7u8][..], &[1usize][..])
        );
    }
});
