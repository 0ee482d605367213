//! A frame's pin word: how many pins hold the frame, whether it is free or being evicted,
//! and how many pins were ever let go (what tells a full pool from a sweep's stale looks).

#[cfg(loom)]
use loom::sync::atomic::AtomicU64;
#[cfg(not(loom))]
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering;

/// The low 30 bits of a frame's pin word: how many pins hold it.
pub(crate) const PIN_COUNT: u64 = 0x3FFF_FFFF;
/// Set while the frame is on the free list: a pin found through a stale hint lets go.
const FREE: u64 = 1 << 30;
/// Set from an eviction's last check until the frame holds its next page: a pin found
/// through a stale hint lets go.
const EVICTED: u64 = 1 << 31;
/// Added to the pin word to let go of one pin: the count goes down by one and the high
/// half, the number of pins ever let go, up by one (wrapping).
const UNPIN: u64 = (1 << 32) - 1;

/// A frame's pins: the count in the low 30 bits, [`FREE`] and [`EVICTED`] above it, and in
/// the high 32 bits how many times a pin was let go. A word read twice unchanged means no pin was let go in between (short of
/// 2^32 releases of one frame in that time), which is what lets a pool tell "full" from
/// "every frame happened to look pinned at some point of a sweep".
pub(crate) struct Pins(AtomicU64);

impl Pins {
    /// A frame's pins when the pool starts: none, on the free list.
    pub(crate) fn new() -> Self {
        Pins(AtomicU64::new(FREE))
    }

    /// Takes one pin.
    pub(crate) fn pin(&self) {
        self.0.fetch_add(1, Ordering::AcqRel);
    }

    /// The hit path's pin, taken before the caller checks which page the frame holds: fails
    /// (and lets go) on a frame that is on the free list or being evicted.
    pub(crate) fn try_pin(&self) -> bool {
        if self.0.fetch_add(1, Ordering::AcqRel) & (FREE | EVICTED) == 0 {
            return true;
        }
        self.0.fetch_add(UNPIN, Ordering::AcqRel);
        false
    }

    /// Takes a frame off the free list: one pin, and no longer [`FREE`].
    pub(crate) fn claim_free(&self) {
        self.0.fetch_add(1u64.wrapping_sub(FREE), Ordering::AcqRel);
    }

    /// An eviction's last check (its own claim the only pin): marks the frame [`EVICTED`].
    /// `false` if anyone else holds a pin.
    pub(crate) fn mark_evicted(&self) -> bool {
        let word = self.word();
        word & PIN_COUNT == 1
            && self
                .0
                .compare_exchange(word, word | EVICTED, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
    }

    /// The frame holds its next page (or none, going back): hint pins may hold it again.
    pub(crate) fn clear_evicted(&self) {
        self.0.fetch_and(!EVICTED, Ordering::AcqRel);
    }

    /// Lets go of one pin; if it was the last and `empty()` (the frame holds no page), marks
    /// the frame [`FREE`] in the same step and returns `true`: the caller puts it on the
    /// free list, and no one else can (a pin taken meanwhile makes the step fail and retry).
    pub(crate) fn unpin_to_free(&self, empty: impl Fn() -> bool) -> bool {
        loop {
            let word = self.word();
            let last = word & PIN_COUNT == 1 && word & (FREE | EVICTED) == 0 && empty();
            let next = word.wrapping_add(UNPIN) | if last { FREE } else { 0 };
            if self
                .0
                .compare_exchange(word, next, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                return last;
            }
        }
    }

    /// Lets go of one pin (the caller holds one); returns the count before.
    pub(crate) fn unpin(&self) -> u64 {
        self.0.fetch_add(UNPIN, Ordering::AcqRel) & PIN_COUNT
    }

    /// How many pins hold the frame.
    pub(crate) fn count(&self) -> u64 {
        self.0.load(Ordering::Acquire) & PIN_COUNT
    }

    /// The whole word, to see whether anything changed between two looks.
    pub(crate) fn word(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }
}
