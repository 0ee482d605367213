//! The logging seam of a commit: the write set, the two-phase [`CommitLog`] hook (the WAL),
//! and what a commit reports.

use lightning_page::Lsn;

use crate::Timestamp;

/// What a [`CommitLog`] returns when it fails: any error, kept whole as the cause of
/// [`Error::LogFailed`](crate::Error::LogFailed) or
/// [`Error::NotDurable`](crate::Error::NotDurable).
pub type LogError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A committing transaction's writes, in key order, each key once: `(key, Some(value))`
/// puts, `(key, None)` deletes. What a [`CommitLog`] records and the store applies.
///
/// The keys and values sit end to end in one byte buffer (a transaction's values are moved
/// in whole, not copied), with one small entry per key: a commit of a million keys is two
/// allocations, not two million, and freeing it is as cheap.
#[derive(Clone, Default)]
pub struct WriteSet {
    entries: Vec<Entry>,
    bytes: Vec<u8>,
}

/// Where one write's key and value lie in [`WriteSet::bytes`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    key: Span,
    /// `None`: a delete.
    value: Option<Span>,
}

/// Where a transaction's write of one key lies in its byte buffer: the key's copy at
/// `key_at` (its length is the key's), and the value (`None`: a delete).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Slot {
    pub(crate) key_at: usize,
    pub(crate) value: Option<Span>,
}

/// A range of a byte buffer: `len` bytes from `at`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    pub(crate) at: usize,
    pub(crate) len: usize,
}

impl Span {
    /// The bytes of `buf` this span covers (empty if it lies outside: spans are only made
    /// over the buffer they index).
    pub(crate) fn of(self, buf: &[u8]) -> &[u8] {
        buf.get(self.at..self.at.saturating_add(self.len))
            .unwrap_or_default()
    }
}

impl std::fmt::Debug for WriteSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl PartialEq for WriteSet {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for WriteSet {}

impl WriteSet {
    /// An empty write set.
    pub fn new() -> Self {
        WriteSet::default()
    }

    /// Appends a write (`None`: a delete) after the ones already in the set. Its key must
    /// be greater than every key before it, so the set stays in key order with each key
    /// once: else nothing is added and the result is [`Error::Corrupt`](crate::Error::Corrupt)
    /// (a decoded log record whose keys are out of order is damaged).
    pub fn push(&mut self, key: &[u8], value: Option<&[u8]>) -> crate::Result<()> {
        if let Some(last) = self.entries.last()
            && last.key.of(&self.bytes) >= key
        {
            return Err(crate::Error::Corrupt(
                "a write set's keys are not in ascending order",
            ));
        }
        let key = self.put_bytes(key);
        let value = value.map(|v| self.put_bytes(v));
        self.entries.push(Entry { key, value });
        Ok(())
    }

    fn put_bytes(&mut self, bytes: &[u8]) -> Span {
        let at = self.bytes.len();
        self.bytes.extend_from_slice(bytes);
        Span {
            at,
            len: bytes.len(),
        }
    }

    /// A transaction's write buffer as a write set: `writes` in key order, each with the
    /// spans of its key and value (or a delete) in `bytes`, which becomes the set's buffer.
    /// Nothing is copied.
    pub(crate) fn from_buffer(
        writes: std::collections::BTreeMap<WriteKey, Slot>,
        bytes: Vec<u8>,
    ) -> Self {
        let entries = writes
            .into_iter()
            .map(|(key, slot)| Entry {
                key: Span {
                    at: slot.key_at,
                    len: key.as_bytes().len(),
                },
                value: slot.value,
            })
            .collect();
        WriteSet { entries, bytes }
    }

    /// The writes as `(key, value)`, in key order (`None`: a delete).
    pub fn iter(
        &self,
    ) -> impl ExactSizeIterator<Item = (&[u8], Option<&[u8]>)> + DoubleEndedIterator + Clone + '_
    {
        self.entries.iter().map(|e| self.resolve(*e))
    }

    /// The write at `index` in key order, if there are that many.
    pub fn get(&self, index: usize) -> Option<(&[u8], Option<&[u8]>)> {
        self.entries.get(index).map(|e| self.resolve(*e))
    }

    fn resolve(&self, e: Entry) -> (&[u8], Option<&[u8]>) {
        (e.key.of(&self.bytes), e.value.map(|v| v.of(&self.bytes)))
    }

    fn key(&self, index: usize) -> Option<&[u8]> {
        self.entries.get(index).map(|e| e.key.of(&self.bytes))
    }

    /// How many keys are written.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is written.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether `key` is written (a binary search: the writes are in key order).
    pub(crate) fn contains(&self, key: &[u8]) -> bool {
        self.entries
            .binary_search_by(|e| e.key.of(&self.bytes).cmp(key))
            .is_ok()
    }

    /// Whether a written key lies in `range`: the first key at or after its start (a
    /// binary search), if any, is the one to check against its end.
    pub(crate) fn touches(&self, range: &crate::KeyRange) -> bool {
        let first = self.entries.partition_point(|e| {
            let k = e.key.of(&self.bytes);
            match &range.0 {
                std::ops::Bound::Included(s) => k < s.as_slice(),
                std::ops::Bound::Excluded(s) => k <= s.as_slice(),
                std::ops::Bound::Unbounded => false,
            }
        });
        self.key(first).is_some_and(|k| crate::in_range(range, k))
    }
}

impl From<std::collections::BTreeMap<Vec<u8>, Option<Vec<u8>>>> for WriteSet {
    fn from(map: std::collections::BTreeMap<Vec<u8>, Option<Vec<u8>>>) -> Self {
        let mut set = WriteSet::new();
        set.entries.reserve(map.len());
        for (k, v) in &map {
            // A map's keys are ascending and distinct: every push is accepted.
            let key = set.put_bytes(k);
            let value = v.as_deref().map(|v| set.put_bytes(v));
            set.entries.push(Entry { key, value });
        }
        set
    }
}

/// How many bytes of a key a [`WriteKey`] keeps inline; longer keys are kept on the heap.
const INLINE_KEY: usize = 38;

/// A write key's bytes: inline when short (no allocation per write), else on the heap.
#[derive(Debug, Clone)]
enum KeyBytes {
    Inline { len: u8, bytes: [u8; INLINE_KEY] },
    Heap(Box<[u8]>),
}

/// A key of a transaction's write set (its `BTreeMap`), ordered as its bytes are, with its
/// first eight bytes kept beside them as a big-endian number (zero-padded): most
/// comparisons while a key is inserted are then one integer compare inside the map's node,
/// instead of a call to `memcmp` through a pointer to each key's heap block (which made
/// the inserts of a bulk load miss the cache once per comparison). A key of up to
/// 38 bytes is kept inside the map's node, so writing it allocates nothing.
///
/// The order is exactly the bytes' lexicographic order: where the numbers differ they
/// differ at the first byte where the keys differ (a key that ended there counts as a zero
/// byte, and a key is smaller than any longer key it is a prefix of); where they are equal
/// the bytes decide. So lookups by `&[u8]` ([`Borrow`](std::borrow::Borrow)) agree with it.
#[derive(Debug, Clone)]
pub(crate) struct WriteKey {
    head: u64,
    bytes: KeyBytes,
}

impl WriteKey {
    #[expect(
        clippy::big_endian_bytes,
        reason = "an in-memory sort key, never written to disk: big-endian makes number order byte order"
    )]
    pub(crate) fn new(key: &[u8]) -> Self {
        let mut head = [0u8; 8];
        for (h, b) in head.iter_mut().zip(key) {
            *h = *b;
        }
        let bytes = match u8::try_from(key.len()) {
            Ok(len) if key.len() <= INLINE_KEY => {
                let mut bytes = [0u8; INLINE_KEY];
                bytes[..key.len()].copy_from_slice(key);
                KeyBytes::Inline { len, bytes }
            }
            _ => KeyBytes::Heap(key.into()),
        };
        WriteKey {
            head: u64::from_be_bytes(head),
            bytes,
        }
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        match &self.bytes {
            KeyBytes::Inline { len, bytes } => bytes.get(..usize::from(*len)).unwrap_or_default(),
            KeyBytes::Heap(b) => b,
        }
    }
}

impl PartialEq for WriteKey {
    fn eq(&self, other: &Self) -> bool {
        self.head == other.head && self.as_bytes() == other.as_bytes()
    }
}

impl Eq for WriteKey {}

impl PartialOrd for WriteKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for WriteKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.head
            .cmp(&other.head)
            .then_with(|| self.as_bytes().cmp(other.as_bytes()))
    }
}

impl std::borrow::Borrow<[u8]> for WriteKey {
    fn borrow(&self) -> &[u8] {
        self.as_bytes()
    }
}

/// Where commits are logged before they are applied: the write-ahead log. Two phases, so
/// that the log's order is the commit-timestamp order while the wait for durability is
/// shared (group commit):
///
/// 1. [`log`](Self::log) is called under the commit ordering — after validation, with the
///    commit timestamp just issued, before the next commit can be stamped — so records
///    reach the log in commit-timestamp order, and "replay every record above the
///    checkpoint LSN, in log order" replays exactly the commits the checkpoint lacks. It
///    must only append (queue) the record, not wait for I/O: every other commit waits
///    behind it.
/// 2. [`wait`](Self::wait) is called outside the ordering, concurrently with other commits'
///    `log` and `wait`; it returns once the record is durable, with its LSN. The commit then
///    applies in timestamp order (so in LSN order) and reports the LSN
///    ([`Committed::lsn`]).
///
/// A log that knows a record's LSN as soon as it is queued says so
/// ([`logged_lsn`](Self::logged_lsn)), and its commits take the early order instead (ADR
/// 013): the commit releases its locks once logged, applies in timestamp order at once, and
/// only then waits for durability. It is visible to new snapshots once durable, and to a
/// transaction that takes one of its keys' locks at once (that transaction's own record
/// comes later in the log).
///
/// In the plain order, a failure of either phase aborts the commit: nothing is applied or
/// published, and it causes no conflicts. In the early order a failed `wait` comes after the
/// apply: the commit and everything after it stay invisible to new snapshots for good
/// ([`TimestampOracle::stall`](crate::TimestampOracle::stall)). The log must be prefix-durable: once `wait` has failed for a
/// ticket it must fail for every later one (a log whose write or fsync failed is poisoned,
/// as `lightning-wal`'s is), or a later commit would be applied while an earlier record of
/// unknown fate sits before it in the log.
///
/// With `lightning-wal`, `log` is `wal.append(kind, &record, Durability::None)` (queued, not
/// waited for) and `wait` is `appended.wait()` then `appended.lsn()`.
pub trait CommitLog {
    /// What [`log`](Self::log) hands to [`wait`](Self::wait): the record's place in the log.
    type Ticket;

    /// Appends the record of the commit at `commit_ts`, whose writes are `writes`. Called
    /// under the commit ordering, in commit-timestamp order.
    fn log(&self, writes: &WriteSet, commit_ts: Timestamp) -> Result<Self::Ticket, LogError>;

    /// Waits until the record behind `ticket` is durable and returns its LSN. Called outside
    /// the commit ordering.
    fn wait(&self, ticket: Self::Ticket) -> Result<Lsn, LogError>;

    /// Whether [`wait`](Self::wait) on `ticket` may block (an fsync to wait for). When it
    /// cannot, a commit with no earlier commit still in flight applies and publishes at once,
    /// under the commit ordering, instead of taking its turn after it: nothing can come
    /// between its log record and its apply. The default, `true`, always takes the turn.
    fn may_block(&self, ticket: &Self::Ticket) -> bool {
        let _ = ticket;
        true
    }

    /// The LSN of the record behind `ticket` if it is already known (the record is queued
    /// at a fixed place), or `None`. With `Some`, the commit applies before it waits for
    /// durability (the early order above); the default, `None`, keeps the plain order.
    fn logged_lsn(&self, ticket: &Self::Ticket) -> Option<Lsn> {
        let _ = ticket;
        None
    }
}

/// A [`CommitLog`] that logs nothing: commits are not durable, and each reports
/// [`Lsn::ZERO`] ("before the first record"). For tests and in-memory use.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NoLog;

impl CommitLog for NoLog {
    type Ticket = ();

    fn log(&self, _writes: &WriteSet, _commit_ts: Timestamp) -> Result<(), LogError> {
        Ok(())
    }

    fn wait(&self, (): ()) -> Result<Lsn, LogError> {
        Ok(Lsn::ZERO)
    }

    fn may_block(&self, (): &()) -> bool {
        false
    }
}

/// What a successful [`Transaction::commit`](crate::Transaction::commit) reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Committed {
    /// The commit timestamp; for a transaction that wrote nothing, its snapshot.
    pub ts: Timestamp,
    /// The LSN of the commit's log record ([`CommitLog::wait`]'s); `None` for a transaction
    /// that wrote nothing (it logs no record).
    pub lsn: Option<Lsn>,
}

#[cfg(test)]
mod tests {
    use super::{WriteKey, WriteSet};
    use proptest::prelude::*;

    /// Short keys over a small alphabet with zeros: prefixes of each other, keys that end
    /// inside the eight bytes, and zero bytes where a shorter key is padded.
    fn key(len: std::ops::Range<usize>) -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(prop_oneof![Just(0u8), Just(1u8), Just(255u8)], len)
    }

    proptest! {
        /// A write key orders, and equals, exactly as its bytes do; the two keys share a
        /// prefix (often all eight bytes the numbers hold, so the bytes must decide).
        #[test]
        fn write_keys_order_as_their_bytes(
            shared in key(0..45),
            tail_a in key(0..4),
            tail_b in key(0..4),
        ) {
            let a = [shared.as_slice(), &tail_a].concat();
            let b = [shared.as_slice(), &tail_b].concat();
            let (ka, kb) = (WriteKey::new(&a), WriteKey::new(&b));
            prop_assert_eq!(ka.cmp(&kb), a.cmp(&b));
            prop_assert_eq!(ka == kb, a == b);
        }
    }

    proptest! {
        /// A write set built by `push` equals one built from a map, iterates as the map
        /// does, finds exactly the map's keys, and refuses a key at or below the last one.
        #[test]
        fn a_write_set_holds_its_writes_in_key_order(
            map in proptest::collection::btree_map(
                key(0..50),
                proptest::option::of(key(0..20)),
                0..30,
            ),
            probes in proptest::collection::vec(key(0..50), 0..20),
        ) {
            let mut pushed = WriteSet::new();
            for (k, v) in &map {
                pushed.push(k, v.as_deref()).unwrap();
            }
            let set = WriteSet::from(map.clone());
            prop_assert_eq!(&pushed, &set);
            prop_assert_eq!(set.len(), map.len());
            let back: Vec<(&[u8], Option<&[u8]>)> = set.iter().collect();
            let want: Vec<(&[u8], Option<&[u8]>)> =
                map.iter().map(|(k, v)| (k.as_slice(), v.as_deref())).collect();
            prop_assert_eq!(back, want);
            for (i, (k, v)) in map.iter().enumerate() {
                prop_assert_eq!(set.get(i), Some((k.as_slice(), v.as_deref())));
                prop_assert!(set.contains(k));
                prop_assert!(pushed.push(k, None).is_err(), "a key at or below the last");
            }
            prop_assert_eq!(set.get(map.len()), None);
            for p in &probes {
                prop_assert_eq!(set.contains(p), map.contains_key(p));
            }
            prop_assert_eq!(&pushed, &set, "a refused push adds nothing");
        }
    }
}
