//! Field tags and the sizes of encoded fields, for kinds computing their exact `payload_len`.

use core::fmt;

/// Bytes in front of every field's value: tag `u16`, length `u32`.
pub const FIELD_HEADER_LEN: usize = 6;
/// Bytes in front of a record array's records, inside its field value: count `u32`, record
/// length `u16`.
pub const RECORDS_PREFIX_LEN: usize = 6;

/// The critical bit of a tag: a reader that does not know the field must refuse the blob.
const CRITICAL_BIT: u16 = 0x8000;

/// A field's tag: a 15-bit field number, unique and ascending within a payload, plus the
/// critical bit (bit 15).
///
/// A kind defines one `const` per field and uses it both to write and to read. A reader looks
/// fields up by number: the critical bit changes only what a reader that does *not* know the
/// number does with the field (refuse instead of skip).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Tag(u16);

impl Tag {
    /// A field that an older reader may skip. `number` is taken modulo 2^15 (bit 15 is the
    /// critical bit); kinds number their fields from 1.
    #[must_use]
    pub const fn new(number: u16) -> Self {
        Self(number & !CRITICAL_BIT)
    }

    /// A field that a reader which does not know it must refuse.
    #[must_use]
    pub const fn critical(number: u16) -> Self {
        Self(number | CRITICAL_BIT)
    }

    /// The tag exactly as written on the wire (bit 15 = critical).
    #[must_use]
    pub const fn from_raw(raw: u16) -> Self {
        Self(raw)
    }

    /// The tag as written on the wire.
    #[must_use]
    pub const fn raw(self) -> u16 {
        self.0
    }

    /// The field number (bits 0–14), the key of ordering and lookup.
    #[must_use]
    pub const fn number(self) -> u16 {
        self.0 & !CRITICAL_BIT
    }

    /// Whether the critical bit is set.
    #[must_use]
    pub const fn is_critical(self) -> bool {
        self.0 & CRITICAL_BIT != 0
    }
}

impl fmt::Debug for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_critical() {
            write!(f, "Tag({}, critical)", self.number())
        } else {
            write!(f, "Tag({})", self.number())
        }
    }
}

/// Encoded size of a field whose value is `value_len` bytes (saturating, so an absurd size
/// fails the encoder's limit check instead of wrapping).
#[must_use]
pub const fn field_len(value_len: usize) -> usize {
    FIELD_HEADER_LEN.saturating_add(value_len)
}

/// The 6 bytes in front of a field's value (tag, then value length, little-endian): for kinds
/// with a fixed layout, which hold their field headers as constants.
#[must_use]
pub const fn field_header(tag: Tag, value_len: u32) -> [u8; FIELD_HEADER_LEN] {
    let [t0, t1] = tag.raw().to_le_bytes();
    let [l0, l1, l2, l3] = value_len.to_le_bytes();
    [t0, t1, l0, l1, l2, l3]
}

/// Encoded size of a record-array field of `count` records of `record_len` bytes each
/// (saturating).
#[must_use]
pub const fn records_field_len(count: usize, record_len: u16) -> usize {
    field_len(RECORDS_PREFIX_LEN.saturating_add(count.saturating_mul(record_len as usize)))
}

#[cfg(test)]
mod tests {
    use super::Tag;

    #[test]
    fn critical_bit_is_separate_from_the_number() {
        assert_eq!(Tag::critical(5).raw(), 0x8005);
        assert_eq!(Tag::critical(5).number(), 5);
        assert!(Tag::critical(5).is_critical());
        assert!(!Tag::new(5).is_critical());
        assert_eq!(Tag::new(0x8005), Tag::new(5));
        assert_eq!(Tag::from_raw(0x8007), Tag::critical(7));
    }
}
