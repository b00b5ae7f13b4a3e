//! The guest agent: what runs inside a simulated VM and speaks ferry's protocol (negotiate,
//! ping, get statistics, subscribe), checks every response and notification, and completes
//! notifications — sometimes late, sometimes never. Its [`GuestLedger`] is the guest-side half
//! of the invariants.
//!
//! The guest→host ring lives here because it is guest memory: it moves with the VM.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use ferry_core::protocol::{
    self, AckStatus, ErrorCode, EventSet, HEADER_LEN, MAX_MESSAGE_LEN, NegotiateRequest,
    NotificationAck, NotificationBody, Ping, PortStats, Request, RequestBody, ResponseBody,
};

use crate::kmcl::{ToGuest, ToHost};
use crate::rng::SimRng;

#[derive(Clone, Debug, PartialEq, Eq)]
enum Expect {
    Negotiate,
    Ping { nonce: u64, data: Vec<u8> },
    Stats,
    Subscribe,
    AnyError,
}

#[derive(Clone, Debug)]
struct Sent {
    transaction_id: u64,
    expect: Expect,
}

#[derive(Clone, Debug)]
struct PendingAck {
    txid: u64,
    sequence: u64,
    due: u64,
}

/// What the guest counted and found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GuestLedger {
    /// Requests put in the ring.
    pub requests_sent: u64,
    /// Responses received (each matched to its request once).
    pub responses: u64,
    /// Of those, "busy" refusals.
    pub busy: u64,
    /// Of those, "cancelled" refusals (retired at Suspend).
    pub cancelled: u64,
    /// Of those, error responses to deliberately malformed requests.
    pub malformed_refused: u64,
    /// Notifications received.
    pub notifications: u64,
    /// Acks put in the ring.
    pub acks_sent: u64,
    /// Acks deliberately delayed.
    pub late_acks: u64,
    /// Notifications the guest decided never to ack.
    pub acks_withheld: u64,
    /// Requests and acks lost from the ring when the guest crashed.
    pub lost_in_crash: u64,
    /// Acks lost from the ring when the guest crashed.
    pub acks_lost_in_crash: u64,
    /// Requests outstanding when the guest crashed (never answered, by design).
    pub abandoned_in_crash: u64,
    /// Crashes.
    pub crashes: u64,
    /// Guest-side invariant breaches.
    pub violations: Vec<String>,
}

/// How the guest acks notifications.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AckPolicy {
    /// Percent of notifications acked late (after up to `late_ticks`).
    pub late_percent: u64,
    /// Ticks a late ack may wait.
    pub late_ticks: u64,
    /// Percent of notifications never acked.
    pub never_percent: u64,
}

/// One VM's guest agent.
pub struct GuestAgent {
    vm: u32,
    alive: bool,
    open: bool,
    next_guest_id: u64,
    next_transaction: u64,
    outstanding: BTreeMap<u64, Sent>,
    negotiated: bool,
    subscribed: bool,
    pending_acks: Vec<PendingAck>,
    seen_txids: BTreeSet<u64>,
    seen_sequences: BTreeSet<u64>,
    withheld: BTreeSet<u64>,
    last_stats: PortStats,
    policy: AckPolicy,
    /// The guest→host ring (guest memory).
    pub ring: VecDeque<ToHost>,
    /// The guest's ledger.
    pub ledger: GuestLedger,
}

fn stats_not_older(newer: &PortStats, older: &PortStats) -> bool {
    newer.rx_frames >= older.rx_frames
        && newer.tx_frames >= older.tx_frames
        && newer.rx_bytes >= older.rx_bytes
        && newer.tx_bytes >= older.tx_bytes
        && newer.dropped_frames >= older.dropped_frames
}

impl GuestAgent {
    /// A booted guest for VM `vm` that has not opened its channel yet.
    #[must_use]
    pub fn new(vm: u32, policy: AckPolicy) -> Self {
        Self {
            vm,
            alive: true,
            open: false,
            next_guest_id: 0,
            next_transaction: 0,
            outstanding: BTreeMap::new(),
            negotiated: false,
            subscribed: false,
            pending_acks: Vec::new(),
            seen_txids: BTreeSet::new(),
            seen_sequences: BTreeSet::new(),
            withheld: BTreeSet::new(),
            last_stats: PortStats::default(),
            policy,
            ring: VecDeque::new(),
            ledger: GuestLedger::default(),
        }
    }

    /// Whether the guest runs.
    #[must_use]
    pub const fn alive(&self) -> bool {
        self.alive
    }

    /// Whether the guest has its channel open.
    #[must_use]
    pub const fn is_open(&self) -> bool {
        self.open
    }

    /// Records that the channel was opened (or refused).
    pub fn set_open(&mut self, open: bool) {
        self.open = open;
    }

    /// Transactions the guest will never complete (since its last boot).
    #[must_use]
    pub fn withheld(&self) -> &BTreeSet<u64> {
        &self.withheld
    }

    /// Whether a version was negotiated.
    #[must_use]
    pub const fn negotiated(&self) -> bool {
        self.negotiated
    }

    /// Requests sent and not answered.
    #[must_use]
    pub fn outstanding(&self) -> usize {
        self.outstanding.len()
    }

    /// Notifications received and not acked yet (late acks and withheld ones are not here).
    #[must_use]
    pub fn acks_due(&self) -> usize {
        self.pending_acks.len()
    }

    fn violation(&mut self, text: String) {
        let vm = self.vm;
        self.ledger
            .violations
            .push(format!("guest of vm {vm}: {text}"));
    }

    fn push(&mut self, payload: Vec<u8>, expect: Expect, transaction_id: u64) {
        self.next_guest_id += 1;
        let guest_id = self.next_guest_id;
        self.outstanding.insert(
            guest_id,
            Sent {
                transaction_id,
                expect,
            },
        );
        self.ledger.requests_sent += 1;
        self.ring.push_back(ToHost::Packet { guest_id, payload });
    }

    fn send(&mut self, body: RequestBody<'_>, expect: Expect) {
        self.next_transaction += 1;
        let request = Request {
            version: protocol::PROTOCOL_VERSION_1,
            transaction_id: self.next_transaction,
            body,
        };
        let mut out = vec![0u8; MAX_MESSAGE_LEN];
        match protocol::encode_request(&request, &mut out) {
            Ok(n) => {
                out.truncate(n);
                let id = self.next_transaction;
                self.push(out, expect, id);
            }
            Err(error) => self.violation(format!("could not encode a request: {error:?}")),
        }
    }

    /// Sends the next useful request: negotiate first, then subscribe, then pings and
    /// statistics.
    pub fn send_request(&mut self, rng: &mut SimRng) {
        if !self.alive || !self.open {
            return;
        }
        if !self.negotiated {
            if self
                .outstanding
                .values()
                .any(|s| s.expect == Expect::Negotiate)
            {
                return;
            }
            let offer = NegotiateRequest {
                min_version: 1,
                max_version: 1,
                features: 0,
            };
            self.send(RequestBody::Negotiate(offer), Expect::Negotiate);
            return;
        }
        if !self.subscribed && rng.chance(50) {
            self.send(RequestBody::Subscribe(EventSet::ALL), Expect::Subscribe);
            return;
        }
        if rng.chance(50) {
            self.send(RequestBody::GetPortStats, Expect::Stats);
        } else {
            let nonce = rng.next_u64();
            let data: Vec<u8> = (0..rng.below(48)).map(|_| rng.below(256) as u8).collect();
            self.send(
                RequestBody::Ping(Ping { nonce, data: &data }),
                Expect::Ping {
                    nonce,
                    data: data.clone(),
                },
            );
        }
    }

    /// A burst of statistics requests (a flood past the transaction quota when the host
    /// defers them).
    pub fn flood(&mut self, count: usize) {
        if !self.alive || !self.open || !self.negotiated {
            return;
        }
        for _ in 0..count {
            self.send(RequestBody::GetPortStats, Expect::Stats);
        }
    }

    /// A malformed request: truncated header, bad length, unknown type or wrong direction.
    pub fn send_malformed(&mut self, rng: &mut SimRng) {
        if !self.alive || !self.open {
            return;
        }
        self.next_transaction += 1;
        let mut ping = vec![0u8; MAX_MESSAGE_LEN];
        let request = Request {
            version: 1,
            transaction_id: self.next_transaction,
            body: RequestBody::Ping(Ping {
                nonce: 1,
                data: &[1, 2, 3],
            }),
        };
        let n = protocol::encode_request(&request, &mut ping).unwrap_or(HEADER_LEN);
        ping.truncate(n);
        let payload = match rng.below(4) {
            0 => ping[..rng.index(HEADER_LEN)].to_vec(),
            1 => {
                // Declared length disagrees with the packet.
                let mut p = ping.clone();
                p[protocol::LENGTH_OFFSET] ^= 0x40;
                p
            }
            2 => {
                let mut p = ping.clone();
                p[protocol::MESSAGE_TYPE_OFFSET] = 0xEE;
                p[protocol::MESSAGE_TYPE_OFFSET + 1] = 0xEE;
                p
            }
            _ => {
                // A response type sent by the guest.
                let mut p = ping.clone();
                let response_type = protocol::MessageType::PingResponse.to_u16().to_le_bytes();
                p[protocol::MESSAGE_TYPE_OFFSET..protocol::MESSAGE_TYPE_OFFSET + 2]
                    .copy_from_slice(&response_type);
                p
            }
        };
        let id = self.next_transaction;
        self.push(payload, Expect::AnyError, id);
    }

    /// A request longer than the protocol's largest message.
    pub fn send_oversized(&mut self, rng: &mut SimRng) {
        if !self.alive || !self.open {
            return;
        }
        self.next_transaction += 1;
        let len = MAX_MESSAGE_LEN + 1 + rng.index(64);
        let mut payload = vec![0u8; len];
        payload[0..2].copy_from_slice(&1u16.to_le_bytes());
        payload[2..4].copy_from_slice(&protocol::MessageType::PingRequest.to_u16().to_le_bytes());
        payload[4..8].copy_from_slice(&(len as u32).to_le_bytes());
        payload[8..16].copy_from_slice(&self.next_transaction.to_le_bytes());
        let id = self.next_transaction;
        self.push(payload, Expect::AnyError, id);
    }

    /// Takes what KMCL delivered: responses are matched and checked; notifications are
    /// checked and their acks scheduled per the ack policy.
    pub fn receive(&mut self, items: Vec<ToGuest>, now: u64, rng: &mut SimRng) {
        for item in items {
            if !self.alive {
                continue;
            }
            match item {
                ToGuest::Response { guest_id, payload } => self.on_response(guest_id, &payload),
                ToGuest::Transaction { txid, payload } => {
                    self.on_transaction(txid, &payload, now, rng)
                }
            }
        }
    }

    fn on_response(&mut self, guest_id: u64, payload: &[u8]) {
        let Some(sent) = self.outstanding.remove(&guest_id) else {
            self.violation(format!("response to packet {guest_id}, which is not outstanding (duplicate or foreign completion)"));
            return;
        };
        self.ledger.responses += 1;
        let response = match protocol::parse_response(payload) {
            Ok(response) => response,
            Err(error) => {
                self.violation(format!(
                    "unparseable response to packet {guest_id}: {error:?}"
                ));
                return;
            }
        };
        if sent.expect != Expect::AnyError && response.transaction_id != sent.transaction_id {
            self.violation(format!(
                "response carries transaction {} for request {}",
                response.transaction_id, sent.transaction_id
            ));
        }
        match (&sent.expect, response.body) {
            (Expect::AnyError, ResponseBody::Error(_)) => self.ledger.malformed_refused += 1,
            (Expect::AnyError, body) => {
                self.violation(format!("malformed request answered with {body:?}"))
            }
            (_, ResponseBody::Error(e)) if e.code == ErrorCode::Busy => self.ledger.busy += 1,
            (_, ResponseBody::Error(e)) if e.code == ErrorCode::Cancelled => {
                self.ledger.cancelled += 1
            }
            (Expect::Negotiate, ResponseBody::Negotiate(answer)) => {
                if answer.version == 1 {
                    self.negotiated = true;
                } else {
                    self.violation(format!("negotiated unknown version {}", answer.version));
                }
            }
            (Expect::Ping { nonce, data }, ResponseBody::Ping(ping)) => {
                if ping.nonce != *nonce || ping.data != data.as_slice() {
                    self.violation("ping echoed other data".into());
                }
            }
            (Expect::Stats, ResponseBody::PortStats(stats)) => self.check_stats(stats, "response"),
            (Expect::Subscribe, ResponseBody::Subscribe(s)) => {
                self.subscribed = s.subscribed.contains(EventSet::ALL)
            }
            (expect, body) => {
                self.violation(format!("expected {expect:?}, got {body:?} (session lost?)"))
            }
        }
    }

    fn check_stats(&mut self, stats: PortStats, what: &str) {
        if !stats_not_older(&stats, &self.last_stats) {
            self.violation(format!(
                "port counters went backwards in a {what}: {:?} after {:?}",
                stats, self.last_stats
            ));
        }
        self.last_stats = stats;
    }

    fn on_transaction(&mut self, txid: u64, payload: &[u8], now: u64, rng: &mut SimRng) {
        self.ledger.notifications += 1;
        if !self.seen_txids.insert(txid) {
            self.violation(format!("transaction {txid} delivered twice"));
            return;
        }
        let notification = match protocol::parse_notification(payload) {
            Ok(n) => n,
            Err(error) => {
                self.violation(format!("unparseable notification {txid}: {error:?}"));
                return;
            }
        };
        if !self.seen_sequences.insert(notification.sequence) {
            self.violation(format!(
                "notification sequence {} reused",
                notification.sequence
            ));
        }
        if let NotificationBody::PortStats(stats) = notification.body {
            self.check_stats(stats, "notification");
        }
        if rng.chance(self.policy.never_percent) {
            self.ledger.acks_withheld += 1;
            self.withheld.insert(txid);
            return;
        }
        let late = rng.chance(self.policy.late_percent);
        if late {
            self.ledger.late_acks += 1;
        }
        let delay = if late {
            rng.below(self.policy.late_ticks)
        } else {
            rng.below(2_000)
        };
        self.pending_acks.push(PendingAck {
            txid,
            sequence: notification.sequence,
            due: now + delay,
        });
    }

    /// Puts the acks that are due at `now` in the ring.
    pub fn send_due_acks(&mut self, now: u64) {
        if !self.alive {
            return;
        }
        let (due, later): (Vec<PendingAck>, Vec<PendingAck>) =
            std::mem::take(&mut self.pending_acks)
                .into_iter()
                .partition(|a| a.due <= now);
        self.pending_acks = later;
        for ack in due {
            let mut out = vec![0u8; protocol::ACK_LEN];
            let value = NotificationAck {
                version: 1,
                sequence: ack.sequence,
                status: AckStatus::Handled,
            };
            if let Ok(n) = protocol::encode_ack(&value, &mut out) {
                out.truncate(n);
                self.ledger.acks_sent += 1;
                self.ring.push_back(ToHost::Completion {
                    txid: ack.txid,
                    payload: out,
                });
            }
        }
    }

    /// Every scheduled ack becomes due now (end of scenario).
    pub fn hurry_acks(&mut self) {
        for ack in &mut self.pending_acks {
            ack.due = 0;
        }
    }

    /// The guest's NIC was unplugged and plugged in again: a new switch port, whose counters
    /// start from zero (the protocol carries no port generation, so the guest is told out of
    /// band, as a NIC reconnect would tell it).
    pub fn nic_replaced(&mut self) {
        self.last_stats = PortStats::default();
    }

    /// The guest crashes: its ring and everything it waited for are gone.
    pub fn crash(&mut self) {
        self.alive = false;
        self.open = false;
        self.ledger.crashes += 1;
        self.ledger.abandoned_in_crash += self.outstanding.len() as u64;
        let acks = self
            .ring
            .iter()
            .filter(|i| matches!(i, ToHost::Completion { .. }))
            .count() as u64;
        self.ledger.acks_lost_in_crash += acks;
        self.ledger.lost_in_crash += self.ring.len() as u64;
        self.ring.clear();
        self.outstanding.clear();
        self.pending_acks.clear();
        self.withheld.clear();
    }

    /// The guest boots again (a new session: negotiate and subscribe again).
    pub fn reboot(&mut self) {
        self.alive = true;
        self.open = false;
        self.negotiated = false;
        self.subscribed = false;
        self.seen_sequences.clear();
    }
}
