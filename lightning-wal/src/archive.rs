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
use crate::scan::read_whole;
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
pub fn load_index(vfs: &dyn Vfs, dir: &Path) -> Result<Vec<ArchivedSegment>> {
    let path = dir.join(INDEX);
    if !vfs
        .exists(&path)
        .map_err(|e| Error::io("check for", &path, e))?
    {
        return Ok(Vec::new());
    }
    let bytes = read_whole(vfs, &path)?;
    let bad = |line: usize, detail: String| Error::Corruption {
        file: path.clone(),
        offset: line as u64 + 1,
        what: "damaged archive index line",
        detail,
    };
    let text = String::from_utf8(bytes).map_err(|_| bad(0, "not UTF-8".into()))?;
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let Some((body, crc)) = line.rsplit_once(' ') else {
            return Err(bad(n, "no checksum".into()));
        };
        if u32::from_str_radix(crc, 16).ok() != Some(crc32c::crc32c(body.as_bytes())) {
            return Err(bad(n, "checksum mismatch".into()));
        }
        let f: Vec<&str> = body.split(' ').collect();
        let num = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok());
        match (f.first(), num(1), num(2), num(3), num(4), f.get(5)) {
            (Some(&"v1"), Some(first), Some(last), Some(lo), Some(hi), Some(name))
                if f.len() == 6 =>
            {
                out.push(ArchivedSegment {
                    first: Lsn::new(first),
                    last: Lsn::new(last),
                    min_time_us: lo,
                    max_time_us: hi,
                    path: dir.join(name),
                });
            }
            _ => return Err(bad(n, "unknown line format".into())),
        }
    }
    Ok(out)
}

fn store_index(vfs: &dyn Vfs, dir: &Path, entries: &[ArchivedSegment]) -> Result<()> {
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
    for pair in out.windows(2) {
        if pair[1].first != pair[0].last.next() {
            return Err(Error::Corruption {
                file: pair[1].path.clone(),
                offset: 0,
                what: "archive has a gap",
                detail: format!(
                    "records {} to {} are in no archived segment",
                    pair[0].last.next(),
                    Lsn::new(pair[1].first.get() - 1)
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
