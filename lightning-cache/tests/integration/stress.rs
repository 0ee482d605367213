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
    let pool = Arc::new(pool(8, PAGES + 2));
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
    let s = pool.stats();
    assert!(
        s.evictions > 1000,
        "a tiny pool must evict constantly: {s:?}"
    );
}
