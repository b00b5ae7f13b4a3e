//! Writes the seed corpora (`corpus/<target>/seed-*`) from real encoded blobs and messages.
//! Run it with `cargo +nightly test --manifest-path fuzz/Cargo.toml -- --ignored`.

use std::fs;
use std::path::Path;

use ferry_core::channel::TransactionState;
use ferry_core::lock::SpinRawLock;
use ferry_core::platform::Ticks;
use ferry_core::port::{
    Direction, FlowKey, FrameInfo, PortConfig, PortIdentity, PortTable, RateLimit, SwitchPortId,
};
use ferry_core::protocol::{
    self, AckStatus, ErrorCode, Event, EventSet, NegotiateResponse, Notification, NotificationAck,
    NotificationBody, Ping, PortStats, Response, ResponseBody, SubscriptionResponse,
};
use ferry_core::saved_state;
use ferry_core::service::{NotificationTx, SavedSession, Session};

use crate::ops::{Ack, Op, well_formed_request};

fn write(target: &str, name: &str, bytes: &[u8]) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target);
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join(format!("seed-{name}")), bytes).unwrap();
}

fn notification_blobs() -> Vec<(&'static str, Vec<u8>)> {
    let now = Ticks(5_000_000);
    let tx = NotificationTx {
        sequence: Some(42),
        event: Event::PortStats,
        sent_at: Ticks(1_000_000),
    };
    let mut blob = vec![0u8; tx.saved_len(now)];
    tx.save(now, &mut blob).unwrap();
    vec![("port-stats", blob), ("heartbeat-empty", Vec::new())]
}

fn session_blobs() -> Vec<(&'static str, Vec<u8>)> {
    let sessions = [
        (
            "fresh",
            SavedSession {
                identity: None,
                session: Session::new(),
            },
        ),
        (
            "negotiated-subscribed",
            SavedSession {
                identity: Some(PortIdentity(*b"vm-nic-identity!")),
                session: Session {
                    version: Some(1),
                    features: 0,
                    subscriptions: EventSet::ALL,
                    pending: EventSet::HEARTBEAT,
                    next_sequence: 17,
                },
            },
        ),
    ];
    sessions
        .into_iter()
        .map(|(name, session)| {
            let mut blob = vec![0u8; saved_state::encoded_len(&session)];
            saved_state::encode(&session, &mut blob).unwrap();
            (name, blob)
        })
        .collect()
}

fn port_blobs() -> Vec<(&'static str, Vec<u8>)> {
    const PORT: SwitchPortId = SwitchPortId(3);
    let now = Ticks(1 << 30);
    let mut blobs = Vec::new();
    for (name, identity, flows) in [
        ("empty", None, 0u8),
        ("flows-limited", Some(PortIdentity([9; 16])), 5),
    ] {
        let table = Box::new(PortTable::<SpinRawLock, 1, 16>::new());
        let limit = RateLimit {
            bytes_per_second: 10_000,
            burst_bytes: 4_000,
        };
        table
            .create_port(
                PORT,
                identity,
                PortConfig {
                    ingress: limit,
                    egress: RateLimit::UNLIMITED,
                },
            )
            .unwrap();
        for i in 0..flows {
            let flow = if i % 2 == 0 {
                FlowKey::v4([10, 0, 0, i], [10, 0, 0, 1], 4000 + u16::from(i), 443, 6)
            } else {
                FlowKey::v6([i; 16], [1; 16], 53, 53, 17)
            };
            let direction = if i % 3 == 0 {
                Direction::Egress
            } else {
                Direction::Ingress
            };
            let frame = FrameInfo {
                direction,
                flow,
                length: 1_000 + u32::from(i),
            };
            table
                .classify(PORT, &frame, Ticks(now.0 - 1_000 * u64::from(i)))
                .unwrap();
        }
        let mut blob = vec![0u8; table.saved_len(PORT, now).unwrap()];
        table.save_port(PORT, now, &mut blob).unwrap();
        blobs.push((name, blob));
    }
    blobs
}

fn protocol_messages() -> Vec<(&'static str, Vec<u8>)> {
    let mut messages = Vec::new();
    for (kind, name, arg) in [
        (0u8, "negotiate", 0x11u8),
        (1, "ping", 12),
        (2, "get-port-stats", 0),
        (3, "subscribe", 3),
        (4, "unsubscribe", 1),
    ] {
        messages.push((name, well_formed_request(kind, 1, 9, arg)));
    }
    let stats = PortStats {
        rx_frames: 1,
        rx_bytes: 2,
        tx_frames: 3,
        tx_bytes: 4,
        dropped_frames: 5,
        dropped_bytes: 6,
        flows_active: 7,
        flows_evicted: 8,
    };
    let data = [0xAB; 5];
    let bodies: [(&str, ResponseBody<'_>); 5] = [
        (
            "negotiate-response",
            ResponseBody::Negotiate(NegotiateResponse {
                version: 1,
                features: 0,
            }),
        ),
        (
            "ping-response",
            ResponseBody::Ping(Ping {
                nonce: 3,
                data: &data,
            }),
        ),
        ("port-stats-response", ResponseBody::PortStats(stats)),
        (
            "subscribe-response",
            ResponseBody::Subscribe(SubscriptionResponse {
                subscribed: EventSet::ALL,
            }),
        ),
        (
            "unsubscribe-response",
            ResponseBody::Unsubscribe(SubscriptionResponse {
                subscribed: EventSet::EMPTY,
            }),
        ),
    ];
    for (name, body) in bodies {
        let response = Response {
            version: 1,
            transaction_id: 9,
            body,
        };
        let mut out = vec![0u8; protocol::response_len(&response)];
        protocol::encode_response(&response, &mut out).unwrap();
        messages.push((name, out));
    }
    let mut out = vec![0u8; protocol::ERROR_LEN];
    protocol::encode_error(ErrorCode::NotNegotiated, 3, 9, &mut out).unwrap();
    messages.push(("error-response", out));
    for (name, body) in [
        (
            "notification-port-stats",
            NotificationBody::PortStats(stats),
        ),
        (
            "notification-heartbeat",
            NotificationBody::Heartbeat(Ticks(77)),
        ),
    ] {
        let notification = Notification {
            version: 1,
            sequence: 4,
            body,
        };
        let mut out = vec![0u8; protocol::notification_len(&notification)];
        protocol::encode_notification(&notification, &mut out).unwrap();
        messages.push((name, out));
    }
    let ack = NotificationAck {
        version: 1,
        sequence: 4,
        status: AckStatus::Handled,
    };
    let mut out = vec![0u8; protocol::ACK_LEN];
    protocol::encode_ack(&ack, &mut out).unwrap();
    messages.push(("ack", out));
    messages
}

/// Channel events by their index in `ChannelEvent::ALL`.
const ENABLE: u8 = 0;
const START: u8 = 1;
const RESTORED: u8 = 4;
const OPENED: u8 = 5;
const STARTED: u8 = 6;
const POST_STARTED: u8 = 7;
const SUSPEND: u8 = 8;
const CLOSED: u8 = 9;

fn bring_up() -> Vec<Op> {
    [ENABLE, OPENED, START, STARTED, POST_STARTED]
        .map(Op::Event)
        .to_vec()
}

fn negotiate() -> Op {
    Op::Request {
        kind: 0,
        version: 1,
        transaction_id: 1,
        arg: 0x11,
    }
}

fn service_scripts() -> Vec<(&'static str, u8, Vec<Op>)> {
    let mut scripts = Vec::new();
    let mut served = bring_up();
    served.extend([
        negotiate(),
        Op::Request {
            kind: 1,
            version: 1,
            transaction_id: 2,
            arg: 16,
        },
        Op::Request {
            kind: 2,
            version: 1,
            transaction_id: 3,
            arg: 0,
        },
        Op::Request {
            kind: 3,
            version: 1,
            transaction_id: 4,
            arg: 3,
        },
        Op::ProcessingComplete(0),
        Op::Raise(3),
        Op::SendPending,
        Op::Complete(0, Ack::Correct),
        Op::Complete(1, Ack::WrongSequence),
        Op::Request {
            kind: 4,
            version: 1,
            transaction_id: 5,
            arg: 2,
        },
        Op::SessionRoundTrip,
        Op::Event(SUSPEND),
        Op::Event(CLOSED),
    ]);
    scripts.push(("negotiate-serve-notify", 2, served));

    let mut deferred = bring_up();
    deferred.extend([
        negotiate(),
        Op::Request {
            kind: 2,
            version: 1,
            transaction_id: 2,
            arg: 0,
        },
        Op::Request {
            kind: 2,
            version: 1,
            transaction_id: 3,
            arg: 0,
        },
        Op::AnswerDeferred(0),
        Op::Request {
            kind: 2,
            version: 1,
            transaction_id: 4,
            arg: 0,
        },
        Op::Event(SUSPEND),
        Op::Event(STARTED),
        Op::Request {
            kind: 2,
            version: 1,
            transaction_id: 5,
            arg: 0,
        },
        Op::ProcessingComplete(0),
    ]);
    scripts.push(("deferred-then-suspend", 3, deferred));

    let mut hostile = bring_up();
    hostile.extend([
        Op::Packet(vec![1, 0, 2, 0, 16, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0]),
        Op::Request {
            kind: 1,
            version: 1,
            transaction_id: 6,
            arg: 0,
        },
        negotiate(),
        Op::Request {
            kind: 1,
            version: 2,
            transaction_id: 7,
            arg: 4,
        },
        Op::Packet(vec![0xFF; 40]),
        Op::Request {
            kind: 3,
            version: 1,
            transaction_id: 8,
            arg: 3,
        },
        Op::ProcessingComplete(3),
        Op::Raise(2),
        Op::ToggleSendFailure,
        Op::SendPending,
        Op::ToggleSendFailure,
        Op::Event(POST_STARTED),
        Op::SendPending,
        Op::Complete(0, Ack::Raw(vec![0; 8])),
        Op::Clock(200),
    ]);
    scripts.push(("malformed-and-send-failures", 2, hostile));

    let mut migrated = bring_up();
    migrated.extend([
        negotiate(),
        Op::Request {
            kind: 3,
            version: 1,
            transaction_id: 2,
            arg: 1,
        },
        Op::Raise(1),
        Op::SendPending,
        Op::Event(SUSPEND),
        Op::SaveRestore(0),
        Op::Event(CLOSED),
        Op::Event(RESTORED),
        Op::SaveRestore(0),
        Op::RestoreRaw(notification_blobs()[0].1.clone()),
        Op::Event(STARTED),
        Op::Event(POST_STARTED),
        Op::Complete(0, Ack::Correct),
        Op::Complete(1, Ack::FailureStatus),
    ]);
    scripts.push(("save-restore-transactions", 2, migrated));

    let mut destination = vec![Op::Event(ENABLE), Op::Event(RESTORED)];
    destination.extend([
        Op::RestoreRaw(notification_blobs()[0].1.clone()),
        Op::RestoreRaw(Vec::new()),
        Op::SessionRoundTrip,
        Op::Event(START),
        Op::Event(STARTED),
        Op::Event(POST_STARTED),
        negotiate(),
        Op::Complete(0, Ack::Correct),
        Op::Complete(1, Ack::Raw(vec![1, 0, 1, 0x80, 32, 0, 0, 0])),
        Op::Complete(1, Ack::Correct),
    ]);
    scripts.push(("restore-on-destination", 0, destination));
    scripts
}

#[test]
#[ignore = "writes the seed corpora into the source tree"]
fn write_seed_corpora() {
    let notifications = notification_blobs();
    let sessions = session_blobs();
    let ports = port_blobs();
    for (name, blob) in &notifications {
        write("blob_notification", name, blob);
    }
    for (name, blob) in &sessions {
        write("blob_session", name, blob);
    }
    for (name, blob) in &ports {
        write("blob_port", name, blob);
    }
    for (name, blob) in notifications.iter().chain(&sessions).chain(&ports) {
        if !blob.is_empty() {
            write("saved_state_envelope", name, blob);
        }
    }
    for (name, message) in protocol_messages() {
        write("protocol_request", name, &message);
    }
    for (name, config, ops) in service_scripts() {
        let mut input = vec![config];
        for op in &ops {
            op.encode(&mut input);
        }
        write("service_packet", name, &input);
    }
    for (name, input) in crate::ioctl::seeds() {
        write("ioctl_request", &name, &input);
    }
}

#[test]
fn ops_decode_what_they_encode() {
    for (_, _, ops) in service_scripts() {
        let mut input = Vec::new();
        for op in &ops {
            op.encode(&mut input);
        }
        let mut u = arbitrary::Unstructured::new(&input);
        let decoded: Vec<Op> = std::iter::from_fn(|| Op::decode(&mut u)).collect();
        assert_eq!(decoded, ops);
    }
}

#[test]
fn seed_blobs_restore() {
    for (_, blob) in notification_blobs() {
        assert!(NotificationTx::restore(&blob, Ticks(1 << 40)).is_ok());
    }
    for (_, blob) in session_blobs() {
        assert!(SavedSession::decode(&blob).is_ok());
    }
    for (_, blob) in port_blobs() {
        assert!(saved_state::open(&blob, saved_state::BlobKind::PortRuntimeState).is_ok());
    }
    for (name, message) in protocol_messages() {
        let parses = protocol::parse_request(&message).is_ok()
            || protocol::parse_response(&message).is_ok()
            || protocol::parse_notification(&message).is_ok()
            || protocol::parse_ack(&message).is_ok();
        assert!(parses, "{name}");
    }
}

/// Seed inputs for `host_sequence`: pseudo-random bytes (xorshift64 from fixed seeds), since
/// `arbitrary` reads any bytes as a sequence; the test below checks that together they reach
/// the actions that matter.
fn host_sequence_seeds() -> Vec<(String, Vec<u8>)> {
    let candidate = |seed: u64, len: usize| {
        let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state.to_le_bytes()[0]
            })
            .collect::<Vec<u8>>()
    };
    // Short, medium and long sequences (a long one is cut at `MAX_ACTIONS`).
    [(1, 48), (2, 120), (3, 240), (4, 480), (5, 900)]
        .into_iter()
        .map(|(seed, len)| (format!("xorshift-{seed}-{len}"), candidate(seed, len)))
        .collect()
}

#[test]
#[ignore = "writes the host_sequence seed corpus into the source tree"]
fn write_host_sequence_seeds() {
    for (name, bytes) in host_sequence_seeds() {
        write("host_sequence", &name, &bytes);
    }
}

#[test]
fn host_sequence_seeds_reach_every_kind_of_action_and_run_clean() {
    use std::collections::BTreeSet;

    use ferry_platform_mock::world::steps::run_sequence;

    use crate::host_sequence::{decode, kind};

    let seeds = host_sequence_seeds();
    assert!(seeds.len() >= 3);
    let mut reached = BTreeSet::new();
    for (name, bytes) in &seeds {
        let (setup, actions) = decode(bytes);
        reached.extend(actions.iter().map(kind));
        assert_eq!(run_sequence(&setup, &actions), None, "seed {name}");
    }
    for needed in [
        "migrate",
        "save-restore-local",
        "port-save-restore",
        "crash",
        "settle",
    ] {
        assert!(
            reached.contains(needed),
            "no seed reaches {needed}: {reached:?}"
        );
    }
}
