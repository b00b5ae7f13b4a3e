//! Round trips of every protocol message, truncation of every encoded message at every
//! length, and encoding into buffers that are too small.

use ferry_core::platform::Ticks;
use ferry_core::protocol::{
    AckStatus, EncodeError, ErrorCode, ErrorResponse, EventSet, HEADER_LEN, MAX_MESSAGE_LEN,
    MAX_PING_DATA, MAX_SUPPORTED_VERSION, MIN_SUPPORTED_VERSION, NegotiateRequest,
    NegotiateResponse, Notification, NotificationAck, NotificationBody, PROTOCOL_VERSION_1, Ping,
    PortStats, ProtocolError, Request, RequestBody, Response, ResponseBody, SUPPORTED_FEATURES,
    SubscriptionResponse, ack_len, encode_ack, encode_notification, encode_request,
    encode_response, notification_len, parse_ack, parse_notification, parse_request,
    parse_response, request_len, response_len,
};
use proptest::prelude::*;

fn event_set() -> impl Strategy<Value = EventSet> {
    (0..=EventSet::ALL.bits()).prop_map(|bits| EventSet::from_bits(bits).unwrap())
}

fn ping_data() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..=64),
        prop::collection::vec(any::<u8>(), 0..=MAX_PING_DATA),
        prop::collection::vec(any::<u8>(), MAX_PING_DATA - 8..=MAX_PING_DATA),
    ]
}

fn port_stats() -> impl Strategy<Value = PortStats> {
    (any::<[u64; 7]>(), any::<u32>()).prop_map(|(counters, flows_active)| PortStats {
        rx_frames: counters[0],
        rx_bytes: counters[1],
        tx_frames: counters[2],
        tx_bytes: counters[3],
        dropped_frames: counters[4],
        dropped_bytes: counters[5],
        flows_active,
        flows_evicted: counters[6],
    })
}

/// A request body description that owns its ping data.
#[derive(Debug, Clone)]
enum OwnedRequest {
    Negotiate(NegotiateRequest),
    Ping(u64, Vec<u8>),
    GetPortStats,
    Subscribe(EventSet),
    Unsubscribe(EventSet),
}

impl OwnedRequest {
    fn borrow(&self) -> RequestBody<'_> {
        match self {
            Self::Negotiate(offer) => RequestBody::Negotiate(*offer),
            Self::Ping(nonce, data) => RequestBody::Ping(Ping {
                nonce: *nonce,
                data,
            }),
            Self::GetPortStats => RequestBody::GetPortStats,
            Self::Subscribe(events) => RequestBody::Subscribe(*events),
            Self::Unsubscribe(events) => RequestBody::Unsubscribe(*events),
        }
    }
}

fn request_body() -> impl Strategy<Value = OwnedRequest> {
    prop_oneof![
        (1..=u16::MAX, any::<u16>(), any::<u32>()).prop_map(|(min, span, features)| {
            OwnedRequest::Negotiate(NegotiateRequest {
                min_version: min,
                max_version: min.saturating_add(span),
                features,
            })
        }),
        (any::<u64>(), ping_data()).prop_map(|(nonce, data)| OwnedRequest::Ping(nonce, data)),
        Just(OwnedRequest::GetPortStats),
        event_set().prop_map(OwnedRequest::Subscribe),
        event_set().prop_map(OwnedRequest::Unsubscribe),
    ]
}

#[derive(Debug, Clone)]
enum OwnedResponse {
    Negotiate(NegotiateResponse),
    Ping(u64, Vec<u8>),
    PortStats(PortStats),
    Subscribe(EventSet),
    Unsubscribe(EventSet),
    Error(ErrorResponse),
}

impl OwnedResponse {
    fn borrow(&self) -> ResponseBody<'_> {
        match self {
            Self::Negotiate(chosen) => ResponseBody::Negotiate(*chosen),
            Self::Ping(nonce, data) => ResponseBody::Ping(Ping {
                nonce: *nonce,
                data,
            }),
            Self::PortStats(stats) => ResponseBody::PortStats(*stats),
            Self::Subscribe(subscribed) => ResponseBody::Subscribe(SubscriptionResponse {
                subscribed: *subscribed,
            }),
            Self::Unsubscribe(subscribed) => ResponseBody::Unsubscribe(SubscriptionResponse {
                subscribed: *subscribed,
            }),
            Self::Error(error) => ResponseBody::Error(*error),
        }
    }
}

fn response_body() -> impl Strategy<Value = OwnedResponse> {
    prop_oneof![
        (MIN_SUPPORTED_VERSION..=MAX_SUPPORTED_VERSION, any::<u32>()).prop_map(
            |(version, features)| OwnedResponse::Negotiate(NegotiateResponse {
                version,
                features: features & SUPPORTED_FEATURES,
            })
        ),
        (any::<u64>(), ping_data()).prop_map(|(nonce, data)| OwnedResponse::Ping(nonce, data)),
        port_stats().prop_map(OwnedResponse::PortStats),
        event_set().prop_map(OwnedResponse::Subscribe),
        event_set().prop_map(OwnedResponse::Unsubscribe),
        (
            prop::sample::select(ErrorCode::ALL.to_vec()),
            any::<u16>(),
            prop::option::of(0..u32::MAX),
            1..=u16::MAX,
            any::<u16>(),
        )
            .prop_map(|(code, request_type, offset, min, span)| {
                OwnedResponse::Error(ErrorResponse {
                    code,
                    request_type,
                    offset,
                    min_version: min,
                    max_version: min.saturating_add(span),
                })
            }),
    ]
}

fn notification() -> impl Strategy<Value = Notification> {
    let body = prop_oneof![
        port_stats().prop_map(NotificationBody::PortStats),
        any::<u64>().prop_map(|uptime| NotificationBody::Heartbeat(Ticks(uptime))),
    ];
    (any::<u64>(), body).prop_map(|(sequence, body)| Notification {
        version: PROTOCOL_VERSION_1,
        sequence,
        body,
    })
}

fn ack() -> impl Strategy<Value = NotificationAck> {
    let status = prop::sample::select(vec![
        AckStatus::Handled,
        AckStatus::Ignored,
        AckStatus::Malformed,
    ]);
    (any::<u64>(), status).prop_map(|(sequence, status)| NotificationAck {
        version: PROTOCOL_VERSION_1,
        sequence,
        status,
    })
}

/// Every strict prefix of `bytes` and `bytes` plus one byte is rejected: `Truncated` below the
/// header, `LengthMismatch` (offset 4) otherwise, `Oversized` past the maximum.
fn assert_every_other_length_rejected(
    bytes: &[u8],
    parse: impl Fn(&[u8]) -> Result<(), ProtocolError>,
) {
    for cut in 0..bytes.len() {
        let error = parse(&bytes[..cut]).expect_err("a truncated message parsed");
        if cut < HEADER_LEN {
            assert_eq!(
                (error.code, error.offset, error.header),
                (ErrorCode::Truncated, cut, None)
            );
        } else {
            assert_eq!((error.code, error.offset), (ErrorCode::LengthMismatch, 4));
            assert!(error.header.is_some());
        }
    }
    let mut longer = bytes.to_vec();
    longer.push(0);
    let error = parse(&longer).expect_err("a message with a trailing byte parsed");
    if longer.len() > MAX_MESSAGE_LEN {
        assert_eq!(
            (error.code, error.offset),
            (ErrorCode::Oversized, MAX_MESSAGE_LEN)
        );
    } else {
        assert_eq!((error.code, error.offset), (ErrorCode::LengthMismatch, 4));
    }
}

/// Encoding into a buffer one byte short fails with the exact sizes and writes nothing.
fn assert_too_small_is_refused(
    needed: usize,
    encode: impl Fn(&mut [u8]) -> Result<usize, EncodeError>,
) {
    for available in [0, HEADER_LEN - 1, HEADER_LEN, needed - 1] {
        let available = available.min(needed - 1);
        let mut short = vec![0xA5; available];
        assert_eq!(
            encode(&mut short),
            Err(EncodeError::BufferTooSmall { needed, available })
        );
        assert!(
            short.iter().all(|byte| *byte == 0xA5),
            "a refused encode wrote bytes"
        );
    }
}

proptest! {
    #[test]
    fn requests_round_trip(transaction_id in any::<u64>(), body in request_body()) {
        let request = Request { version: PROTOCOL_VERSION_1, transaction_id, body: body.borrow() };
        let mut out = vec![0; MAX_MESSAGE_LEN];
        let written = encode_request(&request, &mut out).unwrap();
        prop_assert_eq!(written, request_len(&request));
        let bytes = &out[..written];
        prop_assert_eq!(parse_request(bytes), Ok(request));
        assert_every_other_length_rejected(bytes, |bytes| parse_request(bytes).map(drop));
        assert_too_small_is_refused(written, |out| encode_request(&request, out));
    }

    #[test]
    fn responses_round_trip(transaction_id in any::<u64>(), body in response_body()) {
        let response =
            Response { version: PROTOCOL_VERSION_1, transaction_id, body: body.borrow() };
        let mut out = vec![0; MAX_MESSAGE_LEN];
        let written = encode_response(&response, &mut out).unwrap();
        prop_assert_eq!(written, response_len(&response));
        let bytes = &out[..written];
        prop_assert_eq!(parse_response(bytes), Ok(response));
        assert_every_other_length_rejected(bytes, |bytes| parse_response(bytes).map(drop));
        assert_too_small_is_refused(written, |out| encode_response(&response, out));
    }

    #[test]
    fn notifications_round_trip(notification in notification()) {
        let mut out = vec![0; MAX_MESSAGE_LEN];
        let written = encode_notification(&notification, &mut out).unwrap();
        prop_assert_eq!(written, notification_len(&notification));
        let bytes = &out[..written];
        prop_assert_eq!(parse_notification(bytes), Ok(notification));
        assert_every_other_length_rejected(bytes, |bytes| parse_notification(bytes).map(drop));
        assert_too_small_is_refused(written, |out| encode_notification(&notification, out));
    }

    #[test]
    fn acks_round_trip(ack in ack()) {
        let mut out = vec![0; MAX_MESSAGE_LEN];
        let written = encode_ack(&ack, &mut out).unwrap();
        prop_assert_eq!(written, ack_len(&ack));
        let bytes = &out[..written];
        prop_assert_eq!(parse_ack(bytes), Ok(ack));
        assert_every_other_length_rejected(bytes, |bytes| parse_ack(bytes).map(drop));
        assert_too_small_is_refused(written, |out| encode_ack(&ack, out));
    }
}

#[test]
fn ping_data_borrows_the_packet() {
    let data = [7_u8; 100];
    let request = Request {
        version: PROTOCOL_VERSION_1,
        transaction_id: 1,
        body: RequestBody::Ping(Ping {
            nonce: 2,
            data: &data,
        }),
    };
    let mut out = vec![0; MAX_MESSAGE_LEN];
    let written = encode_request(&request, &mut out).unwrap();
    let packet = &out[..written];
    let Ok(Request {
        body: RequestBody::Ping(ping),
        ..
    }) = parse_request(packet)
    else {
        panic!("ping did not parse");
    };
    assert_eq!(ping.data.as_ptr(), packet[HEADER_LEN + 8..].as_ptr());
    assert_eq!(ping.data.len(), data.len());
}

#[test]
fn the_largest_ping_is_exactly_the_largest_message() {
    let data = vec![0xEE; MAX_PING_DATA];
    let request = Request {
        version: PROTOCOL_VERSION_1,
        transaction_id: 9,
        body: RequestBody::Ping(Ping {
            nonce: 0,
            data: &data,
        }),
    };
    assert_eq!(request_len(&request), MAX_MESSAGE_LEN);
    let mut out = vec![0; MAX_MESSAGE_LEN];
    assert_eq!(encode_request(&request, &mut out), Ok(MAX_MESSAGE_LEN));
    assert_eq!(parse_request(&out), Ok(request));
}
