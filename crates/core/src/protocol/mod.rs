//! The guest ↔ VSP service protocol, version 1: wire format, hostile-input parser, encoder.
//!
//! The specification is `docs/protocol.md`; this module implements it and nothing else (what
//! the VSP does with each request is [`crate::service`]'s job).
//!
//! One message travels per VMBus packet. The guest sends requests; the host answers each with a
//! response as the packet's completion payload. The host sends notifications as transactions
//! that wait for completion; the guest's completion payload is an acknowledgement. Every
//! message starts with the 16-byte [`Header`].
//!
//! | module | job |
//! |---|---|
//! | `header` | the header, message types, versions and limits |
//! | `layout` | body sizes per message type |
//! | `message` | the messages as Rust values |
//! | `error` | wire error codes, [`ProtocolError`], [`EncodeError`] |
//! | `parse` | [`parse_request`], [`parse_response`], [`parse_notification`], [`parse_ack`] |
//! | `encode` | [`encode_request`], [`encode_response`], [`encode_error`], [`encode_notification`], [`encode_ack`] and their `*_len` helpers |
//! | `negotiate` | the version-selection rule |
//!
//! Parsers borrow the packet (ping data is a sub-slice), never panic, never index out of
//! bounds, and check all arithmetic on guest-supplied lengths. Encoders write into a buffer the
//! caller supplies (at least [`MAX_MESSAGE_LEN`] bytes holds any message).

mod encode;
mod error;
mod header;
mod layout;
mod message;
mod negotiate;
mod parse;
mod wire;

pub use encode::{
    ACK_LEN, ERROR_LEN, ack_len, encode_ack, encode_error, encode_notification,
    encode_ping_response, encode_protocol_error, encode_request, encode_response, notification_len,
    request_len, response_len,
};
pub use error::{EchoedHeader, EncodeError, ErrorCode, ProtocolError};
pub use header::{
    Direction, FROZEN_VERSION, HEADER_LEN, Header, LENGTH_OFFSET, MAX_MESSAGE_LEN, MAX_PING_DATA,
    MAX_SUPPORTED_VERSION, MESSAGE_TYPE_OFFSET, MIN_SUPPORTED_VERSION, MessageType, PING_FIXED_LEN,
    PROTOCOL_VERSION_1, TRANSACTION_ID_OFFSET, VERSION_OFFSET, is_supported_version,
};
pub use layout::{
    ACK_BODY_LEN, ERROR_BODY_LEN, GET_PORT_STATS_BODY_LEN, HEARTBEAT_BODY_LEN,
    NEGOTIATE_REQUEST_BODY_LEN, NEGOTIATE_RESPONSE_BODY_LEN, NO_OFFSET, NOTIFICATION_FIXED_LEN,
    PORT_STATS_BODY_LEN, SUBSCRIPTION_BODY_LEN,
};
pub use message::{
    AckStatus, ErrorResponse, Event, EventSet, NegotiateRequest, NegotiateResponse, Notification,
    NotificationAck, NotificationBody, Ping, PortStats, Request, RequestBody, Response,
    ResponseBody, SubscriptionResponse,
};
pub use negotiate::{SUPPORTED_FEATURES, negotiate};
pub use parse::{parse_ack, parse_notification, parse_request, parse_response};
