//! Drives ferry's reference service (`service::FerryService`) through a `channel::Channel` on a
//! tiny recording platform with a stream of operations split from the input (`ferry_fuzz::ops`):
//! arbitrary and well-formed guest packets interleaved with channel events (negotiate, start,
//! suspend, close, ...), batch ends, deferred answers, notifications and their completions,
//! transaction save/restore and session round trips.
//!
//! After every step: every completed packet was completed once (the platform refuses a second
//! completion), every response parses with `parse_response` and echoes the request's
//! transaction id, every notification parses, and the channel's counters add up. At the end,
//! once every deferred packet is answered, every packet delivered was completed exactly once.
//!
//! With `FERRY_FUZZ_TRACE` set, each run prints the channel's and the service's counters (to
//! see what a seed reaches: `cargo fuzz run service_packet <file>`).

#![no_main]

use arbitrary::Unstructured;
use ferry_core::channel::incoming::IncomingId;
use ferry_core::channel::{
    Channel, ChannelEvent, PacketOutcome, SavePacketAnswer, TransactionState,
};
use ferry_core::platform::{Ticks, TransactionKey};
use ferry_core::port::PortIdentity;
use ferry_core::protocol::{
    self, AckStatus, EventSet, MAX_MESSAGE_LEN, NotificationAck, PortStats, parse_notification,
    parse_request, parse_response,
};
use ferry_core::service::{FerryService, NotificationTx, PortStatsSource, ServiceConfig};
use ferry_core::status::NtStatus;
use ferry_fuzz::ops::{Ack, Op, channel_event, well_formed_request};
use ferry_fuzz::platform::{FuzzPlatform, Packet};
use libfuzzer_sys::fuzz_target;

/// A port whose statistics are always the same.
struct FixedPort;

impl PortStatsSource for FixedPort {
    fn port_stats(&self, _identity: &PortIdentity) -> Option<PortStats> {
        Some(PortStats {
            rx_frames: 1,
            rx_bytes: 64,
            tx_frames: 2,
            tx_bytes: 128,
            dropped_frames: 0,
            dropped_bytes: 0,
            flows_active: 1,
            flows_evicted: 0,
        })
    }
}

/// A small quota and outgoing ledger, so that "busy" and "no room" are reachable.
type FuzzChannel = Channel<FuzzPlatform, FerryService<FixedPort>, 4, 2>;

struct Run {
    platform: FuzzPlatform,
    channel: FuzzChannel,
    /// Payload of every packet delivered, by packet id.
    delivered: Vec<Vec<u8>>,
    deferred: Vec<IncomingId>,
    /// Transactions sent or restored, with the sequence their ack must name.
    transactions: Vec<(TransactionKey, u64)>,
    batch: u32,
    /// Completions already checked.
    checked: usize,
    /// Notifications already checked.
    checked_sent: usize,
    response: Vec<u8>,
}

impl Run {
    fn new(config_byte: u8) -> Self {
        let identity = (config_byte & 2 != 0).then_some(PortIdentity([7; 16]));
        let config = ServiceConfig {
            defer_port_stats: config_byte & 1 != 0,
        };
        Self {
            platform: FuzzPlatform::default(),
            channel: Channel::new((), FerryService::new(FixedPort, identity, config)),
            delivered: Vec::new(),
            deferred: Vec::new(),
            transactions: Vec::new(),
            batch: 0,
            checked: 0,
            checked_sent: 0,
            response: vec![0u8; MAX_MESSAGE_LEN],
        }
    }

    fn deliver(&mut self, payload: Vec<u8>) {
        let id = u32::try_from(self.delivered.len()).expect("few packets");
        let outcome =
            self.channel
                .process_packet(&self.platform, Packet(id), &payload, &mut self.response);
        self.delivered.push(payload);
        self.batch += 1;
        match outcome {
            Ok(PacketOutcome::Deferred(incoming)) => {
                assert!(!self.platform.is_done(id), "deferred yet completed");
                self.deferred.push(incoming);
            }
            Ok(PacketOutcome::Completed | PacketOutcome::Failed) | Err(_) => {
                assert!(self.platform.is_done(id), "not deferred, yet not completed");
            }
        }
    }

    fn event(&self, event: ChannelEvent) {
        let p = &self.platform;
        let _ = match event {
            ChannelEvent::Opened => {
                let _ = self.channel.on_opened(p);
                Ok(())
            }
            ChannelEvent::Started => self.channel.on_started(p),
            ChannelEvent::PostStarted => self.channel.on_post_started(p),
            ChannelEvent::Suspend => {
                let result = self.channel.on_suspend(p);
                if result.is_ok() {
                    assert_eq!(self.channel.outstanding().0, 0, "Suspend left packets");
                }
                result
            }
            ChannelEvent::Closed => {
                let result = self.channel.on_closed(p);
                if result.is_ok() {
                    assert_eq!(self.channel.outstanding().1, 0, "Close left transactions");
                }
                result
            }
            other => self.channel.request(other),
        };
    }

    fn answer(&mut self, index: u8) {
        if self.deferred.is_empty() {
            return;
        }
        let id = self.deferred[usize::from(index) % self.deferred.len()];
        let _ = self.channel.answer_deferred(
            &self.platform,
            id,
            &mut self.response,
            |service, request, out| service.answer_deferred(request, out),
        );
    }

    fn complete(&self, index: u8, ack: &Ack) {
        if self.transactions.is_empty() {
            return;
        }
        let (key, sequence) = self.transactions[usize::from(index) % self.transactions.len()];
        let mut bytes = vec![0u8; protocol::ACK_LEN];
        let status = match ack {
            Ack::Correct | Ack::WrongSequence => {
                let ack = NotificationAck {
                    version: protocol::PROTOCOL_VERSION_1,
                    sequence: if *ack == Ack::Correct {
                        sequence
                    } else {
                        sequence.wrapping_add(1)
                    },
                    status: AckStatus::Handled,
                };
                protocol::encode_ack(&ack, &mut bytes).expect("ack encodes");
                NtStatus::SUCCESS
            }
            Ack::FailureStatus => {
                bytes.clear();
                NtStatus::DEVICE_REMOVED
            }
            Ack::Raw(raw) => {
                bytes.clone_from(raw);
                NtStatus::SUCCESS
            }
        };
        let _ = self
            .channel
            .transaction_completed(&self.platform, key, status, &bytes);
    }

    fn save_restore(&mut self, index: u8) {
        if self.transactions.is_empty() {
            return;
        }
        let key = self.transactions[usize::from(index) % self.transactions.len()].0;
        let SavePacketAnswer { status, bytes } =
            self.channel.save_packet(&self.platform, key, &mut []);
        let saved = if status == NtStatus::BUFFER_TOO_SMALL {
            let mut out = vec![0u8; bytes as usize];
            let answer = self.channel.save_packet(&self.platform, key, &mut out);
            assert_eq!(
                answer.status,
                NtStatus::SUCCESS,
                "second SavePacket call failed"
            );
            assert_eq!(answer.bytes, bytes, "SavePacket sizes disagree");
            assert!(NotificationTx::restore(&out, Ticks(self.platform.now.get())).is_ok());
            out
        } else {
            Vec::new()
        };
        self.restore(&saved);
    }

    fn restore(&mut self, saved: &[u8]) {
        let before = self.channel.outstanding().1;
        if let Ok(key) = self.channel.restore_packet(&self.platform, &[], saved) {
            assert_eq!(self.channel.outstanding().1, before + 1);
            let now = Ticks(self.platform.now.get());
            let tx = NotificationTx::restore(saved, now).expect("the channel restored it");
            self.transactions.push((key, tx.sequence.unwrap_or(0)));
        } else {
            assert_eq!(
                self.channel.outstanding().1,
                before,
                "a failed restore kept something"
            );
        }
    }

    fn session_round_trip(&self) {
        self.channel.with_service(|service| {
            let mut blob = vec![0u8; service.saved_session_len()];
            let written = service
                .save_session(&mut blob)
                .expect("saved_session_len is enough");
            assert_eq!(written, blob.len());
            let session = *service.session();
            service
                .restore_session(&blob)
                .expect("own session restores");
            assert_eq!(
                *service.session(),
                session,
                "session changed in a round trip"
            );
        });
    }

    fn apply(&mut self, op: Op) {
        match op {
            Op::Packet(bytes) => self.deliver(bytes),
            Op::Request {
                kind,
                version,
                transaction_id,
                arg,
            } => self.deliver(well_formed_request(kind, version, transaction_id, arg)),
            Op::Event(index) => self.event(channel_event(index)),
            Op::ProcessingComplete(skew) => {
                let reported = self.batch.wrapping_add(u32::from(skew));
                if self.channel.processing_complete(reported).is_ok() {
                    self.batch = 0;
                }
            }
            Op::AnswerDeferred(index) => self.answer(index),
            Op::SendPending => {
                let _ = self.channel.send_pending(&self.platform);
            }
            Op::Raise(bits) => {
                let events = EventSet::from_bits(u32::from(bits) & EventSet::ALL.bits())
                    .expect("known bits");
                self.channel.with_service(|service| service.raise(events));
            }
            Op::Complete(index, ack) => self.complete(index, &ack),
            Op::SaveRestore(index) => self.save_restore(index),
            Op::RestoreRaw(bytes) => self.restore(&bytes),
            Op::Clock(ms) => self
                .platform
                .now
                .set(self.platform.now.get() + u64::from(ms) * 10_000),
            Op::ToggleSendFailure => {
                let next = match self.platform.fail_sends.get() {
                    Some(_) => None,
                    None => Some(NtStatus::INSUFFICIENT_RESOURCES),
                };
                self.platform.fail_sends.set(next);
            }
            Op::SessionRoundTrip => self.session_round_trip(),
        }
        self.check();
    }

    /// The invariants that hold after every step.
    fn check(&mut self) {
        let completions = self.platform.completions.borrow();
        for completion in &completions[self.checked..] {
            let Some(response) = &completion.response else {
                continue;
            };
            let parsed = parse_response(response).unwrap_or_else(|error| {
                panic!("response {response:02x?} does not parse: {error:?}")
            });
            if let Ok(request) = parse_request(&self.delivered[completion.packet as usize]) {
                assert_eq!(
                    parsed.transaction_id, request.transaction_id,
                    "id not echoed"
                );
            }
        }
        self.checked = completions.len();
        drop(completions);

        let sent = self.platform.sent.borrow();
        for (key, payload) in &sent[self.checked_sent..] {
            let notification = parse_notification(payload).expect("a sent notification parses");
            self.transactions.push((*key, notification.sequence));
        }
        self.checked_sent = sent.len();

        let stats = self.channel.stats();
        let (incoming, outgoing) = self.channel.outstanding();
        let done = self.platform.done_count() as u64;
        assert_eq!(stats.packets_delivered, self.delivered.len() as u64);
        assert_eq!(
            stats.packets_completed + stats.packets_refused + stats.packets_failed,
            done,
            "completion counters disagree with the platform"
        );
        assert_eq!(
            self.delivered.len() as u64 - done,
            incoming as u64,
            "a packet went missing"
        );
        assert_eq!(stats.transactions_sent, sent.len() as u64);
        assert_eq!(
            stats.transactions_sent + stats.transactions_restored,
            stats.transactions_completed + stats.transactions_retired + outgoing as u64,
            "a transaction went missing"
        );
    }

    fn finish(mut self) {
        for id in std::mem::take(&mut self.deferred) {
            let _ = self.channel.answer_deferred(
                &self.platform,
                id,
                &mut self.response,
                |service, request, out| service.answer_deferred(request, out),
            );
        }
        self.check();
        if std::env::var_os("FERRY_FUZZ_TRACE").is_some() {
            eprintln!(
                "{:?}\n{:?}\nstate {:?}",
                self.channel.stats(),
                self.channel.with_service(|service| service.stats()),
                self.channel.state()
            );
        }
        assert_eq!(self.channel.outstanding().0, 0);
        for id in 0..self.delivered.len() {
            assert!(
                self.platform.is_done(id as u32),
                "packet {id} never completed"
            );
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&config, rest)) = data.split_first() else {
        return;
    };
    let mut run = Run::new(config);
    let mut u = Unstructured::new(rest);
    let mut steps = 0;
    while let Some(op) = Op::decode(&mut u) {
        run.apply(op);
        steps += 1;
        if steps == 256 {
            break;
        }
    }
    run.finish();
});
