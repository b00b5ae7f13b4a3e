//! Body sizes of every message type (the bytes after the 16-byte header).
//!
//! Field offsets are given in `docs/protocol.md` §5; the parser and encoder walk fields in that
//! order, and the golden-byte tests pin both.

/// `NegotiateRequest`: `min_version: u16`, `max_version: u16`, `features: u32`.
pub const NEGOTIATE_REQUEST_BODY_LEN: usize = 8;
/// `NegotiateResponse`: `version: u16`, `reserved: u16`, `features: u32`.
pub const NEGOTIATE_RESPONSE_BODY_LEN: usize = 8;
/// `GetPortStatsRequest`: no body.
pub const GET_PORT_STATS_BODY_LEN: usize = 0;
/// `PortStats`: six `u64` counters, `flows_active: u32`, `reserved: u32`,
/// `flows_evicted: u64`.
pub const PORT_STATS_BODY_LEN: usize = 64;
/// `SubscribeRequest` / `UnsubscribeRequest` / their responses: `events: u32`,
/// `reserved: u32`.
pub const SUBSCRIPTION_BODY_LEN: usize = 8;
/// `ErrorResponse`: `code: u32`, `request_type: u16`, `reserved: u16`, `offset: u32`,
/// `min_version: u16`, `max_version: u16`.
pub const ERROR_BODY_LEN: usize = 16;
/// The fixed part of a notification body before the event data: `event: u32`,
/// `reserved: u32`.
pub const NOTIFICATION_FIXED_LEN: usize = 8;
/// The event data of a `HEARTBEAT` notification: `uptime: u64`.
pub const HEARTBEAT_BODY_LEN: usize = 8;
/// `NotificationAck`: `sequence: u64`, `status: u32`, `reserved: u32`.
pub const ACK_BODY_LEN: usize = 16;
/// The `offset` value of an `ErrorResponse` that names no offset.
pub const NO_OFFSET: u32 = u32::MAX;
