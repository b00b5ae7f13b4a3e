//! Error codes carried on the wire, the parser's error and the encoder's error.

use core::fmt;

use super::header::MessageType;

/// Why a request could not be served: the `code` of an `ErrorResponse`.
///
/// The numeric values are part of the wire format and never change; `0` is never used. Codes
/// 1–8 are produced by the parser ([`ProtocolError`]); 9–13 by the service.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum ErrorCode {
    /// The packet is shorter than the 16-byte header.
    Truncated = 1,
    /// The packet, or the header's `length`, exceeds `MAX_MESSAGE_LEN`.
    Oversized = 2,
    /// The header's `length` differs from the packet's length.
    LengthMismatch = 3,
    /// The header's `version` is not one the host supports, or a negotiation offered no
    /// version in common with the host.
    UnsupportedVersion = 4,
    /// The `message_type` is not a defined type.
    UnknownType = 5,
    /// The `message_type` is defined but travels the other way or on the other kind of packet
    /// (a response, notification or ack sent as a request).
    WrongDirection = 6,
    /// The body is shorter or longer than its message type defines.
    InvalidBodyLength = 7,
    /// A field holds a value its type forbids: a reserved field not zero, an unknown event
    /// bit, a value out of range.
    InvalidField = 8,
    /// A request other than `NegotiateRequest` arrived before a successful negotiation.
    NotNegotiated = 9,
    /// A fixed-capacity table is full; the request may be retried later.
    Busy = 10,
    /// The request was retired unserved because the channel was suspended.
    Cancelled = 11,
    /// The object the request refers to does not exist (no switch port bound to the channel).
    NotFound = 12,
    /// The host failed for a reason of its own.
    Internal = 13,
}

impl ErrorCode {
    /// Every code, in numeric order.
    pub const ALL: [Self; 13] = [
        Self::Truncated,
        Self::Oversized,
        Self::LengthMismatch,
        Self::UnsupportedVersion,
        Self::UnknownType,
        Self::WrongDirection,
        Self::InvalidBodyLength,
        Self::InvalidField,
        Self::NotNegotiated,
        Self::Busy,
        Self::Cancelled,
        Self::NotFound,
        Self::Internal,
    ];

    /// The code with this wire value, if any.
    #[must_use]
    pub const fn from_u32(value: u32) -> Option<Self> {
        Some(match value {
            1 => Self::Truncated,
            2 => Self::Oversized,
            3 => Self::LengthMismatch,
            4 => Self::UnsupportedVersion,
            5 => Self::UnknownType,
            6 => Self::WrongDirection,
            7 => Self::InvalidBodyLength,
            8 => Self::InvalidField,
            9 => Self::NotNegotiated,
            10 => Self::Busy,
            11 => Self::Cancelled,
            12 => Self::NotFound,
            13 => Self::Internal,
            _ => return None,
        })
    }

    /// The wire value.
    #[must_use]
    pub const fn to_u32(self) -> u32 {
        self as u32
    }
}

/// What the parser could read of a rejected message's header, so that an error response can
/// echo it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EchoedHeader {
    /// The header's `transaction_id`.
    pub transaction_id: u64,
    /// The header's raw `message_type`.
    pub message_type: u16,
}

/// A message the parser rejected: the wire error code, where the problem is, and the header
/// fields to echo in the answer when the header was readable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProtocolError {
    /// The code to send back (requests) or to record (acks).
    pub code: ErrorCode,
    /// The byte offset from the start of the packet where the problem was found: the first
    /// offending field, or the first byte missing or in excess.
    pub offset: usize,
    /// The header's transaction id and message type, when at least 16 bytes were present.
    pub header: Option<EchoedHeader>,
}

impl ProtocolError {
    /// The transaction id an error response must carry: the rejected message's, or 0 when its
    /// header was unreadable.
    #[must_use]
    pub fn transaction_id(&self) -> u64 {
        self.header.map_or(0, |header| header.transaction_id)
    }

    /// The `request_type` an error response must carry: the rejected message's raw type, or 0
    /// when its header was unreadable.
    #[must_use]
    pub fn request_type(&self) -> u16 {
        self.header.map_or(0, |header| header.message_type)
    }
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} at byte {}", self.code, self.offset)?;
        if let Some(header) = self.header {
            write!(
                f,
                " (message type {:#06x}, transaction {})",
                header.message_type, header.transaction_id
            )?;
        }
        Ok(())
    }
}

/// Why a message could not be encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EncodeError {
    /// The output buffer is shorter than the message.
    BufferTooSmall {
        /// The exact size the message needs.
        needed: usize,
        /// The size of the buffer given.
        available: usize,
    },
    /// The message holds a value the parser would reject, so it is not sent.
    InvalidMessage {
        /// The message being encoded.
        message_type: MessageType,
        /// The code the parser would answer with.
        code: ErrorCode,
    },
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BufferTooSmall { needed, available } => {
                write!(f, "message needs {needed} bytes, buffer holds {available}")
            }
            Self::InvalidMessage { message_type, code } => {
                write!(f, "{message_type:?} would be rejected with {code:?}")
            }
        }
    }
}
