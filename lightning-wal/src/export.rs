//! Writing a log from records read elsewhere: what backups and point-in-time recovery use
//! to carry an exact range of a database's log (`lightning-backup`).

use std::path::{Path, PathBuf};

use lightning_page::vfs::{OpenMode, Vfs};

use crate::frame::{FrameMeta, Lsn, Record, SEGMENT_HEADER, encode_frame, encode_segment_header};
use crate::scan::segment_name;
use crate::{Error, Result};

/// One segment file [`write_log`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenSegment {
    /// The file.
    pub path: PathBuf,
    /// Its first record.
    pub first: Lsn,
    /// Its last record.
    pub last: Lsn,
    /// Its length in bytes.
    pub len: u64,
}

/// Writes `records` as the segments of a log in `dir` (created when missing), each segment
/// at most about `segment_size` bytes (a record larger than that gets one of its own).
///
/// The records must have consecutive LSNs in ascending order; anything else is
/// [`Error::InvalidOptions`] before a file is written for it. Each frame records its own LSN
/// as the synced-through LSN, so the written log reads back as wholly durable: every file is
/// synced, then the directory. The LSNs, times, types and payloads are kept exactly, so
/// [`Wal::open`](crate::Wal::open) on `dir` continues the log after the last record.
/// Segments already in `dir` are not touched; the caller writes into an empty directory.
pub fn write_log(
    vfs: &dyn Vfs,
    dir: &Path,
    records: impl IntoIterator<Item = Result<Record>>,
    segment_size: u64,
) -> Result<Vec<WrittenSegment>> {
    vfs.create_dir_all(dir)
        .map_err(|e| Error::io("create directory", dir, e))?;
    let limit = usize::try_from(segment_size.max(4096)).unwrap_or(usize::MAX);
    let mut out = Vec::new();
    let mut buf: Vec<u8> = Vec::new();
    let mut first = Lsn::ZERO;
    let mut last = Lsn::ZERO;
    for rec in records {
        let rec = rec?;
        if last != Lsn::ZERO && rec.lsn != last.next() {
            return Err(Error::InvalidOptions(
                "records to write must have consecutive LSNs in ascending order",
            ));
        }
        if rec.lsn == Lsn::ZERO {
            return Err(Error::InvalidOptions("LSN 0 is never a record's"));
        }
        if !buf.is_empty() && buf.len() + crate::frame::frame_len(rec.payload.len()) > limit {
            out.push(flush(vfs, dir, first, last, &buf)?);
            buf.clear();
        }
        if buf.is_empty() {
            first = rec.lsn;
            buf.extend_from_slice(&encode_segment_header(first));
        }
        let meta = FrameMeta {
            lsn: rec.lsn,
            synced_through: rec.lsn,
            time_us: rec.time_us,
            record_type: rec.record_type,
        };
        encode_frame(&mut buf, meta, &rec.payload);
        last = rec.lsn;
    }
    if buf.len() > SEGMENT_HEADER {
        out.push(flush(vfs, dir, first, last, &buf)?);
    }
    vfs.sync_dir(dir)
        .map_err(|e| Error::io("sync directory", dir, e))?;
    Ok(out)
}

fn flush(vfs: &dyn Vfs, dir: &Path, first: Lsn, last: Lsn, bytes: &[u8]) -> Result<WrittenSegment> {
    let path = dir.join(segment_name(first));
    let f = vfs
        .open(&path, OpenMode::CreateNew)
        .map_err(|e| Error::io("create", &path, e))?;
    f.write_at(bytes, 0)
        .map_err(|e| Error::io("write", &path, e))?;
    f.sync().map_err(|e| Error::io("sync", &path, e))?;
    Ok(WrittenSegment {
        path,
        first,
        last,
        len: bytes.len() as u64,
    })
}

/// Removes archived segments whose records all lie below `keep_from` from the archive in
/// `dir` and from its index (the index first, durably, then the files). Returns how many
/// went. A segment holding `keep_from` or anything after it stays.
pub fn prune_archive(vfs: &dyn Vfs, dir: &Path, keep_from: Lsn) -> Result<usize> {
    let index = crate::archive::load_index(vfs, dir)?;
    let (gone, kept): (Vec<_>, Vec<_>) = index.into_iter().partition(|s| s.last < keep_from);
    if gone.is_empty() {
        return Ok(0);
    }
    crate::archive::store_index(vfs, dir, &kept)?;
    for seg in &gone {
        vfs.remove(&seg.path)
            .map_err(|e| Error::io("remove archived segment", &seg.path, e))?;
    }
    vfs.sync_dir(dir)
        .map_err(|e| Error::io("sync directory", dir, e))?;
    Ok(gone.len())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use lightning_page::vfs::MemVfs;

    use super::*;

    fn rec(lsn: u64, len: usize) -> Record {
        Record {
            lsn: Lsn::new(lsn),
            record_type: 1,
            time_us: 1_000 + lsn,
            payload: vec![u8::try_from(lsn % 251).unwrap_or(0); len],
        }
    }

    #[test]
    fn a_written_log_reads_back_exactly_and_continues_after_its_last_record() {
        let vfs = Arc::new(MemVfs::new());
        let dir: &Path = "b/wal".as_ref();
        let segs = write_log(&*vfs, dir, (41..=140).map(|l| Ok(rec(l, 300))), 8192).unwrap();
        assert!(segs.len() > 3, "several segments: {}", segs.len());
        assert_eq!(segs[0].first, Lsn::new(41));
        assert_eq!(segs.last().unwrap().last, Lsn::new(140));
        for pair in segs.windows(2) {
            assert_eq!(pair[1].first, pair[0].last.next());
        }
        let (rec_info, iter) = crate::read_only(vfs.clone(), dir, 1 << 20, Lsn::new(41)).unwrap();
        assert_eq!(rec_info.first_lsn, Lsn::new(41));
        assert_eq!(rec_info.last_lsn, Lsn::new(140));
        assert!(rec_info.torn_tail.is_none());
        let back: Vec<Record> = iter.map(|r| r.unwrap()).collect();
        let want: Vec<Record> = (41..=140).map(|l| rec(l, 300)).collect();
        assert_eq!(back, want);
        let wal = crate::Wal::open(vfs, dir, crate::WalOptions::default()).unwrap();
        let next = wal.append(1, b"x", crate::Durability::Immediate).unwrap();
        assert_eq!(next.lsn(), Lsn::new(141));
    }

    #[test]
    fn records_out_of_order_are_refused() {
        let vfs = MemVfs::new();
        let bad = vec![Ok(rec(5, 10)), Ok(rec(7, 10))];
        assert!(matches!(
            write_log(&vfs, "w".as_ref(), bad, 8192),
            Err(Error::InvalidOptions(_))
        ));
    }
}
