//! The simulated KMCL channel with ferry on it: quota, batches, pause, close, PacketFail,
//! save/restore chunking, and what a lost or corrupted saved packet does.

mod common;

use std::collections::VecDeque;

use common::{deliver, host, negotiate, problems, pump, vm};
use ferry_core::platform::Platform;
use ferry_core::protocol::EventSet;
use ferry_core::status::NtStatus;
use ferry_platform_mock::clock::VirtualTime;
use ferry_platform_mock::driver::QUOTA;
use ferry_platform_mock::kmcl::{
    self, ChannelHandle, IncomingPacketHandle, MIN_SAVE_CHUNK, PacketHandle, ServerCallbacks,
    ToHost,
};
use ferry_platform_mock::platform::SimPlatform;
use ferry_platform_mock::rng::SimRng;

#[test]
fn delivery_stalls_at_the_quota_and_resumes_after_a_completion() {
    let time = VirtualTime::new();
    let mut rng = SimRng::new(1);
    let h = host(&time, 5, 100);
    let mut v = vm(&h, 1, true);
    negotiate(&h, &mut v, &time, &mut rng);
    v.guest.flood(QUOTA + 4);
    let first = pump(&h, &mut v, 100, &time, &mut rng);
    assert_eq!(first.delivered as usize, QUOTA);
    assert!(first.stalled);
    let info = h.services.kmcl.info(v.channel).unwrap();
    assert_eq!(info.outstanding_incoming, QUOTA);
    assert_eq!(
        pump(&h, &mut v, 100, &time, &mut rng).delivered,
        0,
        "no completion, no delivery"
    );
    let deferred = h.driver.take_deferred();
    assert_eq!(deferred.len(), QUOTA);
    h.driver.answer_deferred(deferred[0].0, deferred[0].1);
    assert_eq!(pump(&h, &mut v, 100, &time, &mut rng).delivered, 1);
    for (channel, id) in h
        .driver
        .take_deferred()
        .into_iter()
        .chain(deferred.into_iter().skip(1))
    {
        h.driver.answer_deferred(channel, id);
    }
    pump(&h, &mut v, 100, &time, &mut rng);
    for (channel, id) in h.driver.take_deferred() {
        h.driver.answer_deferred(channel, id);
    }
    deliver(&h, &mut v, &time, &mut rng);
    assert_eq!(v.guest.outstanding(), 0);
    assert!(problems(&h, &v).is_empty(), "{:?}", problems(&h, &v));
}

#[test]
fn every_batch_ends_with_processing_complete_of_its_size() {
    let time = VirtualTime::new();
    let mut rng = SimRng::new(2);
    let h = host(&time, 5, 100);
    let mut v = vm(&h, 1, false);
    negotiate(&h, &mut v, &time, &mut rng);
    let before = h.services.kmcl.info(v.channel).unwrap().stats.batches;
    for budget in [1, 3, 7] {
        for _ in 0..5 {
            v.guest.send_request(&mut rng);
        }
        while pump(&h, &mut v, budget, &time, &mut rng).delivered > 0 {}
    }
    let after = h.services.kmcl.info(v.channel).unwrap().stats.batches;
    assert!(after - before >= 3);
    // The driver compares each count with core's batch accounting; no finding means they agreed.
    assert!(problems(&h, &v).is_empty(), "{:?}", problems(&h, &v));
}

#[test]
fn pause_retires_deferred_packets_and_late_answers_find_nothing() {
    let time = VirtualTime::new();
    let mut rng = SimRng::new(3);
    let h = host(&time, 5, 100);
    let mut v = vm(&h, 1, true);
    negotiate(&h, &mut v, &time, &mut rng);
    v.guest.flood(3);
    assert_eq!(pump(&h, &mut v, 10, &time, &mut rng).delivered, 3);
    let deferred = h.driver.take_deferred();
    h.driver.pause(v.channel);
    deliver(&h, &mut v, &time, &mut rng);
    assert_eq!(
        v.guest.ledger.cancelled, 3,
        "each retired packet answered once, as cancelled"
    );
    assert_eq!(
        h.services
            .kmcl
            .info(v.channel)
            .unwrap()
            .outstanding_incoming,
        0
    );
    for (channel, id) in deferred {
        h.driver.answer_deferred(channel, id);
    }
    assert_eq!(h.driver.stats().deferred_stale, 3);
    // Paused: the guest's next packet waits in its ring.
    v.guest.send_request(&mut rng);
    assert_eq!(pump(&h, &mut v, 10, &time, &mut rng).delivered, 0);
    assert_eq!(v.guest.ring.len(), 1);
    h.driver.start(v.channel);
    assert_eq!(pump(&h, &mut v, 10, &time, &mut rng).delivered, 1);
    assert!(problems(&h, &v).is_empty(), "{:?}", problems(&h, &v));
}

#[test]
fn opened_may_refuse_and_the_guest_retries() {
    let time = VirtualTime::new();
    let h = host(&time, 5, 100);
    let channel = h.driver.offer_channel(1, common::nic(1), false);
    h.driver.refuse_opens.set(1);
    let refused = h.services.kmcl.guest_open(channel, h.driver.as_ref());
    assert!(!refused.is_success());
    assert!(!h.services.kmcl.info(channel).unwrap().open);
    assert!(
        h.services
            .kmcl
            .guest_open(channel, h.driver.as_ref())
            .is_success()
    );
    let info = h.services.kmcl.info(channel).unwrap();
    assert!(info.open && info.running);
}

#[test]
fn guest_close_retires_transactions_and_tolerates_the_late_cancellation() {
    let time = VirtualTime::new();
    let mut rng = SimRng::new(4);
    let h = host(&time, 5, 100);
    let mut v = vm(&h, 1, false);
    negotiate(&h, &mut v, &time, &mut rng);
    while h
        .driver
        .service_stats(v.channel)
        .unwrap()
        .notifications_sent
        == 0
    {
        v.guest.send_request(&mut rng);
        pump(&h, &mut v, 10, &time, &mut rng);
        h.driver.raise(v.channel, EventSet::ALL);
    }
    let in_flight = h.services.kmcl.info(v.channel).unwrap().outgoing_in_use as u64;
    assert!(in_flight > 0);
    v.guest.crash();
    h.services
        .kmcl
        .guest_close(v.channel, &mut v.guest.ring, h.driver.as_ref());
    assert_eq!(
        h.driver
            .channel_stats(v.channel)
            .unwrap()
            .transactions_retired,
        in_flight
    );
    assert_eq!(h.driver.stats().late_cancellations, in_flight);
    assert_eq!(h.services.kmcl.info(v.channel).unwrap().outgoing_in_use, 0);
    assert!(problems(&h, &v).is_empty(), "{:?}", problems(&h, &v));
}

struct FailEverything(SimPlatform);

impl ServerCallbacks for FailEverything {
    fn channel_opened(&self, _: ChannelHandle) -> NtStatus {
        NtStatus::SUCCESS
    }
    fn channel_started(&self, _: ChannelHandle) {}
    fn channel_post_started(&self, _: ChannelHandle) {}
    fn channel_suspend(&self, _: ChannelHandle) {}
    fn channel_closed(&self, _: ChannelHandle) {}
    fn process_packet(&self, _: ChannelHandle, packet: IncomingPacketHandle, _: &[u8]) {
        self.0.fail_packet(packet);
    }
    fn processing_complete(&self, _: ChannelHandle, _: u32) {}
    fn packet_completion(&self, _: ChannelHandle, _: PacketHandle, _: u32, _: NtStatus, _: &[u8]) {}
    fn save_packet(&self, _: ChannelHandle, _: u32, _: &mut [u8]) -> (NtStatus, u32) {
        (NtStatus::SUCCESS, 0)
    }
    fn restore_packet(&self, _: ChannelHandle, _: &[u8], _: &[u8]) -> NtStatus {
        NtStatus::SUCCESS
    }
}

#[test]
fn packet_fail_stops_the_queue_until_the_next_start() {
    let time = VirtualTime::new();
    let h = host(&time, 5, 100);
    let callbacks = FailEverything(h.driver.platform().clone());
    let kmcl = &h.services.kmcl;
    let channel = kmcl.allocate(1, 4);
    kmcl.enable(channel);
    kmcl.start(channel, &callbacks);
    assert!(kmcl.guest_open(channel, &callbacks).is_success());
    let mut ring: VecDeque<ToHost> = (0..3)
        .map(|i| ToHost::Packet {
            guest_id: i,
            payload: vec![1, 2, 3],
        })
        .collect();
    assert_eq!(kmcl.pump(channel, &mut ring, 10, &callbacks).delivered, 1);
    assert!(kmcl.info(channel).unwrap().queue_stopped);
    assert_eq!(kmcl.pump(channel, &mut ring, 10, &callbacks).delivered, 0);
    kmcl.pause(channel, &callbacks);
    kmcl.start(channel, &callbacks);
    assert_eq!(kmcl.pump(channel, &mut ring, 1, &callbacks).delivered, 1);
    let info = kmcl.info(channel).unwrap();
    assert_eq!((info.stats.failed, info.outstanding_incoming), (2, 0));
    assert!(kmcl.take_violations().is_empty());
}

/// Sends notifications, pauses, and saves: the stream in chunks of `chunk` bytes.
fn saved_stream(
    h: &common::TestHost,
    v: &mut common::Vm,
    time: &VirtualTime,
    rng: &mut SimRng,
) -> (Vec<u8>, Vec<u8>, u64) {
    negotiate(h, v, time, rng);
    while h.services.kmcl.info(v.channel).unwrap().outgoing_in_use < 2 {
        v.guest.send_request(rng);
        pump(h, v, 10, time, rng);
        h.driver.raise(v.channel, EventSet::ALL);
        deliver(h, v, time, rng);
    }
    let in_flight = h.services.kmcl.info(v.channel).unwrap().outgoing_in_use as u64;
    h.driver.pause(v.channel);
    h.services
        .kmcl
        .save_begin(v.channel, h.driver.as_ref())
        .unwrap();
    let mut tiny = [0u8; 10];
    let answer = h.services.kmcl.save_continue(v.channel, &mut tiny);
    assert_eq!(answer.status, NtStatus::BUFFER_TOO_SMALL);
    assert_eq!(answer.bytes, MIN_SAVE_CHUNK);
    let mut stream = Vec::new();
    loop {
        let mut chunk = vec![0u8; MIN_SAVE_CHUNK];
        let answer = h.services.kmcl.save_continue(v.channel, &mut chunk);
        stream.extend_from_slice(&chunk[..answer.bytes]);
        if answer.status == NtStatus::SUCCESS {
            break;
        }
        assert_eq!(answer.status, NtStatus::BUFFER_OVERFLOW);
    }
    h.services.kmcl.save_end(v.channel);
    (stream, h.driver.save_session(v.channel), in_flight)
}

fn restore(
    dst: &common::TestHost,
    stream: &[u8],
    session: &[u8],
) -> (ChannelHandle, Result<(), String>) {
    dst.services
        .vswitch
        .create_port(common::nic(1), dst.driver.as_ref())
        .unwrap();
    let channel = dst.driver.allocate_channel(1, common::nic(1), false);
    let chunks: Vec<Vec<u8>> = stream.chunks(MIN_SAVE_CHUNK).map(<[u8]>::to_vec).collect();
    let result = dst.driver.restore_channel(channel, session, &chunks);
    (channel, result)
}

#[test]
fn save_in_chunks_restore_elsewhere_and_the_guest_completes_there() {
    let time = VirtualTime::new();
    let mut rng = SimRng::new(5);
    let src = host(&time, 5, 100);
    let dst = host(&time, 1 << 33, 900);
    let mut v = vm(&src, 1, false);
    let (stream, session, in_flight) = saved_stream(&src, &mut v, &time, &mut rng);
    let (channel, result) = restore(&dst, &stream, &session);
    result.unwrap();
    assert_eq!(
        dst.driver
            .channel_stats(channel)
            .unwrap()
            .transactions_restored,
        in_flight
    );
    dst.driver.start(channel);
    v.channel = channel;
    v.guest.hurry_acks();
    v.guest.send_due_acks(time.now());
    pump(&dst, &mut v, 64, &time, &mut rng);
    assert_eq!(dst.driver.stats().completions_accepted, in_flight);
    assert_eq!(dst.services.kmcl.info(channel).unwrap().outgoing_in_use, 0);
    assert!(problems(&dst, &v).is_empty(), "{:?}", problems(&dst, &v));
}

#[test]
fn a_saved_packet_lost_in_transfer_is_caught_when_the_guest_completes_it() {
    let time = VirtualTime::new();
    let mut rng = SimRng::new(6);
    let src = host(&time, 5, 100);
    let dst = host(&time, 77, 900);
    let mut v = vm(&src, 1, false);
    let (stream, session, _) = saved_stream(&src, &mut v, &time, &mut rng);
    let lossy = kmcl::rewrite_saved_packets(&stream, |packets| {
        packets.pop();
    })
    .unwrap();
    let (channel, result) = restore(&dst, &lossy, &session);
    result.unwrap();
    dst.driver.start(channel);
    v.channel = channel;
    v.guest.hurry_acks();
    v.guest.send_due_acks(time.now());
    pump(&dst, &mut v, 64, &time, &mut rng);
    let found = dst.services.kmcl.take_violations();
    assert!(
        found.iter().any(|f| f.contains("no packet object carries")),
        "{found:?}"
    );
}

#[test]
fn a_damaged_save_buffer_is_refused_at_restore() {
    let time = VirtualTime::new();
    let mut rng = SimRng::new(7);
    let src = host(&time, 5, 100);
    let mut v = vm(&src, 1, false);
    let (stream, session, _) = saved_stream(&src, &mut v, &time, &mut rng);
    let damages: [fn(&mut Vec<u8>); 3] = [
        |b| b.truncate(b.len() / 2),
        |b| {
            let last = b.len() - 1;
            b[last] ^= 0x10;
        },
        |b| *b = vec![0u8; 40],
    ];
    for damage in damages {
        let damaged = kmcl::rewrite_saved_packets(&stream, |packets| {
            let (_, saved) = packets.iter_mut().find(|(_, s)| !s.is_empty()).unwrap();
            damage(saved);
        })
        .unwrap();
        let dst = host(&time, 77, 900);
        let (_, result) = restore(&dst, &damaged, &session);
        assert!(result.is_err(), "a damaged SaveBuf was accepted");
    }
    // A damaged session is refused before any packet is restored.
    let mut bad_session = session.clone();
    bad_session[session.len() / 2] ^= 1;
    let dst = host(&time, 77, 900);
    let (channel, result) = restore(&dst, &stream, &bad_session);
    assert!(result.is_err());
    assert_eq!(
        dst.driver
            .channel_stats(channel)
            .unwrap()
            .transactions_restored,
        0
    );
}

#[test]
fn packets_may_arrive_between_started_and_post_started() {
    use ferry_core::channel::ChannelState;
    let time = VirtualTime::new();
    let mut rng = SimRng::new(8);
    let h = host(&time, 5, 100);
    h.services.kmcl.set_delivery_before_post_started(true);
    let mut v = vm(&h, 1, false);
    let core = h.driver.core_channel(v.channel).unwrap();
    assert_eq!(
        core.state(),
        ChannelState::Started,
        "PostStarted waits for the first slice"
    );
    v.guest.send_request(&mut rng);
    assert_eq!(pump(&h, &mut v, 4, &time, &mut rng).delivered, 1);
    assert_eq!(core.state(), ChannelState::Active);
    assert!(
        v.guest.negotiated(),
        "the packet delivered before PostStarted was served"
    );
    // A Suspend before the first slice: PostStarted never comes for that start.
    h.driver.pause(v.channel);
    h.driver.start(v.channel);
    h.driver.pause(v.channel);
    assert_eq!(core.state(), ChannelState::Suspended);
    h.driver.start(v.channel);
    pump(&h, &mut v, 4, &time, &mut rng);
    assert_eq!(core.state(), ChannelState::Active);
    assert!(problems(&h, &v).is_empty(), "{:?}", problems(&h, &v));
}
