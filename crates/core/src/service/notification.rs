//! The reference service's per-transaction context — one host→guest notification awaiting the
//! guest's acknowledgement — and its saved form, blob kind 1 (`OutgoingTransaction`).
//!
//! Payload fields (specified in `docs/saved-state/outgoing-transaction.md`):
//!
//! | tag | field | type | presence |
//! |---|---|---|---|
//! | 1 | sequence | u64 | required |
//! | 2 | event | u32 (`protocol::Event`) | required |
//! | 3 | age (100 ns ticks since sent) | u64 | optional, default 0 |
//!
//! Heartbeats carry nothing worth saving: their saved form is empty (the first SavePacket call
//! succeeds), and a heartbeat restored from nothing accepts whatever sequence the guest acks.

use core::fmt;

use crate::channel::TransactionState;
use crate::platform::Ticks;
use crate::protocol::Event;
use crate::saved_state::{
    self, BlobKind, DecodeError, EncodeError, FieldWriter, SavedState, Tag, field_len,
};
use crate::status::NtStatus;

const SEQUENCE: Tag = Tag::new(1);
const EVENT: Tag = Tag::new(2);
const AGE: Tag = Tag::new(3);

/// One notification in flight.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NotificationTx {
    /// The notification's sequence number; `None` for one restored without saved state.
    pub sequence: Option<u64>,
    /// What it reported.
    pub event: Event,
    /// When it was sent, on this host's clock.
    pub sent_at: Ticks,
}

impl NotificationTx {
    /// Whether this transaction has state worth saving.
    #[must_use]
    pub const fn has_saved_state(&self) -> bool {
        !matches!(self.event, Event::Heartbeat)
    }

    fn saved(&self, now: Ticks) -> SavedNotification {
        SavedNotification {
            sequence: self.sequence.unwrap_or(0),
            event: self.event,
            age: now.saturating_since(self.sent_at),
        }
    }
}

/// The fields of a kind-1 blob.
struct SavedNotification {
    sequence: u64,
    event: Event,
    age: u64,
}

impl SavedState for SavedNotification {
    const KIND: BlobKind = BlobKind::OutgoingTransaction;

    fn payload_len(&self) -> usize {
        field_len(8)
            .saturating_add(field_len(4))
            .saturating_add(field_len(8))
    }

    fn encode_payload(&self, w: &mut FieldWriter<'_>) -> Result<(), EncodeError> {
        w.u64(SEQUENCE, self.sequence)?;
        w.u32(EVENT, self.event.bit())?;
        w.u64(AGE, self.age)
    }
}

/// Why a saved notification was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NotificationRestoreError(pub DecodeError);

impl fmt::Display for NotificationRestoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "saved notification refused: {}", self.0)
    }
}

impl From<NotificationRestoreError> for NtStatus {
    fn from(error: NotificationRestoreError) -> Self {
        error.0.status()
    }
}

impl TransactionState for NotificationTx {
    type RestoreError = NotificationRestoreError;

    fn saved_len(&self, now: Ticks) -> usize {
        if self.has_saved_state() {
            saved_state::encoded_len(&self.saved(now))
        } else {
            0
        }
    }

    fn save(&self, now: Ticks, out: &mut [u8]) -> Result<usize, NtStatus> {
        if !self.has_saved_state() {
            return Ok(0);
        }
        saved_state::encode(&self.saved(now), out).map_err(|error| error.status())
    }

    fn restore(saved: &[u8], now: Ticks) -> Result<Self, NotificationRestoreError> {
        if saved.is_empty() {
            return Ok(Self {
                sequence: None,
                event: Event::Heartbeat,
                sent_at: now,
            });
        }
        let decoded = saved_state::open(saved, BlobKind::OutgoingTransaction)
            .and_then(|payload| {
                payload.read(|fields| {
                    let sequence_field = fields.require(SEQUENCE)?;
                    let sequence = sequence_field.u64()?;
                    if sequence == 0 {
                        // Sessions never hand out sequence 0 (`session::FIRST_SEQUENCE`).
                        return Err(sequence_field.invalid());
                    }
                    let event_field = fields.require(EVENT)?;
                    let event = event_field.u32().and_then(|bits| {
                        event_from_bit(bits).ok_or_else(|| event_field.invalid())
                    })?;
                    let age = fields.optional(AGE)?.map_or(Ok(0), |f| f.u64())?;
                    Ok((sequence, event, age))
                })
            })
            .map_err(NotificationRestoreError)?;
        let (sequence, event, age) = decoded;
        Ok(Self {
            sequence: Some(sequence),
            event,
            sent_at: Ticks(now.0.saturating_sub(age)),
        })
    }
}

/// The event whose wire bit is `bits` (exactly one known bit).
fn event_from_bit(bits: u32) -> Option<Event> {
    [Event::PortStats, Event::Heartbeat]
        .into_iter()
        .find(|event| event.bit() == bits)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::vec;

    fn saved(tx: &NotificationTx, now: Ticks) -> std::vec::Vec<u8> {
        let mut out = vec![0u8; tx.saved_len(now)];
        let n = tx.save(now, &mut out).unwrap();
        assert_eq!(n, out.len(), "saved_len is exact");
        out
    }

    #[test]
    fn heartbeats_have_nothing_to_save_and_restore_as_unsequenced() {
        let tx = NotificationTx {
            sequence: Some(4),
            event: Event::Heartbeat,
            sent_at: Ticks(0),
        };
        assert_eq!(tx.saved_len(Ticks(10)), 0);
        let back = NotificationTx::restore(&[], Ticks(99)).unwrap();
        assert_eq!(back.sequence, None);
        assert_eq!(back.sent_at, Ticks(99));
    }

    #[test]
    fn ages_cross_hosts_not_clock_readings() {
        let tx = NotificationTx {
            sequence: Some(7),
            event: Event::PortStats,
            sent_at: Ticks(1_000),
        };
        let blob = saved(&tx, Ticks(1_500));
        // The destination's clock reads something unrelated.
        let back = NotificationTx::restore(&blob, Ticks(50_000)).unwrap();
        assert_eq!(back.sequence, Some(7));
        assert_eq!(back.event, Event::PortStats);
        assert_eq!(back.sent_at, Ticks(49_500));
    }

    #[test]
    fn corrupt_or_foreign_blobs_are_refused() {
        let tx = NotificationTx {
            sequence: Some(1),
            event: Event::PortStats,
            sent_at: Ticks(0),
        };
        let blob = saved(&tx, Ticks(0));
        for cut in 1..blob.len() {
            assert!(
                NotificationTx::restore(&blob[..cut], Ticks(0)).is_err(),
                "cut {cut}"
            );
        }
        let mut flipped = blob.clone();
        *flipped.last_mut().unwrap() ^= 1;
        let err = NotificationTx::restore(&flipped, Ticks(0)).unwrap_err();
        assert_eq!(NtStatus::from(err), NtStatus::CRC_ERROR);
    }

    /// A kind-1 payload with an arbitrary event value, as a newer or hostile writer might send.
    struct RawNotification {
        event_bits: u32,
    }

    impl SavedState for RawNotification {
        const KIND: BlobKind = BlobKind::OutgoingTransaction;
        fn payload_len(&self) -> usize {
            field_len(8) + field_len(4)
        }
        fn encode_payload(&self, w: &mut FieldWriter<'_>) -> Result<(), EncodeError> {
            w.u64(SEQUENCE, 1)?;
            w.u32(EVENT, self.event_bits)
        }
    }

    /// A kind-1 payload with a chosen sequence.
    struct RawSequence(u64);

    impl SavedState for RawSequence {
        const KIND: BlobKind = BlobKind::OutgoingTransaction;
        fn payload_len(&self) -> usize {
            field_len(8) + field_len(4)
        }
        fn encode_payload(&self, w: &mut FieldWriter<'_>) -> Result<(), EncodeError> {
            w.u64(SEQUENCE, self.0)?;
            w.u32(EVENT, Event::PortStats.bit())
        }
    }

    #[test]
    fn sequence_zero_is_refused_as_the_spec_says() {
        for (sequence, accepted) in [(0, false), (1, true), (u64::MAX, true)] {
            let raw = RawSequence(sequence);
            let mut blob = vec![0u8; saved_state::encoded_len(&raw)];
            saved_state::encode(&raw, &mut blob).unwrap();
            let result = NotificationTx::restore(&blob, Ticks(0));
            assert_eq!(result.is_ok(), accepted, "sequence {sequence}");
        }
    }

    #[test]
    fn unknown_events_are_refused_and_a_missing_age_defaults_to_zero() {
        for (bits, accepted) in [
            (0x8000, false),
            (0, false),
            (3, false),
            (1, true),
            (2, true),
        ] {
            let raw = RawNotification { event_bits: bits };
            let mut blob = vec![0u8; saved_state::encoded_len(&raw)];
            saved_state::encode(&raw, &mut blob).unwrap();
            let result = NotificationTx::restore(&blob, Ticks(5));
            assert_eq!(result.is_ok(), accepted, "event bits {bits:#x}");
            if let Ok(tx) = result {
                assert_eq!(tx.sent_at, Ticks(5), "absent age means sent just now");
            }
        }
    }

    proptest! {
        #[test]
        fn tracked_notifications_round_trip(seq in 1u64.., sent in 0u64..1 << 40, age in 0u64..1 << 40) {
            let tx = NotificationTx { sequence: Some(seq), event: Event::PortStats, sent_at: Ticks(sent) };
            let now = Ticks(sent + age);
            let back = NotificationTx::restore(&saved(&tx, now), now).unwrap();
            prop_assert_eq!(back, tx);
        }
    }
}
