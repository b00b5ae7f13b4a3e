//! The messages of protocol v1 as Rust values: what the parser produces and the encoder takes.
//!
//! Values that would not parse cannot be built where the type system can prevent it
//! ([`EventSet`] holds only known bits, [`Event`] is one known event); the encoder checks the
//! rest (ranges, ping data length) and refuses with a typed error.

use crate::platform::Ticks;

use super::error::ErrorCode;

/// A set of subscribable events (the `events` bitmask of subscribe requests). Holds only bits
/// this version defines.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct EventSet(u32);

impl EventSet {
    /// No events.
    pub const EMPTY: Self = Self(0);
    /// Periodic port statistics (bit 0).
    pub const PORT_STATS: Self = Self(Event::PortStats.bit());
    /// Periodic host heartbeat (bit 1).
    pub const HEARTBEAT: Self = Self(Event::Heartbeat.bit());
    /// Every event protocol v1 defines.
    pub const ALL: Self = Self(Event::PortStats.bit() | Event::Heartbeat.bit());

    /// The set with these bits, or `None` if any bit is not a defined event.
    #[must_use]
    pub const fn from_bits(bits: u32) -> Option<Self> {
        if bits & !Self::ALL.0 == 0 {
            Some(Self(bits))
        } else {
            None
        }
    }

    /// The bitmask.
    #[must_use]
    pub const fn bits(self) -> u32 {
        self.0
    }

    /// Whether every event of `other` is in `self`.
    #[must_use]
    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    /// The events in either set.
    #[must_use]
    pub const fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    /// The events of `self` not in `other`.
    #[must_use]
    pub const fn difference(self, other: Self) -> Self {
        Self(self.0 & !other.0)
    }

    /// Whether the set is empty.
    #[must_use]
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }
}

/// One event, as named in a notification's `event` field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum Event {
    /// Port statistics; body: [`PortStats`].
    PortStats = 1,
    /// Host heartbeat; body: the host's uptime.
    Heartbeat = 2,
}

impl Event {
    /// The event's bit, which is also its `event` value in a notification.
    #[must_use]
    pub const fn bit(self) -> u32 {
        self as u32
    }

    /// The event with this `event` value, if any (exactly one defined bit).
    #[must_use]
    pub const fn from_u32(value: u32) -> Option<Self> {
        match value {
            1 => Some(Self::PortStats),
            2 => Some(Self::Heartbeat),
            _ => None,
        }
    }
}

/// `NegotiateRequest`: the range of protocol versions the guest speaks and the features it
/// would like.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NegotiateRequest {
    /// Lowest version offered; at least 1.
    pub min_version: u16,
    /// Highest version offered; at least `min_version`.
    pub max_version: u16,
    /// Feature bits the guest would like; the host answers with the subset it grants.
    pub features: u32,
}

/// `NegotiateResponse`: the version both sides now speak and the features granted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NegotiateResponse {
    /// The chosen version: the highest both sides support.
    pub version: u16,
    /// The granted features: a subset of the offer and of
    /// [`SUPPORTED_FEATURES`](super::negotiate::SUPPORTED_FEATURES).
    pub features: u32,
}

/// `PingRequest` and `PingResponse`: a nonce and up to
/// [`MAX_PING_DATA`](super::header::MAX_PING_DATA) bytes, echoed unchanged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ping<'a> {
    /// Any value, echoed.
    pub nonce: u64,
    /// Any bytes, echoed; borrowed from the packet when parsed.
    pub data: &'a [u8],
}

/// The statistics of the switch port bound to the channel (`PortStatsResponse` and the body of
/// a `PORT_STATS` notification).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct PortStats {
    /// Frames received by the port.
    pub rx_frames: u64,
    /// Bytes received by the port.
    pub rx_bytes: u64,
    /// Frames sent by the port.
    pub tx_frames: u64,
    /// Bytes sent by the port.
    pub tx_bytes: u64,
    /// Frames dropped.
    pub dropped_frames: u64,
    /// Bytes dropped.
    pub dropped_bytes: u64,
    /// Flows currently tracked.
    pub flows_active: u32,
    /// Flows evicted so far.
    pub flows_evicted: u64,
}

/// `SubscribeResponse` and `UnsubscribeResponse`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SubscriptionResponse {
    /// The guest's whole subscription set after the request was applied.
    pub subscribed: EventSet,
}

/// `ErrorResponse`: why a request was not served.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ErrorResponse {
    /// Why.
    pub code: ErrorCode,
    /// The raw `message_type` of the request, or 0 when its header was unreadable.
    pub request_type: u16,
    /// The byte offset of the problem in the request, when the parser found one.
    pub offset: Option<u32>,
    /// The lowest protocol version the host supports.
    pub min_version: u16,
    /// The highest protocol version the host supports.
    pub max_version: u16,
}

/// A guest → host request body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestBody<'a> {
    /// `NegotiateRequest` (0x0001).
    Negotiate(NegotiateRequest),
    /// `PingRequest` (0x0002).
    Ping(Ping<'a>),
    /// `GetPortStatsRequest` (0x0003); no body.
    GetPortStats,
    /// `SubscribeRequest` (0x0004): events to add.
    Subscribe(EventSet),
    /// `UnsubscribeRequest` (0x0005): events to remove.
    Unsubscribe(EventSet),
}

/// A guest → host request with its header fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request<'a> {
    /// The header's protocol version.
    pub version: u16,
    /// Chosen by the guest; the response echoes it.
    pub transaction_id: u64,
    /// The request itself.
    pub body: RequestBody<'a>,
}

/// A host → guest response body (the completion payload of a request).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResponseBody<'a> {
    /// `NegotiateResponse` (0x8001).
    Negotiate(NegotiateResponse),
    /// `PingResponse` (0x8002).
    Ping(Ping<'a>),
    /// `PortStatsResponse` (0x8003).
    PortStats(PortStats),
    /// `SubscribeResponse` (0x8004).
    Subscribe(SubscriptionResponse),
    /// `UnsubscribeResponse` (0x8005).
    Unsubscribe(SubscriptionResponse),
    /// `ErrorResponse` (0xFFFF).
    Error(ErrorResponse),
}

/// A host → guest response with its header fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Response<'a> {
    /// The header's protocol version.
    pub version: u16,
    /// The request's transaction id (0 for an error answering an unreadable header).
    pub transaction_id: u64,
    /// The response itself.
    pub body: ResponseBody<'a>,
}

/// What a notification reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotificationBody {
    /// [`Event::PortStats`]: the port's statistics now.
    PortStats(PortStats),
    /// [`Event::Heartbeat`]: the host's monotonic clock, in 100 ns ticks.
    Heartbeat(Ticks),
}

impl NotificationBody {
    /// The event this body belongs to.
    #[must_use]
    pub const fn event(&self) -> Event {
        match self {
            Self::PortStats(_) => Event::PortStats,
            Self::Heartbeat(_) => Event::Heartbeat,
        }
    }
}

/// A host → guest notification (0x4001), sent as a transaction that waits for the guest's
/// completion.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Notification {
    /// The header's protocol version.
    pub version: u16,
    /// The host's sequence number, carried as the header's transaction id.
    pub sequence: u64,
    /// The event and its data.
    pub body: NotificationBody,
}

/// How the guest handled a notification.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum AckStatus {
    /// The guest received and processed the notification.
    Handled = 0,
    /// The guest received it but had no use for it (e.g. it unsubscribed meanwhile).
    Ignored = 1,
    /// The guest could not parse the notification.
    Malformed = 2,
}

impl AckStatus {
    /// The status with this wire value, if any.
    #[must_use]
    pub const fn from_u32(value: u32) -> Option<Self> {
        match value {
            0 => Some(Self::Handled),
            1 => Some(Self::Ignored),
            2 => Some(Self::Malformed),
            _ => None,
        }
    }

    /// The wire value.
    #[must_use]
    pub const fn to_u32(self) -> u32 {
        self as u32
    }
}

/// `NotificationAck` (0x4081): the guest's completion payload for a notification.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NotificationAck {
    /// The header's protocol version.
    pub version: u16,
    /// The acknowledged notification's sequence number (header transaction id and body field,
    /// which must agree). The host must still check it against the transaction it completes.
    pub sequence: u64,
    /// How the guest handled it.
    pub status: AckStatus,
}
