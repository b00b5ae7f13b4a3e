//! The port runtime-state blob (kind 2): save, restore under another port id, refusal of
//! damaged or foreign blobs without touching the live port, and its size.

// Port tables are built by value here (a few KiB; the 1024-flow one about 100 KiB), far below
// a test thread's 2 MiB stack; the lints' 2 KiB threshold is meant for kernel code.
#![allow(clippy::large_stack_frames, clippy::large_stack_arrays)]

use ferry_core::lock::SpinRawLock;
use ferry_core::platform::Ticks;
use ferry_core::port::rate::BucketSnapshotError;
use ferry_core::port::saved::{FLOW_RECORD_LEN, tags};
use ferry_core::port::{
    Direction, FlowKey, FrameInfo, PortConfig, PortError, PortIdentity, PortTable, RateLimit,
    RestoreError, SwitchPortId, Verdict,
};
use ferry_core::saved_state::{
    self, BlobKind, DecodeErrorKind, EncodeError, FieldWriter, SavedState, Tag, field_len,
};
use proptest::prelude::*;

const SECOND: u64 = Ticks::PER_SECOND;
const FLOWS: usize = 32;
type Table = PortTable<SpinRawLock, 4, FLOWS>;

const NIC: PortIdentity = PortIdentity(*b"vm-7/nic-1......");
const OTHER_NIC: PortIdentity = PortIdentity(*b"vm-9/nic-0......");

fn save(table: &Table, id: SwitchPortId, now: Ticks) -> Vec<u8> {
    let mut blob = vec![0; table.saved_len(id, now).unwrap()];
    let len = table.save_port(id, now, &mut blob).unwrap();
    assert_eq!(len, blob.len(), "saved_len is exact");
    blob
}

fn flow(n: u16) -> FlowKey {
    if n.is_multiple_of(3) {
        let mut dst = [0x20; 16];
        dst[15] = n as u8;
        FlowKey::v6([0xFE; 16], dst, n, 53, 17)
    } else {
        FlowKey::v4([192, 168, 0, n as u8], [10, 0, 0, 1], 1000 + n, 80, 6)
    }
}

fn frame(direction: Direction, n: u16, length: u32) -> FrameInfo {
    FrameInfo {
        direction,
        flow: flow(n),
        length,
    }
}

fn config(rate: u64, burst: u64) -> PortConfig {
    PortConfig {
        ingress: RateLimit {
            bytes_per_second: rate,
            burst_bytes: burst,
        },
        egress: RateLimit {
            bytes_per_second: rate / 2,
            burst_bytes: burst,
        },
    }
}

/// A source port with some traffic, saved at `now`.
fn busy_port(table: &Table, id: SwitchPortId, identity: Option<PortIdentity>, flows: u16) {
    table
        .create_port(id, identity, config(10_000, 4_000))
        .unwrap();
    for n in 0..flows {
        let direction = if n.is_multiple_of(2) {
            Direction::Ingress
        } else {
            Direction::Egress
        };
        table
            .classify(
                id,
                &frame(direction, n, 100 + u32::from(n)),
                Ticks(u64::from(n) * 1000),
            )
            .unwrap();
    }
}

#[derive(Clone, Debug)]
struct Step {
    direction: Direction,
    flow: u16,
    length: u32,
    gap: u64,
}

fn step() -> impl Strategy<Value = Step> {
    // Fewer keys than slots: the table always keeps a free slot.
    step_over(FLOWS as u16 - 4)
}

fn step_over(keys: u16) -> impl Strategy<Value = Step> {
    (any::<bool>(), 0..keys, 0..3000u32, 0..(SECOND / 4)).prop_map(
        |(ingress, flow, length, gap)| Step {
            direction: if ingress {
                Direction::Ingress
            } else {
                Direction::Egress
            },
            flow,
            length,
            gap,
        },
    )
}

fn run(table: &Table, id: SwitchPortId, steps: &[Step], mut now: u64) -> (u64, Vec<Verdict>) {
    let mut verdicts = Vec::new();
    for s in steps {
        now += s.gap;
        verdicts.push(
            table
                .classify(id, &frame(s.direction, s.flow, s.length), Ticks(now))
                .unwrap(),
        );
    }
    (now, verdicts)
}

proptest! {
    /// Many more keys than slots: the table fills, evicts, and its probe windows wrap in ways
    /// re-insertion could not rebuild; a same-capacity restore must still be exact.
    #[test]
    fn a_full_flow_table_restores_slot_for_slot(
        before in proptest::collection::vec(step_over(FLOWS as u16 * 4), 40..200),
        after in proptest::collection::vec(step_over(FLOWS as u16 * 4), 0..60),
    ) {
        let source = Table::new();
        let destination = Table::new();
        let (from, to) = (SwitchPortId(1), SwitchPortId(2));
        source.create_port(from, Some(NIC), PortConfig::UNLIMITED).unwrap();
        let (saved_at, _) = run(&source, from, &before, 0);
        let blob = save(&source, from, Ticks(saved_at));
        destination.create_port(to, Some(NIC), PortConfig::UNLIMITED).unwrap();
        destination.restore_port(to, &blob, Ticks(saved_at)).unwrap();
        prop_assert_eq!(save(&destination, to, Ticks(saved_at)), blob.clone());
        prop_assert_eq!(destination.counters(to), source.counters(from));
        let (source_end, _) = run(&source, from, &after, saved_at);
        let (destination_end, _) = run(&destination, to, &after, saved_at);
        prop_assert_eq!(
            save(&source, from, Ticks(source_end)),
            save(&destination, to, Ticks(destination_end))
        );
    }

    #[test]
    fn save_then_restore_under_another_port_id_gives_equal_state(
        rate in prop_oneof![Just(0u64), 1..100_000u64],
        burst in 1..10_000u64,
        before in proptest::collection::vec(step(), 0..80),
        after in proptest::collection::vec(step(), 0..40),
        host_offset in 0..1_000_000 * SECOND,
    ) {
        let source = Table::new();
        let destination = Table::new();
        let (from, to) = (SwitchPortId(3), SwitchPortId(0x1_0042));
        source.create_port(from, Some(NIC), config(rate, burst)).unwrap();
        let (saved_at, _) = run(&source, from, &before, 0);
        let blob = save(&source, from, Ticks(saved_at));

        // The destination host's clock reads differently; the port was created with defaults.
        let restored_at = saved_at + host_offset + 100 * SECOND;
        destination.create_port(to, Some(NIC), PortConfig::UNLIMITED).unwrap();
        destination.restore_port(to, &blob, Ticks(restored_at)).unwrap();

        prop_assert_eq!(save(&destination, to, Ticks(restored_at)), blob.clone());
        prop_assert_eq!(destination.counters(to), source.counters(from));
        prop_assert_eq!(
            destination.with_port(to, |s| s.config()),
            source.with_port(from, |s| s.config())
        );

        // Both continue identically on their own clocks.
        let (source_end, source_verdicts) = run(&source, from, &after, saved_at);
        let (destination_end, destination_verdicts) = run(&destination, to, &after, restored_at);
        prop_assert_eq!(source_verdicts, destination_verdicts);
        prop_assert_eq!(
            save(&source, from, Ticks(source_end)),
            save(&destination, to, Ticks(destination_end))
        );
    }

    #[test]
    fn a_damaged_blob_leaves_the_live_port_untouched(
        cut in any::<prop::sample::Index>(),
        flip in any::<prop::sample::Index>(),
        bit in 0..8u8,
    ) {
        let source = Table::new();
        busy_port(&source, SwitchPortId(1), Some(NIC), 12);
        let blob = save(&source, SwitchPortId(1), Ticks(SECOND));

        let destination = Table::new();
        busy_port(&destination, SwitchPortId(2), Some(NIC), 5);
        let now = Ticks(2 * SECOND);
        let before = save(&destination, SwitchPortId(2), now);

        let truncated = &blob[..cut.index(blob.len())];
        let result = destination.restore_port(SwitchPortId(2), truncated, now);
        prop_assert!(matches!(result, Err(PortError::Restore(RestoreError::Decode(_)))), "{:?}", result);
        prop_assert_eq!(&save(&destination, SwitchPortId(2), now), &before);

        let mut flipped = blob.clone();
        flipped[flip.index(blob.len())] ^= 1 << bit;
        let result = destination.restore_port(SwitchPortId(2), &flipped, now);
        prop_assert!(matches!(result, Err(PortError::Restore(RestoreError::Decode(_)))), "{:?}", result);
        prop_assert_eq!(&save(&destination, SwitchPortId(2), now), &before);
    }
}

#[test]
fn a_blob_of_another_nic_is_refused_and_changes_nothing() {
    let source = Table::new();
    busy_port(&source, SwitchPortId(1), Some(OTHER_NIC), 10);
    let foreign = save(&source, SwitchPortId(1), Ticks(SECOND));
    let anonymous_source = Table::new();
    busy_port(&anonymous_source, SwitchPortId(1), None, 10);
    let anonymous = save(&anonymous_source, SwitchPortId(1), Ticks(SECOND));

    let destination = Table::new();
    busy_port(&destination, SwitchPortId(5), Some(NIC), 3);
    let now = Ticks(3 * SECOND);
    let before = save(&destination, SwitchPortId(5), now);
    assert_eq!(
        destination.restore_port(SwitchPortId(5), &foreign, now),
        Err(PortError::Restore(RestoreError::IdentityMismatch {
            expected: NIC,
            found: Some(OTHER_NIC),
        }))
    );
    assert_eq!(
        destination.restore_port(SwitchPortId(5), &anonymous, now),
        Err(PortError::Restore(RestoreError::IdentityMismatch {
            expected: NIC,
            found: None,
        }))
    );
    assert_eq!(save(&destination, SwitchPortId(5), now), before);
}

#[test]
fn a_port_created_without_identity_adopts_the_blobs() {
    let source = Table::new();
    busy_port(&source, SwitchPortId(1), Some(NIC), 4);
    let blob = save(&source, SwitchPortId(1), Ticks(SECOND));
    let destination = Table::new();
    destination
        .create_port(SwitchPortId(8), None, PortConfig::UNLIMITED)
        .unwrap();
    assert!(destination.counters_by_identity(&NIC).is_err());
    destination
        .restore_port(SwitchPortId(8), &blob, Ticks(SECOND))
        .unwrap();
    let (id, counters) = destination.counters_by_identity(&NIC).unwrap();
    assert_eq!(id, SwitchPortId(8));
    assert_eq!(counters, source.counters(SwitchPortId(1)).unwrap());
}

#[test]
fn more_flows_than_the_destination_holds_is_refused() {
    let big = PortTable::<SpinRawLock, 1, 64>::new();
    big.create_port(SwitchPortId(1), Some(NIC), PortConfig::UNLIMITED)
        .unwrap();
    for n in 0..40 {
        big.classify(SwitchPortId(1), &frame(Direction::Ingress, n, 1), Ticks(1))
            .unwrap();
    }
    let flows = big.with_port(SwitchPortId(1), |s| s.flows().len()).unwrap();
    assert!(
        flows > FLOWS,
        "{flows} flows must exceed the destination's {FLOWS}"
    );
    let mut blob = vec![0; big.saved_len(SwitchPortId(1), Ticks(1)).unwrap()];
    big.save_port(SwitchPortId(1), Ticks(1), &mut blob).unwrap();

    let destination = Table::new();
    busy_port(&destination, SwitchPortId(2), Some(NIC), 3);
    let before = save(&destination, SwitchPortId(2), Ticks(1));
    let result = destination.restore_port(SwitchPortId(2), &blob, Ticks(1));
    let Err(PortError::Restore(RestoreError::Decode(error))) = result else {
        panic!("expected a decode error, got {result:?}");
    };
    assert!(matches!(
        error.kind(),
        DecodeErrorKind::TooManyRecords { capacity, .. } if capacity == FLOWS as u32
    ));
    assert_eq!(save(&destination, SwitchPortId(2), Ticks(1)), before);
}

#[test]
fn restoring_onto_a_missing_port_is_a_typed_error() {
    let source = Table::new();
    busy_port(&source, SwitchPortId(1), Some(NIC), 2);
    let blob = save(&source, SwitchPortId(1), Ticks(SECOND));
    assert_eq!(
        Table::new().restore_port(SwitchPortId(1), &blob, Ticks(0)),
        Err(PortError::UnknownPort(SwitchPortId(1)))
    );
}

#[test]
fn ages_saturate_on_a_younger_host() {
    let source = Table::new();
    source
        .create_port(SwitchPortId(1), Some(NIC), PortConfig::UNLIMITED)
        .unwrap();
    source
        .classify(
            SwitchPortId(1),
            &frame(Direction::Ingress, 1, 1),
            Ticks(SECOND),
        )
        .unwrap();
    let blob = save(&source, SwitchPortId(1), Ticks(1000 * SECOND));
    let destination = Table::new();
    destination
        .create_port(SwitchPortId(1), Some(NIC), PortConfig::UNLIMITED)
        .unwrap();
    destination
        .restore_port(SwitchPortId(1), &blob, Ticks(5 * SECOND))
        .unwrap();
    let last_seen = destination
        .with_port(SwitchPortId(1), |s| {
            s.flows().get(&flow(1)).unwrap().last_seen
        })
        .unwrap();
    assert_eq!(last_seen, Ticks(0));
}

#[test]
fn the_payload_holds_the_documented_fields_and_no_port_id() {
    let table = Table::new();
    let port = SwitchPortId(0xDEAD_BEEF);
    busy_port(&table, port, Some(NIC), 6);
    let blob = save(&table, port, Ticks(SECOND));
    let payload = saved_state::open(&blob, BlobKind::PortRuntimeState).unwrap();
    let numbers: Vec<u16> = payload
        .fields()
        .map(|f| f.unwrap().tag().number())
        .collect();
    let mut expected = vec![tags::IDENTITY.number()];
    expected.extend(tags::FIRST_COUNTER..tags::FIRST_COUNTER + 11);
    expected.extend(tags::FIRST_INGRESS_BUCKET..tags::FIRST_INGRESS_BUCKET + 5);
    expected.extend(tags::FIRST_EGRESS_BUCKET..tags::FIRST_EGRESS_BUCKET + 5);
    expected.push(tags::FLOWS.number());
    assert_eq!(numbers, expected);
    let port_id_bytes = port.0.to_le_bytes();
    assert!(
        !blob.windows(4).any(|w| w == port_id_bytes),
        "the switch port id must not appear in the blob"
    );
}

#[test]
fn blob_size_for_1024_flows() {
    // Built on the heap (about 100 KiB); a test thread's stack would also hold it, a kernel
    // stack never would.
    let table = Box::new(PortTable::<SpinRawLock, 1, 1024>::new());
    let port = SwitchPortId(1);
    table
        .create_port(port, Some(NIC), PortConfig::UNLIMITED)
        .unwrap();
    let mut n: u32 = 0;
    let mut flows = 0;
    let mut sizes = Vec::new();
    while flows < 1024 && n < 1_000_000 {
        let key = FlowKey::v4(n.to_be_bytes(), [10, 0, 0, 1], 40000, 443, 6);
        let frame = FrameInfo {
            direction: Direction::Ingress,
            flow: key,
            length: 1500,
        };
        table.classify(port, &frame, Ticks(u64::from(n))).unwrap();
        n += 1;
        let now = table.with_port(port, |s| s.flows().len()).unwrap();
        if now != flows {
            flows = now;
            sizes.push((flows, table.saved_len(port, Ticks(u64::from(n))).unwrap()));
        }
    }
    assert_eq!(flows, 1024, "the table filled up");
    // Each flow adds exactly one record.
    for pair in sizes.windows(2) {
        let ((f0, s0), (f1, s1)) = (pair[0], pair[1]);
        assert_eq!(s1 - s0, (f1 - f0) * usize::from(FLOW_RECORD_LEN));
    }
    let mut blob = vec![0; 70_000];
    let len = table
        .save_port(port, Ticks(u64::from(n)), &mut blob)
        .unwrap();
    assert_eq!(Some(&(1024, len)), sizes.last());
    println!("kind-2 blob for a port with 1024 flows: {len} bytes");
    // NDIS_SWITCH_NIC_SAVE_STATE.SaveDataSize is a USHORT.
    assert!(len <= usize::from(u16::MAX), "{len} bytes exceed 64 KiB");
}

/// A payload rebuilt field by field, to make blobs a ferry writer would not.
struct RawPayload(Vec<(Tag, Vec<u8>)>);

impl SavedState for RawPayload {
    const KIND: BlobKind = BlobKind::PortRuntimeState;

    fn payload_len(&self) -> usize {
        self.0.iter().map(|(_, value)| field_len(value.len())).sum()
    }

    fn encode_payload(&self, w: &mut FieldWriter<'_>) -> Result<(), EncodeError> {
        self.0
            .iter()
            .try_for_each(|(tag, value)| w.bytes(*tag, value))
    }
}

impl RawPayload {
    fn of(blob: &[u8]) -> Self {
        let payload = saved_state::open(blob, BlobKind::PortRuntimeState).unwrap();
        Self(
            payload
                .fields()
                .map(|f| {
                    let f = f.unwrap();
                    (f.tag(), f.bytes().to_vec())
                })
                .collect(),
        )
    }

    fn field_mut(&mut self, number: u16) -> &mut Vec<u8> {
        &mut self
            .0
            .iter_mut()
            .find(|(tag, _)| tag.number() == number)
            .unwrap()
            .1
    }

    fn blob(&self) -> Vec<u8> {
        let mut out = vec![0; saved_state::encoded_len(self)];
        saved_state::encode(self, &mut out).unwrap();
        out
    }
}

/// Rewrites every flow record of a records value with `edit`.
fn edit_records(value: &mut Vec<u8>, edit: impl Fn(&mut Vec<u8>)) {
    let count = u32::from_le_bytes(value[0..4].try_into().unwrap()) as usize;
    let len = usize::from(u16::from_le_bytes(value[4..6].try_into().unwrap()));
    let mut records: Vec<Vec<u8>> = (0..count)
        .map(|i| value[6 + i * len..6 + (i + 1) * len].to_vec())
        .collect();
    records.iter_mut().for_each(&edit);
    let new_len = records.first().map_or(len, Vec::len);
    let mut rebuilt = value[0..4].to_vec();
    rebuilt.extend_from_slice(&u16::try_from(new_len).unwrap().to_le_bytes());
    records.iter().for_each(|r| rebuilt.extend_from_slice(r));
    *value = rebuilt;
}

/// Restores `blob` onto a busy port and returns the result; asserts the port is untouched when
/// the restore fails.
fn restore_onto_busy_port(blob: &[u8]) -> (Result<(), PortError>, Table, Vec<u8>) {
    let destination = Table::new();
    busy_port(&destination, SwitchPortId(2), Some(NIC), 5);
    let now = Ticks(2 * SECOND);
    let before = save(&destination, SwitchPortId(2), now);
    let result = destination.restore_port(SwitchPortId(2), blob, now);
    if result.is_err() {
        assert_eq!(save(&destination, SwitchPortId(2), now), before);
    }
    (result, destination, before)
}

fn decode_error(result: Result<(), PortError>) -> DecodeErrorKind {
    match result {
        Err(PortError::Restore(RestoreError::Decode(error))) => error.kind(),
        other => panic!("expected a decode error, got {other:?}"),
    }
}

fn source_blob() -> Vec<u8> {
    let source = Table::new();
    busy_port(&source, SwitchPortId(1), Some(NIC), 9);
    save(&source, SwitchPortId(1), Ticks(SECOND))
}

#[test]
fn a_missing_required_field_is_refused() {
    for number in [
        tags::FIRST_COUNTER + 3,
        tags::FIRST_EGRESS_BUCKET,
        tags::FLOWS.number(),
    ] {
        let mut raw = RawPayload::of(&source_blob());
        raw.0.retain(|(tag, _)| tag.number() != number);
        let (result, ..) = restore_onto_busy_port(&raw.blob());
        assert!(
            matches!(decode_error(result), DecodeErrorKind::MissingField { tag } if tag == number),
            "field {number}"
        );
    }
}

#[test]
fn a_newer_minors_additions_are_skipped() {
    let original = source_blob();
    let mut raw = RawPayload::of(&original);
    raw.0.push((Tag::new(40), vec![1, 2, 3]));
    edit_records(raw.field_mut(tags::FLOWS.number()), |r| {
        r.extend_from_slice(&[0xAA; 4])
    });
    let (result, destination, _) = restore_onto_busy_port(&raw.blob());
    result.unwrap();
    // Saved at the restore time, the ages match those of the original blob.
    assert_eq!(
        save(&destination, SwitchPortId(2), Ticks(2 * SECOND)),
        original
    );

    let mut critical = RawPayload::of(&original);
    critical.0.push((Tag::critical(40), vec![1]));
    let (result, ..) = restore_onto_busy_port(&critical.blob());
    assert!(matches!(
        decode_error(result),
        DecodeErrorKind::UnknownCriticalField { .. }
    ));
}

/// A change to one flow record.
type RecordEdit = fn(&mut Vec<u8>);

#[test]
fn invalid_flow_records_are_refused() {
    let cases: [(&str, RecordEdit); 3] = [
        ("unknown family", |r| r[0] = 5),
        ("IPv4 address wider than 32 bits", |r| {
            if r[0] == 4 {
                r[6] = 1;
            }
        }),
        ("record too short", |r| r.truncate(60)),
    ];
    for (name, edit) in cases {
        let mut raw = RawPayload::of(&source_blob());
        edit_records(raw.field_mut(tags::FLOWS.number()), edit);
        let (result, ..) = restore_onto_busy_port(&raw.blob());
        let kind = decode_error(result);
        assert!(
            matches!(
                kind,
                DecodeErrorKind::InvalidValue { .. } | DecodeErrorKind::RecordTooShort { .. }
            ),
            "{name}: {kind:?}"
        );
    }
}

#[test]
fn inconsistent_rate_limit_fields_are_refused() {
    let mut raw = RawPayload::of(&source_blob());
    // Ingress tokens (third bucket field) above the burst (second).
    let burst = u64::from_le_bytes(
        raw.field_mut(tags::FIRST_INGRESS_BUCKET + 1)[..]
            .try_into()
            .unwrap(),
    );
    *raw.field_mut(tags::FIRST_INGRESS_BUCKET + 2) = (burst + 1).to_le_bytes().to_vec();
    let (result, ..) = restore_onto_busy_port(&raw.blob());
    assert_eq!(
        result,
        Err(PortError::Restore(RestoreError::InvalidRateLimit {
            direction: Direction::Ingress,
            error: BucketSnapshotError::TokensAboveBurst,
        }))
    );
}
