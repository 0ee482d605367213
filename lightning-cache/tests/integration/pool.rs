use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use lightning_cache::{BoxError, Error, WriteBack};
use lightning_page::vfs::{CrashVfs, Fault, FaultKind, FaultOp};
use lightning_page::{PageBuf, PageId, PageType};

use crate::{pool, pool_on};

/// Counts hook calls per page; can be told to refuse.
#[derive(Default)]
struct Recorder {
    calls: Mutex<BTreeMap<u64, u32>>,
    refuse: Mutex<bool>,
}

impl WriteBack for Recorder {
    fn before_write(&self, page: PageId, _data: &PageBuf) -> Result<u64, BoxError> {
        if *self.refuse.lock().unwrap() {
            return Err("WAL not durable yet".into());
        }
        *self.calls.lock().unwrap().entry(page.get()).or_default() += 1;
        Ok(7)
    }
}

/// A pool of 16 frames over a 20-page file on `vfs`, with `hook`, holding pages 2..12 newly
/// created (dirty, payload `[1]`).
fn pool_with_ten_new_pages(vfs: &CrashVfs, hook: &Arc<Recorder>) -> lightning_cache::BufferPool {
    let pool = pool_on(vfs, 16, 20, hook.clone());
    for id in 2..12u64 {
        pool.create(PageId::new(id), PageType::Overflow)
            .unwrap()
            .page_mut()
            .set_payload(&[1])
            .unwrap();
    }
    pool
}

/// Rewrites each page's payload to its page number before it is written.
struct Rewriter;

impl WriteBack for Rewriter {
    fn before_write(&self, _page: PageId, data: &PageBuf) -> Result<u64, BoxError> {
        // `prepare` ran first: the hook sees the bytes that will be written.
        assert_eq!(data.payload().len(), 1);
        Ok(3)
    }

    fn prepare(&self, page: PageId, data: &mut PageBuf) {
        data.set_payload(&page.get().to_le_bytes()[..1]).unwrap();
    }
}

/// What `prepare` writes into a page is what goes to the file, and it stays the cached
/// copy that later pins read.
#[test]
fn a_page_rewritten_by_prepare_is_written_and_cached_as_rewritten() {
    let vfs = CrashVfs::new(1);
    let pool = pool_on(&vfs, 16, 20, Arc::new(Rewriter));
    for id in 2..6u64 {
        pool.create(PageId::new(id), PageType::Overflow)
            .unwrap()
            .page_mut()
            .set_payload(&[0xee, 0xee])
            .unwrap();
    }
    pool.flush_pages((2..6).map(PageId::new)).unwrap();
    for id in 2..6u64 {
        let (on_disk, _) = pool.file().read_page(PageId::new(id), None).unwrap();
        assert_eq!(on_disk.payload(), &id.to_le_bytes()[..1]);
        assert_eq!(
            pool.pin(PageId::new(id)).unwrap().payload(),
            &id.to_le_bytes()[..1]
        );
    }
}

#[test]
fn hook_runs_exactly_once_per_dirty_page_per_flush() {
    let vfs = CrashVfs::new(1);
    let hook = Arc::new(Recorder::default());
    let pool = pool_with_ten_new_pages(&vfs, &hook);
    // Only read: stays clean.
    drop(pool.pin(PageId::new(5)).unwrap());
    // Written twice between flushes: still one write-back.
    for _ in 0..2 {
        pool.pin_mut(PageId::new(3))
            .unwrap()
            .page_mut()
            .set_payload(&[2])
            .unwrap();
    }
    pool.flush().unwrap();
    assert_eq!(
        *hook.calls.lock().unwrap(),
        (2..12).map(|i| (i, 1)).collect()
    );
    pool.flush().unwrap();
    assert_eq!(
        hook.calls.lock().unwrap().values().sum::<u32>(),
        10,
        "clean pages are not written again"
    );
    pool.pin_mut(PageId::new(4))
        .unwrap()
        .page_mut()
        .set_payload(&[3])
        .unwrap();
    pool.flush().unwrap();
    assert_eq!(hook.calls.lock().unwrap()[&4], 2);
    // The hook's generation is stamped on the page.
    let (_, header) = pool.file().read_page(PageId::new(4), None).unwrap();
    assert_eq!(header.generation, 7);
    assert_eq!(pool.stats().write_backs, 11);
}

#[test]
fn a_refusing_hook_keeps_the_page_dirty_and_returns_the_error() {
    let vfs = CrashVfs::new(2);
    let hook = Arc::new(Recorder::default());
    let pool = pool_on(&vfs, 4, 20, hook.clone());
    pool.create(PageId::new(2), PageType::Overflow)
        .unwrap()
        .page_mut()
        .set_payload(b"x")
        .unwrap();
    *hook.refuse.lock().unwrap() = true;
    assert!(matches!(pool.flush(), Err(Error::WriteBack { .. })));
    assert_eq!(pool.is_dirty(PageId::new(2)), Some(true));
    // Eviction needs the same write-back and fails the same way, keeping the page.
    for id in 3..6 {
        drop(pool.create(PageId::new(id), PageType::Overflow));
    }
    assert!(matches!(
        pool.create(PageId::new(9), PageType::Overflow),
        Err(Error::WriteBack { .. })
    ));
    assert_eq!(pool.is_dirty(PageId::new(2)), Some(true));
    *hook.refuse.lock().unwrap() = false;
    pool.flush().unwrap();
    assert_eq!(pool.is_dirty(PageId::new(2)), Some(false));
}

#[test]
fn a_failing_write_keeps_the_page_dirty_and_returns_the_error() {
    let vfs = CrashVfs::new(3);
    let pool = pool_on(&vfs, 4, 20, Arc::new(lightning_cache::FixedGeneration(1)));
    pool.create(PageId::new(2), PageType::Overflow)
        .unwrap()
        .page_mut()
        .set_payload(b"x")
        .unwrap();
    vfs.inject(Fault {
        op: FaultOp::Write,
        nth: 0,
        permanent: false,
        kind: FaultKind::NoSpace,
    });
    assert!(matches!(pool.flush(), Err(Error::Page(_))));
    assert_eq!(pool.is_dirty(PageId::new(2)), Some(true));
    pool.flush().unwrap();
    assert_eq!(pool.is_dirty(PageId::new(2)), Some(false));
}

#[test]
fn all_frames_pinned_is_cache_full_not_a_deadlock() {
    let pool = pool(3, 20);
    let guards: Vec<_> = (2..5)
        .map(|i| pool.create(PageId::new(i), PageType::Overflow).unwrap())
        .collect();
    let e = pool.pin(PageId::new(9)).unwrap_err();
    assert!(matches!(e, Error::CacheFull { frames: 3 }), "{e}");
    drop(guards);
    pool.create(PageId::new(9), PageType::Overflow).unwrap();
}

#[test]
fn shared_pins_coexist_and_pinned_pages_are_never_evicted() {
    let pool = pool(2, 20);
    pool.create(PageId::new(2), PageType::Overflow)
        .unwrap()
        .page_mut()
        .set_payload(b"keep")
        .unwrap();
    let a = pool.pin(PageId::new(2)).unwrap();
    let b = pool.pin(PageId::new(2)).unwrap();
    for id in 3..10 {
        pool.create(PageId::new(id), PageType::Overflow)
            .unwrap()
            .page_mut()
            .set_payload(&[1])
            .unwrap();
    }
    assert_eq!((a.payload(), b.payload()), (&b"keep"[..], &b"keep"[..]));
    assert_eq!(
        pool.is_dirty(PageId::new(2)),
        Some(true),
        "still cached, never written back"
    );
}

#[test]
fn damaged_pages_on_disk_are_reported_not_cached() {
    let vfs = CrashVfs::new(4);
    let pool = pool_on(&vfs, 4, 20, Arc::new(lightning_cache::FixedGeneration(1)));
    pool.create(PageId::new(6), PageType::BTreeLeaf)
        .unwrap()
        .page_mut()
        .set_payload(b"row")
        .unwrap();
    pool.flush().unwrap();
    // Push it out, damage it on disk, read it back.
    for id in 2..6 {
        pool.create(PageId::new(id), PageType::Overflow).unwrap();
    }
    vfs.corrupt("data.ldb".as_ref(), 6 * 4096 + 50, b"!")
        .unwrap();
    let e = pool.pin(PageId::new(6)).unwrap_err();
    assert!(matches!(&e, Error::Page(p) if p.is_corruption()), "{e}");
    assert_eq!(
        pool.is_dirty(PageId::new(6)),
        None,
        "a failed load leaves nothing cached"
    );
    // Pages never written read as corruption too (all zeros), never as garbage.
    assert!(pool.pin(PageId::new(15)).is_err());
}

#[test]
fn stats_count_hits_misses_and_evictions() {
    let pool = pool(4, 100);
    for id in 2..50 {
        pool.create(PageId::new(id), PageType::Overflow)
            .unwrap()
            .page_mut()
            .set_payload(&[1])
            .unwrap();
    }
    pool.flush().unwrap();
    for _ in 0..3 {
        for id in 2..50 {
            drop(pool.pin(PageId::new(id)).unwrap());
        }
    }
    let s = pool.stats();
    assert!(
        s.misses >= 100 && s.evictions >= 100 && s.write_backs >= 48,
        "{s:?}"
    );
    assert!(s.hit_ratio() < 0.5);
    for _ in 0..100 {
        drop(pool.pin(PageId::new(49)).unwrap());
    }
    assert!(pool.stats().hits >= 100);
}

/// `flush_pages` writes back exactly the named pages that are cached and dirty, once, and
/// leaves the others dirty; names of pages not in the pool are skipped.
#[test]
fn flush_pages_writes_back_only_the_named_dirty_pages() {
    let vfs = CrashVfs::new(1);
    let hook = Arc::new(Recorder::default());
    let pool = pool_with_ten_new_pages(&vfs, &hook);
    // 3 and 9 dirty and named twice; 14 is not cached; the rest stay dirty.
    let named = [9u64, 3, 14, 3].map(PageId::new);
    pool.flush_pages(named).unwrap();
    assert_eq!(*hook.calls.lock().unwrap(), [(3, 1), (9, 1)].into());
    for id in 2..12u64 {
        assert_eq!(
            pool.is_dirty(PageId::new(id)),
            Some(id != 3 && id != 9),
            "page {id}"
        );
    }
    pool.flush().unwrap();
    assert_eq!(hook.calls.lock().unwrap().values().sum::<u32>(), 10);
}
