//! What the simulated switch keeps of runtime-state saves: a result is handed over once (the
//! blob moved, not copied) and then forgotten, so repeated migrations of the same ports —
//! synchronous and pended saves alike — leave nothing behind, and a result nobody collected
//! is replaced by the port's next save rather than kept forever.

mod common;

use common::{TestHost, host, nic};
use ferry_core::port::{Direction, FlowKey, FrameInfo, PortConfig, SwitchPortId};
use ferry_platform_mock::clock::VirtualTime;
use ferry_platform_mock::driver::PortSaveMode;
use ferry_platform_mock::vswitch::{SaveProgress, SaveRetention};

const PORTS: u8 = 3;

/// Creates a port for NIC `n` and sends it a few flows.
fn port_with_flows(h: &TestHost, time: &VirtualTime, n: u8) -> SwitchPortId {
    h.driver.set_port_config(nic(n), PortConfig::UNLIMITED);
    let port = h
        .services
        .vswitch
        .create_port(nic(n), h.driver.as_ref())
        .unwrap();
    for i in 0..12u16 {
        time.advance(300);
        let frame = FrameInfo {
            direction: Direction::Ingress,
            flow: FlowKey::v4([10, 0, n, 1], [10, 0, 1, 2], 2000 + i, 80, 6),
            length: 400,
        };
        h.services
            .vswitch
            .classify(port, &frame, h.driver.as_ref())
            .unwrap();
    }
    port
}

/// Saves `port` (pended and finished by the callout if `pended`) and collects its blob.
fn save_and_collect(h: &TestHost, port: SwitchPortId, pended: bool) -> Vec<u8> {
    let mode = if pended {
        PortSaveMode::Pending
    } else {
        PortSaveMode::Synchronous
    };
    h.driver.port_save_mode.set(mode);
    let vswitch = &h.services.vswitch;
    let oid = vswitch.request_save(port, h.services.clock.now(), h.driver.as_ref());
    h.driver.port_save_mode.set(PortSaveMode::Synchronous);
    if pended {
        assert_eq!(vswitch.retained().requests, 1, "the pended request is held");
        h.driver.finish_port_save(port);
        assert!(
            vswitch.retained().blob_bytes > 0,
            "the finished blob is held"
        );
    }
    let Some(SaveProgress::Saved(blob)) = vswitch.save_progress(oid, h.services.clock.now()) else {
        panic!("port {} did not save", port.0);
    };
    assert_eq!(
        vswitch.save_progress(oid, h.services.clock.now()),
        None,
        "a result is handed over once"
    );
    blob
}

#[test]
fn repeated_migrations_leave_nothing_in_either_switch() {
    let time = VirtualTime::new();
    let hosts = [host(&time, 3, 10), host(&time, 1 << 33, 900)];
    let mut ports: Vec<SwitchPortId> = (1..=PORTS)
        .map(|n| port_with_flows(&hosts[0], &time, n))
        .collect();
    let mut blob_sizes = Vec::new();
    for round in 0..12 {
        let (from, to) = (&hosts[round % 2], &hosts[(round + 1) % 2]);
        let mut moved = Vec::new();
        for (n, &port) in (1..=PORTS).zip(&ports) {
            let blob = save_and_collect(from, port, (round + usize::from(n)) % 2 == 0);
            blob_sizes.push(blob.len());
            to.driver.set_port_config(nic(n), PortConfig::UNLIMITED);
            let new_port = to
                .services
                .vswitch
                .create_port(nic(n), to.driver.as_ref())
                .unwrap();
            assert!(
                to.services
                    .vswitch
                    .restore(new_port, &blob, to.driver.as_ref())
                    .is_success()
            );
            from.services
                .vswitch
                .delete_port(port, from.driver.as_ref());
            moved.push(new_port);
        }
        ports = moved;
        for h in &hosts {
            assert_eq!(
                h.services.vswitch.retained(),
                SaveRetention::default(),
                "round {round}"
            );
            assert!(h.services.vswitch.take_violations().is_empty());
        }
    }
    // The state moved intact each time: every blob carries the same flows.
    assert!(
        blob_sizes.iter().all(|&len| len == blob_sizes[0]),
        "{blob_sizes:?}"
    );
    let saves: u64 = hosts.iter().map(|h| h.services.vswitch.stats().saves).sum();
    assert_eq!(saves, 12 * u64::from(PORTS));
}

#[test]
fn an_uncollected_result_is_replaced_by_the_ports_next_save() {
    let time = VirtualTime::new();
    let h = host(&time, 3, 10);
    let port = port_with_flows(&h, &time, 1);
    let other = port_with_flows(&h, &time, 2);
    let vswitch = &h.services.vswitch;
    let now = h.services.clock.now();
    // Saves whose results nobody collects (a migration given up after the save).
    let abandoned = vswitch.request_save(port, now, h.driver.as_ref());
    let kept = vswitch.request_save(other, now, h.driver.as_ref());
    let held = vswitch.retained();
    assert_eq!(held.requests, 2);
    assert!(held.blob_bytes > 0);
    for _ in 0..5 {
        let blob = save_and_collect(&h, port, false);
        assert!(!blob.is_empty());
        // Only the other port's uncollected result remains.
        assert_eq!(vswitch.retained().requests, 1);
    }
    assert_eq!(vswitch.stats().uncollected_replaced, 1);
    assert_eq!(vswitch.save_progress(abandoned, now), None, "replaced");
    assert!(matches!(
        vswitch.save_progress(kept, now),
        Some(SaveProgress::Saved(_))
    ));
    assert_eq!(vswitch.retained(), SaveRetention::default());
}

#[test]
fn an_abandoned_save_is_forgotten_when_its_late_completion_arrives() {
    let time = VirtualTime::new();
    let h = host(&time, 3, 10);
    let port = port_with_flows(&h, &time, 1);
    let vswitch = &h.services.vswitch;
    h.driver.port_save_mode.set(PortSaveMode::Hang);
    let oid = vswitch.request_save(port, h.services.clock.now(), h.driver.as_ref());
    h.driver.port_save_mode.set(PortSaveMode::Synchronous);
    time.advance(1_000_000);
    vswitch.abandon_save(oid);
    assert_eq!(vswitch.retained().requests, 1, "held until it completes");
    h.driver.reap_overdue_saves(500_000);
    assert_eq!(vswitch.stats().late_completions, 1);
    assert_eq!(vswitch.retained(), SaveRetention::default());
    assert!(vswitch.take_violations().is_empty());
}
