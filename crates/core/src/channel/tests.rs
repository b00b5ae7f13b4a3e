//! Channel tests over a recording platform that logs every effect.

use super::*;
use crate::channel::incoming::IncomingId;
use crate::lock::SpinRawLock;
use crate::platform::{Platform, Ticks, TransactionKey};
use crate::status::NtStatus;
use core::cell::{Cell, RefCell};
use core::fmt;
use proptest::prelude::*;
use std::boxed::Box;
use std::collections::BTreeMap;
use std::vec;
use std::vec::Vec;

/// An incoming packet handle: deliberately neither `Copy` nor `Clone`.
#[derive(Debug, PartialEq, Eq)]
struct Packet(u32);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Logged {
    Completed {
        packet: u32,
        response: Vec<u8>,
    },
    Failed {
        packet: u32,
    },
    Sent {
        key: TransactionKey,
        payload: Vec<u8>,
    },
    Restored {
        key: TransactionKey,
        library: Vec<u8>,
    },
}

/// A platform that records every call.
#[derive(Default)]
struct Recorder<'a> {
    log: RefCell<Vec<Logged>>,
    now: Cell<u64>,
    next_outgoing: Cell<u32>,
    fail_sends: Cell<Option<NtStatus>>,
    fail_restores: Cell<Option<NtStatus>>,
    on_complete: RefCell<Option<Box<dyn Fn() + 'a>>>,
}

impl Recorder<'_> {
    fn take_log(&self) -> Vec<Logged> {
        core::mem::take(&mut *self.log.borrow_mut())
    }

    fn completed(&self) -> Vec<(u32, Vec<u8>)> {
        self.log
            .borrow()
            .iter()
            .filter_map(|l| match l {
                Logged::Completed { packet, response } => Some((*packet, response.clone())),
                _ => None,
            })
            .collect()
    }

    fn sent(&self) -> Vec<(TransactionKey, Vec<u8>)> {
        self.log
            .borrow()
            .iter()
            .filter_map(|l| match l {
                Logged::Sent { key, payload } => Some((*key, payload.clone())),
                _ => None,
            })
            .collect()
    }
}

impl Platform for Recorder<'_> {
    type Channel = u32;
    type IncomingPacket = Packet;
    type OutgoingPacket = u32;
    type PortSaveCompletion = u32;
    type Lock = SpinRawLock;

    fn complete_packet(&self, packet: Packet, response: &[u8]) {
        self.log.borrow_mut().push(Logged::Completed {
            packet: packet.0,
            response: response.to_vec(),
        });
        if let Some(hook) = &*self.on_complete.borrow() {
            hook();
        }
    }

    fn fail_packet(&self, packet: Packet) {
        self.log
            .borrow_mut()
            .push(Logged::Failed { packet: packet.0 });
    }

    fn send_transaction(
        &self,
        _channel: &u32,
        key: TransactionKey,
        payload: &[u8],
    ) -> Result<u32, NtStatus> {
        if let Some(status) = self.fail_sends.get() {
            return Err(status);
        }
        self.log.borrow_mut().push(Logged::Sent {
            key,
            payload: payload.to_vec(),
        });
        let id = self.next_outgoing.get();
        self.next_outgoing.set(id + 1);
        Ok(id)
    }

    fn restore_transaction(
        &self,
        _channel: &u32,
        key: TransactionKey,
        library_state: &[u8],
    ) -> Result<u32, NtStatus> {
        if let Some(status) = self.fail_restores.get() {
            return Err(status);
        }
        self.log.borrow_mut().push(Logged::Restored {
            key,
            library: library_state.to_vec(),
        });
        Ok(1000)
    }

    fn complete_port_save(&self, _completion: u32, _status: NtStatus) {}

    fn now(&self) -> Ticks {
        Ticks(self.now.get())
    }
}

/// A transaction context: a sequence number, or nothing to save.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TestTx {
    Numbered(u64),
    Stateless,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct BadSavedTx;

impl fmt::Display for BadSavedTx {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("saved transaction is not 0 or 8 bytes")
    }
}

impl From<BadSavedTx> for NtStatus {
    fn from(_: BadSavedTx) -> Self {
        NtStatus::DATA_ERROR
    }
}

impl TransactionState for TestTx {
    type RestoreError = BadSavedTx;

    fn saved_len(&self, _now: Ticks) -> usize {
        match self {
            TestTx::Numbered(_) => 8,
            TestTx::Stateless => 0,
        }
    }

    fn save(&self, _now: Ticks, out: &mut [u8]) -> Result<usize, NtStatus> {
        let TestTx::Numbered(n) = self else {
            return Ok(0);
        };
        out[..8].copy_from_slice(&n.to_le_bytes());
        Ok(8)
    }

    fn restore(saved: &[u8], _now: Ticks) -> Result<Self, BadSavedTx> {
        match saved.len() {
            0 => Ok(TestTx::Stateless),
            8 => Ok(TestTx::Numbered(u64::from_le_bytes(
                saved.try_into().unwrap(),
            ))),
            _ => Err(BadSavedTx),
        }
    }
}

/// A service whose first payload byte says what to do: 0 echo, 1 defer, 2 fail.
#[derive(Default)]
struct TestService {
    pending: Vec<TestTx>,
    next_sequence: u64,
    completed: Vec<(TestTx, NtStatus)>,
    retired: Vec<TestTx>,
    failed_sends: Vec<TestTx>,
    restored: Vec<TestTx>,
    resets: u32,
}

impl TestService {
    fn queue(&mut self, tx: TestTx) {
        self.pending.push(tx);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct WrongAck;

impl fmt::Display for WrongAck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ack does not name the transaction")
    }
}

const REFUSED_CANCELLED: u8 = 0xC1;
const REFUSED_BUSY: u8 = 0xC2;
const REFUSED_NOT_RUNNING: u8 = 0xC3;

impl ChannelService for TestService {
    type Request = u8;
    type Transaction = TestTx;
    type CompletionError = WrongAck;

    fn handle_packet(
        &mut self,
        payload: &[u8],
        response: &mut [u8],
        _now: Ticks,
    ) -> Disposition<u8> {
        match payload.first() {
            Some(0) => {
                response[..payload.len()].copy_from_slice(payload);
                Disposition::Respond(payload.len())
            }
            Some(1) => Disposition::Defer(payload.get(1).copied().unwrap_or(0)),
            _ => Disposition::Fail,
        }
    }

    fn refusal(
        &self,
        request: Option<u8>,
        _payload: &[u8],
        reason: Refusal,
        response: &mut [u8],
    ) -> usize {
        response[0] = match reason {
            Refusal::Cancelled => REFUSED_CANCELLED,
            Refusal::Busy => REFUSED_BUSY,
            Refusal::NotRunning => REFUSED_NOT_RUNNING,
        };
        response[1] = request.unwrap_or(0xFF);
        2
    }

    fn next_send(&mut self, out: &mut [u8], _now: Ticks) -> Option<(TestTx, usize)> {
        if self.pending.is_empty() {
            return None;
        }
        let tx = self.pending.remove(0);
        let seq = match tx {
            TestTx::Numbered(n) => n,
            TestTx::Stateless => 0,
        };
        out[..8].copy_from_slice(&seq.to_le_bytes());
        Some((tx, 8))
    }

    fn send_failed(&mut self, transaction: TestTx, _status: NtStatus) {
        self.failed_sends.push(transaction);
    }

    fn transaction_completed(
        &mut self,
        transaction: TestTx,
        status: NtStatus,
        completion: &[u8],
    ) -> Result<(), WrongAck> {
        self.completed.push((transaction, status));
        match transaction {
            TestTx::Numbered(n) if completion != n.to_le_bytes() => Err(WrongAck),
            _ => Ok(()),
        }
    }

    fn transaction_retired(&mut self, transaction: TestTx) {
        self.retired.push(transaction);
    }

    fn transaction_restored(&mut self, transaction: &TestTx) {
        self.restored.push(*transaction);
        if let TestTx::Numbered(n) = transaction {
            self.next_sequence = self.next_sequence.max(n.saturating_add(1));
        }
    }

    fn reset_session(&mut self) {
        self.resets += 1;
    }

    fn transaction_identity(&self, transaction: &TestTx) -> Option<u64> {
        match transaction {
            TestTx::Numbered(n) => Some(*n),
            TestTx::Stateless => None,
        }
    }
}

type TestChannel<'a> = Channel<Recorder<'a>, TestService, 4, 3>;

fn channel<'a>() -> TestChannel<'a> {
    Channel::new(7, TestService::default())
}

/// Drives a channel to Active.
fn activate<'a>(ch: &TestChannel<'a>, p: &Recorder<'a>) {
    ch.request(ChannelEvent::Enable).unwrap();
    ch.request(ChannelEvent::Start).unwrap();
    assert_eq!(ch.on_opened(p), NtStatus::SUCCESS);
    ch.on_started(p).unwrap();
    ch.on_post_started(p).unwrap();
    assert_eq!(ch.state(), ChannelState::Active);
}

fn deliver<'a>(
    ch: &TestChannel<'a>,
    p: &Recorder<'a>,
    id: u32,
    payload: &[u8],
) -> Result<PacketOutcome, ChannelError> {
    let mut response = [0u8; 64];
    ch.process_packet(p, Packet(id), payload, &mut response)
}

#[test]
fn a_packet_before_start_is_refused_but_still_completed_once() {
    let p = Recorder::default();
    let ch = channel();
    ch.request(ChannelEvent::Enable).unwrap();
    let err = deliver(&ch, &p, 1, &[0, 9]).unwrap_err();
    assert!(matches!(err, ChannelError::State(_)), "{err}");
    assert_eq!(p.completed(), [(1, vec![REFUSED_NOT_RUNNING, 0xFF])]);
    assert_eq!(ch.stats().packets_refused, 1);
}

#[test]
fn inline_requests_complete_with_the_service_response() {
    let p = Recorder::default();
    let ch = channel();
    activate(&ch, &p);
    assert_eq!(
        deliver(&ch, &p, 1, &[0, 1, 2, 3]),
        Ok(PacketOutcome::Completed)
    );
    assert_eq!(p.completed(), [(1, vec![0, 1, 2, 3])]);
    assert_eq!(ch.outstanding(), (0, 0));
}

#[test]
fn packets_are_served_between_started_and_post_started() {
    // kmcl.md 2.2: KMCL starts the incoming queue after Started, before PostStarted.
    let p = Recorder::default();
    let ch = channel();
    ch.request(ChannelEvent::Enable).unwrap();
    ch.request(ChannelEvent::Start).unwrap();
    ch.on_opened(&p);
    ch.on_started(&p).unwrap();
    assert_eq!(deliver(&ch, &p, 1, &[0]), Ok(PacketOutcome::Completed));
}

#[test]
fn deferred_packets_complete_once_and_a_second_completion_is_refused() {
    let p = Recorder::default();
    let ch = channel();
    activate(&ch, &p);
    let PacketOutcome::Deferred(id) = deliver(&ch, &p, 5, &[1, 42]).unwrap() else {
        panic!("expected deferral");
    };
    assert!(p.completed().is_empty());
    assert_eq!(ch.outstanding(), (1, 0));
    ch.complete_deferred(&p, id, b"done").unwrap();
    assert_eq!(
        ch.complete_deferred(&p, id, b"again"),
        Err(ChannelError::UnknownIncoming(id))
    );
    assert_eq!(p.completed(), [(5, b"done".to_vec())]);
    assert_eq!(ch.stats().stale_references, 1);
}

#[test]
fn suspend_retires_every_outstanding_packet_with_a_cancellation() {
    let p = Recorder::default();
    let ch = channel();
    activate(&ch, &p);
    let ids: Vec<IncomingId> = (0..3)
        .map(|i| match deliver(&ch, &p, i, &[1, i as u8]).unwrap() {
            PacketOutcome::Deferred(id) => id,
            other => panic!("{other:?}"),
        })
        .collect();
    ch.complete_deferred(&p, ids[1], b"ok").unwrap();
    ch.on_suspend(&p).unwrap();
    let mut completed = p.completed();
    completed.sort();
    assert_eq!(
        completed,
        [
            (0, vec![REFUSED_CANCELLED, 0]),
            (1, b"ok".to_vec()),
            (2, vec![REFUSED_CANCELLED, 2]),
        ]
    );
    assert_eq!(ch.outstanding(), (0, 0));
    // A deferred completion arriving after retirement completes nothing.
    assert_eq!(
        ch.complete_deferred(&p, ids[0], b"late"),
        Err(ChannelError::UnknownIncoming(ids[0]))
    );
    assert_eq!(p.completed().len(), 3);
    // No packet is served until the next Started.
    assert!(deliver(&ch, &p, 9, &[0]).is_err());
    assert_eq!(ch.stats().packets_retired, 2);
}

#[test]
fn a_packet_beyond_the_quota_is_answered_busy_not_dropped() {
    let p = Recorder::default();
    let ch = channel();
    activate(&ch, &p);
    for i in 0..4 {
        assert!(matches!(
            deliver(&ch, &p, i, &[1, 0]),
            Ok(PacketOutcome::Deferred(_))
        ));
    }
    assert_eq!(
        deliver(&ch, &p, 99, &[1, 7]),
        Err(ChannelError::IncomingFull { capacity: 4 })
    );
    assert_eq!(p.completed(), [(99, vec![REFUSED_BUSY, 7])]);
    assert_eq!(ch.outstanding(), (4, 0));
}

#[test]
fn hostile_packets_can_be_failed() {
    let p = Recorder::default();
    let ch = channel();
    activate(&ch, &p);
    assert_eq!(deliver(&ch, &p, 3, &[2]), Ok(PacketOutcome::Failed));
    assert_eq!(p.take_log().last(), Some(&Logged::Failed { packet: 3 }));
    assert!(p.completed().is_empty());
}

#[test]
fn processing_complete_checks_the_batch_count() {
    let p = Recorder::default();
    let ch = channel();
    activate(&ch, &p);
    deliver(&ch, &p, 1, &[0]).unwrap();
    deliver(&ch, &p, 2, &[0]).unwrap();
    assert_eq!(ch.processing_complete(2), Ok(2));
    deliver(&ch, &p, 3, &[0]).unwrap();
    assert!(matches!(
        ch.processing_complete(5),
        Err(ChannelError::BatchMismatch(_))
    ));
    // Not legal before the channel ever ran.
    let idle = channel();
    assert!(idle.processing_complete(0).is_err());
}

#[test]
fn sends_wait_for_post_started_and_completions_release_exactly_once() {
    let p = Recorder::default();
    let ch = channel();
    ch.with_service(|s| s.queue(TestTx::Numbered(10)));
    assert_eq!(
        ch.send_pending(&p),
        Ok(0),
        "nothing is sent before the channel runs"
    );
    activate(&ch, &p);
    let sent = p.sent();
    assert_eq!(sent.len(), 1);
    let (key, payload) = &sent[0];
    assert_eq!(payload, &10u64.to_le_bytes());
    assert_eq!(ch.outstanding(), (0, 1));
    ch.transaction_completed(&p, *key, NtStatus::SUCCESS, &10u64.to_le_bytes())
        .unwrap();
    assert_eq!(
        ch.transaction_completed(&p, *key, NtStatus::SUCCESS, &10u64.to_le_bytes()),
        Err(ChannelError::UnknownTransaction(*key))
    );
    ch.with_service(|s| assert_eq!(s.completed, [(TestTx::Numbered(10), NtStatus::SUCCESS)]));
}

#[test]
fn a_mismatched_completion_is_reported_but_still_releases() {
    let p = Recorder::default();
    let ch = channel();
    activate(&ch, &p);
    ch.with_service(|s| s.queue(TestTx::Numbered(3)));
    ch.send_pending(&p).unwrap();
    let key = p.sent()[0].0;
    assert_eq!(
        ch.transaction_completed(&p, key, NtStatus::SUCCESS, b"garbage"),
        Err(ChannelError::CompletionMismatch)
    );
    assert_eq!(ch.outstanding(), (0, 0));
}

#[test]
fn a_full_outgoing_ledger_keeps_sends_pending_until_room_frees() {
    let p = Recorder::default();
    let ch = channel();
    activate(&ch, &p);
    ch.with_service(|s| (1..=5).for_each(|n| s.queue(TestTx::Numbered(n))));
    assert_eq!(ch.send_pending(&p), Ok(3));
    assert_eq!(ch.outstanding(), (0, 3));
    ch.with_service(|s| assert_eq!(s.pending.len(), 2));
    let first = p.sent()[0].0;
    ch.transaction_completed(&p, first, NtStatus::SUCCESS, &1u64.to_le_bytes())
        .unwrap();
    // The completion made room and flushed one more.
    assert_eq!(p.sent().len(), 4);
    assert_eq!(ch.outstanding(), (0, 3));
}

#[test]
fn a_failed_send_releases_its_reservation() {
    let p = Recorder::default();
    let ch = channel();
    activate(&ch, &p);
    p.fail_sends.set(Some(NtStatus::INSUFFICIENT_RESOURCES));
    ch.with_service(|s| s.queue(TestTx::Numbered(1)));
    assert_eq!(
        ch.send_pending(&p),
        Err(ChannelError::SendFailed(NtStatus::INSUFFICIENT_RESOURCES))
    );
    assert_eq!(ch.outstanding(), (0, 0));
    ch.with_service(|s| assert_eq!(s.failed_sends, [TestTx::Numbered(1)]));
}

/// Active channel with transactions 21 (numbered) and a stateless one in flight, then paused.
fn paused_with_transactions<'a>(
    p: &Recorder<'a>,
) -> (TestChannel<'a>, TransactionKey, TransactionKey) {
    let ch = channel();
    activate(&ch, p);
    ch.with_service(|s| {
        s.queue(TestTx::Numbered(21));
        s.queue(TestTx::Stateless);
    });
    ch.send_pending(p).unwrap();
    let sent = p.sent();
    ch.request(ChannelEvent::Pause).unwrap();
    ch.on_suspend(p).unwrap();
    (ch, sent[0].0, sent[1].0)
}

#[test]
fn save_packet_follows_the_two_call_protocol() {
    let p = Recorder::default();
    let (ch, numbered, stateless) = paused_with_transactions(&p);
    // First call, size 0: state to save, so BUFFER_TOO_SMALL with the exact size.
    let first = ch.save_packet(&p, numbered, &mut []);
    assert_eq!(
        first,
        SavePacketAnswer {
            status: NtStatus::BUFFER_TOO_SMALL,
            bytes: 8
        }
    );
    // One byte too small: the same answer.
    let mut short = [0u8; 7];
    assert_eq!(ch.save_packet(&p, numbered, &mut short), first);
    // Large enough: the state is written.
    let mut buffer = [0u8; 16];
    assert_eq!(
        ch.save_packet(&p, numbered, &mut buffer),
        SavePacketAnswer {
            status: NtStatus::SUCCESS,
            bytes: 8
        }
    );
    assert_eq!(buffer[..8], 21u64.to_le_bytes());
    // Nothing to save: success on the first call.
    assert_eq!(
        ch.save_packet(&p, stateless, &mut []),
        SavePacketAnswer {
            status: NtStatus::SUCCESS,
            bytes: 0
        }
    );
    // A key that is not in flight.
    let bogus = TransactionKey {
        slot: 2,
        generation: 9,
    };
    assert_eq!(
        ch.save_packet(&p, bogus, &mut buffer).status,
        NtStatus::NOT_FOUND
    );
    assert_eq!(ch.stats().transactions_saved, 2);
}

#[test]
fn save_packet_is_refused_while_the_channel_runs() {
    let p = Recorder::default();
    let ch = channel();
    activate(&ch, &p);
    ch.with_service(|s| s.queue(TestTx::Numbered(1)));
    ch.send_pending(&p).unwrap();
    let key = p.sent()[0].0;
    assert_eq!(
        ch.save_packet(&p, key, &mut []).status,
        NtStatus::INVALID_DEVICE_STATE
    );
}

#[test]
fn restore_rebuilds_the_transaction_and_its_completion_works() {
    let source = Recorder::default();
    let (old, key, _) = paused_with_transactions(&source);
    let mut saved = [0u8; 8];
    assert_eq!(
        old.save_packet(&source, key, &mut saved).status,
        NtStatus::SUCCESS
    );

    let p = Recorder::default();
    let ch = channel();
    let new_key = ch.restore_packet(&p, b"kmcl-lib-state", &saved).unwrap();
    assert_eq!(
        p.take_log(),
        [Logged::Restored {
            key: new_key,
            library: b"kmcl-lib-state".to_vec()
        }]
    );
    ch.with_service(|s| {
        assert_eq!(s.restored, [TestTx::Numbered(21)]);
        assert_eq!(s.next_sequence, 22);
    });
    ch.request(ChannelEvent::Restored).unwrap();
    ch.request(ChannelEvent::Start).unwrap();
    ch.on_started(&p).unwrap();
    ch.on_post_started(&p).unwrap();
    ch.transaction_completed(&p, new_key, NtStatus::SUCCESS, &21u64.to_le_bytes())
        .unwrap();
    assert_eq!(ch.outstanding(), (0, 0));
}

#[test]
fn refused_restores_change_nothing() {
    let p = Recorder::default();
    let ch = channel();
    // Bytes the transaction type refuses: the platform is never asked.
    assert_eq!(
        ch.restore_packet(&p, b"lib", &[1, 2, 3]),
        Err(ChannelError::SavedStateRefused(NtStatus::DATA_ERROR))
    );
    assert!(p.take_log().is_empty());
    // The platform cannot recreate the packet: the reservation is released.
    p.fail_restores.set(Some(NtStatus::INSUFFICIENT_RESOURCES));
    assert_eq!(
        ch.restore_packet(&p, b"lib", &[0; 8]),
        Err(ChannelError::RestoreFailed(
            NtStatus::INSUFFICIENT_RESOURCES
        ))
    );
    assert_eq!(ch.outstanding(), (0, 0));
    ch.with_service(|s| assert!(s.restored.is_empty()));
    // A running channel does not take restored packets.
    p.fail_restores.set(None);
    activate(&ch, &p);
    assert!(matches!(
        ch.restore_packet(&p, b"lib", &[0; 8]),
        Err(ChannelError::State(_))
    ));
}

#[test]
fn guest_close_retires_outgoing_and_resets_the_session() {
    let p = Recorder::default();
    let (ch, key, _) = paused_with_transactions(&p);
    ch.on_closed(&p).unwrap();
    assert_eq!(ch.state(), ChannelState::Closed);
    assert_eq!(ch.outstanding(), (0, 0));
    ch.with_service(|s| {
        assert_eq!(s.retired.len(), 2);
        assert_eq!(s.resets, 1);
    });
    // KMCL completing a retired packet late releases nothing.
    assert_eq!(
        ch.transaction_completed(&p, key, NtStatus::CANCELLED, &[]),
        Err(ChannelError::UnknownTransaction(key))
    );
    // The guest may reopen.
    assert_eq!(ch.on_opened(&p), NtStatus::SUCCESS);
}

#[test]
fn a_second_opened_fails_the_callback() {
    let p = Recorder::default();
    let ch = channel();
    activate(&ch, &p);
    assert_eq!(ch.on_opened(&p), NtStatus::INVALID_DEVICE_STATE);
    assert_eq!(ch.state(), ChannelState::Active);
}

#[test]
fn callbacks_cannot_be_requested_as_driver_requests() {
    let ch = channel();
    assert!(ch.request(ChannelEvent::Suspend).is_err());
}

#[test]
fn a_start_requested_from_inside_suspend_is_refused() {
    let ch = channel();
    let outcome: RefCell<Vec<Result<(), ChannelError>>> = RefCell::new(Vec::new());
    let p = Recorder::default();
    activate(&ch, &p);
    deliver(&ch, &p, 1, &[1, 0]).unwrap();
    // The retirement of the deferred packet calls complete_packet inside the Suspend callback.
    *p.on_complete.borrow_mut() = Some(Box::new(|| {
        outcome.borrow_mut().push(ch.request(ChannelEvent::Start));
    }));
    ch.on_suspend(&p).unwrap();
    *p.on_complete.borrow_mut() = None;
    let outcome = outcome.borrow();
    assert_eq!(outcome.len(), 1);
    assert!(matches!(
        outcome[0],
        Err(ChannelError::State(StateError::RequestInsideCallback {
            event: ChannelEvent::Start,
            callback: ChannelEvent::Suspend
        }))
    ));
    // Outside the callback the same request is fine.
    ch.request(ChannelEvent::Start).unwrap();
}

use super::state::StateError;

#[derive(Debug, Clone)]
enum Step {
    Deliver { defer: bool },
    CompleteDeferred(usize),
    Send,
    GuestCompletes(usize),
    Pause,
    Resume,
    Close,
    Reopen,
    Batch,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => any::<bool>().prop_map(|defer| Step::Deliver { defer }),
        3 => (0usize..8).prop_map(Step::CompleteDeferred),
        2 => Just(Step::Send),
        2 => (0usize..8).prop_map(Step::GuestCompletes),
        1 => Just(Step::Pause),
        1 => Just(Step::Resume),
        1 => Just(Step::Close),
        1 => Just(Step::Reopen),
        1 => Just(Step::Batch),
    ]
}

proptest! {
    /// Under any interleaving of deliveries, deferred completions, sends, guest completions,
    /// suspends and closes: every packet delivered is completed or failed exactly once, and
    /// every transaction sent is completed or retired exactly once.
    #[test]
    fn exactly_once_under_interleavings(steps in proptest::collection::vec(step(), 0..80)) {
        let p = Recorder::default();
        let ch = channel();
        activate(&ch, &p);
        let mut next_packet = 0u32;
        let mut deferred: Vec<IncomingId> = Vec::new();
        let mut next_seq = 0u64;
        for step in steps {
            match step {
                Step::Deliver { defer } => {
                    let payload = if defer { vec![1, 0] } else { vec![0, 0] };
                    if let Ok(PacketOutcome::Deferred(id)) = deliver(&ch, &p, next_packet, &payload) {
                        deferred.push(id);
                    }
                    next_packet += 1;
                }
                Step::CompleteDeferred(i) => {
                    if !deferred.is_empty() {
                        let id = deferred.remove(i % deferred.len());
                        let _ = ch.complete_deferred(&p, id, b"r");
                    }
                }
                Step::Send => {
                    ch.with_service(|s| s.queue(TestTx::Numbered(next_seq)));
                    next_seq += 1;
                    let _ = ch.send_pending(&p);
                }
                Step::GuestCompletes(i) => {
                    let sent = p.sent();
                    if !sent.is_empty() {
                        let (key, payload) = &sent[i % sent.len()];
                        let _ = ch.transaction_completed(&p, *key, NtStatus::SUCCESS, payload);
                    }
                }
                Step::Pause => {
                    let _ = ch.request(ChannelEvent::Pause);
                    let _ = ch.on_suspend(&p);
                }
                Step::Resume => {
                    let _ = ch.request(ChannelEvent::Start);
                    if ch.on_started(&p).is_ok() {
                        ch.on_post_started(&p).unwrap();
                    }
                }
                Step::Close => {
                    let _ = ch.on_suspend(&p);
                    let _ = ch.on_closed(&p);
                }
                Step::Reopen => {
                    let _ = ch.on_opened(&p);
                }
                Step::Batch => {
                    let _ = ch.processing_complete(0);
                }
            }
            let (incoming, outgoing) = ch.outstanding();
            prop_assert!(incoming <= 4 && outgoing <= 3);
        }
        // End of the scenario: the guest closes.
        let _ = ch.on_suspend(&p);
        let _ = ch.on_closed(&p);
        prop_assert_eq!(ch.outstanding(), (0, 0));

        let mut answered: BTreeMap<u32, u32> = BTreeMap::new();
        for entry in p.log.borrow().iter() {
            match entry {
                Logged::Completed { packet, .. } | Logged::Failed { packet } => {
                    *answered.entry(*packet).or_default() += 1;
                }
                _ => {}
            }
        }
        prop_assert_eq!(answered.len() as u32, next_packet, "every packet answered");
        prop_assert!(answered.values().all(|&n| n == 1), "no packet answered twice");

        let sent = p.sent().len();
        ch.with_service(|s| {
            let released = s.completed.len() + s.retired.len();
            assert_eq!(released, sent, "every transaction released once");
            let mut seqs: Vec<_> = s
                .completed
                .iter()
                .map(|(tx, _)| *tx)
                .chain(s.retired.iter().copied())
                .collect();
            seqs.sort_by_key(|tx| match tx { TestTx::Numbered(n) => *n, TestTx::Stateless => u64::MAX });
            seqs.dedup();
            assert_eq!(seqs.len(), sent, "no transaction released twice");
        });
    }
}

/// The duplicate check before the identity index: the first outstanding transaction, in slot
/// order, that the restored one equals (both numbered alike), found by scanning the ledger.
fn duplicate_by_scan<const OUTGOING: usize>(
    ch: &Channel<Recorder<'_>, TestService, 4, OUTGOING>,
    restored: TestTx,
) -> Option<TransactionKey> {
    let mut found = None;
    ch.transaction_keys(|key, outstanding| {
        let same = matches!(restored, TestTx::Numbered(_)) && restored == *outstanding;
        if same && found.is_none() {
            found = Some(key);
        }
    });
    found
}

fn saved_form(tx: TestTx) -> Vec<u8> {
    match tx {
        TestTx::Numbered(n) => n.to_le_bytes().to_vec(),
        TestTx::Stateless => Vec::new(),
    }
}

#[test]
fn a_repeated_restore_is_refused_while_its_first_copy_is_in_flight() {
    let p = Recorder::default();
    let ch = channel();
    let first = ch
        .restore_packet(&p, b"lib", &saved_form(TestTx::Numbered(5)))
        .unwrap();
    let other = ch
        .restore_packet(&p, b"lib", &saved_form(TestTx::Numbered(6)))
        .unwrap();
    assert_eq!(
        ch.restore_packet(&p, b"lib", &saved_form(TestTx::Numbered(5))),
        Err(ChannelError::DuplicateTransaction(first))
    );
    // A full ledger still names the duplicate rather than the lack of room.
    ch.restore_packet(&p, b"lib", &[]).unwrap();
    assert_eq!(ch.outstanding(), (0, 3));
    assert_eq!(
        ch.restore_packet(&p, b"lib", &saved_form(TestTx::Numbered(6))),
        Err(ChannelError::DuplicateTransaction(other))
    );
    assert_eq!(
        ch.restore_packet(&p, b"lib", &saved_form(TestTx::Numbered(7))),
        Err(ChannelError::OutgoingFull { capacity: 3 })
    );
    // Once the first copy is completed, the same transaction may be restored again.
    ch.transaction_completed(&p, first, NtStatus::SUCCESS, &5u64.to_le_bytes())
        .unwrap();
    let again = ch
        .restore_packet(&p, b"lib", &saved_form(TestTx::Numbered(5)))
        .unwrap();
    assert_eq!(again.slot, first.slot);
    assert_ne!(again, first, "a new generation");
    assert_eq!(
        ch.restore_packet(&p, b"lib", &saved_form(TestTx::Numbered(5))),
        Err(ChannelError::DuplicateTransaction(again))
    );
}

#[derive(Debug, Clone)]
enum RestoreStep {
    /// Restore the transaction numbered `pool[i]`, or a stateless one for `None`.
    Restore(Option<usize>),
    /// The same, with the platform failing to recreate the packet.
    RestoreFailing(Option<usize>),
    /// The guest completes the `i`-th outstanding transaction (modulo their count).
    Complete(usize),
    /// The guest closes and reopens: every transaction is retired.
    CloseAndReopen,
}

fn restore_step() -> impl Strategy<Value = RestoreStep> {
    let pick = proptest::option::weighted(0.85, 0usize..10);
    prop_oneof![
        8 => pick.clone().prop_map(RestoreStep::Restore),
        1 => pick.prop_map(RestoreStep::RestoreFailing),
        3 => (0usize..8).prop_map(RestoreStep::Complete),
        1 => Just(RestoreStep::CloseAndReopen),
    ]
}

/// Ledger capacity of the channel the property below drives.
const PROPERTY_OUTGOING: usize = 6;

proptest! {
    /// On any sequence of restores (repeats included, ledger full or not), completions,
    /// failed restores and closes, `restore_packet` gives exactly what the scan of the ledger
    /// gave before the identity index: the duplicate's key, "full", the platform's failure or a
    /// new key. Half the numbers share one bucket of the index.
    #[test]
    fn duplicate_detection_agrees_with_the_ledger_scan(
        steps in proptest::collection::vec(restore_step(), 0..120),
    ) {
        use crate::channel::identity::IdentityIndex;
        let pool: Vec<u64> = (0u64..)
            .filter(|&n| IdentityIndex::<PROPERTY_OUTGOING>::bucket(n) == 1)
            .take(5)
            .chain([0, 1, 2, u64::MAX, 1 << 40])
            .collect();
        let p = Recorder::default();
        let ch: Channel<Recorder<'_>, TestService, 4, PROPERTY_OUTGOING> =
            Channel::new(7, TestService::default());
        ch.request(ChannelEvent::Enable).unwrap();
        prop_assert_eq!(ch.on_opened(&p), NtStatus::SUCCESS);
        for step in steps {
            match step {
                RestoreStep::Restore(pick) | RestoreStep::RestoreFailing(pick) => {
                    let failing = matches!(step, RestoreStep::RestoreFailing(_));
                    let tx = pick.map_or(TestTx::Stateless, |i| TestTx::Numbered(pool[i]));
                    let expected = duplicate_by_scan(&ch, tx);
                    let before = ch.outstanding().1;
                    p.fail_restores.set(failing.then_some(NtStatus::INSUFFICIENT_RESOURCES));
                    let got = ch.restore_packet(&p, b"lib", &saved_form(tx));
                    match (expected, got) {
                        (Some(existing), got) => {
                            prop_assert_eq!(got, Err(ChannelError::DuplicateTransaction(existing)));
                        }
                        (None, _) if before == PROPERTY_OUTGOING => prop_assert_eq!(
                            got,
                            Err(ChannelError::OutgoingFull { capacity: PROPERTY_OUTGOING })
                        ),
                        (None, _) if failing => prop_assert_eq!(
                            got,
                            Err(ChannelError::RestoreFailed(NtStatus::INSUFFICIENT_RESOURCES))
                        ),
                        (None, Ok(key)) => {
                            let mut held = None;
                            ch.transaction_keys(|k, t| if k == key { held = Some(*t) });
                            prop_assert_eq!(held, Some(tx));
                        }
                        (None, Err(error)) => prop_assert!(false, "refused: {error}"),
                    }
                    let grew = usize::from(got.is_ok());
                    prop_assert_eq!(ch.outstanding().1, before + grew);
                }
                RestoreStep::Complete(i) => {
                    let mut keys = Vec::new();
                    ch.transaction_keys(|key, tx| keys.push((key, *tx)));
                    if !keys.is_empty() {
                        let (key, tx) = keys[i % keys.len()];
                        let completion = match tx {
                            TestTx::Numbered(n) => n.to_le_bytes().to_vec(),
                            TestTx::Stateless => Vec::new(),
                        };
                        prop_assert_eq!(
                            ch.transaction_completed(&p, key, NtStatus::SUCCESS, &completion),
                            Ok(())
                        );
                    }
                }
                RestoreStep::CloseAndReopen => {
                    ch.on_closed(&p).unwrap();
                    prop_assert_eq!(ch.outstanding().1, 0);
                    prop_assert_eq!(ch.on_opened(&p), NtStatus::SUCCESS);
                }
            }
        }
    }
}
