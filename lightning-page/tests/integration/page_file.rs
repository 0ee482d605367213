//! The page file against bad input: every damaged or hostile file is an error, never a panic.

use lightning_page::Lsn;
use std::path::Path;

use lightning_page::vfs::{CrashVfs, Fault, FaultKind, FaultOp, MemVfs, OpenMode, OsVfs, Vfs};
use lightning_page::{
    Error, FORMAT_VERSION, HEADER_LEN, OpenOptions, PageAllocator, PageBuf, PageFile, PageId,
    PageSize, PageType, Superblock,
};

const PATH: &str = "db/data.ldb";

fn path() -> &'static Path {
    Path::new(PATH)
}

fn new_file(vfs: &dyn Vfs, ps: PageSize) -> PageFile {
    PageFile::create(vfs, path(), ps).unwrap()
}

fn open(vfs: &dyn Vfs) -> Result<PageFile, Error> {
    PageFile::open(vfs, path(), OpenOptions::default())
}

fn raw_file(vfs: &dyn Vfs, bytes: &[u8]) {
    let f = vfs.open(path(), OpenMode::CreateNew).unwrap();
    f.write_at(bytes, 0).unwrap();
}

#[test]
fn create_then_open_round_trips_every_page_size() {
    for ps in PageSize::ALL {
        let vfs = MemVfs::new();
        let f = new_file(&vfs, ps);
        assert_eq!((f.page_size(), f.page_count()), (ps, 2));
        assert_eq!(f.superblock(), Superblock::initial(ps));
        drop(f);
        let f = open(&vfs).unwrap();
        assert_eq!(f.superblock(), Superblock::initial(ps));
    }
}

#[test]
fn create_refuses_to_overwrite() {
    let vfs = MemVfs::new();
    new_file(&vfs, PageSize::MIN);
    assert!(matches!(
        PageFile::create(&vfs, path(), PageSize::MIN),
        Err(Error::Io { .. })
    ));
}

#[test]
fn pages_round_trip_and_record_their_generation() {
    let vfs = MemVfs::new();
    let f = new_file(&vfs, PageSize::DEFAULT);
    f.extend_to(10).unwrap();
    for i in 2..10u64 {
        let mut p = PageBuf::new(f.page_size(), PageType::BTreeLeaf);
        p.set_payload(&i.to_le_bytes()).unwrap();
        f.write_page(PageId::new(i), i * 3, &mut p).unwrap();
    }
    for i in 2..10u64 {
        let (p, h) = f
            .read_page(PageId::new(i), Some(PageType::BTreeLeaf))
            .unwrap();
        assert_eq!(
            (p.payload(), h.generation, h.page_id),
            (&i.to_le_bytes()[..], i * 3, PageId::new(i))
        );
    }
}

#[test]
fn a_run_of_pages_reads_in_one_call_and_each_page_is_verified() {
    let vfs = MemVfs::new();
    let f = new_file(&vfs, PageSize::MIN);
    f.extend_to(10).unwrap();
    for i in 2..10u64 {
        let mut p = PageBuf::new(f.page_size(), PageType::BTreeLeaf);
        p.set_payload(&i.to_le_bytes()).unwrap();
        f.write_page(PageId::new(i), i, &mut p).unwrap();
    }
    let mut buf = Vec::new();
    let headers = f.read_pages(PageId::new(2), 8, &mut buf).unwrap();
    assert_eq!(buf.len(), 8 * PageSize::MIN.len());
    let ids: Vec<u64> = headers.iter().map(|h| h.page_id.get()).collect();
    assert_eq!(ids, (2..10).collect::<Vec<_>>());
    assert_eq!(headers[3].generation, 5);
    // Page 0 must be a superblock (slot 1 of a new file was never written: refused).
    let sb = f.read_pages(PageId::new(0), 1, &mut buf).unwrap();
    assert_eq!(sb[0].page_type, PageType::Superblock);
    assert!(f.read_pages(PageId::new(1), 2, &mut buf).is_err());
    assert!(
        f.read_pages(PageId::new(3), 0, &mut buf)
            .unwrap()
            .is_empty()
    );
    // Past the end: refused before reading.
    assert!(matches!(
        f.read_pages(PageId::new(8), 3, &mut buf),
        Err(Error::PageOutOfBounds { .. })
    ));
    // One damaged byte in page 6: the run is refused naming that page.
    drop(f);
    let raw = vfs.open(path(), OpenMode::ReadWrite).unwrap();
    let at = 6 * PageSize::MIN.len() as u64 + 100;
    let mut b = [0u8];
    raw.read_at(&mut b, at).unwrap();
    raw.write_at(&[b[0] ^ 1], at).unwrap();
    let f = open(&vfs).unwrap();
    let e = f.read_pages(PageId::new(2), 8, &mut buf).unwrap_err();
    assert!(e.to_string().contains("page 6"), "{e}");
}

#[test]
fn missing_zero_length_and_short_files_are_errors() {
    let vfs = MemVfs::new();
    assert!(matches!(open(&vfs), Err(Error::Io { .. })));
    raw_file(&vfs, b"");
    let e = open(&vfs).unwrap_err();
    assert!(matches!(e, Error::NoValidSuperblock { .. }), "{e}");
    assert!(e.to_string().contains("data.ldb"));

    let vfs = MemVfs::new();
    let good = new_file(&vfs, PageSize::MIN);
    drop(good);
    let full = vfs.open(path(), OpenMode::ReadOnly).unwrap();
    let mut bytes = vec![0u8; 8192];
    full.read_at(&mut bytes, 0).unwrap();
    for cut in [1usize, 31, 32, 100, 4095, 4096, 4097, 8191] {
        let vfs = MemVfs::new();
        raw_file(&vfs, &bytes[..cut]);
        let e = open(&vfs).unwrap_err();
        if cut < 4096 {
            assert!(
                matches!(e, Error::NoValidSuperblock { .. }),
                "cut {cut}: {e}"
            );
        } else {
            // Superblock 0 is intact, but the file is shorter than the image it describes.
            assert!(
                e.is_corruption() && e.to_string().contains("truncated"),
                "cut {cut}: {e}"
            );
        }
    }
}

#[test]
fn garbage_files_are_rejected_without_panicking() {
    let mut rng = lightning_testkit::Rng::new(11);
    for len in [4096usize, 8192, 65536, 131_072, 10_000] {
        for _ in 0..20 {
            let vfs = MemVfs::new();
            raw_file(&vfs, &rng.bytes(len));
            assert!(matches!(open(&vfs), Err(Error::NoValidSuperblock { .. })));
        }
    }
}

#[test]
fn a_damaged_superblock_falls_back_to_the_other_one() {
    let vfs = MemVfs::new();
    let f = new_file(&vfs, PageSize::MIN);
    let mut alloc = PageAllocator::load(&f).unwrap();
    alloc.checkpoint(&f, None, Lsn::new(10)).unwrap(); // generation 1 in page 1
    drop(f);
    let raw = vfs.open(path(), OpenMode::ReadWrite).unwrap();
    raw.write_at(&[0xFF; 16], 4096 + 200).unwrap(); // damage page 1
    let f = open(&vfs).unwrap();
    assert_eq!(
        (f.superblock().generation, f.superblock().checkpoint_lsn),
        (0, Lsn::ZERO)
    );
    drop(f);
    raw.write_at(&[0xFF; 16], 100).unwrap(); // and page 0
    let e = open(&vfs).unwrap_err();
    assert!(matches!(e, Error::NoValidSuperblock { .. }));
    let msg = e.to_string();
    assert!(
        msg.contains("page 0: superblock checksum mismatch"),
        "{msg}"
    );
    assert!(
        msg.contains("page 1: with 4096-byte pages: checksum mismatch"),
        "{msg}"
    );
}

#[test]
fn unknown_format_version_and_wrong_page_size_are_clear_errors() {
    let vfs = MemVfs::new();
    drop(new_file(&vfs, PageSize::DEFAULT));
    let e = PageFile::open(
        &vfs,
        path(),
        OpenOptions {
            page_size: Some(PageSize::MIN),
            read_only: false,
        },
    )
    .unwrap_err();
    assert!(
        matches!(
            e,
            Error::PageSizeMismatch {
                expected: 4096,
                found: 8192,
                ..
            }
        ),
        "{e}"
    );

    // A future version: rewrite the version field and fix both checksums, as a newer
    // engine would have written it.
    let raw = vfs.open(path(), OpenMode::ReadWrite).unwrap();
    let mut page = vec![0u8; 8192];
    raw.read_at(&mut page, 0).unwrap();
    let sb = HEADER_LEN;
    page[sb + 8..sb + 12].copy_from_slice(&(FORMAT_VERSION + 1).to_le_bytes());
    let crc = crc32c::crc32c(&page[sb..sb + 128]);
    page[sb + 128..sb + 132].copy_from_slice(&crc.to_le_bytes());
    let crc = crc32c::crc32c(&page[4..]);
    page[..4].copy_from_slice(&crc.to_le_bytes());
    raw.write_at(&page, 0).unwrap();
    let e = open(&vfs).unwrap_err();
    assert!(
        matches!(
            e,
            Error::UnsupportedFormatVersion {
                found: 2,
                supported: 1,
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn page_ids_past_the_end_and_reserved_pages_are_refused() {
    let vfs = MemVfs::new();
    let f = new_file(&vfs, PageSize::MIN);
    let e = f.read_page(PageId::new(2), None).unwrap_err();
    assert!(
        matches!(e, Error::PageOutOfBounds { page_count: 2, .. }),
        "{e}"
    );
    assert!(f.read_page(PageId::new(u64::MAX), None).is_err());
    let mut p = PageBuf::new(PageSize::MIN, PageType::Overflow);
    assert!(matches!(
        f.write_page(PageId::new(0), 1, &mut p),
        Err(Error::ReservedPage { .. })
    ));
    assert!(matches!(
        f.write_page(PageId::new(5), 1, &mut p),
        Err(Error::PageOutOfBounds { .. })
    ));
    let mut wrong_size = PageBuf::new(PageSize::DEFAULT, PageType::Overflow);
    f.extend_to(3).unwrap();
    assert!(f.write_page(PageId::new(2), 1, &mut wrong_size).is_err());
    // A page that was allocated but never written reads as corruption, not garbage.
    let e = f.read_page(PageId::new(2), None).unwrap_err();
    assert!(
        e.is_corruption() && e.to_string().contains("never written"),
        "{e}"
    );
    assert!(f.extend_to(u64::MAX).is_err());
}

#[test]
fn superblock_generations_must_advance_by_one() {
    let vfs = MemVfs::new();
    let f = new_file(&vfs, PageSize::MIN);
    let sb = Superblock {
        generation: 5,
        ..f.superblock()
    };
    assert!(matches!(
        f.commit_superblock(sb),
        Err(Error::GenerationOutOfOrder {
            current: 0,
            given: 5
        })
    ));
    let sb = Superblock {
        generation: 1,
        page_count: 9,
        ..f.superblock()
    };
    assert!(matches!(
        f.commit_superblock(sb),
        Err(Error::PageOutOfBounds { .. })
    ));
    f.commit_superblock(Superblock {
        generation: 1,
        ..f.superblock()
    })
    .unwrap();
    assert_eq!(f.superblock().generation, 1);
}

#[test]
fn read_only_files_refuse_writes() {
    let vfs = MemVfs::new();
    drop(new_file(&vfs, PageSize::MIN));
    let f = PageFile::open(
        &vfs,
        path(),
        OpenOptions {
            page_size: None,
            read_only: true,
        },
    )
    .unwrap();
    assert!(matches!(f.extend_to(4), Err(Error::ReadOnly { .. })));
    assert!(matches!(f.sync(), Err(Error::ReadOnly { .. })));
}

#[test]
fn a_failed_sync_poisons_the_file_for_good() {
    let vfs = CrashVfs::new(1);
    let f = new_file(&vfs, PageSize::MIN);
    f.extend_to(3).unwrap();
    let mut p = PageBuf::new(PageSize::MIN, PageType::Overflow);
    f.write_page(PageId::new(2), 1, &mut p).unwrap();
    f.sync().unwrap();
    assert!(!f.is_poisoned());
    vfs.inject(Fault {
        op: FaultOp::Sync,
        nth: 0,
        permanent: false,
        kind: FaultKind::Io,
    });
    assert!(matches!(f.sync(), Err(Error::Io { .. })));
    assert!(f.is_poisoned());
    // The device would now report success; the file must not believe it.
    for _ in 0..2 {
        assert!(matches!(f.sync(), Err(Error::Poisoned { .. })));
        assert!(matches!(
            f.write_page(PageId::new(2), 1, &mut p),
            Err(Error::Poisoned { .. })
        ));
        assert!(matches!(
            f.commit_superblock(Superblock {
                generation: 1,
                ..f.superblock()
            }),
            Err(Error::Poisoned { .. })
        ));
    }
    let msg = f.sync().unwrap_err().to_string();
    assert!(msg.contains("reopen"), "{msg}");
}

#[test]
fn enospc_on_extend_is_an_error_and_the_file_keeps_working() {
    let vfs = CrashVfs::new(2);
    let f = new_file(&vfs, PageSize::MIN);
    vfs.inject(Fault {
        op: FaultOp::SetLen,
        nth: 0,
        permanent: false,
        kind: FaultKind::NoSpace,
    });
    let e = f.extend_to(100).unwrap_err();
    assert!(e.to_string().contains("extend to 100 pages"), "{e}");
    assert_eq!(f.page_count(), 2);
    f.extend_to(100).unwrap();
    assert_eq!(f.page_count(), 100);
}

#[test]
fn corruption_on_a_real_disk_names_file_and_page() {
    let dir = tempfile::tempdir().unwrap();
    let file_path = dir.path().join("data.ldb");
    let f = PageFile::create(&OsVfs, &file_path, PageSize::MIN).unwrap();
    f.extend_to(4).unwrap();
    let mut p = PageBuf::new(PageSize::MIN, PageType::BTreeLeaf);
    p.set_payload(b"some row").unwrap();
    f.write_page(PageId::new(3), 1, &mut p).unwrap();
    f.sync().unwrap();
    drop(f);
    let mut bytes = std::fs::read(&file_path).unwrap();
    bytes[3 * 4096 + 40] ^= 0x10;
    std::fs::write(&file_path, &bytes).unwrap();
    let f = PageFile::open(&OsVfs, &file_path, OpenOptions::default()).unwrap();
    let e = f
        .read_page(PageId::new(3), Some(PageType::BTreeLeaf))
        .unwrap_err();
    match &e {
        Error::Corruption {
            file, page, what, ..
        } => {
            assert_eq!(
                (file, *page, *what),
                (&file_path, PageId::new(3), "checksum mismatch")
            );
        }
        other => panic!("expected corruption, got {other}"),
    }
    assert!(e.to_string().contains("data.ldb, page 3"), "{e}");
}

/// `shrink_to` cuts the file to exactly the pages asked for, gives the length back to the
/// file system, never goes below the durable superblock's page count, never grows the file,
/// and what it cut stays cut after a reopen.
#[test]
fn shrink_to_gives_space_back_but_never_below_the_durable_checkpoint() {
    let vfs = MemVfs::new();
    let f = new_file(&vfs, PageSize::MIN);
    let ps = u64::from(PageSize::MIN.bytes());
    let file_len = || vfs.open(path(), OpenMode::ReadOnly).unwrap().len().unwrap();
    f.extend_to(20).unwrap();
    f.commit_superblock(Superblock {
        generation: 1,
        page_count: 8,
        ..f.superblock()
    })
    .unwrap();
    f.shrink_to(12).unwrap();
    assert_eq!((f.page_count(), file_len()), (12, 12 * ps));
    f.shrink_to(5).unwrap();
    assert_eq!(
        (f.page_count(), file_len()),
        (8, 8 * ps),
        "floor: the checkpoint's pages"
    );
    f.shrink_to(30).unwrap();
    assert_eq!(
        (f.page_count(), file_len()),
        (8, 8 * ps),
        "shrinking never grows"
    );
    drop(f);
    assert_eq!(open(&vfs).unwrap().page_count(), 8);
}

/// A superblock claiming more pages than the file has is refused before anything is
/// written, naming its last page and the file's page count; the durable one stays.
#[test]
fn a_superblock_past_the_end_of_the_file_is_refused() {
    let vfs = MemVfs::new();
    let f = new_file(&vfs, PageSize::MIN);
    f.extend_to(6).unwrap();
    let before = f.superblock();
    match f.commit_superblock(Superblock {
        generation: 1,
        page_count: 9,
        ..before
    }) {
        Err(Error::PageOutOfBounds {
            page, page_count, ..
        }) => assert_eq!((page, page_count), (PageId::new(8), 6)),
        other => panic!("{other:?}"),
    }
    assert_eq!(f.superblock(), before);
    drop(f);
    assert_eq!(open(&vfs).unwrap().superblock(), before);
}
