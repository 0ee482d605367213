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
    pool_on(&MemVfs::new(), frames)
}

/// [`pool`] with its file on `vfs`.
fn pool_on(vfs: &MemVfs, frames: u64) -> Arc<BufferPool> {
    let file = PageFile::create(vfs, "data.ldb".as_ref(), PageSize::MIN).unwrap();
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
            // The main thread holds at most one frame, this one none while it pins: the
            // other frame is always there to take, so `CacheFull` would be a frame in
            // transit or a sweep's stale look mistaken for a full pool.
            for id in [3u64, 4] {
                assert_eq!(
                    other.pin(PageId::new(id)).unwrap().payload(),
                    id.to_le_bytes()
                );
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
            // A claim racing on the other thread can hold the second frame for a moment,
            // out of the eviction queue: that is not a full pool, so this pin waits for it.
            assert_eq!(
                other.pin(PageId::new(3)).unwrap().payload(),
                3u64.to_le_bytes()
            );
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

/// A thread holding one page pins a damaged one, whose load claims the second frame and
/// gives it back: meanwhile both frames are pinned, one out of the eviction queue. The
/// other thread's miss waits for it instead of calling the pool full.
#[test]
fn a_claim_that_goes_back_to_the_free_list_is_not_a_full_pool() {
    let runs = model(|| {
        let vfs = MemVfs::new();
        let pool = pool_on(&vfs, 2);
        {
            use lightning_page::vfs::{OpenMode, Vfs};
            let f = vfs.open("data.ldb".as_ref(), OpenMode::ReadWrite).unwrap();
            f.write_at(b"damage", 5 * 4096 + 40).unwrap();
        }
        drop(pool.pin(PageId::new(2)).unwrap());
        let other = pool.clone();
        let t = loom::thread::spawn(move || {
            let held = other.pin(PageId::new(2)).unwrap();
            // Full for real when the main thread holds page 3 in the second frame.
            assert!(matches!(
                other.pin(PageId::new(5)),
                Err(Error::Page(_) | Error::CacheFull { .. })
            ));
            drop(held);
        });
        assert_eq!(
            pool.pin(PageId::new(3)).unwrap().payload(),
            3u64.to_le_bytes()
        );
        t.join().unwrap();
    });
    eprintln!("{runs} interleavings");
    assert!(runs > 1);
}

/// One thread lets go of one page and pins the other while a miss on the other thread
/// sweeps: the sweep can see each frame pinned, at different moments, though one of the two
/// was free at every moment. The miss must not fail.
#[test]
fn a_sweep_that_saw_every_frame_pinned_at_different_moments_is_not_a_full_pool() {
    let runs = model(|| {
        let pool = pool(2);
        drop(pool.pin(PageId::new(2)).unwrap());
        drop(pool.pin(PageId::new(3)).unwrap());
        let other = pool.clone();
        let t = loom::thread::spawn(move || {
            for id in [2u64, 3] {
                assert_eq!(
                    other.pin(PageId::new(id)).unwrap().payload(),
                    id.to_le_bytes()
                );
            }
        });
        assert_eq!(
            pool.pin(PageId::new(4)).unwrap().payload(),
            4u64.to_le_bytes()
        );
        t.join().unwrap();
    });
    eprintln!("{runs} interleavings");
    assert!(runs > 1);
}

/// Hits take no lock: a pin follows a hint to a frame and checks it after pinning. Here
/// the hint of page 2 can go stale while another thread evicts a frame for page 4 (which
/// of 2 and 3 goes is SIEVE's choice); each thread holds at most one pin. The pin of 2 must
/// still get page 2, and a frame on its way to page 4 must never be handed out as page 2.
#[test]
fn a_hit_through_a_stale_hint_never_gets_another_page() {
    let runs = model(|| {
        let pool = pool(2);
        drop(pool.pin(PageId::new(2)).unwrap());
        drop(pool.pin(PageId::new(3)).unwrap());
        let other = pool.clone();
        let t = loom::thread::spawn(move || {
            assert_eq!(
                other.pin(PageId::new(4)).unwrap().payload(),
                4u64.to_le_bytes()
            );
        });
        assert_eq!(
            pool.pin(PageId::new(2)).unwrap().payload(),
            2u64.to_le_bytes()
        );
        t.join().unwrap();
    });
    eprintln!("{runs} interleavings");
    assert!(runs > 1);
}
