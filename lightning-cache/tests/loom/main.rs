//! Model checks of the pool's state machine with loom: every interleaving of pins, loads,
//! write-backs and evictions by two threads (loom explores them exhaustively, pruning
//! equivalent orders). Built only with `--cfg loom` (`.ci/run` runs it):
//!
//! ```text
//! RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom \
//!     cargo test -p lightning-cache --test loom --release
//! ```
#![cfg(loom)]
#![expect(clippy::unwrap_used, reason = "tests fail loudly")]

use std::sync::Arc;

use lightning_cache::{BufferPool, Error, FixedGeneration};
use lightning_page::vfs::MemVfs;
use lightning_page::{PageBuf, PageFile, PageId, PageSize, PageType};

/// A pool of `frames` frames over a file whose pages 2..6 hold their own id.
fn pool(frames: u64) -> Arc<BufferPool> {
    let file = PageFile::create(&MemVfs::new(), "data.ldb".as_ref(), PageSize::MIN).unwrap();
    file.extend_to(6).unwrap();
    for id in 2..6u64 {
        let mut page = PageBuf::new(PageSize::MIN, PageType::Overflow);
        page.set_payload(&id.to_le_bytes()).unwrap();
        file.write_page(PageId::new(id), 1, &mut page).unwrap();
    }
    Arc::new(BufferPool::new(Arc::new(file), frames * 4096, Arc::new(FixedGeneration(1))).unwrap())
}

static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Runs `f` under every interleaving loom finds; returns how many executions it explored.
fn model(f: impl Fn() + Sync + Send + 'static) -> usize {
    let before = RUNS.load(std::sync::atomic::Ordering::SeqCst);
    let builder = loom::model::Builder::new();
    builder.check(move || {
        RUNS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        f();
    });
    RUNS.load(std::sync::atomic::Ordering::SeqCst) - before
}

/// Two threads read different pages through two frames: each sees its page's bytes.
#[test]
fn readers_of_different_pages_see_their_pages() {
    let runs = model(|| {
        let pool = pool(2);
        let other = pool.clone();
        let t = loom::thread::spawn(move || {
            for id in [2u64, 4] {
                assert_eq!(
                    other.pin(PageId::new(id)).unwrap().payload(),
                    id.to_le_bytes()
                );
            }
        });
        for id in [3u64, 5] {
            assert_eq!(
                pool.pin(PageId::new(id)).unwrap().payload(),
                id.to_le_bytes()
            );
        }
        t.join().unwrap();
    });
    eprintln!("{runs} interleavings");
    assert!(runs > 1);
}

/// A writer changes a page while a reader cycles other pages through the same two frames
/// (forcing the changed page out and back in): the change is never lost.
#[test]
fn a_change_survives_eviction_by_another_thread() {
    let runs = model(|| {
        let pool = pool(2);
        let other = pool.clone();
        let t = loom::thread::spawn(move || {
            for id in [3u64, 4] {
                match other.pin(PageId::new(id)) {
                    Ok(p) => assert_eq!(p.payload(), id.to_le_bytes()),
                    // Both frames pinned at that instant: a clear error, never a wait.
                    Err(Error::CacheFull { .. }) => {}
                    Err(e) => panic!("{e}"),
                }
            }
        });
        {
            let mut page = pool.pin_mut(PageId::new(2)).unwrap();
            page.page_mut().set_payload(b"changed").unwrap();
        }
        t.join().unwrap();
        assert_eq!(pool.pin(PageId::new(2)).unwrap().payload(), b"changed");
        assert_eq!(
            pool.pin(PageId::new(5)).unwrap().payload(),
            5u64.to_le_bytes()
        );
    });
    eprintln!("{runs} interleavings");
    assert!(runs > 1);
}

/// Two threads pin the same page at once: one load, both see it, and it stays pinned while
/// either holds it.
#[test]
fn two_pins_of_one_page_share_one_frame() {
    let runs = model(|| {
        let pool = pool(2);
        let other = pool.clone();
        let t = loom::thread::spawn(move || {
            assert_eq!(
                other.pin(PageId::new(2)).unwrap().payload(),
                2u64.to_le_bytes()
            );
        });
        assert_eq!(
            pool.pin(PageId::new(2)).unwrap().payload(),
            2u64.to_le_bytes()
        );
        t.join().unwrap();
        assert!(pool.stats().misses <= 2);
    });
    eprintln!("{runs} interleavings");
    assert!(runs > 1);
}

/// Two writers append to the same page under exclusive pins while a third page pushes it
/// out of the cache in between: both appends are there, in some order.
#[test]
fn exclusive_pins_serialize_writers_of_one_page() {
    let runs = model(|| {
        let pool = pool(2);
        let other = pool.clone();
        let append = |pool: &BufferPool, b: u8| {
            let mut page = pool.pin_mut(PageId::new(2)).unwrap();
            let mut bytes = page.payload().to_vec();
            bytes.push(b);
            page.page_mut().set_payload(&bytes).unwrap();
        };
        let t = loom::thread::spawn(move || {
            append(&other, b'a');
            // With two frames, a claim racing on the other thread can hold both for a
            // moment: `CacheFull` then, never a wait or a lost page.
            match other.pin(PageId::new(3)) {
                Ok(p) => assert_eq!(p.payload(), 3u64.to_le_bytes()),
                Err(Error::CacheFull { .. }) => {}
                Err(e) => panic!("{e}"),
            }
        });
        append(&pool, b'b');
        t.join().unwrap();
        let payload = pool.pin(PageId::new(2)).unwrap().payload().to_vec();
        let tail = &payload[8..];
        assert!(tail == b"ab" || tail == b"ba", "{tail:?}");
    });
    eprintln!("{runs} interleavings");
    assert!(runs > 1);
}
