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
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteSet {
    writes: Vec<(Vec<u8>, Option<Vec<u8>>)>,
}

impl WriteSet {
    /// The writes, in key order.
    pub fn as_slice(&self) -> &[(Vec<u8>, Option<Vec<u8>>)] {
        &self.writes
    }

    /// The writes as `(key, value)`, in key order (`None`: a delete).
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&[u8], Option<&[u8]>)> + '_ {
        self.writes
            .iter()
            .map(|(k, v)| (k.as_slice(), v.as_deref()))
    }

    /// How many keys are written.
    pub fn len(&self) -> usize {
        self.writes.len()
    }

    /// Whether nothing is written.
    pub fn is_empty(&self) -> bool {
        self.writes.is_empty()
    }

    /// Whether `key` is written (a binary search: the writes are in key order).
    pub(crate) fn contains(&self, key: &[u8]) -> bool {
        self.writes
            .binary_search_by(|(k, _)| k.as_slice().cmp(key))
            .is_ok()
    }

    /// Whether a written key lies in `range`: the first key at or after its start (a
    /// binary search), if any, is the one to check against its end.
    pub(crate) fn touches(&self, range: &crate::KeyRange) -> bool {
        let first = self.writes.partition_point(|(k, _)| match &range.0 {
            std::ops::Bound::Included(s) => k < s,
            std::ops::Bound::Excluded(s) => k <= s,
            std::ops::Bound::Unbounded => false,
        });
        self.writes
            .get(first)
            .is_some_and(|(k, _)| crate::in_range(range, k))
    }
}

impl From<std::collections::BTreeMap<Vec<u8>, Option<Vec<u8>>>> for WriteSet {
    fn from(map: std::collections::BTreeMap<Vec<u8>, Option<Vec<u8>>>) -> Self {
        WriteSet {
            writes: map.into_iter().collect(),
        }
    }
}

impl From<std::collections::BTreeMap<WriteKey, Option<Vec<u8>>>> for WriteSet {
    fn from(map: std::collections::BTreeMap<WriteKey, Option<Vec<u8>>>) -> Self {
        WriteSet {
            writes: map.into_iter().map(|(k, v)| (k.bytes, v)).collect(),
        }
    }
}

/// A key of a transaction's write set (its `BTreeMap`), ordered as its bytes are, with its
/// first eight bytes kept beside them as a big-endian number (zero-padded): most
/// comparisons while a key is inserted are then one integer compare inside the map's node,
/// instead of a call to `memcmp` through a pointer to each key's heap block (which made
/// the inserts of a bulk load miss the cache once per comparison).
///
/// The order is exactly the bytes' lexicographic order: where the numbers differ they
/// differ at the first byte where the keys differ (a key that ended there counts as a zero
/// byte, and a key is smaller than any longer key it is a prefix of); where they are equal
/// the bytes decide. So lookups by `&[u8]` ([`Borrow`](std::borrow::Borrow)) agree with it.
#[derive(Debug, Clone)]
pub(crate) struct WriteKey {
    head: u64,
    bytes: Vec<u8>,
}

impl WriteKey {
    #[expect(
        clippy::big_endian_bytes,
        reason = "an in-memory sort key, never written to disk: big-endian makes number order byte order"
    )]
    pub(crate) fn new(bytes: Vec<u8>) -> Self {
        let mut head = [0u8; 8];
        for (h, b) in head.iter_mut().zip(&bytes) {
            *h = *b;
        }
        WriteKey {
            head: u64::from_be_bytes(head),
            bytes,
        }
    }

    pub(crate) fn as_vec(&self) -> &Vec<u8> {
        &self.bytes
    }
}

impl PartialEq for WriteKey {
    fn eq(&self, other: &Self) -> bool {
        self.head == other.head && self.bytes == other.bytes
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
            .then_with(|| self.bytes.cmp(&other.bytes))
    }
}

impl std::borrow::Borrow<[u8]> for WriteKey {
    fn borrow(&self) -> &[u8] {
        &self.bytes
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
/// A failure of either phase aborts the commit: nothing is applied or published, and it
/// causes no conflicts. The log must be prefix-durable: once `wait` has failed for a
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
    use super::WriteKey;
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
            shared in key(0..11),
            tail_a in key(0..4),
            tail_b in key(0..4),
        ) {
            let a = [shared.as_slice(), &tail_a].concat();
            let b = [shared.as_slice(), &tail_b].concat();
            let (ka, kb) = (WriteKey::new(a.clone()), WriteKey::new(b.clone()));
            prop_assert_eq!(ka.cmp(&kb), a.cmp(&b));
            prop_assert_eq!(ka == kb, a == b);
        }
    }
}
