//! WFP vSwitch callbacks: port events, runtime-state save (synchronous and pending) and
//! restore under a new port id, through the dispatch table ferry subscribed.

use ferry_core::port::{Direction, FlowKey, FrameInfo, SwitchPortId};
use ferry_core::status::NtStatus;
use ferry_platform_wdk::ffi::base::GUID;
use ferry_platform_wdk::ffi::wfp::FWPS_VSWITCH_EVENT_TYPE as Event;
use ferry_platform_wdk::host::vswitch::{Subscription, VSwitch};
use ferry_platform_wdk::kernel::services::KernelServices;

use crate::fake_wfp::{self, Switch};
use crate::kernel::{self, TestKernel};
use crate::{destination_switch, serial, source_switch};

const SOURCE_PROVIDER: GUID = GUID {
    Data1: 0x5001,
    Data2: 1,
    Data3: 1,
    Data4: [1; 8],
};
const DESTINATION_PROVIDER: GUID = GUID {
    Data1: 0x5002,
    Data2: 2,
    Data3: 2,
    Data4: [2; 8],
};

fn subscribe(vswitch: &'static VSwitch<TestKernel>, provider: GUID) -> (Subscription, Switch) {
    let subscription = vswitch.subscribe(&provider).unwrap();
    let switch = fake_wfp::switch_for(provider).expect("subscribed with the provider GUID");
    (subscription, switch)
}

fn traffic(vswitch: &VSwitch<TestKernel>, port: u32, frames: u32) {
    for i in 0..frames {
        let frame = FrameInfo {
            direction: if i % 2 == 0 {
                Direction::Ingress
            } else {
                Direction::Egress
            },
            flow: FlowKey::v4([10, 0, 0, 1], [10, 0, 0, 2], 1000 + (i % 5) as u16, 443, 6),
            length: 100 + i,
        };
        vswitch
            .ports()
            .classify(SwitchPortId(port), &frame, TestKernel::now())
            .unwrap();
    }
}

fn blob(result: &fake_wfp::SaveResult) -> Vec<u8> {
    assert!(!result.state.is_null());
    // SAFETY: ferry published `length` bytes at `state`, kept until the port's next save.
    unsafe { std::slice::from_raw_parts(result.state.cast::<u8>(), result.length) }.to_vec()
}

#[test]
fn a_port_saved_at_once_is_restored_under_the_destination_port_id() {
    let serial = serial();
    let (source_subscription, source) = subscribe(source_switch(), SOURCE_PROVIDER);
    let (destination_subscription, destination) =
        subscribe(destination_switch(), DESTINATION_PROVIDER);
    assert_eq!(source.port_event(Event::PORT_CREATE, 7), NtStatus::SUCCESS);
    traffic(source_switch(), 7, 20);
    let mut out = Box::new((0usize, 0usize));
    let saved = source.save(7, 0x77, &mut out);
    assert_eq!(saved.status, NtStatus::SUCCESS);
    assert!(saved.length > 0);
    let bytes = blob(&saved);
    assert_eq!(source_switch().published_states(), 1);

    assert_eq!(
        destination.port_event(Event::PORT_CREATE, 42),
        NtStatus::SUCCESS
    );
    kernel::advance(10);
    assert_eq!(destination.restore(42, &bytes), NtStatus::SUCCESS);
    assert_eq!(
        destination_switch()
            .ports()
            .counters(SwitchPortId(42))
            .unwrap(),
        source_switch().ports().counters(SwitchPortId(7)).unwrap()
    );
    // No completion for a synchronous save.
    assert!(fake_wfp::completions_for(0x77).is_empty());

    assert_eq!(source.port_event(Event::PORT_DELETE, 7), NtStatus::SUCCESS);
    assert_eq!(
        source_switch().published_states(),
        0,
        "delete frees the port's blob"
    );
    assert_eq!(
        destination.port_event(Event::PORT_DELETE, 42),
        NtStatus::SUCCESS
    );
    source_switch().unsubscribe(source_subscription);
    destination_switch().unsubscribe(destination_subscription);
    serial.assert_clean();
}

#[test]
fn a_new_save_replaces_the_port_blob_and_unload_frees_the_rest() {
    let serial = serial();
    let (subscription, switch) = subscribe(source_switch(), SOURCE_PROVIDER);
    switch.port_event(Event::PORT_CREATE, 3);
    switch.port_event(Event::PORT_CREATE, 4);
    let mut out = Box::new((0usize, 0usize));
    let first = switch.save(3, 1, &mut out);
    let first_bytes = blob(&first);
    traffic(source_switch(), 3, 4);
    let second = switch.save(3, 2, &mut out);
    let _ = switch.save(4, 3, &mut out);
    assert_eq!(source_switch().published_states(), 2, "one blob per port");
    assert_ne!(blob(&second), first_bytes, "the new blob has the new flows");
    // Deleting one port frees its blob; unsubscribing frees the other.
    switch.port_event(Event::PORT_DELETE, 3);
    assert_eq!(source_switch().published_states(), 1);
    switch.port_event(Event::PORT_DELETE, 4);
    switch.port_event(Event::PORT_CREATE, 5);
    let _ = switch.save(5, 4, &mut out);
    source_switch().unsubscribe(subscription);
    assert_eq!(source_switch().published_states(), 0);
    source_switch()
        .ports()
        .delete_port(SwitchPortId(5))
        .unwrap();
    serial.assert_clean();
}

#[test]
fn a_pending_save_is_finished_through_notify_complete_with_the_blob() {
    let serial = serial();
    let (source_subscription, source) = subscribe(source_switch(), SOURCE_PROVIDER);
    let (destination_subscription, destination) =
        subscribe(destination_switch(), DESTINATION_PROVIDER);
    source.port_event(Event::PORT_CREATE, 11);
    traffic(source_switch(), 11, 9);
    source_switch().set_pend_saves(true);
    let mut out = Box::new((0usize, 0usize));
    let pended = source.save(11, 0x1111, &mut out);
    source_switch().set_pend_saves(false);
    assert_eq!(pended.status, NtStatus::PENDING);
    assert!(pended.state.is_null(), "nothing written while pending");
    assert_eq!(source_switch().pending_saves(), 1);
    assert!(fake_wfp::completions_for(0x1111).is_empty());

    assert!(source_switch().finish_save(SwitchPortId(11)));
    assert!(
        !source_switch().finish_save(SwitchPortId(11)),
        "finished once"
    );
    assert_eq!(fake_wfp::completions_for(0x1111), [NtStatus::SUCCESS]);
    let finished = fake_wfp::SaveResult {
        status: NtStatus::SUCCESS,
        state: out.0 as *mut core::ffi::c_void,
        length: out.1,
    };
    destination.port_event(Event::PORT_CREATE, 99);
    assert_eq!(destination.restore(99, &blob(&finished)), NtStatus::SUCCESS);
    assert_eq!(
        destination_switch()
            .ports()
            .counters(SwitchPortId(99))
            .unwrap(),
        source_switch().ports().counters(SwitchPortId(11)).unwrap()
    );
    source.port_event(Event::PORT_DELETE, 11);
    destination.port_event(Event::PORT_DELETE, 99);
    source_switch().unsubscribe(source_subscription);
    destination_switch().unsubscribe(destination_subscription);
    serial.assert_clean();
}

#[test]
fn a_pending_save_is_cancelled_by_port_delete_and_by_unload() {
    let serial = serial();
    let (subscription, switch) = subscribe(source_switch(), SOURCE_PROVIDER);
    switch.port_event(Event::PORT_CREATE, 21);
    switch.port_event(Event::PORT_CREATE, 22);
    source_switch().set_pend_saves(true);
    let mut out = Box::new((0usize, 0usize));
    assert_eq!(switch.save(21, 0x2121, &mut out).status, NtStatus::PENDING);
    let mut other = Box::new((0usize, 0usize));
    assert_eq!(
        switch.save(22, 0x2222, &mut other).status,
        NtStatus::PENDING
    );
    // A second save of a port with one pending is refused, and its context not kept.
    let mut third = Box::new((0usize, 0usize));
    assert_eq!(
        switch.save(22, 0x2223, &mut third).status,
        NtStatus::INVALID_DEVICE_STATE
    );
    source_switch().set_pend_saves(false);

    switch.port_event(Event::PORT_DELETE, 21);
    assert_eq!(fake_wfp::completions_for(0x2121), [NtStatus::CANCELLED]);
    assert_eq!(out.0, 0, "a cancelled save writes no blob");
    source_switch().unsubscribe(subscription);
    assert_eq!(fake_wfp::completions_for(0x2222), [NtStatus::CANCELLED]);
    assert!(fake_wfp::completions_for(0x2223).is_empty());
    assert_eq!(source_switch().pending_saves(), 0);
    source_switch()
        .ports()
        .delete_port(SwitchPortId(22))
        .unwrap();
    serial.assert_clean();
}

#[test]
fn hostile_calls_are_refused_and_change_nothing() {
    let serial = serial();
    let (source_subscription, source) = subscribe(source_switch(), SOURCE_PROVIDER);
    let (destination_subscription, destination) =
        subscribe(destination_switch(), DESTINATION_PROVIDER);
    source.port_event(Event::PORT_CREATE, 31);
    assert_eq!(
        source.save_without_out_parameters(31),
        NtStatus::INVALID_PARAMETER
    );
    assert_eq!(
        source.save_with_null_context(31),
        NtStatus::INVALID_PARAMETER
    );
    let mut out = Box::new((0usize, 0usize));
    assert!(
        !source.save(999, 5, &mut out).status.is_success(),
        "unknown port"
    );
    assert_eq!(
        source.port_event(Event::PORT_CREATE, 31),
        NtStatus::OBJECT_NAME_COLLISION
    );

    destination.port_event(Event::PORT_CREATE, 32);
    traffic(destination_switch(), 32, 3);
    let before = destination_switch()
        .ports()
        .counters(SwitchPortId(32))
        .unwrap();
    traffic(source_switch(), 31, 5);
    let good = blob(&source.save(31, 6, &mut out));
    let mut corrupted = good.clone();
    let middle = corrupted.len() / 2;
    corrupted[middle] ^= 0x40;
    for bad in [
        &[][..],
        &good[..good.len() - 1],
        &corrupted[..],
        &[0xEE; 40][..],
    ] {
        assert!(!destination.restore(32, bad).is_success());
    }
    assert!(
        !destination.restore(404, &good).is_success(),
        "no such port"
    );
    assert_eq!(
        destination_switch()
            .ports()
            .counters(SwitchPortId(32))
            .unwrap(),
        before,
        "a refused restore leaves the port as it was"
    );
    source.port_event(Event::PORT_DELETE, 31);
    destination.port_event(Event::PORT_DELETE, 32);
    source_switch().unsubscribe(source_subscription);
    destination_switch().unsubscribe(destination_subscription);
    serial.assert_clean();
}
