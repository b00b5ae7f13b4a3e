//! The control device's handlers, driven as the driver's dispatch routine drives them: one
//! system buffer per request (input in, output over it), hostile inputs, and a whole
//! migration through the IOCTLs against the fake KMCL.
//!
//! Every call goes through [`call`], which surrounds the system buffer with guard bytes and
//! checks that no handler wrote past the output length, that `Information` never exceeds it,
//! and that a refusal writes nothing.

use ferry_core::channel::ChannelState;
use ferry_core::platform::Ticks;
use ferry_core::port::{Direction, FlowKey, FrameInfo, PortConfig, PortIdentity, SwitchPortId};
use ferry_core::protocol::{EventSet, NegotiateRequest, RequestBody};
use ferry_core::status::NtStatus;
use ferry_platform_wdk::control::registry::{ChannelId, Owner};
use ferry_platform_wdk::control::request::{
    IOCTL_CODES, IOCTL_FERRY_CLOSE_CHANNEL, IOCTL_FERRY_OFFER_CHANNEL, IOCTL_FERRY_OFFER_LOOPBACK,
    IOCTL_FERRY_PAUSE_CHANNEL, IOCTL_FERRY_READ_PORT_STATS, IOCTL_FERRY_RESTORE_CHANNEL,
    IOCTL_FERRY_RESUME_CHANNEL, IOCTL_FERRY_SAVE_CHANNEL, IOCTL_VERSION, OFFER_FLAG_START_PAUSED,
    OFFER_OUTPUT_LEN, PORT_STATS_OUTPUT_LEN, RESTORE_FLAG_LAST, RESTORE_FLAG_SESSION,
    SAVE_FLAG_LAST, SAVE_FLAG_SESSION, SAVE_HEADER_LEN, SaveHeader,
};
use ferry_platform_wdk::control::{
    Completion, ControlDevice, IoctlBuffer, STATUS_DEVICE_BUSY, guid_from_bytes,
};
use ferry_platform_wdk::ffi::kmcl::VMBCHANNEL;
use ferry_platform_wdk::host::FerryHost;
use ferry_platform_wdk::host::channel::ChannelContext;
use proptest::prelude::*;

use crate::channel::request;
use crate::fake_kmcl::{self, StateEvent, record};
use crate::kernel::TestKernel;
use crate::{TestHost, serial};

/// Capacity of the test device (small, so that filling it is cheap).
const CAPACITY: usize = 4;

static CONTROL: ControlDevice<TestHost, CAPACITY> = ControlDevice::new(fake_kmcl::close_handle);

/// The handle (file object) requests come through.
const WORKER: Owner = Owner(0x1000);
const OTHER: Owner = Owner(0x2000);
/// The worker process's VMBus handle value.
const USER_HANDLE: u64 = 0x2A4;
const NIC: [u8; 16] = [0x4E; 16];
const GUARD: u8 = 0xA5;
const GUARD_LEN: usize = 16;
const STATUS_ACCESS_DENIED: NtStatus = NtStatus(0xC000_0022_u32.cast_signed());

/// One request as the I/O manager makes it: a system buffer of `max(input, output)` bytes
/// holding the input; returns the completion and the `Information` bytes of output.
fn call(owner: Owner, code: u32, input: &[u8], output_len: usize) -> (Completion, Vec<u8>) {
    let len = input.len().max(output_len);
    let mut system = vec![GUARD; len + GUARD_LEN];
    system[..input.len()].copy_from_slice(input);
    let buffer = IoctlBuffer::new(&mut system[..len], input.len(), output_len).unwrap();
    let completion = CONTROL.device_control(owner, code, buffer);
    assert!(
        system[len..].iter().all(|b| *b == GUARD),
        "written past the system buffer"
    );
    assert!(completion.information <= output_len, "Information > output");
    let error = completion.status.0 as u32 >= 0xC000_0000;
    if error || completion.status == STATUS_DEVICE_BUSY {
        assert_eq!(completion.information, 0, "a refusal reports no output");
    }
    (completion, system[..completion.information].to_vec())
}

fn offer_input(flags: u32, handle: u64) -> Vec<u8> {
    let mut bytes = Vec::new();
    bytes.extend_from_slice(&IOCTL_VERSION.to_le_bytes());
    bytes.extend_from_slice(&flags.to_le_bytes());
    bytes.extend_from_slice(&handle.to_le_bytes());
    bytes.extend_from_slice(&[0x11; 16]);
    bytes.extend_from_slice(&[0x22; 16]);
    bytes.extend_from_slice(&NIC);
    bytes.extend_from_slice(&4096u32.to_le_bytes());
    bytes.extend_from_slice(&0u32.to_le_bytes());
    bytes
}

fn channel_input(id: ChannelId) -> Vec<u8> {
    let mut bytes = IOCTL_VERSION.to_le_bytes().to_vec();
    bytes.extend_from_slice(&id.0.to_le_bytes());
    bytes
}

/// Offers through the IOCTL; returns the id and the fake's channel.
fn offer(owner: Owner, flags: u32, handle: u64) -> (ChannelId, VMBCHANNEL) {
    let code = if handle == 0 {
        IOCTL_FERRY_OFFER_LOOPBACK
    } else {
        IOCTL_FERRY_OFFER_CHANNEL
    };
    let (completion, output) = call(owner, code, &offer_input(flags, handle), OFFER_OUTPUT_LEN);
    assert_eq!(completion, Completion::success(OFFER_OUTPUT_LEN));
    let id = ChannelId(u32::from_le_bytes(output.try_into().unwrap()));
    (id, fake_kmcl::last_channel())
}

fn simple(owner: Owner, code: u32, id: ChannelId) -> NtStatus {
    call(owner, code, &channel_input(id), 0).0.status
}

fn context(channel: VMBCHANNEL) -> &'static ChannelContext<TestKernel> {
    let pointer = record(channel).pointer as *const ChannelContext<TestKernel>;
    // SAFETY: the fake keeps the pointer ferry set; the context lives until the channel is
    // closed, and tests read it only before closing.
    unsafe { &*pointer }
}

fn state(channel: VMBCHANNEL) -> ChannelState {
    context(channel).channel().state()
}

fn open_and_run(channel: VMBCHANNEL) {
    assert_eq!(
        fake_kmcl::state(channel, StateEvent::Opened),
        NtStatus::SUCCESS
    );
    fake_kmcl::state(channel, StateEvent::Started);
    fake_kmcl::state(channel, StateEvent::PostStarted);
    assert_eq!(state(channel), ChannelState::Active);
}

/// Ends a test: closes what is left and checks that every channel, packet, block and kernel
/// handle is gone.
fn finish(serial: &crate::Serial, handles_before: i64) {
    CONTROL.close_all();
    assert!(CONTROL.registry().is_empty());
    assert_eq!(fake_kmcl::live_kernel_handles(), handles_before);
    serial.assert_clean();
}

#[test]
fn an_offer_converts_the_workers_handle_binds_it_first_and_answers_an_id() {
    let serial = serial();
    let handles = fake_kmcl::live_kernel_handles();
    fake_kmcl::take_converted();
    let (id, channel) = offer(WORKER, 0, USER_HANDLE);
    assert_eq!(fake_kmcl::take_converted(), [USER_HANDLE as usize]);
    assert_eq!(fake_kmcl::live_kernel_handles(), handles + 1);
    {
        let record = record(channel);
        // The kernel handle, not the user value, is what the channel is bound to.
        assert_eq!(
            fake_kmcl::user_handle_of(record.vmbus),
            USER_HANDLE as usize
        );
        assert_eq!(
            record.calls[..3],
            ["Allocate", "ServerInitSetVmbusHandle", "SetPointer"]
        );
        assert_eq!(record.calls[record.calls.len() - 2..], ["Enable", "Start"]);
        let (interface_type, instance) = record.interface.unwrap();
        assert_eq!(interface_type, guid_from_bytes([0x11; 16]));
        assert_eq!(instance, guid_from_bytes([0x22; 16]));
        assert_eq!(record.maximum_packet_size, 4096);
    }
    assert_eq!(CONTROL.registry().len(), 1);
    assert_eq!(
        simple(WORKER, IOCTL_FERRY_CLOSE_CHANNEL, id),
        NtStatus::SUCCESS
    );
    let calls = record(channel).calls.clone();
    assert_eq!(calls[calls.len() - 2..], ["Disable", "Cleanup"]);
    assert_eq!(fake_kmcl::live_kernel_handles(), handles, "handle closed");
    assert!(CONTROL.registry().is_empty());
    finish(&serial, handles);
}

#[test]
fn a_paused_loopback_offer_converts_nothing_and_does_not_start() {
    let serial = serial();
    let handles = fake_kmcl::live_kernel_handles();
    fake_kmcl::take_converted();
    let (_, channel) = offer(WORKER, OFFER_FLAG_START_PAUSED, 0);
    assert!(fake_kmcl::take_converted().is_empty());
    let calls = record(channel).calls.clone();
    assert!(!calls.contains(&"ServerInitSetVmbusHandle"));
    assert_eq!(calls.last(), Some(&"Enable"));
    assert_eq!(state(channel), ChannelState::Offered);
    finish(&serial, handles);
}

#[test]
fn a_failed_conversion_or_offer_leaves_no_slot_channel_or_handle() {
    let serial = serial();
    let handles = fake_kmcl::live_kernel_handles();
    let channels = fake_kmcl::channel_count();
    fake_kmcl::set_convert_status(STATUS_ACCESS_DENIED);
    let (completion, _) = call(
        WORKER,
        IOCTL_FERRY_OFFER_CHANNEL,
        &offer_input(0, USER_HANDLE),
        OFFER_OUTPUT_LEN,
    );
    fake_kmcl::set_convert_status(NtStatus::SUCCESS);
    assert_eq!(completion.status, STATUS_ACCESS_DENIED);
    assert_eq!(fake_kmcl::channel_count(), channels, "no channel allocated");
    fake_kmcl::set_enable_status(NtStatus::INSUFFICIENT_RESOURCES);
    let (completion, _) = call(
        WORKER,
        IOCTL_FERRY_OFFER_CHANNEL,
        &offer_input(0, USER_HANDLE),
        OFFER_OUTPUT_LEN,
    );
    fake_kmcl::set_enable_status(NtStatus::SUCCESS);
    assert_eq!(completion.status, NtStatus::INSUFFICIENT_RESOURCES);
    assert!(record(fake_kmcl::last_channel()).cleaned_up);
    assert_eq!(
        fake_kmcl::live_kernel_handles(),
        handles,
        "converted, then closed"
    );
    assert!(
        CONTROL.registry().is_empty(),
        "the reserved slot is free again"
    );
    finish(&serial, handles);
}

#[test]
fn a_full_registry_refuses_before_any_kmcl_call_and_a_closed_slot_is_reused_under_a_new_id() {
    let serial = serial();
    let handles = fake_kmcl::live_kernel_handles();
    let ids: Vec<ChannelId> = (0..CAPACITY).map(|_| offer(WORKER, 0, 0).0).collect();
    let channels = fake_kmcl::channel_count();
    fake_kmcl::take_converted();
    let (completion, _) = call(
        WORKER,
        IOCTL_FERRY_OFFER_CHANNEL,
        &offer_input(0, USER_HANDLE),
        OFFER_OUTPUT_LEN,
    );
    assert_eq!(completion.status, NtStatus::INSUFFICIENT_RESOURCES);
    assert_eq!(fake_kmcl::channel_count(), channels);
    assert!(fake_kmcl::take_converted().is_empty(), "nothing converted");
    assert_eq!(CONTROL.registry().len(), CAPACITY, "nothing dropped");

    assert_eq!(
        simple(WORKER, IOCTL_FERRY_CLOSE_CHANNEL, ids[1]),
        NtStatus::SUCCESS
    );
    let (reused, _) = offer(WORKER, 0, 0);
    assert_ne!(reused, ids[1]);
    assert_eq!(reused.0 & 0xFF, ids[1].0 & 0xFF, "the same slot");
    for stale in [ids[1], ChannelId(0), ChannelId(u32::MAX)] {
        assert_eq!(
            simple(WORKER, IOCTL_FERRY_CLOSE_CHANNEL, stale),
            NtStatus::NOT_FOUND
        );
    }
    assert_eq!(CONTROL.registry().len(), CAPACITY);
    finish(&serial, handles);
}

#[test]
fn channels_belong_to_their_handle_and_cleanup_closes_only_those() {
    let serial = serial();
    let handles = fake_kmcl::live_kernel_handles();
    let (mine, mine_channel) = offer(WORKER, 0, USER_HANDLE);
    offer(WORKER, 0, 0);
    let (theirs, theirs_channel) = offer(OTHER, 0, 0);
    for code in [
        IOCTL_FERRY_CLOSE_CHANNEL,
        IOCTL_FERRY_PAUSE_CHANNEL,
        IOCTL_FERRY_RESUME_CHANNEL,
    ] {
        assert_eq!(simple(OTHER, code, mine), NtStatus::NOT_FOUND);
    }
    assert!(!record(mine_channel).cleaned_up);
    assert_eq!(CONTROL.close_owned_by(WORKER), 2);
    assert!(record(mine_channel).cleaned_up);
    assert!(!record(theirs_channel).cleaned_up);
    assert_eq!(fake_kmcl::live_kernel_handles(), handles);
    assert_eq!(
        simple(OTHER, IOCTL_FERRY_PAUSE_CHANNEL, theirs),
        NtStatus::SUCCESS
    );
    finish(&serial, handles);
}

#[test]
fn a_channel_checked_out_by_one_request_is_busy_for_another() {
    let serial = serial();
    let handles = fake_kmcl::live_kernel_handles();
    let (id, channel) = offer(WORKER, 0, 0);
    let held = CONTROL.registry().check_out(id, WORKER).unwrap();
    assert_eq!(
        simple(WORKER, IOCTL_FERRY_CLOSE_CHANNEL, id),
        STATUS_DEVICE_BUSY
    );
    assert_eq!(CONTROL.close_all(), 0, "a checked-out channel is not taken");
    drop(held);
    assert!(!record(channel).cleaned_up);
    assert_eq!(
        simple(WORKER, IOCTL_FERRY_CLOSE_CHANNEL, id),
        NtStatus::SUCCESS
    );
    finish(&serial, handles);
}

#[test]
fn hostile_buffers_are_refused_with_their_status_and_change_nothing() {
    let serial = serial();
    let handles = fake_kmcl::live_kernel_handles();
    let (id, _) = offer(WORKER, 0, 0);
    let channels = fake_kmcl::channel_count();
    let mut bad_version = offer_input(0, USER_HANDLE);
    bad_version[0] = 9;
    let mut unknown_flag = offer_input(0, USER_HANDLE);
    unknown_flag[4] = 0x80;
    let mut long = channel_input(id);
    long.push(0);
    let mut restore_unknown_flag = channel_input(id);
    restore_unknown_flag.extend_from_slice(&0x10u32.to_le_bytes());
    restore_unknown_flag.extend_from_slice(&0u32.to_le_bytes());
    let cases: [(u32, &[u8], usize, NtStatus); 12] = [
        (0x8F72_BFFC, &channel_input(id), 0, NtStatus::NOT_SUPPORTED),
        (
            IOCTL_FERRY_OFFER_CHANNEL,
            &[],
            4,
            NtStatus::INVALID_BUFFER_SIZE,
        ),
        (
            IOCTL_FERRY_OFFER_CHANNEL,
            &bad_version,
            4,
            NtStatus::REVISION_MISMATCH,
        ),
        (
            IOCTL_FERRY_OFFER_CHANNEL,
            &unknown_flag,
            4,
            NtStatus::INVALID_PARAMETER,
        ),
        (
            IOCTL_FERRY_OFFER_CHANNEL,
            &offer_input(0, USER_HANDLE),
            OFFER_OUTPUT_LEN - 1,
            NtStatus::BUFFER_TOO_SMALL,
        ),
        (
            IOCTL_FERRY_OFFER_LOOPBACK,
            &offer_input(0, USER_HANDLE),
            4,
            NtStatus::INVALID_PARAMETER,
        ),
        (
            IOCTL_FERRY_CLOSE_CHANNEL,
            &long,
            0,
            NtStatus::INVALID_BUFFER_SIZE,
        ),
        (
            IOCTL_FERRY_SAVE_CHANNEL,
            &channel_input(id),
            SAVE_HEADER_LEN - 1,
            NtStatus::BUFFER_TOO_SMALL,
        ),
        (
            IOCTL_FERRY_SAVE_CHANNEL,
            &channel_input(id),
            4096,
            NtStatus::INVALID_DEVICE_STATE,
        ),
        (
            IOCTL_FERRY_RESTORE_CHANNEL,
            &channel_input(id),
            0,
            NtStatus::INVALID_BUFFER_SIZE,
        ),
        (
            IOCTL_FERRY_RESTORE_CHANNEL,
            &restore_unknown_flag,
            0,
            NtStatus::INVALID_PARAMETER,
        ),
        (
            IOCTL_FERRY_READ_PORT_STATS,
            &[1, 0, 0, 0],
            96,
            NtStatus::INVALID_BUFFER_SIZE,
        ),
    ];
    for (n, (code, input, output, status)) in cases.into_iter().enumerate() {
        let (completion, _) = call(WORKER, code, input, output);
        assert_eq!(completion.status, status, "case {n}");
    }
    assert_eq!(fake_kmcl::channel_count(), channels, "no channel offered");
    assert_eq!(CONTROL.registry().len(), 1);
    let calls = record(fake_kmcl::last_channel()).calls.clone();
    assert!(!calls.contains(&"SaveBegin") && !calls.contains(&"Disable"));
    finish(&serial, handles);
}

#[test]
fn port_statistics_are_read_by_nic_identity() {
    let serial = serial();
    let port = SwitchPortId(77);
    TestHost::ports()
        .create_port(port, Some(PortIdentity(NIC)), PortConfig::UNLIMITED)
        .unwrap();
    let frame = FrameInfo {
        direction: Direction::Egress,
        flow: FlowKey::v4([10, 0, 0, 1], [10, 0, 0, 2], 1000, 80, 6),
        length: 1500,
    };
    TestHost::ports().classify(port, &frame, Ticks(1)).unwrap();
    let mut input = IOCTL_VERSION.to_le_bytes().to_vec();
    input.extend_from_slice(&0u32.to_le_bytes());
    input.extend_from_slice(&NIC);
    let (completion, output) = call(WORKER, IOCTL_FERRY_READ_PORT_STATS, &input, 128);
    assert_eq!(completion, Completion::success(PORT_STATS_OUTPUT_LEN));
    assert_eq!(output[4..8], 77u32.to_le_bytes());
    let field = |at: usize| u64::from_le_bytes(output[at..at + 8].try_into().unwrap());
    assert_eq!((field(8), field(16)), (0, 0), "no ingress");
    assert_eq!((field(40), field(48)), (1, 1500), "one egress frame");
    assert_eq!(field(72), 1, "one flow created");
    let (completion, _) = call(
        WORKER,
        IOCTL_FERRY_READ_PORT_STATS,
        &input,
        PORT_STATS_OUTPUT_LEN - 1,
    );
    assert_eq!(completion.status, NtStatus::BUFFER_TOO_SMALL);
    input[8] = 0x99;
    let (completion, _) = call(WORKER, IOCTL_FERRY_READ_PORT_STATS, &input, 128);
    assert_eq!(completion.status, NtStatus::NOT_FOUND);
    TestHost::ports().delete_port(port).unwrap();
    serial.assert_clean();
}

/// Negotiates, subscribes and sends one notification per event set on a running channel.
fn notify(channel: VMBCHANNEL, events: &[EventSet]) {
    let negotiate = NegotiateRequest {
        min_version: 1,
        max_version: 1,
        features: 0,
    };
    fake_kmcl::deliver(channel, 1, &request(1, RequestBody::Negotiate(negotiate)));
    fake_kmcl::deliver(
        channel,
        2,
        &request(2, RequestBody::Subscribe(EventSet::ALL)),
    );
    fake_kmcl::end_batch(channel, 2);
    let core = context(channel).channel();
    for events in events {
        core.with_service(|service| service.raise(*events));
        core.send_pending(TestHost::platform()).unwrap();
    }
}

/// Saves channel `id` with output buffers of `chunk` bytes; returns each answer's header and
/// data.
fn save_all(id: ChannelId, chunk: usize) -> Vec<(SaveHeader, Vec<u8>)> {
    let mut chunks = Vec::new();
    loop {
        let (completion, output) =
            call(WORKER, IOCTL_FERRY_SAVE_CHANNEL, &channel_input(id), chunk);
        let header = SaveHeader::parse(&output).unwrap();
        assert_eq!(
            header.required, 0,
            "{chunk} bytes always make progress here"
        );
        assert_eq!(output.len(), SAVE_HEADER_LEN + header.data_len as usize);
        chunks.push((header, output[SAVE_HEADER_LEN..].to_vec()));
        if header.flags & SAVE_FLAG_LAST != 0 {
            assert_eq!(completion.status, NtStatus::SUCCESS);
            return chunks;
        }
        assert_eq!(completion.status, NtStatus::BUFFER_OVERFLOW);
        assert!(chunks.len() < 1000, "the save ends");
    }
}

fn restore_input(id: ChannelId, flags: u32, session_len: u32, data: &[u8]) -> Vec<u8> {
    let mut bytes = IOCTL_VERSION.to_le_bytes().to_vec();
    bytes.extend_from_slice(&id.0.to_le_bytes());
    bytes.extend_from_slice(&flags.to_le_bytes());
    bytes.extend_from_slice(&session_len.to_le_bytes());
    bytes.extend_from_slice(data);
    bytes
}

fn restore(id: ChannelId, header: &SaveHeader, data: &[u8]) -> NtStatus {
    let input = restore_input(id, header.flags, header.session_len, data);
    call(WORKER, IOCTL_FERRY_RESTORE_CHANNEL, &input, 0)
        .0
        .status
}

/// Completes every packet KMCL still holds for `channel` as cancelled (what KMCL does when
/// the guest is gone), so that nothing leaks.
fn cancel_live(channel: VMBCHANNEL) {
    let live = record(channel).live.clone();
    for packet in live {
        fake_kmcl::guest_completes(packet, NtStatus::CANCELLED, &[]);
    }
}

#[test]
fn a_whole_migration_through_the_ioctls_in_small_chunks() {
    let serial = serial();
    let handles = fake_kmcl::live_kernel_handles();
    let port = SwitchPortId(78);
    TestHost::ports()
        .create_port(port, Some(PortIdentity(NIC)), PortConfig::UNLIMITED)
        .unwrap();
    let (source, source_channel) = offer(WORKER, 0, USER_HANDLE);
    open_and_run(source_channel);
    notify(source_channel, &[EventSet::PORT_STATS, EventSet::HEARTBEAT]);
    assert_eq!(context(source_channel).channel().outstanding(), (0, 2));

    // Running: refused, nothing begun.
    let (completion, _) = call(
        WORKER,
        IOCTL_FERRY_SAVE_CHANNEL,
        &channel_input(source),
        4096,
    );
    assert_eq!(completion.status, NtStatus::INVALID_DEVICE_STATE);
    assert_eq!(
        simple(WORKER, IOCTL_FERRY_PAUSE_CHANNEL, source),
        NtStatus::SUCCESS
    );
    fake_kmcl::state(source_channel, StateEvent::Suspend);
    assert_eq!(state(source_channel), ChannelState::Suspended);

    // Too small for the session blob: only the header, with the size to ask for.
    let (completion, output) = call(
        WORKER,
        IOCTL_FERRY_SAVE_CHANNEL,
        &channel_input(source),
        SAVE_HEADER_LEN + 4,
    );
    assert_eq!(completion.status, NtStatus::BUFFER_OVERFLOW);
    let header = SaveHeader::parse(&output).unwrap();
    let session_len = context(source_channel)
        .channel()
        .with_service(|s| s.saved_session_len());
    assert_eq!(header.required as usize, SAVE_HEADER_LEN + session_len);
    assert_eq!((header.data_len, header.flags), (0, 0));
    assert!(
        !record(source_channel).calls.contains(&"SaveBegin"),
        "nothing begun"
    );

    // Exactly the size asked for: the session blob alone, then KMCL's stream in 24-byte
    // pieces.
    let first = header.required as usize;
    let (completion, output) = call(
        WORKER,
        IOCTL_FERRY_SAVE_CHANNEL,
        &channel_input(source),
        first,
    );
    assert_eq!(completion.status, NtStatus::BUFFER_OVERFLOW);
    let first_header = SaveHeader::parse(&output).unwrap();
    assert_eq!(first_header.flags, SAVE_FLAG_SESSION);
    assert_eq!(first_header.session_len as usize, session_len);
    let mut chunks = vec![(first_header, output[SAVE_HEADER_LEN..].to_vec())];
    chunks.extend(save_all(source, SAVE_HEADER_LEN + 24));
    assert!(chunks.len() > 3);
    assert!(
        chunks[1..]
            .iter()
            .all(|(h, _)| h.flags & SAVE_FLAG_SESSION == 0)
    );
    let calls = record(source_channel).calls.clone();
    assert_eq!(calls.iter().filter(|c| **c == "SaveBegin").count(), 1);
    assert_eq!(calls.last(), Some(&"SaveEnd"));

    // Destination: offered paused; a chunk without the session first is refused, a garbled
    // session changes nothing, then every chunk in order.
    let (destination, destination_channel) =
        offer(WORKER, OFFER_FLAG_START_PAUSED, USER_HANDLE + 4);
    let (second_header, second_data) = &chunks[1];
    assert_eq!(
        restore(destination, second_header, second_data),
        NtStatus::INVALID_DEVICE_STATE
    );
    let garbled = vec![0x55u8; session_len];
    assert!(!restore(destination, &first_header, &garbled).is_success());
    for (header, data) in &chunks {
        assert_eq!(restore(destination, header, data), NtStatus::SUCCESS);
    }
    assert_eq!(record(destination_channel).restored.len(), 2);
    assert_eq!(state(destination_channel), ChannelState::Opened);
    // Restoring twice is refused.
    let (last_header, last_data) = chunks.last().unwrap();
    assert_eq!(
        restore(destination, last_header, last_data),
        NtStatus::INVALID_DEVICE_STATE
    );
    assert_eq!(
        simple(WORKER, IOCTL_FERRY_RESUME_CHANNEL, destination),
        NtStatus::SUCCESS
    );
    fake_kmcl::state(destination_channel, StateEvent::Started);
    fake_kmcl::state(destination_channel, StateEvent::PostStarted);
    assert_eq!(state(destination_channel), ChannelState::Active);
    assert_eq!(context(destination_channel).channel().outstanding(), (0, 2));
    assert_eq!(
        context(destination_channel)
            .channel()
            .stats()
            .transactions_restored,
        2
    );
    cancel_live(destination_channel);

    // The source's guest is gone.
    fake_kmcl::state(source_channel, StateEvent::Closed);
    cancel_live(source_channel);
    assert_eq!(
        simple(WORKER, IOCTL_FERRY_CLOSE_CHANNEL, source),
        NtStatus::SUCCESS
    );
    assert_eq!(
        simple(WORKER, IOCTL_FERRY_CLOSE_CHANNEL, destination),
        NtStatus::SUCCESS
    );
    TestHost::ports().delete_port(port).unwrap();
    finish(&serial, handles);
}

/// A suspended source with two transactions in flight; returns its id and channel.
fn suspended_source() -> (ChannelId, VMBCHANNEL) {
    let (id, channel) = offer(WORKER, 0, 0);
    open_and_run(channel);
    notify(channel, &[EventSet::HEARTBEAT]);
    assert_eq!(
        simple(WORKER, IOCTL_FERRY_PAUSE_CHANNEL, id),
        NtStatus::SUCCESS
    );
    fake_kmcl::state(channel, StateEvent::Suspend);
    (id, channel)
}

#[test]
fn an_unfinished_save_is_ended_by_resume_or_close_and_kmcls_minimum_is_reported() {
    let serial = serial();
    let handles = fake_kmcl::live_kernel_handles();
    let (id, channel) = suspended_source();
    let session_len = context(channel)
        .channel()
        .with_service(|s| s.saved_session_len());
    // Room for the session blob and 4 bytes: less than KMCL's smallest piece, so the session
    // comes alone; the next call with the same size gets KMCL's minimum back.
    let size = SAVE_HEADER_LEN + session_len + 4;
    let (_, output) = call(WORKER, IOCTL_FERRY_SAVE_CHANNEL, &channel_input(id), size);
    assert_eq!(
        SaveHeader::parse(&output).unwrap().data_len as usize,
        session_len
    );
    let (completion, output) = call(
        WORKER,
        IOCTL_FERRY_SAVE_CHANNEL,
        &channel_input(id),
        SAVE_HEADER_LEN + 4,
    );
    assert_eq!(completion.status, NtStatus::BUFFER_OVERFLOW);
    let header = SaveHeader::parse(&output).unwrap();
    assert_eq!(
        header.required as usize,
        SAVE_HEADER_LEN + fake_kmcl::MIN_SAVE_CHUNK as usize
    );
    assert_eq!(header.data_len, 0);
    // An output of the header alone gets the same answer (KMCL is asked with no room).
    let (completion, output) = call(
        WORKER,
        IOCTL_FERRY_SAVE_CHANNEL,
        &channel_input(id),
        SAVE_HEADER_LEN,
    );
    assert_eq!(completion.status, NtStatus::BUFFER_OVERFLOW);
    assert_eq!(SaveHeader::parse(&output).unwrap(), header);
    // Pause and restore are refused mid-save; resume ends the save and starts the channel.
    assert_eq!(
        simple(WORKER, IOCTL_FERRY_PAUSE_CHANNEL, id),
        NtStatus::INVALID_DEVICE_STATE
    );
    let session = restore_input(id, RESTORE_FLAG_SESSION, 1, &[0]);
    assert_eq!(
        call(WORKER, IOCTL_FERRY_RESTORE_CHANNEL, &session, 0)
            .0
            .status,
        NtStatus::INVALID_DEVICE_STATE
    );
    assert_eq!(
        simple(WORKER, IOCTL_FERRY_RESUME_CHANNEL, id),
        NtStatus::SUCCESS
    );
    let calls = record(channel).calls.clone();
    assert_eq!(calls[calls.len() - 2..], ["SaveEnd", "Start"]);
    // A new save starts over with the session blob; close mid-save ends it before Disable.
    fake_kmcl::state(channel, StateEvent::Started);
    fake_kmcl::state(channel, StateEvent::PostStarted);
    assert_eq!(
        simple(WORKER, IOCTL_FERRY_PAUSE_CHANNEL, id),
        NtStatus::SUCCESS
    );
    fake_kmcl::state(channel, StateEvent::Suspend);
    let (_, output) = call(WORKER, IOCTL_FERRY_SAVE_CHANNEL, &channel_input(id), size);
    assert_eq!(SaveHeader::parse(&output).unwrap().flags, SAVE_FLAG_SESSION);
    fake_kmcl::state(channel, StateEvent::Closed);
    cancel_live(channel);
    assert_eq!(
        simple(WORKER, IOCTL_FERRY_CLOSE_CHANNEL, id),
        NtStatus::SUCCESS
    );
    let calls = record(channel).calls.clone();
    assert_eq!(calls[calls.len() - 3..], ["SaveEnd", "Disable", "Cleanup"]);
    finish(&serial, handles);
}

#[test]
fn a_truncated_restore_fails_for_good_and_a_running_channel_refuses_restores() {
    let serial = serial();
    let handles = fake_kmcl::live_kernel_handles();
    let (source, source_channel) = suspended_source();
    let chunks = save_all(source, 64 * 1024);
    assert_eq!(chunks.len(), 1, "one big chunk");
    let (header, data) = &chunks[0];
    assert_eq!(header.flags, SAVE_FLAG_SESSION | SAVE_FLAG_LAST);

    // A running channel (started at offer) refuses.
    let (running, running_channel) = offer(WORKER, 0, 0);
    open_and_run(running_channel);
    assert_eq!(
        restore(running, header, data),
        NtStatus::INVALID_DEVICE_STATE
    );

    // The stream cut short, sent as the last chunk: KMCL still wants more.
    let (target, target_channel) = offer(WORKER, OFFER_FLAG_START_PAUSED, 0);
    let cut = header.session_len as usize + 6;
    let input = restore_input(
        target,
        RESTORE_FLAG_SESSION | RESTORE_FLAG_LAST,
        header.session_len,
        &data[..cut],
    );
    assert_eq!(
        call(WORKER, IOCTL_FERRY_RESTORE_CHANNEL, &input, 0)
            .0
            .status,
        NtStatus::DATA_ERROR
    );
    // Failed for good: further restores and resume are refused; close works.
    let rest = restore_input(target, RESTORE_FLAG_LAST, 0, &data[cut..]);
    assert_eq!(
        call(WORKER, IOCTL_FERRY_RESTORE_CHANNEL, &rest, 0).0.status,
        NtStatus::INVALID_DEVICE_STATE
    );
    assert_eq!(
        simple(WORKER, IOCTL_FERRY_RESUME_CHANNEL, target),
        NtStatus::INVALID_DEVICE_STATE
    );
    cancel_live(target_channel);
    fake_kmcl::state(source_channel, StateEvent::Closed);
    cancel_live(source_channel);
    finish(&serial, handles);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Any one-byte change to a valid request, under any code and output length, is either
    /// refused — nothing written, no channel added — or accepted as a well-formed request;
    /// nothing is ever written past the output.
    #[test]
    fn mutated_requests_are_refused_cleanly_or_accepted(
        code in prop::sample::select(&IOCTL_CODES[..]),
        at in 0usize..80,
        value in any::<u8>(),
        output_len in 0usize..200,
    ) {
        let serial = serial();
        let handles = fake_kmcl::live_kernel_handles();
        let (id, _) = offer(WORKER, OFFER_FLAG_START_PAUSED, 0);
        let mut input = match code {
            IOCTL_FERRY_OFFER_CHANNEL => offer_input(0, USER_HANDLE),
            IOCTL_FERRY_OFFER_LOOPBACK => offer_input(0, 0),
            IOCTL_FERRY_READ_PORT_STATS => {
                let mut bytes = IOCTL_VERSION.to_le_bytes().to_vec();
                bytes.extend_from_slice(&[0; 4]);
                bytes.extend_from_slice(&NIC);
                bytes
            }
            IOCTL_FERRY_RESTORE_CHANNEL => restore_input(id, RESTORE_FLAG_SESSION, 4, &[1, 2, 3, 4, 5]),
            _ => channel_input(id),
        };
        if let Some(byte) = input.get_mut(at) {
            *byte = value;
        }
        let before = CONTROL.registry().len();
        let (completion, _) = call(WORKER, code, &input, output_len);
        let offered = CONTROL.registry().len() > before;
        prop_assert!(!offered || completion.status.is_success());
        prop_assert!(CONTROL.registry().len() <= before + 1);
        finish(&serial, handles);
    }
}

/// `IRP_MJ_CLEANUP` of the worker's handle arrives while one of its requests is inside KMCL
/// (run from the fake's hook, as another CPU would): the held channel cannot be taken then, so
/// it is doomed, and the request that holds it closes it as it ends — it does not stay open
/// until unload (the gap this closes).
#[test]
fn cleanup_during_a_request_closes_the_channel_when_the_request_ends() {
    let serial = serial();
    let handles = fake_kmcl::live_kernel_handles();
    let (id, channel) = offer(WORKER, 0, USER_HANDLE);
    let (_, other) = offer(OTHER, 0, 0);
    open_and_run(channel);
    fake_kmcl::set_hook(|| {
        assert_eq!(
            CONTROL.close_owned_by(WORKER),
            0,
            "the channel is checked out"
        );
    });
    assert_eq!(
        simple(WORKER, IOCTL_FERRY_PAUSE_CHANNEL, id),
        NtStatus::SUCCESS
    );
    assert!(record(channel).cleaned_up, "closed as the pause ended");
    assert_eq!(
        fake_kmcl::live_kernel_handles(),
        handles,
        "VMBus handle closed"
    );
    assert_eq!(
        CONTROL.registry().len(),
        1,
        "only the other handle's channel is left"
    );
    assert!(!record(other).cleaned_up);
    finish(&serial, handles);
}

/// The same during an offer, between reserving the slot and filling it: the offer answers its
/// id (the caller's handle is gone, so nobody reads it) and the channel is closed at once.
#[test]
fn cleanup_during_an_offer_closes_the_offered_channel() {
    let serial = serial();
    let handles = fake_kmcl::live_kernel_handles();
    fake_kmcl::set_hook(|| {
        assert_eq!(CONTROL.close_owned_by(WORKER), 0, "nothing at rest yet");
    });
    let (id, channel) = offer(WORKER, 0, USER_HANDLE);
    assert!(record(channel).cleaned_up, "closed as the offer ended");
    assert!(CONTROL.registry().is_empty());
    assert_eq!(fake_kmcl::live_kernel_handles(), handles);
    assert_eq!(
        simple(WORKER, IOCTL_FERRY_CLOSE_CHANNEL, id),
        NtStatus::NOT_FOUND,
        "the id names nothing"
    );
    finish(&serial, handles);
}
