//! A backup manifest as read from a repository. The fuzzer's bytes are the manifest's body;
//! the target appends the blake3 line that a real manifest ends with, so the parser behind
//! the hash check is what gets fuzzed (random bytes almost never carry a matching hash).
#![no_main]
use std::path::Path;

use libfuzzer_sys::fuzz_target;
use lightning_backup::manifest::Manifest;

fuzz_target!(|data: &[u8]| {
    let mut bytes = data.to_vec();
    if !bytes.ends_with(b"\n") {
        bytes.push(b'\n');
    }
    let hash = blake3::hash(&bytes);
    bytes.extend_from_slice(format!("manifest {}\n", hash.to_hex()).as_bytes());
    if let Ok(manifest) = Manifest::decode(&bytes, Path::new("fuzz")) {
        // What parses encodes again, to a manifest that parses to the same thing.
        let again = Manifest::decode(manifest.encode().as_bytes(), Path::new("fuzz"))
            .expect("an encoded manifest parses");
        assert_eq!(again, manifest);
    }
    // The unmodified bytes too: a hash line of their own, or none.
    let _ = Manifest::decode(data, Path::new("fuzz"));
});
