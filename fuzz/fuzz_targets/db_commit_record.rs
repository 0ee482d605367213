//! A commit record of the database's WAL (a transaction's write set, replayed on open):
//! decoding never panics, and what decodes encodes back to the same bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| lightning_db::fuzzing::commit_record(data));
