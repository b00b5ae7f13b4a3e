use super::*;
use crate::channel::{Channel, ChannelEvent, PacketOutcome};
use crate::lock::SpinRawLock;
use crate::platform::{Platform, TransactionKey};
use crate::protocol::{
    AckStatus, MAX_MESSAGE_LEN, NegotiateRequest, NotificationAck, Ping, Request,
    parse_notification, parse_response,
};
use core::cell::RefCell;
use std::vec;
use std::vec::Vec;

const OURS: PortIdentity = PortIdentity([0xA1; 16]);
const THEIRS: PortIdentity = PortIdentity([0xB2; 16]);

fn sample_stats() -> PortStats {
    PortStats {
        rx_frames: 10,
        rx_bytes: 1000,
        tx_frames: 20,
        tx_bytes: 2000,
        dropped_frames: 3,
        dropped_bytes: 300,
        flows_active: 4,
        flows_evicted: 5,
    }
}

/// Statistics for exactly one identity.
struct OnePort(Option<PortStats>);

impl PortStatsSource for OnePort {
    fn port_stats(&self, identity: &PortIdentity) -> Option<PortStats> {
        (*identity == OURS).then_some(self.0).flatten()
    }
}

fn service(identity: Option<PortIdentity>) -> FerryService<OnePort> {
    FerryService::new(
        OnePort(Some(sample_stats())),
        identity,
        ServiceConfig::default(),
    )
}

fn request(transaction_id: u64, body: RequestBody<'_>) -> Vec<u8> {
    let request = Request {
        version: 1,
        transaction_id,
        body,
    };
    let mut out = vec![0u8; MAX_MESSAGE_LEN];
    let len = protocol::encode_request(&request, &mut out).unwrap();
    out.truncate(len);
    out
}

fn negotiate_body() -> RequestBody<'static> {
    RequestBody::Negotiate(NegotiateRequest {
        min_version: 1,
        max_version: 1,
        features: 0,
    })
}

/// Sends `bytes` to the service and parses the inline response.
fn exchange<Q: PortStatsSource>(svc: &mut FerryService<Q>, bytes: &[u8]) -> Response<'static> {
    let mut out = vec![0u8; MAX_MESSAGE_LEN];
    let Disposition::Respond(len) = svc.handle_packet(bytes, &mut out, Ticks(0)) else {
        panic!("expected an inline response");
    };
    out.truncate(len);
    let leaked: &'static [u8] = std::boxed::Box::leak(out.into_boxed_slice());
    parse_response(leaked).unwrap()
}

fn error_code(response: &Response<'_>) -> Option<ErrorCode> {
    match response.body {
        ResponseBody::Error(error) => Some(error.code),
        _ => None,
    }
}

fn negotiated(identity: Option<PortIdentity>) -> FerryService<OnePort> {
    let mut svc = service(identity);
    let response = exchange(&mut svc, &request(1, negotiate_body()));
    assert!(
        matches!(response.body, ResponseBody::Negotiate(_)),
        "{response:?}"
    );
    svc
}

#[test]
fn nothing_but_negotiate_is_served_before_negotiation() {
    let mut svc = service(Some(OURS));
    let ping = request(
        5,
        RequestBody::Ping(Ping {
            nonce: 1,
            data: b"x",
        }),
    );
    let response = exchange(&mut svc, &ping);
    assert_eq!(error_code(&response), Some(ErrorCode::NotNegotiated));
    assert_eq!(response.transaction_id, 5);
    assert_eq!(svc.session().version, None);
    assert_eq!(svc.stats().errors_sent, 1);
}

#[test]
fn negotiation_then_ping_echoes() {
    let mut svc = negotiated(Some(OURS));
    assert_eq!(svc.session().version, Some(1));
    let data: Vec<u8> = (0..=255).collect();
    let response = exchange(
        &mut svc,
        &request(
            9,
            RequestBody::Ping(Ping {
                nonce: 77,
                data: &data,
            }),
        ),
    );
    assert_eq!(response.transaction_id, 9);
    let ResponseBody::Ping(echo) = response.body else {
        panic!("{response:?}");
    };
    assert_eq!((echo.nonce, echo.data), (77, &data[..]));
}

#[test]
fn an_offer_without_a_common_version_is_refused() {
    let mut svc = service(Some(OURS));
    let offer = RequestBody::Negotiate(NegotiateRequest {
        min_version: 2,
        max_version: 3,
        features: 0,
    });
    let response = exchange(&mut svc, &request(1, offer));
    assert_eq!(error_code(&response), Some(ErrorCode::UnsupportedVersion));
    assert_eq!(svc.session().version, None);
}

#[test]
fn malformed_requests_get_an_error_echoing_what_was_readable() {
    let mut svc = negotiated(Some(OURS));
    let mut bytes = request(0xABCD, RequestBody::GetPortStats);
    bytes.push(0); // one byte more than the header's length says
    let response = exchange(&mut svc, &bytes);
    assert_eq!(error_code(&response), Some(ErrorCode::LengthMismatch));
    assert_eq!(response.transaction_id, 0xABCD);
    // Garbage shorter than a header still gets an answer.
    let response = exchange(&mut svc, &[1, 2, 3]);
    assert_eq!(error_code(&response), Some(ErrorCode::Truncated));
    // The session survives.
    let again = exchange(&mut svc, &request(2, RequestBody::GetPortStats));
    assert!(matches!(again.body, ResponseBody::PortStats(_)));
}

#[test]
fn port_statistics_come_from_the_bound_port_only() {
    let mut svc = negotiated(Some(OURS));
    let response = exchange(&mut svc, &request(3, RequestBody::GetPortStats));
    assert_eq!(response.body, ResponseBody::PortStats(sample_stats()));

    let mut unbound = negotiated(None);
    let response = exchange(&mut unbound, &request(3, RequestBody::GetPortStats));
    assert_eq!(error_code(&response), Some(ErrorCode::NotFound));

    let mut other = negotiated(Some(THEIRS));
    let response = exchange(&mut other, &request(3, RequestBody::GetPortStats));
    assert_eq!(error_code(&response), Some(ErrorCode::NotFound));
}

fn subscribe(svc: &mut FerryService<OnePort>, events: EventSet) {
    let response = exchange(svc, &request(4, RequestBody::Subscribe(events)));
    assert!(
        matches!(response.body, ResponseBody::Subscribe(_)),
        "{response:?}"
    );
}

fn next_notification(
    svc: &mut FerryService<OnePort>,
    now: u64,
) -> Option<(NotificationTx, Notification)> {
    let mut out = [0u8; crate::channel::service::MAX_SEND_LEN];
    let (tx, len) = svc.next_send(&mut out, Ticks(now))?;
    Some((tx, parse_notification(&out[..len]).unwrap()))
}

#[test]
fn only_subscribed_events_are_sent_and_they_coalesce() {
    let mut svc = negotiated(Some(OURS));
    svc.raise(EventSet::ALL);
    assert!(
        next_notification(&mut svc, 0).is_none(),
        "nothing subscribed"
    );
    subscribe(&mut svc, EventSet::PORT_STATS);
    svc.raise(EventSet::PORT_STATS);
    svc.raise(EventSet::PORT_STATS);
    svc.raise(EventSet::HEARTBEAT);
    let (tx, notification) = next_notification(&mut svc, 50).unwrap();
    assert_eq!(notification.sequence, 1);
    assert_eq!(
        notification.body,
        NotificationBody::PortStats(sample_stats())
    );
    assert_eq!(tx.sequence, Some(1));
    assert!(
        next_notification(&mut svc, 0).is_none(),
        "raised twice, sent once"
    );
    subscribe(&mut svc, EventSet::HEARTBEAT);
    svc.raise(EventSet::ALL);
    let first = next_notification(&mut svc, 60).unwrap().1;
    let second = next_notification(&mut svc, 60).unwrap().1;
    assert_eq!((first.sequence, second.sequence), (2, 3));
    assert_eq!(second.body, NotificationBody::Heartbeat(Ticks(60)));
}

#[test]
fn unsubscribing_drops_pending_events() {
    let mut svc = negotiated(Some(OURS));
    subscribe(&mut svc, EventSet::ALL);
    svc.raise(EventSet::ALL);
    let response = exchange(
        &mut svc,
        &request(8, RequestBody::Unsubscribe(EventSet::PORT_STATS)),
    );
    assert_eq!(
        response.body,
        ResponseBody::Unsubscribe(SubscriptionResponse {
            subscribed: EventSet::HEARTBEAT
        })
    );
    let (_, only) = next_notification(&mut svc, 0).unwrap();
    assert!(matches!(only.body, NotificationBody::Heartbeat(_)));
    assert!(next_notification(&mut svc, 0).is_none());
}

#[test]
fn notifications_are_not_sent_before_negotiation() {
    let mut svc = service(Some(OURS));
    svc.session.subscriptions = EventSet::ALL;
    svc.raise(EventSet::ALL);
    assert!(next_notification(&mut svc, 0).is_none());
}

fn ack(sequence: u64, status: AckStatus) -> Vec<u8> {
    let mut out = vec![0u8; 64];
    let len = protocol::encode_ack(
        &NotificationAck {
            version: 1,
            sequence,
            status,
        },
        &mut out,
    )
    .unwrap();
    out.truncate(len);
    out
}

#[test]
fn acks_must_name_the_notification_they_complete() {
    let mut svc = negotiated(Some(OURS));
    let tx = NotificationTx {
        sequence: Some(7),
        event: Event::PortStats,
        sent_at: Ticks(0),
    };
    assert_eq!(
        svc.transaction_completed(tx, NtStatus::SUCCESS, &ack(7, AckStatus::Handled)),
        Ok(())
    );
    assert_eq!(
        svc.transaction_completed(tx, NtStatus::SUCCESS, &ack(8, AckStatus::Handled)),
        Err(AckError::WrongSequence {
            expected: 7,
            found: 8
        })
    );
    assert!(matches!(
        svc.transaction_completed(tx, NtStatus::SUCCESS, b"junk"),
        Err(AckError::Malformed(_))
    ));
    // A heartbeat restored without saved state accepts whatever sequence the guest acks.
    let restored = NotificationTx {
        sequence: None,
        event: Event::Heartbeat,
        sent_at: Ticks(0),
    };
    assert_eq!(
        svc.transaction_completed(restored, NtStatus::SUCCESS, &ack(99, AckStatus::Ignored)),
        Ok(())
    );
    // A transport failure carries no ack to check.
    assert_eq!(
        svc.transaction_completed(tx, NtStatus::CANCELLED, &[]),
        Ok(())
    );
    let stats = svc.stats();
    assert_eq!(
        (
            stats.acks_accepted,
            stats.acks_refused,
            stats.notifications_failed
        ),
        (2, 2, 1)
    );
}

#[test]
fn a_failed_send_is_raised_again_not_lost() {
    let mut svc = negotiated(Some(OURS));
    subscribe(&mut svc, EventSet::PORT_STATS);
    svc.raise(EventSet::PORT_STATS);
    let (tx, _) = next_notification(&mut svc, 0).unwrap();
    svc.send_failed(tx, NtStatus::INSUFFICIENT_RESOURCES);
    assert!(next_notification(&mut svc, 0).is_some());
}

#[test]
fn restored_transactions_keep_sequences_unique() {
    let mut svc = negotiated(Some(OURS));
    svc.transaction_restored(&NotificationTx {
        sequence: Some(41),
        event: Event::PortStats,
        sent_at: Ticks(0),
    });
    assert_eq!(svc.session().next_sequence, 42);
    svc.transaction_restored(&NotificationTx {
        sequence: Some(3),
        event: Event::PortStats,
        sent_at: Ticks(0),
    });
    assert_eq!(svc.session().next_sequence, 42);
}

#[test]
fn a_session_crosses_hosts_and_a_foreign_one_is_refused() {
    let mut source = negotiated(Some(OURS));
    subscribe(&mut source, EventSet::ALL);
    source.raise(EventSet::HEARTBEAT);
    let _ = next_notification(&mut source, 0);
    source.raise(EventSet::PORT_STATS);
    let mut blob = vec![0u8; source.saved_session_len()];
    assert_eq!(source.save_session(&mut blob), Ok(blob.len()));

    let mut destination = service(Some(OURS));
    destination.restore_session(&blob).unwrap();
    assert_eq!(destination.session(), source.session());
    // No renegotiation needed, and the pending event is still pending.
    let response = exchange(&mut destination, &request(5, RequestBody::GetPortStats));
    assert!(matches!(response.body, ResponseBody::PortStats(_)));
    let (_, pending) = next_notification(&mut destination, 0).unwrap();
    assert_eq!(pending.sequence, 2);

    let mut stranger = service(Some(THEIRS));
    let before = *stranger.session();
    assert_eq!(
        stranger.restore_session(&blob),
        Err(SessionRestoreError::ForeignIdentity {
            ours: THEIRS,
            theirs: OURS
        })
    );
    assert_eq!(*stranger.session(), before);
    let mut corrupt = blob.clone();
    corrupt[25] ^= 0x10;
    assert!(matches!(
        stranger.restore_session(&corrupt),
        Err(SessionRestoreError::Decode(_))
    ));
}

#[test]
fn closing_resets_the_session() {
    let mut svc = negotiated(Some(OURS));
    subscribe(&mut svc, EventSet::ALL);
    svc.reset_session();
    assert_eq!(*svc.session(), Session::new());
}

// --- through a channel -------------------------------------------------------------------

#[derive(Default)]
struct Wire {
    completions: RefCell<Vec<(u32, Vec<u8>)>>,
    sent: RefCell<Vec<(TransactionKey, Vec<u8>)>>,
}

impl Platform for Wire {
    type Channel = ();
    type IncomingPacket = u32;
    type OutgoingPacket = ();
    type PortSaveCompletion = ();
    type Lock = SpinRawLock;

    fn complete_packet(&self, packet: u32, response: &[u8]) {
        self.completions
            .borrow_mut()
            .push((packet, response.to_vec()));
    }
    fn fail_packet(&self, _packet: u32) {}
    fn send_transaction(
        &self,
        _: &(),
        key: TransactionKey,
        payload: &[u8],
    ) -> Result<(), NtStatus> {
        self.sent.borrow_mut().push((key, payload.to_vec()));
        Ok(())
    }
    fn restore_transaction(&self, _: &(), _: TransactionKey, _: &[u8]) -> Result<(), NtStatus> {
        Ok(())
    }
    fn complete_port_save(&self, _: (), _: NtStatus) {}
    fn now(&self) -> Ticks {
        Ticks(0)
    }
}

type ServiceChannel = Channel<Wire, FerryService<OnePort>, 4, 4>;

fn running_channel(config: ServiceConfig) -> (ServiceChannel, Wire) {
    let wire = Wire::default();
    let ch = Channel::new(
        (),
        FerryService::new(OnePort(Some(sample_stats())), Some(OURS), config),
    );
    ch.request(ChannelEvent::Enable).unwrap();
    ch.request(ChannelEvent::Start).unwrap();
    ch.on_opened(&wire);
    ch.on_started(&wire).unwrap();
    ch.on_post_started(&wire).unwrap();
    let mut scratch = vec![0u8; MAX_MESSAGE_LEN];
    ch.process_packet(&wire, 0, &request(1, negotiate_body()), &mut scratch)
        .unwrap();
    (ch, wire)
}

#[test]
fn deferred_statistics_are_answered_later_or_cancelled_at_suspend() {
    let (ch, wire) = running_channel(ServiceConfig {
        defer_port_stats: true,
    });
    let mut scratch = vec![0u8; MAX_MESSAGE_LEN];
    let first = ch.process_packet(
        &wire,
        1,
        &request(11, RequestBody::GetPortStats),
        &mut scratch,
    );
    let second = ch.process_packet(
        &wire,
        2,
        &request(12, RequestBody::GetPortStats),
        &mut scratch,
    );
    let (Ok(PacketOutcome::Deferred(first)), Ok(PacketOutcome::Deferred(_))) = (first, second)
    else {
        panic!("{first:?} {second:?}");
    };
    ch.answer_deferred(&wire, first, &mut scratch, |svc, req, out| {
        svc.answer_deferred(req, out)
    })
    .unwrap();
    ch.request(ChannelEvent::Pause).unwrap();
    ch.on_suspend(&wire).unwrap();
    let completions = wire.completions.borrow();
    assert_eq!(completions.len(), 3, "negotiate, answered, retired");
    let answered = parse_response(&completions[1].1).unwrap();
    assert_eq!((completions[1].0, answered.transaction_id), (1, 11));
    assert_eq!(answered.body, ResponseBody::PortStats(sample_stats()));
    let retired = parse_response(&completions[2].1).unwrap();
    assert_eq!((completions[2].0, retired.transaction_id), (2, 12));
    assert_eq!(error_code(&retired), Some(ErrorCode::Cancelled));
}

#[test]
fn notifications_flow_through_the_channel_and_acks_release_them() {
    let (ch, wire) = running_channel(ServiceConfig::default());
    let mut scratch = vec![0u8; MAX_MESSAGE_LEN];
    ch.process_packet(
        &wire,
        1,
        &request(2, RequestBody::Subscribe(EventSet::ALL)),
        &mut scratch,
    )
    .unwrap();
    ch.with_service(|svc| svc.raise(EventSet::ALL));
    assert_eq!(ch.send_pending(&wire), Ok(2));
    let sent = wire.sent.borrow().clone();
    for (key, payload) in &sent {
        let notification = parse_notification(payload).unwrap();
        ch.transaction_completed(
            &wire,
            *key,
            NtStatus::SUCCESS,
            &ack(notification.sequence, AckStatus::Handled),
        )
        .unwrap();
    }
    assert_eq!(ch.outstanding(), (0, 0));
    assert_eq!(ch.with_service(|svc| svc.stats().acks_accepted), 2);
}

#[test]
fn a_packet_refused_before_start_echoes_its_transaction_id() {
    let wire = Wire::default();
    let ch: ServiceChannel = Channel::new(
        (),
        FerryService::new(OnePort(None), None, ServiceConfig::default()),
    );
    let mut scratch = vec![0u8; MAX_MESSAGE_LEN];
    let _ = ch.process_packet(
        &wire,
        5,
        &request(0x77, RequestBody::GetPortStats),
        &mut scratch,
    );
    let completions = wire.completions.borrow();
    let refused = parse_response(&completions[0].1).unwrap();
    assert_eq!(refused.transaction_id, 0x77);
    assert_eq!(error_code(&refused), Some(ErrorCode::Busy));
}

#[test]
fn a_repeated_restore_of_one_notification_is_refused_and_changes_nothing() {
    use crate::channel::{ChannelError, TransactionState};
    let wire = Wire::default();
    let ch: ServiceChannel = Channel::new(
        (),
        FerryService::new(
            OnePort(Some(sample_stats())),
            Some(OURS),
            ServiceConfig::default(),
        ),
    );
    let tx = NotificationTx {
        sequence: Some(12),
        event: Event::PortStats,
        sent_at: Ticks(0),
    };
    let mut saved = vec![0u8; tx.saved_len(Ticks(0))];
    tx.save(Ticks(0), &mut saved).unwrap();
    let first = ch.restore_packet(&wire, b"lib", &saved).unwrap();
    assert_eq!(
        ch.restore_packet(&wire, b"lib", &saved),
        Err(ChannelError::DuplicateTransaction(first))
    );
    assert_eq!(ch.outstanding(), (0, 1));
    // Heartbeats restored without state have no identity: two are two transactions.
    ch.restore_packet(&wire, b"lib", &[]).unwrap();
    ch.restore_packet(&wire, b"lib", &[]).unwrap();
    assert_eq!(ch.outstanding(), (0, 3));
    // Another sequence is another transaction.
    let other = NotificationTx {
        sequence: Some(13),
        ..tx
    };
    let mut saved = vec![0u8; other.saved_len(Ticks(0))];
    other.save(Ticks(0), &mut saved).unwrap();
    ch.restore_packet(&wire, b"lib", &saved).unwrap();
    assert_eq!(ch.outstanding(), (0, 4));
}
