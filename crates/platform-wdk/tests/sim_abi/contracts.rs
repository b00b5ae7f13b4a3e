//! The C boundary notices broken contracts: each test breaks one on purpose, calling the
//! simulated host's functions through the driver's own table, and finds it recorded.

use std::ffi::c_void;

use ferry_core::status::NtStatus;
use ferry_platform_wdk::ffi::kmcl::{VMBCHANNEL, VMBPACKETCOMPLETION};
use ferry_platform_wdk::host::FerryHost;
use ferry_platform_wdk::tables::KmclTable;

use crate::ferry_hosts::Ferry;
use crate::world::{Config, World};

fn world() -> World {
    World::new(Config {
        seed: 11,
        vms: 1,
        ports: 1,
        flows: 4,
        steps: 0,
        migrations: 0,
        hostile: false,
        crashes: false,
        corrupt: false,
    })
}

fn kmcl() -> &'static KmclTable {
    Ferry::<0>::platform().kmcl()
}

/// Violations recorded on host 0 since the last call.
fn violations(world: &World) -> Vec<String> {
    world.hosts[0].take_violations()
}

fn assert_recorded(found: &[String], needle: &str) {
    assert!(
        found.iter().any(|v| v.contains(needle)),
        "no violation mentioning {needle:?} in {found:#?}"
    );
}

/// Unloads and checks that the breach left nothing else behind.
fn unload(mut world: World) {
    world.unload();
}

#[test]
fn a_second_completion_of_an_incoming_packet_is_recorded() {
    let mut world = world();
    world.vms[0].guest.send_request(&mut world.rng);
    world.pump(0, 4);
    assert!(violations(&world).is_empty());
    let completed = world.hosts[0].abi.last_incoming.get();
    let handle =
        VMBPACKETCOMPLETION::from_raw(std::ptr::without_provenance_mut::<c_void>(completed));
    // SAFETY: the simulated host's function, with a handle the driver completed already.
    unsafe { (kmcl().channel_packet_complete)(handle, std::ptr::null_mut(), 0) };
    assert_recorded(&violations(&world), "completed twice");
    unload(world);
}

#[test]
fn init_after_enable_start_before_enable_and_an_incomplete_offer_are_recorded() {
    let world = world();
    // SAFETY: the simulated host's function on the VM's enabled channel.
    let status = unsafe { (kmcl().channel_init_set_maximum_packet_size)(world.vms[0].channel, 64) };
    assert_eq!(status, NtStatus::INVALID_DEVICE_STATE);
    assert_recorded(&violations(&world), "only before VmbChannelEnable");

    let mut channel = VMBCHANNEL::null();
    // SAFETY: a valid out-pointer.
    let status = unsafe { (kmcl().channel_allocate)(std::ptr::null_mut(), 1, &raw mut channel) };
    assert_eq!(status, NtStatus::SUCCESS);
    // SAFETY: the fresh channel.
    unsafe { (kmcl().channel_start)(channel) };
    assert_recorded(&violations(&world), "not enabled");
    // SAFETY: as above.
    let status = unsafe { (kmcl().channel_enable)(channel) };
    assert_ne!(status, NtStatus::SUCCESS);
    let found = violations(&world);
    assert_recorded(&found, "ProcessPacket callback");
    assert_recorded(&found, "target interface id");
    // SAFETY: never enabled: cleanup is legal.
    unsafe { (kmcl().channel_cleanup)(channel) };
    assert!(violations(&world).is_empty());
    // SAFETY: after cleanup the handle is dead: using it is the breach under test.
    unsafe { (kmcl().channel_set_pointer)(channel, std::ptr::null_mut()) };
    assert_recorded(&violations(&world), "after VmbChannelCleanup");
    unload(world);
}

#[test]
fn freeing_a_packet_twice_is_recorded() {
    let world = world();
    let channel = world.vms[0].channel;
    // SAFETY: the simulated host's functions on the VM's live channel.
    let packet = unsafe { (kmcl().packet_allocate)(channel) };
    assert!(!packet.is_null());
    // SAFETY: as above.
    unsafe { (kmcl().packet_free)(packet) };
    assert!(violations(&world).is_empty());
    // SAFETY: the second free is the breach under test (the handle points nowhere).
    unsafe { (kmcl().packet_free)(packet) };
    assert_recorded(&violations(&world), "not a live packet object");
    unload(world);
}

#[test]
fn a_completion_of_no_pended_save_and_an_unknown_unsubscribe_are_recorded() {
    let world = world();
    let wfp = Ferry::<0>::platform().wfp();
    // SAFETY: the simulated host's function with a context no save was pended under.
    unsafe {
        (wfp.notify_complete)(
            std::ptr::without_provenance_mut(0x4004),
            NtStatus::SUCCESS,
            0,
            std::ptr::null_mut(),
        )
    };
    assert_recorded(&violations(&world), "no save pending");
    // SAFETY: an id that names no subscription.
    unsafe { (wfp.events_unsubscribe)(0xFFFF, 0, std::ptr::null_mut()) };
    assert_recorded(&violations(&world), "no such subscription");
    unload(world);
}

#[test]
fn the_invariant_checks_notice_a_lost_port_count() {
    let mut world = world();
    world.traffic(0);
    // A frame the switch classifies outside the scenario's ledger: counters disagree.
    let v = &world.vms[0];
    let frame = ferry_core::port::FrameInfo {
        direction: ferry_core::port::Direction::Ingress,
        flow: ferry_core::port::FlowKey::v4([1, 1, 1, 1], [2, 2, 2, 2], 1, 2, 6),
        length: 100,
    };
    world.hosts[0]
        .services
        .vswitch
        .classify(v.ports[0], &frame, world.drivers[0].callout());
    world.drain();
    world.check();
    assert_recorded(&world.findings, "port counters");
    unload(world);
}

#[test]
fn a_send_between_suspend_and_started_is_recorded() {
    let world = world();
    let v = &world.vms[0];
    world.drivers[0].pause(v.channel);
    assert!(violations(&world).is_empty());
    // SAFETY: the simulated host's function on the VM's live, paused channel.
    let packet = unsafe { (kmcl().packet_allocate)(v.channel) };
    // SAFETY: the packet allocated above.
    unsafe { (kmcl().packet_set_completion_routine)(packet, Some(ignore_completion)) };
    let mut payload = [1u8, 2, 3];
    // SAFETY: the prepared packet and a payload readable for the call. Sending now is the
    // breach under test.
    let status = unsafe {
        (kmcl().packet_send)(
            packet,
            payload.as_mut_ptr().cast(),
            3,
            std::ptr::null_mut(),
            ferry_platform_wdk::ffi::kmcl::VMBUS_CHANNEL_FORMAT_FLAG_WAIT_FOR_COMPLETION,
        )
    };
    assert_eq!(status, NtStatus::SUCCESS);
    assert_recorded(&violations(&world), "after EvtChannelSuspend");
    unload(world);
}

/// A completion routine that frees its packet, like the driver's.
unsafe extern "system" fn ignore_completion(
    packet: ferry_platform_wdk::ffi::kmcl::VMBPACKET,
    _status: NtStatus,
    _buffer: *mut c_void,
    _length: u32,
) {
    // SAFETY: the routine owns the packet; the simulated host's free.
    unsafe { (kmcl().packet_free)(packet) };
}

#[test]
fn a_save_packet_fill_call_without_its_size_call_is_recorded() {
    use ferry_platform_mock::kmcl::ServerCallbacks;

    let world = world();
    let v = &world.vms[0];
    world.drivers[0].pause(v.channel);
    // KMCL's side of the protocol checked on the driver's answers: a fill call nobody sized.
    let callbacks = crate::kmcl_callbacks::CCallbacks::<0>;
    let mut buffer = vec![0u8; 32];
    let (status, _) = callbacks.save_packet(v.mock, 0xFFFF, &mut buffer);
    assert!(!status.is_success(), "no transaction carries that key");
    assert_recorded(&violations(&world), "without a size call");
    unload(world);
}
