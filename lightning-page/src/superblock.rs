//! The two superblocks in pages 0 and 1.

use crate::Lsn;
use crate::page::{Mismatch, PageBuf, PageId, PageSize, PageType};

/// The on-disk format version this build reads and writes.
pub const FORMAT_VERSION: u32 = 1;

const MAGIC: [u8; 8] = *b"LIGHTNDB";
const MAGIC_OFF: usize = 0;
const VERSION_OFF: usize = MAGIC_OFF + 8;
const PAGE_SIZE_OFF: usize = VERSION_OFF + 4;
const GENERATION_OFF: usize = PAGE_SIZE_OFF + 4;
const LSN_OFF: usize = GENERATION_OFF + 8;
const PAGE_COUNT_OFF: usize = LSN_OFF + 8;
const CATALOG_OFF: usize = PAGE_COUNT_OFF + 8;
const FREELIST_OFF: usize = CATALOG_OFF + 8;
const ENC_ALG_OFF: usize = FREELIST_OFF + 8;
const RESERVED_OFF: usize = ENC_ALG_OFF + 4;
const SALT_OFF: usize = RESERVED_OFF + 4;
const KEY_CHECK_OFF: usize = SALT_OFF + 32;
const CRC_OFF: usize = KEY_CHECK_OFF + 32;
/// Length of the superblock payload in bytes.
pub(crate) const SUPERBLOCK_LEN: usize = CRC_OFF + 4;

const NONE: u64 = u64::MAX;

/// Encryption-at-rest parameters stored in the superblock. All zero when the database is
/// not encrypted; the key itself is never stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EncryptionParams {
    /// Algorithm id; 0 means not encrypted.
    pub algorithm: u32,
    /// Salt for the key-derivation function.
    pub salt: [u8; 32],
    /// A value derived from the key, to tell a wrong key from corruption.
    pub key_check: [u8; 32],
}

/// The root record of a page file: which checkpoint it describes and where its trees start.
///
/// A superblock is the payload of a [`PageType::Superblock`] page. Checkpoint generation `G`
/// writes slot `G % 2`, so the previous durable superblock is never overwritten; opening
/// picks the valid one with the higher generation.
///
/// # Layout (offsets within the payload, after the 32-byte page header)
///
/// | offset | size | field                                                         |
/// |-------:|-----:|---------------------------------------------------------------|
/// | 0      | 8    | magic `LIGHTNDB`                                              |
/// | 8      | 4    | format version ([`FORMAT_VERSION`])                           |
/// | 12     | 4    | page size in bytes                                            |
/// | 16     | 8    | generation of the checkpoint                                  |
/// | 24     | 8    | checkpoint LSN: the WAL is replayed from records after it     |
/// | 32     | 8    | page count: pages in use by this checkpoint's image           |
/// | 40     | 8    | catalog root page id, `u64::MAX` for none                     |
/// | 48     | 8    | free-list root page id, `u64::MAX` for none                   |
/// | 56     | 4    | encryption algorithm (0 = none)                               |
/// | 60     | 4    | reserved, zero                                                |
/// | 64     | 32   | key-derivation salt                                           |
/// | 96     | 32   | key check value                                               |
/// | 128    | 4    | crc32c of payload bytes `0..128`                              |
///
/// The superblock has its own checksum besides the page checksum, so the page size can be
/// read from the first 4 KiB of the file before the full page is verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Superblock {
    /// Page size of the file.
    pub page_size: PageSize,
    /// Generation of the checkpoint this superblock records.
    pub generation: u64,
    /// WAL position the checkpoint covers: recovery replays records after it.
    pub checkpoint_lsn: Lsn,
    /// Pages `0..page_count` belong to this checkpoint's image; later pages are free.
    pub page_count: u64,
    /// Root page of the catalog, if any.
    pub catalog_root: Option<PageId>,
    /// First page of the persisted free list, if any.
    pub freelist_root: Option<PageId>,
    /// Encryption parameters.
    pub encryption: EncryptionParams,
}

impl Superblock {
    /// The superblock of a freshly created file: generation 0, nothing but the two
    /// superblock pages.
    pub fn initial(page_size: PageSize) -> Self {
        Superblock {
            page_size,
            generation: 0,
            checkpoint_lsn: Lsn::ZERO,
            page_count: 2,
            catalog_root: None,
            freelist_root: None,
            encryption: EncryptionParams::default(),
        }
    }

    /// The page (0 or 1) this superblock is written to: generation `G` goes to `G % 2`.
    pub fn slot(&self) -> PageId {
        PageId::new(self.generation % 2)
    }

    /// Encodes the superblock into a superblock page.
    pub(crate) fn to_page(self) -> crate::Result<PageBuf> {
        let mut b = [0u8; SUPERBLOCK_LEN];
        b[MAGIC_OFF..VERSION_OFF].copy_from_slice(&MAGIC);
        b[VERSION_OFF..PAGE_SIZE_OFF].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        b[PAGE_SIZE_OFF..GENERATION_OFF].copy_from_slice(&self.page_size.bytes().to_le_bytes());
        b[GENERATION_OFF..LSN_OFF].copy_from_slice(&self.generation.to_le_bytes());
        b[LSN_OFF..PAGE_COUNT_OFF].copy_from_slice(&self.checkpoint_lsn.get().to_le_bytes());
        b[PAGE_COUNT_OFF..CATALOG_OFF].copy_from_slice(&self.page_count.to_le_bytes());
        let root = |r: Option<PageId>| r.map_or(NONE, PageId::get).to_le_bytes();
        b[CATALOG_OFF..FREELIST_OFF].copy_from_slice(&root(self.catalog_root));
        b[FREELIST_OFF..ENC_ALG_OFF].copy_from_slice(&root(self.freelist_root));
        b[ENC_ALG_OFF..RESERVED_OFF].copy_from_slice(&self.encryption.algorithm.to_le_bytes());
        b[SALT_OFF..KEY_CHECK_OFF].copy_from_slice(&self.encryption.salt);
        b[KEY_CHECK_OFF..CRC_OFF].copy_from_slice(&self.encryption.key_check);
        let crc = crc32c::crc32c(&b[..CRC_OFF]);
        b[CRC_OFF..].copy_from_slice(&crc.to_le_bytes());
        let mut page = PageBuf::new(self.page_size, PageType::Superblock);
        page.set_payload(&b)?;
        Ok(page)
    }

    /// Decodes a superblock payload: magic and own checksum, then the fields.
    ///
    /// Returns the format version separately so the caller can refuse unknown versions
    /// with a dedicated error (a newer engine wrote the file) instead of calling it damage.
    #[expect(
        clippy::allow_attributes,
        reason = "indexing_slicing is only enabled by the panic audit, so an `expect` would go unfulfilled in normal builds"
    )]
    #[allow(
        clippy::indexing_slicing,
        reason = "`b = payload.get(..SUPERBLOCK_LEN)` succeeded, so `b` is SUPERBLOCK_LEN bytes; every read is at a constant offset of the layout, at most `CRC_OFF + 4 = SUPERBLOCK_LEN`"
    )]
    pub(crate) fn decode(payload: &[u8]) -> Result<(Self, u32), Mismatch> {
        let Some(b) = payload.get(..SUPERBLOCK_LEN) else {
            return Err(Mismatch::new(
                "superblock too short",
                SUPERBLOCK_LEN,
                payload.len(),
            ));
        };
        if b[MAGIC_OFF..VERSION_OFF] != MAGIC {
            return Err(Mismatch::new(
                "bad superblock magic",
                "LIGHTNDB",
                "other bytes",
            ));
        }
        let u32_at = |o: usize| u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]);
        let u64_at = |o: usize| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&b[o..o + 8]);
            u64::from_le_bytes(a)
        };
        let stored = u32_at(CRC_OFF);
        let computed = crc32c::crc32c(&b[..CRC_OFF]);
        if stored != computed {
            return Err(Mismatch::new(
                "superblock checksum mismatch",
                format_args!("{stored:#010x}"),
                format_args!("{computed:#010x}"),
            ));
        }
        let version = u32_at(VERSION_OFF);
        let raw_size = u32_at(PAGE_SIZE_OFF);
        let page_size = PageSize::new(u64::from(raw_size)).map_err(|_| {
            Mismatch::new("invalid page size in superblock", "4096..=65536", raw_size)
        })?;
        let root = |o: usize| match u64_at(o) {
            NONE => None,
            id => Some(PageId::new(id)),
        };
        let mut salt = [0u8; 32];
        salt.copy_from_slice(&b[SALT_OFF..KEY_CHECK_OFF]);
        let mut key_check = [0u8; 32];
        key_check.copy_from_slice(&b[KEY_CHECK_OFF..CRC_OFF]);
        let sb = Superblock {
            page_size,
            generation: u64_at(GENERATION_OFF),
            checkpoint_lsn: Lsn::new(u64_at(LSN_OFF)),
            page_count: u64_at(PAGE_COUNT_OFF),
            catalog_root: root(CATALOG_OFF),
            freelist_root: root(FREELIST_OFF),
            encryption: EncryptionParams {
                algorithm: u32_at(ENC_ALG_OFF),
                salt,
                key_check,
            },
        };
        if sb.generation == u64::MAX {
            return Err(Mismatch::new(
                "superblock generation exhausted",
                "< u64::MAX",
                sb.generation,
            ));
        }
        if sb.page_count < 2 {
            return Err(Mismatch::new(
                "superblock page count below 2",
                ">= 2",
                sb.page_count,
            ));
        }
        for r in [sb.catalog_root, sb.freelist_root].into_iter().flatten() {
            if r.get() < 2 || r.get() >= sb.page_count {
                return Err(Mismatch::new(
                    "superblock root outside the file",
                    format_args!("2..{}", sb.page_count),
                    r,
                ));
            }
        }
        Ok((sb, version))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn any_sb() -> impl Strategy<Value = Superblock> {
        (
            0usize..5,
            any::<u64>(),
            any::<u64>(),
            2u64..u64::MAX / 2,
            any::<Option<u64>>(),
            any::<Option<u64>>(),
            any::<u32>(),
            any::<[u8; 32]>(),
            any::<[u8; 32]>(),
        )
            .prop_map(
                |(ps, generation, lsn, count, cat, fl, alg, salt, key_check)| {
                    let in_range =
                        |r: Option<u64>| r.map(|r| PageId::new(2 + r % (count - 2).max(1)));
                    Superblock {
                        page_size: PageSize::ALL[ps],
                        generation,
                        checkpoint_lsn: Lsn::new(lsn),
                        page_count: count.max(3),
                        catalog_root: in_range(cat),
                        freelist_root: in_range(fl),
                        encryption: EncryptionParams {
                            algorithm: alg,
                            salt,
                            key_check,
                        },
                    }
                },
            )
    }

    #[test]
    fn layout_is_132_bytes() {
        assert_eq!(SUPERBLOCK_LEN, 132);
    }

    /// A root must name a page of the file other than the two superblocks: the first and
    /// last such pages are accepted, the superblocks and anything at or past the end are not,
    /// whichever of the two roots it is.
    #[test]
    fn roots_must_lie_inside_the_file_and_past_the_superblocks() {
        let base = Superblock {
            page_size: PageSize::MIN,
            generation: 3,
            checkpoint_lsn: Lsn::new(9),
            page_count: 10,
            catalog_root: None,
            freelist_root: None,
            encryption: EncryptionParams::default(),
        };
        for (root, ok) in [
            (0, false),
            (1, false),
            (2, true),
            (9, true),
            (10, false),
            (11, false),
        ] {
            for catalog in [true, false] {
                let mut sb = base;
                let r = Some(PageId::new(root));
                if catalog {
                    sb.catalog_root = r;
                } else {
                    sb.freelist_root = r;
                }
                let page = sb.to_page().unwrap();
                match Superblock::decode(page.payload()) {
                    Ok((back, _)) => assert!(ok && back == sb, "root {root} accepted"),
                    Err(e) => {
                        assert!(!ok, "root {root} refused: {}", e.what);
                        assert_eq!(e.what, "superblock root outside the file");
                    }
                }
            }
        }
    }

    proptest! {
        #[test]
        fn superblock_round_trips(sb in any_sb()) {
            let page = sb.to_page().unwrap();
            let (back, version) = Superblock::decode(page.payload()).unwrap();
            prop_assert_eq!(back, sb);
            prop_assert_eq!(version, FORMAT_VERSION);
        }

        #[test]
        fn any_flipped_bit_in_the_payload_is_rejected(sb in any_sb(), bit in 0usize..SUPERBLOCK_LEN * 8) {
            let page = sb.to_page().unwrap();
            let mut payload = page.payload().to_vec();
            payload[bit / 8] ^= 1 << (bit % 8);
            prop_assert!(Superblock::decode(&payload).is_err());
        }

        #[test]
        fn random_payloads_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            prop_assert!(Superblock::decode(&bytes).is_err());
        }
    }
}
