//! KMCL trampolines: offer, packets, state callbacks, the two-call SavePacket, RestorePacket
//! and the completion routine, through the C signatures.

use ferry_core::channel::{ChannelEvent, ChannelState};
use ferry_core::platform::TransactionKey;
use ferry_core::port::{PortConfig, PortIdentity, SwitchPortId};
use ferry_core::protocol::{
    self, AckStatus, EventSet, MAX_MESSAGE_LEN, NegotiateRequest, NotificationAck, Ping, Request,
    RequestBody, ResponseBody,
};
use ferry_core::service::ServiceConfig;
use ferry_core::status::NtStatus;
use ferry_platform_wdk::ffi::base::GUID;
use ferry_platform_wdk::ffi::kmcl::{
    VMBUS_CHANNEL_FORMAT_FLAG_WAIT_FOR_COMPLETION, VMBUS_SERVER_CHANNEL_INIT_FLAG_LOOPBACK_OFFER,
};
use ferry_platform_wdk::host::channel::{OfferConfig, OfferedChannel, SaveChunk, SaveChunkError};
use ferry_platform_wdk::host::{FerryHost, QUOTA};

use crate::fake_kmcl::{self, StateEvent, record};
use crate::kernel::{self, TestKernel};
use crate::{TestHost, serial};

const INTERFACE_TYPE: GUID = GUID {
    Data1: 0xF3A0_0001,
    Data2: 2,
    Data3: 3,
    Data4: [4; 8],
};
const INSTANCE: GUID = GUID {
    Data1: 0xF3A0_0002,
    Data2: 5,
    Data3: 6,
    Data4: [7; 8],
};

const NIC: PortIdentity = PortIdentity([0x4E; 16]);

fn config(loopback: bool) -> OfferConfig {
    OfferConfig {
        device: std::ptr::null_mut(),
        interface_type: INTERFACE_TYPE,
        interface_instance: INSTANCE,
        vmbus: if loopback {
            None
        } else {
            Some(0x1234 as *mut core::ffi::c_void)
        },
        loopback,
        identity: Some(NIC),
        service: ServiceConfig::default(),
        maximum_packet_size: 4096,
    }
}

fn offer(loopback: bool) -> OfferedChannel<TestKernel> {
    OfferedChannel::offer::<TestHost>(&config(loopback)).expect("offer succeeds")
}

pub(crate) fn request(id: u64, body: RequestBody<'_>) -> Vec<u8> {
    let mut out = vec![0u8; MAX_MESSAGE_LEN];
    let request = Request {
        version: protocol::PROTOCOL_VERSION_1,
        transaction_id: id,
        body,
    };
    let n = protocol::encode_request(&request, &mut out).unwrap();
    out.truncate(n);
    out
}

/// Opens and starts a channel the way KMCL does once the guest opens the offer.
fn open_and_start(offered: &OfferedChannel<TestKernel>) {
    let channel = offered.handle();
    assert_eq!(
        fake_kmcl::state(channel, StateEvent::Opened),
        NtStatus::SUCCESS
    );
    offered.start::<TestHost>().unwrap();
    fake_kmcl::state(channel, StateEvent::Started);
    fake_kmcl::state(channel, StateEvent::PostStarted);
    assert_eq!(offered.channel().state(), ChannelState::Active);
}

fn response_of(completion: &(u64, Option<Vec<u8>>)) -> ResponseBody<'_> {
    let bytes = completion.1.as_deref().expect("completed, not failed");
    protocol::parse_response(bytes)
        .expect("a valid response")
        .body
}

#[test]
fn offer_sets_the_pointer_and_callbacks_before_enabling_and_close_frees_everything() {
    let serial = serial();
    let offered = offer(false);
    let channel = offered.handle();
    {
        let record = record(channel);
        let position = |call| record.calls.iter().position(|c| *c == call).unwrap();
        assert_eq!(record.calls.first(), Some(&"Allocate"));
        assert!(position("SetPointer") < position("InitSetProcessPacketCallbacks"));
        assert!(position("SetPointer") < position("InitSetStateChangeCallbacks"));
        assert_eq!(record.calls.last(), Some(&"Enable"));
        assert_ne!(record.pointer, 0);
        assert_eq!(record.quota as usize, QUOTA);
        assert_eq!(record.maximum_packet_size, 4096);
        assert_eq!(record.server_flags, 0);
        assert_eq!(record.interface, Some((INTERFACE_TYPE, INSTANCE)));
        assert_eq!(record.vmbus, 0x1234);
        assert!(record.save_packet.is_some() && record.restore_packet.is_some());
    }
    assert_eq!(offered.channel().state(), ChannelState::Offered);
    assert!(kernel::live_blocks() > serial.blocks_before);
    offered.close::<TestHost>();
    let calls = record(channel).calls.clone();
    assert_eq!(&calls[calls.len() - 2..], ["Disable", "Cleanup"]);
    serial.assert_clean();
}

#[test]
fn a_loopback_offer_sets_the_flag_and_no_vmbus_handle() {
    let serial = serial();
    let offered = offer(true);
    {
        let record = record(offered.handle());
        assert_eq!(
            record.server_flags,
            VMBUS_SERVER_CHANNEL_INIT_FLAG_LOOPBACK_OFFER
        );
        assert!(!record.calls.contains(&"ServerInitSetVmbusHandle"));
    }
    offered.close::<TestHost>();
    serial.assert_clean();
}

#[test]
fn a_failed_offer_undoes_everything() {
    let serial = serial();
    fake_kmcl::set_enable_status(NtStatus::INSUFFICIENT_RESOURCES);
    let refused = OfferedChannel::<TestKernel>::offer::<TestHost>(&config(true));
    fake_kmcl::set_enable_status(NtStatus::SUCCESS);
    assert_eq!(refused.unwrap_err(), NtStatus::INSUFFICIENT_RESOURCES);
    kernel::fail_next_allocations(1);
    let refused = OfferedChannel::<TestKernel>::offer::<TestHost>(&config(true));
    assert_eq!(refused.unwrap_err(), NtStatus::INSUFFICIENT_RESOURCES);
    // Both channels were cleaned up and both contexts freed.
    serial.assert_clean();
}

#[test]
fn requests_are_answered_through_packet_complete_exactly_once() {
    let serial = serial();
    let offered = offer(true);
    let channel = offered.handle();
    // Before the guest opens: refused, but still completed.
    fake_kmcl::deliver(channel, 1, &request(1, RequestBody::GetPortStats));
    open_and_start(&offered);
    let negotiate = NegotiateRequest {
        min_version: 1,
        max_version: 1,
        features: 0,
    };
    fake_kmcl::deliver(channel, 2, &request(2, RequestBody::Negotiate(negotiate)));
    let data = [9u8, 8, 7, 6, 5];
    fake_kmcl::deliver(
        channel,
        3,
        &request(
            3,
            RequestBody::Ping(Ping {
                nonce: 0xFEED,
                data: &data,
            }),
        ),
    );
    fake_kmcl::end_batch(channel, 3);
    {
        let record = record(channel);
        let ids: Vec<u64> = record.completions.iter().map(|c| c.0).collect();
        assert_eq!(ids, [1, 2, 3]);
        assert!(matches!(
            response_of(&record.completions[0]),
            ResponseBody::Error(_)
        ));
        assert!(matches!(
            response_of(&record.completions[1]),
            ResponseBody::Negotiate(_)
        ));
        match response_of(&record.completions[2]) {
            ResponseBody::Ping(pong) => {
                assert_eq!(pong.nonce, 0xFEED);
                assert_eq!(pong.data, data);
            }
            other => panic!("expected a ping response, got {other:?}"),
        }
    }
    assert_eq!(offered.channel().stats().packets_delivered, 3);
    offered.close::<TestHost>();
    serial.assert_clean();
}

#[test]
fn hostile_payloads_are_retired_exactly_once_and_empty_buffers_are_safe() {
    let serial = serial();
    let offered = offer(true);
    let channel = offered.handle();
    open_and_start(&offered);
    let oversized = vec![0xAB; MAX_MESSAGE_LEN + 100];
    let hostile: [&[u8]; 4] = [&[], &[0xFF; 3], &[0u8; 64], &oversized];
    for (id, payload) in (10u64..).zip(hostile) {
        fake_kmcl::deliver(channel, id, payload);
    }
    fake_kmcl::end_batch(channel, 4);
    let record = record(channel);
    let ids: Vec<u64> = record.completions.iter().map(|c| c.0).collect();
    assert_eq!(ids, [10, 11, 12, 13], "one completion or fail per packet");
    drop(record);
    offered.close::<TestHost>();
    serial.assert_clean();
}

/// Negotiates, subscribes to every event and raises `events` (one event): returns the sent
/// packet handle and the notification's sequence.
fn send_notification(offered: &OfferedChannel<TestKernel>, events: EventSet) -> (usize, u64) {
    let channel = offered.handle();
    let negotiate = NegotiateRequest {
        min_version: 1,
        max_version: 1,
        features: 0,
    };
    fake_kmcl::deliver(
        channel,
        100,
        &request(100, RequestBody::Negotiate(negotiate)),
    );
    fake_kmcl::deliver(
        channel,
        101,
        &request(101, RequestBody::Subscribe(EventSet::ALL)),
    );
    fake_kmcl::end_batch(channel, 2);
    offered
        .channel()
        .with_service(|service| service.raise(events));
    let sent = offered
        .channel()
        .send_pending(TestHost::platform())
        .unwrap();
    assert_eq!(sent, 1);
    let record = record(channel);
    let (packet, payload, flags) = record.sent.last().cloned().unwrap();
    assert_eq!(flags, VMBUS_CHANNEL_FORMAT_FLAG_WAIT_FOR_COMPLETION);
    let notification = protocol::parse_notification(&payload).unwrap();
    (packet, notification.sequence)
}

fn ack(sequence: u64) -> Vec<u8> {
    let mut out = vec![0u8; protocol::ACK_LEN];
    let value = NotificationAck {
        version: 1,
        sequence,
        status: AckStatus::Handled,
    };
    let n = protocol::encode_ack(&value, &mut out).unwrap();
    out.truncate(n);
    out
}

#[test]
fn a_sent_transaction_carries_its_key_and_the_completion_frees_the_packet() {
    let serial = serial();
    let offered = offer(true);
    open_and_start(&offered);
    let (packet, sequence) = send_notification(&offered, EventSet::HEARTBEAT);
    let mut keys = Vec::new();
    offered.channel().transaction_keys(|key, _| keys.push(key));
    assert_eq!(keys.len(), 1);
    assert_eq!(
        fake_kmcl::packet_pointer(packet),
        keys[0].to_bits() as usize
    );
    let packets = fake_kmcl::live_packets();
    fake_kmcl::guest_completes(packet, NtStatus::SUCCESS, &ack(sequence));
    assert_eq!(
        fake_kmcl::live_packets(),
        packets - 1,
        "the routine freed the packet"
    );
    assert_eq!(offered.channel().outstanding(), (0, 0));
    assert_eq!(offered.channel().stats().transactions_completed, 1);
    offered.close::<TestHost>();
    serial.assert_clean();
}

#[test]
fn a_failed_send_frees_the_packet_and_releases_the_ledger_entry() {
    let serial = serial();
    let offered = offer(true);
    open_and_start(&offered);
    fake_kmcl::set_send_status(NtStatus::INSUFFICIENT_RESOURCES);
    let channel = offered.handle();
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
    offered
        .channel()
        .with_service(|service| service.raise(EventSet::HEARTBEAT));
    let result = offered.channel().send_pending(TestHost::platform());
    fake_kmcl::set_send_status(NtStatus::SUCCESS);
    assert!(result.is_err());
    assert_eq!(offered.channel().outstanding(), (0, 0));
    offered.close::<TestHost>();
    serial.assert_clean();
}

#[test]
fn live_migration_saves_in_two_calls_and_restores_on_a_new_channel() {
    let serial = serial();
    // Source: a transaction in flight, then Pause -> Suspend.
    // Port statistics of the channel's NIC: a notification with state to save.
    let nic_port = SwitchPortId(50);
    TestHost::ports()
        .create_port(nic_port, Some(NIC), PortConfig::UNLIMITED)
        .unwrap();
    let source = offer(false);
    open_and_start(&source);
    let (source_packet, sequence) = send_notification(&source, EventSet::PORT_STATS);
    source.pause::<TestHost>().unwrap();
    fake_kmcl::state(source.handle(), StateEvent::Suspend);
    let ((first, needed), second) = fake_kmcl::save_packet(source.handle(), source_packet);
    assert_eq!(
        first,
        NtStatus::BUFFER_TOO_SMALL,
        "first call has a zero-size buffer"
    );
    assert!(needed > 0);
    let (status, saved) = second.expect("a second call with the size asked for");
    assert_eq!(status, NtStatus::SUCCESS);
    assert_eq!(saved.len(), needed as usize);

    // Destination: offered, restored before traffic, then started.
    let destination = offer(false);
    let library = b"kmcl's own packet state".to_vec();
    assert_eq!(
        fake_kmcl::restore_packet(destination.handle(), &library, &saved),
        NtStatus::SUCCESS
    );
    let (restored_packet, restored_library) = record(destination.handle()).restored[0].clone();
    assert_eq!(restored_library, library);
    destination
        .channel()
        .request(ChannelEvent::Restored)
        .unwrap();
    destination.start::<TestHost>().unwrap();
    fake_kmcl::state(destination.handle(), StateEvent::Started);
    fake_kmcl::state(destination.handle(), StateEvent::PostStarted);
    assert_eq!(destination.channel().outstanding(), (0, 1));
    let mut keys = Vec::new();
    destination
        .channel()
        .transaction_keys(|key, _| keys.push(key));
    assert_eq!(
        TransactionKey::from_bits(fake_kmcl::packet_pointer(restored_packet) as u32),
        keys[0]
    );

    // The guest, now on the destination, acknowledges the restored notification.
    fake_kmcl::guest_completes(restored_packet, NtStatus::SUCCESS, &ack(sequence));
    assert_eq!(destination.channel().outstanding(), (0, 0));
    assert_eq!(destination.channel().stats().transactions_completed, 1);

    // The source's guest is gone: Closed, then KMCL cancels the old packet. The routine
    // still frees it, though core no longer knows the transaction.
    fake_kmcl::state(source.handle(), StateEvent::Closed);
    fake_kmcl::guest_completes(source_packet, NtStatus::CANCELLED, &[]);
    assert_eq!(source.channel().stats().stale_references, 1);
    source.close::<TestHost>();
    destination.close::<TestHost>();
    TestHost::ports().delete_port(nic_port).unwrap();
    serial.assert_clean();
}

#[test]
fn hostile_saved_bytes_restore_nothing_and_allocate_no_packet() {
    let serial = serial();
    let destination = offer(true);
    let packets = fake_kmcl::live_packets();
    // (An empty buffer is not hostile: it is what a transaction with nothing to save leaves.)
    for saved in [&[0u8; 7][..], &[0xFF; 300][..], &[1u8][..]] {
        let status = fake_kmcl::restore_packet(destination.handle(), b"lib", saved);
        assert!(!status.is_success());
    }
    assert_eq!(fake_kmcl::live_packets(), packets);
    assert_eq!(destination.channel().outstanding(), (0, 0));
    assert!(record(destination.handle()).restored.is_empty());
    destination.close::<TestHost>();
    serial.assert_clean();
}

#[test]
fn save_packet_is_refused_while_active_and_for_unknown_keys() {
    let serial = serial();
    let offered = offer(true);
    open_and_start(&offered);
    let (packet, sequence) = send_notification(&offered, EventSet::HEARTBEAT);
    // Active: saving is not legal yet.
    let ((status, _), second) = fake_kmcl::save_packet(offered.handle(), packet);
    assert_eq!(status, NtStatus::INVALID_DEVICE_STATE);
    assert!(second.is_none());
    // Suspended: a heartbeat has nothing to save, so the first call already succeeds, with 0.
    offered.pause::<TestHost>().unwrap();
    fake_kmcl::state(offered.handle(), StateEvent::Suspend);
    let ((status, needed), second) = fake_kmcl::save_packet(offered.handle(), packet);
    assert_eq!((status, needed), (NtStatus::SUCCESS, 0));
    assert!(second.is_none());
    // A packet whose key names nothing in the ledger.
    let ((status, _), _) = fake_kmcl::save_packet_with_key(offered.handle(), 0xBEEF_0007);
    assert_eq!(status, NtStatus::NOT_FOUND);
    fake_kmcl::guest_completes(packet, NtStatus::SUCCESS, &ack(sequence));
    offered.close::<TestHost>();
    serial.assert_clean();
}

#[test]
fn live_migration_through_kmcl_save_and_restore_streams_in_small_chunks() {
    let serial = serial();
    let nic_port = SwitchPortId(51);
    TestHost::ports()
        .create_port(nic_port, Some(NIC), PortConfig::UNLIMITED)
        .unwrap();
    let source = offer(false);
    open_and_start(&source);
    let (stats_packet, stats_sequence) = send_notification(&source, EventSet::PORT_STATS);
    source
        .channel()
        .with_service(|service| service.raise(EventSet::HEARTBEAT));
    source.channel().send_pending(TestHost::platform()).unwrap();
    assert_eq!(source.channel().outstanding(), (0, 2));
    source.pause::<TestHost>().unwrap();
    fake_kmcl::state(source.handle(), StateEvent::Suspend);

    // What the VM worker process would carry: the session blob, then KMCL's stream.
    let mut session = vec![0u8; source.saved_session_len()];
    let session_len = source.save_session(&mut session).unwrap();
    session.truncate(session_len);
    source.save_begin::<TestHost>().unwrap();
    let mut tiny = [0u8; 4];
    assert_eq!(
        source.save_continue::<TestHost>(&mut tiny),
        Err(SaveChunkError::TooSmall {
            required: fake_kmcl::MIN_SAVE_CHUNK
        })
    );
    let mut chunks = Vec::new();
    loop {
        let mut buffer = [0u8; 24];
        match source.save_continue::<TestHost>(&mut buffer).unwrap() {
            SaveChunk::More(n) => chunks.push(buffer[..n as usize].to_vec()),
            SaveChunk::Last(n) => {
                chunks.push(buffer[..n as usize].to_vec());
                break;
            }
        }
    }
    source.save_end::<TestHost>();
    assert!(chunks.len() > 2, "the stream crossed several chunks");

    // Destination: the session first (refused garbage changes nothing), then the chunks.
    let destination = offer(false);
    assert!(destination.restore_session(&[0x55; 12]).is_err());
    destination.restore_session(&session).unwrap();
    let (last, rest) = chunks.split_last().unwrap();
    for chunk in rest {
        let more = destination.restore_chunk::<TestHost>(chunk).unwrap();
        assert!(more || record(destination.handle()).restore_stream.1 == 2);
    }
    assert!(!destination.restore_chunk::<TestHost>(last).unwrap());
    destination.restored().unwrap();
    assert_eq!(record(destination.handle()).restored.len(), 2);
    destination.start::<TestHost>().unwrap();
    fake_kmcl::state(destination.handle(), StateEvent::Started);
    fake_kmcl::state(destination.handle(), StateEvent::PostStarted);
    assert_eq!(destination.channel().outstanding(), (0, 2));

    // The guest acknowledges both on the destination; the heartbeat came back without state
    // (its ack carries a sequence the destination no longer knows: released all the same).
    let restored: Vec<usize> = record(destination.handle())
        .restored
        .iter()
        .map(|(p, _)| *p)
        .collect();
    let heartbeat_sequence = stats_sequence + 1;
    for packet in restored {
        let key = TransactionKey::from_bits(fake_kmcl::packet_pointer(packet) as u32);
        let mut is_stats = false;
        destination
            .channel()
            .transaction_keys(|k, tx| is_stats |= k == key && tx.has_saved_state());
        let sequence = if is_stats {
            stats_sequence
        } else {
            heartbeat_sequence
        };
        fake_kmcl::guest_completes(packet, NtStatus::SUCCESS, &ack(sequence));
    }
    assert_eq!(destination.channel().outstanding(), (0, 0));
    assert_eq!(destination.channel().stats().transactions_restored, 2);

    fake_kmcl::state(source.handle(), StateEvent::Closed);
    // KMCL cancels what the departed guest never completed: the routine frees each packet.
    fake_kmcl::guest_completes(stats_packet, NtStatus::CANCELLED, &[]);
    let leftover = record(source.handle()).live.clone();
    for packet in leftover {
        fake_kmcl::guest_completes(packet, NtStatus::CANCELLED, &[]);
    }
    source.close::<TestHost>();
    destination.close::<TestHost>();
    TestHost::ports().delete_port(nic_port).unwrap();
    serial.assert_clean();
}
