//! Reading a payload: walking its fields with the framing and ordering rules enforced, looking
//! them up by tag, and typed access to a field's value.

use super::error::{DecodeError, DecodeErrorKind};
use super::records::Records;
use super::tag::{FIELD_HEADER_LEN, RECORDS_PREFIX_LEN, Tag};

/// One field of a payload: its tag and a view of its value in the blob.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Field<'a> {
    tag: Tag,
    value: &'a [u8],
    /// Offset of the value's first byte in the blob.
    value_offset: usize,
}

impl<'a> Field<'a> {
    /// The tag as written (critical bit included).
    #[must_use]
    pub const fn tag(&self) -> Tag {
        self.tag
    }

    /// The value's bytes, borrowed from the blob.
    #[must_use]
    pub const fn bytes(&self) -> &'a [u8] {
        self.value
    }

    /// Offset of the field's first byte (its tag) in the blob.
    #[must_use]
    pub const fn offset(&self) -> usize {
        self.value_offset.saturating_sub(FIELD_HEADER_LEN)
    }

    /// Offset of the value's first byte in the blob.
    #[must_use]
    pub const fn value_offset(&self) -> usize {
        self.value_offset
    }

    /// An [`InvalidValue`](DecodeErrorKind::InvalidValue) error pointing at this field, for a
    /// kind that decoded the value and does not accept it.
    #[must_use]
    pub const fn invalid(&self) -> DecodeError {
        DecodeError::new(
            self.value_offset,
            DecodeErrorKind::InvalidValue {
                tag: self.tag.raw(),
            },
        )
    }

    fn bad_length(&self) -> DecodeError {
        DecodeError::new(
            self.offset(),
            DecodeErrorKind::BadFieldLength {
                tag: self.tag.raw(),
                // The value came from a u32 length, so this never saturates.
                length: u32::try_from(self.value.len()).unwrap_or(u32::MAX),
            },
        )
    }

    /// The value as a fixed-size array, borrowed; the field must be exactly `N` bytes.
    ///
    /// # Errors
    /// [`BadFieldLength`](DecodeErrorKind::BadFieldLength) for any other length.
    pub fn array<const N: usize>(&self) -> Result<&'a [u8; N], DecodeError> {
        <&[u8; N]>::try_from(self.value).map_err(|_| self.bad_length())
    }

    /// The value as a `u8` (exactly one byte).
    ///
    /// # Errors
    /// [`BadFieldLength`](DecodeErrorKind::BadFieldLength) for any other length.
    pub fn u8(&self) -> Result<u8, DecodeError> {
        self.array::<1>().map(|b| u8::from_le_bytes(*b))
    }

    /// The value as a boolean: one byte, 0 or 1.
    ///
    /// # Errors
    /// [`BadFieldLength`](DecodeErrorKind::BadFieldLength) for a length other than 1,
    /// [`InvalidValue`](DecodeErrorKind::InvalidValue) for a byte other than 0 or 1.
    pub fn bool(&self) -> Result<bool, DecodeError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(self.invalid()),
        }
    }

    /// The value as a little-endian `u16` (exactly two bytes).
    ///
    /// # Errors
    /// [`BadFieldLength`](DecodeErrorKind::BadFieldLength) for any other length.
    pub fn u16(&self) -> Result<u16, DecodeError> {
        self.array().map(|b| u16::from_le_bytes(*b))
    }

    /// The value as a little-endian `u32` (exactly four bytes).
    ///
    /// # Errors
    /// [`BadFieldLength`](DecodeErrorKind::BadFieldLength) for any other length.
    pub fn u32(&self) -> Result<u32, DecodeError> {
        self.array().map(|b| u32::from_le_bytes(*b))
    }

    /// The value as a little-endian `u64` (exactly eight bytes).
    ///
    /// # Errors
    /// [`BadFieldLength`](DecodeErrorKind::BadFieldLength) for any other length.
    pub fn u64(&self) -> Result<u64, DecodeError> {
        self.array().map(|b| u64::from_le_bytes(*b))
    }

    /// The value as a record array of at most `capacity` records, as a view over the blob.
    ///
    /// # Errors
    /// [`BadFieldLength`](DecodeErrorKind::BadFieldLength) if the value is shorter than the
    /// 6-byte prefix, the record length is 0 while records are present, or the value is not
    /// exactly `count × record length` after the prefix;
    /// [`TooManyRecords`](DecodeErrorKind::TooManyRecords) if `count > capacity` (checked
    /// first, so a hostile count costs nothing).
    pub fn records(&self, capacity: u32) -> Result<Records<'a>, DecodeError> {
        let Some((prefix, records)) = self.value.split_first_chunk::<RECORDS_PREFIX_LEN>() else {
            return Err(self.bad_length());
        };
        let [c0, c1, c2, c3, l0, l1] = *prefix;
        let count = u32::from_le_bytes([c0, c1, c2, c3]);
        let record_len = u16::from_le_bytes([l0, l1]);
        if count > capacity {
            return Err(DecodeError::new(
                self.value_offset,
                DecodeErrorKind::TooManyRecords { count, capacity },
            ));
        }
        let expected = u64::from(count).checked_mul(u64::from(record_len));
        let exact = expected.is_some_and(|len| Ok(len) == u64::try_from(records.len()));
        if !exact || (record_len == 0 && count != 0) {
            return Err(self.bad_length());
        }
        Ok(Records::new(
            self.tag,
            count,
            record_len,
            records,
            self.value_offset.saturating_add(RECORDS_PREFIX_LEN),
        ))
    }
}

/// Every field of a payload in order, as an iterator. Checks framing (each field's header and
/// value lie inside the payload) and strictly ascending tag numbers; it does not judge whether
/// a field is known. After the first error it yields nothing more.
#[derive(Clone, Debug)]
pub struct Fields<'a> {
    rest: &'a [u8],
    /// Offset of `rest` in the blob.
    offset: usize,
    last_number: Option<u16>,
}

impl<'a> Fields<'a> {
    /// Fields of `payload`, whose first byte is at `offset` in the blob.
    #[must_use]
    pub const fn new(payload: &'a [u8], offset: usize) -> Self {
        Self {
            rest: payload,
            offset,
            last_number: None,
        }
    }

    /// Offset in the blob of the next field (or of the payload's end).
    #[must_use]
    pub const fn offset(&self) -> usize {
        self.offset
    }

    /// The next field without consuming it.
    ///
    /// # Errors
    /// As for [`next_field`](Self::next_field).
    pub fn peek(&self) -> Result<Option<Field<'a>>, DecodeError> {
        self.clone().next_field()
    }

    /// The next field, or `None` at the end of the payload.
    ///
    /// # Errors
    /// [`Truncated`](DecodeErrorKind::Truncated) if a field header or value runs past the end;
    /// [`FieldOutOfOrder`](DecodeErrorKind::FieldOutOfOrder) or
    /// [`DuplicateField`](DecodeErrorKind::DuplicateField) if the tag number does not ascend.
    pub fn next_field(&mut self) -> Result<Option<Field<'a>>, DecodeError> {
        if self.rest.is_empty() {
            return Ok(None);
        }
        let result = self.parse();
        if result.is_err() {
            // Fuse: an iterator that keeps failing at the same spot helps nobody.
            self.rest = &[];
        }
        result.map(Some)
    }

    fn parse(&mut self) -> Result<Field<'a>, DecodeError> {
        let Some((header, after)) = self.rest.split_first_chunk::<FIELD_HEADER_LEN>() else {
            return Err(DecodeError::truncated(
                self.offset,
                FIELD_HEADER_LEN,
                self.rest.len(),
            ));
        };
        let [t0, t1, l0, l1, l2, l3] = *header;
        let tag = Tag::from_raw(u16::from_le_bytes([t0, t1]));
        let length = u32::from_le_bytes([l0, l1, l2, l3]);
        let value_offset = self.offset.saturating_add(FIELD_HEADER_LEN);

        if let Some(previous) = self.last_number {
            let kind = if tag.number() == previous {
                Some(DecodeErrorKind::DuplicateField { tag: tag.raw() })
            } else if tag.number() < previous {
                Some(DecodeErrorKind::FieldOutOfOrder {
                    previous,
                    found: tag.number(),
                })
            } else {
                None
            };
            if let Some(kind) = kind {
                return Err(DecodeError::new(self.offset, kind));
            }
        }

        let value_len = usize::try_from(length).unwrap_or(usize::MAX);
        let Some((value, rest)) = after.split_at_checked(value_len) else {
            return Err(DecodeError::truncated(value_offset, value_len, after.len()));
        };
        self.rest = rest;
        self.offset = value_offset.saturating_add(value_len);
        self.last_number = Some(tag.number());
        Ok(Field {
            tag,
            value,
            value_offset,
        })
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = Result<Field<'a>, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_field().transpose()
    }
}

impl core::iter::FusedIterator for Fields<'_> {}

/// Looks fields up by tag for a kind's decoder. Tags must be asked for in ascending order (the
/// order they are written in); fields skipped on the way are unknown to this reader, so they
/// are refused if critical. [`finish`](Self::finish) applies the same rule to the fields after
/// the last one asked for.
#[derive(Clone, Debug)]
#[must_use = "call finish() so unknown critical fields after the last one read are refused"]
pub struct FieldReader<'a> {
    fields: Fields<'a>,
    last_requested: Option<u16>,
}

impl<'a> FieldReader<'a> {
    /// A reader over `fields`.
    pub const fn new(fields: Fields<'a>) -> Self {
        Self {
            fields,
            last_requested: None,
        }
    }

    /// The field with `tag`'s number, or `None` if the blob does not have it (the kind then
    /// uses its default). The critical bit of `tag` is ignored here.
    ///
    /// # Errors
    /// [`UnknownCriticalField`](DecodeErrorKind::UnknownCriticalField) if a critical field is
    /// skipped on the way; [`RequestOutOfOrder`](DecodeErrorKind::RequestOutOfOrder) if `tag`
    /// does not follow the previously requested tag; the framing errors of
    /// [`Fields::next_field`].
    pub fn optional(&mut self, tag: Tag) -> Result<Option<Field<'a>>, DecodeError> {
        let number = tag.number();
        if let Some(previous) = self.last_requested
            && number <= previous
        {
            return Err(DecodeError::new(
                self.fields.offset(),
                DecodeErrorKind::RequestOutOfOrder {
                    previous,
                    requested: number,
                },
            ));
        }
        self.last_requested = Some(number);
        loop {
            let before = self.fields.clone();
            let Some(field) = self.fields.next_field()? else {
                return Ok(None);
            };
            let found = field.tag().number();
            if found == number {
                return Ok(Some(field));
            }
            if found > number {
                // Absent: leave the later field for a later request.
                self.fields = before;
                return Ok(None);
            }
            refuse_if_critical(&field)?;
        }
    }

    /// The field with `tag`'s number, which the blob must have.
    ///
    /// # Errors
    /// [`MissingField`](DecodeErrorKind::MissingField) if it is absent; otherwise as for
    /// [`optional`](Self::optional).
    pub fn require(&mut self, tag: Tag) -> Result<Field<'a>, DecodeError> {
        match self.optional(tag)? {
            Some(field) => Ok(field),
            None => Err(DecodeError::new(
                self.fields.offset(),
                DecodeErrorKind::MissingField { tag: tag.number() },
            )),
        }
    }

    /// Checks the fields after the last one asked for: well framed, in order, none critical.
    ///
    /// # Errors
    /// [`UnknownCriticalField`](DecodeErrorKind::UnknownCriticalField) or a framing error of
    /// [`Fields::next_field`].
    pub fn finish(mut self) -> Result<(), DecodeError> {
        while let Some(field) = self.fields.next_field()? {
            refuse_if_critical(&field)?;
        }
        Ok(())
    }
}

fn refuse_if_critical(field: &Field<'_>) -> Result<(), DecodeError> {
    if field.tag().is_critical() {
        return Err(DecodeError::new(
            field.offset(),
            DecodeErrorKind::UnknownCriticalField {
                tag: field.tag().raw(),
            },
        ));
    }
    Ok(())
}
