//! The database's catalog (metadata, keyspace and spare-tree entries) as its B+tree could
//! hold them after damage. The fuzzer's bytes are a list of entries, each a key length byte,
//! the key, a value length byte and the value; loading never panics, and a catalog that
//! loads is consistent.
#![no_main]
use libfuzzer_sys::fuzz_target;

fn entries(mut data: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut out = Vec::new();
    let field = |data: &mut &[u8]| -> Option<Vec<u8>> {
        let (&len, rest) = data.split_first()?;
        let len = usize::from(len).min(rest.len());
        let (bytes, rest) = rest.split_at(len);
        *data = rest;
        Some(bytes.to_vec())
    };
    while let (Some(key), Some(value)) = (field(&mut data), field(&mut data)) {
        out.push((key, value));
    }
    out
}

fuzz_target!(|data: &[u8]| lightning_db::fuzzing::catalog(&entries(data)));
