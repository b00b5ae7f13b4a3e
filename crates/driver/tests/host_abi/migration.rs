//! A live migration through the driver's own IOCTLs and unload: guest traffic on host 0,
//! pause and resume, a chunked channel save (a too-small buffer, `STATUS_BUFFER_OVERFLOW`
//! chunks), the port's runtime-state save (answered at once or pended and completed), the
//! source handle closed and the driver unloaded on host 0 — then `DriverEntry` on host 1, the
//! port restored under the destination's new port id, the channel offered paused, restored
//! chunk by chunk and resumed, and the guest's traffic going on there.

use ferry_core::port::SwitchPortId;
use ferry_core::status::NtStatus;
use ferry_driver::wiring;
use ferry_platform_mock::vswitch::SaveProgress;
use ferry_platform_wdk::control::request::{
    IOCTL_FERRY_PAUSE_CHANNEL, IOCTL_FERRY_RESTORE_CHANNEL, IOCTL_FERRY_RESUME_CHANNEL,
    IOCTL_FERRY_SAVE_CHANNEL, OFFER_FLAG_START_PAUSED, SAVE_FLAG_LAST, SAVE_FLAG_SESSION,
    SAVE_HEADER_LEN, SaveHeader,
};
use ferry_sim_abi::ioctl;
use ferry_sim_abi::nt::io;

use crate::bench::{Bench, Vm, callout, nic, port_stats};

const VM: u32 = 21;

/// What crosses from source to destination: bytes only.
struct Package {
    chunks: Vec<(SaveHeader, Vec<u8>)>,
    port_blob: Vec<u8>,
}

fn simple(handle: &io::Handle, code: u32, vm: &Vm) -> NtStatus {
    let reply = handle.device_control(code, &ioctl::channel(vm.channel), 0);
    assert_eq!(reply.information, 0);
    reply.status
}

/// Saves the paused channel: first with an output shorter than the header, then one that
/// holds the header only, then chunks of `chunk` bytes (or what the driver asks for).
fn save_channel(handle: &io::Handle, vm: &Vm, chunk: usize) -> Vec<(SaveHeader, Vec<u8>)> {
    let input = ioctl::channel(vm.channel);
    let tiny = handle.device_control(IOCTL_FERRY_SAVE_CHANNEL, &input, SAVE_HEADER_LEN - 1);
    assert_eq!(
        (tiny.status, tiny.information),
        (NtStatus::BUFFER_TOO_SMALL, 0)
    );
    let header_only = handle.device_control(IOCTL_FERRY_SAVE_CHANNEL, &input, SAVE_HEADER_LEN);
    assert_eq!(header_only.status, NtStatus::BUFFER_OVERFLOW);
    assert_eq!(header_only.information, SAVE_HEADER_LEN);
    let header = SaveHeader::parse(&header_only.output).unwrap();
    assert_eq!(header.data_len, 0, "nothing consumed");
    assert!(
        header.required as usize > SAVE_HEADER_LEN,
        "the size asked for: {header:?}"
    );
    let mut next = header.required as usize;
    let mut chunks = Vec::new();
    loop {
        let reply = handle.device_control(IOCTL_FERRY_SAVE_CHANNEL, &input, next);
        let header = SaveHeader::parse(&reply.output).unwrap();
        assert_eq!(
            reply.information,
            SAVE_HEADER_LEN + header.data_len as usize
        );
        if header.required != 0 {
            assert_eq!(
                (reply.status, header.data_len),
                (NtStatus::BUFFER_OVERFLOW, 0)
            );
            assert!(header.required as usize > next, "asks for more than it had");
            next = header.required as usize;
            continue;
        }
        assert!(header.data_len > 0, "a chunk carries data");
        chunks.push((header, reply.output[SAVE_HEADER_LEN..].to_vec()));
        if header.flags & SAVE_FLAG_LAST != 0 {
            assert_eq!(reply.status, NtStatus::SUCCESS);
            break;
        }
        assert_eq!(reply.status, NtStatus::BUFFER_OVERFLOW, "more follows");
        next = chunk;
        assert!(chunks.len() < 10_000, "the save ends");
    }
    let (first, _) = chunks[0];
    assert_ne!(
        first.flags & SAVE_FLAG_SESSION,
        0,
        "the first chunk has the session blob"
    );
    assert!(first.session_len > 0 && first.session_len <= first.data_len);
    for (header, _) in &chunks[1..] {
        assert_eq!(
            (header.flags & SAVE_FLAG_SESSION, header.session_len),
            (0, 0)
        );
    }
    chunks
}

/// The port's runtime-state save through the switch: answered at once, or (`pend`) pended by
/// the driver and completed with `FwpsvSwitchNotifyComplete0`.
fn save_port(bench: &Bench, port: SwitchPortId, pend: bool) -> Vec<u8> {
    let services = &bench.hosts[0].services;
    let vswitch = wiring::vswitch();
    vswitch.set_pend_saves(pend);
    let oid = services
        .vswitch
        .request_save(port, services.clock.now(), callout(0));
    vswitch.set_pend_saves(false);
    if pend {
        assert_eq!(vswitch.pending_saves(), 1);
        assert!(matches!(
            services.vswitch.save_progress(oid, services.clock.now()),
            Some(SaveProgress::Pending { .. })
        ));
        assert!(vswitch.finish_save(port), "a save of the port was pending");
        assert_eq!(vswitch.pending_saves(), 0);
        assert_eq!(bench.hosts[0].abi.counts.get().notify_complete, 1);
    } else {
        assert_eq!(bench.hosts[0].abi.counts.get().saves_returned, 1);
    }
    match services.vswitch.save_progress(oid, services.clock.now()) {
        Some(SaveProgress::Saved(blob)) => blob,
        other => panic!("port save ended {other:?}"),
    }
}

/// The source's half, ending with the driver unloaded from host 0.
fn source(bench: &mut Bench, pend: bool) -> (Vm, Package, SwitchPortId, (u32, u64, u64, u64)) {
    bench.load_ok(0);
    let handle = bench.open();
    let port = bench.create_port(0, nic(VM));
    let mut vm = bench.offer(&handle, 0, VM, 0);
    bench.traffic(&mut vm, 12);
    bench.ingress_frames(port, 5, 100);
    let (status, stats) = port_stats(&handle, nic(VM));
    assert_eq!(status, NtStatus::SUCCESS);
    let stats = stats.unwrap();
    assert_eq!(stats.0, port.0);

    // Pause: nothing is delivered until resume.
    assert_eq!(
        simple(&handle, IOCTL_FERRY_PAUSE_CHANNEL, &vm),
        NtStatus::SUCCESS
    );
    let info = bench.hosts[0].services.kmcl.info(vm.mock).unwrap();
    assert!(!info.running && info.outstanding_incoming == 0, "{info:?}");
    let delivered = bench.delivered(&vm);
    bench.traffic(&mut vm, 3);
    assert_eq!(bench.delivered(&vm), delivered, "delivered while paused");
    assert_eq!(
        simple(&handle, IOCTL_FERRY_RESUME_CHANNEL, &vm),
        NtStatus::SUCCESS
    );
    bench.pump(&mut vm, 16);
    assert!(bench.delivered(&vm) > delivered, "resumed");
    bench.traffic(&mut vm, 6);

    // The migration: pause, save the channel and the port.
    assert_eq!(
        simple(&handle, IOCTL_FERRY_PAUSE_CHANNEL, &vm),
        NtStatus::SUCCESS
    );
    bench.deliver(&mut vm);
    let chunks = save_channel(&handle, &vm, 48);
    let port_blob = save_port(bench, port, pend);
    assert_eq!(
        wiring::vswitch().published_states(),
        usize::from(!pend) + usize::from(pend)
    );

    // The source lets go: the worker's handle closes (its channel with it), the switch
    // deletes the port, and the driver unloads, leaving nothing on host 0.
    handle.close();
    bench.delete_port(0, port);
    bench.unload(0);
    (vm, Package { chunks, port_blob }, port, stats)
}

/// The destination's half: `DriverEntry` on host 1, restore, resume, traffic.
fn destination(
    bench: &mut Bench,
    mut vm: Vm,
    package: &Package,
    old: SwitchPortId,
    stats: (u32, u64, u64, u64),
) -> Vm {
    bench.load_ok(1);
    let handle = bench.open();
    let port = bench.create_port(1, nic(VM));
    assert_ne!(
        port, old,
        "the destination's switch numbers its ports itself"
    );
    let status = bench.hosts[1]
        .services
        .vswitch
        .restore(port, &package.port_blob, callout(1));
    assert_eq!(status, NtStatus::SUCCESS);
    let (status, restored) = port_stats(&handle, nic(VM));
    assert_eq!(status, NtStatus::SUCCESS);
    let restored = restored.unwrap();
    assert_eq!(restored.0, port.0, "the state is under the new port id");
    assert_eq!(
        (restored.1, restored.2, restored.3),
        (stats.1, stats.2, stats.3)
    );

    let mut new = bench.offer(&handle, 1, VM, OFFER_FLAG_START_PAUSED);
    let last = package.chunks.len() - 1;
    for (n, (header, data)) in package.chunks.iter().enumerate() {
        let input = ioctl::restore(new.channel, header.flags, header.session_len, data);
        let reply = handle.device_control(IOCTL_FERRY_RESTORE_CHANNEL, &input, 0);
        assert_eq!(reply.status, NtStatus::SUCCESS, "chunk {n} of {last}");
    }
    let again = ioctl::restore(
        new.channel,
        package.chunks[0].0.flags,
        package.chunks[0].0.session_len,
        &package.chunks[0].1,
    );
    let reply = handle.device_control(IOCTL_FERRY_RESTORE_CHANNEL, &again, 0);
    assert!(
        !reply.status.is_success(),
        "a restored channel refuses a second restore"
    );
    assert_eq!(
        simple(&handle, IOCTL_FERRY_RESUME_CHANNEL, &new),
        NtStatus::SUCCESS
    );

    // The guest goes on on host 1.
    vm.host = 1;
    vm.mock = new.mock;
    vm.channel = new.channel;
    new.guest = vm.guest;
    let responses = new.guest.ledger.responses;
    bench.deliver(&mut new);
    bench.traffic(&mut new, 12);
    assert!(
        new.guest.ledger.responses > responses,
        "{:?}",
        new.guest.ledger
    );

    handle.close();
    bench.delete_port(1, port);
    bench.unload(1);
    new
}

fn migrate(seed: u64, pend: bool) {
    let mut bench = Bench::new(seed);
    let (vm, package, old, stats) = source(&mut bench, pend);
    assert!(package.chunks.len() > 1, "small chunks: several of them");
    let vm = destination(&mut bench, vm, &package, old, stats);
    bench.finish(&[vm]);
}

#[test]
fn a_migration_through_ioctls_unload_and_driver_entry_with_the_port_saved_at_once() {
    migrate(20, false);
}

#[test]
fn a_migration_through_ioctls_unload_and_driver_entry_with_the_port_save_pended() {
    migrate(21, true);
}
