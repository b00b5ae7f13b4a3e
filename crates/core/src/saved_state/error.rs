//! Typed errors of the codec, their messages, and the `NTSTATUS` each maps to.

use core::fmt;

use super::envelope::{BlobKind, Version};
use crate::status::NtStatus;

/// Why a blob did not decode, and the byte offset in the blob where decoding stopped.
///
/// The offset counts from the first byte of the envelope (the magic), so a tool can point at
/// the byte in a hex dump.
///
/// Sizes and offsets are stored as `u32` (a valid blob is far below 4 GiB; larger values
/// saturate) to keep the error, and every `Result` carrying it, small on kernel stacks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecodeError {
    offset: u32,
    kind: DecodeErrorKind,
}

/// What went wrong while decoding; see `docs/saved-state-format.md` ("Errors") for what a
/// reader does in each case. Tags found in a blob are reported as written, critical bit
/// included.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum DecodeErrorKind {
    /// The bytes end before a structure they must contain: `needed` bytes from the error
    /// offset, only `available` there.
    Truncated {
        /// Bytes the structure needs.
        needed: u32,
        /// Bytes that remain.
        available: u32,
    },
    /// The first four bytes are not the ferry saved-state magic.
    BadMagic {
        /// The bytes found.
        found: [u8; 4],
    },
    /// The format major version is not one this reader understands.
    UnsupportedMajor {
        /// The version in the blob.
        found: Version,
        /// The version this reader writes (it reads any minor of the same major).
        supported: Version,
    },
    /// The blob is a known kind, but not the one the caller restores.
    WrongKind {
        /// The kind the caller asked for.
        expected: BlobKind,
        /// The kind in the blob.
        found: BlobKind,
    },
    /// The blob kind value is not one this reader knows.
    UnknownKind {
        /// The raw kind value.
        found: u16,
    },
    /// The reserved flags word is not zero.
    NonzeroFlags {
        /// The flags found.
        found: u16,
    },
    /// The declared payload length differs from the bytes that follow the header.
    LengthMismatch {
        /// Payload length in the header.
        declared: u32,
        /// Bytes actually present after the header.
        actual: u32,
    },
    /// The declared payload length exceeds [`MAX_PAYLOAD_LEN`](super::MAX_PAYLOAD_LEN).
    Oversized {
        /// Payload length in the header.
        declared: u32,
        /// The limit.
        max: u32,
    },
    /// The stored CRC-32C does not match the bytes.
    ChecksumMismatch {
        /// The checksum in the header.
        stored: u32,
        /// The checksum of the bytes received.
        computed: u32,
    },
    /// A field's tag number is below the one before it.
    FieldOutOfOrder {
        /// The previous field's tag number.
        previous: u16,
        /// This field's tag number.
        found: u16,
    },
    /// A tag number appears twice.
    DuplicateField {
        /// The repeated tag.
        tag: u16,
    },
    /// A field's length is wrong for its type (integers have exact lengths; record arrays must
    /// be exactly `count × record length` after their prefix).
    BadFieldLength {
        /// The field's tag.
        tag: u16,
        /// The length found.
        length: u32,
    },
    /// A field this reader does not know carries the critical bit, so it must not be ignored.
    UnknownCriticalField {
        /// The field's tag.
        tag: u16,
    },
    /// A field the kind requires is absent.
    MissingField {
        /// The tag the kind asked for.
        tag: u16,
    },
    /// A field decoded, but its value is not acceptable to the kind.
    InvalidValue {
        /// The field's tag.
        tag: u16,
    },
    /// A record array holds more records than the kind's table can take.
    TooManyRecords {
        /// Records in the blob.
        count: u32,
        /// The kind's capacity.
        capacity: u32,
    },
    /// The records of a record array are shorter than the prefix this reader needs.
    RecordTooShort {
        /// The array's tag.
        tag: u16,
        /// Record length in the blob.
        record_len: u16,
        /// The length this reader needs.
        needed: u16,
    },
    /// A kind's decoder asked for tags out of ascending order (a bug in the decoder, not in the
    /// blob).
    RequestOutOfOrder {
        /// The tag number asked for before.
        previous: u16,
        /// The tag number asked for now.
        requested: u16,
    },
}

impl DecodeError {
    /// An error of `kind` at byte `offset` of the blob.
    #[must_use]
    pub const fn new(offset: usize, kind: DecodeErrorKind) -> Self {
        Self {
            offset: saturate(offset),
            kind,
        }
    }

    /// A [`Truncated`](DecodeErrorKind::Truncated) error at `offset`.
    #[must_use]
    pub const fn truncated(offset: usize, needed: usize, available: usize) -> Self {
        Self::new(
            offset,
            DecodeErrorKind::Truncated {
                needed: saturate(needed),
                available: saturate(available),
            },
        )
    }

    /// The byte offset, from the start of the blob, where decoding stopped.
    #[must_use]
    pub const fn offset(&self) -> usize {
        self.offset as usize
    }

    /// What went wrong.
    #[must_use]
    pub const fn kind(&self) -> DecodeErrorKind {
        self.kind
    }

    /// The `NTSTATUS` a restore callback returns for this error: `STATUS_CRC_ERROR` for a
    /// checksum mismatch, `STATUS_REVISION_MISMATCH` for a major version or a critical field this
    /// reader does not support, `STATUS_INSUFFICIENT_RESOURCES` when a table does not fit,
    /// `STATUS_UNSUCCESSFUL` for a decoder bug, `STATUS_DATA_ERROR` for everything else.
    #[must_use]
    pub const fn status(&self) -> NtStatus {
        match self.kind {
            DecodeErrorKind::ChecksumMismatch { .. } => NtStatus::CRC_ERROR,
            DecodeErrorKind::UnsupportedMajor { .. }
            | DecodeErrorKind::UnknownCriticalField { .. } => NtStatus::REVISION_MISMATCH,
            DecodeErrorKind::TooManyRecords { .. } => NtStatus::INSUFFICIENT_RESOURCES,
            DecodeErrorKind::RequestOutOfOrder { .. } => NtStatus::UNSUCCESSFUL,
            DecodeErrorKind::Truncated { .. }
            | DecodeErrorKind::BadMagic { .. }
            | DecodeErrorKind::WrongKind { .. }
            | DecodeErrorKind::UnknownKind { .. }
            | DecodeErrorKind::NonzeroFlags { .. }
            | DecodeErrorKind::LengthMismatch { .. }
            | DecodeErrorKind::Oversized { .. }
            | DecodeErrorKind::FieldOutOfOrder { .. }
            | DecodeErrorKind::DuplicateField { .. }
            | DecodeErrorKind::BadFieldLength { .. }
            | DecodeErrorKind::MissingField { .. }
            | DecodeErrorKind::InvalidValue { .. }
            | DecodeErrorKind::RecordTooShort { .. } => NtStatus::DATA_ERROR,
        }
    }
}

/// `value` as a `u32`, saturating: sizes in errors are reports, not arithmetic inputs.
#[must_use]
pub(crate) const fn saturate(value: usize) -> u32 {
    if value > u32::MAX as usize {
        u32::MAX
    } else {
        value as u32
    }
}

impl DecodeErrorKind {
    /// The variant's name, for `Debug` and logs.
    #[must_use]
    pub const fn name(&self) -> &'static str {
        match self {
            Self::Truncated { .. } => "Truncated",
            Self::BadMagic { .. } => "BadMagic",
            Self::UnsupportedMajor { .. } => "UnsupportedMajor",
            Self::WrongKind { .. } => "WrongKind",
            Self::UnknownKind { .. } => "UnknownKind",
            Self::NonzeroFlags { .. } => "NonzeroFlags",
            Self::LengthMismatch { .. } => "LengthMismatch",
            Self::Oversized { .. } => "Oversized",
            Self::ChecksumMismatch { .. } => "ChecksumMismatch",
            Self::FieldOutOfOrder { .. } => "FieldOutOfOrder",
            Self::DuplicateField { .. } => "DuplicateField",
            Self::BadFieldLength { .. } => "BadFieldLength",
            Self::UnknownCriticalField { .. } => "UnknownCriticalField",
            Self::MissingField { .. } => "MissingField",
            Self::InvalidValue { .. } => "InvalidValue",
            Self::TooManyRecords { .. } => "TooManyRecords",
            Self::RecordTooShort { .. } => "RecordTooShort",
            Self::RequestOutOfOrder { .. } => "RequestOutOfOrder",
        }
    }

    /// Messages of the envelope errors (split from the field errors only to keep each
    /// formatting function's stack frame small).
    fn fmt_envelope(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Truncated { needed, available } => {
                write!(f, "truncated: {needed} bytes needed, {available} available")
            }
            Self::BadMagic { found } => write!(f, "bad magic {found:02x?}"),
            Self::UnsupportedMajor { found, supported } => write!(
                f,
                "unsupported format version {found} (this reader supports {}.x, writes {supported})",
                supported.major
            ),
            Self::WrongKind { expected, found } => {
                write!(f, "wrong blob kind: expected {expected}, found {found}")
            }
            Self::UnknownKind { found } => write!(f, "unknown blob kind {found}"),
            Self::NonzeroFlags { found } => write!(f, "reserved flags {found:#06x} are not zero"),
            Self::LengthMismatch { declared, actual } => write!(
                f,
                "payload length mismatch: header declares {declared} bytes, {actual} present"
            ),
            Self::Oversized { declared, max } => {
                write!(
                    f,
                    "payload of {declared} bytes exceeds the {max}-byte limit"
                )
            }
            Self::ChecksumMismatch { stored, computed } => write!(
                f,
                "checksum mismatch: stored {stored:#010x}, computed {computed:#010x}"
            ),
            _ => self.fmt_field(f),
        }
    }

    /// Messages of the field errors.
    fn fmt_field(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::FieldOutOfOrder { previous, found } => {
                write!(
                    f,
                    "field {found} follows field {previous} (tags must ascend)"
                )
            }
            Self::DuplicateField { tag } => write!(f, "field {tag} appears twice"),
            Self::BadFieldLength { tag, length } => {
                write!(f, "field {tag} has invalid length {length}")
            }
            Self::UnknownCriticalField { tag } => {
                write!(f, "unknown critical field {tag:#06x}")
            }
            Self::MissingField { tag } => write!(f, "required field {tag} is missing"),
            Self::InvalidValue { tag } => write!(f, "field {tag} has an invalid value"),
            Self::TooManyRecords { count, capacity } => {
                write!(f, "{count} records exceed the capacity of {capacity}")
            }
            Self::RecordTooShort {
                tag,
                record_len,
                needed,
            } => write!(
                f,
                "records of field {tag} are {record_len} bytes, at least {needed} needed"
            ),
            Self::RequestOutOfOrder {
                previous,
                requested,
            } => write!(
                f,
                "decoder asked for field {requested} after field {previous} (decoder bug)"
            ),
            // Envelope errors are handled by `fmt_envelope`, which calls this for the rest.
            _ => f.write_str(self.name()),
        }
    }
}

impl fmt::Display for DecodeErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.fmt_envelope(f)
    }
}

impl fmt::Debug for DecodeErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}({self})", self.name())
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "saved state: {} at byte offset {}",
            self.kind, self.offset
        )
    }
}

impl core::error::Error for DecodeError {}

/// Why a value could not be encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EncodeError {
    /// The output buffer is smaller than the encoded blob. Not a failure of the state: call
    /// again with `needed` bytes (the answer to KMCL's first `EvtVmbChannelSavePacket` call).
    BufferTooSmall {
        /// Bytes the blob needs ([`encoded_len`](super::encoded_len)).
        needed: usize,
        /// Bytes the caller offered.
        available: usize,
    },
    /// The payload exceeds [`MAX_PAYLOAD_LEN`](super::MAX_PAYLOAD_LEN).
    Oversized {
        /// The payload length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The kind's `encode_payload` wrote a different number of bytes than its `payload_len`
    /// announced (a bug in the kind; `written` is where writing stopped or overran).
    PayloadLengthMismatch {
        /// What `payload_len` announced.
        declared: usize,
        /// What `encode_payload` wrote, or tried to reach.
        written: usize,
    },
    /// Fields were written out of ascending tag order (a bug in the kind).
    FieldOutOfOrder {
        /// The previous field's tag number.
        previous: u16,
        /// This field's tag number.
        found: u16,
    },
    /// A record array got a different number of records, or a record a different number of
    /// bytes, than announced (a bug in the kind).
    RecordMismatch {
        /// The array's tag.
        tag: u16,
    },
    /// The kind refuses to encode its current state (for example an inconsistency it detected).
    InvalidState,
}

impl EncodeError {
    /// The `NTSTATUS` a save callback returns: `STATUS_BUFFER_TOO_SMALL` for
    /// [`BufferTooSmall`](Self::BufferTooSmall) (with the needed size reported separately),
    /// `STATUS_UNSUCCESSFUL` otherwise.
    #[must_use]
    pub const fn status(&self) -> NtStatus {
        match self {
            Self::BufferTooSmall { .. } => NtStatus::BUFFER_TOO_SMALL,
            Self::Oversized { .. }
            | Self::PayloadLengthMismatch { .. }
            | Self::FieldOutOfOrder { .. }
            | Self::RecordMismatch { .. }
            | Self::InvalidState => NtStatus::UNSUCCESSFUL,
        }
    }
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::BufferTooSmall { needed, available } => write!(
                f,
                "saved state needs {needed} bytes, buffer has {available}"
            ),
            Self::Oversized { len, max } => {
                write!(
                    f,
                    "saved-state payload of {len} bytes exceeds the {max}-byte limit"
                )
            }
            Self::PayloadLengthMismatch { declared, written } => write!(
                f,
                "saved-state payload_len announced {declared} bytes, encoder wrote {written}"
            ),
            Self::FieldOutOfOrder { previous, found } => write!(
                f,
                "saved-state field {found} written after field {previous} (tags must ascend)"
            ),
            Self::RecordMismatch { tag } => write!(
                f,
                "saved-state record array {tag}: record count or length differs from announced"
            ),
            Self::InvalidState => f.write_str("saved state refused to encode an invalid state"),
        }
    }
}

impl core::error::Error for EncodeError {}

#[cfg(test)]
mod tests {
    use super::{DecodeError, DecodeErrorKind, saturate};

    #[test]
    fn decode_errors_stay_small_for_kernel_stacks() {
        // Every decoder returns Result<_, DecodeError> through many `?`s.
        assert!(core::mem::size_of::<DecodeError>() <= 16);
    }

    #[test]
    fn sizes_saturate_instead_of_wrapping() {
        assert_eq!(saturate(usize::MAX), u32::MAX);
        assert_eq!(saturate(7), 7);
        let error = DecodeError::truncated(usize::MAX, 4, usize::MAX);
        assert_eq!(error.offset(), u32::MAX as usize);
        assert_eq!(
            error.kind(),
            DecodeErrorKind::Truncated {
                needed: 4,
                available: u32::MAX
            }
        );
    }
}
