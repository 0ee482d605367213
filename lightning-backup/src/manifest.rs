//! The manifest of one backup: what it holds and the hash of every byte of it.
//!
//! A text file, one field a line, in this order (`docs/format/backup.md`):
//!
//! ```text
//! lightning-backup 1
//! id <n>
//! kind full|incremental
//! parent <id>|-
//! database <16 hex digits>
//! page_size <bytes>
//! generation <g>                 the checkpoint image this backup holds
//! base_generation <g>            pages written after it are in this backup (0 for a full)
//! checkpoint_lsn <lsn>           the image's checkpoint LSN
//! image_lsn <lsn>                the newest commit the image holds
//! image_time_us <µs>             that commit's time
//! end_lsn <lsn>                  the last WAL record in this backup
//! end_time_us <µs>
//! created_us <µs>
//! page_count <n>                 pages of the image's file, superblocks included
//! superblock <0|1>               the image's superblock slot
//! live <first> <count>           runs of the image's pages (one line each)
//! extent <first> <count> <offset> <blake3>   pages in `pages` (one line each)
//! pages <length> <blake3>        the `pages` file: blake3 over its extents' hashes in order
//! wal <name> <length> <first lsn> <last lsn> <blake3>  (one line each)
//! manifest <blake3 of every byte above this line>
//! ```
//!
//! Every number is decimal; hashes are 64 lower-case hex digits. Parsing trusts nothing: a
//! line out of order, a number that does not parse, ranges that overlap or leave the file,
//! or a manifest hash that does not match is [`Error::Corruption`].

use std::fmt::Write as _;
use std::path::Path;

use lightning_wal::Lsn;

use crate::{Error, Result};

const MAGIC: &str = "lightning-backup 1";

/// The largest database file a manifest may describe (1 PiB).
const MAX_FILE_BYTES: u64 = 1 << 50;

/// Full or incremental.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Every page of the image.
    Full,
    /// The pages written since the parent's image.
    Incremental,
}

/// A run of consecutive pages stored one after another in the backup's `pages` file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extent {
    /// The first page's id in the database file.
    pub first: u64,
    /// How many pages.
    pub count: u64,
    /// Where the run starts in `pages`.
    pub offset: u64,
    /// blake3 of the run's bytes.
    pub hash: [u8; 32],
}

/// A WAL segment in the backup's `wal/` directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalFile {
    /// File name (`<first lsn>.wal`).
    pub name: String,
    /// Length in bytes.
    pub len: u64,
    /// First record.
    pub first: Lsn,
    /// Last record.
    pub last: Lsn,
    /// blake3 of the file.
    pub hash: [u8; 32],
}

/// Everything a backup holds, with the hashes that prove it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// The backup's id in its repository (ascending).
    pub id: u64,
    /// Full or incremental.
    pub kind: Kind,
    /// The backup an incremental builds on.
    pub parent: Option<u64>,
    /// The database's id (from its catalog).
    pub database_id: u64,
    /// Page size of the database file.
    pub page_size: u32,
    /// Generation of the checkpoint image held.
    pub generation: u64,
    /// Pages with a generation above this are in this backup; 0 for a full one.
    pub base_generation: u64,
    /// The image's checkpoint LSN.
    pub checkpoint_lsn: Lsn,
    /// The newest commit the image holds (at or above the checkpoint LSN).
    pub image_lsn: Lsn,
    /// Wall-clock time of that commit, µs since the Unix epoch (0 when there is none).
    pub image_time_us: u64,
    /// The last WAL record this backup holds: restoring it gives the state at this LSN.
    pub end_lsn: Lsn,
    /// That record's time.
    pub end_time_us: u64,
    /// When the backup was taken.
    pub created_us: u64,
    /// Pages in the image's file, superblocks included.
    pub page_count: u64,
    /// The slot (0 or 1) of the image's superblock.
    pub superblock: u64,
    /// Runs `(first, count)` of the pages the image uses (the superblock not included).
    pub live: Vec<(u64, u64)>,
    /// The page runs stored in `pages`, in file order.
    pub extents: Vec<Extent>,
    /// Length of `pages`.
    pub pages_len: u64,
    /// Hash of `pages`: blake3 over its extents' hashes, in order.
    pub pages_hash: [u8; 32],
    /// The WAL segments, in LSN order.
    pub wal: Vec<WalFile>,
}

pub(crate) fn hex(h: &[u8; 32]) -> String {
    let mut s = String::with_capacity(64);
    for b in h {
        let _ = write!(s, "{b:02x}");
    }
    s
}

fn unhex(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64
        || !s
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

impl Manifest {
    /// Number of pages the image uses, from [`live`](Self::live).
    pub fn live_pages(&self) -> u64 {
        self.live.iter().map(|r| r.1).sum()
    }

    /// Bytes this backup occupies: pages and WAL.
    pub fn bytes(&self) -> u64 {
        self.pages_len + self.wal.iter().map(|w| w.len).sum::<u64>()
    }

    /// The manifest's text, ending with the line that hashes the rest.
    pub fn encode(&self) -> String {
        let mut s = String::new();
        let kind = match self.kind {
            Kind::Full => "full",
            Kind::Incremental => "incremental",
        };
        let parent = self
            .parent
            .map_or_else(|| "-".to_string(), |p| p.to_string());
        let _ = writeln!(s, "{MAGIC}");
        let _ = writeln!(s, "id {}", self.id);
        let _ = writeln!(s, "kind {kind}");
        let _ = writeln!(s, "parent {parent}");
        let _ = writeln!(s, "database {:016x}", self.database_id);
        let _ = writeln!(s, "page_size {}", self.page_size);
        let _ = writeln!(s, "generation {}", self.generation);
        let _ = writeln!(s, "base_generation {}", self.base_generation);
        let _ = writeln!(s, "checkpoint_lsn {}", self.checkpoint_lsn.get());
        let _ = writeln!(s, "image_lsn {}", self.image_lsn.get());
        let _ = writeln!(s, "image_time_us {}", self.image_time_us);
        let _ = writeln!(s, "end_lsn {}", self.end_lsn.get());
        let _ = writeln!(s, "end_time_us {}", self.end_time_us);
        let _ = writeln!(s, "created_us {}", self.created_us);
        let _ = writeln!(s, "page_count {}", self.page_count);
        let _ = writeln!(s, "superblock {}", self.superblock);
        for (first, count) in &self.live {
            let _ = writeln!(s, "live {first} {count}");
        }
        for e in &self.extents {
            let _ = writeln!(
                s,
                "extent {} {} {} {}",
                e.first,
                e.count,
                e.offset,
                hex(&e.hash)
            );
        }
        let _ = writeln!(s, "pages {} {}", self.pages_len, hex(&self.pages_hash));
        for w in &self.wal {
            let _ = writeln!(
                s,
                "wal {} {} {} {} {}",
                w.name,
                w.len,
                w.first.get(),
                w.last.get(),
                hex(&w.hash)
            );
        }
        let own = blake3::hash(s.as_bytes());
        let _ = writeln!(s, "manifest {}", hex(own.as_bytes()));
        s
    }

    /// Parses and checks a manifest read from `file` (named in errors).
    pub fn decode(bytes: &[u8], file: &Path) -> Result<Manifest> {
        let bad = |what: String| Error::corrupt(file, format!("manifest: {what}"));
        let text = std::str::from_utf8(bytes).map_err(|_| bad("not UTF-8".into()))?;
        let body_end = text
            .trim_end_matches('\n')
            .rfind('\n')
            .map(|i| i + 1)
            .ok_or_else(|| bad("too short".into()))?;
        let (body, last) = text.split_at(body_end);
        let own = last
            .strip_prefix("manifest ")
            .and_then(|h| unhex(h.trim_end_matches('\n')))
            .ok_or_else(|| bad("the last line is not the manifest's hash".into()))?;
        if !text.ends_with('\n') || last.matches('\n').count() != 1 {
            return Err(bad("text after the manifest's hash".into()));
        }
        if blake3::hash(body.as_bytes()).as_bytes() != &own {
            return Err(bad("its hash does not match its contents".into()));
        }
        let mut lines = body.lines().enumerate().peekable();
        let mut field = |key: &str| -> Result<Vec<&str>> {
            let (n, line) = lines
                .next()
                .ok_or_else(|| bad(format!("missing line `{key}`")))?;
            let mut parts = line.split(' ');
            if parts.next() != Some(key) {
                return Err(bad(format!("line {}: expected `{key}`", n + 1)));
            }
            Ok(parts.collect())
        };
        let num = |v: Option<&&str>, what: &str| -> Result<u64> {
            v.and_then(|s| s.parse::<u64>().ok())
                .ok_or_else(|| bad(format!("`{what}` is not a number")))
        };
        let one = |v: Vec<&str>, what: &str| -> Result<u64> {
            if v.len() != 1 {
                return Err(bad(format!("`{what}` takes one value")));
            }
            num(v.first(), what)
        };
        if field("lightning-backup")? != ["1"] {
            return Err(bad("not a version 1 backup manifest".into()));
        }
        let id = one(field("id")?, "id")?;
        let kind = match field("kind")?.as_slice() {
            ["full"] => Kind::Full,
            ["incremental"] => Kind::Incremental,
            _ => return Err(bad("unknown kind".into())),
        };
        let parent = match field("parent")?.as_slice() {
            ["-"] => None,
            [p] => Some(p.parse::<u64>().map_err(|_| bad("bad parent".into()))?),
            _ => return Err(bad("bad parent".into())),
        };
        let database_id = match field("database")?.as_slice() {
            [h] if h.len() == 16 => {
                u64::from_str_radix(h, 16).map_err(|_| bad("bad database id".into()))?
            }
            _ => return Err(bad("bad database id".into())),
        };
        let page_size = u32::try_from(one(field("page_size")?, "page_size")?)
            .map_err(|_| bad("bad page size".into()))?;
        let generation = one(field("generation")?, "generation")?;
        let base_generation = one(field("base_generation")?, "base_generation")?;
        let checkpoint_lsn = Lsn::new(one(field("checkpoint_lsn")?, "checkpoint_lsn")?);
        let image_lsn = Lsn::new(one(field("image_lsn")?, "image_lsn")?);
        let image_time_us = one(field("image_time_us")?, "image_time_us")?;
        let end_lsn = Lsn::new(one(field("end_lsn")?, "end_lsn")?);
        let end_time_us = one(field("end_time_us")?, "end_time_us")?;
        let created_us = one(field("created_us")?, "created_us")?;
        let page_count = one(field("page_count")?, "page_count")?;
        let superblock = one(field("superblock")?, "superblock")?;
        let (live, extents, pages, wal) = parse_lists(lines, file)?;
        let (pages_len, pages_hash) = pages.ok_or_else(|| bad("missing line `pages`".into()))?;
        let m = Manifest {
            id,
            kind,
            parent,
            database_id,
            page_size,
            generation,
            base_generation,
            checkpoint_lsn,
            image_lsn,
            image_time_us,
            end_lsn,
            end_time_us,
            created_us,
            page_count,
            superblock,
            live,
            extents,
            pages_len,
            pages_hash,
            wal,
        };
        m.check().map_err(bad)?;
        Ok(m)
    }

    /// The invariants a decoded manifest must meet, so that nothing built from it can
    /// index out of range.
    fn check(&self) -> std::result::Result<(), String> {
        if !(4096..=65536).contains(&self.page_size) || !self.page_size.is_power_of_two() {
            return Err(format!(
                "page size {} is not a power of two in 4 KiB..64 KiB",
                self.page_size
            ));
        }
        if self.superblock > 1 || self.page_count < 2 {
            return Err("bad superblock slot or page count".into());
        }
        // A restore sizes a file and a bitmap by these: bounded, so no manifest (whose
        // own hash anyone can compute) makes it overflow or allocate without limit.
        if self
            .page_count
            .checked_mul(u64::from(self.page_size))
            .is_none_or(|bytes| bytes > MAX_FILE_BYTES)
        {
            return Err(format!(
                "{} pages is past the largest database file",
                self.page_count
            ));
        }
        if (self.kind == Kind::Full) != self.parent.is_none() {
            return Err("a full backup has no parent; an incremental has one".into());
        }
        if self.parent.is_some_and(|p| p >= self.id) {
            return Err("the parent's id is not below the backup's".into());
        }
        if self.base_generation > self.generation
            || self.checkpoint_lsn > self.image_lsn
            || self.image_lsn > self.end_lsn
        {
            return Err("generations or LSNs out of order".into());
        }
        let mut next = 2u64;
        for &(first, count) in &self.live {
            if first < next
                || count == 0
                || first.checked_add(count).is_none_or(|e| e > self.page_count)
            {
                return Err(format!(
                    "live run {first}+{count} overlaps, is empty or leaves the file"
                ));
            }
            next = first + count;
        }
        let ps = u64::from(self.page_size);
        let mut offset = 0u64;
        for e in &self.extents {
            let end = e.first.checked_add(e.count);
            if e.count == 0
                || e.count > crate::write::EXTENT_PAGES
                || e.offset != offset
                || end.is_none_or(|end| end > self.page_count)
            {
                return Err(format!(
                    "extent at page {} is empty, misplaced or leaves the file",
                    e.first
                ));
            }
            offset = e
                .count
                .checked_mul(ps)
                .and_then(|b| b.checked_add(offset))
                .ok_or("extent sizes overflow")?;
        }
        if offset != self.pages_len {
            return Err(format!(
                "extents cover {offset} bytes of a {}-byte pages file",
                self.pages_len
            ));
        }
        let mut next = None;
        for w in &self.wal {
            let expected = format!("{:020}.wal", w.first.get());
            if w.name != expected || w.first > w.last || next.is_some_and(|n| n != w.first) {
                return Err(format!(
                    "WAL file {} is misnamed or out of sequence",
                    w.name
                ));
            }
            next = Some(w.last.next());
        }
        Ok(())
    }
}

type Lists = (
    Vec<(u64, u64)>,
    Vec<Extent>,
    Option<(u64, [u8; 32])>,
    Vec<WalFile>,
);

/// The `live`, `extent`, `pages` and `wal` lines, in that order.
fn parse_lists<'a>(lines: impl Iterator<Item = (usize, &'a str)>, file: &Path) -> Result<Lists> {
    let bad = |what: String| Error::corrupt(file, format!("manifest: {what}"));
    let num = |v: Option<&&str>, what: &str| -> Result<u64> {
        v.and_then(|s| s.parse::<u64>().ok())
            .ok_or_else(|| bad(format!("`{what}` is not a number")))
    };
    let mut live = Vec::new();
    let mut extents = Vec::new();
    let mut wal = Vec::new();
    let mut pages = None;
    for (n, line) in lines {
        let parts: Vec<&str> = line.split(' ').collect();
        let at = |what: &str| bad(format!("line {}: {what}", n + 1));
        match parts.as_slice() {
            ["live", a, b] if pages.is_none() && extents.is_empty() => {
                live.push((num(Some(a), "live")?, num(Some(b), "live")?));
            }
            ["extent", a, b, c, h] if pages.is_none() => extents.push(Extent {
                first: num(Some(a), "extent")?,
                count: num(Some(b), "extent")?,
                offset: num(Some(c), "extent")?,
                hash: unhex(h).ok_or_else(|| at("bad extent hash"))?,
            }),
            ["pages", len, h] if pages.is_none() => {
                pages = Some((
                    num(Some(len), "pages")?,
                    unhex(h).ok_or_else(|| at("bad pages hash"))?,
                ));
            }
            ["wal", name, len, a, b, h] if pages.is_some() => wal.push(WalFile {
                name: (*name).to_string(),
                len: num(Some(len), "wal")?,
                first: Lsn::new(num(Some(a), "wal")?),
                last: Lsn::new(num(Some(b), "wal")?),
                hash: unhex(h).ok_or_else(|| at("bad WAL hash"))?,
            }),
            _ => return Err(at("unexpected line")),
        }
    }
    Ok((live, extents, pages, wal))
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample() -> Manifest {
        Manifest {
            id: 3,
            kind: Kind::Incremental,
            parent: Some(2),
            database_id: 0xdead_beef_0123_4567,
            page_size: 8192,
            generation: 9,
            base_generation: 7,
            checkpoint_lsn: Lsn::new(100),
            image_lsn: Lsn::new(104),
            image_time_us: 5,
            end_lsn: Lsn::new(120),
            end_time_us: 6,
            created_us: 7,
            page_count: 40,
            superblock: 1,
            live: vec![(2, 10), (20, 5)],
            extents: vec![
                Extent {
                    first: 1,
                    count: 1,
                    offset: 0,
                    hash: [1; 32],
                },
                Extent {
                    first: 4,
                    count: 3,
                    offset: 8192,
                    hash: [2; 32],
                },
            ],
            pages_len: 4 * 8192,
            pages_hash: [3; 32],
            wal: vec![WalFile {
                name: format!("{:020}.wal", 100),
                len: 999,
                first: Lsn::new(100),
                last: Lsn::new(120),
                hash: [4; 32],
            }],
        }
    }

    #[test]
    fn a_manifest_round_trips() {
        let m = sample();
        let text = m.encode();
        assert_eq!(Manifest::decode(text.as_bytes(), "m".as_ref()).unwrap(), m);
    }

    #[test]
    fn every_flipped_bit_of_a_manifest_is_detected() {
        let text = sample().encode().into_bytes();
        let mut caught = 0;
        for i in 0..text.len() * 8 {
            let mut b = text.clone();
            b[i / 8] ^= 1 << (i % 8);
            let e = Manifest::decode(&b, "m".as_ref()).expect_err("a flipped bit passed");
            assert!(e.is_corruption());
            caught += 1;
        }
        assert_eq!(caught, text.len() * 8);
    }

    #[test]
    fn a_manifest_that_hashes_right_but_asks_too_much_is_refused() {
        let mut m = sample();
        m.page_count = 1 << 40; // 8 PiB at 8 KiB pages: no overflow, past the bound
        assert!(Manifest::decode(m.encode().as_bytes(), "m".as_ref()).is_err());
        let mut m = sample();
        m.extents[1].count = 300;
        m.pages_len = 301 * 8192;
        m.page_count = 400;
        assert!(Manifest::decode(m.encode().as_bytes(), "m".as_ref()).is_err());
    }

    #[test]
    fn a_truncated_manifest_is_refused() {
        let text = sample().encode().into_bytes();
        for n in 0..text.len() {
            assert!(
                Manifest::decode(&text[..n], "m".as_ref()).is_err(),
                "cut at {n}"
            );
        }
    }
}
