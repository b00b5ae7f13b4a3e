//! Per-port runtime state of the WFP vSwitch callout: counters, a bounded flow table and a
//! token-bucket rate limiter per direction, kept in the classify path and saved / restored
//! per port through the vSwitch runtime-state callbacks.
//!
//! | module | job |
//! |---|---|
//! | [`types`] | port ids and identities, flow keys, frames, verdicts, rate-limit config |
//! | [`counters`] | per-port and per-flow counters |
//! | [`flow`] | the fixed-capacity flow table and its eviction policy |
//! | [`rate`] | the overflow-free token bucket |
//! | [`state`] | one port's state and its classify decision |
//! | [`table`] | the port table: directory and per-slot locks |
//! | [`pending`] | saves answered with `STATUS_PENDING`, finished later |
//! | [`saved`] | the port runtime-state blob (saved-state kind 2) |
//!
//! Classify of one frame: the frame's direction picks one of the port's two token buckets
//! (rate limits are per port *and* per direction, so a VM flooding out cannot starve what it
//! receives), whose verdict is final; the flow table records the frame under its 5-tuple either
//! way; the port counters count it as permitted or dropped. An unknown port is an error the
//! caller answers by permitting the frame.
//!
//! The callbacks run at up to `DISPATCH_LEVEL`: nothing here allocates, blocks or calls the
//! platform while holding a lock. `NDIS_SWITCH_PARAMETERS` passed to the callbacks may show
//! the switch's initial state (`wfp-vswitch.md` §2.2), so nothing here reads it: a port is
//! known by its [`SwitchPortId`] and [`PortIdentity`] only.

pub mod counters;
pub mod flow;
pub mod pending;
pub mod rate;
pub mod saved;
pub mod state;
pub mod table;
pub mod types;

use crate::saved_state::EncodeError;
use crate::status::NtStatus;
use core::fmt;

pub use counters::{DirectionCounters, PortCounters, TrafficCounters};
pub use flow::{FlowEntry, FlowTable, PROBE_WINDOW};
pub use pending::{PendingSaves, SAVE_CANCELLED_STATUS};
pub use rate::TokenBucket;
pub use saved::RestoreError;
pub use state::PortState;
pub use table::PortTable;
pub use types::{
    AddressFamily, Direction, DropReason, FlowKey, FrameInfo, PortConfig, PortIdentity, RateLimit,
    SwitchPortId, Verdict,
};

/// Why a port-table operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PortError {
    /// No live port has this id.
    UnknownPort(SwitchPortId),
    /// No live port carries the requested identity.
    UnknownIdentity,
    /// A port with this id exists already.
    DuplicatePort(SwitchPortId),
    /// Every port slot is in use.
    TableFull,
    /// A rate limit with a rate but no burst.
    InvalidConfig,
    /// The output buffer is shorter than the blob.
    BufferTooSmall {
        /// The blob's exact length.
        needed: usize,
    },
    /// The port's state cannot be encoded (a flow table beyond the format's payload limit).
    Encode(EncodeError),
    /// A blob that cannot be restored onto the port; the port was left untouched.
    Restore(RestoreError),
}

impl PortError {
    /// The `NTSTATUS` a vSwitch callback returns for this error.
    #[must_use]
    pub const fn status(&self) -> NtStatus {
        match self {
            Self::UnknownPort(_) | Self::UnknownIdentity => NtStatus::NOT_FOUND,
            Self::DuplicatePort(_) => NtStatus::OBJECT_NAME_COLLISION,
            Self::TableFull => NtStatus::INSUFFICIENT_RESOURCES,
            Self::InvalidConfig => NtStatus::INVALID_PARAMETER,
            Self::BufferTooSmall { .. } => NtStatus::BUFFER_TOO_SMALL,
            Self::Encode(error) => error.status(),
            Self::Restore(error) => error.status(),
        }
    }
}

impl fmt::Display for PortError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownPort(id) => write!(f, "no switch port {}", id.0),
            Self::UnknownIdentity => f.write_str("no switch port serves that NIC identity"),
            Self::DuplicatePort(id) => write!(f, "switch port {} exists already", id.0),
            Self::TableFull => f.write_str("the port table is full"),
            Self::InvalidConfig => f.write_str("a rate limit has a rate but no burst"),
            Self::BufferTooSmall { needed } => {
                write!(f, "the port's saved state needs {needed} bytes")
            }
            Self::Encode(error) => write!(f, "port state not saved: {error}"),
            Self::Restore(error) => write!(f, "port state not restored: {error}"),
        }
    }
}
