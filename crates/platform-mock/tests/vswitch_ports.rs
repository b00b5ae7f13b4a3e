//! The simulated vSwitch with ferry's callout: pended saves, a save that never finishes,
//! restore under a new port id, and refused blobs that leave nothing behind.

mod common;

use common::{host, nic};
use ferry_core::port::{
    Direction, FlowKey, FrameInfo, PortConfig, PortCounters, RateLimit, SwitchPortId,
};
use ferry_core::status::NtStatus;
use ferry_platform_mock::clock::VirtualTime;
use ferry_platform_mock::driver::PortSaveMode;
use ferry_platform_mock::vswitch::SaveProgress;

fn busy_port(h: &common::TestHost, time: &VirtualTime) -> SwitchPortId {
    let limit = RateLimit {
        bytes_per_second: 100_000,
        burst_bytes: 4_000,
    };
    h.driver.set_port_config(
        nic(1),
        PortConfig {
            ingress: limit,
            egress: RateLimit::UNLIMITED,
        },
    );
    let port = h
        .services
        .vswitch
        .create_port(nic(1), h.driver.as_ref())
        .unwrap();
    for i in 0..40u16 {
        time.advance(700);
        let frame = FrameInfo {
            direction: if i % 3 == 0 {
                Direction::Egress
            } else {
                Direction::Ingress
            },
            flow: FlowKey::v4(
                [10, 0, 0, 1],
                [10, 0, 1, (i % 7) as u8],
                1000 + i % 7,
                443,
                6,
            ),
            length: 600,
        };
        h.services
            .vswitch
            .classify(port, &frame, h.driver.as_ref())
            .unwrap();
    }
    port
}

fn save(h: &common::TestHost, port: SwitchPortId, mode: PortSaveMode) -> u64 {
    h.driver.port_save_mode.set(mode);
    let oid = h
        .services
        .vswitch
        .request_save(port, h.services.clock.now(), h.driver.as_ref());
    h.driver.port_save_mode.set(PortSaveMode::Synchronous);
    oid
}

#[test]
fn a_pended_save_finishes_through_notify_complete() {
    let time = VirtualTime::new();
    let h = host(&time, 3, 10);
    let port = busy_port(&h, &time);
    let oid = save(&h, port, PortSaveMode::Pending);
    assert!(matches!(
        h.services
            .vswitch
            .save_progress(oid, h.services.clock.now()),
        Some(SaveProgress::Pending { .. })
    ));
    assert_eq!(h.driver.finishable_saves(&[port]), vec![port]);
    h.driver.finish_port_save(port);
    let Some(SaveProgress::Saved(blob)) = h
        .services
        .vswitch
        .save_progress(oid, h.services.clock.now())
    else {
        panic!("the save did not finish");
    };
    assert!(!blob.is_empty());
    assert_eq!(h.driver.pending_saves(), 0);
    assert!(h.services.vswitch.take_violations().is_empty());
}

#[test]
fn a_save_that_never_finishes_is_detected_and_its_late_completion_counted() {
    let time = VirtualTime::new();
    let h = host(&time, 3, 10);
    let port = busy_port(&h, &time);
    let oid = save(&h, port, PortSaveMode::Hang);
    assert!(
        h.driver.finishable_saves(&[port]).is_empty(),
        "a hung save is never finished by the callout"
    );
    time.advance(1_000_000);
    let Some(SaveProgress::Pending { outstanding }) = h
        .services
        .vswitch
        .save_progress(oid, h.services.clock.now())
    else {
        panic!("expected a pending save");
    };
    assert!(outstanding >= 1_000_000);
    h.services.vswitch.abandon_save(oid);
    h.driver.reap_overdue_saves(500_000);
    assert_eq!(h.driver.stats().saves_reaped, 1);
    assert_eq!(h.services.vswitch.stats().late_completions, 1);
    assert_eq!(h.driver.pending_saves(), 0);
    // The port can be saved again.
    let again = save(&h, port, PortSaveMode::Synchronous);
    assert!(matches!(
        h.services
            .vswitch
            .save_progress(again, h.services.clock.now()),
        Some(SaveProgress::Saved(_))
    ));
    assert!(h.services.vswitch.take_violations().is_empty());
}

#[test]
fn deleting_a_port_cancels_its_pended_save_exactly_once() {
    let time = VirtualTime::new();
    let h = host(&time, 3, 10);
    let port = busy_port(&h, &time);
    let oid = save(&h, port, PortSaveMode::Pending);
    h.services.vswitch.delete_port(port, h.driver.as_ref());
    assert_eq!(
        h.services
            .vswitch
            .save_progress(oid, h.services.clock.now()),
        Some(SaveProgress::Failed(NtStatus::CANCELLED))
    );
    h.driver.finish_port_save(port);
    assert!(
        h.services.vswitch.take_violations().is_empty(),
        "no second completion"
    );
}

#[test]
fn restore_lands_under_the_destination_port_id_with_the_same_state() {
    let time = VirtualTime::new();
    let src = host(&time, 3, 10);
    let dst = host(&time, 1 << 35, 5000);
    let port = busy_port(&src, &time);
    let at_save = src.driver.port_snapshot(port).unwrap();
    let oid = save(&src, port, PortSaveMode::Synchronous);
    let Some(SaveProgress::Saved(blob)) = src
        .services
        .vswitch
        .save_progress(oid, src.services.clock.now())
    else {
        panic!("no blob");
    };
    dst.driver.set_port_config(nic(1), at_save.config);
    let new_port = dst
        .services
        .vswitch
        .create_port(nic(1), dst.driver.as_ref())
        .unwrap();
    assert_ne!(new_port, port);
    assert!(
        dst.services
            .vswitch
            .restore(new_port, &blob, dst.driver.as_ref())
            .is_success()
    );
    let restored = dst.driver.port_snapshot(new_port).unwrap();
    assert_eq!(at_save.differences(&restored), Vec::<String>::new());
    assert!(
        at_save.counters.ingress.dropped_rate_limited.frames > 0,
        "the test exercises the rate limiter"
    );
}

#[test]
fn damaged_or_foreign_port_blobs_are_refused_and_nothing_is_installed() {
    let time = VirtualTime::new();
    let src = host(&time, 3, 10);
    let port = busy_port(&src, &time);
    let oid = save(&src, port, PortSaveMode::Synchronous);
    let Some(SaveProgress::Saved(blob)) = src
        .services
        .vswitch
        .save_progress(oid, src.services.clock.now())
    else {
        panic!("no blob");
    };
    let mut truncated = blob.clone();
    truncated.truncate(blob.len() - 3);
    let mut flipped = blob.clone();
    flipped[blob.len() / 2] ^= 0x04;
    for (what, bad) in [("truncated", truncated), ("bit-flipped", flipped)] {
        let dst = host(&time, 99, 700);
        let new_port = dst
            .services
            .vswitch
            .create_port(nic(1), dst.driver.as_ref())
            .unwrap();
        assert!(
            !dst.services
                .vswitch
                .restore(new_port, &bad, dst.driver.as_ref())
                .is_success(),
            "{what} accepted"
        );
        let state = dst.driver.port_snapshot(new_port).unwrap();
        assert_eq!(state.counters, PortCounters::ZERO, "{what} left counters");
        assert!(state.flows.is_empty(), "{what} left flows");
    }
    // Another NIC's blob.
    let dst = host(&time, 99, 700);
    let other = dst
        .services
        .vswitch
        .create_port(nic(2), dst.driver.as_ref())
        .unwrap();
    assert!(
        !dst.services
            .vswitch
            .restore(other, &blob, dst.driver.as_ref())
            .is_success()
    );
    assert_eq!(
        dst.driver.port_snapshot(other).unwrap().counters,
        PortCounters::ZERO
    );
}

/// Found by ferry-sim (`--flows 70`): a port whose flow table was full lost flows at restore
/// (a flow whose probe window wrapped past the end was re-placed and another evicted). Core
/// now restores a full table slot for slot; this keeps it so, and the campaign's scenarios
/// include full tables.
#[test]
fn a_full_flow_table_comes_back_whole() {
    let time = VirtualTime::new();
    let src = host(&time, 3, 10);
    let dst = host(&time, 1 << 34, 5000);
    let port = src
        .services
        .vswitch
        .create_port(nic(1), src.driver.as_ref())
        .unwrap();
    for i in 0..400u16 {
        time.advance(100);
        let frame = FrameInfo {
            direction: Direction::Ingress,
            flow: FlowKey::v4(
                [10, 0, 0, 1],
                [10, 9, (i >> 8) as u8, i as u8],
                2000 + i,
                80,
                6,
            ),
            length: 100,
        };
        src.services
            .vswitch
            .classify(port, &frame, src.driver.as_ref())
            .unwrap();
    }
    let at_save = src.driver.port_snapshot(port).unwrap();
    assert_eq!(
        at_save.flows.len(),
        ferry_platform_mock::driver::FLOWS,
        "the table is full"
    );
    let oid = save(&src, port, PortSaveMode::Synchronous);
    let Some(SaveProgress::Saved(blob)) = src
        .services
        .vswitch
        .save_progress(oid, src.services.clock.now())
    else {
        panic!("no blob");
    };
    let new_port = dst
        .services
        .vswitch
        .create_port(nic(1), dst.driver.as_ref())
        .unwrap();
    assert!(
        dst.services
            .vswitch
            .restore(new_port, &blob, dst.driver.as_ref())
            .is_success()
    );
    let restored = dst.driver.port_snapshot(new_port).unwrap();
    assert_eq!(at_save.differences(&restored), Vec::<String>::new());
}
