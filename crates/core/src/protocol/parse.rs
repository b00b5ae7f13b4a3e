//! The hostile-input parser: one function per direction, each borrowing the packet.
//!
//! Every check happens in a fixed order, and the first failing one decides the error:
//!
//! 1. packet longer than [`MAX_MESSAGE_LEN`] → `Oversized` (offset `MAX_MESSAGE_LEN`);
//! 2. packet shorter than the header → `Truncated` (offset = packet length);
//! 3. header `length` above `MAX_MESSAGE_LEN` → `Oversized` (offset 4);
//! 4. header `length` ≠ packet length → `LengthMismatch` (offset 4);
//! 5. header `version` unsupported → `UnsupportedVersion` (offset 0);
//! 6. `message_type` undefined → `UnknownType`; defined but not of the expected direction →
//!    `WrongDirection` (offset 2);
//! 7. body length wrong for the type → `InvalidBodyLength` (offset of the first missing or
//!    excess byte);
//! 8. field values, in wire order → `InvalidField` (offset of the field; `max_version` below
//!    `min_version` is reported at `max_version`).

use crate::platform::Ticks;

use super::error::{EchoedHeader, ErrorCode, ProtocolError};
use super::header::{
    Direction, HEADER_LEN, Header, LENGTH_OFFSET, MAX_MESSAGE_LEN, MESSAGE_TYPE_OFFSET,
    MessageType, PING_FIXED_LEN, VERSION_OFFSET, is_supported_version,
};
use super::layout::{
    ACK_BODY_LEN, ERROR_BODY_LEN, GET_PORT_STATS_BODY_LEN, HEARTBEAT_BODY_LEN,
    NEGOTIATE_REQUEST_BODY_LEN, NEGOTIATE_RESPONSE_BODY_LEN, NO_OFFSET, NOTIFICATION_FIXED_LEN,
    PORT_STATS_BODY_LEN, SUBSCRIPTION_BODY_LEN,
};
use super::message::{
    AckStatus, ErrorResponse, Event, EventSet, NegotiateRequest, NegotiateResponse, Notification,
    NotificationAck, NotificationBody, Ping, PortStats, Request, RequestBody, Response,
    ResponseBody, SubscriptionResponse,
};
use super::negotiate::SUPPORTED_FEATURES;
use super::wire::Reader;

/// Parses a guest → host request packet.
///
/// # Errors
///
/// A [`ProtocolError`] naming the first problem (see the module documentation for the order);
/// the service answers it with an `ErrorResponse`.
pub fn parse_request(bytes: &[u8]) -> Result<Request<'_>, ProtocolError> {
    let (header, message_type, mut body) = parse_frame(bytes, Direction::Request)?;
    let request = match message_type {
        MessageType::NegotiateRequest => body.negotiate_request().map(RequestBody::Negotiate),
        MessageType::PingRequest => body.ping().map(RequestBody::Ping),
        MessageType::GetPortStatsRequest => body
            .expect_len(GET_PORT_STATS_BODY_LEN)
            .map(|()| RequestBody::GetPortStats),
        MessageType::SubscribeRequest => body.subscription().map(RequestBody::Subscribe),
        MessageType::UnsubscribeRequest => body.subscription().map(RequestBody::Unsubscribe),
        _ => Err(body.error(ErrorCode::WrongDirection, MESSAGE_TYPE_OFFSET)),
    }?;
    Ok(Request {
        version: header.version,
        transaction_id: header.transaction_id,
        body: request,
    })
}

/// Parses a host → guest response (a request's completion payload); the guest side.
///
/// # Errors
///
/// A [`ProtocolError`] naming the first problem.
pub fn parse_response(bytes: &[u8]) -> Result<Response<'_>, ProtocolError> {
    let (header, message_type, mut body) = parse_frame(bytes, Direction::Response)?;
    let subscription = |subscribed| SubscriptionResponse { subscribed };
    let response = match message_type {
        MessageType::NegotiateResponse => body.negotiate_response().map(ResponseBody::Negotiate),
        MessageType::PingResponse => body.ping().map(ResponseBody::Ping),
        MessageType::PortStatsResponse => body.port_stats_response().map(ResponseBody::PortStats),
        MessageType::SubscribeResponse => body
            .subscription()
            .map(|events| ResponseBody::Subscribe(subscription(events))),
        MessageType::UnsubscribeResponse => body
            .subscription()
            .map(|events| ResponseBody::Unsubscribe(subscription(events))),
        MessageType::ErrorResponse => body.error_response().map(ResponseBody::Error),
        _ => Err(body.error(ErrorCode::WrongDirection, MESSAGE_TYPE_OFFSET)),
    }?;
    Ok(Response {
        version: header.version,
        transaction_id: header.transaction_id,
        body: response,
    })
}

/// Parses a host → guest notification; the guest side.
///
/// # Errors
///
/// A [`ProtocolError`] naming the first problem.
pub fn parse_notification(bytes: &[u8]) -> Result<Notification, ProtocolError> {
    let (header, _, mut body) = parse_frame(bytes, Direction::Notification)?;
    let event_offset = body.offset();
    let raw_event = body.u32()?;
    let Some(event) = Event::from_u32(raw_event) else {
        return Err(body.invalid_field(event_offset));
    };
    let data_len = match event {
        Event::PortStats => PORT_STATS_BODY_LEN,
        Event::Heartbeat => HEARTBEAT_BODY_LEN,
    };
    body.expect_len(NOTIFICATION_FIXED_LEN.saturating_add(data_len))?;
    body.reserved_u32()?;
    let notification = match event {
        Event::PortStats => NotificationBody::PortStats(body.port_stats()?),
        Event::Heartbeat => NotificationBody::Heartbeat(Ticks(body.u64()?)),
    };
    Ok(Notification {
        version: header.version,
        sequence: header.transaction_id,
        body: notification,
    })
}

/// Parses the guest's completion payload for a notification. The caller must still check that
/// [`NotificationAck::sequence`] is the sequence of the transaction being completed.
///
/// # Errors
///
/// A [`ProtocolError`] naming the first problem; the body's `sequence` differing from the
/// header's transaction id is `InvalidField` at the body field.
pub fn parse_ack(bytes: &[u8]) -> Result<NotificationAck, ProtocolError> {
    let (header, _, mut body) = parse_frame(bytes, Direction::Ack)?;
    body.expect_len(ACK_BODY_LEN)?;
    let sequence_offset = body.offset();
    let sequence = body.u64()?;
    if sequence != header.transaction_id {
        return Err(body.invalid_field(sequence_offset));
    }
    let status_offset = body.offset();
    let raw_status = body.u32()?;
    let Some(status) = AckStatus::from_u32(raw_status) else {
        return Err(body.invalid_field(status_offset));
    };
    body.reserved_u32()?;
    Ok(NotificationAck {
        version: header.version,
        sequence,
        status,
    })
}

/// Checks the header (steps 1–6) and returns a reader over the body.
fn parse_frame(
    bytes: &[u8],
    expected: Direction,
) -> Result<(Header, MessageType, BodyReader<'_>), ProtocolError> {
    let fail = |code, offset, header: Option<Header>| ProtocolError {
        code,
        offset,
        header: header.map(|header| EchoedHeader {
            transaction_id: header.transaction_id,
            message_type: header.message_type,
        }),
    };
    if bytes.len() > MAX_MESSAGE_LEN {
        return Err(fail(
            ErrorCode::Oversized,
            MAX_MESSAGE_LEN,
            Header::read(bytes),
        ));
    }
    let Some(header) = Header::read(bytes) else {
        return Err(fail(ErrorCode::Truncated, bytes.len(), None));
    };
    let length = usize::try_from(header.length).unwrap_or(usize::MAX);
    if length > MAX_MESSAGE_LEN {
        return Err(fail(ErrorCode::Oversized, LENGTH_OFFSET, Some(header)));
    }
    if length != bytes.len() {
        return Err(fail(ErrorCode::LengthMismatch, LENGTH_OFFSET, Some(header)));
    }
    if !is_supported_version(header.version) {
        return Err(fail(
            ErrorCode::UnsupportedVersion,
            VERSION_OFFSET,
            Some(header),
        ));
    }
    let Some(message_type) = MessageType::from_u16(header.message_type) else {
        return Err(fail(
            ErrorCode::UnknownType,
            MESSAGE_TYPE_OFFSET,
            Some(header),
        ));
    };
    if message_type.direction() != expected {
        return Err(fail(
            ErrorCode::WrongDirection,
            MESSAGE_TYPE_OFFSET,
            Some(header),
        ));
    }
    let body = bytes.get(HEADER_LEN..).unwrap_or_default();
    let echo = EchoedHeader {
        transaction_id: header.transaction_id,
        message_type: header.message_type,
    };
    Ok((
        header,
        message_type,
        BodyReader {
            reader: Reader::new(body, HEADER_LEN),
            body_len: body.len(),
            echo,
        },
    ))
}

/// Reads a message body, turning every failure into a [`ProtocolError`] that echoes the
/// header.
struct BodyReader<'a> {
    reader: Reader<'a>,
    body_len: usize,
    echo: EchoedHeader,
}

impl<'a> BodyReader<'a> {
    fn error(&self, code: ErrorCode, offset: usize) -> ProtocolError {
        ProtocolError {
            code,
            offset,
            header: Some(self.echo),
        }
    }

    fn invalid_field(&self, offset: usize) -> ProtocolError {
        self.error(ErrorCode::InvalidField, offset)
    }

    /// The absolute offset of the next field.
    fn offset(&self) -> usize {
        self.reader.offset()
    }

    /// Checks the whole body is exactly `len` bytes; on failure the offset is the first byte
    /// missing or in excess.
    fn expect_len(&self, len: usize) -> Result<(), ProtocolError> {
        if self.body_len == len {
            Ok(())
        } else {
            let offset = HEADER_LEN.saturating_add(self.body_len.min(len));
            Err(self.error(ErrorCode::InvalidBodyLength, offset))
        }
    }

    /// A read that found too few bytes: the body is shorter than its type needs, and the
    /// first missing byte is the one after the packet's end.
    fn short(&self) -> ProtocolError {
        self.error(
            ErrorCode::InvalidBodyLength,
            HEADER_LEN.saturating_add(self.body_len),
        )
    }

    fn u16(&mut self) -> Result<u16, ProtocolError> {
        self.reader.u16().ok_or_else(|| self.short())
    }

    fn u32(&mut self) -> Result<u32, ProtocolError> {
        self.reader.u32().ok_or_else(|| self.short())
    }

    fn u64(&mut self) -> Result<u64, ProtocolError> {
        self.reader.u64().ok_or_else(|| self.short())
    }

    fn reserved_u16(&mut self) -> Result<(), ProtocolError> {
        let offset = self.offset();
        match self.u16()? {
            0 => Ok(()),
            _ => Err(self.invalid_field(offset)),
        }
    }

    fn reserved_u32(&mut self) -> Result<(), ProtocolError> {
        let offset = self.offset();
        match self.u32()? {
            0 => Ok(()),
            _ => Err(self.invalid_field(offset)),
        }
    }

    fn negotiate_request(&mut self) -> Result<NegotiateRequest, ProtocolError> {
        self.expect_len(NEGOTIATE_REQUEST_BODY_LEN)?;
        let min_offset = self.offset();
        let min_version = self.u16()?;
        let max_offset = self.offset();
        let max_version = self.u16()?;
        let features = self.u32()?;
        if min_version == 0 {
            return Err(self.invalid_field(min_offset));
        }
        if max_version < min_version {
            return Err(self.invalid_field(max_offset));
        }
        Ok(NegotiateRequest {
            min_version,
            max_version,
            features,
        })
    }

    fn negotiate_response(&mut self) -> Result<NegotiateResponse, ProtocolError> {
        self.expect_len(NEGOTIATE_RESPONSE_BODY_LEN)?;
        let version_offset = self.offset();
        let version = self.u16()?;
        if !is_supported_version(version) {
            return Err(self.invalid_field(version_offset));
        }
        self.reserved_u16()?;
        let features_offset = self.offset();
        let features = self.u32()?;
        if features & !SUPPORTED_FEATURES != 0 {
            return Err(self.invalid_field(features_offset));
        }
        Ok(NegotiateResponse { version, features })
    }

    fn port_stats_response(&mut self) -> Result<PortStats, ProtocolError> {
        self.expect_len(PORT_STATS_BODY_LEN)?;
        self.port_stats()
    }

    /// A ping body: the nonce, then every remaining byte as data (the frame check already
    /// bounds it by `MAX_PING_DATA`).
    fn ping(&mut self) -> Result<Ping<'a>, ProtocolError> {
        if self.reader.remaining() < PING_FIXED_LEN {
            return Err(self.short());
        }
        let nonce = self.u64()?;
        let data = self.reader.take_rest();
        Ok(Ping { nonce, data })
    }

    /// A subscription body: `events` (known bits only) and a reserved word.
    fn subscription(&mut self) -> Result<EventSet, ProtocolError> {
        self.expect_len(SUBSCRIPTION_BODY_LEN)?;
        let events_offset = self.offset();
        let bits = self.u32()?;
        let events = EventSet::from_bits(bits).ok_or_else(|| self.invalid_field(events_offset))?;
        self.reserved_u32()?;
        Ok(events)
    }

    /// The 64-byte statistics block (its length already checked by the caller).
    fn port_stats(&mut self) -> Result<PortStats, ProtocolError> {
        let rx_frames = self.u64()?;
        let rx_bytes = self.u64()?;
        let tx_frames = self.u64()?;
        let tx_bytes = self.u64()?;
        let dropped_frames = self.u64()?;
        let dropped_bytes = self.u64()?;
        let flows_active = self.u32()?;
        self.reserved_u32()?;
        let flows_evicted = self.u64()?;
        Ok(PortStats {
            rx_frames,
            rx_bytes,
            tx_frames,
            tx_bytes,
            dropped_frames,
            dropped_bytes,
            flows_active,
            flows_evicted,
        })
    }

    fn error_response(&mut self) -> Result<ErrorResponse, ProtocolError> {
        self.expect_len(ERROR_BODY_LEN)?;
        let code_offset = self.offset();
        let raw_code = self.u32()?;
        let Some(code) = ErrorCode::from_u32(raw_code) else {
            return Err(self.invalid_field(code_offset));
        };
        let request_type = self.u16()?;
        self.reserved_u16()?;
        let raw_offset = self.u32()?;
        let min_offset = self.offset();
        let min_version = self.u16()?;
        if min_version == 0 {
            return Err(self.invalid_field(min_offset));
        }
        let max_offset = self.offset();
        let max_version = self.u16()?;
        if max_version < min_version {
            return Err(self.invalid_field(max_offset));
        }
        Ok(ErrorResponse {
            code,
            request_type,
            offset: (raw_offset != NO_OFFSET).then_some(raw_offset),
            min_version,
            max_version,
        })
    }
}
