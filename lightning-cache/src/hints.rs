//! The hit path's guesses: for each page id, the frame it was last seen in.

#[cfg(loom)]
use loom::sync::atomic::AtomicU32;
#[cfg(not(loom))]
use std::sync::atomic::AtomicU32;

/// Pages per chunk of the hint index (a few under loom, which tracks every atomic).
#[cfg(not(loom))]
const HINT_CHUNK_BITS: u32 = 16;
#[cfg(loom)]
const HINT_CHUNK_BITS: u32 = 3;
/// Chunks: hints cover page ids below 2^32 (32 TiB of 8 KiB pages); above, pins take the
/// locked path.
#[cfg(not(loom))]
const HINT_CHUNKS: usize = 1 << 16;
/// Under loom, two chunks (pages below 16), made when the pool is: loom cannot see the
/// synchronization of a `OnceLock` filled by one thread and read by another.
#[cfg(loom)]
const HINT_CHUNKS: usize = 2;

/// Where each page was last seen, by page id: the hit path's guess (frame + 1, 0 for
/// none), checked against the frame after it is pinned, so a stale guess costs a look and
/// never a wrong page. Indexed by id, it is dense (4 bytes per page of the file) and its
/// chunks of 64k pages are allocated when a page of theirs is first cached.
pub(crate) struct Hints {
    chunks: Box<[std::sync::OnceLock<Box<[AtomicU32]>>]>,
}

impl Hints {
    pub(crate) fn new() -> Self {
        let hints = Hints {
            chunks: (0..HINT_CHUNKS)
                .map(|_| std::sync::OnceLock::new())
                .collect(),
        };
        #[cfg(loom)]
        for chunk in 0..HINT_CHUNKS as u64 {
            hints.slot(chunk << HINT_CHUNK_BITS, true);
        }
        hints
    }

    pub(crate) fn slot(&self, key: u64, create: bool) -> Option<&AtomicU32> {
        let chunk = self
            .chunks
            .get(usize::try_from(key >> HINT_CHUNK_BITS).ok()?)?;
        let chunk = if create {
            chunk.get_or_init(|| {
                (0..1 << HINT_CHUNK_BITS)
                    .map(|_| AtomicU32::new(0))
                    .collect()
            })
        } else {
            chunk.get()?
        };
        chunk.get(usize::try_from(key & ((1 << HINT_CHUNK_BITS) - 1)).ok()?)
    }
}
