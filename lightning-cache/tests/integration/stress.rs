//! Threads pin, modify and release random pages through a tiny pool: nothing is lost.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use lightning_cache::Error;
use lightning_page::{PageId, PageType};
use lightning_testkit::Rng;

use crate::pool;

#[test]
fn concurrent_increments_through_a_tiny_pool_are_never_lost() {
    const PAGES: u64 = 64;
    let pool = Arc::new(pool(4, PAGES + 2));
    for id in 2..PAGES + 2 {
        pool.create(PageId::new(id), PageType::Overflow)
            .unwrap()
            .page_mut()
            .set_payload(&0u64.to_le_bytes())
            .unwrap();
    }
    let expected: Arc<Vec<AtomicU64>> =
        Arc::new((0..PAGES + 2).map(|_| AtomicU64::new(0)).collect());
    let full = Arc::new(AtomicU64::new(0));
    let threads: Vec<_> = (0..4u64)
        .map(|t| {
            let (pool, expected, full) =
                (Arc::clone(&pool), Arc::clone(&expected), Arc::clone(&full));
            std::thread::spawn(move || {
                let mut rng = Rng::new(t);
                for _ in 0..lightning_testkit::scaled(5000) {
                    let id = 2 + rng.below(PAGES);
                    if rng.chance(30) {
                        match pool.pin(PageId::new(id)) {
                            Ok(g) => assert_eq!(g.payload().len(), 8),
                            Err(Error::CacheFull { .. }) => {
                                full.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(e) => panic!("{e}"),
                        }
                        continue;
                    }
                    match pool.pin_mut(PageId::new(id)) {
                        Ok(mut g) => {
                            let mut n = [0u8; 8];
                            n.copy_from_slice(g.payload());
                            let v = u64::from_le_bytes(n) + 1;
                            g.page_mut().set_payload(&v.to_le_bytes()).unwrap();
                            expected[usize::try_from(id).unwrap()].fetch_add(1, Ordering::Relaxed);
                        }
                        Err(Error::CacheFull { .. }) => {
                            full.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => panic!("{e}"),
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    pool.flush().unwrap();
    for id in 2..PAGES + 2 {
        let (buf, _) = pool.file().read_page(PageId::new(id), None).unwrap();
        let mut n = [0u8; 8];
        n.copy_from_slice(buf.payload());
        assert_eq!(
            u64::from_le_bytes(n),
            expected[usize::try_from(id).unwrap()].load(Ordering::Relaxed),
            "page {id}"
        );
    }
    // Four threads holding at most one page each never fill eight frames: a `CacheFull`
    // here would be a frame in transit (being claimed or loaded) mistaken for a held one.
    assert_eq!(full.load(Ordering::Relaxed), 0, "spurious CacheFull");
    let s = pool.stats();
    assert!(
        s.evictions > 1000,
        "a tiny pool must evict constantly: {s:?}"
    );
}

/// Loads that fail (damaged pages) while other threads wait for the same frames: nothing
/// deadlocks, good pages always read right, and no frame leaks.
#[test]
fn failing_loads_under_concurrency_leak_no_frame() {
    use lightning_page::vfs::CrashVfs;
    const PAGES: u64 = 32;
    let vfs = CrashVfs::new(9);
    let pool = Arc::new(crate::pool_on(
        &vfs,
        6,
        PAGES + 2,
        Arc::new(lightning_cache::FixedGeneration(1)),
    ));
    for id in 2..PAGES + 2 {
        pool.create(PageId::new(id), PageType::Overflow)
            .unwrap()
            .page_mut()
            .set_payload(&id.to_le_bytes())
            .unwrap();
    }
    pool.flush().unwrap();
    // Odd pages are damaged on disk (their cached copies get evicted soon enough).
    for id in (3..PAGES + 2).step_by(2) {
        vfs.corrupt("data.ldb".as_ref(), id * 4096 + 40, b"X")
            .unwrap();
    }
    let threads: Vec<_> = (0..4u64)
        .map(|t| {
            let pool = Arc::clone(&pool);
            std::thread::spawn(move || {
                let mut rng = Rng::new(t + 100);
                for _ in 0..lightning_testkit::scaled(3000) {
                    let id = 2 + rng.below(PAGES);
                    let got = if rng.chance(50) {
                        pool.pin(PageId::new(id)).map(|g| g.payload().to_vec())
                    } else {
                        pool.pin_mut(PageId::new(id)).map(|g| g.payload().to_vec())
                    };
                    match got {
                        Ok(p) => assert_eq!(p, id.to_le_bytes(), "page {id}"),
                        Err(Error::Page(e)) => {
                            assert!(e.is_corruption() && id % 2 == 1, "page {id}: {e}");
                        }
                        Err(Error::CacheFull { .. }) => {}
                        Err(e) => panic!("page {id}: {e}"),
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    // Every frame is usable again: six good pages can be held at once.
    let held: Vec<_> = (0..6u64)
        .map(|i| pool.pin(PageId::new(2 + 2 * i)).unwrap())
        .collect();
    assert_eq!(held.len(), 6);
}
