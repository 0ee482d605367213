//! The command line: every subcommand, its arguments and its `--help` example.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// Lightning DB's command-line tool: try the database, inspect one, fix a key.
#[derive(Debug, Parser)]
#[command(
    name = "lightning",
    version,
    about = "Lightning DB: run the demo, inspect a database directory, fix a key, back it up",
    after_help = "Examples:\n  lightning demo                      run the demo on a temporary database\n  lightning stats ./data              the figures of the database in ./data\n  lightning check ./data              verify every page, tree and WAL record\n  lightning dump ./data users --limit 10\n\nExit codes: 0 success, 1 failure (or problems found), 2 usage error."
)]
pub(crate) struct Cli {
    /// How commands that print data print it.
    #[arg(long, global = true, value_enum, default_value_t = Format::Text)]
    pub(crate) format: Format,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    /// For people: aligned, escaped for the terminal.
    Text,
    /// For programs: one JSON document on standard output.
    Json,
}

/// How key and value arguments (and dumped bytes) are written.
#[derive(Debug, Clone, Copy, Default, clap::Args)]
pub(crate) struct Bytes {
    /// Keys and values on the command line are hexadecimal, and are printed that way.
    #[arg(long)]
    pub(crate) hex: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run a mixed workload on a new database, reopen and verify it
    ///
    /// Several threads at once: durable and eventual commits, point reads, range scans,
    /// pessimistic transfers between accounts and snapshot audits of their sum, with a
    /// checkpoint in the middle; then a close, a reopen, and a check that every
    /// acknowledged commit is there. Prints operations, throughput and latency
    /// percentiles per kind, cache, WAL, checkpoint and GC figures and file sizes.
    #[command(
        after_help = "Examples:\n  lightning demo              in a temporary directory, removed afterwards\n  lightning demo ./demo-db    in ./demo-db (must not exist yet), kept\n  lightning demo --seconds 3"
    )]
    Demo {
        /// Where to create the database (kept afterwards); a temporary directory if omitted.
        dir: Option<PathBuf>,
        /// How long the workload runs, in seconds.
        #[arg(long, default_value_t = 8.0)]
        seconds: f64,
    },
    /// Print the database's figures (files, WAL, cache, checkpoint)
    #[command(
        after_help = "Examples:\n  lightning stats ./data\n  lightning stats ./data --prometheus\n  lightning stats ./data --format json"
    )]
    Stats {
        /// The database directory.
        dir: PathBuf,
        /// Print the Prometheus text exposition instead.
        #[arg(long)]
        prometheus: bool,
    },
    /// Verify every page, tree, the catalog and the WAL; write nothing
    ///
    /// Every reachable page's checksum, every tree's invariants, the catalog, the
    /// accounting of free pages (none leaked or reachable twice) and every WAL record.
    #[command(
        after_help = "Example:\n  lightning check ./data && echo clean\n\nExit code 1 when anything is wrong; each problem names its file, page or keyspace."
    )]
    Check {
        /// The database directory.
        dir: PathBuf,
    },
    /// Print the keys and values of one keyspace, or of all
    #[command(
        after_help = "Examples:\n  lightning dump ./data\n  lightning dump ./data users --prefix user: --limit 20\n  lightning dump ./data users --range a..m\n  lightning dump ./data users --hex --format json"
    )]
    Dump {
        /// The database directory.
        dir: PathBuf,
        /// The keyspace; every keyspace if omitted.
        keyspace: Option<String>,
        /// Only keys that start with this.
        #[arg(long, conflicts_with = "range")]
        prefix: Option<OsString>,
        /// Only keys in FROM..TO (TO excluded); either end may be left out (`a..`, `..m`).
        #[arg(long)]
        range: Option<OsString>,
        /// Print at most this many entries.
        #[arg(long)]
        limit: Option<u64>,
        #[command(flatten)]
        bytes: Bytes,
    },
    /// List the keyspaces
    #[command(after_help = "Example:\n  lightning keyspaces ./data")]
    Keyspaces {
        /// The database directory.
        dir: PathBuf,
    },
    /// Collect old versions, checkpoint and shrink the page file
    #[command(after_help = "Example:\n  lightning compact ./data")]
    Compact {
        /// The database directory.
        dir: PathBuf,
    },
    /// Print the value of one key
    #[command(
        after_help = "Examples:\n  lightning get ./data users alice\n  lightning get ./data users 616c696365 --hex"
    )]
    Get {
        /// The database directory.
        dir: PathBuf,
        /// The keyspace.
        keyspace: String,
        /// The key.
        key: OsString,
        #[command(flatten)]
        bytes: Bytes,
    },
    /// Write one key, committed durably
    #[command(
        after_help = "Examples:\n  lightning put ./data users alice '{\"age\": 31}'\n  lightning put ./data new-keyspace k v --create"
    )]
    Put {
        /// The database directory.
        dir: PathBuf,
        /// The keyspace.
        keyspace: String,
        /// The key.
        key: OsString,
        /// The value.
        value: OsString,
        /// Create the keyspace if it does not exist (otherwise that is an error, so that a
        /// typo does not create one).
        #[arg(long)]
        create: bool,
        #[command(flatten)]
        bytes: Bytes,
    },
    /// Delete one key, committed durably
    #[command(after_help = "Example:\n  lightning delete ./data users alice")]
    Delete {
        /// The database directory.
        dir: PathBuf,
        /// The keyspace.
        keyspace: String,
        /// The key.
        key: OsString,
        #[command(flatten)]
        bytes: Bytes,
    },
    /// Time a built-in workload (in a keyspace of its own, dropped after)
    ///
    /// Point reads, durable single-key commits, range scans and eventual batch commits
    /// from several threads for a minute; throughput and p50/p95/p99/p99.9 latency per
    /// kind.
    #[command(
        after_help = "Examples:\n  lightning bench ./scratch-db\n  lightning bench ./scratch-db --seconds 10 --threads 8"
    )]
    Bench {
        /// The database directory (created if missing).
        dir: PathBuf,
        /// How long it runs, in seconds.
        #[arg(long, default_value_t = 60.0)]
        seconds: f64,
        /// Threads issuing operations.
        #[arg(long, default_value_t = 4)]
        threads: usize,
    },
    /// Back up a database into a backup directory (full, or incremental)
    ///
    /// Copies the database's newest checkpoint image and the log that completes it, with a
    /// blake3 hash of every extent and file in the backup's manifest. An incremental backup
    /// copies only the pages written since the newest backup in DEST. The database must not
    /// be open in another process (an application backs up online with
    /// `Database::backup`, while its writers go on).
    #[command(
        after_help = "Examples:\n  lightning backup ./data /backups/data\n  lightning backup ./data /backups/data --incremental"
    )]
    Backup {
        /// The database directory.
        dir: PathBuf,
        /// The backup directory (created if missing); holds a chain of backups.
        dest: PathBuf,
        /// Copy only the pages written since the newest backup in DEST (a full backup when
        /// there is none).
        #[arg(long)]
        incremental: bool,
    },
    /// Verify backups: every byte, hash, page checksum and WAL record
    #[command(
        after_help = "Examples:\n  lightning verify /backups/data\n  lightning verify /backups/data --backup 3\n\nExit code 1 when anything is damaged; the error names the file and the extent."
    )]
    Verify {
        /// The backup directory.
        dest: PathBuf,
        /// Only this backup and the chain it needs (every backup if omitted).
        #[arg(long)]
        backup: Option<u64>,
    },
    /// Restore backups into a new directory, to a point in time if asked
    ///
    /// Restores the newest backup (or the one named, or the newest one at or before the
    /// target) with its chain, replays the log to the target from the backup and the
    /// directories given with --wal-from (a WAL archive, or the wal/ of the lost
    /// database), then opens the database once to check it.
    #[command(
        after_help = "Examples:\n  lightning restore /backups/data ./restored\n  lightning restore /backups/data ./restored --wal-from /archive/data --latest\n  lightning restore /backups/data ./restored --wal-from /archive/data --to-lsn 123456\n  lightning restore /backups/data ./restored --wal-from /archive/data --to-time 2026-12-07T09:30:00Z"
    )]
    Restore {
        /// The backup directory.
        dest: PathBuf,
        /// Where to restore: a new or empty directory.
        to: PathBuf,
        /// The backup to restore (with its chain).
        #[arg(long)]
        backup: Option<u64>,
        /// Recover through this LSN exactly.
        #[arg(long, conflicts_with_all = ["to_time", "latest"])]
        to_lsn: Option<u64>,
        /// Recover through the last commit at or before this time: RFC 3339 in UTC
        /// (2026-12-07T09:30:00Z, fractions allowed) or microseconds since the Unix epoch.
        #[arg(long, conflicts_with = "latest")]
        to_time: Option<String>,
        /// Recover as far as the backup and the --wal-from directories reach.
        #[arg(long)]
        latest: bool,
        /// A directory of WAL segments to recover from (repeatable).
        #[arg(long = "wal-from")]
        wal_from: Vec<PathBuf>,
        /// Replace what is in the destination.
        #[arg(long)]
        force: bool,
    },
    /// List the backups of a backup directory: chains, sizes, times, LSNs
    #[command(after_help = "Example:\n  lightning backups /backups/data")]
    Backups {
        /// The backup directory.
        dest: PathBuf,
    },
    /// Remove backups and archived WAL a retention policy lets go
    ///
    /// Never removes a backup that a kept backup's chain needs, nor archived WAL from the
    /// oldest kept backup's checkpoint on.
    #[command(
        after_help = "Examples:\n  lightning prune /backups/data --keep-full 2\n  lightning prune /backups/data --max-age-days 14 --wal-archive /archive/data"
    )]
    Prune {
        /// The backup directory.
        dest: PathBuf,
        /// Keep the chains of this many newest full backups.
        #[arg(long)]
        keep_full: Option<usize>,
        /// Keep every backup taken within this many days.
        #[arg(long)]
        max_age_days: Option<f64>,
        /// A WAL archive to prune below the oldest kept backup (repeatable).
        #[arg(long = "wal-archive")]
        wal_archive: Vec<PathBuf>,
    },
}
