//! The 16-byte message header, the message-type numbering and the protocol's size limits.
//!
//! Layout (little-endian, no padding), specified in `docs/protocol.md` §3:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 2 | `version` |
//! | 2 | 2 | `message_type` |
//! | 4 | 4 | `length` (whole message, header included) |
//! | 8 | 8 | `transaction_id` |

/// Size of the header in bytes.
pub const HEADER_LEN: usize = 16;
/// Offset of the header's `version` field.
pub const VERSION_OFFSET: usize = 0;
/// Offset of the header's `message_type` field.
pub const MESSAGE_TYPE_OFFSET: usize = 2;
/// Offset of the header's `length` field.
pub const LENGTH_OFFSET: usize = 4;
/// Offset of the header's `transaction_id` field.
pub const TRANSACTION_ID_OFFSET: usize = 8;

/// Protocol version 1, the only version this implementation speaks.
pub const PROTOCOL_VERSION_1: u16 = 1;
/// The lowest protocol version the host accepts.
pub const MIN_SUPPORTED_VERSION: u16 = PROTOCOL_VERSION_1;
/// The highest protocol version the host accepts.
pub const MAX_SUPPORTED_VERSION: u16 = PROTOCOL_VERSION_1;
/// The header version of the messages whose layout is frozen for every protocol version:
/// `NegotiateRequest`, `NegotiateResponse` and `ErrorResponse`.
pub const FROZEN_VERSION: u16 = PROTOCOL_VERSION_1;

/// The most ping payload bytes a `PingRequest` (and its response) may carry.
pub const MAX_PING_DATA: usize = 8192;
/// Size of the fixed part of a ping body (the nonce) before its data.
pub const PING_FIXED_LEN: usize = 8;
/// The largest valid message: a ping carrying [`MAX_PING_DATA`] bytes. A packet or header
/// `length` above this is `Oversized`.
pub const MAX_MESSAGE_LEN: usize = HEADER_LEN + PING_FIXED_LEN + MAX_PING_DATA;

/// Whether `version` lies in the host's supported range.
#[inline]
#[must_use]
pub const fn is_supported_version(version: u16) -> bool {
    version >= MIN_SUPPORTED_VERSION && version <= MAX_SUPPORTED_VERSION
}

/// The 16-bit `message_type` of a header.
///
/// Numbering: requests `0x0001..`, the response to request `r` is `r | 0x8000`, host→guest
/// notifications `0x4001`, their guest acknowledgement `0x4081`, the error response `0xFFFF`.
/// `0x0000` is never valid.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u16)]
pub enum MessageType {
    /// Guest → host: offer a range of protocol versions.
    NegotiateRequest = 0x0001,
    /// Guest → host: echo request.
    PingRequest = 0x0002,
    /// Guest → host: read the bound port's statistics.
    GetPortStatsRequest = 0x0003,
    /// Guest → host: add events to the subscription set.
    SubscribeRequest = 0x0004,
    /// Guest → host: remove events from the subscription set.
    UnsubscribeRequest = 0x0005,
    /// Host → guest completion: the chosen version.
    NegotiateResponse = 0x8001,
    /// Host → guest completion: the echoed ping.
    PingResponse = 0x8002,
    /// Host → guest completion: port statistics.
    PortStatsResponse = 0x8003,
    /// Host → guest completion of a subscribe request.
    SubscribeResponse = 0x8004,
    /// Host → guest completion of an unsubscribe request (same body as
    /// [`MessageType::SubscribeResponse`]).
    UnsubscribeResponse = 0x8005,
    /// Host → guest transaction: an event the guest subscribed to.
    Notification = 0x4001,
    /// Guest → host completion of a notification.
    NotificationAck = 0x4081,
    /// Host → guest completion for a request that could not be served.
    ErrorResponse = 0xFFFF,
}

/// Which way a message travels and how it is carried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// A guest → host packet that asks for completion.
    Request,
    /// The host's completion payload for a request.
    Response,
    /// A host → guest packet that asks for completion.
    Notification,
    /// The guest's completion payload for a notification.
    Ack,
}

impl MessageType {
    /// The message type with this wire value, if any.
    #[inline]
    #[must_use]
    pub const fn from_u16(value: u16) -> Option<Self> {
        Some(match value {
            0x0001 => Self::NegotiateRequest,
            0x0002 => Self::PingRequest,
            0x0003 => Self::GetPortStatsRequest,
            0x0004 => Self::SubscribeRequest,
            0x0005 => Self::UnsubscribeRequest,
            0x8001 => Self::NegotiateResponse,
            0x8002 => Self::PingResponse,
            0x8003 => Self::PortStatsResponse,
            0x8004 => Self::SubscribeResponse,
            0x8005 => Self::UnsubscribeResponse,
            0x4001 => Self::Notification,
            0x4081 => Self::NotificationAck,
            0xFFFF => Self::ErrorResponse,
            _ => return None,
        })
    }

    /// The wire value.
    #[inline]
    #[must_use]
    pub const fn to_u16(self) -> u16 {
        self as u16
    }

    /// Which way this message travels.
    #[inline]
    #[must_use]
    pub const fn direction(self) -> Direction {
        match self {
            Self::NegotiateRequest
            | Self::PingRequest
            | Self::GetPortStatsRequest
            | Self::SubscribeRequest
            | Self::UnsubscribeRequest => Direction::Request,
            Self::NegotiateResponse
            | Self::PingResponse
            | Self::PortStatsResponse
            | Self::SubscribeResponse
            | Self::UnsubscribeResponse
            | Self::ErrorResponse => Direction::Response,
            Self::Notification => Direction::Notification,
            Self::NotificationAck => Direction::Ack,
        }
    }
}

/// A decoded header, exactly as it appeared on the wire (not yet validated).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// Protocol version of this message.
    pub version: u16,
    /// Raw `message_type` (see [`MessageType`]).
    pub message_type: u16,
    /// Total message length in bytes, header included.
    pub length: u32,
    /// Request: chosen by the guest, echoed in the response. Notification and its ack: the
    /// host's notification sequence number.
    pub transaction_id: u64,
}

impl Header {
    /// Reads the header from the start of `bytes`, or `None` if fewer than [`HEADER_LEN`]
    /// bytes are present. No field is validated.
    #[must_use]
    #[inline]
    pub fn read(bytes: &[u8]) -> Option<Self> {
        let (header, _) = bytes.split_first_chunk::<HEADER_LEN>()?;
        Some(Self::from_bytes(header))
    }

    /// Decodes the header's 16 bytes (one bounds check for the whole header, in the caller).
    #[inline]
    const fn from_bytes(bytes: &[u8; HEADER_LEN]) -> Self {
        let [
            v0,
            v1,
            t0,
            t1,
            l0,
            l1,
            l2,
            l3,
            i0,
            i1,
            i2,
            i3,
            i4,
            i5,
            i6,
            i7,
        ] = *bytes;
        Self {
            version: u16::from_le_bytes([v0, v1]),
            message_type: u16::from_le_bytes([t0, t1]),
            length: u32::from_le_bytes([l0, l1, l2, l3]),
            transaction_id: u64::from_le_bytes([i0, i1, i2, i3, i4, i5, i6, i7]),
        }
    }

    /// The header's 16 bytes.
    #[inline]
    pub(crate) const fn to_bytes(self) -> [u8; HEADER_LEN] {
        let [v0, v1] = self.version.to_le_bytes();
        let [t0, t1] = self.message_type.to_le_bytes();
        let [l0, l1, l2, l3] = self.length.to_le_bytes();
        let [i0, i1, i2, i3, i4, i5, i6, i7] = self.transaction_id.to_le_bytes();
        [
            v0, v1, t0, t1, l0, l1, l2, l3, i0, i1, i2, i3, i4, i5, i6, i7,
        ]
    }
}

static_assertions::const_assert!(MAX_MESSAGE_LEN <= u32::MAX as usize);
static_assertions::const_assert_eq!(MAX_MESSAGE_LEN, 8216);
