//! Arbitrary bytes → `protocol::parse_request`, `parse_response`, `parse_notification` and
//! `parse_ack`. Every accepted message re-encodes to exactly the bytes it was parsed from;
//! every refused request gets an `ErrorResponse` that itself parses and echoes what the
//! parser could read.

#![no_main]

use ferry_core::protocol::{
    self, MAX_MESSAGE_LEN, ResponseBody, encode_ack, encode_notification, encode_protocol_error,
    encode_request, encode_response, parse_ack, parse_notification, parse_request, parse_response,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut out = vec![0u8; MAX_MESSAGE_LEN];

    match parse_request(data) {
        Ok(request) => {
            let len = encode_request(&request, &mut out).expect("a parsed request encodes");
            assert_eq!(&out[..len], data, "request did not re-encode identically");
        }
        Err(error) => {
            let len = encode_protocol_error(&error, &mut out).expect("an error encodes");
            let response = parse_response(&out[..len]).expect("the error response parses");
            let ResponseBody::Error(body) = response.body else {
                panic!("a protocol error encoded as {:?}", response.body);
            };
            assert_eq!(body.code, error.code);
            assert_eq!(response.transaction_id, error.transaction_id());
            assert_eq!(body.request_type, error.request_type());
        }
    }

    if let Ok(response) = parse_response(data) {
        let len = encode_response(&response, &mut out).expect("a parsed response encodes");
        assert_eq!(&out[..len], data, "response did not re-encode identically");
    }

    if let Ok(notification) = parse_notification(data) {
        let len = encode_notification(&notification, &mut out).expect("a notification encodes");
        assert_eq!(
            &out[..len],
            data,
            "notification did not re-encode identically"
        );
    }

    if let Ok(ack) = parse_ack(data) {
        let len = encode_ack(&ack, &mut out).expect("a parsed ack encodes");
        assert_eq!(&out[..len], data, "ack did not re-encode identically");
        assert_eq!(len, protocol::ACK_LEN);
    }
});
