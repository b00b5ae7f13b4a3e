//! The v1.0 golden blob of kind 2 (port runtime state): it must keep restoring, with the values
//! asserted here, in every later ferry. A failure means a change broke migration from a
//! released version.
//!
//! The file was written once by `write_port_golden_blob` (ignored). Never regenerate a released
//! version's blob; add a directory for a new format version instead.

use ferry_core::lock::SpinRawLock;
use ferry_core::platform::Ticks;
use ferry_core::port::{
    Direction, FlowKey, FrameInfo, PortConfig, PortCounters, PortIdentity, PortTable, RateLimit,
    SwitchPortId, TrafficCounters, Verdict,
};
use ferry_core::saved_state::{self, BlobKind, Version};

const PORT_RUNTIME_STATE: &[u8] = include_bytes!("golden/v1.0/port-runtime-state.bin");

const SECOND: u64 = Ticks::PER_SECOND;
const NIC: PortIdentity = PortIdentity(*b"ferry-golden-nic");

type Table = PortTable<SpinRawLock, 2, 16>;

fn flow_a() -> FlowKey {
    FlowKey::v4([10, 0, 0, 1], [10, 0, 0, 2], 1000, 80, 6)
}

fn flow_b() -> FlowKey {
    let mut source = [0; 16];
    let mut destination = [0; 16];
    source[..2].copy_from_slice(&[0xFE, 0x80]);
    destination[..2].copy_from_slice(&[0xFE, 0x80]);
    source[15] = 1;
    destination[15] = 2;
    FlowKey::v6(source, destination, 53, 5353, 17)
}

fn golden_config() -> PortConfig {
    PortConfig {
        ingress: RateLimit {
            bytes_per_second: 1000,
            burst_bytes: 2000,
        },
        egress: RateLimit::UNLIMITED,
    }
}

/// The counters the traffic of `write_port_golden_blob` leaves.
fn golden_counters() -> PortCounters {
    let mut counters = PortCounters::ZERO;
    counters.ingress.permitted = TrafficCounters {
        frames: 2,
        bytes: 2100,
    };
    counters.ingress.dropped_rate_limited = TrafficCounters {
        frames: 1,
        bytes: 1000,
    };
    counters.egress.permitted = TrafficCounters {
        frames: 1,
        bytes: 300,
    };
    counters.flows_created = 2;
    counters
}

#[test]
#[ignore = "writes the released v1.0 golden blob; run only to create a new version's blobs"]
fn write_port_golden_blob() {
    let table = Table::new();
    let port = SwitchPortId(1);
    table.create_port(port, Some(NIC), golden_config()).unwrap();
    let frame = |direction, flow, length| FrameInfo {
        direction,
        flow,
        length,
    };
    let traffic = [
        (
            SECOND,
            frame(Direction::Ingress, flow_a(), 1500),
            Verdict::Permit,
        ),
        (
            SECOND,
            frame(Direction::Ingress, flow_a(), 1000),
            Verdict::Drop(ferry_core::port::DropReason::RateLimited),
        ),
        (
            2 * SECOND,
            frame(Direction::Egress, flow_b(), 300),
            Verdict::Permit,
        ),
        (
            5 * SECOND / 2,
            frame(Direction::Ingress, flow_a(), 600),
            Verdict::Permit,
        ),
    ];
    for (at, frame, verdict) in traffic {
        assert_eq!(table.classify(port, &frame, Ticks(at)), Ok(verdict));
    }
    let now = Ticks(3 * SECOND);
    let mut blob = vec![0; table.saved_len(port, now).unwrap()];
    table.save_port(port, now, &mut blob).unwrap();
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/golden/v1.0/port-runtime-state.bin"
    );
    std::fs::write(path, blob).unwrap();
}

#[test]
fn v1_0_port_runtime_state_restores_under_a_new_port_id() {
    let payload = saved_state::open(PORT_RUNTIME_STATE, BlobKind::PortRuntimeState).unwrap();
    assert_eq!(payload.version(), Version { major: 1, minor: 0 });

    let table = Table::new();
    let port = SwitchPortId(77);
    table
        .create_port(port, Some(NIC), PortConfig::UNLIMITED)
        .unwrap();
    let now = Ticks(100 * SECOND);
    table.restore_port(port, PORT_RUNTIME_STATE, now).unwrap();

    assert_eq!(table.counters(port), Ok(golden_counters()));
    let (config, ingress_tokens, a, b, flows) = table
        .with_port(port, |s| {
            (
                s.config(),
                s.bucket(Direction::Ingress).tokens(),
                s.flows().get(&flow_a()).unwrap(),
                s.flows().get(&flow_b()).unwrap(),
                s.flows().len(),
            )
        })
        .unwrap();
    assert_eq!(config, golden_config());
    // 2000 burst, 1500 spent at 1 s, full again by 2.5 s, then 600 spent.
    assert_eq!(ingress_tokens, 1400);
    assert_eq!(flows, 2);
    assert_eq!(
        a.counters,
        TrafficCounters {
            frames: 3,
            bytes: 3100
        }
    );
    // Saved at 3 s: flow A last seen 0.5 s before, flow B 1 s before.
    assert_eq!(a.last_seen, Ticks(now.0 - SECOND / 2));
    assert_eq!(
        b.counters,
        TrafficCounters {
            frames: 1,
            bytes: 300
        }
    );
    assert_eq!(b.last_seen, Ticks(now.0 - SECOND));

    // The bucket resumes where it was: its last refill was 0.5 s before the save, so a tenth
    // of a second after the restore it earns 0.6 s (600 bytes): 1400 + 600 = 2000, just enough.
    assert_eq!(
        table.classify(
            port,
            &FrameInfo {
                direction: Direction::Ingress,
                flow: flow_a(),
                length: 2000,
            },
            Ticks(now.0 + SECOND / 10),
        ),
        Ok(Verdict::Permit)
    );

    // Canonical: saved again at the restore time, the bytes are the golden ones.
    let fresh = Table::new();
    fresh
        .create_port(port, Some(NIC), PortConfig::UNLIMITED)
        .unwrap();
    fresh.restore_port(port, PORT_RUNTIME_STATE, now).unwrap();
    let mut out = vec![0; fresh.saved_len(port, now).unwrap()];
    assert_eq!(
        fresh.save_port(port, now, &mut out),
        Ok(PORT_RUNTIME_STATE.len())
    );
    assert_eq!(out, PORT_RUNTIME_STATE);
    assert_eq!(
        PORT_RUNTIME_STATE.len(),
        348 + 2 * 62,
        "size formula in docs/saved-state/port-runtime-state.md"
    );
}

#[test]
fn v1_0_port_runtime_state_is_refused_as_another_kind() {
    assert!(saved_state::open(PORT_RUNTIME_STATE, BlobKind::ChannelSession).is_err());
    assert!(saved_state::open(PORT_RUNTIME_STATE, BlobKind::OutgoingTransaction).is_err());
}
