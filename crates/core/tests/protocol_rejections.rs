//! The parser's rejections: one case per parser error code with its offset, wrong-direction
//! types for every parser, the service's codes through an error response, and arbitrary bytes.

use ferry_core::protocol::{
    EchoedHeader, EncodeError, ErrorCode, ErrorResponse, HEADER_LEN, MAX_MESSAGE_LEN,
    MAX_SUPPORTED_VERSION, MIN_SUPPORTED_VERSION, MessageType, ProtocolError, Response,
    ResponseBody, encode_ack, encode_error, encode_notification, encode_protocol_error,
    encode_request, encode_response, parse_ack, parse_notification, parse_request, parse_response,
};
use proptest::prelude::*;

/// Any parser, its result reduced to success or the error.
type Parser = fn(&[u8]) -> Result<(), ProtocolError>;

const TRANSACTION: u64 = 0x1122_3344_5566_7788;

/// A message: header fields as given, `length` = header + body.
fn message(version: u16, message_type: u16, transaction_id: u64, body: &[u8]) -> Vec<u8> {
    let length = u32::try_from(HEADER_LEN + body.len()).unwrap();
    let mut bytes = Vec::new();
    bytes.extend_from_slice(&version.to_le_bytes());
    bytes.extend_from_slice(&message_type.to_le_bytes());
    bytes.extend_from_slice(&length.to_le_bytes());
    bytes.extend_from_slice(&transaction_id.to_le_bytes());
    bytes.extend_from_slice(body);
    bytes
}

fn v1(message_type: MessageType, body: &[u8]) -> Vec<u8> {
    message(1, message_type.to_u16(), TRANSACTION, body)
}

fn le32(values: &[u32]) -> Vec<u8> {
    values
        .iter()
        .flat_map(|value| value.to_le_bytes())
        .collect()
}

/// Asserts `result` is the error `code` at `offset`, echoing the header of `bytes`.
fn assert_rejected<T: std::fmt::Debug>(
    result: Result<T, ProtocolError>,
    bytes: &[u8],
    code: ErrorCode,
    offset: usize,
) {
    let echoed = EchoedHeader {
        transaction_id: u64::from_le_bytes(bytes[8..16].try_into().unwrap()),
        message_type: u16::from_le_bytes(bytes[2..4].try_into().unwrap()),
    };
    assert_eq!(
        result.unwrap_err(),
        ProtocolError {
            code,
            offset,
            header: Some(echoed)
        }
    );
}

#[test]
fn truncated_header() {
    let valid = v1(MessageType::GetPortStatsRequest, &[]);
    for len in 0..HEADER_LEN {
        let error = parse_request(&valid[..len]).unwrap_err();
        assert_eq!(
            error,
            ProtocolError {
                code: ErrorCode::Truncated,
                offset: len,
                header: None
            }
        );
        assert_eq!((error.transaction_id(), error.request_type()), (0, 0));
    }
}

#[test]
fn oversized_packet_and_oversized_length_field() {
    let mut packet = v1(
        MessageType::PingRequest,
        &vec![0; MAX_MESSAGE_LEN + 1 - HEADER_LEN],
    );
    assert_rejected(
        parse_request(&packet),
        &packet,
        ErrorCode::Oversized,
        MAX_MESSAGE_LEN,
    );
    // A short packet whose header claims more than the maximum.
    packet.truncate(HEADER_LEN + 8);
    packet[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
    assert_rejected(parse_request(&packet), &packet, ErrorCode::Oversized, 4);
}

#[test]
fn length_field_disagreeing_with_packet_either_way() {
    let valid = v1(MessageType::SubscribeRequest, &le32(&[1, 0]));
    for claimed in [0_u32, 15, 16, 23, 25, 8216] {
        let mut packet = valid.clone();
        packet[4..8].copy_from_slice(&claimed.to_le_bytes());
        assert_rejected(
            parse_request(&packet),
            &packet,
            ErrorCode::LengthMismatch,
            4,
        );
    }
}

#[test]
fn unsupported_header_versions() {
    for version in [0, MAX_SUPPORTED_VERSION + 1, u16::MAX] {
        let packet = message(version, 0x0003, TRANSACTION, &[]);
        assert_rejected(
            parse_request(&packet),
            &packet,
            ErrorCode::UnsupportedVersion,
            0,
        );
    }
}

#[test]
fn unknown_message_types() {
    for message_type in [0x0000, 0x0006, 0x4002, 0x7FFF, 0x8006, 0xFFFE] {
        let packet = message(1, message_type, TRANSACTION, &[]);
        assert_rejected(parse_request(&packet), &packet, ErrorCode::UnknownType, 2);
        assert_rejected(parse_response(&packet), &packet, ErrorCode::UnknownType, 2);
        assert_rejected(
            parse_notification(&packet),
            &packet,
            ErrorCode::UnknownType,
            2,
        );
        assert_rejected(parse_ack(&packet), &packet, ErrorCode::UnknownType, 2);
    }
}

#[test]
fn each_parser_refuses_the_other_directions() {
    let all = [
        0x0001, 0x0002, 0x0003, 0x0004, 0x0005, 0x8001, 0x8002, 0x8003, 0x8004, 0x8005, 0x4001,
        0x4081, 0xFFFF,
    ];
    for raw in all {
        let message_type = MessageType::from_u16(raw).unwrap();
        assert_eq!(message_type.to_u16(), raw);
        // An empty body: the direction check comes before any body check.
        let packet = message(1, raw, TRANSACTION, &[]);
        let results = [
            parse_request(&packet).map(drop),
            parse_response(&packet).map(drop),
            parse_notification(&packet).map(drop),
            parse_ack(&packet).map(drop),
        ];
        let wrong_direction = results
            .iter()
            .filter(|result| {
                result.as_ref().is_err_and(|error| {
                    (error.code, error.offset) == (ErrorCode::WrongDirection, 2)
                })
            })
            .count();
        assert_eq!(wrong_direction, 3, "type {raw:#06x}: {results:?}");
    }
}

#[test]
fn body_length_wrong_for_the_type() {
    // Offset: the first byte missing or in excess.
    let cases: [(MessageType, usize, usize); 8] = [
        (MessageType::NegotiateRequest, 0, 16),
        (MessageType::NegotiateRequest, 9, 24),
        (MessageType::GetPortStatsRequest, 1, 16),
        (MessageType::PingRequest, 0, 16),
        (MessageType::PingRequest, 7, 23),
        (MessageType::SubscribeRequest, 4, 20),
        (MessageType::UnsubscribeRequest, 12, 24),
        (MessageType::SubscribeRequest, 7, 23),
    ];
    for (message_type, body_len, offset) in cases {
        let packet = v1(message_type, &vec![0; body_len]);
        assert_rejected(
            parse_request(&packet),
            &packet,
            ErrorCode::InvalidBodyLength,
            offset,
        );
    }
    let cases: [(Parser, MessageType, usize, usize); 6] = [
        (
            |b| parse_response(b).map(drop),
            MessageType::PortStatsResponse,
            63,
            79,
        ),
        (
            |b| parse_response(b).map(drop),
            MessageType::ErrorResponse,
            17,
            32,
        ),
        (
            |b| parse_ack(b).map(drop),
            MessageType::NotificationAck,
            8,
            24,
        ),
        (
            |b| parse_notification(b).map(drop),
            MessageType::Notification,
            2,
            18,
        ),
        // A heartbeat (event 2) carrying a port-stats-sized body.
        (
            |b| parse_notification(b).map(drop),
            MessageType::Notification,
            72,
            32,
        ),
        // A port-stats notification (event 1) carrying a heartbeat-sized body.
        (
            |b| parse_notification(b).map(drop),
            MessageType::Notification,
            16,
            32,
        ),
    ];
    for (index, (parse, message_type, body_len, offset)) in cases.into_iter().enumerate() {
        let mut body = vec![0; body_len];
        if message_type == MessageType::Notification && body_len >= 4 {
            let event: u32 = if index == 4 { 2 } else { 1 };
            body[..4].copy_from_slice(&event.to_le_bytes());
        }
        let packet = v1(message_type, &body);
        assert_rejected(
            parse(&packet),
            &packet,
            ErrorCode::InvalidBodyLength,
            offset,
        );
    }
}

#[test]
fn invalid_request_fields() {
    let subscribe =
        |events: u32, reserved: u32| v1(MessageType::SubscribeRequest, &le32(&[events, reserved]));
    let negotiate = |min: u16, max: u16| {
        let mut body = Vec::new();
        body.extend_from_slice(&min.to_le_bytes());
        body.extend_from_slice(&max.to_le_bytes());
        body.extend_from_slice(&0_u32.to_le_bytes());
        v1(MessageType::NegotiateRequest, &body)
    };
    let cases = [
        (subscribe(4, 0), 16),
        (subscribe(0x8000_0001, 0), 16),
        (subscribe(1, 1), 20),
        // Fields are checked in wire order: the events before the reserved word.
        (subscribe(4, 1), 16),
        (v1(MessageType::UnsubscribeRequest, &le32(&[3, 0xFF00])), 20),
        (negotiate(0, 1), 16),
        (negotiate(3, 2), 18),
    ];
    for (packet, offset) in cases {
        assert_rejected(
            parse_request(&packet),
            &packet,
            ErrorCode::InvalidField,
            offset,
        );
    }
}

#[test]
fn invalid_response_notification_and_ack_fields() {
    let mut stats = vec![0; 64];
    stats[52] = 1; // reserved word after flows_active
    let packet = v1(MessageType::PortStatsResponse, &stats);
    assert_rejected(
        parse_response(&packet),
        &packet,
        ErrorCode::InvalidField,
        68,
    );

    let negotiate = |version: u16, reserved: u16, features: u32| {
        let mut body = Vec::new();
        body.extend_from_slice(&version.to_le_bytes());
        body.extend_from_slice(&reserved.to_le_bytes());
        body.extend_from_slice(&features.to_le_bytes());
        v1(MessageType::NegotiateResponse, &body)
    };
    for (packet, offset) in [
        (negotiate(0, 0, 0), 16),
        (negotiate(MAX_SUPPORTED_VERSION + 1, 0, 0), 16),
        (negotiate(1, 1, 0), 18),
        (negotiate(1, 0, 0x8000_0000), 20),
        (v1(MessageType::SubscribeResponse, &le32(&[8, 0])), 16),
        (
            v1(MessageType::ErrorResponse, &le32(&[0, 0, 0, 0x0001_0001])),
            16,
        ),
        (
            v1(MessageType::ErrorResponse, &le32(&[99, 0, 0, 0x0001_0001])),
            16,
        ),
        (
            v1(
                MessageType::ErrorResponse,
                &le32(&[1, 0x0001_0000, 0, 0x0001_0001]),
            ),
            22,
        ),
        (
            v1(MessageType::ErrorResponse, &le32(&[1, 0, 0, 0x0001_0002])),
            30,
        ),
        (
            v1(MessageType::ErrorResponse, &le32(&[1, 0, 0, 0x0002_0000])),
            28,
        ),
    ] {
        assert_rejected(
            parse_response(&packet),
            &packet,
            ErrorCode::InvalidField,
            offset,
        );
    }

    for (body, offset) in [
        (le32(&[0, 0, 0, 0]), 16),
        (le32(&[3, 0, 0, 0]), 16),
        (le32(&[2, 5, 0, 0]), 20),
    ] {
        let packet = v1(MessageType::Notification, &body);
        assert_rejected(
            parse_notification(&packet),
            &packet,
            ErrorCode::InvalidField,
            offset,
        );
    }

    let ack = |sequence: u64, status: u32, reserved: u32| {
        let mut body = sequence.to_le_bytes().to_vec();
        body.extend(le32(&[status, reserved]));
        v1(MessageType::NotificationAck, &body)
    };
    for (packet, offset) in [
        (ack(TRANSACTION ^ 1, 0, 0), 16),
        (ack(TRANSACTION, 3, 0), 24),
        (ack(TRANSACTION, 0, 1), 28),
    ] {
        assert_rejected(parse_ack(&packet), &packet, ErrorCode::InvalidField, offset);
    }
}

#[test]
fn every_error_code_reaches_the_guest() {
    let mut out = vec![0; MAX_MESSAGE_LEN];
    for code in ErrorCode::ALL {
        assert_eq!(ErrorCode::from_u32(code.to_u32()), Some(code));
        let written = encode_error(code, 0x0004, TRANSACTION, &mut out).unwrap();
        let expected = Response {
            version: 1,
            transaction_id: TRANSACTION,
            body: ResponseBody::Error(ErrorResponse {
                code,
                request_type: 0x0004,
                offset: None,
                min_version: MIN_SUPPORTED_VERSION,
                max_version: MAX_SUPPORTED_VERSION,
            }),
        };
        assert_eq!(parse_response(&out[..written]), Ok(expected));
    }
    assert_eq!(ErrorCode::from_u32(0), None);
    assert_eq!(ErrorCode::from_u32(14), None);
}

#[test]
fn a_parser_error_becomes_the_error_response_echoing_it() {
    let packet = v1(MessageType::SubscribeRequest, &le32(&[1, 7]));
    let error = parse_request(&packet).unwrap_err();
    let mut out = vec![0; MAX_MESSAGE_LEN];
    let written = encode_protocol_error(&error, &mut out).unwrap();
    let response = parse_response(&out[..written]).unwrap();
    assert_eq!(response.transaction_id, TRANSACTION);
    assert_eq!(
        response.body,
        ResponseBody::Error(ErrorResponse {
            code: ErrorCode::InvalidField,
            request_type: MessageType::SubscribeRequest.to_u16(),
            offset: Some(20),
            min_version: MIN_SUPPORTED_VERSION,
            max_version: MAX_SUPPORTED_VERSION,
        })
    );
}

/// Whatever a parser accepts, its encoder reproduces byte for byte (every accepted message is
/// canonical); whatever it rejects, it rejects with an offset inside the packet (or at its
/// end) and echoes the header exactly when one was readable.
fn check_any_bytes(bytes: &[u8]) {
    check_parsed(bytes, parse_request(bytes), |request, out| {
        encode_request(request, out)
    });
    check_parsed(bytes, parse_response(bytes), |response, out| {
        encode_response(response, out)
    });
    check_parsed(bytes, parse_notification(bytes), encode_notification);
    check_parsed(bytes, parse_ack(bytes), encode_ack);
}

fn check_parsed<T>(
    bytes: &[u8],
    parsed: Result<T, ProtocolError>,
    encode: impl Fn(&T, &mut [u8]) -> Result<usize, EncodeError>,
) {
    match parsed {
        Ok(message) => {
            let mut out = vec![0; MAX_MESSAGE_LEN];
            let written = encode(&message, &mut out).unwrap();
            assert_eq!(&out[..written], bytes);
        }
        Err(error) => {
            assert!(error.offset <= bytes.len().min(MAX_MESSAGE_LEN), "{error}");
            assert_eq!(error.header.is_some(), bytes.len() >= HEADER_LEN, "{error}");
        }
    }
}

/// Bytes behind a plausible header, so that fuzzing reaches the body checks.
fn framed_bytes() -> impl Strategy<Value = Vec<u8>> {
    let known_types = prop::sample::select(vec![
        0x0001_u16, 0x0002, 0x0003, 0x0004, 0x0005, 0x8001, 0x8002, 0x8003, 0x8004, 0x8005, 0x4001,
        0x4081, 0xFFFF,
    ]);
    let message_type = prop_oneof![4 => known_types, 1 => any::<u16>()];
    // Body lengths of the fixed-size types are likely, so that valid messages occur too.
    let body_len = prop_oneof![
        2 => prop::sample::select(vec![0_usize, 8, 16, 24, 64, 72]),
        1 => 0_usize..=96,
    ];
    let body_byte = prop_oneof![6 => Just(0_u8), 1 => 0_u8..=3, 1 => any::<u8>()];
    let body = body_len.prop_flat_map(move |len| prop::collection::vec(body_byte.clone(), len));
    // Small transaction ids so that an ack's body sequence sometimes matches.
    let transaction_id = prop_oneof![2 => 0_u64..=1, 1 => any::<u64>()];
    let version = prop_oneof![8 => Just(1_u16), 1 => any::<u16>()];
    let length_delta = prop_oneof![8 => Just(0_i64), 1 => -20_i64..=20];
    (version, message_type, transaction_id, body, length_delta).prop_map(
        |(version, message_type, transaction_id, body, delta)| {
            let mut bytes = message(version, message_type, transaction_id, &body);
            let length = i64::try_from(bytes.len()).unwrap() + delta;
            let length = u32::try_from(length.max(0)).unwrap();
            bytes[4..8].copy_from_slice(&length.to_le_bytes());
            bytes
        },
    )
}

/// One valid message of every type: message type and body in hex (spaces ignored).
const VALID_BODIES: [(MessageType, &str); 14] = [
    (MessageType::NegotiateRequest, "0100 0300 00000000"),
    (
        MessageType::PingRequest,
        "6300000000000000 70696e672064617461",
    ),
    (MessageType::GetPortStatsRequest, ""),
    (MessageType::SubscribeRequest, "03000000 00000000"),
    (MessageType::UnsubscribeRequest, "01000000 00000000"),
    (MessageType::NegotiateResponse, "0100 0000 00000000"),
    (
        MessageType::PingResponse,
        "6300000000000000 70696e672064617461",
    ),
    (MessageType::PortStatsResponse, PORT_STATS_HEX),
    (MessageType::SubscribeResponse, "02000000 00000000"),
    (MessageType::UnsubscribeResponse, "00000000 00000000"),
    (
        MessageType::ErrorResponse,
        "09000000 0200 0000 ffffffff 0100 0100",
    ),
    (
        MessageType::Notification,
        "02000000 00000000 3930000000000000",
    ),
    (
        MessageType::Notification,
        "01000000 00000000 0100000000000000 0200000000000000 0300000000000000 0400000000000000 0500000000000000 0600000000000000 07000000 00000000 0800000000000000",
    ),
    // Sequence = TRANSACTION, status Ignored.
    (
        MessageType::NotificationAck,
        "8877665544332211 01000000 00000000",
    ),
];

/// A `PortStats` block: counters 1 to 6, 7 active flows, reserved, 8 evicted.
const PORT_STATS_HEX: &str = "0100000000000000 0200000000000000 0300000000000000 0400000000000000 0500000000000000 0600000000000000 07000000 00000000 0800000000000000";

fn hex(text: &str) -> Vec<u8> {
    let digits: Vec<u8> = text
        .bytes()
        .filter(|byte| !byte.is_ascii_whitespace())
        .collect();
    digits
        .chunks(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).unwrap())
        .collect()
}

fn valid_messages() -> Vec<Vec<u8>> {
    VALID_BODIES
        .iter()
        .map(|(message_type, body)| v1(*message_type, &hex(body)))
        .collect()
}

/// A valid message of any type with up to three bytes overwritten.
fn mutated_valid_messages() -> impl Strategy<Value = Vec<u8>> {
    let mutation = (
        any::<prop::sample::Index>(),
        prop_oneof![0_u8..=3, any::<u8>()],
    );
    (
        prop::sample::select(valid_messages()),
        prop::collection::vec(mutation, 0..=3),
    )
        .prop_map(|(mut bytes, mutations)| {
            for (index, value) in mutations {
                let position = index.index(bytes.len());
                bytes[position] = value;
            }
            bytes
        })
}

#[test]
fn the_fuzz_seeds_are_valid() {
    for bytes in valid_messages() {
        let accepted = [
            parse_request(&bytes).is_ok(),
            parse_response(&bytes).is_ok(),
            parse_notification(&bytes).is_ok(),
            parse_ack(&bytes).is_ok(),
        ];
        assert_eq!(accepted.iter().filter(|ok| **ok).count(), 1, "{bytes:02x?}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn mutated_messages_either_parse_canonically_or_fail_typed(bytes in mutated_valid_messages()) {
        check_any_bytes(&bytes);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..=MAX_MESSAGE_LEN + 16)) {
        check_any_bytes(&bytes);
    }

    #[test]
    fn framed_bytes_either_parse_canonically_or_fail_typed(bytes in framed_bytes()) {
        check_any_bytes(&bytes);
    }
}
