//! Golden blobs: saved state as released format versions wrote it. Every blob here must keep
//! restoring, with the values asserted below, in every later ferry: a failure means a change
//! broke migration from a released version.
//!
//! The files were written once by `write_golden_blobs` (ignored). Never regenerate a released
//! version's blobs; add a directory for a new format version instead.

use ferry_core::channel::TransactionState;
use ferry_core::platform::Ticks;
use ferry_core::port::PortIdentity;
use ferry_core::protocol::{Event, EventSet};
use ferry_core::saved_state::{self, BlobKind};
use ferry_core::service::{NotificationTx, SavedSession, Session};

const OUTGOING_TRANSACTION: &[u8] = include_bytes!("golden/v1.0/outgoing-transaction.bin");
const CHANNEL_SESSION: &[u8] = include_bytes!("golden/v1.0/channel-session.bin");

/// The values the v1.0 golden blobs hold.
fn golden_notification() -> (NotificationTx, Ticks) {
    let now = Ticks(10_000);
    let tx = NotificationTx {
        sequence: Some(42),
        event: Event::PortStats,
        sent_at: Ticks(8_500),
    };
    (tx, now)
}

fn golden_session() -> SavedSession {
    SavedSession {
        identity: Some(PortIdentity(*b"ferry-golden-nic")),
        session: Session {
            version: Some(1),
            features: 0,
            subscriptions: EventSet::ALL,
            pending: EventSet::HEARTBEAT,
            next_sequence: 43,
        },
    }
}

#[test]
fn v1_0_outgoing_transaction_restores() {
    let (expected, now) = golden_notification();
    let restored = NotificationTx::restore(OUTGOING_TRANSACTION, now).unwrap();
    assert_eq!(restored, expected);
    // Canonical: saving the restored value at the same moment gives the same bytes.
    let mut out = vec![0u8; restored.saved_len(now)];
    assert_eq!(restored.save(now, &mut out), Ok(OUTGOING_TRANSACTION.len()));
    assert_eq!(out, OUTGOING_TRANSACTION);
    assert_eq!(
        OUTGOING_TRANSACTION.len(),
        58,
        "size documented in docs/saved-state/"
    );
}

#[test]
fn v1_0_channel_session_restores() {
    let restored = SavedSession::decode(CHANNEL_SESSION).unwrap();
    assert_eq!(restored, golden_session());
    let mut out = vec![0u8; saved_state::encoded_len(&restored)];
    saved_state::encode(&restored, &mut out).unwrap();
    assert_eq!(out, CHANNEL_SESSION);
    assert_eq!(
        CHANNEL_SESSION.len(),
        94,
        "size documented in docs/saved-state/"
    );
}

#[test]
fn golden_blobs_carry_their_kind_and_version() {
    for (blob, kind) in [
        (OUTGOING_TRANSACTION, BlobKind::OutgoingTransaction),
        (CHANNEL_SESSION, BlobKind::ChannelSession),
    ] {
        let payload = saved_state::open_any(blob).unwrap();
        assert_eq!(payload.kind(), kind);
        assert_eq!((payload.version().major, payload.version().minor), (1, 0));
    }
}

#[test]
fn golden_blobs_are_refused_as_the_wrong_kind() {
    assert!(SavedSession::decode(OUTGOING_TRANSACTION).is_err());
    assert!(NotificationTx::restore(CHANNEL_SESSION, Ticks(0)).is_err());
}

/// Writes the v1.0 blobs. Run once when a format version is released:
/// `cargo test -p ferry-core --test golden_blobs -- --ignored write_golden_blobs`.
#[test]
#[ignore = "writes the golden files; released versions must never be rewritten"]
fn write_golden_blobs() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/v1.0");
    std::fs::create_dir_all(&dir).unwrap();
    let (tx, now) = golden_notification();
    let mut blob = vec![0u8; tx.saved_len(now)];
    tx.save(now, &mut blob).unwrap();
    std::fs::write(dir.join("outgoing-transaction.bin"), &blob).unwrap();
    let session = golden_session();
    let mut blob = vec![0u8; saved_state::encoded_len(&session)];
    saved_state::encode(&session, &mut blob).unwrap();
    std::fs::write(dir.join("channel-session.bin"), &blob).unwrap();
}
