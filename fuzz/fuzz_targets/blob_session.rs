//! Blob kind 3 (`ChannelSession`): arbitrary bytes → `SavedSession::decode`. For every accepted
//! blob: decode → encode → decode gives an equal value, and encoding that value again gives
//! the same bytes. Inputs are tried as given and resealed with a correct checksum.

#![no_main]

use ferry_core::saved_state;
use ferry_core::service::SavedSession;
use ferry_fuzz::reseal;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    check(data);
    check(&reseal(data));
});

fn encode(session: &SavedSession) -> Vec<u8> {
    let mut out = vec![0u8; saved_state::encoded_len(session)];
    let written = saved_state::encode(session, &mut out).expect("encoded_len is enough");
    assert_eq!(written, out.len(), "encoded_len is exact");
    out
}

fn check(blob: &[u8]) {
    let Ok(session) = SavedSession::decode(blob) else {
        return;
    };
    let first = encode(&session);
    let again = SavedSession::decode(&first).expect("an encoded session decodes");
    assert_eq!(again, session, "decode → encode → decode changed the value");
    assert_eq!(encode(&again), first, "encoding is not canonical");
}
