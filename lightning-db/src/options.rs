//! How a database is opened: every knob, its unit and default, and its validation.

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// The largest [`Options::max_txn_bytes`] any open may set: the WAL reads records up to this
/// size whatever the current open's limit, so a record written under a larger limit is
/// never taken for a torn tail.
pub(crate) const MAX_TXN_BYTES_LIMIT: u64 = 1 << 30;

/// When a commit counts as done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Durability {
    /// `commit` returns once the commit's WAL record is fsynced (group commit shares one
    /// fsync among concurrent committers). A crash loses nothing that returned.
    #[default]
    Immediate,
    /// `commit` returns once the record is in the log's buffer; a background flusher
    /// fsyncs it within [`Options::flush_interval_ms`]. A crash may lose the last commits
    /// of that window, and only as a suffix (never one without the ones before it).
    Eventual,
    /// `commit` returns at once; the record becomes durable with the next fsync of the
    /// log (a later `Immediate` commit, the flusher, or a checkpoint). For bulk loads.
    None,
}

/// Options of [`Database::open`](crate::Database::open). Serde (de)serializable (unknown
/// fields are refused, missing ones take their default), validated on open: a value out of
/// range is [`Error::InvalidOption`] naming the field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Options {
    /// Create the database when the directory holds none. Default `true`.
    pub create_if_missing: bool,
    /// Open for reading only, for inspection tools: no file is created or written (the
    /// WAL's torn tail is not cut; its commits are replayed into memory), writes fail with
    /// `Error::ReadOnly`, and nothing runs in the background. The directory's lock is still
    /// taken, so a database open elsewhere is `Error::Locked`. Default `false`.
    pub read_only: bool,
    /// Page size in bytes of a new database: a power of two from 4096 to 65536. An existing
    /// database keeps the size it was created with. Default 8192.
    pub page_size: u32,
    /// Bytes of the page cache (buffer pool). At least 64 pages. Default 256 MiB.
    pub cache_bytes: u64,
    /// Durability of commits that do not choose their own
    /// ([`TxOptions::durability`](crate::TxOptions::durability)). Default `Immediate`.
    pub durability: Durability,
    /// Milliseconds within which the background flusher fsyncs `Eventual` commits: 1 to
    /// 10000. Default 10.
    pub flush_interval_ms: u64,
    /// Bytes of one WAL segment file: 64 KiB to 1 GiB. Default 16 MiB.
    pub wal_segment_bytes: u64,
    /// Largest write set of one transaction, in bytes of its WAL record (keys, values and
    /// 13 bytes per write): 64 KiB to 1 GiB. Default 16 MiB. It bounds new transactions
    /// only: records a previous open wrote under a larger limit are read back whatever it is.
    pub max_txn_bytes: u64,
    /// A background checkpoint starts once this many bytes of WAL were written since the
    /// last one. At least 1 MiB. Default 64 MiB.
    pub checkpoint_wal_bytes: u64,
    /// Milliseconds between background checkpoints when anything was committed meanwhile; 0
    /// turns the background checkpointer (and background version GC) off. Default 30000.
    pub checkpoint_interval_ms: u64,
    /// Milliseconds a pessimistic transaction waits for a lock before
    /// [`Error::is_retryable`] lock-timeout error: 1 to 3,600,000. Default 5000.
    pub lock_timeout_ms: u64,
    /// Attempts of [`Database::update`](crate::Database::update) before it returns the last
    /// retryable error: 1 to 1000. Default 16.
    pub max_update_attempts: u32,
    /// Where WAL segments go once no retained checkpoint needs them, for point-in-time
    /// recovery (`lightning_backup::restore` with a target, `lightning restore --to-lsn`
    /// / `--to-time`); a relative path is taken from the database directory. Keep it on
    /// another disk than the database, so that losing one keeps the other. `None` (the
    /// default) deletes them.
    pub wal_archive_dir: Option<std::path::PathBuf>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            create_if_missing: true,
            read_only: false,
            page_size: 8192,
            cache_bytes: 256 << 20,
            durability: Durability::Immediate,
            flush_interval_ms: 10,
            wal_segment_bytes: 16 << 20,
            max_txn_bytes: 16 << 20,
            checkpoint_wal_bytes: 64 << 20,
            checkpoint_interval_ms: 30_000,
            lock_timeout_ms: 5000,
            max_update_attempts: 16,
            wal_archive_dir: None,
        }
    }
}

fn refuse(option: &'static str, reason: impl Into<String>) -> Error {
    Error::InvalidOption {
        option,
        reason: reason.into(),
    }
}

fn within(option: &'static str, value: u64, lo: u64, hi: u64, unit: &str) -> Result<()> {
    if (lo..=hi).contains(&value) {
        Ok(())
    } else {
        Err(refuse(
            option,
            format!("{value} {unit} is outside {lo}..={hi} {unit}"),
        ))
    }
}

impl Options {
    /// Checks every field; the first one out of range is the error.
    pub fn validate(&self) -> Result<()> {
        if !self.page_size.is_power_of_two() || !(4096..=65536).contains(&self.page_size) {
            return Err(refuse(
                "page_size",
                format!(
                    "{} bytes is not a power of two from 4096 to 65536",
                    self.page_size
                ),
            ));
        }
        let min_cache = 64 * u64::from(self.page_size);
        if self.cache_bytes < min_cache {
            return Err(refuse(
                "cache_bytes",
                format!(
                    "{} bytes is less than 64 pages ({min_cache} bytes)",
                    self.cache_bytes
                ),
            ));
        }
        within("flush_interval_ms", self.flush_interval_ms, 1, 10_000, "ms")?;
        within(
            "wal_segment_bytes",
            self.wal_segment_bytes,
            64 << 10,
            1 << 30,
            "bytes",
        )?;
        within(
            "max_txn_bytes",
            self.max_txn_bytes,
            64 << 10,
            MAX_TXN_BYTES_LIMIT,
            "bytes",
        )?;
        within(
            "checkpoint_wal_bytes",
            self.checkpoint_wal_bytes,
            1 << 20,
            u64::MAX,
            "bytes",
        )?;
        within(
            "checkpoint_interval_ms",
            self.checkpoint_interval_ms,
            0,
            u64::MAX,
            "ms",
        )?;
        within("lock_timeout_ms", self.lock_timeout_ms, 1, 3_600_000, "ms")?;
        within(
            "max_update_attempts",
            u64::from(self.max_update_attempts),
            1,
            1000,
            "attempts",
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_valid_and_round_trip_through_json() {
        let o = Options::default();
        o.validate().unwrap();
        let json = serde_json::to_string(&o).unwrap();
        let back: Options = serde_json::from_str(&json).unwrap();
        assert_eq!(back, o);
        let partial: Options = serde_json::from_str(r#"{"durability":"eventual"}"#).unwrap();
        assert_eq!(partial.durability, Durability::Eventual);
        assert_eq!(partial.page_size, 8192);
    }

    #[test]
    fn an_unknown_field_is_refused() {
        let err = serde_json::from_str::<Options>(r#"{"page_sise":4096}"#).unwrap_err();
        assert!(err.to_string().contains("page_sise"), "{err}");
    }

    #[test]
    fn each_out_of_range_field_is_named() {
        let cases: Vec<(&str, Options)> = vec![
            (
                "page_size",
                Options {
                    page_size: 5000,
                    ..Options::default()
                },
            ),
            (
                "page_size",
                Options {
                    page_size: 1 << 17,
                    ..Options::default()
                },
            ),
            (
                "cache_bytes",
                Options {
                    cache_bytes: 4096,
                    ..Options::default()
                },
            ),
            (
                "flush_interval_ms",
                Options {
                    flush_interval_ms: 0,
                    ..Options::default()
                },
            ),
            (
                "wal_segment_bytes",
                Options {
                    wal_segment_bytes: 1,
                    ..Options::default()
                },
            ),
            (
                "max_txn_bytes",
                Options {
                    max_txn_bytes: 2 << 30,
                    ..Options::default()
                },
            ),
            (
                "checkpoint_wal_bytes",
                Options {
                    checkpoint_wal_bytes: 10,
                    ..Options::default()
                },
            ),
            (
                "lock_timeout_ms",
                Options {
                    lock_timeout_ms: 0,
                    ..Options::default()
                },
            ),
            (
                "max_update_attempts",
                Options {
                    max_update_attempts: 0,
                    ..Options::default()
                },
            ),
        ];
        for (field, o) in cases {
            match o.validate() {
                Err(Error::InvalidOption { option, reason }) => {
                    assert_eq!(option, field, "{reason}");
                    assert!(!reason.is_empty());
                }
                other => panic!("{field}: {other:?}"),
            }
        }
    }
}
