//! The operation stream of the `service_packet` target: one fuzz input is split (with
//! `arbitrary::Unstructured`) into guest packets, well-formed requests, channel events,
//! batch ends, deferred answers, notification sends and completions, save/restore of
//! transactions and sessions, clock steps and send failures.
//!
//! The byte format is this crate's own and simple (an op byte, then its arguments), so that
//! [`Op::encode`] can write seed inputs that decode to exactly the intended operations.

use arbitrary::Unstructured;
use ferry_core::channel::ChannelEvent;
use ferry_core::protocol::{self, EventSet, NegotiateRequest, Ping, Request, RequestBody};

/// Largest raw packet an op carries (a `u16` length prefix).
pub const MAX_RAW_LEN: usize = u16::MAX as usize;

/// How a guest completes a notification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ack {
    /// A well-formed ack naming the notification's sequence.
    Correct,
    /// A well-formed ack naming another sequence.
    WrongSequence,
    /// A completion with a failure status.
    FailureStatus,
    /// Raw bytes.
    Raw(Vec<u8>),
}

/// One step of the `service_packet` target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// A guest packet of arbitrary bytes.
    Packet(Vec<u8>),
    /// A well-formed request built from small parameters: `kind` (mod 5: negotiate, ping,
    /// get-port-stats, subscribe, unsubscribe), header `version`, transaction id and `arg`
    /// (versions offered, ping data length or event bits).
    Request {
        /// Which request.
        kind: u8,
        /// Header version.
        version: u8,
        /// Transaction id.
        transaction_id: u8,
        /// The request's parameter.
        arg: u8,
    },
    /// A channel event (index into `ChannelEvent::ALL`).
    Event(u8),
    /// `EvtVmbChannelProcessingComplete`, reporting the batch size plus `skew` (0: correct).
    ProcessingComplete(u8),
    /// Answer the deferred packet at this index (mod the number deferred so far).
    AnswerDeferred(u8),
    /// `Channel::send_pending`.
    SendPending,
    /// Raise events with these bits.
    Raise(u8),
    /// The guest completes the sent transaction at this index.
    Complete(u8, Ack),
    /// Save the sent transaction at this index (both SavePacket calls), then restore the bytes.
    SaveRestore(u8),
    /// Restore a transaction from these bytes.
    RestoreRaw(Vec<u8>),
    /// Advance the clock by this many milliseconds.
    Clock(u8),
    /// Toggle failing sends.
    ToggleSendFailure,
    /// Save the service's session and restore it.
    SessionRoundTrip,
}

const OP_COUNT: u8 = 13;

fn byte(u: &mut Unstructured<'_>) -> Option<u8> {
    u.bytes(1).ok().map(|b| b[0])
}

fn slice<'a>(u: &mut Unstructured<'a>, len: usize) -> Vec<u8> {
    let len = len.min(u.len());
    u.bytes(len).map(<[u8]>::to_vec).unwrap_or_default()
}

impl Op {
    /// The next op, or `None` when the input is used up.
    pub fn decode(u: &mut Unstructured<'_>) -> Option<Self> {
        let op = match byte(u)? % OP_COUNT {
            0 => {
                let len = u16::from_le_bytes([byte(u)?, byte(u).unwrap_or(0)]);
                Self::Packet(slice(u, usize::from(len)))
            }
            1 => Self::Request {
                kind: byte(u)?,
                version: byte(u)?,
                transaction_id: byte(u)?,
                arg: byte(u)?,
            },
            2 => Self::Event(byte(u)?),
            3 => Self::ProcessingComplete(byte(u)?),
            4 => Self::AnswerDeferred(byte(u)?),
            5 => Self::SendPending,
            6 => Self::Raise(byte(u)?),
            7 => {
                let index = byte(u)?;
                let ack = match byte(u)? % 4 {
                    0 => Ack::Correct,
                    1 => Ack::WrongSequence,
                    2 => Ack::FailureStatus,
                    _ => {
                        let len = byte(u)?;
                        Ack::Raw(slice(u, usize::from(len)))
                    }
                };
                Self::Complete(index, ack)
            }
            8 => Self::SaveRestore(byte(u)?),
            9 => {
                let len = byte(u)?;
                Self::RestoreRaw(slice(u, usize::from(len)))
            }
            10 => Self::Clock(byte(u)?),
            11 => Self::ToggleSendFailure,
            _ => Self::SessionRoundTrip,
        };
        Some(op)
    }

    /// Appends the bytes that [`Op::decode`] turns back into `self` (for writing seeds).
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Self::Packet(bytes) => {
                out.push(0);
                let len = u16::try_from(bytes.len()).expect("packet fits a u16 length");
                out.extend_from_slice(&len.to_le_bytes());
                out.extend_from_slice(bytes);
            }
            Self::Request {
                kind,
                version,
                transaction_id,
                arg,
            } => out.extend_from_slice(&[1, *kind, *version, *transaction_id, *arg]),
            Self::Event(index) => out.extend_from_slice(&[2, *index]),
            Self::ProcessingComplete(skew) => out.extend_from_slice(&[3, *skew]),
            Self::AnswerDeferred(index) => out.extend_from_slice(&[4, *index]),
            Self::SendPending => out.push(5),
            Self::Raise(bits) => out.extend_from_slice(&[6, *bits]),
            Self::Complete(index, ack) => {
                out.extend_from_slice(&[7, *index]);
                match ack {
                    Ack::Correct => out.push(0),
                    Ack::WrongSequence => out.push(1),
                    Ack::FailureStatus => out.push(2),
                    Ack::Raw(bytes) => {
                        out.push(3);
                        out.push(u8::try_from(bytes.len()).expect("raw ack fits a u8 length"));
                        out.extend_from_slice(bytes);
                    }
                }
            }
            Self::SaveRestore(index) => out.extend_from_slice(&[8, *index]),
            Self::RestoreRaw(bytes) => {
                out.push(9);
                out.push(u8::try_from(bytes.len()).expect("raw blob fits a u8 length"));
                out.extend_from_slice(bytes);
            }
            Self::Clock(ms) => out.extend_from_slice(&[10, *ms]),
            Self::ToggleSendFailure => out.push(11),
            Self::SessionRoundTrip => out.push(12),
        }
    }
}

/// The channel event an [`Op::Event`] names.
pub fn channel_event(index: u8) -> ChannelEvent {
    ChannelEvent::ALL[usize::from(index) % ChannelEvent::ALL.len()]
}

/// Ping data: a fixed pattern, sliced to the requested length.
static PING_DATA: [u8; 256] = {
    let mut data = [0u8; 256];
    let mut i = 0;
    while i < data.len() {
        data[i] = i as u8;
        i += 1;
    }
    data
};

/// Encodes the request an [`Op::Request`] describes.
pub fn well_formed_request(kind: u8, version: u8, transaction_id: u8, arg: u8) -> Vec<u8> {
    let events = EventSet::from_bits(u32::from(arg) & EventSet::ALL.bits()).expect("known bits");
    let body = match kind % 5 {
        0 => RequestBody::Negotiate(NegotiateRequest {
            min_version: u16::from(arg & 0x0F),
            max_version: u16::from(arg >> 4),
            features: 0,
        }),
        1 => RequestBody::Ping(Ping {
            nonce: u64::from(arg),
            data: &PING_DATA[..usize::from(arg)],
        }),
        2 => RequestBody::GetPortStats,
        3 => RequestBody::Subscribe(events),
        _ => RequestBody::Unsubscribe(events),
    };
    let request = Request {
        version: u16::from(version),
        transaction_id: u64::from(transaction_id),
        body,
    };
    let mut out = vec![0u8; protocol::request_len(&request)];
    match protocol::encode_request(&request, &mut out) {
        Ok(len) => out.truncate(len),
        // A request the encoder refuses (an unsupported version, a bad negotiation offer)
        // goes out as a valid one with the raw values patched in: the service must refuse it.
        Err(_) => {
            let patched = Request {
                version: protocol::PROTOCOL_VERSION_1,
                body: match body {
                    RequestBody::Negotiate(offer) => RequestBody::Negotiate(NegotiateRequest {
                        min_version: 1,
                        max_version: 1,
                        ..offer
                    }),
                    other => other,
                },
                ..request
            };
            let len = protocol::encode_request(&patched, &mut out).expect("valid request");
            out.truncate(len);
            out[..2].copy_from_slice(&request.version.to_le_bytes());
            if let RequestBody::Negotiate(offer) = body {
                // Body offset 16: min_version u16, max_version u16 (docs/protocol.md).
                out[16..18].copy_from_slice(&offer.min_version.to_le_bytes());
                out[18..20].copy_from_slice(&offer.max_version.to_le_bytes());
            }
        }
    }
    out
}
