//! Arbitrary bytes → `saved_state::open_any`, then every field through every typed accessor
//! and every record array through its readers. Nothing may panic, and what the views report
//! must agree with the bytes they borrow.
//!
//! The input is opened as given (so damaged checksums are exercised) and again resealed with
//! a correct checksum (so the fuzzer gets past the CRC to the fields).

#![no_main]

use ferry_core::saved_state::{self, FIELD_HEADER_LEN, HEADER_LEN, Tag};
use ferry_fuzz::reseal;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let resealed = reseal(data);
    if saved_state::open_any(data).is_ok() {
        assert_eq!(
            resealed, data,
            "a blob that opens has the right checksum already"
        );
    }
    check(&resealed);
});

fn check(blob: &[u8]) {
    let Ok(payload) = saved_state::open_any(blob) else {
        return;
    };
    assert_eq!(payload.bytes().len() + HEADER_LEN, blob.len());
    assert_eq!(
        payload.kind().to_u16(),
        u16::from_le_bytes([blob[8], blob[9]])
    );

    // `open` validated the framing: iterating must not fail, tags ascend strictly, and the
    // fields tile the payload exactly.
    let mut end = HEADER_LEN;
    let mut previous: Option<u16> = None;
    for field in payload.fields() {
        let field = field.expect("open_any validated the framing");
        assert_eq!(field.offset(), end, "fields are contiguous");
        assert_eq!(field.value_offset(), field.offset() + FIELD_HEADER_LEN);
        assert_eq!(
            &blob[field.value_offset()..field.value_offset() + field.bytes().len()],
            field.bytes()
        );
        if let Some(previous) = previous {
            assert!(field.tag().number() > previous, "tags ascend strictly");
        }
        previous = Some(field.tag().number());
        end = field.value_offset() + field.bytes().len();
        exercise_field(&field);
    }
    assert_eq!(end, blob.len(), "fields cover the payload");

    // Lookups by tag: ask for every number present, and a few absent ones, in order.
    let mut reader = payload.reader();
    for number in 1..=40u16 {
        if reader.optional(Tag::new(number)).is_err() {
            return;
        }
    }
    let _ = reader.finish();
    let _ = payload.read(|f| f.require(Tag::new(1)).map(|field| field.bytes().len()));
}

fn exercise_field(field: &saved_state::Field<'_>) {
    let len = field.bytes().len();
    assert_eq!(field.u8().is_ok(), len == 1);
    assert_eq!(field.u16().is_ok(), len == 2);
    assert_eq!(field.u32().is_ok(), len == 4);
    assert_eq!(field.u64().is_ok(), len == 8);
    assert_eq!(field.array::<16>().is_ok(), len == 16);
    let _ = field.bool();
    let _ = field.invalid();
    for capacity in [0, 1, 64, u32::MAX] {
        let Ok(records) = field.records(capacity) else {
            continue;
        };
        assert!(records.count() <= capacity);
        assert_eq!(records.iter().len(), records.count() as usize);
        let mut seen = 0u32;
        for (index, record) in records.iter().enumerate() {
            assert_eq!(record.bytes().len(), usize::from(records.record_len()));
            assert_eq!(records.get(index as u32), Some(record));
            let mut members = record.reader();
            while members.remaining() >= 8 {
                members.u64().expect("8 bytes remain");
            }
            let _ = members.u32();
            let _ = members.u16();
            let _ = members.u8();
            let _ = members.u8();
            seen += 1;
        }
        assert_eq!(seen, records.count());
        assert_eq!(
            records.get(records.count()),
            None,
            "no record past the count"
        );
        let _ = records.require_record_len(62);
    }
}
