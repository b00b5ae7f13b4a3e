//! The versioned, checksummed saved-state format: the generic codec every blob kind uses.
//!
//! Bytes written here cross hosts and ferry versions, and the destination treats them as
//! hostile. The format is specified in `docs/saved-state-format.md`; in short, a blob is
//!
//! - a 20-byte [envelope] — magic `FRRY`, format version (major, minor),
//!   [`BlobKind`], reserved flags, payload length, CRC-32C — then
//! - a payload of numbered fields (tag `u16`, length `u32`, value) in strictly ascending tag
//!   order; unknown fields are skipped unless their tag has the critical bit; tables are
//!   [record arrays](Records).
//!
//! | module | job |
//! |---|---|
//! | [`envelope`] | header layout, [`BlobKind`], [`Version`], [`open`] |
//! | [`checksum`] | CRC-32C, the one place it is computed |
//! | [`tag`] | [`Tag`] and encoded sizes for `payload_len` |
//! | [`writer`] | [`FieldWriter`]: fields and record arrays into a payload |
//! | [`reader`] | [`Fields`], [`FieldReader`], [`Field`]: framing, ordering, lookup, typed values |
//! | [`records`] | [`Records`]: zero-copy record-array views |
//! | [`error`] | [`DecodeError`] (with the byte offset), [`EncodeError`], `NTSTATUS` mapping |
//!
//! A kind implements [`SavedState`] to save, and decodes with [`open`] and
//! [`Payload::read`]:
//!
//! ```
//! use ferry_core::saved_state::{
//!     self, BlobKind, DecodeError, EncodeError, FieldWriter, SavedState, Tag, field_len,
//! };
//!
//! struct Session { id: u64, mtu: u16 }
//! const ID: Tag = Tag::new(1);
//! const MTU: Tag = Tag::new(2);
//!
//! impl SavedState for Session {
//!     const KIND: BlobKind = BlobKind::ChannelSession;
//!     fn payload_len(&self) -> usize { field_len(8) + field_len(2) }
//!     fn encode_payload(&self, w: &mut FieldWriter<'_>) -> Result<(), EncodeError> {
//!         w.u64(ID, self.id)?;
//!         w.u16(MTU, self.mtu)
//!     }
//! }
//!
//! fn restore(blob: &[u8]) -> Result<Session, DecodeError> {
//!     saved_state::open(blob, BlobKind::ChannelSession)?.read(|f| {
//!         let id = f.require(ID)?.u64()?;
//!         let mtu = f.optional(MTU)?.map_or(Ok(1500), |field| field.u16())?;
//!         Ok(Session { id, mtu })
//!     })
//! }
//!
//! let session = Session { id: 7, mtu: 9000 };
//! let mut buf = [0u8; 64];
//! let len = saved_state::encode(&session, &mut buf)?;
//! assert_eq!(len, saved_state::encoded_len(&session));
//! let back = restore(&buf[..len])?;
//! assert_eq!((back.id, back.mtu), (7, 9000));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Writing a kind
//!
//! - One `const` [`Tag`] per field, numbered from 1, used by both the writer and the reader; a
//!   released number is never reused. Fields added in a later minor are optional (with a
//!   default) or [critical](Tag::critical).
//! - [`SavedState::payload_len`] is exact: the sum of [`field_len`] / [`records_field_len`]
//!   over the fields written. [`encode`] refuses any difference, so a test that round-trips
//!   the kind proves it.
//! - Write every field you have, including record arrays with no records; never let a
//!   reader's default stand for "empty".
//! - Read through [`Payload::read`] (it refuses unknown critical fields after the last one you
//!   ask for), asking for tags in ascending order with [`FieldReader::require`] /
//!   [`FieldReader::optional`].
//! - Validate everything before touching live state. [`Records`] is a `Copy` view into the
//!   blob: walk it once to validate, then again to apply.
//! - Keep decoders' stack frames small (the lint limit is 2 KiB): decode a record array in
//!   its own function rather than inline in a long closure.
//! - Specify the payload in `docs/saved-state/<kind>.md` and keep golden blobs of every
//!   released version with tests that restore them.

pub mod checksum;
pub mod envelope;
pub mod error;
pub mod reader;
pub mod records;
pub mod tag;
pub mod writer;

pub use checksum::{Crc32c, crc32c, crc32c_arrays, crc32c_pair, crc32c_words, register_after};
pub use envelope::{
    BlobKind, FORMAT_VERSION, HEADER_LEN, MAGIC, MAX_PAYLOAD_LEN, Payload, Version, header_prefix,
    open, open_any,
};
pub use error::{DecodeError, DecodeErrorKind, EncodeError};
pub use reader::{Field, FieldReader, Fields};
pub use records::{Record, RecordIter, RecordReader, Records};
pub use tag::{
    FIELD_HEADER_LEN, RECORDS_PREFIX_LEN, Tag, field_header, field_len, records_field_len,
};
pub use writer::{FieldWriter, RecordArrayWriter};

/// State that saves itself as one blob of kind [`KIND`](Self::KIND).
pub trait SavedState {
    /// The kind written into the envelope.
    const KIND: BlobKind;

    /// The exact number of payload bytes [`encode_payload`](Self::encode_payload) writes
    /// (sum of [`field_len`] and [`records_field_len`] over the fields written).
    fn payload_len(&self) -> usize;

    /// Writes the payload's fields in ascending tag order.
    ///
    /// # Errors
    /// Whatever the [`FieldWriter`] reports; [`EncodeError::InvalidState`] if the kind refuses.
    fn encode_payload(&self, w: &mut FieldWriter<'_>) -> Result<(), EncodeError>;
}

/// The exact size of `state`'s blob: what [`encode`] writes. This is the `BytesNeeded` answer
/// to KMCL's first, zero-sized `EvtVmbChannelSavePacket` call.
#[must_use]
pub fn encoded_len<T: SavedState + ?Sized>(state: &T) -> usize {
    HEADER_LEN.saturating_add(state.payload_len())
}

/// Encodes `state` as a blob at the start of `out` and returns its length. Bytes of `out`
/// after the blob are not touched; on error, the contents of `out` are unspecified.
///
/// # Errors
/// [`EncodeError::BufferTooSmall`] (nothing written that matters) if `out` is shorter than
/// [`encoded_len`]; [`EncodeError::Oversized`] if the payload exceeds [`MAX_PAYLOAD_LEN`];
/// [`EncodeError::PayloadLengthMismatch`] if the kind wrote other than its `payload_len`;
/// any error of the kind's `encode_payload`.
pub fn encode<T: SavedState + ?Sized>(state: &T, out: &mut [u8]) -> Result<usize, EncodeError> {
    let payload_len = state.payload_len();
    if payload_len > MAX_PAYLOAD_LEN {
        return Err(EncodeError::Oversized {
            len: payload_len,
            max: MAX_PAYLOAD_LEN,
        });
    }
    let needed = encoded_len(state);
    let available = out.len();
    let blob = out
        .get_mut(..needed)
        .ok_or(EncodeError::BufferTooSmall { needed, available })?;
    let Some((header, payload)) = blob.split_first_chunk_mut::<HEADER_LEN>() else {
        return Err(EncodeError::BufferTooSmall { needed, available });
    };
    let mut writer = FieldWriter::new(payload);
    state.encode_payload(&mut writer)?;
    let written = writer.position();
    if written != payload_len {
        return Err(EncodeError::PayloadLengthMismatch {
            declared: payload_len,
            written,
        });
    }
    envelope::write_header(header, T::KIND, payload);
    Ok(needed)
}
