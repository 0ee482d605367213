//! Page ids, page sizes, page types, the page header and owned page buffers.
use std::fmt;
use std::path::Path;

use crate::{Error, Result};

const CRC_OFF: usize = 0;
const TYPE_OFF: usize = CRC_OFF + 4;
const RESERVED1_OFF: usize = TYPE_OFF + 1;
const ID_OFF: usize = RESERVED1_OFF + 3;
const GEN_OFF: usize = ID_OFF + 8;
const LEN_OFF: usize = GEN_OFF + 8;
const RESERVED2_OFF: usize = LEN_OFF + 4;

/// Length of the page header in bytes; the payload starts here.
pub const HEADER_LEN: usize = RESERVED2_OFF + 4;

/// The position of a page in the page file: page `n` starts at byte `n * page_size`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PageId(u64);

impl PageId {
    /// Creates a page id.
    pub const fn new(id: u64) -> Self {
        PageId(id)
    }

    /// The raw number.
    pub const fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for PageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A page size: a power of two from [`PageSize::MIN`] to [`PageSize::MAX`], fixed when the
/// page file is created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PageSize(u32);

impl PageSize {
    /// The smallest page size, 4 KiB.
    pub const MIN: PageSize = PageSize(4096);
    /// The largest page size, 64 KiB.
    pub const MAX: PageSize = PageSize(65536);
    /// The default page size, 8 KiB.
    pub const DEFAULT: PageSize = PageSize(8192);
    /// Every valid page size, smallest first.
    pub const ALL: [PageSize; 5] = [
        PageSize(4096),
        PageSize(8192),
        PageSize(16384),
        PageSize(32768),
        PageSize(65536),
    ];

    /// Validates a page size.
    ///
    /// ```
    /// use lightning_page::PageSize;
    /// assert_eq!(PageSize::new(16384)?.bytes(), 16384);
    /// assert!(PageSize::new(5000).is_err());
    /// # Ok::<(), lightning_page::Error>(())
    /// ```
    pub fn new(bytes: u64) -> Result<Self> {
        let valid = bytes.is_power_of_two()
            && bytes >= u64::from(Self::MIN.0)
            && bytes <= u64::from(Self::MAX.0);
        match u32::try_from(bytes) {
            Ok(b) if valid => Ok(PageSize(b)),
            _ => Err(Error::InvalidPageSize(bytes)),
        }
    }

    /// The size in bytes.
    pub const fn bytes(self) -> u32 {
        self.0
    }

    /// The size in bytes as a `usize`, for buffers.
    pub const fn len(self) -> usize {
        self.0 as usize
    }

    /// Always `false`: no page is empty. Present because `len` is.
    pub const fn is_empty(self) -> bool {
        false
    }

    /// The largest payload a page of this size holds.
    pub const fn max_payload(self) -> usize {
        self.len() - HEADER_LEN
    }

    /// Byte offset of page `id` in the file (saturating: an id past any possible file maps
    /// to `u64::MAX`, which every read and write then rejects).
    pub const fn offset_of(self, id: PageId) -> u64 {
        id.0.saturating_mul(self.0 as u64)
    }
}

impl Default for PageSize {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl fmt::Display for PageSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// What a page holds. Stored in byte 4 of every page; part of the on-disk format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PageType {
    /// One of the two superblocks (pages 0 and 1).
    Superblock,
    /// A page of the persisted free list.
    FreeList,
    /// A B+tree branch (interior) node.
    BTreeBranch,
    /// A B+tree leaf node.
    BTreeLeaf,
    /// A page of a value too large for a leaf.
    Overflow,
    /// A page of a columnar segment.
    ColumnSegment,
    /// A page of the catalog.
    Catalog,
}

impl PageType {
    /// The byte stored on disk.
    pub const fn to_u8(self) -> u8 {
        match self {
            PageType::Superblock => 1,
            PageType::FreeList => 2,
            PageType::BTreeBranch => 3,
            PageType::BTreeLeaf => 4,
            PageType::Overflow => 5,
            PageType::ColumnSegment => 6,
            PageType::Catalog => 7,
        }
    }

    /// Decodes the stored byte; `None` for a byte no page type uses.
    pub const fn from_u8(b: u8) -> Option<Self> {
        Some(match b {
            1 => PageType::Superblock,
            2 => PageType::FreeList,
            3 => PageType::BTreeBranch,
            4 => PageType::BTreeLeaf,
            5 => PageType::Overflow,
            6 => PageType::ColumnSegment,
            7 => PageType::Catalog,
            _ => return None,
        })
    }

    /// A short lowercase name for messages.
    pub const fn name(self) -> &'static str {
        match self {
            PageType::Superblock => "superblock",
            PageType::FreeList => "free-list",
            PageType::BTreeBranch => "btree-branch",
            PageType::BTreeLeaf => "btree-leaf",
            PageType::Overflow => "overflow",
            PageType::ColumnSegment => "column-segment",
            PageType::Catalog => "catalog",
        }
    }
}

impl fmt::Display for PageType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The decoded header of a page.
///
/// # Page layout
///
/// Every page starts with a [`HEADER_LEN`]-byte header; the payload follows. All integers
/// are little-endian.
///
/// | offset | size | field                                                        |
/// |-------:|-----:|--------------------------------------------------------------|
/// | 0      | 4    | crc32c of bytes `4..page_size` (the whole page after itself) |
/// | 4      | 1    | page type ([`PageType`])                                     |
/// | 5      | 3    | reserved, written as zero                                    |
/// | 8      | 8    | page id: the page's own position, catches misdirected writes |
/// | 16     | 8    | generation of the checkpoint interval that wrote the page    |
/// | 24     | 4    | payload length in bytes                                      |
/// | 28     | 4    | reserved, written as zero                                    |
/// | 32     | ...  | payload, then zero padding to the end of the page            |
///
/// The checksum covers the padding too, so a flipped bit anywhere in the page is caught.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageHeader {
    /// What the page holds.
    pub page_type: PageType,
    /// The page's own id.
    pub page_id: PageId,
    /// The generation that wrote the page.
    pub generation: u64,
    /// Payload length in bytes.
    pub payload_len: u32,
}

/// Why a page failed verification; [`PageBuf::verify`] turns it into [`Error::Corruption`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Mismatch {
    pub(crate) what: &'static str,
    pub(crate) expected: String,
    pub(crate) found: String,
}

impl Mismatch {
    #[expect(
        clippy::needless_pass_by_value,
        reason = "callers pass temporaries and format_args!"
    )]
    pub(crate) fn new(what: &'static str, expected: impl ToString, found: impl ToString) -> Self {
        Mismatch {
            what,
            expected: expected.to_string(),
            found: found.to_string(),
        }
    }

    pub(crate) fn into_error(self, file: &Path, page: PageId) -> Error {
        Error::Corruption {
            file: file.to_path_buf(),
            page,
            what: self.what,
            expected: self.expected,
            found: self.found,
        }
    }
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (expected {}, found {})",
            self.what, self.expected, self.found
        )
    }
}

fn le_u32(b: &[u8], off: usize) -> u32 {
    let mut a = [0u8; 4];
    if let Some(s) = b.get(off..off + 4) {
        a.copy_from_slice(s);
    }
    u32::from_le_bytes(a)
}

fn le_u64(b: &[u8], off: usize) -> u64 {
    let mut a = [0u8; 8];
    if let Some(s) = b.get(off..off + 8) {
        a.copy_from_slice(s);
    }
    u64::from_le_bytes(a)
}

/// crc32c over a whole page except its checksum field.
pub(crate) fn page_checksum(bytes: &[u8]) -> u32 {
    crc32c::crc32c(bytes.get(TYPE_OFF..).unwrap_or_default())
}

impl PageHeader {
    /// Writes the header (without checksum) into the first [`HEADER_LEN`] bytes of `page`.
    #[expect(
        clippy::allow_attributes,
        reason = "indexing_slicing is only enabled by the panic audit, so an `expect` would go unfulfilled in normal builds"
    )]
    #[allow(
        clippy::indexing_slicing,
        reason = "the one caller, `PageBuf::seal`, passes a `PageBuf`'s bytes, at least `PageSize::MIN` (4096) > HEADER_LEN long (see `PageBuf::bytes`); every offset is a constant below HEADER_LEN"
    )]
    fn encode_into(&self, page: &mut [u8]) {
        page[TYPE_OFF] = self.page_type.to_u8();
        page[RESERVED1_OFF..ID_OFF].fill(0);
        page[ID_OFF..GEN_OFF].copy_from_slice(&self.page_id.0.to_le_bytes());
        page[GEN_OFF..LEN_OFF].copy_from_slice(&self.generation.to_le_bytes());
        page[LEN_OFF..RESERVED2_OFF].copy_from_slice(&self.payload_len.to_le_bytes());
        page[RESERVED2_OFF..HEADER_LEN].fill(0);
    }

    /// Decodes and checks a whole page: checksum first, then type, id and length.
    pub(crate) fn decode_verified(
        page: &[u8],
        expected_id: PageId,
        expected_type: Option<PageType>,
    ) -> Result<Self, Mismatch> {
        if page.len() < PageSize::MIN.len() {
            return Err(Mismatch::new("short page", PageSize::MIN, page.len()));
        }
        let stored = le_u32(page, CRC_OFF);
        let computed = page_checksum(page);
        if stored != computed {
            if page.iter().all(|&b| b == 0) {
                return Err(Mismatch::new(
                    "page is all zeros (never written)",
                    "a written page",
                    "zeros",
                ));
            }
            return Err(Mismatch::new(
                "checksum mismatch",
                format_args!("{stored:#010x}"),
                format_args!("{computed:#010x}"),
            ));
        }
        // INVARIANT: `page.len() >= PageSize::MIN` (4096) was checked first, and
        // `TYPE_OFF < HEADER_LEN`.
        let type_byte = page[TYPE_OFF];
        let Some(page_type) = PageType::from_u8(type_byte) else {
            return Err(Mismatch::new(
                "unknown page type",
                "a known type",
                type_byte,
            ));
        };
        let page_id = PageId(le_u64(page, ID_OFF));
        if page_id != expected_id {
            return Err(Mismatch::new(
                "page id mismatch (misdirected write)",
                expected_id,
                page_id,
            ));
        }
        if let Some(t) = expected_type
            && t != page_type
        {
            return Err(Mismatch::new("page type mismatch", t, page_type));
        }
        let payload_len = le_u32(page, LEN_OFF);
        let max = page.len() - HEADER_LEN;
        if payload_len as usize > max {
            return Err(Mismatch::new(
                "payload length past the page end",
                format_args!("<= {max}"),
                payload_len,
            ));
        }
        Ok(PageHeader {
            page_type,
            page_id,
            generation: le_u64(page, GEN_OFF),
            payload_len,
        })
    }
}

/// An owned, page-sized buffer: a header plus payload.
///
/// Build one with [`PageBuf::new`], fill the payload, and hand it to
/// [`PageFile::write_page`](crate::PageFile::write_page), which stamps id, generation and
/// checksum. [`PageFile::read_page`](crate::PageFile::read_page) returns verified ones.
///
/// ```
/// use lightning_page::{PageBuf, PageSize, PageType};
/// let mut page = PageBuf::new(PageSize::MIN, PageType::Overflow);
/// page.set_payload(b"hello")?;
/// assert_eq!(page.payload(), b"hello");
/// # Ok::<(), lightning_page::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct PageBuf {
    /// Always at least `PageSize::MIN` (4096) bytes: `new` sizes it to a `PageSize`, and
    /// `from_disk` keeps only what `decode_verified` accepted, which rejects anything shorter.
    bytes: Box<[u8]>,
    page_type: PageType,
    /// At most `bytes.len() - HEADER_LEN`: checked by `set_payload_len` and `decode_verified`.
    payload_len: u32,
}

impl fmt::Debug for PageBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PageBuf")
            .field("size", &self.bytes.len())
            .field("page_type", &self.page_type)
            .field("payload_len", &self.payload_len)
            .finish_non_exhaustive()
    }
}

impl PageBuf {
    /// A zeroed page of `size` bytes holding an empty payload.
    pub fn new(size: PageSize, page_type: PageType) -> Self {
        PageBuf {
            bytes: vec![0; size.len()].into_boxed_slice(),
            page_type,
            payload_len: 0,
        }
    }

    /// Makes this buffer what [`new`](Self::new) returns for its own size and `page_type`: every
    /// byte zeroed, an empty payload. Reusing a buffer this way costs a fill of its bytes
    /// instead of an allocation (a buffer pool turning an evicted frame into a new page).
    pub fn reset(&mut self, page_type: PageType) {
        self.bytes.fill(0);
        self.page_type = page_type;
        self.payload_len = 0;
    }

    /// The page type.
    pub fn page_type(&self) -> PageType {
        self.page_type
    }

    /// The page size in bytes.
    pub fn size(&self) -> usize {
        self.bytes.len()
    }

    /// The payload: the first `payload_len` bytes after the header.
    pub fn payload(&self) -> &[u8] {
        // INVARIANT: `payload_len <= bytes.len() - HEADER_LEN` (see the field).
        &self.bytes[HEADER_LEN..HEADER_LEN + self.payload_len as usize]
    }

    /// The whole area after the header, to fill in place; then call
    /// [`set_payload_len`](Self::set_payload_len).
    pub fn body_mut(&mut self) -> &mut [u8] {
        // INVARIANT: `bytes` is at least 4096 > HEADER_LEN bytes long (see the field).
        &mut self.bytes[HEADER_LEN..]
    }

    /// Sets how many bytes of the body are payload.
    pub fn set_payload_len(&mut self, len: usize) -> Result<()> {
        let max = self.bytes.len() - HEADER_LEN;
        match u32::try_from(len) {
            Ok(l) if len <= max => {
                self.payload_len = l;
                Ok(())
            }
            _ => Err(Error::PayloadTooLarge { len, max }),
        }
    }

    /// Replaces the payload with `data` and zeroes the rest of the body.
    #[expect(
        clippy::allow_attributes,
        reason = "indexing_slicing is only enabled by the panic audit, so an `expect` would go unfulfilled in normal builds"
    )]
    #[allow(
        clippy::indexing_slicing,
        reason = "`set_payload_len` returned Ok, so `data.len() <= bytes.len() - HEADER_LEN` = `body.len()`, and `bytes` is longer than HEADER_LEN (see the field)"
    )]
    pub fn set_payload(&mut self, data: &[u8]) -> Result<()> {
        self.set_payload_len(data.len())?;
        let body = &mut self.bytes[HEADER_LEN..];
        body[..data.len()].copy_from_slice(data);
        body[data.len()..].fill(0);
        Ok(())
    }

    /// Stamps id, generation and checksum; the bytes are then ready to write.
    pub(crate) fn seal(&mut self, page_id: PageId, generation: u64) -> &[u8] {
        let header = PageHeader {
            page_type: self.page_type,
            page_id,
            generation,
            payload_len: self.payload_len,
        };
        header.encode_into(&mut self.bytes);
        let crc = page_checksum(&self.bytes);
        // INVARIANT: `bytes` is at least 4096 > TYPE_OFF bytes long (see the field).
        self.bytes[CRC_OFF..TYPE_OFF].copy_from_slice(&crc.to_le_bytes());
        &self.bytes
    }

    /// Checks raw page bytes read from `file` at page `id` and wraps them.
    pub(crate) fn from_disk(
        bytes: Box<[u8]>,
        file: &Path,
        id: PageId,
        expected_type: Option<PageType>,
    ) -> Result<(Self, PageHeader)> {
        let header = PageHeader::decode_verified(&bytes, id, expected_type)
            .map_err(|m| m.into_error(file, id))?;
        let page = PageBuf {
            bytes,
            page_type: header.page_type,
            payload_len: header.payload_len,
        };
        Ok((page, header))
    }

    /// The raw bytes as last sealed or read (header, payload, padding).
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Verifies sealed page bytes as [`PageFile::read_page`](crate::PageFile::read_page)
    /// does, for callers that obtained raw pages elsewhere (a backup, a dump). `file` only
    /// names the source in the error.
    pub fn verify(
        bytes: &[u8],
        file: &Path,
        id: PageId,
        expected_type: Option<PageType>,
    ) -> Result<PageHeader> {
        PageHeader::decode_verified(bytes, id, expected_type).map_err(|m| m.into_error(file, id))
    }

    /// Seals a copy of this page as `id` at `generation` and returns the bytes that would be
    /// written. For tests and tools that need an image without a file.
    pub fn sealed_bytes(&self, id: PageId, generation: u64) -> Vec<u8> {
        let mut copy = self.clone();
        copy.seal(id, generation).to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn any_type() -> impl Strategy<Value = PageType> {
        (1u8..=7).prop_map(|b| PageType::from_u8(b).unwrap())
    }

    /// A buffer reset after use (payload written, header sealed) is exactly a new one.
    #[test]
    fn a_reset_buffer_is_a_new_one() {
        for size in [PageSize::MIN, PageSize::new(16384).unwrap()] {
            let mut page = PageBuf::new(size, PageType::BTreeLeaf);
            page.set_payload(&[0xAB; 300]).unwrap();
            page.seal(PageId::new(9), 4);
            assert_ne!(page, PageBuf::new(size, PageType::BTreeBranch));
            page.reset(PageType::BTreeBranch);
            assert_eq!(page, PageBuf::new(size, PageType::BTreeBranch));
            assert!(page.as_bytes().iter().all(|b| *b == 0), "every byte zeroed");
        }
    }

    #[test]
    fn header_is_32_bytes() {
        assert_eq!(HEADER_LEN, 32);
    }

    #[test]
    fn page_type_bytes_round_trip_and_unknown_is_none() {
        for b in 0..=255u8 {
            match PageType::from_u8(b) {
                Some(t) => assert_eq!(t.to_u8(), b),
                None => assert!(b == 0 || b > 7),
            }
        }
    }

    #[test]
    fn page_sizes_are_validated() {
        for ok in [4096u64, 8192, 16384, 32768, 65536] {
            assert_eq!(u64::from(PageSize::new(ok).unwrap().bytes()), ok);
        }
        for bad in [0u64, 1, 2048, 4095, 4097, 12288, 131_072, u64::MAX] {
            assert!(matches!(PageSize::new(bad), Err(Error::InvalidPageSize(b)) if b == bad));
        }
    }

    #[test]
    fn zero_page_is_reported_as_never_written() {
        let zeros = vec![0u8; 4096];
        let m = PageHeader::decode_verified(&zeros, PageId(3), None).unwrap_err();
        assert_eq!(m.what, "page is all zeros (never written)");
    }

    #[test]
    fn misdirected_and_mistyped_pages_are_caught() {
        let page = PageBuf::new(PageSize::MIN, PageType::BTreeLeaf);
        let bytes = page.sealed_bytes(PageId(9), 4);
        let m = PageHeader::decode_verified(&bytes, PageId(10), None).unwrap_err();
        assert_eq!(
            (m.what, m.expected.as_str(), m.found.as_str()),
            ("page id mismatch (misdirected write)", "10", "9")
        );
        let m =
            PageHeader::decode_verified(&bytes, PageId(9), Some(PageType::Overflow)).unwrap_err();
        assert_eq!(
            (m.expected.as_str(), m.found.as_str()),
            ("overflow", "btree-leaf")
        );
    }

    #[test]
    fn every_single_bit_flip_of_a_4k_page_is_detected() {
        let mut page = PageBuf::new(PageSize::MIN, PageType::BTreeLeaf);
        let payload: Vec<u8> = (0..1000u32).map(|i| (i * 7 + 3).to_le_bytes()[0]).collect();
        page.set_payload(&payload).unwrap();
        let mut bytes = page.sealed_bytes(PageId(42), 7);
        assert!(PageHeader::decode_verified(&bytes, PageId(42), Some(PageType::BTreeLeaf)).is_ok());
        let mut detected = 0usize;
        for bit in 0..bytes.len() * 8 {
            bytes[bit / 8] ^= 1 << (bit % 8);
            if PageHeader::decode_verified(&bytes, PageId(42), Some(PageType::BTreeLeaf)).is_err() {
                detected += 1;
            }
            bytes[bit / 8] ^= 1 << (bit % 8);
        }
        assert_eq!(
            detected,
            4096 * 8,
            "every one of the 32768 single-bit flips must be detected"
        );
    }

    proptest! {
        #[test]
        fn header_round_trips(
            t in any_type(),
            id in any::<u64>(),
            generation in any::<u64>(),
            size_idx in 0usize..5,
            payload in proptest::collection::vec(any::<u8>(), 0..4064),
        ) {
            let size = PageSize::ALL[size_idx];
            let mut page = PageBuf::new(size, t);
            page.set_payload(&payload).unwrap();
            let bytes = page.sealed_bytes(PageId(id), generation);
            prop_assert_eq!(bytes.len(), size.len());
            let (back, header) =
                PageBuf::from_disk(bytes.into_boxed_slice(), Path::new("t"), PageId(id), Some(t)).unwrap();
            prop_assert_eq!(header, PageHeader { page_type: t, page_id: PageId(id), generation, payload_len: u32::try_from(payload.len()).unwrap() });
            prop_assert_eq!(back.payload(), &payload[..]);
        }

        #[test]
        fn random_bytes_never_panic_and_rarely_pass(bytes in proptest::collection::vec(any::<u8>(), 0..9000), id in any::<u64>()) {
            // A random buffer passes only if its crc happens to match: 1 in 2^32.
            prop_assert!(PageHeader::decode_verified(&bytes, PageId(id), None).is_err());
        }
    }
}
