//! Keys as the transaction layer sees them: a 4-byte keyspace id, then the user's key.
//!
//! The id is big-endian so that byte order is (keyspace, key) order: a keyspace's keys are
//! one contiguous range of the transaction layer's key space, `[prefix(id), prefix(id + 1))`.
//! This prefix exists only in memory and in WAL records' decoding; each keyspace's B+tree
//! stores the user's keys without it.

use std::ops::Bound;

use lightning_mvcc::KeyRange;

/// Bytes of the keyspace prefix.
pub(crate) const PREFIX: usize = 4;

#[expect(
    clippy::big_endian_bytes,
    reason = "an in-memory sort key, never written to disk: big-endian makes byte order id order"
)]
pub(crate) fn prefix(id: u32) -> [u8; PREFIX] {
    id.to_be_bytes()
}

/// `id`'s prefix followed by `key`.
pub(crate) fn join(id: u32, key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(PREFIX + key.len());
    k.extend_from_slice(&prefix(id));
    k.extend_from_slice(key);
    k
}

/// The keyspace id and user key of a prefixed key.
#[expect(
    clippy::big_endian_bytes,
    reason = "the in-memory sort key of `prefix`"
)]
pub(crate) fn split(key: &[u8]) -> Option<(u32, &[u8])> {
    let (id, user) = key.split_first_chunk::<PREFIX>()?;
    Some((u32::from_be_bytes(*id), user))
}

/// The prefixed range of keys of keyspace `id` within the user's `(start, end)` bounds.
pub(crate) fn range(id: u32, start: Bound<&[u8]>, end: Bound<&[u8]>) -> KeyRange {
    let start = match start {
        Bound::Included(k) => Bound::Included(join(id, k)),
        Bound::Excluded(k) => Bound::Excluded(join(id, k)),
        Bound::Unbounded => Bound::Included(prefix(id).to_vec()),
    };
    (start, end_bound(id, end))
}

fn end_bound(id: u32, end: Bound<&[u8]>) -> Bound<Vec<u8>> {
    match end {
        Bound::Included(k) => Bound::Included(join(id, k)),
        Bound::Excluded(k) => Bound::Excluded(join(id, k)),
        // Ids stop below u32::MAX (the catalog refuses to issue it), so id + 1 exists.
        Bound::Unbounded => Bound::Excluded(prefix(id.saturating_add(1)).to_vec()),
    }
}

/// The prefixed range of keys of keyspace `id` that start with `p`.
pub(crate) fn prefix_range(id: u32, p: &[u8]) -> KeyRange {
    let mut end = p.to_vec();
    while end.last() == Some(&u8::MAX) {
        end.pop();
    }
    let end = match end.last_mut() {
        Some(last) => {
            *last += 1;
            end_bound(id, Bound::Excluded(&end))
        }
        None => end_bound(id, Bound::Unbounded),
    };
    (Bound::Included(join(id, p)), end)
}

/// A prefixed range as keyspace id and the user's bounds: the id of the start bound, and
/// an end bound past that keyspace as `Unbounded`. `None` for a range that does not start
/// inside a keyspace (the database builds none).
pub(crate) fn unprefix(range: &KeyRange) -> Option<(u32, KeyRange)> {
    let (id, start) = match &range.0 {
        Bound::Included(k) => {
            let (id, user) = split(k)?;
            (id, Bound::Included(user.to_vec()))
        }
        Bound::Excluded(k) => {
            let (id, user) = split(k)?;
            (id, Bound::Excluded(user.to_vec()))
        }
        Bound::Unbounded => return None,
    };
    let end = match &range.1 {
        Bound::Included(k) | Bound::Excluded(k) => match split(k) {
            Some((eid, user)) if eid == id => match &range.1 {
                Bound::Included(_) => Bound::Included(user.to_vec()),
                _ => Bound::Excluded(user.to_vec()),
            },
            // An end in a later keyspace: the rest of this one.
            Some((eid, _)) if eid > id => Bound::Unbounded,
            // A shorter key is a prefix of id's, at or below it: nothing of id qualifies
            // unless it sorts above, which `k >= prefix(id + 1)` covers.
            _ if k.as_slice() > prefix(id).as_slice() => Bound::Unbounded,
            _ => Bound::Excluded(Vec::new()),
        },
        Bound::Unbounded => Bound::Unbounded,
    };
    Some((id, (start, end)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use lightning_mvcc::in_range;
    use proptest::prelude::*;

    fn user_bound(kind: u8, k: Vec<u8>) -> Bound<Vec<u8>> {
        match kind % 3 {
            0 => Bound::Included(k),
            1 => Bound::Excluded(k),
            _ => Bound::Unbounded,
        }
    }

    proptest! {
        /// A user range of one keyspace, prefixed, holds exactly that keyspace's keys in
        /// the user range, and unprefixes back to the same user range.
        #[test]
        fn a_prefixed_range_is_the_user_range_within_its_keyspace(
            id in 0u32..4,
            (sk, s, ek, e) in (any::<u8>(), proptest::collection::vec(any::<u8>(), 0..3),
                               any::<u8>(), proptest::collection::vec(any::<u8>(), 0..3)),
            probes in proptest::collection::vec((0u32..5, proptest::collection::vec(any::<u8>(), 0..3)), 1..40),
        ) {
            let (ub_s, ub_e) = (user_bound(sk, s), user_bound(ek, e));
            let r = range(id, ub_s.as_ref().map(Vec::as_slice), ub_e.as_ref().map(Vec::as_slice));
            let user: KeyRange = (ub_s.clone(), ub_e.clone());
            for (pid, k) in probes {
                let want = pid == id && in_range(&user, &k);
                prop_assert_eq!(in_range(&r, &join(pid, &k)), want);
            }
            let (back_id, (bs, be)) = unprefix(&r).unwrap();
            prop_assert_eq!(back_id, id);
            let start_want = match ub_s { Bound::Unbounded => Bound::Included(Vec::new()), b => b };
            prop_assert_eq!(bs, start_want);
            prop_assert_eq!(be, ub_e);
        }

        #[test]
        fn a_prefix_range_holds_the_keys_with_the_prefix(
            id in 0u32..3,
            p in proptest::collection::vec(prop_oneof![Just(0u8), Just(1), Just(254), Just(255)], 0..3),
            probes in proptest::collection::vec((0u32..4, proptest::collection::vec(prop_oneof![Just(0u8), Just(1), Just(254), Just(255)], 0..4)), 1..40),
        ) {
            let r = prefix_range(id, &p);
            for (pid, k) in probes {
                let want = pid == id && k.starts_with(&p);
                prop_assert_eq!(in_range(&r, &join(pid, &k)), want, "{:?} {:?}", pid, k);
            }
        }
    }

    #[test]
    fn split_refuses_a_key_shorter_than_the_prefix() {
        assert_eq!(split(&[1, 2, 3]), None);
        assert_eq!(split(&join(7, b"x")), Some((7, &b"x"[..])));
    }
}
