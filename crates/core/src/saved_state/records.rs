//! Record arrays: zero-copy views of a table's records and reading a record's members.

use core::slice::ChunksExact;

use super::error::{DecodeError, DecodeErrorKind};
use super::tag::Tag;

/// A validated record array: `count` records of `record_len` bytes, borrowed from the blob.
///
/// Records may be longer than this reader knows (a newer writer appended members): read the
/// prefix you know and ignore the rest. Records shorter than you need are the kind's decision:
/// defaults for members a newer minor added, or [`require_record_len`](Self::require_record_len).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Records<'a> {
    tag: Tag,
    count: u32,
    record_len: u16,
    bytes: &'a [u8],
    offset: usize,
}

impl<'a> Records<'a> {
    /// Checked by [`Field::records`](super::reader::Field::records): `bytes` is exactly
    /// `count × record_len` and `record_len > 0` unless `count == 0`.
    pub(crate) const fn new(
        tag: Tag,
        count: u32,
        record_len: u16,
        bytes: &'a [u8],
        offset: usize,
    ) -> Self {
        Self {
            tag,
            count,
            record_len,
            bytes,
            offset,
        }
    }

    /// Number of records.
    #[must_use]
    pub const fn count(&self) -> u32 {
        self.count
    }

    /// Whether there are no records.
    #[must_use]
    pub const fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Bytes per record, as written.
    #[must_use]
    pub const fn record_len(&self) -> u16 {
        self.record_len
    }

    /// Refuses records shorter than `needed` bytes, for a kind with no default for the members
    /// past the end.
    ///
    /// # Errors
    /// [`RecordTooShort`](DecodeErrorKind::RecordTooShort) if the records are shorter (and
    /// any are present).
    pub const fn require_record_len(&self, needed: u16) -> Result<(), DecodeError> {
        if self.record_len < needed && self.count != 0 {
            return Err(DecodeError::new(
                self.offset,
                DecodeErrorKind::RecordTooShort {
                    tag: self.tag.raw(),
                    record_len: self.record_len,
                    needed,
                },
            ));
        }
        Ok(())
    }

    /// The records in order.
    #[must_use]
    pub fn iter(&self) -> RecordIter<'a> {
        RecordIter {
            chunks: self.bytes.chunks_exact(usize::from(self.record_len).max(1)),
            tag: self.tag,
            offset: self.offset,
            record_len: usize::from(self.record_len),
        }
    }

    /// The record at `index`, if there is one.
    #[must_use]
    pub fn get(&self, index: u32) -> Option<Record<'a>> {
        // Checked against the count, not only the bytes: with zero-length records the bytes
        // cannot tell where the array ends.
        if index >= self.count {
            return None;
        }
        let index = usize::try_from(index).ok()?;
        let len = usize::from(self.record_len);
        let start = index.checked_mul(len)?;
        let bytes = self.bytes.get(start..start.checked_add(len)?)?;
        Some(Record {
            tag: self.tag,
            bytes,
            offset: self.offset.saturating_add(start),
        })
    }
}

impl<'a> IntoIterator for Records<'a> {
    type Item = Record<'a>;
    type IntoIter = RecordIter<'a>;

    fn into_iter(self) -> RecordIter<'a> {
        self.iter()
    }
}

/// Iterator over the records of a [`Records`] view.
#[derive(Clone, Debug)]
pub struct RecordIter<'a> {
    chunks: ChunksExact<'a, u8>,
    tag: Tag,
    /// Offset in the blob of the next record.
    offset: usize,
    record_len: usize,
}

impl<'a> Iterator for RecordIter<'a> {
    type Item = Record<'a>;

    fn next(&mut self) -> Option<Record<'a>> {
        let bytes = self.chunks.next()?;
        let offset = self.offset;
        self.offset = offset.saturating_add(self.record_len);
        Some(Record {
            tag: self.tag,
            bytes,
            offset,
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.chunks.size_hint()
    }
}

impl ExactSizeIterator for RecordIter<'_> {}

impl core::iter::FusedIterator for RecordIter<'_> {}

/// One record: its bytes (as written, including members this reader does not know) and a
/// sequential reader for its members.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record<'a> {
    tag: Tag,
    bytes: &'a [u8],
    offset: usize,
}

impl<'a> Record<'a> {
    /// The record's bytes.
    #[must_use]
    pub const fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// Offset of the record's first byte in the blob.
    #[must_use]
    pub const fn offset(&self) -> usize {
        self.offset
    }

    /// A reader over the record's members, from its first byte.
    #[must_use]
    pub const fn reader(&self) -> RecordReader<'a> {
        RecordReader {
            tag: self.tag,
            rest: self.bytes,
            offset: self.offset,
        }
    }

    /// An [`InvalidValue`](DecodeErrorKind::InvalidValue) error pointing at this record, for a
    /// kind that does not accept its contents.
    #[must_use]
    pub const fn invalid(&self) -> DecodeError {
        DecodeError::new(
            self.offset,
            DecodeErrorKind::InvalidValue {
                tag: self.tag.raw(),
            },
        )
    }
}

/// Reads a record's members in order, little-endian. Reading past the record's end is an error
/// ([`Truncated`](DecodeErrorKind::Truncated)); check [`remaining`](Self::remaining) first for
/// members that a shorter (older) record may lack.
#[derive(Clone, Debug)]
pub struct RecordReader<'a> {
    tag: Tag,
    rest: &'a [u8],
    offset: usize,
}

impl<'a> RecordReader<'a> {
    /// Bytes of the record not read yet.
    #[must_use]
    pub const fn remaining(&self) -> usize {
        self.rest.len()
    }

    /// Offset in the blob of the next member.
    #[must_use]
    pub const fn offset(&self) -> usize {
        self.offset
    }

    /// An [`InvalidValue`](DecodeErrorKind::InvalidValue) error at the next member, for a kind
    /// that does not accept the member just read.
    #[must_use]
    pub const fn invalid(&self) -> DecodeError {
        DecodeError::new(
            self.offset,
            DecodeErrorKind::InvalidValue {
                tag: self.tag.raw(),
            },
        )
    }

    /// The next `N` bytes, borrowed.
    ///
    /// # Errors
    /// [`Truncated`](DecodeErrorKind::Truncated) if fewer than `N` bytes remain.
    pub fn array<const N: usize>(&mut self) -> Result<&'a [u8; N], DecodeError> {
        let Some((member, rest)) = self.rest.split_first_chunk::<N>() else {
            return Err(DecodeError::truncated(self.offset, N, self.rest.len()));
        };
        self.rest = rest;
        self.offset = self.offset.saturating_add(N);
        Ok(member)
    }

    /// The next byte.
    ///
    /// # Errors
    /// [`Truncated`](DecodeErrorKind::Truncated) at the end of the record.
    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        self.array().map(|b| u8::from_le_bytes(*b))
    }

    /// The next little-endian `u16`.
    ///
    /// # Errors
    /// [`Truncated`](DecodeErrorKind::Truncated) if fewer than 2 bytes remain.
    pub fn u16(&mut self) -> Result<u16, DecodeError> {
        self.array().map(|b| u16::from_le_bytes(*b))
    }

    /// The next little-endian `u32`.
    ///
    /// # Errors
    /// [`Truncated`](DecodeErrorKind::Truncated) if fewer than 4 bytes remain.
    pub fn u32(&mut self) -> Result<u32, DecodeError> {
        self.array().map(|b| u32::from_le_bytes(*b))
    }

    /// The next little-endian `u64`.
    ///
    /// # Errors
    /// [`Truncated`](DecodeErrorKind::Truncated) if fewer than 8 bytes remain.
    pub fn u64(&mut self) -> Result<u64, DecodeError> {
        self.array().map(|b| u64::from_le_bytes(*b))
    }
}
