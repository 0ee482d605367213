//! The WAL record of a commit: its timestamp and whole write set
//! (`docs/format/database.md`).
//!
//! ```text
//! payload := format:u8 (=1) commit_ts:u64 count:u32 write*count
//! write   := keyspace:u32 key_len:u32 key kind:u8 (0 delete, 1 put) [value_len:u32 value]
//! ```
//!
//! and the record of a keyspace created or dropped ([`KEYSPACE`]):
//!
//! ```text
//! payload := format:u8 (=1) op:u8 (1 create, 2 drop) id:u32 name_len:u32 name (UTF-8)
//! ```
//!
//! Integers are little-endian. The WAL frame around it carries the record type
//! ([`COMMIT`] or [`KEYSPACE`]), the wall-clock time and the CRC that makes the record
//! atomic.

use lightning_mvcc::{Timestamp, WriteSet};

use crate::keys;

/// The WAL record type of a commit.
pub(crate) const COMMIT: u8 = 1;
/// The WAL record type of a keyspace created or dropped.
pub(crate) const KEYSPACE: u8 = 2;
/// The payload format this build writes and reads.
const FORMAT: u8 = 1;
/// Bytes of the payload header.
pub(crate) const HEADER: u64 = 13;
/// Bytes a deletion adds besides its key (a put adds 4 more: the value's length).
pub(crate) const PER_WRITE: u64 = 9;

/// A decoded commit record: its timestamp and writes, keys with their keyspace prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Commit {
    pub(crate) ts: Timestamp,
    pub(crate) writes: WriteSet,
}

/// The encoded length of a write of `key_len` and `value` bytes.
pub(crate) fn write_len(key_len: usize, value_len: Option<usize>) -> u64 {
    PER_WRITE + key_len as u64 + value_len.map_or(0, |v| 4 + v as u64)
}

/// Encodes a commit whose keys carry their keyspace prefix ([`keys::split`]).
///
/// The caller bounds the sizes ([`write_len`] against `max_txn_bytes`, at most 1 GiB), so
/// every length fits its `u32`; a key without a prefix is encoded with keyspace 0 (there is
/// none, and replay refuses it), which cannot happen for keys the database built.
pub(crate) fn encode<'a>(
    ts: Timestamp,
    writes: impl ExactSizeIterator<Item = (&'a [u8], Option<&'a [u8]>)> + Clone,
) -> Vec<u8> {
    let len: u64 = HEADER
        + writes
            .clone()
            .map(|(k, v)| write_len(k.len(), v.map(<[u8]>::len)))
            .sum::<u64>();
    let mut out = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    out.push(FORMAT);
    out.extend_from_slice(&ts.get().to_le_bytes());
    out.extend_from_slice(&u32_len(writes.len()).to_le_bytes());
    for (key, value) in writes {
        let (id, user) = keys::split(key).unwrap_or((0, key));
        out.extend_from_slice(&id.to_le_bytes());
        out.extend_from_slice(&u32_len(user.len()).to_le_bytes());
        out.extend_from_slice(user);
        match value {
            None => out.push(0),
            Some(v) => {
                out.push(1);
                out.extend_from_slice(&u32_len(v.len()).to_le_bytes());
                out.extend_from_slice(v);
            }
        }
    }
    out
}

fn u32_len(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], String> {
        let Some((head, rest)) = self.rest.split_at_checked(n) else {
            return Err(format!(
                "{what} needs {n} bytes, {} are left in the record",
                self.rest.len()
            ));
        };
        self.rest = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], String> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N, what)?);
        Ok(a)
    }

    fn u32(&mut self, what: &'static str) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }
}

/// Decodes a commit record's payload; bytes are untrusted, and the error says what is
/// wrong (the caller adds the file and LSN).
pub(crate) fn decode(payload: &[u8]) -> Result<Commit, String> {
    let mut r = Reader { rest: payload };
    let [format] = r.array::<1>("the format byte")?;
    if format != FORMAT {
        return Err(format!(
            "commit record format {format}, this build reads format {FORMAT}"
        ));
    }
    let ts = Timestamp::new(u64::from_le_bytes(r.array("the commit timestamp")?));
    let count = r.u32("the write count")?;
    // Each write takes at least 9 bytes: a count beyond that is damage, not a reason to
    // reserve memory.
    if u64::from(count) * 9 > r.rest.len() as u64 {
        return Err(format!(
            "{count} writes cannot fit the {} bytes left in the record",
            r.rest.len()
        ));
    }
    let mut writes = WriteSet::new();
    let mut key = Vec::new();
    for i in 0..count {
        let id = r.u32("a write's keyspace")?;
        let key_len = r.u32("a write's key length")? as usize;
        let user = r.take(key_len, "a write's key")?;
        let [kind] = r.array::<1>("a write's kind")?;
        let value = match kind {
            0 => None,
            1 => {
                let len = r.u32("a write's value length")? as usize;
                Some(r.take(len, "a write's value")?)
            }
            k => {
                return Err(format!(
                    "write {i} has kind {k}, neither 0 (delete) nor 1 (put)"
                ));
            }
        };
        key.clear();
        key.extend_from_slice(&keys::prefix(id));
        key.extend_from_slice(user);
        writes
            .push(&key, value)
            .map_err(|_| format!("write {i}'s key is not above the key before it"))?;
    }
    if !r.rest.is_empty() {
        return Err(format!(
            "{} bytes follow the last of the {count} writes",
            r.rest.len()
        ));
    }
    Ok(Commit { ts, writes })
}

/// A keyspace created or dropped, as the WAL records it: replaying the log from an older
/// image (a point-in-time restore from a backup) finds the catalog as it was at each LSN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Ddl {
    Create { id: u32, name: String },
    Drop { id: u32, name: String },
}

/// Encodes a keyspace record.
pub(crate) fn encode_ddl(ddl: &Ddl) -> Vec<u8> {
    let (op, id, name) = match ddl {
        Ddl::Create { id, name } => (1u8, *id, name),
        Ddl::Drop { id, name } => (2u8, *id, name),
    };
    let mut out = Vec::with_capacity(10 + name.len());
    out.push(FORMAT);
    out.push(op);
    out.extend_from_slice(&id.to_le_bytes());
    out.extend_from_slice(&u32_len(name.len()).to_le_bytes());
    out.extend_from_slice(name.as_bytes());
    out
}

/// Decodes a keyspace record's payload (untrusted bytes; the name is checked by the
/// caller as every keyspace name is).
pub(crate) fn decode_ddl(payload: &[u8]) -> Result<Ddl, String> {
    let mut r = Reader { rest: payload };
    let [format, op] = r.array::<2>("the format and operation bytes")?;
    if format != FORMAT {
        return Err(format!(
            "keyspace record format {format}, this build reads format {FORMAT}"
        ));
    }
    let id = r.u32("the keyspace id")?;
    let len = r.u32("the name's length")? as usize;
    let name = r.take(len, "the keyspace name")?;
    if !r.rest.is_empty() {
        return Err(format!("{} bytes follow the keyspace name", r.rest.len()));
    }
    let name = String::from_utf8(name.to_vec())
        .map_err(|_| "the keyspace name is not UTF-8".to_owned())?;
    match op {
        1 => Ok(Ddl::Create { id, name }),
        2 => Ok(Ddl::Drop { id, name }),
        op => Err(format!(
            "keyspace operation {op}, neither 1 (create) nor 2 (drop)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn a_commit_round_trips_and_its_length_is_predicted(
            ts in any::<u64>(),
            writes in proptest::collection::vec(
                (1u32..5, proptest::collection::vec(any::<u8>(), 0..20),
                 proptest::option::of(proptest::collection::vec(any::<u8>(), 0..40))),
                0..20,
            ),
        ) {
            // A transaction's writes: in key order, each key once.
            let writes: std::collections::BTreeMap<Vec<u8>, Option<Vec<u8>>> =
                writes.into_iter().map(|(id, k, v)| (keys::join(id, &k), v)).collect();
            let bytes = encode(
                Timestamp::new(ts),
                writes.iter().map(|(k, v)| (k.as_slice(), v.as_deref())),
            );
            let predicted = HEADER
                + writes
                    .iter()
                    .map(|(k, v)| write_len(k.len() - keys::PREFIX, v.as_ref().map(Vec::len)))
                    .sum::<u64>();
            prop_assert_eq!(bytes.len() as u64, predicted);
            let back = decode(&bytes).unwrap();
            prop_assert_eq!(back, Commit { ts: Timestamp::new(ts), writes: WriteSet::from(writes) });
        }

        #[test]
        fn damaged_bytes_are_an_error_never_a_panic(
            bytes in proptest::collection::vec(any::<u8>(), 0..200),
        ) {
            let _decoded = decode(&bytes);
        }
    }

    #[test]
    fn a_keyspace_record_round_trips_and_a_cut_or_damaged_one_is_refused() {
        for ddl in [
            Ddl::Create {
                id: 7,
                name: "users".into(),
            },
            Ddl::Drop {
                id: u32::MAX - 2,
                name: "a:b".into(),
            },
        ] {
            let bytes = encode_ddl(&ddl);
            assert_eq!(decode_ddl(&bytes).unwrap(), ddl);
            for cut in 0..bytes.len() {
                assert!(decode_ddl(&bytes[..cut]).is_err(), "cut at {cut}");
            }
            let mut longer = bytes.clone();
            longer.push(b'x');
            assert!(decode_ddl(&longer).unwrap_err().contains("follow"));
            let mut bad_op = bytes.clone();
            bad_op[1] = 3;
            assert!(decode_ddl(&bad_op).unwrap_err().contains("operation 3"));
        }
    }

    #[test]
    fn a_cut_record_is_refused_at_every_length() {
        let writes = [
            (keys::join(3, b"k2"), None),
            (keys::join(3, b"key"), Some(b"value".to_vec())),
        ];
        let bytes = encode(
            Timestamp::new(9),
            writes.iter().map(|(k, v)| (k.as_slice(), v.as_deref())),
        );
        for cut in 0..bytes.len() {
            assert!(decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(decode(&longer).unwrap_err().contains("follow"));
    }

    #[test]
    fn a_record_whose_keys_are_out_of_order_or_repeated_is_refused() {
        for keys in [[b"b", b"a"], [b"a", b"a"]] {
            let writes = keys.map(|k| (keys::join(3, k), Some(b"v".to_vec())));
            let bytes = encode(
                Timestamp::new(9),
                writes.iter().map(|(k, v)| (k.as_slice(), v.as_deref())),
            );
            let err = decode(&bytes).unwrap_err();
            assert!(err.contains("write 1's key is not above"), "{err}");
        }
    }
}
