//! Typed channel errors for the platform to log. None of them loses a packet: by the time one
//! is returned, every packet involved has been completed, failed or kept.

use core::fmt;

use super::incoming::{BatchMismatch, IncomingId};
use super::state::StateError;
use crate::platform::TransactionKey;
use crate::status::NtStatus;

/// Something a channel refused or could not do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChannelError {
    /// The channel state does not allow it (the packet, if any, was answered with a refusal).
    State(StateError),
    /// More outstanding incoming packets than the ledger holds; the packet was answered "busy".
    IncomingFull {
        /// The ledger's capacity (the transaction quota).
        capacity: usize,
    },
    /// The outgoing ledger is full; the send stays pending in the service.
    OutgoingFull {
        /// The ledger's capacity.
        capacity: usize,
    },
    /// A deferred completion for a packet that already left the ledger (completed, or retired
    /// at Suspend). Nothing was completed.
    UnknownIncoming(IncomingId),
    /// A completion, save or restore for a transaction not in the ledger (stale or never
    /// issued). Nothing was released.
    UnknownTransaction(TransactionKey),
    /// ProcessingComplete reported a count other than the packets delivered in the batch.
    BatchMismatch(BatchMismatch),
    /// The platform's send failed; the reservation was released and the service told.
    SendFailed(NtStatus),
    /// The platform could not recreate the packet on restore; nothing was restored.
    RestoreFailed(NtStatus),
    /// The saved transaction state was refused before anything changed.
    SavedStateRefused(NtStatus),
    /// The guest's completion did not match its transaction; the transaction was released.
    CompletionMismatch,
    /// A restored transaction is already in flight (RestorePacket repeated); nothing was
    /// restored.
    DuplicateTransaction(TransactionKey),
}

impl ChannelError {
    /// The status to hand KMCL where a callback returns one.
    #[must_use]
    pub const fn status(&self) -> NtStatus {
        match self {
            Self::State(_) => NtStatus::INVALID_DEVICE_STATE,
            Self::IncomingFull { .. } | Self::OutgoingFull { .. } => {
                NtStatus::INSUFFICIENT_RESOURCES
            }
            Self::UnknownIncoming(_) | Self::UnknownTransaction(_) => NtStatus::NOT_FOUND,
            Self::DuplicateTransaction(_) => NtStatus::OBJECT_NAME_COLLISION,
            Self::BatchMismatch(_) | Self::CompletionMismatch => NtStatus::DATA_ERROR,
            Self::SendFailed(status) | Self::RestoreFailed(status) => *status,
            Self::SavedStateRefused(status) => *status,
        }
    }
}

impl From<StateError> for ChannelError {
    fn from(error: StateError) -> Self {
        Self::State(error)
    }
}

impl fmt::Display for ChannelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::State(error) => write!(f, "{error}"),
            Self::IncomingFull { capacity } => {
                write!(f, "incoming ledger full ({capacity} outstanding packets)")
            }
            Self::OutgoingFull { capacity } => {
                write!(
                    f,
                    "outgoing ledger full ({capacity} transactions in flight)"
                )
            }
            Self::UnknownIncoming(id) => write!(f, "no outstanding incoming packet {id:?}"),
            Self::UnknownTransaction(key) => write!(f, "no outstanding transaction {key:?}"),
            Self::BatchMismatch(m) => write!(
                f,
                "ProcessingComplete reported {} packets, {} were delivered",
                m.reported, m.delivered
            ),
            Self::SendFailed(status) => write!(f, "send failed: {status}"),
            Self::RestoreFailed(status) => write!(f, "packet restore failed: {status}"),
            Self::SavedStateRefused(status) => write!(f, "saved transaction refused: {status}"),
            Self::CompletionMismatch => {
                f.write_str("guest completion does not match its transaction")
            }
            Self::DuplicateTransaction(key) => {
                write!(f, "restored transaction is already in flight as {key:?}")
            }
        }
    }
}
