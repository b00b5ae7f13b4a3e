//! Integration tests of the saved-state codec through its public API, with a small test-only
//! kind (`Sample`) holding integers, a fixed array and a record array.

use ferry_core::saved_state::{
    self, BlobKind, DecodeError, DecodeErrorKind, EncodeError, FORMAT_VERSION, FieldWriter, Fields,
    HEADER_LEN, MAX_PAYLOAD_LEN, Records, SavedState, Tag, Version, crc32c, field_len,
    records_field_len,
};
use ferry_core::status::NtStatus;
use proptest::prelude::*;

// ---------------------------------------------------------------------------------------------
// The test kind.

/// One row of the sample's table: 12 bytes in format 1.0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Flow {
    key: u32,
    packets: u64,
}
const FLOW_RECORD_LEN: u16 = 12;
const FLOW_CAPACITY: u32 = 16;

#[derive(Clone, Debug, PartialEq, Eq)]
struct Sample {
    id: u64,
    /// Optional on the wire; absent means 1500.
    mtu: u16,
    enabled: bool,
    name: [u8; 4],
    flows: Vec<Flow>,
}

const ID: Tag = Tag::new(1);
const MTU: Tag = Tag::new(2);
const ENABLED: Tag = Tag::new(3);
const NAME: Tag = Tag::new(4);
const FLOWS: Tag = Tag::new(6);
const DEFAULT_MTU: u16 = 1500;

impl SavedState for Sample {
    const KIND: BlobKind = BlobKind::PortRuntimeState;

    fn payload_len(&self) -> usize {
        field_len(8)
            + field_len(2)
            + field_len(1)
            + field_len(4)
            + records_field_len(self.flows.len(), FLOW_RECORD_LEN)
    }

    fn encode_payload(&self, w: &mut FieldWriter<'_>) -> Result<(), EncodeError> {
        w.u64(ID, self.id)?;
        w.u16(MTU, self.mtu)?;
        w.bool(ENABLED, self.enabled)?;
        w.bytes(NAME, &self.name)?;
        let count = u32::try_from(self.flows.len()).map_err(|_| EncodeError::InvalidState)?;
        let mut flows = w.records(FLOWS, count, FLOW_RECORD_LEN)?;
        for flow in &self.flows {
            flows.next_record()?;
            flows.u32(flow.key)?;
            flows.u64(flow.packets)?;
        }
        flows.finish()
    }
}

fn decode(blob: &[u8]) -> Result<Sample, DecodeError> {
    saved_state::open(blob, BlobKind::PortRuntimeState)?.read(|f| {
        let id = f.require(ID)?.u64()?;
        let mtu = f.optional(MTU)?.map_or(Ok(DEFAULT_MTU), |m| m.u16())?;
        let enabled = f.require(ENABLED)?.bool()?;
        let name = *f.require(NAME)?.array::<4>()?;
        let flows = decode_flows(f.require(FLOWS)?.records(FLOW_CAPACITY)?)?;
        Ok(Sample {
            id,
            mtu,
            enabled,
            name,
            flows,
        })
    })
}

fn decode_flows(records: Records<'_>) -> Result<Vec<Flow>, DecodeError> {
    records.require_record_len(FLOW_RECORD_LEN)?;
    let mut flows = Vec::new();
    for record in records {
        let mut r = record.reader();
        let key = r.u32()?;
        let packets = r.u64()?;
        if key == 0 {
            return Err(record.invalid());
        }
        flows.push(Flow { key, packets });
    }
    Ok(flows)
}

fn sample() -> Sample {
    Sample {
        id: 0x0102_0304_0506_0708,
        mtu: 9000,
        enabled: true,
        name: *b"eth0",
        flows: vec![
            Flow { key: 7, packets: 1 },
            Flow {
                key: 9,
                packets: u64::MAX,
            },
        ],
    }
}

fn encode_to_vec<T: SavedState>(state: &T) -> Vec<u8> {
    let mut out = vec![0u8; saved_state::encoded_len(state)];
    let written = saved_state::encode(state, &mut out).expect("encode");
    assert_eq!(written, out.len(), "encoded_len must be exact");
    out
}

// ---------------------------------------------------------------------------------------------
// Hand-built blobs, independent of the encoder (they follow docs/saved-state-format.md).

/// A field as raw bytes: tag, length, value.
fn raw_field(tag: u16, value: &[u8]) -> Vec<u8> {
    let mut out = tag.to_le_bytes().to_vec();
    out.extend_from_slice(&u32::try_from(value.len()).expect("len").to_le_bytes());
    out.extend_from_slice(value);
    out
}

/// A record-array value: count, record length, records.
fn raw_records(count: u32, record_len: u16, records: &[u8]) -> Vec<u8> {
    let mut out = count.to_le_bytes().to_vec();
    out.extend_from_slice(&record_len.to_le_bytes());
    out.extend_from_slice(records);
    out
}

/// An envelope around `payload` with a correct checksum.
fn raw_blob(kind: u16, version: Version, payload: &[u8]) -> Vec<u8> {
    let mut blob = b"FRRY".to_vec();
    blob.extend_from_slice(&version.major.to_le_bytes());
    blob.extend_from_slice(&version.minor.to_le_bytes());
    blob.extend_from_slice(&kind.to_le_bytes());
    blob.extend_from_slice(&0u16.to_le_bytes());
    blob.extend_from_slice(&u32::try_from(payload.len()).expect("len").to_le_bytes());
    blob.extend_from_slice(&[0; 4]);
    blob.extend_from_slice(payload);
    reseal(&mut blob);
    blob
}

/// Recomputes the checksum after a deliberate edit, so a structural check is what fires.
fn reseal(blob: &mut [u8]) {
    let mut covered = blob[..16].to_vec();
    covered.extend_from_slice(&blob[HEADER_LEN..]);
    let crc = crc32c(&covered);
    blob[16..20].copy_from_slice(&crc.to_le_bytes());
}

/// The fields of `sample()` in format 1.0, by hand.
fn sample_fields() -> Vec<Vec<u8>> {
    let s = sample();
    let mut records = Vec::new();
    for flow in &s.flows {
        records.extend_from_slice(&flow.key.to_le_bytes());
        records.extend_from_slice(&flow.packets.to_le_bytes());
    }
    vec![
        raw_field(1, &s.id.to_le_bytes()),
        raw_field(2, &s.mtu.to_le_bytes()),
        raw_field(3, &[1]),
        raw_field(4, &s.name),
        raw_field(6, &raw_records(2, FLOW_RECORD_LEN, &records)),
    ]
}

fn kind_of(result: Result<Sample, DecodeError>) -> DecodeErrorKind {
    result.expect_err("must be refused").kind()
}

fn port_blob(fields: &[Vec<u8>]) -> Vec<u8> {
    raw_blob(2, FORMAT_VERSION, &fields.concat())
}

// ---------------------------------------------------------------------------------------------
// Round trip and sizes.

fn flow_strategy() -> impl Strategy<Value = Flow> {
    (1u32.., any::<u64>()).prop_map(|(key, packets)| Flow { key, packets })
}

fn sample_strategy() -> impl Strategy<Value = Sample> {
    (
        any::<u64>(),
        any::<u16>(),
        any::<bool>(),
        any::<[u8; 4]>(),
        proptest::collection::vec(flow_strategy(), 0..=FLOW_CAPACITY as usize),
    )
        .prop_map(|(id, mtu, enabled, name, flows)| Sample {
            id,
            mtu,
            enabled,
            name,
            flows,
        })
}

proptest! {
    #[test]
    fn round_trip(value in sample_strategy()) {
        let blob = encode_to_vec(&value);
        prop_assert_eq!(
            blob.len(),
            HEADER_LEN + 14 + 8 + 7 + 10 + 12 + value.flows.len() * 12
        );
        prop_assert_eq!(decode(&blob), Ok(value));
    }

    #[test]
    fn encoder_matches_the_hand_built_layout(value in sample_strategy()) {
        let mut records = Vec::new();
        for flow in &value.flows {
            records.extend_from_slice(&flow.key.to_le_bytes());
            records.extend_from_slice(&flow.packets.to_le_bytes());
        }
        let count = u32::try_from(value.flows.len()).expect("count");
        let payload = [
            raw_field(1, &value.id.to_le_bytes()),
            raw_field(2, &value.mtu.to_le_bytes()),
            raw_field(3, &[u8::from(value.enabled)]),
            raw_field(4, &value.name),
            raw_field(6, &raw_records(count, FLOW_RECORD_LEN, &records)),
        ]
        .concat();
        prop_assert_eq!(encode_to_vec(&value), raw_blob(2, FORMAT_VERSION, &payload));
    }

    /// Hostile input: arbitrary bytes never panic, whether or not they look like a blob.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        exercise(&bytes);
    }

    /// Arbitrary payloads inside a valid envelope, so the field parser itself is exercised.
    #[test]
    fn arbitrary_payloads_never_panic(payload in proptest::collection::vec(any::<u8>(), 0..512)) {
        let blob = raw_blob(2, FORMAT_VERSION, &payload);
        exercise(&blob);
    }

    /// A valid blob with a few bytes of its payload overwritten and the checksum recomputed:
    /// deep structure (record arrays, lengths) is damaged in every way, never a panic, and
    /// whatever still decodes re-encodes to a blob that decodes to the same value.
    #[test]
    fn damaged_payloads_never_panic(
        value in sample_strategy(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
    ) {
        let mut blob = encode_to_vec(&value);
        for (index, byte) in edits {
            let at = HEADER_LEN + index.index(blob.len() - HEADER_LEN);
            blob[at] = byte;
        }
        reseal(&mut blob);
        exercise(&blob);
        if let Ok(decoded) = decode(&blob) {
            prop_assert_eq!(decode(&encode_to_vec(&decoded)), Ok(decoded));
        }
    }

    /// Arbitrary but well-framed fields with random tags and lengths: each is rejected with a
    /// typed error or accepted, never a panic.
    #[test]
    fn arbitrary_fields_never_panic(
        fields in proptest::collection::vec(
            (any::<u16>(), proptest::collection::vec(any::<u8>(), 0..40)), 0..8)
    ) {
        let payload: Vec<u8> = fields.iter().flat_map(|(t, v)| raw_field(*t, v)).collect();
        exercise(&raw_blob(2, FORMAT_VERSION, &payload));
    }
}

/// Opens, iterates and decodes `blob`, every accessor on every field.
fn exercise(blob: &[u8]) {
    let _ = decode(blob);
    if let Ok(payload) = saved_state::open_any(blob) {
        for field in payload.fields() {
            let Ok(field) = field else { break };
            let _ = (
                field.u8(),
                field.u16(),
                field.u32(),
                field.u64(),
                field.bool(),
            );
            let _ = field.array::<16>();
            if let Ok(records) = field.records(u32::MAX) {
                for record in records {
                    let mut r = record.reader();
                    let _ = (r.u8(), r.u16(), r.u32(), r.u64());
                }
            }
        }
    }
}

#[test]
fn empty_table_round_trips() {
    let value = Sample {
        flows: Vec::new(),
        ..sample()
    };
    assert_eq!(decode(&encode_to_vec(&value)), Ok(value));
}

#[test]
fn full_table_round_trips_and_one_more_is_refused() {
    let flow = Flow { key: 1, packets: 2 };
    let full = Sample {
        flows: vec![flow; FLOW_CAPACITY as usize],
        ..sample()
    };
    assert_eq!(decode(&encode_to_vec(&full)), Ok(full.clone()));
    let over = Sample {
        flows: vec![flow; FLOW_CAPACITY as usize + 1],
        ..sample()
    };
    assert_eq!(
        kind_of(decode(&encode_to_vec(&over))),
        DecodeErrorKind::TooManyRecords {
            count: FLOW_CAPACITY + 1,
            capacity: FLOW_CAPACITY
        }
    );
}

#[test]
fn buffer_one_byte_too_small_reports_the_size_needed() {
    let value = sample();
    let needed = saved_state::encoded_len(&value);
    let mut out = vec![0u8; needed - 1];
    let error = saved_state::encode(&value, &mut out).expect_err("too small");
    assert_eq!(
        error,
        EncodeError::BufferTooSmall {
            needed,
            available: needed - 1
        }
    );
    assert_eq!(error.status(), NtStatus::BUFFER_TOO_SMALL);
    // KMCL's first call offers no buffer at all.
    assert_eq!(
        saved_state::encode(&value, &mut []),
        Err(EncodeError::BufferTooSmall {
            needed,
            available: 0
        })
    );
}

#[test]
fn a_larger_buffer_is_written_only_at_its_start() {
    let value = sample();
    let needed = saved_state::encoded_len(&value);
    let mut out = vec![0xEEu8; needed + 10];
    assert_eq!(saved_state::encode(&value, &mut out), Ok(needed));
    assert!(out[needed..].iter().all(|&b| b == 0xEE));
    assert_eq!(decode(&out[..needed]), Ok(value));
}

// ---------------------------------------------------------------------------------------------
// Damaged blobs.

#[test]
fn truncation_at_every_offset_is_refused() {
    let blob = encode_to_vec(&sample());
    let n = |value: usize| u32::try_from(value).expect("small");
    for len in 0..blob.len() {
        let error = decode(&blob[..len]).expect_err("truncated blob accepted");
        // The first structure that does not fit: magic, major, minor, rest of the header, then
        // the payload the header declares.
        let (offset, expected) = match len {
            0..4 => (
                0,
                DecodeErrorKind::Truncated {
                    needed: 4,
                    available: n(len),
                },
            ),
            4..6 => (
                4,
                DecodeErrorKind::Truncated {
                    needed: 2,
                    available: n(len - 4),
                },
            ),
            6..8 => (
                6,
                DecodeErrorKind::Truncated {
                    needed: 2,
                    available: n(len - 6),
                },
            ),
            8..HEADER_LEN => (
                0,
                DecodeErrorKind::Truncated {
                    needed: n(HEADER_LEN),
                    available: n(len),
                },
            ),
            _ => (
                12,
                DecodeErrorKind::LengthMismatch {
                    declared: n(blob.len() - HEADER_LEN),
                    actual: n(len - HEADER_LEN),
                },
            ),
        };
        assert_eq!(
            (error.offset(), error.kind()),
            (offset, expected),
            "truncated to {len} bytes"
        );
    }
}

#[test]
fn every_single_bit_flip_is_refused_with_the_error_of_its_region() {
    let blob = encode_to_vec(&sample());
    for byte in 0..blob.len() {
        for bit in 0..8 {
            let mut damaged = blob.clone();
            damaged[byte] ^= 1 << bit;
            let error = decode(&damaged).expect_err("bit flip accepted");
            let kind = error.kind();
            let fits = match byte {
                0..4 => matches!(kind, DecodeErrorKind::BadMagic { .. }),
                4..6 => matches!(kind, DecodeErrorKind::UnsupportedMajor { .. }),
                // A newer minor is legal, so only the checksum notices.
                6..8 => matches!(kind, DecodeErrorKind::ChecksumMismatch { .. }),
                8..10 => matches!(
                    kind,
                    DecodeErrorKind::UnknownKind { .. } | DecodeErrorKind::WrongKind { .. }
                ),
                10..12 => matches!(kind, DecodeErrorKind::NonzeroFlags { .. }),
                12..16 => matches!(
                    kind,
                    DecodeErrorKind::LengthMismatch { .. } | DecodeErrorKind::Oversized { .. }
                ),
                _ => matches!(kind, DecodeErrorKind::ChecksumMismatch { .. }),
            };
            assert!(fits, "byte {byte} bit {bit}: {error}");
            let field_start = (byte / 2) * 2;
            let expected_offset = match byte {
                0..4 => 0,
                _ if matches!(kind, DecodeErrorKind::ChecksumMismatch { .. }) => 16,
                4..12 => field_start,
                _ => 12,
            };
            assert_eq!(error.offset(), expected_offset, "byte {byte} bit {bit}");
        }
    }
}

#[test]
fn checksum_mismatch_reports_both_values_and_maps_to_crc_error() {
    let mut blob = encode_to_vec(&sample());
    let last = blob.len() - 1;
    blob[last] ^= 0x40;
    let error = decode(&blob).expect_err("payload flip");
    let stored = u32::from_le_bytes(blob[16..20].try_into().expect("4 bytes"));
    let mut covered = blob[..16].to_vec();
    covered.extend_from_slice(&blob[HEADER_LEN..]);
    assert_eq!(
        error.kind(),
        DecodeErrorKind::ChecksumMismatch {
            stored,
            computed: crc32c(&covered)
        }
    );
    assert_eq!(error.status(), NtStatus::CRC_ERROR);
}

#[test]
fn wrong_magic_is_refused_before_anything_else() {
    let mut blob = encode_to_vec(&sample());
    blob[..4].copy_from_slice(b"FRRZ");
    let error = decode(&blob).expect_err("bad magic");
    assert_eq!(error.kind(), DecodeErrorKind::BadMagic { found: *b"FRRZ" });
    assert_eq!(error.offset(), 0);
    assert_eq!(error.status(), NtStatus::DATA_ERROR);
}

#[test]
fn another_known_kind_is_refused_as_wrong_kind() {
    let blob = raw_blob(3, FORMAT_VERSION, &sample_fields().concat());
    let error = decode(&blob).expect_err("wrong kind");
    assert_eq!(
        error.kind(),
        DecodeErrorKind::WrongKind {
            expected: BlobKind::PortRuntimeState,
            found: BlobKind::ChannelSession
        }
    );
    assert_eq!(error.offset(), 8);
    // A tool that accepts any kind opens it.
    let payload = saved_state::open_any(&blob).expect("any kind");
    assert_eq!(payload.kind(), BlobKind::ChannelSession);
}

#[test]
fn unknown_kinds_are_refused() {
    for kind in [0u16, 4, 0x8002, u16::MAX] {
        let blob = raw_blob(kind, FORMAT_VERSION, &sample_fields().concat());
        assert_eq!(
            kind_of(decode(&blob)),
            DecodeErrorKind::UnknownKind { found: kind }
        );
        assert!(saved_state::open_any(&blob).is_err());
    }
}

#[test]
fn nonzero_flags_are_refused() {
    let mut blob = port_blob(&sample_fields());
    blob[10..12].copy_from_slice(&0x0100u16.to_le_bytes());
    reseal(&mut blob);
    let error = decode(&blob).expect_err("flags");
    assert_eq!(
        error.kind(),
        DecodeErrorKind::NonzeroFlags { found: 0x0100 }
    );
    assert_eq!(error.offset(), 10);
}

#[test]
fn a_future_major_is_refused_naming_both_versions() {
    let found = Version { major: 2, minor: 3 };
    let blob = raw_blob(2, found, &sample_fields().concat());
    let error = decode(&blob).expect_err("major 2");
    assert_eq!(
        error.kind(),
        DecodeErrorKind::UnsupportedMajor {
            found,
            supported: FORMAT_VERSION
        }
    );
    assert_eq!(error.offset(), 4);
    assert_eq!(error.status(), NtStatus::REVISION_MISMATCH);
    let message = error.to_string();
    assert!(
        message.contains("2.3") && message.contains("1.0"),
        "{message}"
    );
    // Major 0 is no better.
    let old = raw_blob(2, Version { major: 0, minor: 9 }, &[]);
    assert!(matches!(
        kind_of(decode(&old)),
        DecodeErrorKind::UnsupportedMajor { .. }
    ));
}

#[test]
fn declared_length_must_equal_the_payload() {
    // One trailing byte after the declared payload.
    let mut longer = encode_to_vec(&sample());
    let declared = u32::try_from(longer.len() - HEADER_LEN).expect("len");
    longer.push(0);
    assert_eq!(
        kind_of(decode(&longer)),
        DecodeErrorKind::LengthMismatch {
            declared,
            actual: declared + 1
        }
    );
    // A header that claims one byte less than is there (checksum recomputed).
    let mut shorter = encode_to_vec(&sample());
    shorter[12..16].copy_from_slice(&(declared - 1).to_le_bytes());
    reseal(&mut shorter);
    assert_eq!(
        kind_of(decode(&shorter)),
        DecodeErrorKind::LengthMismatch {
            declared: declared - 1,
            actual: declared
        }
    );
}

#[test]
fn payloads_over_the_limit_are_refused_on_both_sides() {
    let mut blob = encode_to_vec(&sample());
    let over = u32::try_from(MAX_PAYLOAD_LEN + 1).expect("limit");
    blob[12..16].copy_from_slice(&over.to_le_bytes());
    reseal(&mut blob);
    assert_eq!(
        kind_of(decode(&blob)),
        DecodeErrorKind::Oversized {
            declared: over,
            max: over - 1
        }
    );

    struct Huge;
    impl SavedState for Huge {
        const KIND: BlobKind = BlobKind::ChannelSession;
        fn payload_len(&self) -> usize {
            field_len(MAX_PAYLOAD_LEN)
        }
        fn encode_payload(&self, _: &mut FieldWriter<'_>) -> Result<(), EncodeError> {
            unreachable!("the size check comes first")
        }
    }
    assert_eq!(
        saved_state::encode(&Huge, &mut []),
        Err(EncodeError::Oversized {
            len: MAX_PAYLOAD_LEN + 6,
            max: MAX_PAYLOAD_LEN
        })
    );
}

// ---------------------------------------------------------------------------------------------
// Versioning: newer minors, critical fields.

#[test]
fn a_newer_minor_with_unknown_fields_and_longer_records_is_accepted() {
    // Format 1.1 as a future writer might produce it: MTU omitted (default applies), a new
    // field 5 between known ones, a new member appended to each flow record, and a new field at
    // the end.
    let mut records = Vec::new();
    for (key, packets) in [(7u32, 1u64), (9, 2)] {
        records.extend_from_slice(&key.to_le_bytes());
        records.extend_from_slice(&packets.to_le_bytes());
        records.extend_from_slice(&[0xAB, 0xCD]);
    }
    let payload = [
        raw_field(1, &42u64.to_le_bytes()),
        raw_field(3, &[0]),
        raw_field(4, b"wan1"),
        raw_field(5, &[1, 2, 3, 4, 5]),
        raw_field(6, &raw_records(2, FLOW_RECORD_LEN + 2, &records)),
        raw_field(7, &[]),
        raw_field(0x7FFF, &[9; 20]),
    ]
    .concat();
    let blob = raw_blob(2, Version { major: 1, minor: 1 }, &payload);
    let opened = saved_state::open(&blob, BlobKind::PortRuntimeState).expect("open");
    assert_eq!(opened.version(), Version { major: 1, minor: 1 });
    assert_eq!(
        decode(&blob),
        Ok(Sample {
            id: 42,
            mtu: DEFAULT_MTU,
            enabled: false,
            name: *b"wan1",
            flows: vec![Flow { key: 7, packets: 1 }, Flow { key: 9, packets: 2 }],
        })
    );
    // A tool listing the blob sees every field, known or not.
    let tags: Vec<u16> = opened
        .fields()
        .map(|f| f.expect("well framed").tag().raw())
        .collect();
    assert_eq!(tags, [1, 3, 4, 5, 6, 7, 0x7FFF]);
}

#[test]
fn unknown_critical_fields_are_refused_wherever_they_are() {
    // Between known fields (skipped while looking for FLOWS) and after the last known one
    // (found by finish).
    for (at, tag) in [(4usize, 0x8005u16), (5, 0x8007)] {
        let mut fields = sample_fields();
        fields.insert(at, raw_field(tag, &[0]));
        let blob = port_blob(&fields);
        let error = decode(&blob).expect_err("critical");
        assert_eq!(error.kind(), DecodeErrorKind::UnknownCriticalField { tag });
        let offset: usize = HEADER_LEN + fields[..at].iter().map(Vec::len).sum::<usize>();
        assert_eq!(error.offset(), offset);
        assert_eq!(error.status(), NtStatus::REVISION_MISMATCH);
    }
}

#[test]
fn a_known_field_marked_critical_is_read_normally() {
    let mut fields = sample_fields();
    fields[1] = raw_field(0x8002, &1400u16.to_le_bytes());
    assert_eq!(decode(&port_blob(&fields)).map(|s| s.mtu), Ok(1400));
}

#[test]
fn out_of_order_and_duplicate_tags_are_refused() {
    let fields = sample_fields();
    let mut swapped = fields.clone();
    swapped.swap(2, 3);
    let error = decode(&port_blob(&swapped)).expect_err("out of order");
    assert_eq!(
        error.kind(),
        DecodeErrorKind::FieldOutOfOrder {
            previous: 4,
            found: 3
        }
    );
    let offset: usize = HEADER_LEN + swapped[..3].iter().map(Vec::len).sum::<usize>();
    assert_eq!(error.offset(), offset);

    let mut duplicated = fields.clone();
    duplicated.insert(1, fields[0].clone());
    assert_eq!(
        kind_of(decode(&port_blob(&duplicated))),
        DecodeErrorKind::DuplicateField { tag: 1 }
    );

    // The same number with and without the critical bit is still a duplicate.
    let mut twin = fields.clone();
    twin.insert(1, raw_field(0x8001, &0u64.to_le_bytes()));
    assert_eq!(
        kind_of(decode(&port_blob(&twin))),
        DecodeErrorKind::DuplicateField { tag: 0x8001 }
    );

    // Disorder among unknown fields after the last known one is caught too.
    let mut tail = fields.clone();
    tail.push(raw_field(9, &[]));
    tail.push(raw_field(8, &[]));
    assert_eq!(
        kind_of(decode(&port_blob(&tail))),
        DecodeErrorKind::FieldOutOfOrder {
            previous: 9,
            found: 8
        }
    );
}

#[test]
fn missing_required_fields_are_named() {
    for (index, tag) in [(0usize, 1u16), (2, 3), (3, 4), (4, 6)] {
        let mut fields = sample_fields();
        fields.remove(index);
        let error = decode(&port_blob(&fields)).expect_err("missing");
        assert_eq!(error.kind(), DecodeErrorKind::MissingField { tag });
        assert_eq!(error.status(), NtStatus::DATA_ERROR);
    }
}

#[test]
fn integer_fields_have_exact_lengths() {
    for (index, tag, value) in [
        (0usize, 1u16, vec![0u8; 7]),
        (0, 1, vec![0; 9]),
        (1, 2, vec![0; 4]),
        (2, 3, vec![]),
        (3, 4, vec![0; 5]),
    ] {
        let mut fields = sample_fields();
        let length = u32::try_from(value.len()).expect("len");
        fields[index] = raw_field(tag, &value);
        let error = decode(&port_blob(&fields)).expect_err("bad length");
        assert_eq!(
            error.kind(),
            DecodeErrorKind::BadFieldLength { tag, length }
        );
        let offset: usize = HEADER_LEN + fields[..index].iter().map(Vec::len).sum::<usize>();
        assert_eq!(error.offset(), offset);
    }
}

#[test]
fn invalid_values_point_at_the_value() {
    let mut fields = sample_fields();
    fields[2] = raw_field(3, &[2]);
    let error = decode(&port_blob(&fields)).expect_err("bool 2");
    assert_eq!(error.kind(), DecodeErrorKind::InvalidValue { tag: 3 });
    let value_offset: usize = HEADER_LEN + fields[..2].iter().map(Vec::len).sum::<usize>() + 6;
    assert_eq!(error.offset(), value_offset);

    // A record the kind refuses (key 0) is reported at the record.
    let mut records = Vec::new();
    for key in [5u32, 0] {
        records.extend_from_slice(&key.to_le_bytes());
        records.extend_from_slice(&0u64.to_le_bytes());
    }
    let mut fields = sample_fields();
    fields[4] = raw_field(6, &raw_records(2, FLOW_RECORD_LEN, &records));
    let error = decode(&port_blob(&fields)).expect_err("key 0");
    assert_eq!(error.kind(), DecodeErrorKind::InvalidValue { tag: 6 });
    let second_record: usize =
        HEADER_LEN + fields[..4].iter().map(Vec::len).sum::<usize>() + 6 + 6 + 12;
    assert_eq!(error.offset(), second_record);
}

// ---------------------------------------------------------------------------------------------
// Record arrays.

fn blob_with_flows(value: &[u8]) -> Vec<u8> {
    let mut fields = sample_fields();
    fields[4] = raw_field(6, value);
    port_blob(&fields)
}

#[test]
fn hostile_record_counts_are_refused_without_overflow() {
    // A count far beyond capacity is refused before any size arithmetic.
    let blob = blob_with_flows(&raw_records(u32::MAX, u16::MAX, &[0; 12]));
    let error = decode(&blob).expect_err("count");
    assert_eq!(
        error.kind(),
        DecodeErrorKind::TooManyRecords {
            count: u32::MAX,
            capacity: FLOW_CAPACITY
        }
    );
    assert_eq!(error.status(), NtStatus::INSUFFICIENT_RESOURCES);

    // With an unbounded capacity, count × record length (≈ 2^48) is compared without overflow.
    let payload = saved_state::open(&blob, BlobKind::PortRuntimeState).expect("open");
    let flows = payload
        .fields()
        .map(|f| f.expect("framed"))
        .find(|f| f.tag() == FLOWS)
        .expect("flows");
    assert_eq!(
        flows.records(u32::MAX).expect_err("size").kind(),
        DecodeErrorKind::BadFieldLength {
            tag: 6,
            length: 6 + 12
        }
    );
}

#[test]
fn record_array_lengths_must_match_exactly() {
    let cases: [Vec<u8>; 5] = [
        // Shorter than the prefix.
        vec![1, 0, 0, 0, 12],
        // One byte missing, one byte extra.
        raw_records(1, 12, &[0; 11]),
        raw_records(1, 12, &[0; 13]),
        // A zero record length with records present.
        raw_records(3, 0, &[]),
        // Count 0 with bytes after the prefix.
        raw_records(0, 12, &[0; 12]),
    ];
    for value in cases {
        let length = u32::try_from(value.len()).expect("len");
        assert_eq!(
            kind_of(decode(&blob_with_flows(&value))),
            DecodeErrorKind::BadFieldLength { tag: 6, length },
            "{value:?}"
        );
    }
}

#[test]
fn records_shorter_than_the_reader_needs_are_the_kinds_call() {
    let blob = blob_with_flows(&raw_records(2, 4, &[1, 0, 0, 0, 2, 0, 0, 0]));
    assert_eq!(
        kind_of(decode(&blob)),
        DecodeErrorKind::RecordTooShort {
            tag: 6,
            record_len: 4,
            needed: FLOW_RECORD_LEN
        }
    );
    // A kind that has defaults reads what is there.
    let payload = saved_state::open(&blob, BlobKind::PortRuntimeState).expect("open");
    let keys: Vec<(u32, u64)> = payload
        .read(|f| {
            let _ = f.require(ID)?;
            let records = f.require(FLOWS)?.records(FLOW_CAPACITY)?;
            records
                .iter()
                .map(|record| {
                    let mut r = record.reader();
                    let key = r.u32()?;
                    let packets = if r.remaining() == 0 { 0 } else { r.u64()? };
                    Ok((key, packets))
                })
                .collect()
        })
        .expect("read with defaults");
    assert_eq!(keys, [(1, 0), (2, 0)]);
    // Reading past a record's end is an error, not a panic.
    let records = payload
        .fields()
        .map(|f| f.expect("framed"))
        .find(|f| f.tag() == FLOWS)
        .expect("flows")
        .records(FLOW_CAPACITY)
        .expect("records");
    let record = records.get(1).expect("second");
    assert!(records.get(2).is_none());
    let mut r = record.reader();
    assert_eq!(r.u16(), Ok(2));
    let error = r.u32().expect_err("past the end");
    assert_eq!(
        error.kind(),
        DecodeErrorKind::Truncated {
            needed: 4,
            available: 2
        }
    );
    assert_eq!(error.offset(), record.offset() + 2);
}

#[test]
fn field_values_running_past_the_payload_are_truncated() {
    let mut payload = sample_fields().concat();
    payload.extend_from_slice(&raw_field(9, &[0; 4])[..8]);
    let blob = raw_blob(2, FORMAT_VERSION, &payload);
    let error = decode(&blob).expect_err("overrun");
    assert_eq!(
        error.kind(),
        DecodeErrorKind::Truncated {
            needed: 4,
            available: 2
        }
    );
    // A dangling partial field header.
    let mut payload = sample_fields().concat();
    payload.extend_from_slice(&[9, 0, 1]);
    let error = decode(&raw_blob(2, FORMAT_VERSION, &payload)).expect_err("header");
    assert_eq!(
        error.kind(),
        DecodeErrorKind::Truncated {
            needed: 6,
            available: 3
        }
    );
    assert_eq!(error.offset(), HEADER_LEN + payload.len() - 3);
}

#[test]
fn the_field_iterator_stops_after_an_error() {
    let mut fields = sample_fields();
    fields.swap(0, 1);
    let blob = port_blob(&fields);
    // `open` refuses it outright ...
    assert_eq!(
        saved_state::open(&blob, BlobKind::PortRuntimeState)
            .expect_err("disorder")
            .offset(),
        HEADER_LEN + fields[0].len()
    );
    // ... and a tool walking the fields by hand sees the good one, then the error, then nothing.
    let results: Vec<_> = Fields::new(&blob[HEADER_LEN..], HEADER_LEN).collect();
    assert_eq!(results.len(), 2);
    assert!(results[0].is_ok());
    assert!(matches!(
        results[1].map(|f| f.tag()).map_err(|e| e.kind()),
        Err(DecodeErrorKind::FieldOutOfOrder { .. })
    ));
}

#[test]
fn a_decoder_asking_out_of_order_gets_an_error_not_a_wrong_answer() {
    let blob = encode_to_vec(&sample());
    let payload = saved_state::open(&blob, BlobKind::PortRuntimeState).expect("open");
    let error = payload
        .read(|f| {
            let _ = f.require(NAME)?;
            f.require(ID)
        })
        .expect_err("out of order request");
    assert_eq!(
        error.kind(),
        DecodeErrorKind::RequestOutOfOrder {
            previous: 4,
            requested: 1
        }
    );
    assert_eq!(error.status(), NtStatus::UNSUCCESSFUL);
}

// ---------------------------------------------------------------------------------------------
// Encoder misuse by a kind.

struct Misbehaving {
    announced: usize,
    tags: &'static [u16],
}

impl SavedState for Misbehaving {
    const KIND: BlobKind = BlobKind::OutgoingTransaction;
    fn payload_len(&self) -> usize {
        self.announced
    }
    fn encode_payload(&self, w: &mut FieldWriter<'_>) -> Result<(), EncodeError> {
        for &tag in self.tags {
            w.u32(Tag::from_raw(tag), 0)?;
        }
        Ok(())
    }
}

#[test]
fn encoder_refuses_a_payload_len_that_is_not_exact() {
    let exact = Misbehaving {
        announced: 20,
        tags: &[1, 2],
    };
    let mut out = [0u8; 64];
    assert_eq!(saved_state::encode(&exact, &mut out), Ok(40));

    let under = Misbehaving {
        announced: 19,
        tags: &[1, 2],
    };
    assert_eq!(
        saved_state::encode(&under, &mut out),
        Err(EncodeError::PayloadLengthMismatch {
            declared: 19,
            written: 20
        })
    );
    let over = Misbehaving {
        announced: 21,
        tags: &[1, 2],
    };
    assert_eq!(
        saved_state::encode(&over, &mut out),
        Err(EncodeError::PayloadLengthMismatch {
            declared: 21,
            written: 20
        })
    );
    // The exact-size check does not depend on the buffer offered.
    let mut roomy = [0u8; 256];
    assert_eq!(
        saved_state::encode(&over, &mut roomy),
        Err(EncodeError::PayloadLengthMismatch {
            declared: 21,
            written: 20
        })
    );
}

#[test]
fn encoder_refuses_tags_out_of_order() {
    for (tags, previous, found) in [
        (&[2u16, 1][..], 2, 1),
        (&[1, 1], 1, 1),
        (&[3, 0x8003], 3, 3),
    ] {
        let state = Misbehaving {
            announced: 20,
            tags,
        };
        let mut out = [0u8; 64];
        assert_eq!(
            saved_state::encode(&state, &mut out),
            Err(EncodeError::FieldOutOfOrder { previous, found })
        );
    }
}

struct BadTable {
    count: u32,
    records: usize,
    member_bytes: usize,
}

impl SavedState for BadTable {
    const KIND: BlobKind = BlobKind::PortRuntimeState;
    fn payload_len(&self) -> usize {
        records_field_len(self.count as usize, 4)
    }
    fn encode_payload(&self, w: &mut FieldWriter<'_>) -> Result<(), EncodeError> {
        let mut table = w.records(FLOWS, self.count, 4)?;
        for _ in 0..self.records {
            table.next_record()?;
            table.bytes(&vec![0; self.member_bytes])?;
        }
        table.finish()
    }
}

#[test]
fn encoder_refuses_records_that_do_not_match_the_announcement() {
    let mut out = [0u8; 128];
    let good = BadTable {
        count: 2,
        records: 2,
        member_bytes: 4,
    };
    assert!(saved_state::encode(&good, &mut out).is_ok());
    for bad in [
        BadTable {
            count: 2,
            records: 1,
            member_bytes: 4,
        },
        BadTable {
            count: 2,
            records: 3,
            member_bytes: 4,
        },
        BadTable {
            count: 2,
            records: 2,
            member_bytes: 3,
        },
        BadTable {
            count: 2,
            records: 2,
            member_bytes: 5,
        },
    ] {
        let error = saved_state::encode(&bad, &mut out).expect_err("mismatch");
        assert_eq!(error, EncodeError::RecordMismatch { tag: 6 });
        assert_eq!(error.status(), NtStatus::UNSUCCESSFUL);
    }
}

// ---------------------------------------------------------------------------------------------
// Messages.

#[test]
fn errors_display_their_offset_and_details() {
    let error = DecodeError::new(
        37,
        DecodeErrorKind::TooManyRecords {
            count: 5000,
            capacity: 1024,
        },
    );
    let text = error.to_string();
    assert!(
        text.contains("37") && text.contains("5000") && text.contains("1024"),
        "{text}"
    );
    let text = format!("{:?}", error.kind());
    assert!(text.starts_with("TooManyRecords("), "{text}");
    let text = EncodeError::BufferTooSmall {
        needed: 100,
        available: 0,
    }
    .to_string();
    assert!(text.contains("100") && text.contains('0'), "{text}");
}

// ---------------------------------------------------------------------------------------------
// The worked example of docs/saved-state-format.md.

const SPEC: &str = include_str!("../../../docs/saved-state-format.md");

/// The example's state: field 1 `u32`, field 2 critical `u16`, field 3 records (`u16`, `u8`).
struct Example;

const EXAMPLE_VALUE: Tag = Tag::new(1);
const EXAMPLE_CRITICAL: Tag = Tag::critical(2);
const EXAMPLE_TABLE: Tag = Tag::new(3);
const EXAMPLE_ROWS: [(u16, u8); 2] = [(1, 0xAA), (2, 0xBB)];

impl SavedState for Example {
    const KIND: BlobKind = BlobKind::ChannelSession;
    fn payload_len(&self) -> usize {
        field_len(4) + field_len(2) + records_field_len(EXAMPLE_ROWS.len(), 3)
    }
    fn encode_payload(&self, w: &mut FieldWriter<'_>) -> Result<(), EncodeError> {
        w.u32(EXAMPLE_VALUE, 42)?;
        w.u16(EXAMPLE_CRITICAL, 7)?;
        let mut table = w.records(EXAMPLE_TABLE, 2, 3)?;
        for (a, b) in EXAMPLE_ROWS {
            table.next_record()?;
            table.u16(a)?;
            table.u8(b)?;
        }
        table.finish()
    }
}

/// The bytes of the dump between the `golden` markers; each line's offset is checked against
/// the bytes before it.
fn documented_example() -> Vec<u8> {
    let start = SPEC.find("<!-- golden:begin -->").expect("begin marker");
    let end = SPEC.find("<!-- golden:end -->").expect("end marker");
    let mut bytes = Vec::new();
    for line in SPEC[start..end].lines() {
        let Some((data, _meaning)) = line.split_once('|') else {
            continue;
        };
        let mut tokens = data.split_whitespace();
        let Some(offset) = tokens
            .next()
            .and_then(|t| usize::from_str_radix(t, 16).ok())
        else {
            continue; // the column titles
        };
        assert_eq!(offset, bytes.len(), "offset column of line {line:?}");
        for token in tokens {
            bytes.push(u8::from_str_radix(token, 16).expect("hex byte"));
        }
    }
    bytes
}

#[test]
fn worked_example_in_the_format_spec_matches_the_encoder() {
    let documented = documented_example();
    assert_eq!(documented.len(), 56);
    assert_eq!(encode_to_vec(&Example), documented);

    // What the page says about reading it.
    let payload = saved_state::open(&documented, BlobKind::ChannelSession).expect("open");
    let read = payload.read(|f| {
        let value = f.require(EXAMPLE_VALUE)?.u32()?;
        let critical = f.require(EXAMPLE_CRITICAL)?.u16()?;
        let table = f.require(EXAMPLE_TABLE)?.records(2)?;
        let rows: Vec<(u16, u8)> = table
            .iter()
            .map(|record| {
                let mut r = record.reader();
                Ok((r.u16()?, r.u8()?))
            })
            .collect::<Result<_, DecodeError>>()?;
        Ok((value, critical, rows))
    });
    assert_eq!(read, Ok((42, 7, EXAMPLE_ROWS.to_vec())));

    let without_field_2 = payload.read(|f| {
        let _ = f.require(EXAMPLE_VALUE)?;
        f.require(EXAMPLE_TABLE).map(|_| ())
    });
    let error = without_field_2.expect_err("critical field 2 unknown");
    assert_eq!(
        (error.offset(), error.kind()),
        (0x1e, DecodeErrorKind::UnknownCriticalField { tag: 0x8002 })
    );

    let mut edited = documented.clone();
    edited[0x30] = 4;
    assert_eq!(
        saved_state::open(&edited, BlobKind::ChannelSession)
            .expect_err("not resealed")
            .offset(),
        16
    );
    reseal(&mut edited);
    let table = saved_state::open(&edited, BlobKind::ChannelSession)
        .expect("framing is still fine")
        .fields()
        .nth(2)
        .expect("field 3")
        .expect("framed");
    let error = table.records(2).expect_err("12 != 6 + 2 x 4");
    assert_eq!(
        (error.offset(), error.kind()),
        (0x26, DecodeErrorKind::BadFieldLength { tag: 3, length: 12 })
    );
}

// ---------------------------------------------------------------------------------------------
// The lookup rules, against a model.

proptest! {
    /// A payload of random fields (ascending numbers, random critical bits) read by a decoder
    /// that knows a random set of numbers: refused exactly when some field is critical and
    /// unknown (the first such one is named), otherwise every known field present is found
    /// with its value and every known field absent reads as absent.
    #[test]
    fn lookup_skips_unknown_fields_and_refuses_unknown_critical_ones(
        present in proptest::collection::btree_map(1u16..40, (any::<bool>(), any::<u32>()), 0..12),
        known in proptest::collection::btree_set(1u16..40, 0..12),
    ) {
        let payload: Vec<u8> = present
            .iter()
            .flat_map(|(&number, &(critical, value))| {
                let tag = if critical { Tag::critical(number) } else { Tag::new(number) };
                raw_field(tag.raw(), &value.to_le_bytes())
            })
            .collect();
        let blob = raw_blob(1, FORMAT_VERSION, &payload);
        let opened = saved_state::open(&blob, BlobKind::OutgoingTransaction).expect("open");
        let result = opened.read(|f| {
            let mut found = Vec::new();
            for &number in &known {
                let value = f.optional(Tag::new(number))?.map(|field| field.u32()).transpose()?;
                found.push((number, value));
            }
            Ok(found)
        });

        let first_unknown_critical = present
            .iter()
            .find(|(number, (critical, _))| *critical && !known.contains(number))
            .map(|(&number, _)| Tag::critical(number).raw());
        match first_unknown_critical {
            Some(tag) => prop_assert_eq!(
                result.map_err(|e| e.kind()),
                Err(DecodeErrorKind::UnknownCriticalField { tag })
            ),
            None => {
                let expected: Vec<(u16, Option<u32>)> = known
                    .iter()
                    .map(|number| (*number, present.get(number).map(|&(_, value)| value)))
                    .collect();
                prop_assert_eq!(result, Ok(expected));
            }
        }
    }
}
