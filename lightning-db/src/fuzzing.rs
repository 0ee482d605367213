//! Entry points for the fuzz targets in `fuzz/` (compiled only under `--cfg fuzzing`, which
//! cargo-fuzz sets): the database's own decoders of bytes from disk — the WAL's commit and
//! keyspace records and the catalog's entries — are crate-private, so the targets reach them
//! here. Each function panics only on a broken round-trip property, which is the finding.
#![expect(
    clippy::unwrap_used,
    reason = "fuzzing entry points: a panic is how a finding is reported"
)]

use std::path::Path;
use std::sync::Arc;

use lightning_btree::{BTree, Store};
use lightning_page::vfs::MemVfs;
use lightning_page::{PageFile, PageSize};

use crate::{catalog, keys, record};

/// Decodes `payload` as a WAL commit record; what decodes encodes back to the same bytes
/// (the format has one encoding per commit).
pub fn commit_record(payload: &[u8]) {
    let Ok(commit) = record::decode(payload) else {
        return;
    };
    let again = record::encode(commit.ts, commit.writes.iter());
    assert_eq!(
        again, payload,
        "a decoded commit record encodes differently"
    );
    for (key, _) in commit.writes.iter() {
        assert!(
            keys::split(key).is_some(),
            "a decoded key has no keyspace prefix"
        );
    }
}

/// Decodes `payload` as a WAL keyspace (create/drop) record; what decodes encodes back to
/// the same bytes.
pub fn keyspace_record(payload: &[u8]) {
    if let Ok(ddl) = record::decode_ddl(payload) {
        assert_eq!(
            record::encode_ddl(&ddl),
            payload,
            "a keyspace record encodes differently"
        );
    }
}

/// Loads a catalog whose tree holds `entries` (keys and values as a damaged or crafted file
/// could hold them). A catalog that loads is consistent: ids unique and below the next id.
pub fn catalog(entries: &[(Vec<u8>, Vec<u8>)]) {
    let vfs = MemVfs::new();
    let path = Path::new("/catalog");
    let file = PageFile::create(&vfs, path, PageSize::new(4096).unwrap()).unwrap();
    let tree = BTree::create(Arc::new(Store::open(Arc::new(file), 1 << 20).unwrap())).unwrap();
    for (key, value) in entries {
        // The tree refuses what no catalog could hold (empty or oversized keys); skip those.
        drop(tree.insert(key, value));
    }
    let Ok(contents) = catalog::load(&tree, path, Path::new("/db")) else {
        return;
    };
    let mut ids = std::collections::HashSet::new();
    for (name, (id, _)) in &contents.keyspaces {
        assert!(
            *id < contents.meta.next_id,
            "keyspace {name:?} id {id} >= next id"
        );
        assert!(ids.insert(*id), "keyspace id {id} loaded twice");
    }
}
