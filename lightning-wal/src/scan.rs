//! Reading the log back: segment discovery, frame-by-frame validation, and the decision
//! between a torn tail (the end of the log) and corruption (an error).
//!
//! A record that fails its checksum, is cut short, carries the wrong LSN, or is missing is
//! a *stop*. What comes after a stop decides what it means. Every frame records the LSN up
//! to which the log was durable when it was written (`synced_through`). If some valid frame
//! after the stop says the record at the stop was already durable, the damage hit data an
//! fsync had made durable: corruption. Otherwise the stop is the torn tail of writes no sync
//! had covered — a legitimate power-cut outcome — and the log ends there.

use std::path::{Path, PathBuf};

use lightning_page::vfs::{OpenMode, Vfs};

use crate::frame::{
    ALIGN, Decoded, FRAME_HEADER, Lsn, Record, SEGMENT_HEADER, check_segment_header, decode_frame,
    peek_header,
};
use crate::{Error, Result};

/// What recovery found in one segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SegmentInfo {
    pub(crate) first: Lsn,
    pub(crate) path: PathBuf,
    /// The last valid record, if any.
    pub(crate) last: Option<Lsn>,
    /// Byte offset just past the last valid frame.
    pub(crate) end: u64,
    /// The file's length.
    pub(crate) file_len: u64,
    pub(crate) min_time_us: Option<u64>,
    pub(crate) max_time_us: Option<u64>,
}

impl SegmentInfo {
    pub(crate) fn new(first: Lsn, path: PathBuf) -> Self {
        SegmentInfo {
            first,
            path,
            last: None,
            end: SEGMENT_HEADER as u64,
            file_len: 0,
            min_time_us: None,
            max_time_us: None,
        }
    }

    pub(crate) fn note_record(&mut self, lsn: Lsn, time_us: u64) {
        self.last = Some(lsn);
        self.min_time_us = Some(self.min_time_us.map_or(time_us, |t| t.min(time_us)));
        self.max_time_us = Some(self.max_time_us.map_or(time_us, |t| t.max(time_us)));
    }
}

/// Damage at the end of the log that recovery treats as a torn, never-acknowledged tail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornTail {
    /// The segment holding the tail.
    pub segment: PathBuf,
    /// Offset where the valid log ends.
    pub offset: u64,
    /// What was found there.
    pub what: &'static str,
    /// Bytes after the end (in that segment) that recovery discards on open for write.
    pub discarded_bytes: u64,
}

/// The valid log found on disk.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    /// Segments holding the valid log, oldest first.
    pub(crate) segments: Vec<SegmentInfo>,
    /// The last valid record; `first - 1` (or zero) for an empty log.
    pub(crate) last: Lsn,
    pub(crate) torn: Option<TornTail>,
}

/// The file name of the segment whose first record is `first`.
pub(crate) fn segment_name(first: Lsn) -> String {
    format!("{:020}.wal", first.get())
}

/// The first LSN a segment file name promises: exactly [`segment_name`]'s form.
pub(crate) fn parse_segment_name(path: &Path) -> Option<Lsn> {
    let name = path.file_name()?.to_str()?;
    let digits = name.strip_suffix(".wal")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok().map(Lsn::new)
}

/// The segments in `dir`, sorted by first LSN.
pub(crate) fn list_segments(vfs: &dyn Vfs, dir: &Path) -> Result<Vec<(Lsn, PathBuf)>> {
    let mut out: Vec<(Lsn, PathBuf)> = vfs
        .list(dir)
        .map_err(|e| Error::io("list", dir, e))?
        .into_iter()
        .filter_map(|p| parse_segment_name(&p).map(|l| (l, p)))
        .collect();
    out.sort();
    Ok(out)
}

pub(crate) fn read_whole(vfs: &dyn Vfs, path: &Path) -> Result<Vec<u8>> {
    let file = vfs
        .open(path, OpenMode::ReadOnly)
        .map_err(|e| Error::io("open", path, e))?;
    let len = file
        .len()
        .map_err(|e| Error::io("read the length of", path, e))?;
    let len =
        usize::try_from(len).map_err(|_| Error::InvalidOptions("segment larger than memory"))?;
    let mut buf = vec![0u8; len];
    file.read_at(&mut buf, 0)
        .map_err(|e| Error::io("read", path, e))?;
    Ok(buf)
}

/// Where validation stopped in a segment.
struct Stop {
    offset: usize,
    what: &'static str,
}

/// Validates the frames of one segment, expecting LSNs from `expected`.
fn scan_segment(
    buf: &[u8],
    info: &mut SegmentInfo,
    mut expected: Lsn,
    max_payload: u32,
) -> Option<Stop> {
    info.file_len = buf.len() as u64;
    if let Err(what) = check_segment_header(buf, info.first) {
        info.end = 0;
        return Some(Stop { offset: 0, what });
    }
    let mut at = SEGMENT_HEADER;
    loop {
        info.end = at as u64;
        match decode_frame(buf, at, max_payload) {
            Decoded::Frame { meta, next, .. } if meta.lsn == expected => {
                info.note_record(meta.lsn, meta.time_us);
                expected = expected.next();
                at = next;
            }
            Decoded::Frame { .. } => {
                return Some(Stop {
                    offset: at,
                    what: "record with an unexpected LSN",
                });
            }
            Decoded::Empty => {
                return (at < buf.len()).then_some(Stop {
                    offset: at,
                    what: "end of written data",
                });
            }
            Decoded::Invalid(what) => return Some(Stop { offset: at, what }),
        }
    }
}

/// The largest `synced_through` among valid frames after a stop at `stop` in `buf`,
/// considering only frames that could follow it: numbered `missing` or later, with no more
/// records between than bytes allow (records `missing..lsn` each take a frame of at least
/// `FRAME_HEADER` bytes between `stop` and `at`), and claiming durability only of earlier
/// records.
/// Aligned offsets are probed inside damaged bytes; after a valid frame the probe jumps over
/// it, so payloads are never taken for frames. Cheap header checks come before any checksum.
fn max_synced_after(buf: &[u8], stop: usize, missing: Lsn, max_payload: u32) -> Option<(Lsn, Lsn)> {
    let mut best: Option<(Lsn, Lsn)> = None;
    let mut at = (stop + ALIGN).div_ceil(ALIGN) * ALIGN;
    while at + FRAME_HEADER <= buf.len() {
        let room = ((at - stop) / FRAME_HEADER) as u64;
        let plausible = peek_header(buf, at).is_some_and(|(lsn, synced, len)| {
            lsn >= missing
                && lsn.get() - missing.get() <= room
                && synced < lsn
                && len <= max_payload
        });
        if plausible && let Decoded::Frame { meta, next, .. } = decode_frame(buf, at, max_payload) {
            if best.is_none_or(|(s, _)| meta.synced_through > s) {
                best = Some((meta.synced_through, meta.lsn));
            }
            at = next;
            continue;
        }
        at += ALIGN;
    }
    best
}

/// Scans the whole log in `dir`.
pub(crate) fn scan_dir(vfs: &dyn Vfs, dir: &Path, max_payload: u32) -> Result<Layout> {
    let listed = list_segments(vfs, dir)?;
    let mut segments = Vec::new();
    let mut last = listed.first().map_or(Lsn::ZERO, |(first, _)| {
        Lsn::new(first.get().saturating_sub(1))
    });
    let mut iter = listed.into_iter().peekable();
    while let Some((first, path)) = iter.next() {
        let expected = last.next();
        if first != expected || first.get() == u64::MAX {
            return Err(Error::Corruption {
                file: path,
                offset: 0,
                what: "segment does not continue the log",
                detail: format!(
                    "expected a segment starting at LSN {expected}, found one starting at {first}"
                ),
            });
        }
        let buf = read_whole(vfs, &path)?;
        let mut info = SegmentInfo::new(first, path);
        let stop = scan_segment(&buf, &mut info, expected, max_payload);
        if let Some(l) = info.last {
            last = l;
        }
        let Some(stop) = stop else {
            segments.push(info);
            continue;
        };
        let Some((next_first, _)) = iter.peek() else {
            // The last segment: a stop here is a torn tail unless a later frame proves the
            // missing record was durable.
            let missing = last.next();
            let evidence = max_synced_after(&buf, stop.offset, missing, max_payload);
            // A segment header is synced before any record goes in, so a damaged header over
            // valid records is damage to durable data, whatever the records say.
            let header_under_records = stop.offset == 0 && evidence.is_some();
            if let Some((synced, witness)) = evidence
                && (synced >= missing || header_under_records)
            {
                return Err(Error::Corruption {
                    file: info.path.clone(),
                    offset: stop.offset as u64,
                    what: stop.what,
                    detail: format!(
                        "record {missing} was durable: record {witness}, written later, says the log was synced through {synced}"
                    ),
                });
            }
            let torn = (stop.what != "end of written data").then(|| TornTail {
                segment: info.path.clone(),
                offset: info.end,
                what: stop.what,
                discarded_bytes: info.file_len - info.end,
            });
            if let Some(t) = &torn {
                tracing::warn!(segment = %t.segment.display(), offset = t.offset, what = t.what, "WAL ends in a torn tail; unacknowledged records after it are discarded");
            }
            segments.push(info);
            return Ok(Layout {
                segments,
                last,
                torn,
            });
        };
        // A segment that ends early is fine when the next one carries on exactly.
        if *next_first == last.next() {
            if stop.what != "end of written data" {
                tracing::warn!(segment = %info.path.display(), offset = stop.offset, what = stop.what, "junk after the last record of a closed segment");
            }
            segments.push(info);
            continue;
        }
        // A segment is synced before the next one is created, so its loss, whatever the
        // frames say, is damage to durable data.
        let what = if stop.what == "end of written data" {
            "records missing before the next segment"
        } else {
            stop.what
        };
        return Err(Error::Corruption {
            file: info.path.clone(),
            offset: stop.offset as u64,
            what,
            detail: format!(
                "record {} is missing, yet segment {} was created after this one was synced",
                last.next(),
                next_first
            ),
        });
    }
    Ok(Layout {
        segments,
        last,
        torn: None,
    })
}

/// Iterates records from the log's segments, in LSN order, up to a last LSN.
#[derive(Debug)]
pub struct RecordIter {
    vfs: std::sync::Arc<dyn Vfs>,
    segments: std::vec::IntoIter<(Lsn, PathBuf)>,
    buf: Vec<u8>,
    path: PathBuf,
    at: usize,
    from: Lsn,
    last: Lsn,
    /// The LSN the next frame must carry.
    expected: Lsn,
    max_payload: u32,
    done: bool,
}

impl RecordIter {
    pub(crate) fn new(
        vfs: std::sync::Arc<dyn Vfs>,
        segments: Vec<(Lsn, PathBuf)>,
        from: Lsn,
        last: Lsn,
        max_payload: u32,
    ) -> Self {
        // Skip segments wholly before `from`.
        let start = segments
            .iter()
            .rposition(|(first, _)| *first <= from)
            .unwrap_or(0);
        let segments: Vec<_> = segments.into_iter().skip(start).collect();
        RecordIter {
            vfs,
            segments: segments.into_iter(),
            buf: Vec::new(),
            path: PathBuf::new(),
            at: 0,
            from,
            expected: Lsn::ZERO,
            last,
            max_payload,
            done: false,
        }
    }
}

impl Iterator for RecordIter {
    type Item = Result<Record>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            match decode_frame(&self.buf, self.at, self.max_payload) {
                // Only the record the sequence expects counts: a stray frame after the last
                // record of a segment (junk recovery tolerated) ends that segment.
                Decoded::Frame {
                    meta,
                    payload,
                    next,
                } if self.at >= SEGMENT_HEADER && meta.lsn == self.expected => {
                    self.at = next;
                    self.expected = meta.lsn.next();
                    if meta.lsn > self.last {
                        self.done = true;
                        return None;
                    }
                    if meta.lsn >= self.from {
                        return Some(Ok(Record {
                            lsn: meta.lsn,
                            record_type: meta.record_type,
                            time_us: meta.time_us,
                            payload: payload.to_vec(),
                        }));
                    }
                }
                _ => {
                    // End of this segment (recovery validated it): on to the next.
                    let Some((first, path)) = self.segments.next() else {
                        self.done = true;
                        return None;
                    };
                    match read_whole(&*self.vfs, &path) {
                        Ok(buf) => {
                            self.buf = buf;
                            self.path = path;
                            self.at = SEGMENT_HEADER;
                            self.expected = first;
                        }
                        Err(e) => {
                            self.done = true;
                            return Some(Err(e));
                        }
                    }
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::{FrameMeta, encode_frame, encode_segment_header};

    const MAX: u32 = 1 << 20;

    fn frame(out: &mut Vec<u8>, lsn: u64, synced: u64, payload: &[u8]) -> usize {
        let at = out.len();
        let meta = FrameMeta {
            lsn: Lsn::new(lsn),
            synced_through: Lsn::new(synced),
            time_us: 1,
            record_type: 1,
        };
        encode_frame(out, meta, payload);
        at
    }

    /// A frame's bytes on their own, to hide inside a payload.
    fn image(lsn: u64, synced: u64) -> Vec<u8> {
        let mut v = Vec::new();
        frame(&mut v, lsn, synced, b"");
        v
    }

    /// A segment of records 1..=`n` (synced through `lsn - 1` each, empty payloads but the
    /// last, which carries `last_payload`), with record `stop` damaged; returns it and
    /// where record `stop` starts.
    fn log_with_stop(n: u64, stop: u64, last_payload: &[u8]) -> (Vec<u8>, usize) {
        let mut buf = encode_segment_header(Lsn::new(1)).to_vec();
        let mut at = 0;
        for lsn in 1..=n {
            let payload = if lsn == n { last_payload } else { b"" };
            let offset = frame(&mut buf, lsn, lsn - 1, payload);
            if lsn == stop {
                at = offset;
            }
        }
        buf[at] ^= 0xFF; // its checksum
        (buf, at)
    }

    #[test]
    fn the_next_record_right_after_a_stop_is_evidence() {
        // Record 2 (40 bytes) is damaged; record 3 right behind it says 2 was durable.
        let (buf, stop) = log_with_stop(3, 2, b"");
        assert_eq!(
            max_synced_after(&buf, stop, Lsn::new(2), MAX),
            Some((Lsn::new(2), Lsn::new(3)))
        );
        // Records 2..=4 of 40 bytes each: record 5 is exactly as far as 3 records allow.
        let (buf, stop) = log_with_stop(5, 2, b"");
        assert_eq!(
            max_synced_after(&buf, stop, Lsn::new(2), MAX),
            Some((Lsn::new(4), Lsn::new(5)))
        );
    }

    #[test]
    fn the_largest_claim_wins() {
        let mut buf = encode_segment_header(Lsn::new(1)).to_vec();
        frame(&mut buf, 1, 0, b"");
        let stop = frame(&mut buf, 2, 0, b"rots");
        frame(&mut buf, 3, 0, b"");
        frame(&mut buf, 4, 1, b"");
        frame(&mut buf, 5, 4, b"");
        frame(&mut buf, 6, 1, b"");
        // A tie names the first witness, the one nearest the damage.
        frame(&mut buf, 7, 4, b"");
        buf[stop + 40] ^= 1;
        assert_eq!(
            max_synced_after(&buf, stop, Lsn::new(2), MAX),
            Some((Lsn::new(4), Lsn::new(5)))
        );
    }

    /// Frames hidden in the last record's payload, right after the damaged record 2, that
    /// a real log could not hold there; none of them may count as evidence.
    #[test]
    fn frames_that_could_not_follow_the_stop_are_no_evidence() {
        let cases: [(&str, Vec<u8>); 5] = [
            ("an earlier LSN", image(1, 9)),
            ("the stop's own LSN claiming itself durable", image(2, 2)),
            ("an LSN claiming itself durable", image(4, 4)),
            ("an LSN claiming a later one durable", image(4, 7)),
            // After the damaged record (40 bytes) and record 3's header (40 bytes) there
            // is room for records 2 and 3 only: record 5 cannot be next.
            ("an LSN too far ahead for the bytes between", image(5, 4)),
        ];
        for (what, hidden) in cases {
            // Record 3's payload is the hidden frame; record 3 itself claims nothing.
            let mut buf = encode_segment_header(Lsn::new(1)).to_vec();
            frame(&mut buf, 1, 0, b"");
            let stop = frame(&mut buf, 2, 1, b"");
            let third = frame(&mut buf, 3, 1, &hidden);
            buf[stop] ^= 0xFF;
            // Record 3's header is damaged too, so the probe reads its payload.
            buf[third] ^= 0xFF;
            assert_eq!(
                max_synced_after(&buf, stop, Lsn::new(2), MAX),
                None,
                "{what}"
            );
        }
        // With a larger log the room check must subtract, not divide, the LSNs.
        let mut buf = encode_segment_header(Lsn::new(1)).to_vec();
        for lsn in 1..100 {
            frame(&mut buf, lsn, lsn - 1, b"");
        }
        let stop = frame(&mut buf, 100, 99, b"");
        let next = frame(&mut buf, 101, 99, &image(150, 100));
        buf[stop] ^= 0xFF;
        buf[next] ^= 0xFF;
        assert_eq!(max_synced_after(&buf, stop, Lsn::new(100), MAX), None);
    }

    #[test]
    fn a_probe_jumps_over_the_payload_of_a_frame_it_found() {
        // Record 3 is intact and claims 1; its payload hides a frame that would claim 2.
        let mut buf = encode_segment_header(Lsn::new(1)).to_vec();
        frame(&mut buf, 1, 0, b"");
        let stop = frame(&mut buf, 2, 1, b"");
        frame(&mut buf, 3, 1, &image(3, 2));
        buf[stop] ^= 0xFF;
        assert_eq!(
            max_synced_after(&buf, stop, Lsn::new(2), MAX),
            Some((Lsn::new(1), Lsn::new(3)))
        );
    }

    fn write(vfs: &dyn Vfs, path: &Path, bytes: &[u8]) {
        let f = vfs.open(path, OpenMode::CreateNew).unwrap();
        f.write_at(bytes, 0).unwrap();
    }

    #[test]
    fn a_valid_frame_with_the_wrong_lsn_ends_the_log() {
        let vfs = std::sync::Arc::new(lightning_page::vfs::MemVfs::new());
        let dir = Path::new("wal");
        vfs.create_dir_all(dir).unwrap();
        let mut buf = encode_segment_header(Lsn::new(1)).to_vec();
        frame(&mut buf, 1, 0, b"one");
        frame(&mut buf, 2, 1, b"two");
        let stray = frame(&mut buf, 7, 0, b"stray");
        write(&*vfs, &dir.join(segment_name(Lsn::new(1))), &buf);
        let layout = scan_dir(&*vfs, dir, MAX).unwrap();
        assert_eq!(layout.last, Lsn::new(2));
        let torn = layout.torn.unwrap();
        assert_eq!(
            (torn.offset, torn.what),
            (stray as u64, "record with an unexpected LSN")
        );
    }

    #[test]
    fn the_reader_stops_a_segment_at_a_stray_frame_and_goes_on_with_the_next() {
        let vfs = std::sync::Arc::new(lightning_page::vfs::MemVfs::new());
        let dir = Path::new("wal");
        vfs.create_dir_all(dir).unwrap();
        let mut first = encode_segment_header(Lsn::new(1)).to_vec();
        frame(&mut first, 1, 0, b"one");
        frame(&mut first, 2, 1, b"two");
        frame(&mut first, 9, 0, b"junk recovery tolerates");
        write(&*vfs, &dir.join(segment_name(Lsn::new(1))), &first);
        let mut second = encode_segment_header(Lsn::new(3)).to_vec();
        frame(&mut second, 3, 2, b"three");
        write(&*vfs, &dir.join(segment_name(Lsn::new(3))), &second);
        let wal = crate::Wal::open(vfs, dir, crate::WalOptions::default()).unwrap();
        let got: Vec<(u64, Vec<u8>)> = wal
            .read_from(Lsn::new(1))
            .unwrap()
            .map(|r| r.map(|r| (r.lsn.get(), r.payload)))
            .collect::<Result<_>>()
            .unwrap();
        assert_eq!(
            got,
            vec![
                (1, b"one".to_vec()),
                (2, b"two".to_vec()),
                (3, b"three".to_vec())
            ]
        );
    }
}
