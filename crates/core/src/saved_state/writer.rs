//! Writing a payload: fields in ascending tag order into a buffer sized by `payload_len`.

use super::error::EncodeError;
use super::tag::Tag;

/// Writes fields into a payload buffer. Handed to
/// [`SavedState::encode_payload`](super::SavedState::encode_payload); its buffer is exactly the
/// `payload_len` the kind announced, so writing past it is reported, never done.
#[derive(Debug)]
pub struct FieldWriter<'a> {
    buf: &'a mut [u8],
    pos: usize,
    last_number: Option<u16>,
}

impl<'a> FieldWriter<'a> {
    /// A writer filling `buf` from its start.
    #[must_use]
    pub const fn new(buf: &'a mut [u8]) -> Self {
        Self {
            buf,
            pos: 0,
            last_number: None,
        }
    }

    /// Bytes written so far.
    #[must_use]
    pub const fn position(&self) -> usize {
        self.pos
    }

    /// Copies `bytes` at the current position.
    fn put(&mut self, bytes: &[u8]) -> Result<(), EncodeError> {
        let end = self.pos.saturating_add(bytes.len());
        let overrun = EncodeError::PayloadLengthMismatch {
            declared: self.buf.len(),
            written: end,
        };
        // `..bytes.len()` of the tail, not `pos..end`: the slot's length is then `bytes.len()`
        // by construction, so the optimiser drops `copy_from_slice`'s length-mismatch panic
        // (with `pos..end` it cannot rule out a saturated `end`; see docs/reliability.md).
        let slot = self
            .buf
            .get_mut(self.pos..)
            .and_then(|rest| rest.get_mut(..bytes.len()))
            .ok_or(overrun)?;
        slot.copy_from_slice(bytes);
        self.pos = end;
        Ok(())
    }

    /// Writes a field header after checking the tag order.
    fn header(&mut self, tag: Tag, value_len: usize) -> Result<(), EncodeError> {
        if let Some(previous) = self.last_number
            && tag.number() <= previous
        {
            return Err(EncodeError::FieldOutOfOrder {
                previous,
                found: tag.number(),
            });
        }
        let len = u32::try_from(value_len).map_err(|_| EncodeError::PayloadLengthMismatch {
            declared: self.buf.len(),
            written: usize::MAX,
        })?;
        self.put(&tag.raw().to_le_bytes())?;
        self.put(&len.to_le_bytes())?;
        self.last_number = Some(tag.number());
        Ok(())
    }

    /// Writes a field holding `value` as is (byte strings, fixed arrays, nested encodings).
    ///
    /// # Errors
    /// [`EncodeError::FieldOutOfOrder`] if `tag` does not follow the previous field's;
    /// [`EncodeError::PayloadLengthMismatch`] if the payload buffer is too short.
    pub fn bytes(&mut self, tag: Tag, value: &[u8]) -> Result<(), EncodeError> {
        self.header(tag, value.len())?;
        self.put(value)
    }

    /// Writes a one-byte field.
    ///
    /// # Errors
    /// As for [`bytes`](Self::bytes).
    pub fn u8(&mut self, tag: Tag, value: u8) -> Result<(), EncodeError> {
        self.bytes(tag, &[value])
    }

    /// Writes a boolean as a one-byte field, 0 or 1.
    ///
    /// # Errors
    /// As for [`bytes`](Self::bytes).
    pub fn bool(&mut self, tag: Tag, value: bool) -> Result<(), EncodeError> {
        self.u8(tag, u8::from(value))
    }

    /// Writes a two-byte little-endian field.
    ///
    /// # Errors
    /// As for [`bytes`](Self::bytes).
    pub fn u16(&mut self, tag: Tag, value: u16) -> Result<(), EncodeError> {
        self.bytes(tag, &value.to_le_bytes())
    }

    /// Writes a four-byte little-endian field.
    ///
    /// # Errors
    /// As for [`bytes`](Self::bytes).
    pub fn u32(&mut self, tag: Tag, value: u32) -> Result<(), EncodeError> {
        self.bytes(tag, &value.to_le_bytes())
    }

    /// Writes an eight-byte little-endian field.
    ///
    /// # Errors
    /// As for [`bytes`](Self::bytes).
    pub fn u64(&mut self, tag: Tag, value: u64) -> Result<(), EncodeError> {
        self.bytes(tag, &value.to_le_bytes())
    }

    /// Starts a record-array field of `count` records of `record_len` bytes each. Write each
    /// record through [`RecordArrayWriter::next_record`] and its member writers, then call [`RecordArrayWriter::finish`].
    ///
    /// # Errors
    /// As for [`bytes`](Self::bytes); also [`EncodeError::RecordMismatch`] if `record_len` is 0.
    pub fn records(
        &mut self,
        tag: Tag,
        count: u32,
        record_len: u16,
    ) -> Result<RecordArrayWriter<'_, 'a>, EncodeError> {
        if record_len == 0 {
            return Err(EncodeError::RecordMismatch { tag: tag.raw() });
        }
        let records_len = usize::try_from(u64::from(count).saturating_mul(u64::from(record_len)))
            .unwrap_or(usize::MAX);
        let value_len = records_len.saturating_add(super::tag::RECORDS_PREFIX_LEN);
        self.header(tag, value_len)?;
        self.put(&count.to_le_bytes())?;
        self.put(&record_len.to_le_bytes())?;
        Ok(RecordArrayWriter {
            writer: self,
            tag,
            remaining_records: count,
            record_len: usize::from(record_len),
            record_written: usize::from(record_len),
        })
    }
}

/// Writes the records of one record-array field, each exactly `record_len` bytes.
#[derive(Debug)]
pub struct RecordArrayWriter<'w, 'a> {
    writer: &'w mut FieldWriter<'a>,
    tag: Tag,
    remaining_records: u32,
    record_len: usize,
    /// Bytes written of the current record; equals `record_len` between records.
    record_written: usize,
}

impl<'w> RecordArrayWriter<'w, '_> {
    fn mismatch(&self) -> EncodeError {
        EncodeError::RecordMismatch {
            tag: self.tag.raw(),
        }
    }

    /// Starts the next record; the previous one must be complete. Then write the record's
    /// members in order with [`u8`](Self::u8) … [`bytes`](Self::bytes).
    ///
    /// # Errors
    /// [`EncodeError::RecordMismatch`] if the previous record is incomplete or all announced
    /// records are written.
    pub fn next_record(&mut self) -> Result<(), EncodeError> {
        if self.record_written != self.record_len {
            return Err(self.mismatch());
        }
        self.remaining_records = self
            .remaining_records
            .checked_sub(1)
            .ok_or(self.mismatch())?;
        self.record_written = 0;
        Ok(())
    }

    /// Ends the array.
    ///
    /// # Errors
    /// [`EncodeError::RecordMismatch`] unless exactly the announced records, each complete,
    /// were written.
    pub fn finish(self) -> Result<(), EncodeError> {
        if self.remaining_records != 0 || self.record_written != self.record_len {
            return Err(self.mismatch());
        }
        Ok(())
    }

    /// Every announced record at once, as `LEN`-byte slots, for a kind that fills fixed-size
    /// records in bulk instead of member by member. The array counts as complete: the kind
    /// must fill every slot entirely (the bytes are the output buffer's, not cleared).
    ///
    /// # Errors
    /// [`EncodeError::RecordMismatch`] if `LEN` is not the array's record length or a record
    /// was already started; [`EncodeError::PayloadLengthMismatch`] if the payload buffer is too
    /// short.
    pub fn all_records<const LEN: usize>(self) -> Result<&'w mut [[u8; LEN]], EncodeError> {
        let untouched = self.record_written == self.record_len;
        if LEN != self.record_len || !untouched {
            return Err(self.mismatch());
        }
        let count = usize::try_from(self.remaining_records).map_err(|_| self.mismatch())?;
        let writer = self.writer;
        let start = writer.pos;
        let end = count
            .checked_mul(LEN)
            .and_then(|len| start.checked_add(len))
            .unwrap_or(usize::MAX);
        let declared = writer.buf.len();
        let bytes = writer
            .buf
            .get_mut(start..end)
            .ok_or(EncodeError::PayloadLengthMismatch {
                declared,
                written: end,
            })?;
        writer.pos = end;
        let (records, _) = bytes.as_chunks_mut::<LEN>();
        Ok(records)
    }

    /// Appends raw bytes to the current record (fixed arrays, padding).
    ///
    /// # Errors
    /// [`EncodeError::RecordMismatch`] if the record would exceed its length (or no record was
    /// started).
    pub fn bytes(&mut self, value: &[u8]) -> Result<(), EncodeError> {
        let written = self.record_written.saturating_add(value.len());
        if written > self.record_len {
            return Err(self.mismatch());
        }
        self.writer.put(value)?;
        self.record_written = written;
        Ok(())
    }

    /// Appends a byte to the current record.
    ///
    /// # Errors
    /// As for [`bytes`](Self::bytes).
    pub fn u8(&mut self, value: u8) -> Result<(), EncodeError> {
        self.bytes(&[value])
    }

    /// Appends a little-endian `u16` to the current record.
    ///
    /// # Errors
    /// As for [`bytes`](Self::bytes).
    pub fn u16(&mut self, value: u16) -> Result<(), EncodeError> {
        self.bytes(&value.to_le_bytes())
    }

    /// Appends a little-endian `u32` to the current record.
    ///
    /// # Errors
    /// As for [`bytes`](Self::bytes).
    pub fn u32(&mut self, value: u32) -> Result<(), EncodeError> {
        self.bytes(&value.to_le_bytes())
    }

    /// Appends a little-endian `u64` to the current record.
    ///
    /// # Errors
    /// As for [`bytes`](Self::bytes).
    pub fn u64(&mut self, value: u64) -> Result<(), EncodeError> {
        self.bytes(&value.to_le_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::FieldWriter;
    use crate::saved_state::{EncodeError, Tag, field_len, records_field_len};

    #[test]
    fn fields_fill_an_exact_buffer() {
        let mut buf = [0u8; field_len(1) + field_len(8)];
        let mut w = FieldWriter::new(&mut buf);
        assert_eq!(w.u8(Tag::new(1), 0xAB), Ok(()));
        assert_eq!(w.u64(Tag::critical(2), 0x0102_0304_0506_0708), Ok(()));
        assert_eq!(w.position(), buf.len());
        assert_eq!(
            buf,
            [
                1, 0, 1, 0, 0, 0, 0xAB, //
                2, 0x80, 8, 0, 0, 0, 8, 7, 6, 5, 4, 3, 2, 1
            ]
        );
    }

    #[test]
    fn writing_past_the_announced_length_is_refused_without_writing() {
        let mut buf = [0u8; 8];
        let mut w = FieldWriter::new(&mut buf);
        assert_eq!(
            w.u32(Tag::new(1), 5),
            Err(EncodeError::PayloadLengthMismatch {
                declared: 8,
                written: 10
            })
        );
    }

    #[test]
    fn record_members_need_a_started_record_and_a_nonzero_length() {
        let mut buf = [0u8; records_field_len(1, 2)];
        let mut w = FieldWriter::new(&mut buf);
        assert_eq!(
            w.records(Tag::new(3), 1, 0).err(),
            Some(EncodeError::RecordMismatch { tag: 3 })
        );
        let mut table = w.records(Tag::new(3), 1, 2).expect("room for the array");
        assert_eq!(table.u8(1), Err(EncodeError::RecordMismatch { tag: 3 }));
        assert_eq!(table.next_record(), Ok(()));
        assert_eq!(table.u16(0x0201), Ok(()));
        assert_eq!(
            table.next_record(),
            Err(EncodeError::RecordMismatch { tag: 3 })
        );
        assert_eq!(table.finish(), Ok(()));
        assert_eq!(buf, [3, 0, 8, 0, 0, 0, 1, 0, 0, 0, 2, 0, 1, 2]);
    }

    #[test]
    fn all_records_hands_out_exactly_the_announced_slots() {
        let mut buf = [0u8; records_field_len(2, 3)];
        let mut w = FieldWriter::new(&mut buf);
        let wrong_len = w.records(Tag::new(4), 2, 3).unwrap().all_records::<4>();
        assert_eq!(
            wrong_len.err(),
            Some(EncodeError::RecordMismatch { tag: 4 })
        );

        let mut buf = [0u8; records_field_len(2, 3)];
        let mut w = FieldWriter::new(&mut buf);
        let mut started = w.records(Tag::new(4), 2, 3).unwrap();
        started.next_record().unwrap();
        assert_eq!(
            started.all_records::<3>().err(),
            Some(EncodeError::RecordMismatch { tag: 4 })
        );

        let mut buf = [0u8; records_field_len(2, 3)];
        let mut w = FieldWriter::new(&mut buf);
        let slots = w
            .records(Tag::new(4), 2, 3)
            .unwrap()
            .all_records::<3>()
            .unwrap();
        assert_eq!(slots.len(), 2);
        slots[0] = [1, 2, 3];
        slots[1] = [4, 5, 6];
        assert_eq!(w.position(), buf.len());
        assert_eq!(buf, [4, 0, 12, 0, 0, 0, 2, 0, 0, 0, 3, 0, 1, 2, 3, 4, 5, 6]);

        let mut short = [0u8; records_field_len(2, 3) - 1];
        let mut w = FieldWriter::new(&mut short);
        let overrun = w.records(Tag::new(4), 2, 3).unwrap().all_records::<3>();
        assert!(matches!(
            overrun,
            Err(EncodeError::PayloadLengthMismatch { .. })
        ));
    }
}
