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
//!
//! Both lengths are `u32`, so a value — inline or in overflow pages — is at most
//! [`MAX_VALUE_LEN`] bytes; the count is a `u32` too. Longer values or more versions are an
//! error ([`Error::ValueTooLarge`], [`Error::TooManyVersions`]) when a version is pushed and
//! when a list is encoded, never a length cut to fit.

use lightning_page::PageId;

use crate::{Error, Result, Timestamp};

/// The largest value a version holds, inline or in overflow pages: `u32::MAX` bytes
/// (4 GiB − 1), the most the encoding's `u32` lengths can say.
///
/// This is the limit of the whole family and the one the database enforces:
/// [`Transaction::put`](crate::Transaction::put) refuses a longer value before anything is
/// buffered. The B+tree's own limit (`lightning_btree::MAX_VALUE_LEN`, 2^32 bytes) is one
/// byte looser, so a value this crate accepts always fits the tree.
pub const MAX_VALUE_LEN: u64 = (1 << 32) - 1;

/// The largest number of versions a list holds (its encoded count is a `u32`).
const MAX_VERSIONS: u64 = (1 << 32) - 1;

/// A value's length as the encoding's `u32`, or [`Error::ValueTooLarge`].
pub(crate) fn value_len(len: usize) -> Result<u32> {
    u32::try_from(len).map_err(|_| Error::ValueTooLarge {
        len: u64::try_from(len).unwrap_or(u64::MAX),
        max: MAX_VALUE_LEN,
    })
}

/// A version count as the encoding's `u32`, or [`Error::TooManyVersions`].
fn version_count(count: usize) -> Result<u32> {
    u32::try_from(count).map_err(|_| Error::TooManyVersions {
        count: u64::try_from(count).unwrap_or(u64::MAX),
        max: MAX_VERSIONS,
    })
}

/// What a version holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VersionValue {
    /// The value, inline (at most [`MAX_VALUE_LEN`] bytes: [`VersionList::push`] refuses
    /// longer ones).
    Value(Vec<u8>),
    /// The key was deleted.
    Tombstone,
    /// A large value stored in overflow pages starting at `page`, kept by the store (the
    /// database's B+tree writes the chain, [`VersionStore::read_overflow`] reads it back).
    /// Build one with [`VersionValue::overflow`] from the tree's `u64` length; read it with
    /// [`VersionValue::as_overflow`].
    ///
    /// [`VersionStore::read_overflow`]: crate::VersionStore::read_overflow
    Overflow {
        /// First overflow page.
        page: PageId,
        /// The value's length in bytes (a `u32`: at most [`MAX_VALUE_LEN`]).
        len: u32,
    },
}

impl VersionValue {
    /// A reference to a value of `len` bytes kept in the overflow chain that starts at
    /// `page`. Fails with [`Error::ValueTooLarge`] if `len` is above [`MAX_VALUE_LEN`].
    pub fn overflow(page: PageId, len: u64) -> Result<Self> {
        let len = u32::try_from(len).map_err(|_| Error::ValueTooLarge {
            len,
            max: MAX_VALUE_LEN,
        })?;
        Ok(VersionValue::Overflow { page, len })
    }

    /// The first page and the length of an overflow reference (the arguments the B+tree's
    /// overflow reader takes); `None` for an inline value or a tombstone.
    pub fn as_overflow(&self) -> Option<(PageId, u64)> {
        match self {
            VersionValue::Overflow { page, len } => Some((*page, u64::from(*len))),
            VersionValue::Value(_) | VersionValue::Tombstone => None,
        }
    }

    /// The value's length in bytes, inline or in overflow pages; `None` for a tombstone.
    pub fn value_len(&self) -> Option<u64> {
        match self {
            VersionValue::Value(v) => Some(u64::try_from(v.len()).unwrap_or(u64::MAX)),
            VersionValue::Overflow { len, .. } => Some(u64::from(*len)),
            VersionValue::Tombstone => None,
        }
    }
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

impl<'a> Reader<'a> {
    // The errors are built lazily (`ok_or_else`): `ok_or(Error::..)` builds one on every
    // call and drops it, an out-of-line `drop_in_place::<Error>` per field read — 3 % of a
    // range scan through the database (every row's list is read here).
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self
            .at
            .checked_add(n)
            .ok_or_else(|| Error::Corrupt("length overflow"))?;
        let s = self
            .bytes
            .get(self.at..end)
            .ok_or_else(|| Error::Corrupt("version list cut short"))?;
        self.at = end;
        Ok(s)
    }
    /// The next `N` bytes.
    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        <[u8; N]>::try_from(self.take(N)?).map_err(|_| Error::Corrupt("version list cut short"))
    }
    fn u8(&mut self) -> Result<u8> {
        let [b] = self.array()?;
        Ok(b)
    }
    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array()?))
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
    /// are applied in timestamp order. So is an inline value longer than [`MAX_VALUE_LEN`]
    /// ([`Error::ValueTooLarge`]) and a version past the `u32` count
    /// ([`Error::TooManyVersions`]): every list built by `push` encodes.
    pub fn push(&mut self, version: Version) -> Result<()> {
        if self.latest_ts().is_some_and(|t| t >= version.commit_ts) {
            return Err(Error::Corrupt("version older than the newest present"));
        }
        if let VersionValue::Value(v) = &version.value {
            value_len(v.len())?;
        }
        version_count(self.versions.len().saturating_add(1))?;
        self.versions.insert(0, version);
        Ok(())
    }

    /// The version a snapshot at `read_ts` sees: the newest with `commit_ts <= read_ts`.
    pub fn visible(&self, read_ts: Timestamp) -> Option<&Version> {
        self.versions.iter().find(|v| v.commit_ts <= read_ts)
    }

    /// [`visible`](Self::visible), taking the list apart instead of copying the version.
    pub fn into_visible(self, read_ts: Timestamp) -> Option<Version> {
        self.versions.into_iter().find(|v| v.commit_ts <= read_ts)
    }

    /// Drops versions no snapshot at or after `oldest` can see: everything older than the
    /// newest version at or before `oldest`, and that one too if it is a tombstone. Returns
    /// the versions that went, newest first, so that a store can free the overflow chains
    /// they reference ([`VersionValue::as_overflow`]).
    pub fn trim(&mut self, oldest: Timestamp) -> Vec<Version> {
        let Some((keep, newest_kept)) = self
            .versions
            .iter()
            .enumerate()
            .find(|(_, v)| v.commit_ts <= oldest)
        else {
            return Vec::new();
        };
        let cut = if newest_kept.value == VersionValue::Tombstone {
            keep
        } else {
            keep + 1
        };
        self.versions.split_off(cut)
    }

    /// Whether no version is left.
    pub fn is_empty(&self) -> bool {
        self.versions.is_empty()
    }

    /// Encodes the list (layout in the module docs). A value longer than [`MAX_VALUE_LEN`]
    /// or more versions than a `u32` counts is an error, not a length cut to fit (a list
    /// built with [`push`](Self::push) or [`decode`](Self::decode) has neither).
    pub fn encode(&self) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        out.extend_from_slice(&version_count(self.versions.len())?.to_le_bytes());
        for v in &self.versions {
            out.extend_from_slice(&v.commit_ts.get().to_le_bytes());
            match &v.value {
                VersionValue::Value(bytes) => {
                    out.push(VALUE);
                    out.extend_from_slice(&value_len(bytes.len())?.to_le_bytes());
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
        Ok(out)
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

/// What a snapshot sees in an encoded version list ([`visible_encoded`]), borrowed from the
/// encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VisibleRef<'a> {
    /// No version at or before the snapshot, or the visible one is a tombstone.
    Absent,
    /// The visible value, inline.
    Value(&'a [u8]),
    /// The visible value lives in overflow pages.
    Overflow {
        /// First overflow page.
        page: PageId,
        /// The value's length.
        len: u32,
    },
}

/// The version a snapshot at `read_ts` sees in an encoded list, without decoding the list
/// into versions: no allocation, the value borrowed from `bytes`. The whole encoding is
/// checked as [`VersionList::decode`] checks it (count, order, kinds, lengths, no trailing
/// bytes), so damage is [`Error::Corrupt`] here too, never a panic or a wrong answer.
pub fn visible_encoded(bytes: &[u8], read_ts: Timestamp) -> Result<VisibleRef<'_>> {
    let mut r = Reader { bytes, at: 0 };
    let n = r.u32()? as usize;
    if n > bytes.len() / 9 {
        return Err(Error::Corrupt("version count larger than the bytes hold"));
    }
    let mut seen: Option<VisibleRef<'_>> = None;
    let mut newer: Option<u64> = None;
    for _ in 0..n {
        let commit_ts = r.u64()?;
        if newer.is_some_and(|t| t <= commit_ts) {
            return Err(Error::Corrupt("versions not newest first"));
        }
        newer = Some(commit_ts);
        let value = match r.u8()? {
            VALUE => {
                let len = r.u32()? as usize;
                VisibleRef::Value(r.take(len)?)
            }
            TOMBSTONE => VisibleRef::Absent,
            OVERFLOW => VisibleRef::Overflow {
                page: PageId::new(r.u64()?),
                len: r.u32()?,
            },
            _ => return Err(Error::Corrupt("unknown version kind")),
        };
        if seen.is_none() && commit_ts <= read_ts.get() {
            seen = Some(value);
        }
    }
    if r.at != bytes.len() {
        return Err(Error::Corrupt("trailing bytes after the version list"));
    }
    Ok(seen.unwrap_or(VisibleRef::Absent))
}

/// What [`push_encoded`] left in its output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pushed {
    /// No version is left: the key goes from the store.
    pub empty: bool,
    /// More than one version is left, or only a tombstone: garbage collection has work on
    /// the key once the oldest snapshot moves on.
    pub collectable: bool,
}

/// Decodes the encoded list `old` (`None`: no list), [pushes](VersionList::push) a version
/// at `commit_ts` holding `value` (`None`: a tombstone), [trims](VersionList::trim) it for
/// `oldest` and encodes the result into `out` (cleared first), in one pass over the bytes:
/// the versions kept are copied as they are, nothing is allocated per version. The bytes
/// written are the ones those four steps give, and so are the errors: damage anywhere in
/// `old` is [`Error::Corrupt`] (the whole list is checked, also past the versions dropped),
/// as is a `commit_ts` not newer than the newest present; a value past [`MAX_VALUE_LEN`] is
/// [`Error::ValueTooLarge`]. On an error `out` holds nothing meaningful.
///
/// The commit path's apply: a key's list is rewritten on every commit that writes it.
pub fn push_encoded(
    old: Option<&[u8]>,
    commit_ts: Timestamp,
    value: Option<&[u8]>,
    oldest: Timestamp,
    out: &mut Vec<u8>,
) -> Result<Pushed> {
    out.clear();
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&commit_ts.get().to_le_bytes());
    match value {
        Some(v) => {
            let len = value_len(v.len())?;
            out.push(VALUE);
            out.extend_from_slice(&len.to_le_bytes());
            out.extend_from_slice(v);
        }
        None => out.push(TOMBSTONE),
    }
    // The trim: versions are kept down to the newest at or before `oldest`, which goes
    // too if it is a tombstone.
    let mut kept: usize = 1;
    let mut cut = commit_ts <= oldest;
    let mut tombstones_kept = usize::from(value.is_none());
    if cut && value.is_none() {
        out.truncate(4);
        kept = 0;
        tombstones_kept = 0;
    }
    if let Some(bytes) = old {
        let mut r = Reader { bytes, at: 0 };
        let n = r.u32()? as usize;
        if n > bytes.len() / 9 {
            return Err(Error::Corrupt("version count larger than the bytes hold"));
        }
        let mut newer: Option<u64> = None;
        let mut newest: Option<u64> = None;
        for _ in 0..n {
            let start = r.at;
            let ts = r.u64()?;
            if newer.is_some_and(|t| t <= ts) {
                return Err(Error::Corrupt("versions not newest first"));
            }
            newer = Some(ts);
            newest = newest.or(Some(ts));
            let tombstone = match r.u8()? {
                VALUE => {
                    let len = r.u32()? as usize;
                    r.take(len)?;
                    false
                }
                TOMBSTONE => true,
                OVERFLOW => {
                    r.u64()?;
                    r.u32()?;
                    false
                }
                _ => return Err(Error::Corrupt("unknown version kind")),
            };
            if cut {
                continue;
            }
            if ts <= oldest.get() {
                cut = true;
                if tombstone {
                    continue;
                }
            }
            let span = bytes
                .get(start..r.at)
                .ok_or_else(|| Error::Corrupt("version list cut short"))?;
            out.extend_from_slice(span);
            kept += 1;
            tombstones_kept += usize::from(tombstone);
        }
        if r.at != bytes.len() {
            return Err(Error::Corrupt("trailing bytes after the version list"));
        }
        if newest.is_some_and(|t| t >= commit_ts.get()) {
            return Err(Error::Corrupt("version older than the newest present"));
        }
        version_count(n.saturating_add(1))?;
    }
    let count = version_count(kept)?.to_le_bytes();
    for (slot, byte) in out.iter_mut().zip(count) {
        *slot = byte;
    }
    Ok(Pushed {
        empty: kept == 0,
        collectable: kept > 1 || (kept == 1 && tombstones_kept == 1),
    })
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
        assert_eq!(
            l.trim(ts(25)),
            [Version {
                commit_ts: ts(10),
                value: VersionValue::Value(b"a".to_vec()),
            }]
        );
        assert_eq!(
            l.versions()
                .iter()
                .map(|v| v.commit_ts.get())
                .collect::<Vec<_>>(),
            vec![30, 20]
        );
        let mut l = list(&[(10, Some("a")), (20, None)]);
        assert_eq!(
            l.trim(ts(25)).len(),
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
        assert_eq!(l.encode().unwrap(), want);
        assert_eq!(VersionList::decode(&want).unwrap(), l);
    }

    /// Regression: the encoder used to cut an oversized length to `u32::MAX` and write a
    /// list that decodes to something else. Lengths past the limit are errors, at the limit
    /// they are encoded as they are. (Checked through the length conversion both `push` and
    /// `encode` use: a 4 GiB value does not fit a test.)
    #[test]
    #[cfg(target_pointer_width = "64")]
    fn oversized_lengths_are_errors_not_cut_to_fit() {
        let max = usize::try_from(MAX_VALUE_LEN).unwrap();
        assert_eq!(value_len(max).unwrap(), u32::MAX);
        let e = value_len(max + 1).unwrap_err();
        assert!(
            matches!(e, Error::ValueTooLarge { len, max } if len == MAX_VALUE_LEN + 1 && max == MAX_VALUE_LEN),
            "{e}"
        );
        assert!(e.to_string().contains("4294967296 bytes"), "{e}");
        assert!(matches!(
            version_count(max + 1),
            Err(Error::TooManyVersions { .. })
        ));
        assert_eq!(version_count(max).unwrap(), u32::MAX);
    }

    #[test]
    fn overflow_references_are_built_and_read_with_the_trees_lengths() {
        let page = PageId::new(42);
        let v = VersionValue::overflow(page, MAX_VALUE_LEN).unwrap();
        assert_eq!(v.as_overflow(), Some((page, MAX_VALUE_LEN)));
        assert_eq!(v.value_len(), Some(MAX_VALUE_LEN));
        // The B+tree takes values up to 2^32 bytes; a version cannot say that length.
        assert!(matches!(
            VersionValue::overflow(page, 1 << 32),
            Err(Error::ValueTooLarge { len, .. }) if len == 1 << 32
        ));
        assert_eq!(VersionValue::Tombstone.as_overflow(), None);
        assert_eq!(VersionValue::Tombstone.value_len(), None);
        assert_eq!(VersionValue::Value(b"abc".to_vec()).as_overflow(), None);
        assert_eq!(VersionValue::Value(b"abc".to_vec()).value_len(), Some(3));
    }

    #[test]
    fn trimming_hands_back_the_overflow_references_that_went() {
        let mut l = VersionList::new();
        for t in 1..=3 {
            l.push(Version {
                commit_ts: ts(t * 10),
                value: VersionValue::overflow(PageId::new(t), 100).unwrap(),
            })
            .unwrap();
        }
        let gone: Vec<_> = l
            .trim(ts(25))
            .iter()
            .filter_map(|v| v.value.as_overflow())
            .collect();
        assert_eq!(gone, [(PageId::new(1), 100)]);
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
        /// The borrowed reader agrees with decoding, on valid lists and on any bytes.
        #[test]
        fn visible_encoded_agrees_with_decode(
            vs in proptest::collection::vec(proptest::option::of(proptest::collection::vec(any::<u8>(), 0..20)), 0..6),
            read in 0u64..10,
            junk in proptest::collection::vec(any::<u8>(), 0..40),
        ) {
            let mut l = VersionList::new();
            for (i, v) in vs.iter().enumerate() {
                let value = v.clone().map_or(VersionValue::Tombstone, VersionValue::Value);
                l.push(Version { commit_ts: ts(i as u64 + 1), value }).unwrap();
            }
            let bytes = l.encode().unwrap();
            let want = match l.visible(ts(read)).map(|v| &v.value) {
                Some(VersionValue::Value(v)) => VisibleRef::Value(v),
                _ => VisibleRef::Absent,
            };
            prop_assert_eq!(visible_encoded(&bytes, ts(read)).unwrap(), want);
            prop_assert_eq!(
                visible_encoded(&junk, ts(read)).is_ok(),
                VersionList::decode(&junk).is_ok()
            );
        }
    }

    /// Every field cut short (count, timestamp, kind, length, bytes, page id) is corruption
    /// for both readers.
    #[test]
    fn every_prefix_is_corrupt() {
        let mut l = list(&[(10, Some("abc")), (20, None)]);
        l.push(Version {
            commit_ts: ts(30),
            value: VersionValue::overflow(PageId::new(7), 9).unwrap(),
        })
        .unwrap();
        let bytes = l.encode().unwrap();
        for n in 0..bytes.len() {
            let cut = &bytes[..n];
            assert!(
                matches!(VersionList::decode(cut), Err(Error::Corrupt(_))),
                "{n} bytes"
            );
            assert!(
                matches!(visible_encoded(cut, ts(15)), Err(Error::Corrupt(_))),
                "{n} bytes"
            );
        }
        assert_eq!(
            visible_encoded(&bytes, ts(15)).unwrap(),
            VisibleRef::Value(b"abc")
        );
    }

    /// The four steps [`push_encoded`] stands for, on decoded lists.
    fn push_slow(
        old: Option<&[u8]>,
        commit_ts: Timestamp,
        value: Option<&[u8]>,
        oldest: Timestamp,
    ) -> Result<(Vec<u8>, Pushed)> {
        let mut l = match old {
            Some(bytes) => VersionList::decode(bytes)?,
            None => VersionList::new(),
        };
        l.push(Version {
            commit_ts,
            value: value.map_or(VersionValue::Tombstone, |v| VersionValue::Value(v.to_vec())),
        })?;
        l.trim(oldest);
        let pushed = Pushed {
            empty: l.is_empty(),
            collectable: l.versions().len() > 1
                || l.versions()
                    .first()
                    .is_some_and(|v| v.value == VersionValue::Tombstone),
        };
        Ok((l.encode()?, pushed))
    }

    /// A list that pushing onto must refuse (a version as new as the one pushed), and a
    /// tombstone pushed past the oldest snapshot onto nothing: no version left.
    #[test]
    fn push_encoded_refuses_an_older_version_and_empties_a_list() {
        let bytes = list(&[(10, Some("a"))]).encode().unwrap();
        let mut out = Vec::new();
        for at in [5, 10] {
            assert!(matches!(
                push_encoded(Some(&bytes), ts(at), Some(b"b"), ts(0), &mut out),
                Err(Error::Corrupt("version older than the newest present"))
            ));
        }
        let pushed = push_encoded(Some(&bytes), ts(11), None, ts(11), &mut out).unwrap();
        assert_eq!(
            pushed,
            Pushed {
                empty: true,
                collectable: false
            }
        );
        assert_eq!(out, 0u32.to_le_bytes());
        let pushed = push_encoded(Some(&bytes), ts(11), None, ts(10), &mut out).unwrap();
        assert_eq!(
            pushed,
            Pushed {
                empty: false,
                collectable: true
            }
        );
        assert_eq!(
            VersionList::decode(&out).unwrap(),
            list(&[(10, Some("a")), (11, None)])
        );
    }

    proptest! {
        /// One pass over the bytes writes what decode, push, trim and encode write, and
        /// fails where they fail: on any list, version and oldest snapshot, and on the
        /// list's bytes cut short, with one byte changed or one added.
        #[test]
        fn push_encoded_is_decode_push_trim_encode(
            l in any_list(),
            absent in any::<bool>(),
            step in 0u64..3,
            value in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..30)),
            oldest in 0u64..1100,
            near in proptest::option::of(0u64..4),
            damage in any::<prop::sample::Index>(),
            flip in 1u8..=255,
            mode in 0u8..3,
        ) {
            let bytes = l.encode().unwrap();
            let old = (!absent).then_some(bytes.as_slice());
            let newest = if absent { 0 } else { l.latest_ts().map_or(0, Timestamp::get) };
            // Step 0 is the newest present: refused.
            let at = ts((newest + step).max(1));
            // The oldest snapshot at or just below the new version (where trimming
            // decides most), or anywhere.
            let oldest = near.map_or(oldest, |back| at.get().saturating_sub(back));
            let mut out = vec![9; 7];
            let fast = push_encoded(old, at, value.as_deref(), ts(oldest), &mut out);
            match push_slow(old, at, value.as_deref(), ts(oldest)) {
                Ok((want, pushed)) => {
                    prop_assert_eq!(fast.unwrap(), pushed);
                    prop_assert_eq!(&out, &want);
                }
                Err(e) => prop_assert_eq!(fast.unwrap_err().to_string(), e.to_string()),
            }
            if !bytes.is_empty() {
                let mut bad = bytes.clone();
                let i = damage.index(bad.len());
                match mode {
                    0 => bad.truncate(i),
                    1 => bad[i] ^= flip,
                    _ => bad.push(flip),
                }
                let fast = push_encoded(Some(&bad), at, value.as_deref(), ts(oldest), &mut out);
                let slow = push_slow(Some(&bad), at, value.as_deref(), ts(oldest));
                prop_assert_eq!(fast.is_ok(), slow.is_ok(), "{:?} vs {:?}", fast, slow);
                if let (Ok(pushed), Ok((want, slow_pushed))) = (fast, slow) {
                    prop_assert_eq!(pushed, slow_pushed);
                    prop_assert_eq!(&out, &want);
                }
            }
        }

        #[test]
        fn encoding_round_trips(l in any_list()) {
            prop_assert_eq!(VersionList::decode(&l.encode().unwrap()).unwrap(), l);
        }

        #[test]
        fn truncations_and_random_bytes_are_errors_not_panics(l in any_list(), cut in any::<prop::sample::Index>(), junk in proptest::collection::vec(any::<u8>(), 0..200)) {
            let bytes = l.encode().unwrap();
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
