//! A guest's session with the reference service — negotiated version, subscriptions,
//! notification sequence, events waiting to be sent — and its saved form, blob kind 3
//! (`ChannelSession`).
//!
//! KMCL saves its own channel state and asks the VSP only for per-packet state; the session is
//! VSP state KMCL never sees. The driver hands it to the VM's worker process (which owns the
//! VM's saved state) through its control device, and takes it back on the destination before
//! the channel starts. Without it a migrated guest would have to renegotiate and resubscribe.
//!
//! Payload fields (specified in `docs/saved-state/channel-session.md`):
//!
//! | tag | field | type | presence |
//! |---|---|---|---|
//! | 1 | bound port identity | 16 bytes | optional (absent: unbound) |
//! | 2 | negotiated version | u16 | optional (absent: not negotiated) |
//! | 3 | negotiated features | u32 | optional, default 0 |
//! | 4 | subscriptions | u32 event bits | optional, default none |
//! | 5 | pending events | u32 event bits | optional, default none |
//! | 6 | next sequence | u64, ≥ 1 | required |

use core::fmt;

use crate::port::PortIdentity;
use crate::protocol::{EventSet, is_supported_version};
use crate::saved_state::{
    self, BlobKind, DecodeError, EncodeError, FieldReader, FieldWriter, SavedState, Tag, field_len,
};
use crate::status::NtStatus;

const IDENTITY: Tag = Tag::new(1);
const VERSION: Tag = Tag::new(2);
const FEATURES: Tag = Tag::new(3);
const SUBSCRIPTIONS: Tag = Tag::new(4);
const PENDING: Tag = Tag::new(5);
const NEXT_SEQUENCE: Tag = Tag::new(6);

/// The first sequence number a session uses. Zero is never used, so a zeroed field is never a
/// valid sequence (the same rule Linux's VMBus request ids follow).
pub const FIRST_SEQUENCE: u64 = 1;

/// One guest's session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Session {
    /// The protocol version both sides agreed on, once negotiated.
    pub version: Option<u16>,
    /// The feature bits agreed on.
    pub features: u32,
    /// The events the guest subscribed to.
    pub subscriptions: EventSet,
    /// Subscribed events raised but not yet sent (coalesced: one pending notification per
    /// event, however often it was raised).
    pub pending: EventSet,
    /// The sequence number of the next notification.
    pub next_sequence: u64,
}

impl Default for Session {
    fn default() -> Self {
        Self::new()
    }
}

impl Session {
    /// A session before negotiation.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            version: None,
            features: 0,
            subscriptions: EventSet::EMPTY,
            pending: EventSet::EMPTY,
            next_sequence: FIRST_SEQUENCE,
        }
    }

    /// Takes the next sequence number.
    pub fn take_sequence(&mut self) -> u64 {
        let sequence = self.next_sequence;
        self.next_sequence = self.next_sequence.saturating_add(1).max(FIRST_SEQUENCE);
        sequence
    }
}

/// A session as saved, with the identity of the port it was bound to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SavedSession {
    /// The port identity the session's channel was bound to.
    pub identity: Option<PortIdentity>,
    /// The session.
    pub session: Session,
}

impl SavedState for SavedSession {
    const KIND: BlobKind = BlobKind::ChannelSession;

    fn payload_len(&self) -> usize {
        let mut len = field_len(4)
            .saturating_add(field_len(4))
            .saturating_add(field_len(4))
            .saturating_add(field_len(8));
        if self.identity.is_some() {
            len = len.saturating_add(field_len(16));
        }
        if self.session.version.is_some() {
            len = len.saturating_add(field_len(2));
        }
        len
    }

    fn encode_payload(&self, w: &mut FieldWriter<'_>) -> Result<(), EncodeError> {
        if let Some(identity) = &self.identity {
            w.bytes(IDENTITY, &identity.0)?;
        }
        if let Some(version) = self.session.version {
            w.u16(VERSION, version)?;
        }
        w.u32(FEATURES, self.session.features)?;
        w.u32(SUBSCRIPTIONS, self.session.subscriptions.bits())?;
        w.u32(PENDING, self.session.pending.bits())?;
        w.u64(NEXT_SEQUENCE, self.session.next_sequence)
    }
}

impl SavedSession {
    /// Decodes and validates a kind-3 blob (untrusted).
    ///
    /// # Errors
    ///
    /// The blob's [`DecodeError`]: envelope, checksum, framing, a missing sequence, an
    /// unsupported version, unknown event bits or a zero sequence.
    pub fn decode(blob: &[u8]) -> Result<Self, DecodeError> {
        saved_state::open(blob, BlobKind::ChannelSession)?.read(read_session)
    }
}

fn read_session(fields: &mut FieldReader<'_>) -> Result<SavedSession, DecodeError> {
    let identity = read_identity(fields)?;
    let version = read_version(fields)?;
    let features = fields.optional(FEATURES)?.map_or(Ok(0), |f| f.u32())?;
    let subscriptions = event_set(fields.optional(SUBSCRIPTIONS)?)?;
    let pending = event_set(fields.optional(PENDING)?)?;
    let next_sequence = read_next_sequence(fields)?;
    Ok(SavedSession {
        identity,
        session: Session {
            version,
            features,
            subscriptions,
            pending,
            next_sequence,
        },
    })
}

fn read_identity(fields: &mut FieldReader<'_>) -> Result<Option<PortIdentity>, DecodeError> {
    match fields.optional(IDENTITY)? {
        Some(field) => Ok(Some(PortIdentity(*field.array::<16>()?))),
        None => Ok(None),
    }
}

fn read_version(fields: &mut FieldReader<'_>) -> Result<Option<u16>, DecodeError> {
    let Some(field) = fields.optional(VERSION)? else {
        return Ok(None);
    };
    let version = field.u16()?;
    if is_supported_version(version) {
        Ok(Some(version))
    } else {
        Err(field.invalid())
    }
}

fn read_next_sequence(fields: &mut FieldReader<'_>) -> Result<u64, DecodeError> {
    let field = fields.require(NEXT_SEQUENCE)?;
    let next_sequence = field.u64()?;
    if next_sequence < FIRST_SEQUENCE {
        return Err(field.invalid());
    }
    Ok(next_sequence)
}

fn event_set(field: Option<saved_state::Field<'_>>) -> Result<EventSet, DecodeError> {
    match field {
        None => Ok(EventSet::EMPTY),
        Some(field) => {
            let bits = field.u32()?;
            EventSet::from_bits(bits).ok_or_else(|| field.invalid())
        }
    }
}

/// Why a saved session was not installed. Nothing changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionRestoreError {
    /// The blob did not decode.
    Decode(DecodeError),
    /// The blob belongs to a channel bound to another port identity (another VM's NIC).
    ForeignIdentity {
        /// The identity this channel is bound to.
        ours: PortIdentity,
        /// The identity in the blob.
        theirs: PortIdentity,
    },
}

impl SessionRestoreError {
    /// The status for the caller (the driver's control device).
    #[must_use]
    pub const fn status(&self) -> NtStatus {
        match self {
            Self::Decode(error) => error.status(),
            Self::ForeignIdentity { .. } => NtStatus::INVALID_PARAMETER,
        }
    }
}

impl fmt::Display for SessionRestoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Decode(error) => write!(f, "saved session refused: {error}"),
            Self::ForeignIdentity { ours, theirs } => write!(
                f,
                "saved session belongs to port identity {theirs:?}, this channel serves {ours:?}"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::vec;

    fn blob(saved: &SavedSession) -> std::vec::Vec<u8> {
        let mut out = vec![0u8; saved_state::encoded_len(saved)];
        assert_eq!(saved_state::encode(saved, &mut out), Ok(out.len()));
        out
    }

    fn event_sets() -> impl Strategy<Value = EventSet> {
        (0u32..4).prop_map(|bits| EventSet::from_bits(bits).unwrap())
    }

    proptest! {
        #[test]
        fn sessions_round_trip(
            identity in proptest::option::of(any::<[u8; 16]>()),
            negotiated in any::<bool>(),
            features in any::<u32>(),
            subscriptions in event_sets(),
            pending in event_sets(),
            next_sequence in 1u64..,
        ) {
            let saved = SavedSession {
                identity: identity.map(PortIdentity),
                session: Session {
                    version: negotiated.then_some(1),
                    features,
                    subscriptions,
                    pending,
                    next_sequence,
                },
            };
            prop_assert_eq!(SavedSession::decode(&blob(&saved)), Ok(saved));
        }
    }

    #[test]
    fn a_fresh_session_starts_at_sequence_one_and_never_hands_out_zero() {
        let mut session = Session::new();
        assert_eq!(session.take_sequence(), 1);
        session.next_sequence = u64::MAX;
        assert_eq!(session.take_sequence(), u64::MAX);
        assert_eq!(
            session.take_sequence(),
            u64::MAX,
            "saturates, never wraps to 0"
        );
    }

    #[test]
    fn truncated_and_bit_flipped_sessions_are_refused() {
        let saved = SavedSession {
            identity: Some(PortIdentity([7; 16])),
            session: Session {
                version: Some(1),
                ..Session::new()
            },
        };
        let good = blob(&saved);
        for cut in 0..good.len() {
            assert!(SavedSession::decode(&good[..cut]).is_err(), "cut at {cut}");
        }
        for bit in 0..good.len() * 8 {
            let mut bad = good.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            assert!(SavedSession::decode(&bad).is_err(), "bit {bit}");
        }
    }

    #[test]
    fn a_session_without_a_sequence_is_refused() {
        struct NoSequence;
        impl SavedState for NoSequence {
            const KIND: BlobKind = BlobKind::ChannelSession;
            fn payload_len(&self) -> usize {
                field_len(4)
            }
            fn encode_payload(&self, w: &mut FieldWriter<'_>) -> Result<(), EncodeError> {
                w.u32(FEATURES, 0)
            }
        }
        let mut out = vec![0u8; saved_state::encoded_len(&NoSequence)];
        saved_state::encode(&NoSequence, &mut out).unwrap();
        let err = SavedSession::decode(&out).unwrap_err();
        assert!(
            matches!(
                err.kind(),
                saved_state::DecodeErrorKind::MissingField { tag: 6 }
            ),
            "{err}"
        );
    }
}
