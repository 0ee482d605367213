//! Version lists: a key's committed versions, newest first, and the visibility rule.
//!
//! # Encoding (little-endian)
//!
//! | offset | size | field                                             |
//! |-------:|-----:|---------------------------------------------------|
//! | 0      | 4    | `n`, the number of versions                       |
//! | 4      | ...  | `n` versions, newest first (strictly decreasing timestamps) |
//!
//! Each version: `commit_ts` (8), kind (1: 0 value, 1 tombstone, 2 overflow), then for a
//! value its length (4) and bytes; for an overflow reference the first page id (8) and the
//! value's length (4); nothing for a tombstone.

use lightning_page::PageId;

use crate::{Error, Result, Timestamp};

/// What a version holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VersionValue {
    /// The value, inline.
    Value(Vec<u8>),
    /// The key was deleted.
    Tombstone,
    /// A large value stored in overflow pages starting at `page`.
    Overflow {
        /// First overflow page.
        page: PageId,
        /// The value's length in bytes.
        len: u32,
    },
}

/// One committed version of a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    /// When it was committed.
    pub commit_ts: Timestamp,
    /// What it holds.
    pub value: VersionValue,
}

/// A key's versions, newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VersionList {
    versions: Vec<Version>,
}

const VALUE: u8 = 0;
const TOMBSTONE: u8 = 1;
const OVERFLOW: u8 = 2;

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8]> {
        let end = self
            .at
            .checked_add(n)
            .ok_or(Error::Corrupt("length overflow"))?;
        let s = self
            .bytes
            .get(self.at..end)
            .ok_or(Error::Corrupt("version list cut short"))?;
        self.at = end;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Result<u64> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(a))
    }
}

impl VersionList {
    /// An empty list.
    pub fn new() -> Self {
        Self::default()
    }

    /// The versions, newest first.
    pub fn versions(&self) -> &[Version] {
        &self.versions
    }

    /// The newest version's timestamp.
    pub fn latest_ts(&self) -> Option<Timestamp> {
        self.versions.first().map(|v| v.commit_ts)
    }

    /// Adds a version newer than all present. An older or equal timestamp is refused: commits
    /// are applied in timestamp order.
    pub fn push(&mut self, version: Version) -> Result<()> {
        if self.latest_ts().is_some_and(|t| t >= version.commit_ts) {
            return Err(Error::Corrupt("version older than the newest present"));
        }
        self.versions.insert(0, version);
        Ok(())
    }

    /// The version a snapshot at `read_ts` sees: the newest with `commit_ts <= read_ts`.
    pub fn visible(&self, read_ts: Timestamp) -> Option<&Version> {
        self.versions.iter().find(|v| v.commit_ts <= read_ts)
    }

    /// Drops versions no snapshot at or after `oldest` can see: everything older than the
    /// newest version at or before `oldest`, and that one too if it is a tombstone. Returns
    /// how many went.
    pub fn trim(&mut self, oldest: Timestamp) -> usize {
        let Some(keep) = self.versions.iter().position(|v| v.commit_ts <= oldest) else {
            return 0;
        };
        let cut = if self.versions[keep].value == VersionValue::Tombstone {
            keep
        } else {
            keep + 1
        };
        let before = self.versions.len();
        self.versions.truncate(cut);
        before - self.versions.len()
    }

    /// Whether no version is left.
    pub fn is_empty(&self) -> bool {
        self.versions.is_empty()
    }

    /// Encodes the list (layout in the module docs).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let n = u32::try_from(self.versions.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&n.to_le_bytes());
        for v in &self.versions {
            out.extend_from_slice(&v.commit_ts.get().to_le_bytes());
            match &v.value {
                VersionValue::Value(bytes) => {
                    out.push(VALUE);
                    out.extend_from_slice(
                        &u32::try_from(bytes.len()).unwrap_or(u32::MAX).to_le_bytes(),
                    );
                    out.extend_from_slice(bytes);
                }
                VersionValue::Tombstone => out.push(TOMBSTONE),
                VersionValue::Overflow { page, len } => {
                    out.push(OVERFLOW);
                    out.extend_from_slice(&page.get().to_le_bytes());
                    out.extend_from_slice(&len.to_le_bytes());
                }
            }
        }
        out
    }

    /// Decodes untrusted bytes: any malformation is [`Error::Corrupt`], never a panic, and
    /// no allocation is larger than the input.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader { bytes, at: 0 };
        let n = r.u32()? as usize;
        // Each version takes at least 9 bytes: a count past that is a lie.
        if n > bytes.len() / 9 {
            return Err(Error::Corrupt("version count larger than the bytes hold"));
        }
        let mut versions: Vec<Version> = Vec::with_capacity(n);
        for _ in 0..n {
            let commit_ts = Timestamp::new(r.u64()?);
            if versions.last().is_some_and(|v| v.commit_ts <= commit_ts) {
                return Err(Error::Corrupt("versions not newest first"));
            }
            let value = match r.u8()? {
                VALUE => {
                    let len = r.u32()? as usize;
                    VersionValue::Value(r.take(len)?.to_vec())
                }
                TOMBSTONE => VersionValue::Tombstone,
                OVERFLOW => VersionValue::Overflow {
                    page: PageId::new(r.u64()?),
                    len: r.u32()?,
                },
                _ => return Err(Error::Corrupt("unknown version kind")),
            };
            versions.push(Version { commit_ts, value });
        }
        if r.at != bytes.len() {
            return Err(Error::Corrupt("trailing bytes after the version list"));
        }
        Ok(VersionList { versions })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ts(n: u64) -> Timestamp {
        Timestamp::new(n)
    }

    fn list(vs: &[(u64, Option<&str>)]) -> VersionList {
        let mut l = VersionList::new();
        for (t, v) in vs {
            let value = v.map_or(VersionValue::Tombstone, |s| {
                VersionValue::Value(s.as_bytes().to_vec())
            });
            l.push(Version {
                commit_ts: ts(*t),
                value,
            })
            .unwrap();
        }
        l
    }

    #[test]
    fn visibility_picks_the_newest_at_or_before_the_snapshot() {
        let l = list(&[(10, Some("a")), (20, None), (30, Some("c"))]);
        assert_eq!(l.visible(ts(5)), None);
        assert_eq!(l.visible(ts(10)).unwrap().commit_ts, ts(10));
        assert_eq!(l.visible(ts(25)).unwrap().value, VersionValue::Tombstone);
        assert_eq!(l.visible(ts(99)).unwrap().commit_ts, ts(30));
    }

    #[test]
    fn trimming_keeps_what_snapshots_can_see() {
        let mut l = list(&[(10, Some("a")), (20, Some("b")), (30, Some("c"))]);
        assert_eq!(l.trim(ts(25)), 1);
        assert_eq!(
            l.versions()
                .iter()
                .map(|v| v.commit_ts.get())
                .collect::<Vec<_>>(),
            vec![30, 20]
        );
        let mut l = list(&[(10, Some("a")), (20, None)]);
        assert_eq!(
            l.trim(ts(25)),
            2,
            "a tombstone nobody needs goes with what it hides"
        );
        assert!(l.is_empty());
        assert!(
            list(&[(10, Some("a"))])
                .push(Version {
                    commit_ts: ts(10),
                    value: VersionValue::Tombstone
                })
                .is_err()
        );
    }

    /// The bytes of docs/format/mvcc.md, written out: a change here is a format change.
    #[test]
    fn encoding_matches_the_documented_layout() {
        let mut l = VersionList::new();
        for (t, value) in [
            (10, VersionValue::Value(b"ab".to_vec())),
            (20, VersionValue::Tombstone),
            (
                30,
                VersionValue::Overflow {
                    page: PageId::new(7),
                    len: 5,
                },
            ),
        ] {
            l.push(Version {
                commit_ts: ts(t),
                value,
            })
            .unwrap();
        }
        let want: Vec<u8> = [
            &3u32.to_le_bytes()[..],
            &30u64.to_le_bytes(),
            &[OVERFLOW],
            &7u64.to_le_bytes(),
            &5u32.to_le_bytes(),
            &20u64.to_le_bytes(),
            &[TOMBSTONE],
            &10u64.to_le_bytes(),
            &[VALUE],
            &2u32.to_le_bytes(),
            b"ab",
        ]
        .concat();
        assert_eq!(l.encode(), want);
        assert_eq!(VersionList::decode(&want).unwrap(), l);
    }

    fn any_list() -> impl Strategy<Value = VersionList> {
        proptest::collection::vec(
            (
                1u64..1000,
                0u8..3,
                proptest::collection::vec(any::<u8>(), 0..50),
                any::<u64>(),
                any::<u32>(),
            ),
            0..10,
        )
        .prop_map(|raw| {
            let mut stamps: Vec<u64> = raw.iter().map(|r| r.0).collect();
            stamps.sort_unstable();
            stamps.dedup();
            let mut l = VersionList::new();
            for (t, r) in stamps.iter().zip(&raw) {
                let value = match r.1 {
                    0 => VersionValue::Value(r.2.clone()),
                    1 => VersionValue::Tombstone,
                    _ => VersionValue::Overflow {
                        page: PageId::new(r.3),
                        len: r.4,
                    },
                };
                l.push(Version {
                    commit_ts: Timestamp::new(*t),
                    value,
                })
                .unwrap();
            }
            l
        })
    }

    proptest! {
        #[test]
        fn encoding_round_trips(l in any_list()) {
            prop_assert_eq!(VersionList::decode(&l.encode()).unwrap(), l);
        }

        #[test]
        fn truncations_and_random_bytes_are_errors_not_panics(l in any_list(), cut in any::<prop::sample::Index>(), junk in proptest::collection::vec(any::<u8>(), 0..200)) {
            let bytes = l.encode();
            if !bytes.is_empty() {
                let n = cut.index(bytes.len());
                if n < bytes.len() {
                    prop_assert!(VersionList::decode(&bytes[..n]).is_err());
                }
            }
            drop(VersionList::decode(&junk));
        }
    }
}
