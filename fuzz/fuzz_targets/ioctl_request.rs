//! Arbitrary bytes → the control device's IOCTL input validation (`parse_request`), the
//! buffer a caller that opened `\\.\Ferry` fully controls. Every input is accepted exactly
//! when the documented layouts accept it, and read as they say (the oracle in
//! `src/ioctl.rs`); a save header that parses re-encodes to its bytes.

#![no_main]

use ferry_fuzz::ioctl::{expected, observed, split};
use ferry_platform_wdk::control::request::{SAVE_HEADER_LEN, SaveHeader, parse_request};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((code, input)) = split(data) else {
        return;
    };
    let parsed = parse_request(code, input);
    let oracle = expected(code, input);
    match &parsed {
        Ok(request) => assert_eq!(Some(observed(input, request)), oracle, "code {code:#x}"),
        Err(error) => {
            assert_eq!(oracle, None, "refused with {error:?}, code {code:#x}");
            // Every refusal maps to a failure status for the IRP.
            assert!(error.status().0 < 0, "{error:?} maps to a success status");
        }
    }

    if let Ok(header) = SaveHeader::parse(input) {
        let mut out = [0u8; SAVE_HEADER_LEN];
        header.encode(&mut out).expect("the header fits");
        assert_eq!(&out[..], &input[..SAVE_HEADER_LEN]);
    }
});
