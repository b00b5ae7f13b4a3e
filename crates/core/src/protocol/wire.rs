//! Little-endian field access on byte slices, bounds-checked and offset-aware.
//!
//! [`Reader`] walks a message from its first byte and reports, on every failure, the absolute
//! offset at which the needed bytes were missing; [`Writer`] fills a caller-supplied buffer and
//! never writes past its end. Neither panics nor indexes directly.

/// Reads little-endian fields from a message, tracking the absolute byte offset.
pub(crate) struct Reader<'a> {
    rest: &'a [u8],
    offset: usize,
}

impl<'a> Reader<'a> {
    /// A reader over `bytes` whose first byte sits at absolute offset `offset`.
    #[inline]
    pub(crate) const fn new(bytes: &'a [u8], offset: usize) -> Self {
        Self {
            rest: bytes,
            offset,
        }
    }

    /// The absolute offset of the next byte to read.
    #[inline]
    pub(crate) const fn offset(&self) -> usize {
        self.offset
    }

    /// How many bytes are left.
    #[inline]
    pub(crate) const fn remaining(&self) -> usize {
        self.rest.len()
    }

    /// Takes the next `len` bytes, or `None` (leaving the reader unchanged) if fewer are left.
    #[inline]
    pub(crate) fn take(&mut self, len: usize) -> Option<&'a [u8]> {
        let (head, tail) = self.rest.split_at_checked(len)?;
        self.rest = tail;
        // Cannot overflow: `offset + len` never exceeds the length of the slice the caller
        // started from, itself at most `isize::MAX`.
        self.offset = self.offset.saturating_add(len);
        Some(head)
    }

    /// Takes everything that is left.
    #[inline]
    pub(crate) fn take_rest(&mut self) -> &'a [u8] {
        let rest = self.rest;
        self.rest = &[];
        self.offset = self.offset.saturating_add(rest.len());
        rest
    }

    /// Takes exactly `N` bytes as an array.
    #[inline]
    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        let bytes = self.take(N)?;
        bytes.try_into().ok()
    }

    /// Reads a little-endian `u16`.
    #[inline]
    pub(crate) fn u16(&mut self) -> Option<u16> {
        self.array().map(u16::from_le_bytes)
    }

    /// Reads a little-endian `u32`.
    #[inline]
    pub(crate) fn u32(&mut self) -> Option<u32> {
        self.array().map(u32::from_le_bytes)
    }

    /// Reads a little-endian `u64`.
    #[inline]
    pub(crate) fn u64(&mut self) -> Option<u64> {
        self.array().map(u64::from_le_bytes)
    }
}

/// Writes little-endian fields into a buffer the caller has already checked is large enough.
///
/// Writes past the end are refused (the writer records the failure) rather than panicking;
/// encoders check the exact size up front, so a refused write means an encoder bug and is
/// reported as [`Writer::finish`] returning `None`.
pub(crate) struct Writer<'a> {
    rest: &'a mut [u8],
    written: usize,
    overflowed: bool,
}

impl<'a> Writer<'a> {
    /// A writer at the start of `out`.
    #[inline]
    pub(crate) const fn new(out: &'a mut [u8]) -> Self {
        Self {
            rest: out,
            written: 0,
            overflowed: false,
        }
    }

    /// Copies `bytes` to the buffer. A refused write also drops what was left of the buffer,
    /// so every later (non-empty) write is refused too.
    #[inline]
    pub(crate) fn bytes(&mut self, bytes: &[u8]) {
        let rest = core::mem::take(&mut self.rest);
        if let Some((head, tail)) = rest.split_at_mut_checked(bytes.len()) {
            head.copy_from_slice(bytes);
            self.rest = tail;
            // Cannot overflow: the total never exceeds the length of the buffer written.
            self.written = self.written.wrapping_add(bytes.len());
        } else {
            self.overflowed = true;
        }
    }

    /// Writes a little-endian `u16`.
    #[inline]
    pub(crate) fn u16(&mut self, value: u16) {
        self.bytes(&value.to_le_bytes());
    }

    /// Writes a little-endian `u32`.
    #[inline]
    pub(crate) fn u32(&mut self, value: u32) {
        self.bytes(&value.to_le_bytes());
    }

    /// Writes a little-endian `u64`.
    #[inline]
    pub(crate) fn u64(&mut self, value: u64) {
        self.bytes(&value.to_le_bytes());
    }

    /// The number of bytes written, or `None` if any write did not fit.
    #[inline]
    pub(crate) const fn finish(self) -> Option<usize> {
        if self.overflowed {
            None
        } else {
            Some(self.written)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reader_reports_offsets_and_refuses_short_reads_without_moving() {
        let bytes = [1, 0, 2, 0, 0, 0, 9];
        let mut reader = Reader::new(&bytes, 16);
        assert_eq!(reader.u16(), Some(1));
        assert_eq!(reader.offset(), 18);
        assert_eq!(reader.u64(), None);
        assert_eq!((reader.offset(), reader.remaining()), (18, 5));
        assert_eq!(reader.u32(), Some(2));
        assert_eq!(reader.take_rest(), &[9]);
        assert_eq!((reader.offset(), reader.remaining()), (23, 0));
    }

    #[test]
    fn writer_refuses_to_write_past_the_end() {
        let mut out = [0xAA; 5];
        let mut writer = Writer::new(&mut out);
        writer.u32(0x0403_0201);
        writer.u16(0x0605);
        writer.bytes(&[7]);
        assert_eq!(writer.finish(), None);
        assert_eq!(out, [1, 2, 3, 4, 0xAA]);

        let mut out = [0; 3];
        let mut writer = Writer::new(&mut out);
        writer.u16(0x0201);
        writer.bytes(&[3]);
        assert_eq!(writer.finish(), Some(3));
        assert_eq!(out, [1, 2, 3]);
    }
}
