//! The port table through its public API: life cycle, classify and counters.

// Port tables are built by value here (a few KiB; the 1024-flow one about 100 KiB), far below
// a test thread's 2 MiB stack; the lints' 2 KiB threshold is meant for kernel code.
#![allow(clippy::large_stack_frames, clippy::large_stack_arrays)]

use ferry_core::lock::SpinRawLock;
use ferry_core::platform::Ticks;
use ferry_core::port::{
    Direction, DropReason, FlowKey, FrameInfo, PROBE_WINDOW, PortConfig, PortError, PortIdentity,
    PortTable, RateLimit, SwitchPortId, Verdict,
};
use std::sync::Arc;
use std::thread;

type Table = PortTable<SpinRawLock, 4, 16>;

const SECOND: u64 = Ticks::PER_SECOND;

fn frame(direction: Direction, source_port: u16, length: u32) -> FrameInfo {
    FrameInfo {
        direction,
        flow: FlowKey::v4([10, 0, 0, 1], [10, 0, 0, 2], source_port, 443, 6),
        length,
    }
}

fn limited(bytes_per_second: u64, burst_bytes: u64) -> RateLimit {
    RateLimit {
        bytes_per_second,
        burst_bytes,
    }
}

#[test]
fn classify_counts_each_direction_separately() {
    let table = Table::new();
    let port = SwitchPortId(7);
    table
        .create_port(port, None, PortConfig::UNLIMITED)
        .unwrap();
    let verdicts = [
        table.classify(port, &frame(Direction::Ingress, 1, 100), Ticks(1)),
        table.classify(port, &frame(Direction::Ingress, 2, 50), Ticks(2)),
        table.classify(port, &frame(Direction::Egress, 1, 1500), Ticks(3)),
    ];
    assert!(verdicts.iter().all(|v| *v == Ok(Verdict::Permit)));
    let counters = table.counters(port).unwrap();
    assert_eq!(counters.ingress.permitted.frames, 2);
    assert_eq!(counters.ingress.permitted.bytes, 150);
    assert_eq!(counters.egress.permitted.frames, 1);
    assert_eq!(counters.egress.permitted.bytes, 1500);
    assert_eq!(counters.ingress.dropped_rate_limited.frames, 0);
    // Source ports 1 and 2: two flows, the egress frame hit flow 1.
    assert_eq!(counters.flows_created, 2);
    let flow = table
        .with_port(port, |state| {
            state
                .flows()
                .get(&frame(Direction::Ingress, 1, 0).flow)
                .unwrap()
        })
        .unwrap();
    assert_eq!(flow.counters.frames, 2);
    assert_eq!(flow.counters.bytes, 1600);
    assert_eq!(flow.last_seen, Ticks(3));
}

#[test]
fn rate_limit_drops_are_counted_by_reason_and_direction() {
    let table = Table::new();
    let port = SwitchPortId(1);
    let config = PortConfig {
        ingress: limited(1000, 1000),
        egress: RateLimit::UNLIMITED,
    };
    table.create_port(port, None, config).unwrap();
    let now = Ticks(5 * SECOND);
    assert_eq!(
        table.classify(port, &frame(Direction::Ingress, 1, 800), now),
        Ok(Verdict::Permit)
    );
    assert_eq!(
        table.classify(port, &frame(Direction::Ingress, 1, 800), now),
        Ok(Verdict::Drop(DropReason::RateLimited))
    );
    // The egress direction has its own (unlimited) bucket.
    assert_eq!(
        table.classify(port, &frame(Direction::Egress, 1, 800), now),
        Ok(Verdict::Permit)
    );
    // A second later the ingress bucket has refilled.
    assert_eq!(
        table.classify(port, &frame(Direction::Ingress, 1, 800), Ticks(6 * SECOND)),
        Ok(Verdict::Permit)
    );
    let counters = table.counters(port).unwrap();
    assert_eq!(counters.ingress.permitted.frames, 2);
    assert_eq!(counters.ingress.dropped_rate_limited.frames, 1);
    assert_eq!(counters.ingress.dropped_rate_limited.bytes, 800);
    assert_eq!(counters.egress.permitted.frames, 1);
    assert_eq!(counters.egress.dropped_rate_limited.frames, 0);
}

#[test]
fn create_delete_duplicate_and_full() {
    let table = Table::new();
    for id in 0..4 {
        table
            .create_port(SwitchPortId(id), None, PortConfig::UNLIMITED)
            .unwrap();
    }
    assert_eq!(
        table.create_port(SwitchPortId(2), None, PortConfig::UNLIMITED),
        Err(PortError::DuplicatePort(SwitchPortId(2)))
    );
    assert_eq!(
        table.create_port(SwitchPortId(9), None, PortConfig::UNLIMITED),
        Err(PortError::TableFull)
    );
    table.delete_port(SwitchPortId(2)).unwrap();
    assert_eq!(
        table.delete_port(SwitchPortId(2)),
        Err(PortError::UnknownPort(SwitchPortId(2)))
    );
    assert_eq!(
        table.counters(SwitchPortId(2)),
        Err(PortError::UnknownPort(SwitchPortId(2)))
    );
    table
        .create_port(SwitchPortId(9), None, PortConfig::UNLIMITED)
        .unwrap();
    assert_eq!(table.len(), 4);
}

#[test]
fn a_rate_without_burst_is_refused() {
    let table = Table::new();
    let config = PortConfig {
        ingress: RateLimit::UNLIMITED,
        egress: limited(100, 0),
    };
    assert_eq!(
        table.create_port(SwitchPortId(1), None, config),
        Err(PortError::InvalidConfig)
    );
    assert!(table.is_empty());
}

#[test]
fn unknown_port_is_a_typed_error() {
    let table = Table::new();
    assert_eq!(
        table.classify(SwitchPortId(3), &frame(Direction::Egress, 1, 1), Ticks(0)),
        Err(PortError::UnknownPort(SwitchPortId(3)))
    );
}

#[test]
fn a_recreated_port_starts_from_zero() {
    let table = Table::new();
    let port = SwitchPortId(5);
    table
        .create_port(port, None, PortConfig::UNLIMITED)
        .unwrap();
    table
        .classify(port, &frame(Direction::Ingress, 1, 10), Ticks(1))
        .unwrap();
    table.delete_port(port).unwrap();
    table
        .create_port(port, None, PortConfig::UNLIMITED)
        .unwrap();
    let counters = table.counters(port).unwrap();
    assert_eq!(counters.ingress.permitted.frames, 0);
    assert_eq!(counters.flows_created, 0);
    assert!(table.with_port(port, |s| s.flows().is_empty()).unwrap());
}

#[test]
fn statistics_are_found_by_identity() {
    let table = Table::new();
    let nic = PortIdentity(*b"vm-42/nic-0.....");
    table
        .create_port(SwitchPortId(1), None, PortConfig::UNLIMITED)
        .unwrap();
    table
        .create_port(SwitchPortId(2), Some(nic), PortConfig::UNLIMITED)
        .unwrap();
    table
        .classify(SwitchPortId(2), &frame(Direction::Egress, 1, 64), Ticks(1))
        .unwrap();
    let (id, counters) = table.counters_by_identity(&nic).unwrap();
    assert_eq!(id, SwitchPortId(2));
    assert_eq!(counters.egress.permitted.bytes, 64);
    assert_eq!(
        table.counters_by_identity(&PortIdentity([0; 16])),
        Err(PortError::UnknownIdentity)
    );
    table.delete_port(SwitchPortId(2)).unwrap();
    assert_eq!(
        table.counters_by_identity(&nic),
        Err(PortError::UnknownIdentity)
    );
}

#[test]
fn a_full_flow_table_evicts_and_counts() {
    let table = PortTable::<SpinRawLock, 1, 4>::new();
    let port = SwitchPortId(1);
    table
        .create_port(port, None, PortConfig::UNLIMITED)
        .unwrap();
    const {
        assert!(
            PROBE_WINDOW >= 4,
            "the window covers the whole 4-slot table"
        )
    };
    for (t, source_port) in (1..=4).enumerate() {
        table
            .classify(
                port,
                &frame(Direction::Ingress, source_port, 1),
                Ticks(t as u64),
            )
            .unwrap();
    }
    // Refresh flow 1 so flow 2 is the least recently seen.
    table
        .classify(port, &frame(Direction::Ingress, 1, 1), Ticks(10))
        .unwrap();
    table
        .classify(port, &frame(Direction::Ingress, 99, 1), Ticks(11))
        .unwrap();
    let counters = table.counters(port).unwrap();
    assert_eq!(counters.flows_created, 5);
    assert_eq!(counters.flows_evicted, 1);
    assert_eq!(counters.flow_table_full, 1);
    let (gone, kept) = table
        .with_port(port, |s| {
            (
                s.flows()
                    .get(&frame(Direction::Ingress, 2, 0).flow)
                    .is_none(),
                [1, 3, 4, 99].map(|p| {
                    s.flows()
                        .get(&frame(Direction::Ingress, p, 0).flow)
                        .is_some()
                }),
            )
        })
        .unwrap();
    assert!(gone);
    assert_eq!(kept, [true; 4]);
}

#[test]
fn classify_races_delete_and_create_without_confusion() {
    // Port 1 is deleted and re-created while another thread classifies on port 2, which must
    // count every one of its frames; classify on port 1 may fail but never reaches port 2.
    let table = Arc::new(Table::new());
    table
        .create_port(SwitchPortId(1), None, PortConfig::UNLIMITED)
        .unwrap();
    table
        .create_port(SwitchPortId(2), None, PortConfig::UNLIMITED)
        .unwrap();
    let churn = {
        let table = Arc::clone(&table);
        thread::spawn(move || {
            for _ in 0..500 {
                table.delete_port(SwitchPortId(1)).unwrap();
                table
                    .create_port(SwitchPortId(1), None, PortConfig::UNLIMITED)
                    .unwrap();
            }
        })
    };
    let mut port_one_ok = 0u64;
    for i in 0..2000u64 {
        table
            .classify(SwitchPortId(2), &frame(Direction::Ingress, 1, 1), Ticks(i))
            .unwrap();
        if table
            .classify(SwitchPortId(1), &frame(Direction::Egress, 1, 1), Ticks(i))
            .is_ok()
        {
            port_one_ok += 1;
        }
    }
    churn.join().unwrap();
    let two = table.counters(SwitchPortId(2)).unwrap();
    assert_eq!(two.ingress.permitted.frames, 2000);
    assert_eq!(two.egress.permitted.frames, 0);
    let one = table.counters(SwitchPortId(1)).unwrap();
    assert!(one.egress.permitted.frames <= port_one_ok);
}
