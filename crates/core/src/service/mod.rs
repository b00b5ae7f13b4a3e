//! ferry's reference VSP service: [`FerryService`] answers protocol v1 (`docs/protocol.md`)
//! on a [`Channel`](crate::channel::Channel), reporting the statistics of the vSwitch port
//! bound to the channel's VM and sending notifications the guest subscribed to.
//!
//! | module | job |
//! |---|---|
//! | [`session`] | the guest's session and its saved form (blob kind 3) |
//! | [`notification`] | a notification in flight and its saved form (blob kind 1) |
//!
//! Rules the service enforces (beyond the parser's): only `Negotiate` is served before a
//! version is negotiated (`NotNegotiated` otherwise); after negotiation every request must
//! carry the negotiated version; statistics need a bound port (`NotFound` otherwise).
//! Notifications are level-triggered and coalesced: raising an event marks it pending once,
//! however often it is raised, and a notification says "this changed, here is the state now".
//! A notification whose send fails is marked pending again, never dropped.

pub mod notification;
pub mod session;

use core::fmt;

use crate::channel::{ChannelService, Disposition, Refusal};
use crate::lock::RawLock;
use crate::platform::Ticks;
use crate::port::{PortIdentity, PortTable};
use crate::protocol::{
    self, ErrorCode, Event, EventSet, FROZEN_VERSION, Notification, NotificationBody, PortStats,
    ProtocolError, Request, RequestBody, Response, ResponseBody, SubscriptionResponse,
};
use crate::saved_state::{self, EncodeError};
use crate::status::NtStatus;

pub use notification::NotificationTx;
pub use session::{SavedSession, Session, SessionRestoreError};

/// Where the service reads a port's statistics from: the port table in a driver, anything in
/// a test.
pub trait PortStatsSource {
    /// The statistics of the port serving the VM NIC `identity`, if one is live.
    fn port_stats(&self, identity: &PortIdentity) -> Option<PortStats>;
}

impl<T: PortStatsSource + ?Sized> PortStatsSource for &T {
    fn port_stats(&self, identity: &PortIdentity) -> Option<PortStats> {
        (**self).port_stats(identity)
    }
}

impl<L: RawLock, const PORTS: usize, const FLOWS: usize> PortStatsSource
    for PortTable<L, PORTS, FLOWS>
{
    fn port_stats(&self, identity: &PortIdentity) -> Option<PortStats> {
        let (id, counters) = self.counters_by_identity(identity).ok()?;
        let flows_active = self.with_port(id, |port| port.flows().len()).unwrap_or(0);
        let dropped = [counters.ingress, counters.egress].map(|d| d.dropped_rate_limited);
        Some(PortStats {
            // "rx" is what the VM received: frames the switch delivered to it (egress).
            rx_frames: counters.egress.permitted.frames,
            rx_bytes: counters.egress.permitted.bytes,
            tx_frames: counters.ingress.permitted.frames,
            tx_bytes: counters.ingress.permitted.bytes,
            dropped_frames: dropped[0].frames.saturating_add(dropped[1].frames),
            dropped_bytes: dropped[0].bytes.saturating_add(dropped[1].bytes),
            flows_active: u32::try_from(flows_active).unwrap_or(u32::MAX),
            flows_evicted: counters.flows_evicted,
        })
    }
}

/// How the service behaves.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ServiceConfig {
    /// Answer `GetPortStats` later (through [`FerryService::answer_deferred`]) instead of
    /// inline — what a driver does when reading the statistics needs `PASSIVE_LEVEL`, and
    /// what the simulator uses to exercise deferred completion and Suspend's retirement.
    pub defer_port_stats: bool,
}

/// What the incoming ledger keeps for a deferred request: enough to answer it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PendingRequest {
    /// The request's transaction id, echoed in the answer.
    pub transaction_id: u64,
    /// The request's raw message type.
    pub message_type: u16,
}

/// Why a guest's completion of a notification was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AckError {
    /// The completion payload is not a valid `NotificationAck`.
    Malformed(ProtocolError),
    /// The ack names another notification than the one it completes.
    WrongSequence {
        /// The completed notification's sequence.
        expected: u64,
        /// The sequence the ack named.
        found: u64,
    },
}

impl fmt::Display for AckError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Malformed(error) => write!(f, "malformed notification ack: {error}"),
            Self::WrongSequence { expected, found } => {
                write!(
                    f,
                    "ack for sequence {found} completed notification {expected}"
                )
            }
        }
    }
}

/// What the service counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ServiceStats {
    /// Requests answered with their response.
    pub requests_served: u64,
    /// Requests answered with an `ErrorResponse` (malformed, not negotiated, not found, …).
    pub errors_sent: u64,
    /// Notifications handed to the channel for sending.
    pub notifications_sent: u64,
    /// Notifications the guest acknowledged correctly.
    pub acks_accepted: u64,
    /// Completions refused as malformed or naming the wrong notification.
    pub acks_refused: u64,
    /// Notifications completed by the transport with an error status (no ack expected).
    pub notifications_failed: u64,
    /// Notifications released because the guest went away.
    pub notifications_retired: u64,
    /// Raised events dropped because nothing could be reported (no bound port).
    pub events_unreportable: u64,
}

/// ferry's reference service for one channel.
pub struct FerryService<Q> {
    ports: Q,
    identity: Option<PortIdentity>,
    config: ServiceConfig,
    session: Session,
    stats: ServiceStats,
}

impl<Q: PortStatsSource> FerryService<Q> {
    /// A service reading statistics from `ports` for the VM NIC `identity` (the port bound to
    /// this channel's VM; `None` if the VM has no port ferry knows).
    pub const fn new(ports: Q, identity: Option<PortIdentity>, config: ServiceConfig) -> Self {
        Self {
            ports,
            identity,
            config,
            session: Session::new(),
            stats: ServiceStats {
                requests_served: 0,
                errors_sent: 0,
                notifications_sent: 0,
                acks_accepted: 0,
                acks_refused: 0,
                notifications_failed: 0,
                notifications_retired: 0,
                events_unreportable: 0,
            },
        }
    }

    /// The guest's session.
    pub const fn session(&self) -> &Session {
        &self.session
    }

    /// The counters.
    pub const fn stats(&self) -> ServiceStats {
        self.stats
    }

    /// The port identity this channel is bound to.
    pub const fn identity(&self) -> Option<PortIdentity> {
        self.identity
    }

    /// Marks `events` pending for the guest (only those it subscribed to); the channel sends
    /// them on its next `send_pending`.
    pub fn raise(&mut self, events: EventSet) {
        let wanted = EventSet::from_bits(events.bits() & self.session.subscriptions.bits())
            .unwrap_or(EventSet::EMPTY);
        self.session.pending = self.session.pending.union(wanted);
    }

    /// Builds the answer to a deferred request into `out`; returns its length.
    pub fn answer_deferred(&mut self, request: PendingRequest, out: &mut [u8]) -> usize {
        self.port_stats_response(request.transaction_id, request.message_type, out)
    }

    /// The session's saved form: its exact size.
    pub fn saved_session_len(&self) -> usize {
        saved_state::encoded_len(&self.saved_session())
    }

    /// Writes the session's saved form (blob kind 3) into `out`.
    ///
    /// # Errors
    ///
    /// [`EncodeError::BufferTooSmall`] if `out` is shorter than
    /// [`FerryService::saved_session_len`].
    pub fn save_session(&self, out: &mut [u8]) -> Result<usize, EncodeError> {
        saved_state::encode(&self.saved_session(), out)
    }

    /// Installs a saved session (untrusted bytes). Everything is validated first; on error the
    /// live session is unchanged.
    ///
    /// # Errors
    ///
    /// The blob does not decode, or it belongs to another port identity.
    pub fn restore_session(&mut self, blob: &[u8]) -> Result<(), SessionRestoreError> {
        let saved = SavedSession::decode(blob).map_err(SessionRestoreError::Decode)?;
        if let (Some(ours), Some(theirs)) = (self.identity, saved.identity)
            && ours != theirs
        {
            return Err(SessionRestoreError::ForeignIdentity { ours, theirs });
        }
        self.session = saved.session;
        Ok(())
    }

    const fn saved_session(&self) -> SavedSession {
        SavedSession {
            identity: self.identity,
            session: self.session,
        }
    }

    fn response_version(&self) -> u16 {
        self.session.version.unwrap_or(FROZEN_VERSION)
    }

    fn respond(&mut self, transaction_id: u64, body: ResponseBody<'_>, out: &mut [u8]) -> usize {
        let response = Response {
            version: self.response_version(),
            transaction_id,
            body,
        };
        let encoded = protocol::encode_response(&response, out);
        self.served(transaction_id, encoded, out)
    }

    /// Counts a response that `encoded` wrote into `out`, or answers with an internal error if
    /// it could not be written.
    #[inline]
    fn served(
        &mut self,
        transaction_id: u64,
        encoded: Result<usize, protocol::EncodeError>,
        out: &mut [u8],
    ) -> usize {
        match encoded {
            Ok(len) => {
                self.stats.requests_served = self.stats.requests_served.saturating_add(1);
                len
            }
            // The platform's buffer is smaller than the largest response: say so to the guest.
            Err(_) => self.error(ErrorCode::Internal, 0, transaction_id, out),
        }
    }

    fn error(
        &mut self,
        code: ErrorCode,
        message_type: u16,
        transaction_id: u64,
        out: &mut [u8],
    ) -> usize {
        self.stats.errors_sent = self.stats.errors_sent.saturating_add(1);
        protocol::encode_error(code, message_type, transaction_id, out).unwrap_or(0)
    }

    fn port_stats_response(
        &mut self,
        transaction_id: u64,
        message_type: u16,
        out: &mut [u8],
    ) -> usize {
        let stats = self
            .identity
            .as_ref()
            .and_then(|identity| self.ports.port_stats(identity));
        match stats {
            Some(stats) => self.respond(transaction_id, ResponseBody::PortStats(stats), out),
            None => self.error(ErrorCode::NotFound, message_type, transaction_id, out),
        }
    }

    // Inlined into `handle_packet`, its only caller (see there).
    #[inline(always)]
    fn serve(
        &mut self,
        request: &Request<'_>,
        message_type: u16,
        out: &mut [u8],
    ) -> Disposition<PendingRequest> {
        let id = request.transaction_id;
        let negotiated = match (request.body, self.session.version) {
            (RequestBody::Negotiate(offer), _) => {
                return Disposition::Respond(match protocol::negotiate(&offer) {
                    Ok(answer) => {
                        self.session.version = Some(answer.version);
                        self.session.features = answer.features;
                        self.respond(id, ResponseBody::Negotiate(answer), out)
                    }
                    Err(code) => self.error(code, message_type, id, out),
                });
            }
            (_, None) => {
                return Disposition::Respond(self.error(
                    ErrorCode::NotNegotiated,
                    message_type,
                    id,
                    out,
                ));
            }
            (_, Some(version)) => version,
        };
        if request.version != negotiated {
            return Disposition::Respond(self.error(
                ErrorCode::UnsupportedVersion,
                message_type,
                id,
                out,
            ));
        }
        let len = match request.body {
            // The echo skips building a `Response`: it is the packet path's hot request.
            RequestBody::Ping(ping) => {
                let encoded = protocol::encode_ping_response(negotiated, id, &ping, out);
                self.served(id, encoded, out)
            }
            RequestBody::GetPortStats if self.config.defer_port_stats => {
                return Disposition::Defer(PendingRequest {
                    transaction_id: id,
                    message_type,
                });
            }
            RequestBody::GetPortStats => self.port_stats_response(id, message_type, out),
            RequestBody::Subscribe(events) => {
                self.session.subscriptions = self.session.subscriptions.union(events);
                let subscribed = self.session.subscriptions;
                self.respond(
                    id,
                    ResponseBody::Subscribe(SubscriptionResponse { subscribed }),
                    out,
                )
            }
            RequestBody::Unsubscribe(events) => {
                self.session.subscriptions = self.session.subscriptions.difference(events);
                self.session.pending = self.session.pending.difference(events);
                let subscribed = self.session.subscriptions;
                self.respond(
                    id,
                    ResponseBody::Unsubscribe(SubscriptionResponse { subscribed }),
                    out,
                )
            }
            // Handled above; kept exhaustive so a new request type is a compile error here.
            RequestBody::Negotiate(_) => self.error(ErrorCode::Internal, message_type, id, out),
        };
        Disposition::Respond(len)
    }

    fn next_event(&mut self) -> Option<Event> {
        let due = self.session.pending.bits() & self.session.subscriptions.bits();
        let event = [Event::PortStats, Event::Heartbeat]
            .into_iter()
            .find(|event| due & event.bit() != 0)?;
        self.session.pending = self
            .session
            .pending
            .difference(EventSet::from_bits(event.bit()).unwrap_or(EventSet::EMPTY));
        Some(event)
    }
}

/// The message type a request carried, for echoing in error responses.
fn request_type(body: &RequestBody<'_>) -> u16 {
    let message_type = match body {
        RequestBody::Negotiate(_) => protocol::MessageType::NegotiateRequest,
        RequestBody::Ping(_) => protocol::MessageType::PingRequest,
        RequestBody::GetPortStats => protocol::MessageType::GetPortStatsRequest,
        RequestBody::Subscribe(_) => protocol::MessageType::SubscribeRequest,
        RequestBody::Unsubscribe(_) => protocol::MessageType::UnsubscribeRequest,
    };
    message_type.to_u16()
}

impl<Q: PortStatsSource> ChannelService for FerryService<Q> {
    type Request = PendingRequest;
    type Transaction = NotificationTx;
    type CompletionError = AckError;

    // Always inlined into `Channel::process_packet` (its one caller on the packet path), with
    // `serve`: one function then holds the channel's whole packet section, and the result
    // does not hang on the inliner's cost estimate for a generic function of this size.
    #[inline(always)]
    fn handle_packet(
        &mut self,
        payload: &[u8],
        response: &mut [u8],
        _now: Ticks,
    ) -> Disposition<PendingRequest> {
        match protocol::parse_request(payload) {
            Ok(request) => {
                let message_type = request_type(&request.body);
                self.serve(&request, message_type, response)
            }
            Err(error) => {
                self.stats.errors_sent = self.stats.errors_sent.saturating_add(1);
                Disposition::Respond(protocol::encode_protocol_error(&error, response).unwrap_or(0))
            }
        }
    }

    fn refusal(
        &self,
        request: Option<PendingRequest>,
        payload: &[u8],
        reason: Refusal,
        response: &mut [u8],
    ) -> usize {
        let (transaction_id, message_type) = match request {
            Some(request) => (request.transaction_id, request.message_type),
            None => match protocol::parse_request(payload) {
                Ok(parsed) => (parsed.transaction_id, request_type(&parsed.body)),
                Err(error) => (error.transaction_id(), error.request_type()),
            },
        };
        let code = match reason {
            Refusal::Cancelled => ErrorCode::Cancelled,
            Refusal::Busy | Refusal::NotRunning => ErrorCode::Busy,
        };
        protocol::encode_error(code, message_type, transaction_id, response).unwrap_or(0)
    }

    fn next_send(&mut self, out: &mut [u8], now: Ticks) -> Option<(NotificationTx, usize)> {
        let version = self.session.version?;
        loop {
            let event = self.next_event()?;
            let body = match event {
                Event::PortStats => {
                    let stats = self
                        .identity
                        .as_ref()
                        .and_then(|identity| self.ports.port_stats(identity));
                    let Some(stats) = stats else {
                        self.stats.events_unreportable =
                            self.stats.events_unreportable.saturating_add(1);
                        continue;
                    };
                    NotificationBody::PortStats(stats)
                }
                Event::Heartbeat => NotificationBody::Heartbeat(now),
            };
            let sequence = self.session.take_sequence();
            let notification = Notification {
                version,
                sequence,
                body,
            };
            let Ok(len) = protocol::encode_notification(&notification, out) else {
                self.stats.events_unreportable = self.stats.events_unreportable.saturating_add(1);
                continue;
            };
            self.stats.notifications_sent = self.stats.notifications_sent.saturating_add(1);
            let tx = NotificationTx {
                sequence: Some(sequence),
                event,
                sent_at: now,
            };
            return Some((tx, len));
        }
    }

    fn send_failed(&mut self, transaction: NotificationTx, _status: NtStatus) {
        self.stats.notifications_sent = self.stats.notifications_sent.saturating_sub(1);
        let event = EventSet::from_bits(transaction.event.bit()).unwrap_or(EventSet::EMPTY);
        self.session.pending = self.session.pending.union(event);
    }

    fn transaction_completed(
        &mut self,
        transaction: NotificationTx,
        status: NtStatus,
        completion: &[u8],
    ) -> Result<(), AckError> {
        if !status.is_success() {
            self.stats.notifications_failed = self.stats.notifications_failed.saturating_add(1);
            return Ok(());
        }
        let verdict = match protocol::parse_ack(completion) {
            Err(error) => Err(AckError::Malformed(error)),
            Ok(ack) => match transaction.sequence {
                Some(expected) if expected != ack.sequence => Err(AckError::WrongSequence {
                    expected,
                    found: ack.sequence,
                }),
                _ => Ok(()),
            },
        };
        match verdict {
            Ok(()) => self.stats.acks_accepted = self.stats.acks_accepted.saturating_add(1),
            Err(_) => self.stats.acks_refused = self.stats.acks_refused.saturating_add(1),
        }
        verdict
    }

    fn transaction_retired(&mut self, _transaction: NotificationTx) {
        self.stats.notifications_retired = self.stats.notifications_retired.saturating_add(1);
    }

    fn transaction_restored(&mut self, transaction: &NotificationTx) {
        if let Some(sequence) = transaction.sequence {
            let after = sequence.saturating_add(1);
            self.session.next_sequence = self.session.next_sequence.max(after);
        }
    }

    fn reset_session(&mut self) {
        self.session = Session::new();
    }

    /// Sequence numbers are unique per channel, so a notification's known sequence names it.
    /// (Heartbeats restored without state carry none and are never duplicates.)
    fn transaction_identity(&self, transaction: &NotificationTx) -> Option<u64> {
        transaction.sequence
    }
}

#[cfg(test)]
mod tests;
