//! The archive of closed segments kept for point-in-time recovery, and its index.
//!
//! Archived segments keep their names (`<first LSN>.wal`). The index, `index` in the
//! archive directory, has one line per segment:
//!
//! ```text
//! v1 <first LSN> <last LSN> <min time µs> <max time µs> <file name> <crc32c of the text before it, hex>
//! ```
//!
//! It is rewritten whole (temporary file, sync, rename, directory sync), so a power cut
//! leaves the old or the new index, never a mix. A line whose checksum fails is corruption.

use std::path::{Path, PathBuf};

use lightning_page::vfs::{OpenMode, Vfs, parent_dir};

use crate::frame::Lsn;
use crate::scan::{parse_segment_name, read_whole, segment_name};
use crate::{Error, Result};

/// One archived segment: its LSN range and the wall-clock range of its records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchivedSegment {
    /// First record.
    pub first: Lsn,
    /// Last record.
    pub last: Lsn,
    /// Earliest append time in the segment, microseconds since the Unix epoch.
    pub min_time_us: u64,
    /// Latest append time in the segment.
    pub max_time_us: u64,
    /// The segment's path in the archive.
    pub path: PathBuf,
}

const INDEX: &str = "index";

fn line_for(s: &ArchivedSegment) -> String {
    let name = s
        .path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let text = format!(
        "v1 {} {} {} {} {}",
        s.first, s.last, s.min_time_us, s.max_time_us, name
    );
    let crc = crc32c::crc32c(text.as_bytes());
    format!("{text} {crc:08x}\n")
}

/// Reads the archive index of `dir` (empty if there is none yet).
///
/// Every line must check out: its checksum, its format, a file name that is the segment
/// name of its first LSN (so no line points outside the archive), `first <= last`, and
/// ranges in ascending order without overlap. And every segment file in the archive must
/// be listed: one that is not means the index lost entries (an index renamed into place
/// before its contents were durable comes back empty), which is corruption, not an empty
/// archive. Gaps between listed segments are reported by [`segments_through`].
pub fn load_index(vfs: &dyn Vfs, dir: &Path) -> Result<Vec<ArchivedSegment>> {
    let path = dir.join(INDEX);
    let out = if vfs
        .exists(&path)
        .map_err(|e| Error::io("check for", &path, e))?
    {
        parse_index(&path, dir, &read_whole(vfs, &path)?)?
    } else {
        Vec::new()
    };
    let listed = match vfs.list(dir) {
        Ok(listed) => listed,
        // No archive directory yet: nothing was ever archived.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(Error::io("list", dir, e)),
    };
    for file in listed {
        let Some(first) = parse_segment_name(&file) else {
            continue;
        };
        if out.binary_search_by_key(&first, |s| s.first).is_err() {
            return Err(Error::Corruption {
                file,
                offset: 0,
                what: "archived segment missing from the archive index",
                detail: format!(
                    "the index lists {} segment(s), not this one, which starts at LSN {first}",
                    out.len()
                ),
            });
        }
    }
    Ok(out)
}

fn parse_index(path: &Path, dir: &Path, bytes: &[u8]) -> Result<Vec<ArchivedSegment>> {
    let bad = |line: usize, detail: String| Error::Corruption {
        file: path.to_path_buf(),
        offset: line as u64 + 1,
        what: "damaged archive index line",
        detail,
    };
    let text = std::str::from_utf8(bytes).map_err(|_| bad(0, "not UTF-8".into()))?;
    let mut out: Vec<ArchivedSegment> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let Some((body, crc)) = line.rsplit_once(' ') else {
            return Err(bad(n, "no checksum".into()));
        };
        if u32::from_str_radix(crc, 16).ok() != Some(crc32c::crc32c(body.as_bytes())) {
            return Err(bad(n, "checksum mismatch".into()));
        }
        let f: Vec<&str> = body.split(' ').collect();
        let num = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok());
        let (Some(&"v1"), Some(first), Some(last), Some(lo), Some(hi), Some(name), 6) =
            (f.first(), num(1), num(2), num(3), num(4), f.get(5), f.len())
        else {
            return Err(bad(n, "unknown line format".into()));
        };
        let (first, last) = (Lsn::new(first), Lsn::new(last));
        if *name != segment_name(first) {
            return Err(bad(
                n,
                format!("file name is not the segment name of LSN {first}"),
            ));
        }
        if last < first {
            return Err(bad(n, format!("last LSN {last} before first LSN {first}")));
        }
        if let Some(prev) = out.last()
            && first <= prev.last
        {
            return Err(bad(
                n,
                format!(
                    "LSN {first} does not follow the previous line's last LSN {}",
                    prev.last
                ),
            ));
        }
        out.push(ArchivedSegment {
            first,
            last,
            min_time_us: lo,
            max_time_us: hi,
            path: dir.join(name),
        });
    }
    Ok(out)
}

pub(crate) fn store_index(vfs: &dyn Vfs, dir: &Path, entries: &[ArchivedSegment]) -> Result<()> {
    let text: String = entries.iter().map(line_for).collect();
    let tmp = dir.join("index.tmp");
    if vfs
        .exists(&tmp)
        .map_err(|e| Error::io("check for", &tmp, e))?
    {
        vfs.remove(&tmp).map_err(|e| Error::io("remove", &tmp, e))?;
    }
    let f = vfs
        .open(&tmp, OpenMode::CreateNew)
        .map_err(|e| Error::io("create", &tmp, e))?;
    f.write_at(text.as_bytes(), 0)
        .map_err(|e| Error::io("write", &tmp, e))?;
    f.sync().map_err(|e| Error::io("sync", &tmp, e))?;
    drop(f);
    let path = dir.join(INDEX);
    vfs.rename(&tmp, &path)
        .map_err(|e| Error::io("rename into place", &path, e))?;
    vfs.sync_dir(dir)
        .map_err(|e| Error::io("sync directory", dir, e))
}

/// Moves a closed, synced segment into the archive and records it in the index.
///
/// The index entry is written first: a power cut before the move leaves an entry whose file
/// is still in the log directory (the next truncation archives it again and the entry is
/// rewritten); the reverse order could leave an archived segment no index knows of.
pub(crate) fn archive_segment(vfs: &dyn Vfs, archive: &Path, seg: &ArchivedSegment) -> Result<()> {
    vfs.create_dir_all(archive)
        .map_err(|e| Error::io("create directory", archive, e))?;
    let name = seg.path.file_name().map(PathBuf::from).unwrap_or_default();
    let target = archive.join(&name);
    let mut entries = load_index(vfs, archive)?;
    entries.retain(|e| e.first != seg.first);
    entries.push(ArchivedSegment {
        path: target.clone(),
        ..seg.clone()
    });
    entries.sort_by_key(|e| e.first);
    store_index(vfs, archive, &entries)?;
    vfs.rename(&seg.path, &target)
        .map_err(|e| Error::io("archive", &seg.path, e))?;
    vfs.sync_dir(archive)
        .map_err(|e| Error::io("sync directory", archive, e))?;
    let from = parent_dir(&seg.path);
    vfs.sync_dir(&from)
        .map_err(|e| Error::io("sync directory", &from, e))
}

/// The archived segments needed to replay up to `target` (inclusive), oldest first: every
/// segment whose first LSN is at or below it. A gap between them (a segment missing from
/// the index) is corruption: replaying across it would skip commits.
pub fn segments_through(index: &[ArchivedSegment], target: Lsn) -> Result<Vec<ArchivedSegment>> {
    let out: Vec<ArchivedSegment> = index
        .iter()
        .filter(|s| s.first <= target)
        .cloned()
        .collect();
    for (prev, seg) in out.iter().zip(out.iter().skip(1)) {
        // An index not from `load_index` may be out of order or overlap: corruption too,
        // and `seg.first - 1` below would underflow for a first LSN of 0.
        if seg.first <= prev.last {
            return Err(Error::Corruption {
                file: seg.path.clone(),
                offset: 0,
                what: "archive segments out of order or overlapping",
                detail: format!(
                    "a segment from LSN {} follows one through LSN {}",
                    seg.first, prev.last
                ),
            });
        }
        if seg.first != prev.last.next() {
            return Err(Error::Corruption {
                file: seg.path.clone(),
                offset: 0,
                what: "archive has a gap",
                detail: format!(
                    "records {} to {} are in no archived segment",
                    prev.last.next(),
                    Lsn::new(seg.first.get() - 1)
                ),
            });
        }
    }
    Ok(out)
}

/// A conservative bound for point-in-time recovery: the last LSN of the newest archived
/// segment whose records were all appended at or before `time_us` (or the LSN before a
/// segment that straddles it). `None` if the archive does not reach back that far. The
/// recovery driver refines it by reading the records' own times.
pub fn last_lsn_at(index: &[ArchivedSegment], time_us: u64) -> Option<Lsn> {
    index
        .iter()
        .filter(|s| s.min_time_us <= time_us)
        .map(|s| {
            if s.max_time_us <= time_us {
                s.last
            } else {
                Lsn::new(s.first.get().saturating_sub(1))
            }
        })
        .max()
}

#[cfg(test)]
mod tests {
    use super::*;
    use lightning_page::vfs::MemVfs;

    fn seg(first: u64, last: u64) -> ArchivedSegment {
        ArchivedSegment {
            first: Lsn::new(first),
            last: Lsn::new(last),
            min_time_us: first * 10,
            max_time_us: last * 10,
            path: PathBuf::from(format!("/a/{first:020}.wal")),
        }
    }

    #[test]
    fn an_unordered_index_is_corruption_not_an_underflow() {
        // `segments_through` is public: a caller's index need not come from `load_index`.
        // A segment starting at LSN 0 after another used to compute `0 - 1`.
        let e = segments_through(&[seg(5, 10), seg(0, 3)], Lsn::new(20)).unwrap_err();
        assert!(
            e.is_corruption() && e.to_string().contains("out of order"),
            "{e}"
        );
        let e = segments_through(&[seg(1, 10), seg(5, 20)], Lsn::new(20)).unwrap_err();
        assert!(
            e.is_corruption() && e.to_string().contains("overlapping"),
            "{e}"
        );
        let e = segments_through(&[seg(1, 10), seg(12, 20)], Lsn::new(20)).unwrap_err();
        assert!(e.to_string().contains("records 11 to 11"), "{e}");
        assert_eq!(
            segments_through(&[seg(1, 10), seg(11, 20)], Lsn::new(20)).unwrap(),
            vec![seg(1, 10), seg(11, 20)]
        );
    }

    #[test]
    fn index_round_trips_and_detects_damage() {
        let vfs = MemVfs::new();
        let dir = Path::new("/a");
        vfs.create_dir_all(dir).unwrap();
        let entries = vec![seg(1, 10), seg(11, 25)];
        store_index(&vfs, dir, &entries).unwrap();
        assert_eq!(load_index(&vfs, dir).unwrap(), entries);
        let f = vfs.open(&dir.join(INDEX), OpenMode::ReadWrite).unwrap();
        f.write_at(b"v1 2", 0).unwrap();
        let e = load_index(&vfs, dir).unwrap_err();
        assert!(
            e.is_corruption() && e.to_string().contains("offset 1"),
            "{e}"
        );
    }

    fn with_crc(text: &str) -> String {
        format!("{text} {:08x}\n", crc32c::crc32c(text.as_bytes()))
    }

    fn index_of(lines: &[&str]) -> Result<Vec<ArchivedSegment>> {
        let vfs = MemVfs::new();
        let dir = Path::new("/a");
        vfs.create_dir_all(dir).unwrap();
        let text: String = lines.iter().map(|l| with_crc(l)).collect();
        let f = vfs.open(&dir.join(INDEX), OpenMode::CreateNew).unwrap();
        f.write_at(text.as_bytes(), 0).unwrap();
        load_index(&vfs, dir)
    }

    #[test]
    fn index_lines_must_describe_segments_of_this_archive_in_order() {
        let good = "v1 1 10 5 9 00000000000000000001.wal";
        let next = "v1 11 20 9 12 00000000000000000011.wal";
        assert_eq!(index_of(&[good, next]).unwrap().len(), 2);
        for (lines, what) in [
            (
                vec![good, "v1 11 20 9 12 00000000000000000011.wal extra"],
                "unknown line format",
            ),
            (
                vec!["v1 11 20 9 00000000000000000011.wal"],
                "unknown line format",
            ),
            (
                vec!["v2 1 10 5 9 00000000000000000001.wal"],
                "unknown line format",
            ),
            (
                vec!["v1 1 10 5 9 ../00000000000000000001.wal"],
                "not the segment name",
            ),
            (
                vec!["v1 1 10 5 9 /etc/00000000000000000001.wal"],
                "not the segment name",
            ),
            (
                vec!["v1 1 10 5 9 00000000000000000002.wal"],
                "not the segment name",
            ),
            (
                vec!["v1 10 9 5 9 00000000000000000010.wal"],
                "before first LSN",
            ),
            (
                vec![good, "v1 10 20 9 12 00000000000000000010.wal"],
                "does not follow",
            ),
            (vec![next, good], "does not follow"),
        ] {
            let e = index_of(&lines).unwrap_err();
            let line = lines.len() as u64;
            assert!(
                matches!(&e, Error::Corruption { offset, .. } if *offset == line)
                    && e.to_string().contains(what),
                "{lines:?}: {e}"
            );
        }
        // A single record per segment is fine, and so is a gap (`segments_through` reports it).
        assert!(index_of(&["v1 1 1 5 5 00000000000000000001.wal", next]).is_ok());
    }

    #[test]
    fn an_archived_segment_missing_from_the_index_is_corruption() {
        let vfs = MemVfs::new();
        let dir = Path::new("/a");
        // No archive directory yet: nothing archived.
        assert_eq!(load_index(&vfs, dir).unwrap(), Vec::new());
        vfs.create_dir_all(dir).unwrap();
        vfs.open(&dir.join("00000000000000000011.wal"), OpenMode::CreateNew)
            .unwrap();
        vfs.open(&dir.join("notes.txt"), OpenMode::CreateNew)
            .unwrap();
        // An index that came back empty (renamed into place before it was durable) ...
        vfs.open(&dir.join(INDEX), OpenMode::CreateNew).unwrap();
        let e = load_index(&vfs, dir).unwrap_err();
        assert!(
            e.is_corruption() && e.to_string().contains("00000000000000000011.wal"),
            "{e}"
        );
        // ... or none at all.
        vfs.remove(&dir.join(INDEX)).unwrap();
        assert!(load_index(&vfs, dir).unwrap_err().is_corruption());
        store_index(&vfs, dir, &[seg(1, 10), seg(11, 25)]).unwrap();
        assert_eq!(load_index(&vfs, dir).unwrap().len(), 2);
    }

    /// A `MemVfs` whose directory listings fail.
    #[derive(Debug)]
    struct NoList(MemVfs);

    impl Vfs for NoList {
        fn open(
            &self,
            p: &Path,
            m: OpenMode,
        ) -> std::io::Result<Box<dyn lightning_page::vfs::VfsFile>> {
            self.0.open(p, m)
        }
        fn rename(&self, a: &Path, b: &Path) -> std::io::Result<()> {
            self.0.rename(a, b)
        }
        fn remove(&self, p: &Path) -> std::io::Result<()> {
            self.0.remove(p)
        }
        fn exists(&self, p: &Path) -> std::io::Result<bool> {
            self.0.exists(p)
        }
        fn list(&self, _: &Path) -> std::io::Result<Vec<PathBuf>> {
            Err(std::io::Error::other("injected EIO"))
        }
        fn create_dir_all(&self, p: &Path) -> std::io::Result<()> {
            self.0.create_dir_all(p)
        }
        fn sync_dir(&self, p: &Path) -> std::io::Result<()> {
            self.0.sync_dir(p)
        }
        fn lock(&self, p: &Path) -> std::io::Result<lightning_page::vfs::VfsLock> {
            self.0.lock(p)
        }
    }

    #[test]
    fn an_archive_that_cannot_be_listed_is_an_error_not_an_empty_archive() {
        let vfs = NoList(MemVfs::new());
        let e = load_index(&vfs, Path::new("/a")).unwrap_err();
        assert!(matches!(e, Error::Io { .. }), "{e}");
    }

    #[test]
    fn time_lookup_picks_the_last_whole_segment() {
        let index = vec![seg(1, 10), seg(11, 25)];
        assert_eq!(last_lsn_at(&index, 5), None);
        assert_eq!(last_lsn_at(&index, 100), Some(Lsn::new(10)));
        assert_eq!(last_lsn_at(&index, 150), Some(Lsn::new(10)));
        assert_eq!(last_lsn_at(&index, 250), Some(Lsn::new(25)));
        assert_eq!(segments_through(&index, Lsn::new(11)).unwrap().len(), 2);
        let gap = vec![seg(1, 10), seg(12, 25)];
        assert!(
            segments_through(&gap, Lsn::new(20))
                .unwrap_err()
                .is_corruption()
        );
    }
}
