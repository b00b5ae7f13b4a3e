//! `inspect` on the golden blobs of every kind, on damaged copies of them, and on blobs whose
//! envelope is fine but whose values the kind refuses.

use ferry_core::saved_state::{
    self, BlobKind, Crc32c, EncodeError, FieldWriter, HEADER_LEN, SavedState, Tag, field_len,
};
use serde_json::Value;

use super::catalog;
use super::report::{ChecksumVerdict, Report, inspect};

/// The golden blobs with their kinds.
fn golden() -> Vec<(&'static str, BlobKind, Vec<u8>)> {
    let dir = crate::workspace::root().join("crates/core/tests/golden/v1.0");
    [
        ("outgoing-transaction.bin", BlobKind::OutgoingTransaction),
        ("port-runtime-state.bin", BlobKind::PortRuntimeState),
        ("channel-session.bin", BlobKind::ChannelSession),
    ]
    .into_iter()
    .map(|(name, kind)| (name, kind, std::fs::read(dir.join(name)).unwrap()))
    .collect()
}

fn json_of(report: &Report) -> Value {
    // Through text, as a consumer of `--json` sees it.
    serde_json::from_str(&serde_json::to_string(&report.to_json()).unwrap()).unwrap()
}

fn field<'a>(json: &'a Value, name: &str) -> &'a Value {
    json["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == name)
        .unwrap_or_else(|| panic!("no field {name} in {json}"))
}

/// Puts the right checksum into a blob edited after encoding.
fn reseal(blob: &mut [u8]) {
    let mut crc = Crc32c::new();
    crc.update(&blob[..16]);
    crc.update(&blob[HEADER_LEN..]);
    blob[16..20].copy_from_slice(&crc.finish().to_le_bytes());
}

#[test]
fn every_golden_blob_is_accepted_with_every_documented_field_named() {
    for (name, kind, blob) in golden() {
        let report = inspect(name, &blob);
        assert!(report.accepted(), "{}", report.to_text());
        assert_eq!(report.kind, Some(kind));
        assert!(matches!(report.checksum, ChecksumVerdict::Ok(_)), "{name}");
        let json = json_of(&report);
        assert_eq!(json["envelope"]["version"], "1.0");
        assert_eq!(json["accepted"], true);
        let listed: Vec<&str> = json["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["name"].as_str().expect("every field is a documented one"))
            .collect();
        let documented: Vec<&str> = catalog::fields_of(kind).iter().map(|s| s.name).collect();
        assert_eq!(listed, documented, "{name}");
        let text = report.to_text();
        for spec in catalog::fields_of(kind) {
            assert!(text.contains(spec.meaning), "{name}: {}", spec.name);
        }
    }
}

#[test]
fn golden_values_are_the_documented_ones() {
    // docs/saved-state/outgoing-transaction.md: sequence 42, port statistics, age 1,500 ticks.
    let blobs = golden();
    let json = json_of(&inspect("t", &blobs[0].2));
    assert_eq!(field(&json, "sequence")["value"], 42);
    assert_eq!(field(&json, "event")["value"]["name"], "port-statistics");
    assert_eq!(field(&json, "age")["value"]["ticks"], 1500);
    // docs/saved-state/port-runtime-state.md: identity ferry-golden-nic, ingress limit
    // 1,000 B/s with a 2,000-byte burst, unlimited egress, an IPv4 TCP flow of 3 frames and
    // 3,100 bytes and an IPv6 UDP flow of 1 frame and 300 bytes.
    let json = json_of(&inspect("p", &blobs[1].2));
    assert_eq!(
        field(&json, "identity")["value"]["text"],
        "ferry-golden-nic"
    );
    assert_eq!(field(&json, "ingress.bytes_per_second")["value"], 1000);
    assert_eq!(field(&json, "ingress.burst_bytes")["value"], 2000);
    assert_eq!(field(&json, "egress.bytes_per_second")["value"], 0);
    let flows = field(&json, "flows")["value"]["records"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(flows.len(), 2);
    let tcp = flows.iter().find(|f| f["protocol"] == 6).unwrap();
    assert_eq!(
        (
            tcp["family"].clone(),
            tcp["frames"].clone(),
            tcp["bytes"].clone()
        ),
        (4.into(), 3.into(), 3100.into())
    );
    let udp = flows.iter().find(|f| f["protocol"] == 17).unwrap();
    assert_eq!(
        (
            udp["family"].clone(),
            udp["frames"].clone(),
            udp["bytes"].clone()
        ),
        (6.into(), 1.into(), 300.into())
    );
}

#[test]
fn every_truncation_is_refused_with_an_offset_inside_the_blob() {
    for (name, _, blob) in golden() {
        for len in 0..blob.len() {
            let report = inspect(name, &blob[..len]);
            let rejection = report
                .rejection
                .as_ref()
                .unwrap_or_else(|| panic!("{name}[..{len}] accepted"));
            assert!(
                rejection.offset <= len,
                "{name}[..{len}]: offset {}",
                rejection.offset
            );
            assert!(
                !matches!(report.checksum, ChecksumVerdict::Ok(_)),
                "{name}[..{len}]"
            );
            let json = json_of(&report);
            assert_eq!(json["accepted"], false);
            assert_eq!(json["rejection"]["offset"], rejection.offset);
        }
    }
}

#[test]
fn every_bit_flip_is_refused_with_an_offset() {
    for (name, _, blob) in golden() {
        for at in 0..blob.len() {
            for bit in 0..8 {
                let mut damaged = blob.clone();
                damaged[at] ^= 1 << bit;
                let report = inspect(name, &damaged);
                let rejection = report
                    .rejection
                    .as_ref()
                    .unwrap_or_else(|| panic!("{name}: flip of bit {bit} at {at} accepted"));
                assert!(rejection.offset <= damaged.len());
                // Header flips before the checksum field fail there; anything else is a
                // checksum mismatch the verdict reports.
                if at >= 12 {
                    assert_ne!(report.checksum, ChecksumVerdict::Ok(0), "{name} {at}");
                    assert!(
                        !matches!(report.checksum, ChecksumVerdict::Ok(_)),
                        "{name} {at}"
                    );
                }
            }
        }
    }
}

#[test]
fn a_flipped_payload_is_a_checksum_mismatch_at_offset_16_with_the_fields_still_listed() {
    let (name, _, mut blob) = golden().remove(0);
    blob[HEADER_LEN + 8] ^= 0x01;
    let report = inspect(name, &blob);
    let rejection = report.rejection.as_ref().unwrap();
    assert_eq!(rejection.error, "ChecksumMismatch");
    assert_eq!(rejection.offset, 16);
    assert!(matches!(report.checksum, ChecksumVerdict::Mismatch { .. }));
    assert!(report.fields_unverified);
    assert_eq!(report.fields.len(), 3);
    assert!(report.to_text().contains("UNVERIFIED"));
}

/// A kind-1 blob with an event that is not one event bit, and an unknown field.
struct OddTransaction {
    event: u32,
}

impl SavedState for OddTransaction {
    const KIND: BlobKind = BlobKind::OutgoingTransaction;
    fn payload_len(&self) -> usize {
        field_len(8) + field_len(4) + field_len(2)
    }
    fn encode_payload(&self, w: &mut FieldWriter<'_>) -> Result<(), EncodeError> {
        w.u64(Tag::new(1), 7)?;
        w.u32(Tag::new(2), self.event)?;
        w.u16(Tag::new(9), 0xBEEF)
    }
}

fn odd_transaction(event: u32) -> Vec<u8> {
    let value = OddTransaction { event };
    let mut blob = vec![0; saved_state::encoded_len(&value)];
    saved_state::encode(&value, &mut blob).unwrap();
    blob
}

#[test]
fn unknown_fields_are_listed_and_skipped() {
    let report = inspect("odd", &odd_transaction(1));
    assert!(report.accepted(), "{}", report.to_text());
    let json = json_of(&report);
    let unknown = &json["fields"][2];
    assert_eq!(unknown["number"], 9);
    assert_eq!(unknown["name"], Value::Null);
    assert_eq!(unknown["value"]["hex"], "efbe");
}

#[test]
fn a_value_the_kind_refuses_is_rejected_at_its_field() {
    let blob = odd_transaction(3);
    let report = inspect("odd", &blob);
    assert!(matches!(report.checksum, ChecksumVerdict::Ok(_)));
    let rejection = report.rejection.as_ref().expect("event 3 is two bits");
    assert_eq!(rejection.error, "InvalidValue");
    // The value of field 2, which follows field 1 (6 header bytes + 8) and its own header.
    assert_eq!(rejection.offset, HEADER_LEN + 14 + 6);
}

#[test]
fn an_inconsistent_rate_limit_points_at_its_direction() {
    let (name, _, mut blob) = golden().remove(1);
    let json = json_of(&inspect(name, &blob));
    // ingress.tokens above ingress.burst_bytes (2,000).
    let tokens_at = field(&json, "ingress.tokens")["offset"].as_u64().unwrap() as usize + 6;
    blob[tokens_at..tokens_at + 8].copy_from_slice(&5_000u64.to_le_bytes());
    reseal(&mut blob);
    let report = inspect(name, &blob);
    let rejection = report.rejection.as_ref().unwrap();
    assert_eq!(rejection.error, "InvalidRateLimit");
    let first_bucket_field = field(&json, "ingress.bytes_per_second")["offset"]
        .as_u64()
        .unwrap();
    assert_eq!(rejection.offset as u64, first_bucket_field);
}
