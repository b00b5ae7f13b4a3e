//! The envelope: the fixed 20-byte header in front of every blob, and opening a blob.
//!
//! ```text
//! offset size field
//!      0    4 magic          b"FRRY"
//!      4    2 major          u16 LE, 1
//!      6    2 minor          u16 LE, 0
//!      8    2 kind           u16 LE, a BlobKind
//!     10    2 flags          u16 LE, reserved, 0
//!     12    4 payload length u32 LE, ≤ MAX_PAYLOAD_LEN
//!     16    4 checksum       u32 LE, CRC-32C of bytes 0..16 then the payload
//!     20    … payload        numbered fields
//! ```

use core::fmt;

use super::checksum::crc32c_pair;
use super::error::{DecodeError, DecodeErrorKind, saturate};
use super::reader::{FieldReader, Fields};

/// The four bytes every blob starts with.
pub const MAGIC: [u8; 4] = *b"FRRY";
/// Length of the envelope header in front of the payload.
pub const HEADER_LEN: usize = 20;
/// Largest payload accepted, on encode and on decode (1 MiB). The largest kind, a port's
/// runtime state, needs well under 100 KiB.
pub const MAX_PAYLOAD_LEN: usize = 1 << 20;
/// The format version this code writes. It reads every minor version of the same major.
pub const FORMAT_VERSION: Version = Version { major: 1, minor: 0 };

/// Offsets of the header fields (see the module documentation).
const MAGIC_AT: usize = 0;
const MAJOR_AT: usize = 4;
const MINOR_AT: usize = 6;
const KIND_AT: usize = 8;
const FLAGS_AT: usize = 10;
const LENGTH_AT: usize = 12;
const CHECKSUM_AT: usize = 16;

/// A saved-state format version: a major change is incompatible, a minor change only adds what
/// an older reader may skip.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Version {
    /// Incompatible revisions; a reader refuses any major but its own.
    pub major: u16,
    /// Compatible revisions; a reader accepts any minor of its major.
    pub minor: u16,
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// Which state a blob carries; each kind's payload is specified in
/// `docs/saved-state/<kind>.md`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u16)]
pub enum BlobKind {
    /// One outgoing VMBus transaction's context (`docs/saved-state/outgoing-transaction.md`).
    OutgoingTransaction = 1,
    /// One switch port's runtime state (`docs/saved-state/port-runtime-state.md`).
    PortRuntimeState = 2,
    /// A channel's session (`docs/saved-state/channel-session.md`).
    ChannelSession = 3,
}

impl BlobKind {
    /// The kind with wire value `value`, if it is one.
    #[must_use]
    pub const fn from_u16(value: u16) -> Option<Self> {
        match value {
            1 => Some(Self::OutgoingTransaction),
            2 => Some(Self::PortRuntimeState),
            3 => Some(Self::ChannelSession),
            _ => None,
        }
    }

    /// The wire value.
    #[must_use]
    pub const fn to_u16(self) -> u16 {
        self as u16
    }
}

impl fmt::Display for BlobKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Self::OutgoingTransaction => "outgoing-transaction",
            Self::PortRuntimeState => "port-runtime-state",
            Self::ChannelSession => "channel-session",
        };
        write!(f, "{name} ({})", self.to_u16())
    }
}

/// The 16 header bytes the checksum covers (magic to payload length) of a blob of `kind`
/// written by this version, carrying `payload_len` bytes. A `const fn` so that a kind with a
/// fixed layout can hold its whole header as a constant.
#[must_use]
pub const fn header_prefix(kind: BlobKind, payload_len: u32) -> [u8; CHECKSUM_AT] {
    let [m0, m1, m2, m3] = MAGIC;
    let [major0, major1] = FORMAT_VERSION.major.to_le_bytes();
    let [minor0, minor1] = FORMAT_VERSION.minor.to_le_bytes();
    let [k0, k1] = kind.to_u16().to_le_bytes();
    let [l0, l1, l2, l3] = payload_len.to_le_bytes();
    [
        m0, m1, m2, m3, major0, major1, minor0, minor1, k0, k1, 0, 0, l0, l1, l2, l3,
    ]
}

/// Writes the header of a blob of `kind` carrying `payload` (already in place after the
/// header) into `header`, checksum included.
pub(crate) fn write_header(header: &mut [u8; HEADER_LEN], kind: BlobKind, payload: &[u8]) {
    // Callers bound the payload by MAX_PAYLOAD_LEN, far below u32::MAX.
    let payload_len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    let fixed = header_prefix(kind, payload_len);
    let checksum = crc32c_pair(&fixed, payload).to_le_bytes();
    if let Some((head, tail)) = header.split_first_chunk_mut::<CHECKSUM_AT>() {
        *head = fixed;
        if let Some(slot) = tail.first_chunk_mut() {
            *slot = checksum;
        }
    }
}

/// A blob whose envelope is valid, whose checksum matches and whose fields are well framed and
/// in ascending tag order: ready for a kind to read. Borrows the blob; nothing is copied.
#[derive(Clone, Copy, Debug)]
pub struct Payload<'a> {
    kind: BlobKind,
    version: Version,
    bytes: &'a [u8],
}

impl<'a> Payload<'a> {
    /// The blob's kind.
    #[must_use]
    pub const fn kind(&self) -> BlobKind {
        self.kind
    }

    /// The format version that wrote the blob (same major as ours; the minor may be newer).
    #[must_use]
    pub const fn version(&self) -> Version {
        self.version
    }

    /// The payload bytes (after the header).
    #[must_use]
    pub const fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// Every field in order, unknown ones included, with framing and tag order checked; for tools
    /// that list a blob. Kinds read through [`read`](Self::read) instead.
    #[must_use]
    pub const fn fields(&self) -> Fields<'a> {
        Fields::new(self.bytes, HEADER_LEN)
    }

    /// A reader that looks fields up by tag, in ascending order. Call
    /// [`FieldReader::finish`] when done, or use [`read`](Self::read), which does.
    pub const fn reader(&self) -> FieldReader<'a> {
        FieldReader::new(self.fields())
    }

    /// Runs `decode` over a [`FieldReader`], then checks the fields it did not ask for: none may
    /// be critical, all must be well framed and in order.
    ///
    /// # Errors
    /// The first error from `decode` or from checking the remaining fields.
    pub fn read<T>(
        &self,
        decode: impl FnOnce(&mut FieldReader<'a>) -> Result<T, DecodeError>,
    ) -> Result<T, DecodeError> {
        let mut reader = self.reader();
        let value = decode(&mut reader)?;
        reader.finish()?;
        Ok(value)
    }
}

/// Opens `blob` as saved state of `expected` kind: checks the envelope and the checksum, and
/// returns the payload. No field is interpreted yet.
///
/// Checks run in this order, so a damaged header field gets its own error: magic, major
/// version, header length, kind, flags, payload length, checksum; then one pass over the
/// fields checks their framing and tag order. What the fields mean is left to the kind.
///
/// # Errors
/// A [`DecodeError`] whose offset points at the header field (or the end of the blob) that
/// failed.
pub fn open(blob: &[u8], expected: BlobKind) -> Result<Payload<'_>, DecodeError> {
    open_checked(blob, Some(expected))
}

/// Opens `blob` as saved state of any known kind (for tools; restore paths use [`open`]).
///
/// # Errors
/// As for [`open`], without the wrong-kind case.
pub fn open_any(blob: &[u8]) -> Result<Payload<'_>, DecodeError> {
    open_checked(blob, None)
}

/// Reads the little-endian `u16` at `at`, or reports truncation there.
fn u16_at(blob: &[u8], at: usize) -> Result<u16, DecodeError> {
    match blob.get(at..).and_then(<[u8]>::first_chunk::<2>) {
        Some(bytes) => Ok(u16::from_le_bytes(*bytes)),
        None => Err(truncated(blob, at, 2)),
    }
}

/// Reads the little-endian `u32` at `at`, or reports truncation there.
fn u32_at(blob: &[u8], at: usize) -> Result<u32, DecodeError> {
    match blob.get(at..).and_then(<[u8]>::first_chunk::<4>) {
        Some(bytes) => Ok(u32::from_le_bytes(*bytes)),
        None => Err(truncated(blob, at, 4)),
    }
}

fn truncated(blob: &[u8], at: usize, needed: usize) -> DecodeError {
    let available = blob.len().saturating_sub(at);
    DecodeError::truncated(at, needed, available)
}

fn open_checked(blob: &[u8], expected: Option<BlobKind>) -> Result<Payload<'_>, DecodeError> {
    let version = check_prefix(blob)?;
    let Some((header, payload)) = blob.split_first_chunk::<HEADER_LEN>() else {
        return Err(truncated(blob, 0, HEADER_LEN));
    };
    let kind = check_kind(header, expected)?;
    check_length(header, payload)?;
    check_checksum(header, payload)?;
    check_framing(payload)?;
    Ok(Payload {
        kind,
        version,
        bytes: payload,
    })
}

/// Magic and major version: the part of the header every major version keeps, so they are
/// checked before anything whose layout a major version may change.
fn check_prefix(blob: &[u8]) -> Result<Version, DecodeError> {
    let Some(magic) = blob.first_chunk::<4>() else {
        return Err(truncated(blob, MAGIC_AT, MAGIC.len()));
    };
    if *magic != MAGIC {
        return Err(DecodeError::new(
            MAGIC_AT,
            DecodeErrorKind::BadMagic { found: *magic },
        ));
    }
    let version = Version {
        major: u16_at(blob, MAJOR_AT)?,
        minor: u16_at(blob, MINOR_AT)?,
    };
    if version.major != FORMAT_VERSION.major {
        return Err(DecodeError::new(
            MAJOR_AT,
            DecodeErrorKind::UnsupportedMajor {
                found: version,
                supported: FORMAT_VERSION,
            },
        ));
    }
    Ok(version)
}

/// The kind (known, and the expected one if given) and the reserved flags.
fn check_kind(header: &[u8], expected: Option<BlobKind>) -> Result<BlobKind, DecodeError> {
    let raw_kind = u16_at(header, KIND_AT)?;
    let Some(kind) = BlobKind::from_u16(raw_kind) else {
        return Err(DecodeError::new(
            KIND_AT,
            DecodeErrorKind::UnknownKind { found: raw_kind },
        ));
    };
    if let Some(expected) = expected
        && kind != expected
    {
        return Err(DecodeError::new(
            KIND_AT,
            DecodeErrorKind::WrongKind {
                expected,
                found: kind,
            },
        ));
    }
    let flags = u16_at(header, FLAGS_AT)?;
    if flags != 0 {
        return Err(DecodeError::new(
            FLAGS_AT,
            DecodeErrorKind::NonzeroFlags { found: flags },
        ));
    }
    Ok(kind)
}

/// The declared payload length: within the limit and equal to the bytes present.
fn check_length(header: &[u8], payload: &[u8]) -> Result<(), DecodeError> {
    let declared = u32_at(header, LENGTH_AT)?;
    if usize::try_from(declared).map_or(true, |len| len > MAX_PAYLOAD_LEN) {
        return Err(DecodeError::new(
            LENGTH_AT,
            DecodeErrorKind::Oversized {
                declared,
                max: saturate(MAX_PAYLOAD_LEN),
            },
        ));
    }
    if usize::try_from(declared) != Ok(payload.len()) {
        return Err(DecodeError::new(
            LENGTH_AT,
            DecodeErrorKind::LengthMismatch {
                declared,
                actual: saturate(payload.len()),
            },
        ));
    }
    Ok(())
}

/// The stored CRC-32C against the header bytes before it and the payload.
fn check_checksum(header: &[u8; HEADER_LEN], payload: &[u8]) -> Result<(), DecodeError> {
    let Some((covered, _)) = header.split_first_chunk::<CHECKSUM_AT>() else {
        return Err(truncated(header, 0, HEADER_LEN));
    };
    let stored = u32_at(header, CHECKSUM_AT)?;
    let computed = crc32c_pair(covered, payload);
    if stored != computed {
        return Err(DecodeError::new(
            CHECKSUM_AT,
            DecodeErrorKind::ChecksumMismatch { stored, computed },
        ));
    }
    Ok(())
}

/// Walks every field once: each lies inside the payload and tag numbers strictly ascend. Done
/// before any kind reads a field, so a structural fault is reported as such and not as a
/// missing field, and a [`Payload`] is always well framed.
fn check_framing(payload: &[u8]) -> Result<(), DecodeError> {
    let mut fields = Fields::new(payload, HEADER_LEN);
    while fields.next_field()?.is_some() {}
    Ok(())
}
