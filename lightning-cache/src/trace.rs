//! A process-wide trace of page lookups (feature `trace`), for benchmarks.
//!
//! While tracing is on, every lookup of every [`BufferPool`](crate::BufferPool) in the
//! process (a hit or a miss, for reading or writing) appends the page's id to one shared
//! list: the access sequence an offline policy (for example
//! [`sim::belady_hits`](crate::sim::belady_hits)) can be run over to see what any eviction
//! policy could have reached with the same number of frames. Tracing serialises lookups on
//! one lock: measure throughput with it off.
//!
//! ```
//! # use std::sync::Arc;
//! # use lightning_cache::{BufferPool, FixedGeneration};
//! # use lightning_page::{PageFile, PageId, PageSize, PageType, vfs::MemVfs};
//! # let file = Arc::new(PageFile::create(&MemVfs::new(), "data.ldb".as_ref(), PageSize::MIN)?);
//! # file.extend_to(10)?;
//! let pool = BufferPool::new(file, 64 * 4096, Arc::new(FixedGeneration(1)))?;
//! pool.create(PageId::new(3), PageType::Overflow)?;
//! lightning_cache::trace::start();
//! drop(pool.pin(PageId::new(3))?);
//! drop(pool.pin(PageId::new(3))?);
//! assert_eq!(lightning_cache::trace::stop(), vec![3, 3]);
//! # Ok::<(), lightning_cache::Error>(())
//! ```

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

static ON: AtomicBool = AtomicBool::new(false);
static TRACE: Mutex<Vec<u64>> = Mutex::new(Vec::new());

fn trace() -> MutexGuard<'static, Vec<u64>> {
    TRACE.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Clears the trace and starts recording.
pub fn start() {
    trace().clear();
    ON.store(true, Ordering::SeqCst);
}

/// Stops recording; the page ids looked up since [`start`], in order.
pub fn stop() -> Vec<u64> {
    ON.store(false, Ordering::SeqCst);
    std::mem::take(&mut *trace())
}

/// Records a lookup of `page` when tracing is on.
pub(crate) fn record(page: u64) {
    if ON.load(Ordering::Relaxed) {
        trace().push(page);
    }
}
