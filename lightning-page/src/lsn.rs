//! Log sequence numbers: defined here, at the bottom of the family, because the superblock
//! records the LSN a checkpoint covers; `lightning-wal` numbers its records with them.

use std::fmt;

/// A log sequence number: records are numbered 1, 2, 3, ... without gaps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Lsn(u64);

impl Lsn {
    /// "Before the first record": no record has this LSN.
    pub const ZERO: Lsn = Lsn(0);

    /// Creates an LSN.
    pub const fn new(n: u64) -> Self {
        Lsn(n)
    }

    /// The raw number.
    pub const fn get(self) -> u64 {
        self.0
    }

    /// The LSN after this one (saturating: `u64::MAX` is never a valid record's LSN).
    #[must_use]
    pub const fn next(self) -> Lsn {
        Lsn(self.0.saturating_add(1))
    }
}

impl fmt::Display for Lsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}
