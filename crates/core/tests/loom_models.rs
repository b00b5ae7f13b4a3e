//! Loom models of the places where ferry's callbacks race on Windows.
//!
//! Run: `RUSTFLAGS="--cfg loom" cargo test -p ferry-core --release --test loom_models`
//! (`LOOM_MAX_PREEMPTIONS` bounds the search; the default used by `.ci/run` is 3).
//!
//! Core is generic over the platform's raw lock, so these models run core's real code with a
//! lock built on loom's atomics ([`LoomRawLock`], acquire/release like `KSPIN_LOCK`); loom then
//! explores every interleaving of the lock sections of the threads below within its bounds.
//! What is checked is core's logic between lock sections — exactly-once completion, no lost
//! or duplicated state — not the platform's lock itself.

#![cfg(loom)]

use std::sync::OnceLock;

use ferry_core::channel::{Channel, ChannelError, ChannelEvent, PacketOutcome};
use ferry_core::lock::RawLock;
use ferry_core::platform::{Platform, Ticks, TransactionKey};
use ferry_core::port::{
    Direction, FlowKey, FrameInfo, PendingSaves, PortConfig, PortError, PortIdentity, PortTable,
    SwitchPortId,
};
use ferry_core::protocol::{
    self, AckStatus, EventSet, MAX_MESSAGE_LEN, NegotiateRequest, NotificationAck, Request,
    RequestBody, parse_notification,
};
use ferry_core::service::{FerryService, PortStatsSource, ServiceConfig};
use ferry_core::status::NtStatus;
use loom::sync::atomic::{AtomicBool, Ordering};
use loom::sync::{Arc, Mutex};
use loom::thread;

/// A spin lock on loom's atomics. `RawLock::UNLOCKED` must be a constant but loom's atomics
/// are created inside a model run, so the atomic is created on first use.
struct LoomRawLock(OnceLock<AtomicBool>);

impl LoomRawLock {
    fn flag(&self) -> &AtomicBool {
        self.0.get_or_init(|| AtomicBool::new(false))
    }
}

// SAFETY: compare_exchange(false -> true, Acquire) admits one holder until the Release store.
unsafe impl RawLock for LoomRawLock {
    type Token = ();
    const UNLOCKED: Self = Self(OnceLock::new());

    fn lock(&self) {
        while self
            .flag()
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            thread::yield_now();
        }
    }

    unsafe fn unlock(&self, (): ()) {
        self.flag().store(false, Ordering::Release);
    }
}

/// Records completions and sends; shared by the model's threads.
#[derive(Default)]
struct LoomPlatform {
    completed: Mutex<Vec<u32>>,
    failed: Mutex<Vec<u32>>,
    sent: Mutex<Vec<(TransactionKey, Vec<u8>)>>,
}

impl Platform for LoomPlatform {
    type Channel = ();
    type IncomingPacket = u32;
    type OutgoingPacket = ();
    type PortSaveCompletion = u32;
    type Lock = LoomRawLock;

    fn complete_packet(&self, packet: u32, _response: &[u8]) {
        self.completed.lock().unwrap().push(packet);
    }
    fn fail_packet(&self, packet: u32) {
        self.failed.lock().unwrap().push(packet);
    }
    fn send_transaction(
        &self,
        _: &(),
        key: TransactionKey,
        payload: &[u8],
    ) -> Result<(), NtStatus> {
        self.sent.lock().unwrap().push((key, payload.to_vec()));
        Ok(())
    }
    fn restore_transaction(&self, _: &(), _: TransactionKey, _: &[u8]) -> Result<(), NtStatus> {
        Ok(())
    }
    fn complete_port_save(&self, _: u32, _: NtStatus) {}
    fn now(&self) -> Ticks {
        Ticks(0)
    }
}

const NIC: PortIdentity = PortIdentity([9; 16]);

struct NoPorts;
impl PortStatsSource for NoPorts {
    fn port_stats(&self, _: &PortIdentity) -> Option<protocol::PortStats> {
        Some(protocol::PortStats {
            rx_frames: 0,
            rx_bytes: 0,
            tx_frames: 0,
            tx_bytes: 0,
            dropped_frames: 0,
            dropped_bytes: 0,
            flows_active: 0,
            flows_evicted: 0,
        })
    }
}

type LoomChannel = Channel<LoomPlatform, FerryService<NoPorts>, 2, 2>;

fn request(transaction_id: u64, body: RequestBody<'_>) -> Vec<u8> {
    let mut out = vec![0u8; MAX_MESSAGE_LEN];
    let len = protocol::encode_request(
        &Request {
            version: 1,
            transaction_id,
            body,
        },
        &mut out,
    )
    .unwrap();
    out.truncate(len);
    out
}

/// A negotiated, running channel whose statistics requests are deferred.
fn running_channel(platform: &LoomPlatform) -> LoomChannel {
    let config = ServiceConfig {
        defer_port_stats: true,
    };
    let ch = Channel::new((), FerryService::new(NoPorts, Some(NIC), config));
    ch.request(ChannelEvent::Enable).unwrap();
    ch.request(ChannelEvent::Start).unwrap();
    assert_eq!(ch.on_opened(platform), NtStatus::SUCCESS);
    ch.on_started(platform).unwrap();
    ch.on_post_started(platform).unwrap();
    let negotiate = request(
        1,
        RequestBody::Negotiate(NegotiateRequest {
            min_version: 1,
            max_version: 1,
            features: 0,
        }),
    );
    let mut scratch = vec![0u8; MAX_MESSAGE_LEN];
    ch.process_packet(platform, 0, &negotiate, &mut scratch)
        .unwrap();
    assert_eq!(ch.processing_complete(1), Ok(1));
    platform.completed.lock().unwrap().clear();
    ch
}

/// Runs `f` under loom and returns how many interleavings were explored.
fn bounded(f: impl Fn() + Sync + Send + 'static) -> usize {
    use std::sync::atomic::AtomicUsize;
    let runs = std::sync::Arc::new(AtomicUsize::new(0));
    let counter = std::sync::Arc::clone(&runs);
    let f = move || {
        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        f();
    };
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(3);
    }
    // Every spin-lock retry is a branch; three threads over the port table need more than
    // loom's default budget.
    builder.max_branches = 100_000;
    builder.check(f);
    let explored = runs.load(std::sync::atomic::Ordering::Relaxed);
    // A model that explored a single schedule checked nothing about the race.
    assert!(explored > 1, "loom explored only {explored} interleaving");
    eprintln!("explored {explored} interleavings");
    explored
}

/// A deferred completion from another CPU races Suspend's retirement of the ledger: the
/// packet is completed exactly once, by whichever comes first, and the loser is told.
#[test]
fn deferred_completion_races_suspend_retirement() {
    let _ = bounded(|| {
        let platform = Arc::new(LoomPlatform::default());
        let ch = Arc::new(running_channel(&platform));
        let mut scratch = vec![0u8; MAX_MESSAGE_LEN];
        let Ok(PacketOutcome::Deferred(id)) = ch.process_packet(
            &platform,
            7,
            &request(2, RequestBody::GetPortStats),
            &mut scratch,
        ) else {
            panic!("expected a deferred packet");
        };
        let completer = {
            let (ch, platform) = (Arc::clone(&ch), Arc::clone(&platform));
            thread::spawn(move || {
                let mut scratch = vec![0u8; MAX_MESSAGE_LEN];
                ch.answer_deferred(&platform, id, &mut scratch, |svc, req, out| {
                    svc.answer_deferred(req, out)
                })
            })
        };
        ch.request(ChannelEvent::Pause).unwrap();
        ch.on_suspend(&platform).unwrap();
        let answered = completer.join().unwrap();
        assert_eq!(
            *platform.completed.lock().unwrap(),
            vec![7],
            "completed exactly once"
        );
        match answered {
            Ok(()) => assert_eq!(ch.stats().packets_retired, 0),
            Err(error) => {
                assert_eq!(error, ChannelError::UnknownIncoming(id));
                assert_eq!(ch.stats().packets_retired, 1);
            }
        }
        assert_eq!(ch.outstanding(), (0, 0));
    });
}

/// ProcessPacket on two CPUs, then ProcessingComplete for the batch: both packets are served
/// exactly once and the batch count is right whatever the interleaving.
#[test]
fn process_packet_on_two_cpus_then_processing_complete() {
    let _ = bounded(|| {
        let platform = Arc::new(LoomPlatform::default());
        let ch = Arc::new(running_channel(&platform));
        let other = {
            let (ch, platform) = (Arc::clone(&ch), Arc::clone(&platform));
            thread::spawn(move || {
                let mut scratch = vec![0u8; MAX_MESSAGE_LEN];
                let ping = request(
                    3,
                    RequestBody::Ping(protocol::Ping {
                        nonce: 1,
                        data: b"x",
                    }),
                );
                ch.process_packet(&platform, 10, &ping, &mut scratch)
            })
        };
        let mut scratch = vec![0u8; MAX_MESSAGE_LEN];
        let mine = ch.process_packet(
            &platform,
            11,
            &request(4, RequestBody::GetPortStats),
            &mut scratch,
        );
        let theirs = other.join().unwrap();
        assert_eq!(theirs, Ok(PacketOutcome::Completed));
        let Ok(PacketOutcome::Deferred(id)) = mine else {
            panic!("{mine:?}");
        };
        assert_eq!(ch.processing_complete(2), Ok(2));
        ch.complete_deferred(&platform, id, b"late").unwrap();
        let mut completed = platform.completed.lock().unwrap().clone();
        completed.sort_unstable();
        assert_eq!(completed, vec![10, 11]);
    });
}

/// The guest completes a notification on another CPU before the sending CPU has committed the
/// packet handle: the transaction is released exactly once and nothing leaks.
#[test]
fn guest_completion_races_the_send_commit() {
    let _ = bounded(|| {
        let platform = Arc::new(LoomPlatform::default());
        let ch = Arc::new(running_channel(&platform));
        let mut scratch = vec![0u8; MAX_MESSAGE_LEN];
        ch.process_packet(
            &platform,
            1,
            &request(5, RequestBody::Subscribe(EventSet::HEARTBEAT)),
            &mut scratch,
        )
        .unwrap();
        ch.with_service(|svc| svc.raise(EventSet::HEARTBEAT));
        let guest = {
            let (ch, platform) = (Arc::clone(&ch), Arc::clone(&platform));
            thread::spawn(move || {
                loop {
                    let sent = platform.sent.lock().unwrap().first().cloned();
                    if let Some((key, payload)) = sent {
                        let sequence = parse_notification(&payload).unwrap().sequence;
                        let mut ack = [0u8; 64];
                        let len = protocol::encode_ack(
                            &NotificationAck {
                                version: 1,
                                sequence,
                                status: AckStatus::Handled,
                            },
                            &mut ack,
                        )
                        .unwrap();
                        return ch.transaction_completed(
                            &platform,
                            key,
                            NtStatus::SUCCESS,
                            &ack[..len],
                        );
                    }
                    thread::yield_now();
                }
            })
        };
        assert_eq!(ch.send_pending(&platform), Ok(1));
        assert_eq!(guest.join().unwrap(), Ok(()));
        assert_eq!(ch.outstanding(), (0, 0));
        let stats = ch.stats();
        assert_eq!(
            (stats.transactions_sent, stats.transactions_completed),
            (1, 1)
        );
    });
}

type LoomPorts = PortTable<LoomRawLock, 2, 8>;

fn frame(direction: Direction, source_port: u16) -> FrameInfo {
    FrameInfo {
        direction,
        flow: FlowKey::v4([10, 0, 0, 1], [10, 0, 0, 2], source_port, 443, 6),
        length: 100,
    }
}

/// Classify on one CPU racing a port save and then a port delete on another: the classify
/// either counts on the live port or reports it unknown, the save is a consistent snapshot
/// (restorable, never more frames than were classified), and nothing counts after delete.
#[test]
fn classify_races_save_and_delete() {
    let _ = bounded(|| {
        let table: Arc<LoomPorts> = Arc::new(PortTable::new());
        let port = SwitchPortId(5);
        table
            .create_port(port, Some(NIC), PortConfig::UNLIMITED)
            .unwrap();
        let classifier = {
            let table = Arc::clone(&table);
            thread::spawn(move || table.classify(port, &frame(Direction::Ingress, 1000), Ticks(1)))
        };
        let mut blob = vec![0u8; 4096];
        let saved = table.save_port(port, Ticks(2), &mut blob);
        let deleted = table.delete_port(port);
        let outcome = classifier.join().unwrap();
        assert_eq!(deleted, Ok(()));
        assert!(
            matches!(outcome, Ok(_) | Err(PortError::UnknownPort(_))),
            "{outcome:?}"
        );
        let counted = usize::from(outcome.is_ok());
        let len = saved.expect("the port was live when saved");
        let restored: LoomPorts = PortTable::new();
        restored
            .create_port(SwitchPortId(9), Some(NIC), PortConfig::UNLIMITED)
            .unwrap();
        restored
            .restore_port(SwitchPortId(9), &blob[..len], Ticks(3))
            .unwrap();
        let snapshot = restored.counters(SwitchPortId(9)).unwrap();
        let frames = snapshot.ingress.permitted.frames + snapshot.egress.permitted.frames;
        assert!(
            frames as usize <= counted,
            "snapshot {frames} > classified {counted}"
        );
        assert!(
            table.counters(port).is_err(),
            "the port is gone after delete"
        );
    });
}

/// Classify on two CPUs on one port: no count is lost to the interleaving.
#[test]
fn classify_on_two_cpus_counts_both_frames() {
    let _ = bounded(|| {
        let table: Arc<LoomPorts> = Arc::new(PortTable::new());
        let port = SwitchPortId(5);
        table
            .create_port(port, None, PortConfig::UNLIMITED)
            .unwrap();
        let other = {
            let table = Arc::clone(&table);
            thread::spawn(move || table.classify(port, &frame(Direction::Egress, 2000), Ticks(1)))
        };
        let mine = table.classify(port, &frame(Direction::Ingress, 1000), Ticks(1));
        assert!(mine.is_ok() && other.join().unwrap().is_ok());
        let counters = table.counters(port).unwrap();
        assert_eq!(counters.ingress.permitted.frames, 1);
        assert_eq!(counters.egress.permitted.frames, 1);
        assert_eq!(counters.flows_created, 2);
    });
}

/// One port slot: every id's home is slot 0, so ports replacing each other there exercise the
/// classify fast path (home slot lock only, no directory lock).
type OneSlotPorts = PortTable<LoomRawLock, 1, 8>;

/// Classify of port A through its home slot races A's delete and the creation of port B in
/// the same slot: the frame counts on A (before the delete) or the classify reports A
/// unknown, and never counts on B, whose slot the fast path checks by id under the slot lock.
#[test]
fn classify_fast_path_races_delete_and_slot_reuse() {
    let _ = bounded(|| {
        let table: Arc<OneSlotPorts> = Arc::new(PortTable::new());
        let (a, b) = (SwitchPortId(5), SwitchPortId(6));
        table.create_port(a, None, PortConfig::UNLIMITED).unwrap();
        let classifier = {
            let table = Arc::clone(&table);
            thread::spawn(move || table.classify(a, &frame(Direction::Ingress, 1000), Ticks(1)))
        };
        assert_eq!(table.delete_port(a), Ok(()));
        assert_eq!(table.create_port(b, None, PortConfig::UNLIMITED), Ok(()));
        let outcome = classifier.join().unwrap();
        assert!(
            matches!(outcome, Ok(_) | Err(PortError::UnknownPort(_))),
            "{outcome:?}"
        );
        let on_b = table.counters(b).unwrap();
        assert_eq!(on_b.ingress.permitted.frames, 0, "A's frame counted on B");
        assert_eq!(on_b.flows_created, 0, "A's flow inserted into B's table");
        assert_eq!(
            table.classify(a, &frame(Direction::Ingress, 1000), Ticks(2)),
            Err(PortError::UnknownPort(a))
        );
    });
}

/// Classify of a port displaced from its home slot (so through the directory lookup, after
/// the fast path found another port at home) races the port's delete and its re-creation at
/// home: the frame counts on the old port, on the new one, or the port is reported unknown —
/// and the new port holds at most that one frame, none if the classify failed.
#[test]
fn classify_of_a_displaced_port_races_its_move_home() {
    let _ = bounded(|| {
        let table: Arc<LoomPorts> = Arc::new(PortTable::new());
        // Ids 2 and 3 share home slot 0 in a two-slot table (pinned by a unit test of
        // `port::table`): 3 is displaced to slot 1.
        let (home, displaced) = (SwitchPortId(2), SwitchPortId(3));
        table
            .create_port(home, None, PortConfig::UNLIMITED)
            .unwrap();
        table
            .create_port(displaced, None, PortConfig::UNLIMITED)
            .unwrap();
        let classifier = {
            let table = Arc::clone(&table);
            thread::spawn(move || {
                table.classify(displaced, &frame(Direction::Ingress, 1000), Ticks(1))
            })
        };
        assert_eq!(table.delete_port(home), Ok(()));
        assert_eq!(table.delete_port(displaced), Ok(()));
        assert_eq!(
            table.create_port(displaced, None, PortConfig::UNLIMITED),
            Ok(())
        );
        let outcome = classifier.join().unwrap();
        let counted = table.counters(displaced).unwrap().ingress.permitted.frames;
        match outcome {
            Ok(_) => assert!(counted <= 1, "{counted} frames from one classify"),
            Err(PortError::UnknownPort(_)) => assert_eq!(counted, 0),
            Err(other) => panic!("unexpected {other:?}"),
        }
    });
}

/// Classify racing the creation of its port: the port is published (slot live) only after
/// its state was reset, so a frame the classify reports counted is never wiped by the reset.
#[test]
fn classify_races_create_port() {
    let _ = bounded(|| {
        let table: Arc<LoomPorts> = Arc::new(PortTable::new());
        let port = SwitchPortId(5);
        // Before any port exists: unknown. This also creates, on this thread, the loom atomics
        // of the locks the race uses (`LoomRawLock` creates them on first use).
        assert_eq!(
            table.classify(port, &frame(Direction::Egress, 2000), Ticks(0)),
            Err(PortError::UnknownPort(port))
        );
        let classifier = {
            let table = Arc::clone(&table);
            thread::spawn(move || table.classify(port, &frame(Direction::Egress, 2000), Ticks(1)))
        };
        table
            .create_port(port, None, PortConfig::UNLIMITED)
            .unwrap();
        let outcome = classifier.join().unwrap();
        let counted = table.counters(port).unwrap().egress.permitted.frames;
        match outcome {
            Ok(_) => assert_eq!(counted, 1, "a counted frame was lost"),
            Err(PortError::UnknownPort(_)) => assert_eq!(counted, 0),
            Err(other) => panic!("unexpected {other:?}"),
        }
    });
}

/// A pending vSwitch save finishing on one CPU while the port is deleted on another: the
/// completion comes back exactly once, either with the blob's status or as cancelled.
#[test]
fn pending_save_finishes_while_the_port_is_deleted() {
    let _ = bounded(|| {
        let table: Arc<LoomPorts> = Arc::new(PortTable::new());
        let pending: Arc<PendingSaves<LoomRawLock, u32, 2>> = Arc::new(PendingSaves::new());
        let port = SwitchPortId(3);
        table
            .create_port(port, None, PortConfig::UNLIMITED)
            .unwrap();
        pending.begin(port, 77, Ticks(0)).unwrap();
        let finisher = {
            let (table, pending) = (Arc::clone(&table), Arc::clone(&pending));
            thread::spawn(move || {
                let mut blob = vec![0u8; 4096];
                pending
                    .finish(&table, port, Ticks(1), &mut blob)
                    .map(|finished| (finished.completion, finished.status))
            })
        };
        let deletion = pending.delete_port(&table, port);
        let finished = finisher.join().unwrap();
        assert_eq!(deletion.deleted, Ok(()));
        match (finished, deletion.cancelled_save) {
            (Some((77, _)), None) | (None, Some(77)) => {}
            other => panic!("completion not handed back exactly once: {other:?}"),
        }
        assert!(pending.oldest_overdue(Ticks(u64::MAX), 0).is_none());
    });
}
