//! Where segment bytes come from: a small positional-read trait and in-memory impls.

use std::borrow::Cow;
use std::io;
use std::sync::Arc;

/// A read-only source of a segment's bytes, read by position. The database implements it
/// over page extents; byte slices, vectors and `Arc`s of them implement it in memory.
///
/// A reader asks only for the bytes it needs: the trailer and footer when it opens, then
/// one column chunk at a time.
pub trait ByteSource {
    /// The total size in bytes.
    fn size(&self) -> io::Result<u64>;

    /// Exactly `len` bytes at `offset` (an error when they are not all there).
    fn read_at(&self, offset: u64, len: usize) -> io::Result<Cow<'_, [u8]>>;

    /// Whether the bytes at every position stay the same for as long as the source lives
    /// (memory it owns or borrows immutably). A reader then verifies each chunk's checksum
    /// on the chunk's first read only; for any other source (a file, pages that can be
    /// read again from disk) it verifies on every read. The default is `false`.
    fn immutable(&self) -> bool {
        false
    }
}

impl ByteSource for [u8] {
    fn size(&self) -> io::Result<u64> {
        Ok(self.len() as u64)
    }

    fn read_at(&self, offset: u64, len: usize) -> io::Result<Cow<'_, [u8]>> {
        usize::try_from(offset)
            .ok()
            .and_then(|start| self.get(start..start.checked_add(len)?))
            .map(Cow::Borrowed)
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "read past the end of the segment bytes",
                )
            })
    }

    fn immutable(&self) -> bool {
        true
    }
}

impl ByteSource for Vec<u8> {
    fn size(&self) -> io::Result<u64> {
        self.as_slice().size()
    }

    fn read_at(&self, offset: u64, len: usize) -> io::Result<Cow<'_, [u8]>> {
        self.as_slice().read_at(offset, len)
    }

    fn immutable(&self) -> bool {
        true
    }
}

impl<T: ByteSource + ?Sized> ByteSource for &T {
    fn size(&self) -> io::Result<u64> {
        (**self).size()
    }

    fn read_at(&self, offset: u64, len: usize) -> io::Result<Cow<'_, [u8]>> {
        (**self).read_at(offset, len)
    }

    fn immutable(&self) -> bool {
        (**self).immutable()
    }
}

impl<T: ByteSource + ?Sized> ByteSource for Arc<T> {
    fn size(&self) -> io::Result<u64> {
        (**self).size()
    }

    fn read_at(&self, offset: u64, len: usize) -> io::Result<Cow<'_, [u8]>> {
        (**self).read_at(offset, len)
    }

    fn immutable(&self) -> bool {
        (**self).immutable()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_read_exactly() {
        let bytes = vec![1u8, 2, 3, 4];
        assert_eq!(bytes.size().unwrap(), 4);
        assert_eq!(&*bytes.read_at(1, 2).unwrap(), &[2, 3]);
        assert!(bytes.read_at(3, 2).is_err());
        assert!(bytes.read_at(u64::MAX, 1).is_err());
        let shared: Arc<[u8]> = bytes.into();
        assert_eq!(&*shared.read_at(0, 4).unwrap(), &[1, 2, 3, 4]);
    }
}
