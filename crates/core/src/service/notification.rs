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
    self, BlobKind, DecodeError, EncodeError, FIELD_HEADER_LEN, FieldWriter, HEADER_LEN,
    SavedState, Tag, crc32c_words, field_header, field_len, header_prefix, register_after,
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

/// The blob exactly as [`SavedNotification`]'s `encode_payload` lays it out through the
/// generic writer — envelope, then sequence, event and age, each behind its field header. Every
/// blob this version writes has this layout, so saving writes it straight into the output and
/// restoring checks it byte for byte before reading the values at fixed offsets. Anything else
/// (an older or newer writer's layout, a damaged blob) goes through the generic field reader;
/// both give the same answer for every blob (property-tested below).
mod canonical {
    use super::{
        AGE, EVENT, FIELD_HEADER_LEN, HEADER_LEN, SEQUENCE, field_header, header_prefix,
        register_after,
    };
    use crate::saved_state::BlobKind;

    /// Payload bytes: three field headers, a `u64`, a `u32` and a `u64`.
    pub const PAYLOAD_LEN: usize = 38;
    /// Whole blob.
    pub const BLOB_LEN: usize = 58;
    const _: () = assert!(PAYLOAD_LEN == 3 * FIELD_HEADER_LEN + 8 + 4 + 8);
    const _: () = assert!(BLOB_LEN == HEADER_LEN + PAYLOAD_LEN);

    /// The checksummed header bytes (magic to payload length).
    pub const HEAD: [u8; 16] = header_prefix(BlobKind::OutgoingTransaction, PAYLOAD_LEN as u32);
    /// The field headers in front of the sequence, the event and the age.
    pub const SEQUENCE_HEADER: [u8; FIELD_HEADER_LEN] = field_header(SEQUENCE, 8);
    /// See [`SEQUENCE_HEADER`].
    pub const EVENT_HEADER: [u8; FIELD_HEADER_LEN] = field_header(EVENT, 4);
    /// See [`SEQUENCE_HEADER`].
    pub const AGE_HEADER: [u8; FIELD_HEADER_LEN] = field_header(AGE, 8);

    /// The checksum register after [`HEAD`], computed at compile time.
    pub const HEAD_REGISTER: u32 = register_after(&HEAD);

    /// The payload of a blob holding `sequence`, `event` (its bit) and `age` as four
    /// little-endian words and a 6-byte tail (the payload's 38 bytes in order): the field headers
    /// are constants, so the words are built in registers and the checksum is computed from them
    /// without reading back the bytes just written.
    #[inline]
    pub const fn words(sequence: u64, event: u32, age: u64) -> ([u64; 4], u64) {
        let sequence_header = u64::from_le_bytes(pad(SEQUENCE_HEADER));
        let event_header = u64::from_le_bytes(pad(EVENT_HEADER));
        let age_header = u64::from_le_bytes(pad(AGE_HEADER));
        (
            [
                sequence_header | sequence << 48,
                sequence >> 16 | event_header << 48,
                event_header >> 16 | (event as u64) << 32,
                age_header | age << 48,
            ],
            age >> 16,
        )
    }

    /// A payload's bytes as [`words`] lays them out: four little-endian words and the 6-byte
    /// tail.
    #[inline]
    pub fn read_words(payload: &[u8; PAYLOAD_LEN]) -> ([u64; 4], u64) {
        let (chunks, tail) = payload.as_chunks::<8>();
        let mut words = [0u64; 4];
        for (word, chunk) in words.iter_mut().zip(chunks) {
            *word = u64::from_le_bytes(*chunk);
        }
        let mut padded = [0u8; 8];
        if let Some(low) = padded.get_mut(..tail.len()) {
            low.copy_from_slice(tail);
        }
        (words, u64::from_le_bytes(padded))
    }

    /// A field header's 6 bytes as the low bytes of a word.
    const fn pad([a, b, c, d, e, f]: [u8; FIELD_HEADER_LEN]) -> [u8; 8] {
        [a, b, c, d, e, f, 0, 0]
    }

    /// The payload of a blob holding `sequence`, `event` (its bit) and `age`, byte by byte: the
    /// reference [`words`] is tested against.
    #[cfg(test)]
    pub fn payload(sequence: u64, event: u32, age: u64) -> [u8; PAYLOAD_LEN] {
        let [s0, s1, s2, s3, s4, s5] = SEQUENCE_HEADER;
        let [e0, e1, e2, e3, e4, e5] = EVENT_HEADER;
        let [a0, a1, a2, a3, a4, a5] = AGE_HEADER;
        let [q0, q1, q2, q3, q4, q5, q6, q7] = sequence.to_le_bytes();
        let [v0, v1, v2, v3] = event.to_le_bytes();
        let [g0, g1, g2, g3, g4, g5, g6, g7] = age.to_le_bytes();
        [
            s0, s1, s2, s3, s4, s5, q0, q1, q2, q3, q4, q5, q6, q7, //
            e0, e1, e2, e3, e4, e5, v0, v1, v2, v3, //
            a0, a1, a2, a3, a4, a5, g0, g1, g2, g3, g4, g5, g6, g7,
        ]
    }

    /// The sequence, event bits and age of a payload laid out as [`payload`] lays it out;
    /// `None` for any other layout.
    #[inline]
    pub fn values(payload: &[u8; PAYLOAD_LEN]) -> Option<(u64, u32, u64)> {
        let (sequence_header, rest) = payload.split_first_chunk::<FIELD_HEADER_LEN>()?;
        let (sequence, rest) = rest.split_first_chunk::<8>()?;
        let (event_header, rest) = rest.split_first_chunk::<FIELD_HEADER_LEN>()?;
        let (event, rest) = rest.split_first_chunk::<4>()?;
        let (age_header, age) = rest.split_first_chunk::<FIELD_HEADER_LEN>()?;
        let age = age.first_chunk::<8>()?;
        let canonical = *sequence_header == SEQUENCE_HEADER
            && *event_header == EVENT_HEADER
            && *age_header == AGE_HEADER;
        canonical.then(|| {
            (
                u64::from_le_bytes(*sequence),
                u32::from_le_bytes(*event),
                u64::from_le_bytes(*age),
            )
        })
    }
}

impl SavedNotification {
    /// Writes the blob at the start of `out` in the canonical layout (the bytes
    /// `saved_state::encode` of `self` would write, checksum included).
    #[inline]
    fn encode_canonical(&self, out: &mut [u8]) -> Result<usize, EncodeError> {
        let too_small = EncodeError::BufferTooSmall {
            needed: canonical::BLOB_LEN,
            available: out.len(),
        };
        let blob = out
            .first_chunk_mut::<{ canonical::BLOB_LEN }>()
            .ok_or(too_small)?;
        let (words, tail) = canonical::words(self.sequence, self.event.bit(), self.age);
        let checksum = crc32c_words::<4, 6>(canonical::HEAD_REGISTER, &words, tail);
        let (head, rest) = blob.split_first_chunk_mut::<16>().ok_or(too_small)?;
        *head = canonical::HEAD;
        let (stored, mut rest) = rest.split_first_chunk_mut::<4>().ok_or(too_small)?;
        *stored = checksum.to_le_bytes();
        for word in words {
            let (slot, after) = rest.split_first_chunk_mut::<8>().ok_or(too_small)?;
            *slot = word.to_le_bytes();
            rest = after;
        }
        let [t0, t1, t2, t3, t4, t5, _, _] = tail.to_le_bytes();
        let slot = rest.first_chunk_mut::<6>().ok_or(too_small)?;
        *slot = [t0, t1, t2, t3, t4, t5];
        Ok(canonical::BLOB_LEN)
    }
}

/// Restores a blob in the canonical layout with an intact checksum and valid values; `None`
/// for every other blob, which the generic reader then judges.
#[inline]
fn restore_canonical(saved: &[u8], now: Ticks) -> Option<NotificationTx> {
    let blob = saved.first_chunk::<{ canonical::BLOB_LEN }>()?;
    if saved.len() != canonical::BLOB_LEN {
        return None;
    }
    let (head, rest) = blob.split_first_chunk::<16>()?;
    let (stored, payload) = rest.split_first_chunk::<4>()?;
    let payload = payload.first_chunk::<{ canonical::PAYLOAD_LEN }>()?;
    if *head != canonical::HEAD {
        return None;
    }
    let (sequence, event, age) = canonical::values(payload)?;
    // The header equals HEAD, whose checksum register is a constant.
    let (words, tail) = canonical::read_words(payload);
    let computed = crc32c_words::<4, 6>(canonical::HEAD_REGISTER, &words, tail);
    if u32::from_le_bytes(*stored) != computed || sequence == 0 {
        return None;
    }
    Some(NotificationTx {
        sequence: Some(sequence),
        event: event_from_bit(event)?,
        sent_at: Ticks(now.0.saturating_sub(age)),
    })
}

/// Restores any kind-1 blob through the generic field reader: every layout a 1.x writer may
/// produce, with the precise error for a refused one.
fn restore_fields(saved: &[u8], now: Ticks) -> Result<NotificationTx, NotificationRestoreError> {
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
                let event = event_field
                    .u32()
                    .and_then(|bits| event_from_bit(bits).ok_or_else(|| event_field.invalid()))?;
                let age = fields.optional(AGE)?.map_or(Ok(0), |f| f.u64())?;
                Ok((sequence, event, age))
            })
        })
        .map_err(NotificationRestoreError)?;
    let (sequence, event, age) = decoded;
    Ok(NotificationTx {
        sequence: Some(sequence),
        event,
        sent_at: Ticks(now.0.saturating_sub(age)),
    })
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
        self.saved(now)
            .encode_canonical(out)
            .map_err(|error| error.status())
    }

    fn restore(saved: &[u8], now: Ticks) -> Result<Self, NotificationRestoreError> {
        if saved.is_empty() {
            return Ok(Self {
                sequence: None,
                event: Event::Heartbeat,
                sent_at: now,
            });
        }
        match restore_canonical(saved, now) {
            Some(tx) => Ok(tx),
            None => restore_fields(saved, now),
        }
    }
}

/// The event a kind-1 blob may name: exactly one known bit, and not a heartbeat (heartbeats
/// save as nothing, so a blob naming one is not something ferry writes, and accepting it would
/// make restore → save → restore lose its sequence).
fn event_from_bit(bits: u32) -> Option<Event> {
    [Event::PortStats]
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
            (2, false),
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

    /// The blob the generic writer produces for these values.
    fn generic_blob(sequence: u64, event: u32, age: u64) -> std::vec::Vec<u8> {
        struct Generic(u64, u32, u64);
        impl SavedState for Generic {
            const KIND: BlobKind = BlobKind::OutgoingTransaction;
            fn payload_len(&self) -> usize {
                field_len(8) + field_len(4) + field_len(8)
            }
            fn encode_payload(&self, w: &mut FieldWriter<'_>) -> Result<(), EncodeError> {
                w.u64(SEQUENCE, self.0)?;
                w.u32(EVENT, self.1)?;
                w.u64(AGE, self.2)
            }
        }
        let generic = Generic(sequence, event, age);
        let mut blob = vec![0u8; saved_state::encoded_len(&generic)];
        saved_state::encode(&generic, &mut blob).unwrap();
        blob
    }

    /// Recomputes the checksum of a (modified) blob so that it passes the envelope check.
    fn reseal(blob: &mut [u8]) {
        use crate::saved_state::crc32c_pair;
        let crc = crc32c_pair(&blob[..16], &blob[20..]);
        blob[16..20].copy_from_slice(&crc.to_le_bytes());
    }

    #[test]
    fn a_short_output_buffer_is_reported_with_the_size_needed() {
        let tx = NotificationTx {
            sequence: Some(3),
            event: Event::PortStats,
            sent_at: Ticks(0),
        };
        let mut out = [0u8; 57];
        assert_eq!(
            tx.save(Ticks(0), &mut out),
            Err(EncodeError::BufferTooSmall {
                needed: 58,
                available: 57
            }
            .status())
        );
        assert_eq!(tx.saved_len(Ticks(0)), 58);
    }

    proptest! {
        #[test]
        fn the_payload_words_are_the_payload_bytes(seq in any::<u64>(), event in any::<u32>(), age in any::<u64>()) {
            let (words, tail) = canonical::words(seq, event, age);
            let mut bytes: std::vec::Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
            bytes.extend_from_slice(&tail.to_le_bytes()[..6]);
            prop_assert_eq!(&bytes[..], &canonical::payload(seq, event, age)[..]);
            prop_assert_eq!(&generic_blob(seq, event, age)[20..], &bytes[..]);
            prop_assert_eq!(canonical::read_words(&canonical::payload(seq, event, age)), (words, tail));
        }

        #[test]
        fn the_direct_writer_writes_what_the_generic_writer_writes(
            seq in 1u64..,
            sent in 0u64..1 << 40,
            age in 0u64..1 << 40,
            slack in 0usize..8,
        ) {
            let tx = NotificationTx { sequence: Some(seq), event: Event::PortStats, sent_at: Ticks(sent) };
            let now = Ticks(sent + age);
            let mut out = vec![0xA5u8; 58 + slack];
            prop_assert_eq!(tx.save(now, &mut out), Ok(58));
            prop_assert_eq!(&out[..58], &generic_blob(seq, Event::PortStats.bit(), age)[..]);
            prop_assert!(out[58..].iter().all(|&b| b == 0xA5), "bytes after the blob untouched");
        }

        #[test]
        fn the_direct_reader_agrees_with_the_field_reader(
            seq in prop_oneof![Just(0u64), 1u64..],
            event in prop_oneof![Just(1u32), Just(2u32), Just(0u32), any::<u32>()],
            age in any::<u64>(),
            flip_at in 0usize..58,
            flip in prop_oneof![Just(0u8), any::<u8>()],
            resealed in any::<bool>(),
            cut in prop_oneof![Just(0usize), 0usize..58],
            now in any::<u64>(),
        ) {
            let mut blob = generic_blob(seq, event, age);
            blob[flip_at] ^= flip;
            if resealed {
                reseal(&mut blob);
            }
            blob.truncate(58 - cut);
            let now = Ticks(now);
            let generic = restore_fields(&blob, now);
            prop_assert_eq!(NotificationTx::restore(&blob, now), generic);
            if let Some(direct) = restore_canonical(&blob, now) {
                prop_assert_eq!(Ok(direct), generic);
            }
            let untouched = (flip == 0 || resealed && (16..20).contains(&flip_at)) && cut == 0;
            if untouched && seq != 0 && event == 1 {
                prop_assert!(restore_canonical(&blob, now).is_some(), "the writer's layout takes the direct path");
            }
        }

        #[test]
        fn tracked_notifications_round_trip(seq in 1u64.., sent in 0u64..1 << 40, age in 0u64..1 << 40) {
            let tx = NotificationTx { sequence: Some(seq), event: Event::PortStats, sent_at: Ticks(sent) };
            let now = Ticks(sent + age);
            let back = NotificationTx::restore(&saved(&tx, now), now).unwrap();
            prop_assert_eq!(back, tx);
        }
    }
}
