//! Record frames and segment headers: encoding and untrusting decoding.

pub use lightning_page::Lsn;

/// A record read back from the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Its position in the log.
    pub lsn: Lsn,
    /// The caller's record type byte.
    pub record_type: u8,
    /// Wall-clock time of the append, in microseconds since the Unix epoch.
    pub time_us: u64,
    /// The payload, exactly as appended.
    pub payload: Vec<u8>,
}

const CRC_OFF: usize = 0;
const LEN_OFF: usize = CRC_OFF + 4;
const LSN_OFF: usize = LEN_OFF + 4;
const SYNCED_OFF: usize = LSN_OFF + 8;
const TIME_OFF: usize = SYNCED_OFF + 8;
const TYPE_OFF: usize = TIME_OFF + 8;
const RESERVED_OFF: usize = TYPE_OFF + 1;
/// Bytes of a frame header.
pub(crate) const FRAME_HEADER: usize = RESERVED_OFF + 7;
/// Frames start at multiples of this, so a reader can resynchronize after damage.
pub(crate) const ALIGN: usize = 8;

const SEG_MAGIC: [u8; 8] = *b"LTNGWAL1";
const SEG_VERSION: u32 = 1;
const SEG_MAGIC_OFF: usize = 0;
const SEG_VERSION_OFF: usize = SEG_MAGIC_OFF + 8;
const SEG_RESERVED_OFF: usize = SEG_VERSION_OFF + 4;
const SEG_FIRST_OFF: usize = SEG_RESERVED_OFF + 4;
const SEG_RESERVED2_OFF: usize = SEG_FIRST_OFF + 8;
const SEG_CRC_OFF: usize = SEG_RESERVED2_OFF + 4;
/// Bytes of a segment header; the first frame starts here.
pub(crate) const SEGMENT_HEADER: usize = SEG_CRC_OFF + 4;

/// The little-endian `u32` at `o` of a header.
#[expect(
    clippy::allow_attributes,
    reason = "indexing_slicing is only enabled by the panic audit, so an `expect` would go unfulfilled in normal builds"
)]
#[allow(
    clippy::indexing_slicing,
    reason = "every caller in this file passes a whole header, a FRAME_HEADER (40) or SEGMENT_HEADER (32) byte array cut by `first_chunk`, and a constant field offset of that layout, at most 4 bytes before its end"
)]
fn u32_at(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]])
}

/// The little-endian `u64` at `o` of a header.
#[expect(
    clippy::allow_attributes,
    reason = "indexing_slicing is only enabled by the panic audit, so an `expect` would go unfulfilled in normal builds"
)]
#[allow(
    clippy::indexing_slicing,
    reason = "every caller in this file passes a whole header, a FRAME_HEADER (40) or SEGMENT_HEADER (32) byte array cut by `first_chunk`, and a constant field offset of that layout, at most 8 bytes before its end"
)]
fn u64_at(b: &[u8], o: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[o..o + 8]);
    u64::from_le_bytes(a)
}

/// Bytes a frame with `payload_len` bytes of payload occupies, padding included.
pub(crate) fn frame_len(payload_len: usize) -> usize {
    (FRAME_HEADER + payload_len).div_ceil(ALIGN) * ALIGN
}

/// The fields a frame carries besides its payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FrameMeta {
    pub(crate) lsn: Lsn,
    /// Every record up to this LSN was durable when this frame was written.
    pub(crate) synced_through: Lsn,
    pub(crate) time_us: u64,
    pub(crate) record_type: u8,
}

/// Appends one frame (header, payload, zero padding) to `out`.
///
/// # Layout
///
/// | offset | size | field                                                      |
/// |-------:|-----:|------------------------------------------------------------|
/// | 0      | 4    | crc32c of bytes `4..40 + len` (header after itself, payload) |
/// | 4      | 4    | payload length `len`                                       |
/// | 8      | 8    | LSN                                                        |
/// | 16     | 8    | synced-through LSN: all records up to it were durable when this frame was written |
/// | 24     | 8    | append time, microseconds since the Unix epoch             |
/// | 32     | 1    | record type                                                |
/// | 33     | 7    | reserved, zero                                             |
/// | 40     | len  | payload, then zero padding to a multiple of 8              |
#[expect(
    clippy::allow_attributes,
    reason = "indexing_slicing is only enabled by the panic audit, so an `expect` would go unfulfilled in normal builds"
)]
#[allow(
    clippy::indexing_slicing,
    reason = "`out` was just resized to `start + total`, and `total = frame_len(payload.len()) >= FRAME_HEADER + payload.len()`: `f` holds the header and the payload, and every offset is a constant below FRAME_HEADER"
)]
pub(crate) fn encode_frame(out: &mut Vec<u8>, meta: FrameMeta, payload: &[u8]) {
    let start = out.len();
    let total = frame_len(payload.len());
    out.resize(start + total, 0);
    let f = &mut out[start..start + total];
    // The caller bounds payloads by max_record_size, a u32.
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    f[LEN_OFF..LSN_OFF].copy_from_slice(&len.to_le_bytes());
    f[LSN_OFF..SYNCED_OFF].copy_from_slice(&meta.lsn.get().to_le_bytes());
    f[SYNCED_OFF..TIME_OFF].copy_from_slice(&meta.synced_through.get().to_le_bytes());
    f[TIME_OFF..TYPE_OFF].copy_from_slice(&meta.time_us.to_le_bytes());
    f[TYPE_OFF] = meta.record_type;
    f[FRAME_HEADER..FRAME_HEADER + payload.len()].copy_from_slice(payload);
    let crc = crc32c::crc32c(&f[LEN_OFF..FRAME_HEADER + payload.len()]);
    f[CRC_OFF..LEN_OFF].copy_from_slice(&crc.to_le_bytes());
}

/// The header of the frame of `payload` (its checksum covers the payload too), for a
/// caller that writes a large payload from where it is instead of copying it behind the
/// header as [`encode_frame`] does (which stays the path of small frames: one checksum
/// call over contiguous bytes). The payload then follows, and zero bytes up to
/// [`frame_len`]; the bytes are [`encode_frame`]'s (a test holds the two together).
pub(crate) fn frame_header(meta: FrameMeta, payload: &[u8]) -> [u8; FRAME_HEADER] {
    // The caller bounds payloads by max_record_size, a u32.
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    let fields = len
        .to_le_bytes()
        .into_iter()
        .chain(meta.lsn.get().to_le_bytes())
        .chain(meta.synced_through.get().to_le_bytes())
        .chain(meta.time_us.to_le_bytes())
        .chain([meta.record_type]);
    let mut header = [0u8; FRAME_HEADER];
    for (slot, byte) in header.iter_mut().skip(LEN_OFF).zip(fields) {
        *slot = byte;
    }
    let covered = header.get(LEN_OFF..).unwrap_or_default();
    let crc = crc32c::crc32c_append(crc32c::crc32c(covered), payload);
    for (slot, byte) in header.iter_mut().skip(CRC_OFF).zip(crc.to_le_bytes()) {
        *slot = byte;
    }
    header
}

/// What [`decode_frame`] found at an offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Decoded<'a> {
    /// A whole, checksummed frame; the next frame starts at `next`.
    Frame {
        meta: FrameMeta,
        payload: &'a [u8],
        next: usize,
    },
    /// Zeros (preallocated space) or the end of the bytes: nothing was written here.
    Empty,
    /// Something was written here but it is not a whole valid frame.
    Invalid(&'static str),
}

/// Decodes the frame at `offset` of `buf`. Never panics, whatever the bytes.
pub(crate) fn decode_frame(buf: &[u8], offset: usize, max_payload: u32) -> Decoded<'_> {
    let Some(rest) = buf.get(offset..) else {
        return Decoded::Empty;
    };
    if rest.is_empty() {
        return Decoded::Empty;
    }
    let Some(header) = rest.first_chunk::<FRAME_HEADER>() else {
        return if rest.iter().all(|&b| b == 0) {
            Decoded::Empty
        } else {
            Decoded::Invalid("frame header cut short")
        };
    };
    if header.iter().all(|&b| b == 0) {
        return Decoded::Empty;
    }
    let len = u32_at(header, LEN_OFF);
    if len > max_payload {
        return Decoded::Invalid("frame length beyond the maximum record size");
    }
    let len = len as usize;
    let Some(body) = rest.get(..FRAME_HEADER + len) else {
        return Decoded::Invalid("frame cut short");
    };
    // INVARIANT: `body` is `FRAME_HEADER + len >= LEN_OFF` bytes (`rest.get(..)` above).
    if u32_at(header, CRC_OFF) != crc32c::crc32c(&body[LEN_OFF..]) {
        return Decoded::Invalid("frame checksum mismatch");
    }
    if u64_at(header, LSN_OFF) == u64::MAX {
        return Decoded::Invalid("frame LSN out of range");
    }
    let meta = FrameMeta {
        lsn: Lsn::new(u64_at(header, LSN_OFF)),
        synced_through: Lsn::new(u64_at(header, SYNCED_OFF)),
        time_us: u64_at(header, TIME_OFF),
        record_type: header[TYPE_OFF],
    };
    Decoded::Frame {
        meta,
        // INVARIANT: `body` is `FRAME_HEADER + len` bytes (`rest.get(..)` above).
        payload: &body[FRAME_HEADER..],
        next: offset + frame_len(len),
    }
}

/// The LSN, synced-through LSN and payload length a frame header at `offset` claims,
/// unchecked (no checksum): a cheap filter before [`decode_frame`].
pub(crate) fn peek_header(buf: &[u8], offset: usize) -> Option<(Lsn, Lsn, u32)> {
    let h = buf.get(offset..)?.first_chunk::<FRAME_HEADER>()?;
    Some((
        Lsn::new(u64_at(h, LSN_OFF)),
        Lsn::new(u64_at(h, SYNCED_OFF)),
        u32_at(h, LEN_OFF),
    ))
}

/// Encodes a segment header.
///
/// | offset | size | field                         |
/// |-------:|-----:|-------------------------------|
/// | 0      | 8    | magic `LTNGWAL1`              |
/// | 8      | 4    | format version (1)            |
/// | 12     | 4    | reserved, zero                |
/// | 16     | 8    | LSN of the segment's first record (also its file name) |
/// | 24     | 4    | reserved, zero                |
/// | 28     | 4    | crc32c of bytes `0..28`       |
pub(crate) fn encode_segment_header(first: Lsn) -> [u8; SEGMENT_HEADER] {
    let mut h = [0u8; SEGMENT_HEADER];
    h[SEG_MAGIC_OFF..SEG_VERSION_OFF].copy_from_slice(&SEG_MAGIC);
    h[SEG_VERSION_OFF..SEG_RESERVED_OFF].copy_from_slice(&SEG_VERSION.to_le_bytes());
    h[SEG_FIRST_OFF..SEG_RESERVED2_OFF].copy_from_slice(&first.get().to_le_bytes());
    let crc = crc32c::crc32c(&h[..SEG_CRC_OFF]);
    h[SEG_CRC_OFF..].copy_from_slice(&crc.to_le_bytes());
    h
}

/// Checks a segment header against the first LSN its name promises.
pub(crate) fn check_segment_header(buf: &[u8], first: Lsn) -> Result<(), &'static str> {
    let Some(h) = buf.first_chunk::<SEGMENT_HEADER>() else {
        return Err("segment shorter than its header");
    };
    if h[SEG_MAGIC_OFF..SEG_VERSION_OFF] != SEG_MAGIC {
        return Err("bad segment magic");
    }
    if u32_at(h, SEG_CRC_OFF) != crc32c::crc32c(&h[..SEG_CRC_OFF]) {
        return Err("segment header checksum mismatch");
    }
    if u32_at(h, SEG_VERSION_OFF) != SEG_VERSION {
        return Err("unsupported segment format version");
    }
    if u64_at(h, SEG_FIRST_OFF) != first.get() {
        return Err("segment header names another first LSN than its file name");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn sizes() {
        assert_eq!((FRAME_HEADER, SEGMENT_HEADER), (40, 32));
        assert_eq!(frame_len(0), 40);
        assert_eq!(frame_len(1), 48);
        assert_eq!(frame_len(8), 48);
    }

    #[test]
    fn zeros_are_empty_and_junk_is_invalid() {
        assert_eq!(decode_frame(&[0u8; 100], 0, 1 << 20), Decoded::Empty);
        assert_eq!(decode_frame(&[0u8; 10], 0, 1 << 20), Decoded::Empty);
        assert_eq!(
            decode_frame(&[1u8; 10], 0, 1 << 20),
            Decoded::Invalid("frame header cut short")
        );
        assert_eq!(decode_frame(&[], 5, 1 << 20), Decoded::Empty);
    }

    #[test]
    fn segment_header_round_trips_and_checks_its_name() {
        let h = encode_segment_header(Lsn::new(42));
        assert_eq!(check_segment_header(&h, Lsn::new(42)), Ok(()));
        assert!(check_segment_header(&h, Lsn::new(43)).is_err());
        for bit in 0..SEGMENT_HEADER * 8 {
            let mut bad = h;
            bad[bit / 8] ^= 1 << (bit % 8);
            assert!(
                check_segment_header(&bad, Lsn::new(42)).is_err(),
                "bit {bit}"
            );
        }
    }

    proptest! {
        #[test]
        fn frames_round_trip(
            lsn in any::<u64>(), synced in any::<u64>(), time in any::<u64>(), t in any::<u8>(),
            payload in proptest::collection::vec(any::<u8>(), 0..3000), lead in 0usize..3,
        ) {
            let meta = FrameMeta { lsn: Lsn::new(lsn), synced_through: Lsn::new(synced), time_us: time, record_type: t };
            let mut buf = vec![0u8; lead * ALIGN];
            encode_frame(&mut buf, meta, &payload);
            prop_assert_eq!(buf.len() % ALIGN, 0);
            match decode_frame(&buf, lead * ALIGN, 1 << 20) {
                Decoded::Frame { meta: m, payload: p, next } => {
                    prop_assert_eq!(m, meta);
                    prop_assert_eq!(p, &payload[..]);
                    prop_assert_eq!(next, buf.len());
                }
                other => prop_assert!(false, "decoded {:?}", other),
            }
        }

        /// The header a large payload is written behind, then the payload and its padding,
        /// are the bytes `encode_frame` writes.
        #[test]
        fn a_frame_written_in_parts_is_the_encoded_frame(
            lsn in any::<u64>(), synced in any::<u64>(), time in any::<u64>(), t in any::<u8>(),
            payload in proptest::collection::vec(any::<u8>(), 0..3000),
        ) {
            let meta = FrameMeta { lsn: Lsn::new(lsn), synced_through: Lsn::new(synced), time_us: time, record_type: t };
            let mut whole = Vec::new();
            encode_frame(&mut whole, meta, &payload);
            let mut parts = frame_header(meta, &payload).to_vec();
            parts.extend_from_slice(&payload);
            parts.resize(frame_len(payload.len()), 0);
            prop_assert_eq!(parts, whole);
        }

        #[test]
        fn every_bit_flip_is_caught(payload in proptest::collection::vec(any::<u8>(), 0..200), bit in 0usize..(240 * 8)) {
            let meta = FrameMeta { lsn: Lsn::new(7), synced_through: Lsn::new(6), time_us: 1, record_type: 2 };
            let mut buf = Vec::new();
            encode_frame(&mut buf, meta, &payload);
            let used = FRAME_HEADER + payload.len();
            let bit = bit % (used * 8);
            buf[bit / 8] ^= 1 << (bit % 8);
            let decoded = decode_frame(&buf, 0, 1 << 20);
            prop_assert!(!matches!(decoded, Decoded::Frame { .. }), "flip of bit {} went unnoticed", bit);
        }

        #[test]
        fn random_bytes_never_panic(buf in proptest::collection::vec(any::<u8>(), 0..512), off in 0usize..600, max in any::<u32>()) {
            if let Decoded::Frame { next, .. } = decode_frame(&buf, off, max) {
                prop_assert!(next <= buf.len() + ALIGN);
            }
        }
    }
}
