//! The encoder: every message into a caller-supplied buffer, with exact length helpers.
//!
//! An encoder refuses a value the parser would reject ([`EncodeError::InvalidMessage`]), so
//! whatever it writes parses back to the same value. A buffer of [`MAX_MESSAGE_LEN`] bytes
//! holds any message.
//!
//! [`MAX_MESSAGE_LEN`]: super::header::MAX_MESSAGE_LEN

use super::error::{EncodeError, ErrorCode, ProtocolError};
use super::header::{
    FROZEN_VERSION, HEADER_LEN, Header, MAX_PING_DATA, MAX_SUPPORTED_VERSION,
    MIN_SUPPORTED_VERSION, MessageType, PING_FIXED_LEN, is_supported_version,
};
use super::layout::{
    ACK_BODY_LEN, ERROR_BODY_LEN, GET_PORT_STATS_BODY_LEN, HEARTBEAT_BODY_LEN,
    NEGOTIATE_REQUEST_BODY_LEN, NEGOTIATE_RESPONSE_BODY_LEN, NO_OFFSET, NOTIFICATION_FIXED_LEN,
    PORT_STATS_BODY_LEN, SUBSCRIPTION_BODY_LEN,
};
use super::message::{
    ErrorResponse, EventSet, Notification, NotificationAck, NotificationBody, Ping, PortStats,
    Request, RequestBody, Response, ResponseBody,
};
use super::negotiate::SUPPORTED_FEATURES;
use super::wire::Writer;

/// Exact encoded size of a `NotificationAck`.
pub const ACK_LEN: usize = HEADER_LEN + ACK_BODY_LEN;
/// Exact encoded size of an `ErrorResponse`.
pub const ERROR_LEN: usize = HEADER_LEN + ERROR_BODY_LEN;

/// Exact encoded size of `request` (saturating for a ping whose data is too long to encode).
#[must_use]
pub const fn request_len(request: &Request<'_>) -> usize {
    HEADER_LEN.saturating_add(match &request.body {
        RequestBody::Negotiate(_) => NEGOTIATE_REQUEST_BODY_LEN,
        RequestBody::Ping(ping) => ping_body_len(ping),
        RequestBody::GetPortStats => GET_PORT_STATS_BODY_LEN,
        RequestBody::Subscribe(_) | RequestBody::Unsubscribe(_) => SUBSCRIPTION_BODY_LEN,
    })
}

/// Exact encoded size of `response` (saturating for a ping whose data is too long to encode).
#[must_use]
pub const fn response_len(response: &Response<'_>) -> usize {
    HEADER_LEN.saturating_add(match &response.body {
        ResponseBody::Negotiate(_) => NEGOTIATE_RESPONSE_BODY_LEN,
        ResponseBody::Ping(ping) => ping_body_len(ping),
        ResponseBody::PortStats(_) => PORT_STATS_BODY_LEN,
        ResponseBody::Subscribe(_) | ResponseBody::Unsubscribe(_) => SUBSCRIPTION_BODY_LEN,
        ResponseBody::Error(_) => ERROR_BODY_LEN,
    })
}

/// Exact encoded size of `notification`.
#[must_use]
pub const fn notification_len(notification: &Notification) -> usize {
    const FIXED: usize = HEADER_LEN + NOTIFICATION_FIXED_LEN;
    match notification.body {
        NotificationBody::PortStats(_) => FIXED + PORT_STATS_BODY_LEN,
        NotificationBody::Heartbeat(_) => FIXED + HEARTBEAT_BODY_LEN,
    }
}

/// Exact encoded size of a `NotificationAck` (always [`ACK_LEN`]).
#[must_use]
pub const fn ack_len(_ack: &NotificationAck) -> usize {
    ACK_LEN
}

#[inline]
const fn ping_body_len(ping: &Ping<'_>) -> usize {
    PING_FIXED_LEN.saturating_add(ping.data.len())
}

/// Encodes a guest → host request into `out`; returns the bytes written.
///
/// # Errors
///
/// [`EncodeError::BufferTooSmall`] if `out` is shorter than [`request_len`];
/// [`EncodeError::InvalidMessage`] for an unsupported header version, ping data longer than
/// [`MAX_PING_DATA`], or a negotiation offer with `min_version` 0 or above `max_version`.
pub fn encode_request(request: &Request<'_>, out: &mut [u8]) -> Result<usize, EncodeError> {
    let message_type = match request.body {
        RequestBody::Negotiate(_) => MessageType::NegotiateRequest,
        RequestBody::Ping(_) => MessageType::PingRequest,
        RequestBody::GetPortStats => MessageType::GetPortStatsRequest,
        RequestBody::Subscribe(_) => MessageType::SubscribeRequest,
        RequestBody::Unsubscribe(_) => MessageType::UnsubscribeRequest,
    };
    let invalid = |code| EncodeError::InvalidMessage { message_type, code };
    check_version(request.version, message_type)?;
    match &request.body {
        RequestBody::Negotiate(offer) => {
            if offer.min_version == 0 || offer.min_version > offer.max_version {
                return Err(invalid(ErrorCode::InvalidField));
            }
        }
        RequestBody::Ping(ping) => check_ping(ping, message_type)?,
        RequestBody::GetPortStats | RequestBody::Subscribe(_) | RequestBody::Unsubscribe(_) => {}
    }
    let header = header(
        request.version,
        message_type,
        request_len(request),
        request.transaction_id,
    );
    write(header, out, |writer| match &request.body {
        RequestBody::Negotiate(offer) => {
            writer.u16(offer.min_version);
            writer.u16(offer.max_version);
            writer.u32(offer.features);
        }
        RequestBody::Ping(ping) => write_ping(writer, ping),
        RequestBody::GetPortStats => {}
        RequestBody::Subscribe(events) | RequestBody::Unsubscribe(events) => {
            write_subscription(writer, *events);
        }
    })
}

/// Encodes a host → guest response into `out`; returns the bytes written.
///
/// # Errors
///
/// [`EncodeError::BufferTooSmall`] if `out` is shorter than [`response_len`];
/// [`EncodeError::InvalidMessage`] for an unsupported header version, ping data longer than
/// [`MAX_PING_DATA`], a negotiated version the host does not support, features it does not
/// grant, or an error response with an invalid version range or an `offset` of
/// [`NO_OFFSET`] given explicitly.
pub fn encode_response(response: &Response<'_>, out: &mut [u8]) -> Result<usize, EncodeError> {
    if let ResponseBody::Ping(ping) = &response.body {
        return encode_ping_response(response.version, response.transaction_id, ping, out);
    }
    let message_type = match response.body {
        ResponseBody::Negotiate(_) => MessageType::NegotiateResponse,
        ResponseBody::Ping(_) => MessageType::PingResponse,
        ResponseBody::PortStats(_) => MessageType::PortStatsResponse,
        ResponseBody::Subscribe(_) => MessageType::SubscribeResponse,
        ResponseBody::Unsubscribe(_) => MessageType::UnsubscribeResponse,
        ResponseBody::Error(_) => MessageType::ErrorResponse,
    };
    let invalid = |code| EncodeError::InvalidMessage { message_type, code };
    check_version(response.version, message_type)?;
    match &response.body {
        ResponseBody::Negotiate(chosen) => {
            if !is_supported_version(chosen.version) || chosen.features & !SUPPORTED_FEATURES != 0 {
                return Err(invalid(ErrorCode::InvalidField));
            }
        }
        // Encoded by `encode_ping_response` above.
        ResponseBody::Ping(_) => {}
        ResponseBody::Error(error) => {
            if error.min_version == 0
                || error.max_version < error.min_version
                || error.offset == Some(NO_OFFSET)
            {
                return Err(invalid(ErrorCode::InvalidField));
            }
        }
        ResponseBody::PortStats(_) | ResponseBody::Subscribe(_) | ResponseBody::Unsubscribe(_) => {}
    }
    let header = header(
        response.version,
        message_type,
        response_len(response),
        response.transaction_id,
    );
    write(header, out, |writer| match &response.body {
        ResponseBody::Negotiate(chosen) => {
            writer.u16(chosen.version);
            writer.u16(0);
            writer.u32(chosen.features);
        }
        ResponseBody::Ping(ping) => write_ping(writer, ping),
        ResponseBody::PortStats(stats) => write_port_stats(writer, stats),
        ResponseBody::Subscribe(answer) | ResponseBody::Unsubscribe(answer) => {
            write_subscription(writer, answer.subscribed);
        }
        ResponseBody::Error(error) => {
            writer.u32(error.code.to_u32());
            writer.u16(error.request_type);
            writer.u16(0);
            writer.u32(error.offset.unwrap_or(NO_OFFSET));
            writer.u16(error.min_version);
            writer.u16(error.max_version);
        }
    })
}

/// Encodes the `PingResponse` of header version `version` and transaction `transaction_id`
/// echoing `ping`; returns the bytes written. The same bytes as [`encode_response`] of a
/// [`ResponseBody::Ping`] (which calls this), without building the [`Response`] first: the
/// echo is the hot request of a VSP's packet path.
///
/// # Errors
///
/// [`EncodeError::BufferTooSmall`] if `out` is shorter than the response;
/// [`EncodeError::InvalidMessage`] for an unsupported header version or ping data longer
/// than [`MAX_PING_DATA`].
#[inline]
pub fn encode_ping_response(
    version: u16,
    transaction_id: u64,
    ping: &Ping<'_>,
    out: &mut [u8],
) -> Result<usize, EncodeError> {
    let message_type = MessageType::PingResponse;
    check_version(version, message_type)?;
    check_ping(ping, message_type)?;
    let length = HEADER_LEN.saturating_add(ping_body_len(ping));
    write(
        header(version, message_type, length, transaction_id),
        out,
        |writer| write_ping(writer, ping),
    )
}

/// Encodes an `ErrorResponse` with `code` answering a request of raw type `request_type` and
/// transaction `transaction_id`, naming no offset and the host's supported version range.
///
/// # Errors
///
/// [`EncodeError::BufferTooSmall`] if `out` is shorter than [`ERROR_LEN`].
pub fn encode_error(
    code: ErrorCode,
    request_type: u16,
    transaction_id: u64,
    out: &mut [u8],
) -> Result<usize, EncodeError> {
    encode_error_response(
        transaction_id,
        error_response(code, request_type, None),
        out,
    )
}

/// Encodes the `ErrorResponse` answering a request the parser rejected: its code, offset,
/// transaction id and type (0 and 0 when the header was unreadable).
///
/// # Errors
///
/// [`EncodeError::BufferTooSmall`] if `out` is shorter than [`ERROR_LEN`].
pub fn encode_protocol_error(error: &ProtocolError, out: &mut [u8]) -> Result<usize, EncodeError> {
    // Parser offsets never exceed `MAX_MESSAGE_LEN`, which fits a `u32` below `NO_OFFSET`.
    let offset = u32::try_from(error.offset)
        .ok()
        .filter(|offset| *offset != NO_OFFSET);
    encode_error_response(
        error.transaction_id(),
        error_response(error.code, error.request_type(), offset),
        out,
    )
}

const fn error_response(code: ErrorCode, request_type: u16, offset: Option<u32>) -> ErrorResponse {
    ErrorResponse {
        code,
        request_type,
        offset,
        min_version: MIN_SUPPORTED_VERSION,
        max_version: MAX_SUPPORTED_VERSION,
    }
}

fn encode_error_response(
    transaction_id: u64,
    error: ErrorResponse,
    out: &mut [u8],
) -> Result<usize, EncodeError> {
    let response = Response {
        version: FROZEN_VERSION,
        transaction_id,
        body: ResponseBody::Error(error),
    };
    encode_response(&response, out)
}

/// Encodes a host → guest notification into `out`; returns the bytes written.
///
/// # Errors
///
/// [`EncodeError::BufferTooSmall`] if `out` is shorter than [`notification_len`];
/// [`EncodeError::InvalidMessage`] for an unsupported header version.
pub fn encode_notification(
    notification: &Notification,
    out: &mut [u8],
) -> Result<usize, EncodeError> {
    let message_type = MessageType::Notification;
    check_version(notification.version, message_type)?;
    let header = header(
        notification.version,
        message_type,
        notification_len(notification),
        notification.sequence,
    );
    write(header, out, |writer| {
        writer.u32(notification.body.event().bit());
        writer.u32(0);
        match &notification.body {
            NotificationBody::PortStats(stats) => write_port_stats(writer, stats),
            NotificationBody::Heartbeat(uptime) => writer.u64(uptime.0),
        }
    })
}

/// Encodes the guest's acknowledgement of a notification into `out`; returns the bytes
/// written.
///
/// # Errors
///
/// [`EncodeError::BufferTooSmall`] if `out` is shorter than [`ACK_LEN`];
/// [`EncodeError::InvalidMessage`] for an unsupported header version.
pub fn encode_ack(ack: &NotificationAck, out: &mut [u8]) -> Result<usize, EncodeError> {
    let message_type = MessageType::NotificationAck;
    check_version(ack.version, message_type)?;
    let header = header(ack.version, message_type, ACK_LEN, ack.sequence);
    write(header, out, |writer| {
        writer.u64(ack.sequence);
        writer.u32(ack.status.to_u32());
        writer.u32(0);
    })
}

#[inline]
fn check_version(version: u16, message_type: MessageType) -> Result<(), EncodeError> {
    if is_supported_version(version) {
        Ok(())
    } else {
        Err(EncodeError::InvalidMessage {
            message_type,
            code: ErrorCode::UnsupportedVersion,
        })
    }
}

#[inline]
fn check_ping(ping: &Ping<'_>, message_type: MessageType) -> Result<(), EncodeError> {
    if ping.data.len() <= MAX_PING_DATA {
        Ok(())
    } else {
        Err(EncodeError::InvalidMessage {
            message_type,
            code: ErrorCode::Oversized,
        })
    }
}

/// A header for a message of `length` bytes; `length` is at most `MAX_MESSAGE_LEN` once the
/// checks above passed, so the conversion cannot saturate for a message that gets written.
#[inline]
fn header(version: u16, message_type: MessageType, length: usize, transaction_id: u64) -> Header {
    Header {
        version,
        message_type: message_type.to_u16(),
        length: u32::try_from(length).unwrap_or(u32::MAX),
        transaction_id,
    }
}

/// Checks `out` holds the whole message, then writes the header and the body.
#[inline]
fn write(
    header: Header,
    out: &mut [u8],
    body: impl FnOnce(&mut Writer<'_>),
) -> Result<usize, EncodeError> {
    let needed = usize::try_from(header.length).unwrap_or(usize::MAX);
    let too_small = EncodeError::BufferTooSmall {
        needed,
        available: out.len(),
    };
    let Some((head, rest)) = out
        .get_mut(..needed)
        .and_then(|message| message.split_first_chunk_mut::<HEADER_LEN>())
    else {
        return Err(too_small);
    };
    *head = header.to_bytes();
    let mut writer = Writer::new(rest);
    body(&mut writer);
    match writer.finish() {
        // Only a length helper disagreeing with its writer makes the body not fill the rest.
        Some(written) if written == needed.wrapping_sub(HEADER_LEN) => Ok(needed),
        _ => Err(too_small),
    }
}

#[inline]
fn write_ping(writer: &mut Writer<'_>, ping: &Ping<'_>) {
    writer.u64(ping.nonce);
    writer.bytes(ping.data);
}

fn write_subscription(writer: &mut Writer<'_>, events: EventSet) {
    writer.u32(events.bits());
    writer.u32(0);
}

fn write_port_stats(writer: &mut Writer<'_>, stats: &PortStats) {
    writer.u64(stats.rx_frames);
    writer.u64(stats.rx_bytes);
    writer.u64(stats.tx_frames);
    writer.u64(stats.tx_bytes);
    writer.u64(stats.dropped_frames);
    writer.u64(stats.dropped_bytes);
    writer.u32(stats.flows_active);
    writer.u32(0);
    writer.u64(stats.flows_evicted);
}
