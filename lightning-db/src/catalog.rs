//! The catalog: a B+tree (its root is the superblock's catalog root) listing the keyspaces,
//! the emptied trees kept for reuse, and the database's metadata (`docs/format/database.md`).
//!
//! ```text
//! key "\0meta"          -> format:u32 next_id:u32 last_ts:u64 db_id:u64
//! key "k" name          -> id:u32 root:u64        (a keyspace and its tree's root page)
//! key "s" root:u64      -> (empty)                (a dropped keyspace's emptied tree)
//! ```
//!
//! Integers are little-endian. Keyspace roots and `last_ts` are written at every checkpoint,
//! under the quiet point, so the catalog always matches the trees of the same image.

use std::collections::BTreeMap;
use std::path::Path;

use lightning_btree::BTree;
use lightning_mvcc::Timestamp;
use lightning_page::PageId;

use crate::{Error, Result};

/// The catalog format this build writes and reads.
pub(crate) const FORMAT: u32 = 1;
pub(crate) const META_KEY: &[u8] = b"\0meta";
const KEYSPACE: u8 = b'k';
const SPARE: u8 = b's';

/// The metadata entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Meta {
    /// The id the next new keyspace gets.
    pub(crate) next_id: u32,
    /// The newest commit the checkpoint's trees hold.
    pub(crate) last_ts: Timestamp,
    /// Random at creation: tells databases (and their backups) apart.
    pub(crate) db_id: u64,
}

/// What the catalog lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Contents {
    pub(crate) meta: Meta,
    /// Keyspace name -> (id, root).
    pub(crate) keyspaces: BTreeMap<String, (u32, PageId)>,
    /// Emptied trees for the next keyspaces created.
    pub(crate) spares: Vec<PageId>,
}

fn corrupt(file: &Path, what: impl std::fmt::Display) -> Error {
    Error::Corruption {
        file: file.to_path_buf(),
        what: format!("catalog: {what}"),
    }
}

pub(crate) fn encode_meta(meta: &Meta) -> [u8; 24] {
    let mut b = [0u8; 24];
    b[0..4].copy_from_slice(&FORMAT.to_le_bytes());
    b[4..8].copy_from_slice(&meta.next_id.to_le_bytes());
    b[8..16].copy_from_slice(&meta.last_ts.get().to_le_bytes());
    b[16..24].copy_from_slice(&meta.db_id.to_le_bytes());
    b
}

pub(crate) fn keyspace_key(name: &str) -> Vec<u8> {
    let mut k = vec![KEYSPACE];
    k.extend_from_slice(name.as_bytes());
    k
}

pub(crate) fn encode_keyspace(id: u32, root: PageId) -> [u8; 12] {
    let mut b = [0u8; 12];
    b[0..4].copy_from_slice(&id.to_le_bytes());
    b[4..12].copy_from_slice(&root.get().to_le_bytes());
    b
}

pub(crate) fn spare_key(root: PageId) -> [u8; 9] {
    let mut k = [0u8; 9];
    k[0] = SPARE;
    k[1..9].copy_from_slice(&root.get().to_le_bytes());
    k
}

/// The next `N` bytes of `rest`, consumed; `None` when fewer are left.
fn take<const N: usize>(rest: &mut &[u8]) -> Option<[u8; N]> {
    let (head, tail) = rest.split_first_chunk::<N>()?;
    *rest = tail;
    Some(*head)
}

/// Reads the whole catalog. `file` names the page file in errors; `dir` the database in
/// a format error.
pub(crate) fn load(tree: &BTree, file: &Path, dir: &Path) -> Result<Contents> {
    let mut meta = None;
    let mut keyspaces = BTreeMap::new();
    let mut spares = Vec::new();
    let mut ids = std::collections::HashSet::new();
    for row in tree {
        let (key, value) = row?;
        if key == META_KEY {
            let mut rest = value.as_slice();
            let Some(format) = take::<4>(&mut rest).map(u32::from_le_bytes) else {
                return Err(corrupt(
                    file,
                    format!("the metadata entry has {} bytes", value.len()),
                ));
            };
            if format > FORMAT {
                return Err(Error::UnsupportedFormat {
                    dir: dir.to_path_buf(),
                    found: format,
                    supported: FORMAT,
                });
            }
            let fields = (
                take::<4>(&mut rest),
                take::<8>(&mut rest),
                take::<8>(&mut rest),
            );
            let ((Some(next_id), Some(last_ts), Some(db_id)), true) =
                (fields, rest.is_empty() && format == FORMAT)
            else {
                return Err(corrupt(
                    file,
                    format!(
                        "the metadata entry of format {format} has {} bytes, not 24",
                        value.len()
                    ),
                ));
            };
            meta = Some(Meta {
                next_id: u32::from_le_bytes(next_id),
                last_ts: Timestamp::new(u64::from_le_bytes(last_ts)),
                db_id: u64::from_le_bytes(db_id),
            });
        } else if let Some((&KEYSPACE, name)) = key.split_first() {
            let name = std::str::from_utf8(name)
                .map_err(|_| corrupt(file, format!("keyspace name {name:?} is not UTF-8")))?;
            let mut rest = value.as_slice();
            let (Some(id), Some(root), true) =
                (take::<4>(&mut rest), take::<8>(&mut rest), rest.is_empty())
            else {
                return Err(corrupt(
                    file,
                    format!(
                        "the entry of keyspace {name:?} has {} bytes, not 12",
                        value.len()
                    ),
                ));
            };
            let id = u32::from_le_bytes(id);
            if !ids.insert(id) {
                return Err(corrupt(
                    file,
                    format!("keyspace id {id} is listed twice ({name:?})"),
                ));
            }
            keyspaces.insert(name.to_owned(), (id, PageId::new(u64::from_le_bytes(root))));
        } else if let Some((&SPARE, root)) = key.split_first()
            && let Ok(root) = <[u8; 8]>::try_from(root)
            && value.is_empty()
        {
            spares.push(PageId::new(u64::from_le_bytes(root)));
        } else {
            return Err(corrupt(file, format!("unknown entry {key:?}")));
        }
    }
    let meta = meta.ok_or_else(|| corrupt(file, "the metadata entry is missing"))?;
    if let Some((name, (id, _))) = keyspaces.iter().find(|(_, (id, _))| *id >= meta.next_id) {
        return Err(corrupt(
            file,
            format!(
                "keyspace {name:?} has id {id}, not below the next id {}",
                meta.next_id
            ),
        ));
    }
    Ok(Contents {
        meta,
        keyspaces,
        spares,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use lightning_btree::Store;
    use lightning_page::vfs::MemVfs;
    use lightning_page::{PageFile, PageSize};

    fn tree() -> BTree {
        let vfs = MemVfs::new();
        let file = PageFile::create(&vfs, Path::new("/c"), PageSize::new(4096).unwrap()).unwrap();
        BTree::create(Arc::new(Store::open(Arc::new(file), 1 << 20).unwrap())).unwrap()
    }

    fn meta() -> Meta {
        Meta {
            next_id: 3,
            last_ts: Timestamp::new(77),
            db_id: 0xfeed,
        }
    }

    #[test]
    fn the_catalog_round_trips() {
        let t = tree();
        t.insert(META_KEY, &encode_meta(&meta())).unwrap();
        t.insert(&keyspace_key("users"), &encode_keyspace(1, PageId::new(9)))
            .unwrap();
        t.insert(
            &keyspace_key("orders"),
            &encode_keyspace(2, PageId::new(12)),
        )
        .unwrap();
        t.insert(&spare_key(PageId::new(40)), b"").unwrap();
        let c = load(&t, Path::new("/c"), Path::new("/d")).unwrap();
        assert_eq!(c.meta, meta());
        assert_eq!(c.keyspaces["users"], (1, PageId::new(9)));
        assert_eq!(c.keyspaces["orders"], (2, PageId::new(12)));
        assert_eq!(c.spares, vec![PageId::new(40)]);
    }

    #[test]
    fn damaged_entries_are_corruption_naming_the_entry() {
        type Entries = Vec<(Vec<u8>, Vec<u8>)>;
        let cases: Vec<(&str, Entries)> = vec![
            ("missing", vec![]),
            ("24", vec![(META_KEY.to_vec(), vec![1, 0, 0, 0, 9])]),
            ("has 3 bytes", vec![(META_KEY.to_vec(), vec![1, 0, 0])]),
            (
                "has 25 bytes",
                vec![(META_KEY.to_vec(), {
                    let mut m = encode_meta(&meta()).to_vec();
                    m.push(0);
                    m
                })],
            ),
            (
                "not UTF-8",
                vec![
                    (META_KEY.to_vec(), encode_meta(&meta()).to_vec()),
                    (
                        vec![KEYSPACE, 0xff, 0xfe],
                        encode_keyspace(1, PageId::new(5)).to_vec(),
                    ),
                ],
            ),
            (
                "has 13 bytes",
                vec![
                    (META_KEY.to_vec(), encode_meta(&meta()).to_vec()),
                    (keyspace_key("users"), vec![1; 13]),
                ],
            ),
            (
                "unknown",
                vec![
                    (META_KEY.to_vec(), encode_meta(&meta()).to_vec()),
                    (vec![SPARE, 1, 2, 3], vec![]),
                ],
            ),
            (
                "users",
                vec![
                    (META_KEY.to_vec(), encode_meta(&meta()).to_vec()),
                    (keyspace_key("users"), vec![1; 5]),
                ],
            ),
            (
                "twice",
                vec![
                    (META_KEY.to_vec(), encode_meta(&meta()).to_vec()),
                    (
                        keyspace_key("a"),
                        encode_keyspace(1, PageId::new(5)).to_vec(),
                    ),
                    (
                        keyspace_key("b"),
                        encode_keyspace(1, PageId::new(6)).to_vec(),
                    ),
                ],
            ),
            (
                "next id",
                vec![
                    (META_KEY.to_vec(), encode_meta(&meta()).to_vec()),
                    (
                        keyspace_key("a"),
                        encode_keyspace(3, PageId::new(5)).to_vec(),
                    ),
                ],
            ),
            (
                "unknown",
                vec![
                    (META_KEY.to_vec(), encode_meta(&meta()).to_vec()),
                    (b"zz".to_vec(), vec![]),
                ],
            ),
        ];
        for (needle, entries) in cases {
            let t = tree();
            for (k, v) in entries {
                t.insert(&k, &v).unwrap();
            }
            let err = load(&t, Path::new("/c"), Path::new("/d")).unwrap_err();
            assert!(matches!(err, Error::Corruption { .. }), "{err}");
            assert!(err.to_string().contains(needle), "{needle}: {err}");
            assert!(err.to_string().contains("/c"), "{err}");
        }
    }

    #[test]
    fn a_newer_format_is_refused_as_unsupported() {
        let t = tree();
        let mut m = encode_meta(&meta());
        m[0..4].copy_from_slice(&(FORMAT + 1).to_le_bytes());
        t.insert(META_KEY, &m).unwrap();
        let err = load(&t, Path::new("/c"), Path::new("/d")).unwrap_err();
        assert!(
            matches!(err, Error::UnsupportedFormat { found, .. } if found == FORMAT + 1),
            "{err}"
        );
    }
}
