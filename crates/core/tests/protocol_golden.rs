//! Golden bytes: the examples of `docs/protocol.md` §10, encoded and parsed by the
//! implementation. The expected bytes are read from the document itself, so the specification
//! and the code cannot drift apart.

use ferry_core::platform::Ticks;
use ferry_core::protocol::{
    AckStatus, ErrorCode, ErrorResponse, MAX_MESSAGE_LEN, NegotiateRequest, NegotiateResponse,
    Notification, NotificationAck, NotificationBody, Ping, Request, RequestBody, Response,
    ResponseBody, encode_ack, encode_error, encode_notification, encode_request, encode_response,
    negotiate, parse_ack, parse_notification, parse_request, parse_response,
};

const SPEC: &str = include_str!("../../../docs/protocol.md");

/// The bytes of the hex block that follows `<!-- golden: NAME -->` in the specification.
fn golden(name: &str) -> Vec<u8> {
    let marker = format!("<!-- golden: {name} -->");
    let after = SPEC
        .split_once(&marker)
        .unwrap_or_else(|| panic!("docs/protocol.md has no {marker}"))
        .1;
    let block = after
        .trim_start()
        .strip_prefix("```text")
        .and_then(|rest| rest.split_once("```"))
        .unwrap_or_else(|| panic!("{marker} is not followed by a ```text block"))
        .0;
    block
        .split_whitespace()
        .map(|pair| u8::from_str_radix(pair, 16).unwrap())
        .collect()
}

fn encoded(encode: impl FnOnce(&mut [u8]) -> usize) -> Vec<u8> {
    let mut out = vec![0; MAX_MESSAGE_LEN];
    let written = encode(&mut out);
    out.truncate(written);
    out
}

#[test]
fn negotiate_request_and_response() {
    let offer = NegotiateRequest {
        min_version: 1,
        max_version: 3,
        features: 0,
    };
    let request = Request {
        version: 1,
        transaction_id: 1,
        body: RequestBody::Negotiate(offer),
    };
    let bytes = golden("negotiate-request");
    assert_eq!(encoded(|out| encode_request(&request, out).unwrap()), bytes);
    assert_eq!(parse_request(&bytes), Ok(request));

    let chosen = negotiate(&offer).unwrap();
    assert_eq!(
        chosen,
        NegotiateResponse {
            version: 1,
            features: 0
        }
    );
    let response = Response {
        version: 1,
        transaction_id: 1,
        body: ResponseBody::Negotiate(chosen),
    };
    let bytes = golden("negotiate-response");
    assert_eq!(
        encoded(|out| encode_response(&response, out).unwrap()),
        bytes
    );
    assert_eq!(parse_response(&bytes), Ok(response));
}

#[test]
fn unsupported_version_error() {
    let offer = NegotiateRequest {
        min_version: 2,
        max_version: 3,
        features: 0,
    };
    let code = negotiate(&offer).unwrap_err();
    assert_eq!(code, ErrorCode::UnsupportedVersion);
    let bytes = golden("unsupported-version-error");
    assert_eq!(
        encoded(|out| encode_error(code, 0x0001, 2, out).unwrap()),
        bytes
    );
    let expected = Response {
        version: 1,
        transaction_id: 2,
        body: ResponseBody::Error(ErrorResponse {
            code,
            request_type: 0x0001,
            offset: None,
            min_version: 1,
            max_version: 1,
        }),
    };
    assert_eq!(parse_response(&bytes), Ok(expected));
}

#[test]
fn ping_request() {
    let request = Request {
        version: 1,
        transaction_id: 3,
        body: RequestBody::Ping(Ping {
            nonce: 0x1122_3344_5566_7788,
            data: b"ferry",
        }),
    };
    let bytes = golden("ping-request");
    assert_eq!(encoded(|out| encode_request(&request, out).unwrap()), bytes);
    assert_eq!(parse_request(&bytes), Ok(request));
}

#[test]
fn heartbeat_notification_and_its_ack() {
    let notification = Notification {
        version: 1,
        sequence: 7,
        body: NotificationBody::Heartbeat(Ticks(Ticks::PER_SECOND)),
    };
    let bytes = golden("heartbeat-notification");
    assert_eq!(
        encoded(|out| encode_notification(&notification, out).unwrap()),
        bytes
    );
    assert_eq!(parse_notification(&bytes), Ok(notification));

    let ack = NotificationAck {
        version: 1,
        sequence: 7,
        status: AckStatus::Handled,
    };
    let bytes = golden("notification-ack");
    assert_eq!(encoded(|out| encode_ack(&ack, out).unwrap()), bytes);
    assert_eq!(parse_ack(&bytes), Ok(ack));
}

#[test]
fn the_limits_in_the_specification_are_the_constants() {
    use ferry_core::protocol::{HEADER_LEN, MAX_PING_DATA};
    for (name, value) in [
        ("HEADER_LEN", HEADER_LEN),
        ("MAX_PING_DATA", MAX_PING_DATA),
        ("MAX_MESSAGE_LEN", MAX_MESSAGE_LEN),
    ] {
        let row = format!("| `{name}` | {value} |");
        assert!(SPEC.contains(&row), "docs/protocol.md lacks the row {row}");
    }
}

#[test]
fn the_error_table_in_the_specification_matches_the_codes() {
    for code in ErrorCode::ALL {
        let row = format!("| {} | `{code:?}` |", code.to_u32());
        assert!(SPEC.contains(&row), "docs/protocol.md lacks the row {row}");
    }
}

#[test]
fn the_type_table_in_the_specification_matches_the_types() {
    for raw in 0..=u16::MAX {
        let Some(message_type) = ferry_core::protocol::MessageType::from_u16(raw) else {
            continue;
        };
        let row = format!("| `0x{raw:04X}` | `{message_type:?}` |");
        assert!(SPEC.contains(&row), "docs/protocol.md lacks the row {row}");
    }
}
