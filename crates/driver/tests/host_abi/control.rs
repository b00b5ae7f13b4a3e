//! The control device through the driver's real IRP dispatch: handles, offers, guest
//! traffic, port statistics, close and cleanup, and hostile requests.

use ferry_core::status::NtStatus;
use ferry_driver::wiring::CONTROL;
use ferry_platform_mock::rng::SimRng;
use ferry_platform_wdk::control::request::{
    IOCTL_CODES, IOCTL_FERRY_CLOSE_CHANNEL, IOCTL_FERRY_OFFER_CHANNEL, IOCTL_FERRY_OFFER_LOOPBACK,
    IOCTL_FERRY_PAUSE_CHANNEL, IOCTL_FERRY_READ_PORT_STATS, IOCTL_FERRY_RESTORE_CHANNEL,
    IOCTL_FERRY_SAVE_CHANNEL, IOCTL_VERSION, IoctlError, MAX_RESTORE_CHUNK, OFFER_INPUT_LEN,
    OFFER_OUTPUT_LEN, PORT_STATS_OUTPUT_LEN,
};
use ferry_platform_wdk::ffi::base::GUID;
use ferry_platform_wdk::ffi::kmcl::VMBUS_SERVER_CHANNEL_INIT_FLAG_LOOPBACK_OFFER;
use ferry_sim_abi::ioctl;
use ferry_sim_abi::nt::io;
use ferry_sim_abi::sim_host::Phase;

use crate::bench::{Bench, LINK_NAME, loopback_offer, nic, port_stats};

/// The phase of channel number `n` (in creation order) on host 0.
fn phase(bench: &Bench, n: usize) -> Phase {
    bench.hosts[0]
        .abi
        .channels
        .borrow()
        .values()
        .nth(n)
        .unwrap()
        .phase
}

#[test]
fn the_device_opens_only_through_its_link_while_loaded_and_handles_open_and_close() {
    let bench = Bench::new(10);
    assert_eq!(io::open(LINK_NAME), Err(io::STATUS_OBJECT_NAME_NOT_FOUND));
    bench.load_ok(0);
    assert_eq!(
        io::open("\\DosDevices\\Other"),
        Err(io::STATUS_OBJECT_NAME_NOT_FOUND)
    );
    let first = bench.open();
    let second = bench.open();
    let (cleanup, close) = first.close();
    assert_eq!(
        (cleanup.status, cleanup.information),
        (NtStatus::SUCCESS, 0)
    );
    assert_eq!((close.status, close.information), (NtStatus::SUCCESS, 0));
    second.close();
    bench.unload(0);
    assert_eq!(io::open(LINK_NAME), Err(io::STATUS_OBJECT_NAME_NOT_FOUND));
    bench.finish(&[]);
}

#[test]
fn an_offer_binds_the_vm_and_ids_it_asked_for_and_guest_traffic_flows_through_it() {
    let mut bench = Bench::new(11);
    bench.load_ok(0);
    let handle = bench.open();
    // The guest asks for its NIC's statistics: the switch has the port.
    let port = bench.create_port(0, nic(5));
    let mut vm = bench.offer(&handle, 0, 5, 0);
    {
        let channels = bench.hosts[0].abi.channels.borrow();
        let channel = channels.values().next().unwrap();
        assert_eq!(channel.phase, Phase::Enabled);
        assert_eq!(
            channel.vm,
            Some(5),
            "bound to the VM whose handle was passed"
        );
        let bytes = |b: [u8; 16]| ferry_platform_wdk::control::guid_from_bytes(b);
        let expected: (GUID, GUID) = (bytes([0x46; 16]), bytes([5; 16]));
        assert_eq!(channel.interface, Some(expected));
        assert_eq!(channel.maximum_packet_size, Some(0x4000));
        assert_eq!(
            channel.server_flags & VMBUS_SERVER_CHANNEL_INIT_FLAG_LOOPBACK_OFFER,
            0
        );
    }
    assert_eq!(
        bench.hosts[0].abi.vms.borrow().len(),
        1,
        "one kernel VMBus handle held"
    );

    bench.traffic(&mut vm, 20);
    assert!(vm.guest.ledger.responses > 0, "{:?}", vm.guest.ledger);
    assert_eq!(bench.delivered(&vm), vm.guest.ledger.requests_sent);

    let close = ioctl::channel(vm.channel);
    let reply = handle.device_control(IOCTL_FERRY_CLOSE_CHANNEL, &close, 0);
    assert_eq!((reply.status, reply.information), (NtStatus::SUCCESS, 0));
    assert_eq!(phase(&bench, 0), Phase::CleanedUp);
    assert!(
        bench.hosts[0].abi.vms.borrow().is_empty(),
        "ZwClose of the VMBus handle"
    );
    let reply = handle.device_control(IOCTL_FERRY_CLOSE_CHANNEL, &close, 0);
    assert_eq!(reply.status, NtStatus::NOT_FOUND, "closed once");
    handle.close();
    bench.delete_port(0, port);
    bench.unload(0);
    bench.finish(&[vm]);
}

#[test]
fn a_loopback_offer_binds_no_vm_and_each_handles_cleanup_closes_only_its_channels() {
    let mut bench = Bench::new(12);
    bench.load_ok(0);
    let worker = bench.open();
    let tool = bench.open();
    let vm = bench.offer(&worker, 0, 9, 0);
    let loopback = bench.offer_loopback(&tool).unwrap();
    assert_ne!(loopback, vm.channel);
    {
        let channels = bench.hosts[0].abi.channels.borrow();
        let channel = channels.values().nth(1).unwrap();
        assert_ne!(
            channel.server_flags & VMBUS_SERVER_CHANNEL_INIT_FLAG_LOOPBACK_OFFER,
            0
        );
        assert_eq!(channel.vm, None);
    }
    // The tool cannot close, pause or save the worker's channel.
    for code in [
        IOCTL_FERRY_CLOSE_CHANNEL,
        IOCTL_FERRY_PAUSE_CHANNEL,
        IOCTL_FERRY_SAVE_CHANNEL,
    ] {
        let reply = tool.device_control(code, &ioctl::channel(vm.channel), 64);
        assert_eq!(reply.status, NtStatus::NOT_FOUND, "{code:#x}");
    }
    assert_eq!(phase(&bench, 0), Phase::Enabled);

    tool.close();
    assert_eq!(
        phase(&bench, 1),
        Phase::CleanedUp,
        "the tool's loopback channel"
    );
    assert_eq!(phase(&bench, 0), Phase::Enabled, "not the worker's");
    assert_eq!(CONTROL.registry().len(), 1);
    worker.close();
    assert_eq!(phase(&bench, 0), Phase::CleanedUp);
    assert!(CONTROL.registry().is_empty());
    assert!(bench.hosts[0].abi.vms.borrow().is_empty());
    bench.unload(0);
    bench.finish(&[vm]);
}

#[test]
fn port_statistics_count_the_frames_the_ingress_callout_classified() {
    let bench = Bench::new(13);
    bench.load_ok(0);
    let handle = bench.open();
    let port = bench.create_port(0, nic(3));
    bench.ingress_frames(port, 5, 100);
    let (status, stats) = port_stats(&handle, nic(3));
    assert_eq!(status, NtStatus::SUCCESS);
    let (id, frames, bytes, flows) = stats.unwrap();
    assert_eq!((id, frames, bytes), (port.0, 5, 500));
    assert_eq!(flows, 5, "five destinations, five flows");
    assert_eq!(port_stats(&handle, nic(4)).0, NtStatus::NOT_FOUND);
    let short = handle.device_control(
        IOCTL_FERRY_READ_PORT_STATS,
        &ioctl::port_stats(nic(3).0),
        PORT_STATS_OUTPUT_LEN - 1,
    );
    assert_eq!(
        (short.status, short.information),
        (NtStatus::BUFFER_TOO_SMALL, 0)
    );
    bench.delete_port(0, port);
    assert_eq!(port_stats(&handle, nic(3)).0, NtStatus::NOT_FOUND);
    handle.close();
    bench.unload(0);
    bench.finish(&[]);
}

/// A valid request of each kind, for mutating.
fn valid_inputs() -> Vec<(u32, Vec<u8>)> {
    let offer = ioctl::Offer {
        nic: [3; 16],
        ..loopback_offer()
    };
    vec![
        (IOCTL_FERRY_OFFER_LOOPBACK, offer.encode()),
        (
            IOCTL_FERRY_OFFER_CHANNEL,
            ioctl::Offer {
                vmbus_handle: 0x2A4,
                ..offer
            }
            .encode(),
        ),
        (IOCTL_FERRY_READ_PORT_STATS, ioctl::port_stats([3; 16])),
        (IOCTL_FERRY_SAVE_CHANNEL, ioctl::channel(1)),
        (
            IOCTL_FERRY_RESTORE_CHANNEL,
            ioctl::restore(1, 3, 4, &[9; 40]),
        ),
        (IOCTL_FERRY_CLOSE_CHANNEL, ioctl::channel(1)),
    ]
}

#[test]
fn hostile_requests_through_the_dispatch_are_refused_with_their_status() {
    let bench = Bench::new(14);
    bench.load_ok(0);
    let handle = bench.open();

    // Ferry's own codes with another transfer method: refused before any buffer is touched.
    for code in IOCTL_CODES {
        for method in 1..4 {
            let reply = handle.device_control(code | method, &[0xEE; 8], 4096);
            assert_eq!(
                (reply.status, reply.information),
                (NtStatus::NOT_SUPPORTED, 0)
            );
        }
    }
    // An unknown buffered code of ferry's device type.
    let unknown = (0x8F72 << 16) | (0x8FF << 2);
    assert_eq!(
        handle.device_control(unknown, &[], 0).status,
        NtStatus::NOT_SUPPORTED
    );
    // Wrong lengths and versions.
    let offer = &valid_inputs()[0].1;
    let short = handle.device_control(IOCTL_FERRY_OFFER_LOOPBACK, &offer[..OFFER_INPUT_LEN - 1], 4);
    let expected = IoctlError::Length {
        expected: OFFER_INPUT_LEN,
        found: OFFER_INPUT_LEN - 1,
    };
    assert_eq!(short.status, expected.status());
    let mut versioned = offer.clone();
    versioned[..4].copy_from_slice(&(IOCTL_VERSION + 1).to_le_bytes());
    let reply = handle.device_control(IOCTL_FERRY_OFFER_LOOPBACK, &versioned, 4);
    assert_eq!(
        reply.status,
        IoctlError::Version(IOCTL_VERSION + 1).status()
    );
    // An offer that cannot receive its answer offers nothing.
    let reply = handle.device_control(IOCTL_FERRY_OFFER_LOOPBACK, offer, OFFER_OUTPUT_LEN - 1);
    assert_eq!(reply.status, NtStatus::BUFFER_TOO_SMALL);
    assert!(bench.hosts[0].abi.channels.borrow().is_empty());
    // A restore chunk over the limit (a megabyte and a bit of system buffer).
    let huge = ioctl::restore(1, 3, 4, &vec![0; MAX_RESTORE_CHUNK + 1]);
    let reply = handle.device_control(IOCTL_FERRY_RESTORE_CHANNEL, &huge, 0);
    assert_eq!(reply.status, IoctlError::Field("chunk length").status());

    // Mutated requests: truncated, extended, bytes flipped; random output lengths.
    let mut rng = SimRng::new(0x5EED);
    let valid = valid_inputs();
    let (mut offered, mut closed) = (0, 0);
    for _ in 0..3000 {
        let (code, mut input) = valid[rng.index(valid.len())].clone();
        match rng.below(4) {
            0 => input.truncate(rng.index(input.len() + 1)),
            1 => input.extend((0..rng.range(1, 40)).map(|_| rng.below(256) as u8)),
            _ => {
                for _ in 0..rng.range(1, 4) {
                    let at = rng.index(input.len());
                    input[at] ^= 1 << rng.below(8);
                }
            }
        }
        let output = rng.index(200);
        let reply = handle.device_control(code, &input, output);
        assert_ne!(reply.status, NtStatus::PENDING);
        if reply.status.is_success() {
            match code {
                IOCTL_FERRY_OFFER_LOOPBACK | IOCTL_FERRY_OFFER_CHANNEL => offered += 1,
                IOCTL_FERRY_CLOSE_CHANNEL => closed += 1,
                _ => panic!("{code:#x} accepted {input:?}"),
            }
        } else {
            let error = (reply.status.0 as u32) >> 30 == 3;
            if error {
                assert_eq!(reply.information, 0, "a refusal writes nothing");
            }
        }
    }
    // Flipping a bit of an interface GUID or the packet size can leave a valid offer (and a
    // mutated close can then name one of those channels): the registry holds exactly the
    // difference, and the cleanup closes it.
    assert_eq!(offered - closed, CONTROL.registry().len());
    handle.close();
    assert!(CONTROL.registry().is_empty());
    bench.unload(0);
    bench.finish(&[]);
}
