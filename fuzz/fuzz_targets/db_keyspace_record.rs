//! A keyspace (create/drop) record of the database's WAL: decoding never panics, and what
//! decodes encodes back to the same bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| lightning_db::fuzzing::keyspace_record(data));
