//! The KMCL server channel: life-cycle state machine, packet ledgers, and the [`Channel`] that
//! drives them from the platform's callbacks.
//!
//! | module | job |
//! |---|---|
//! | [`state`] | the pure, table-driven life-cycle machine |
//! | [`diagram`] | the machine as a Mermaid diagram, generated from its table |
//! | [`slab`] | fixed-capacity storage with generation-checked keys |
//! | [`incoming`] | outstanding `VMBPACKETCOMPLETION`s and batch accounting |
//! | [`outgoing`] | host→guest transactions awaiting the guest's completion |
//! | [`identity`] | the outgoing ledger's index by transaction identity (duplicate restores) |
//! | [`service`] | the [`ChannelService`] trait a VSP protocol implements |
//! | [`endpoint`] | [`Channel`]: the above behind one lock, never held across a platform call |
//! | [`error`] | [`ChannelError`] |

pub mod diagram;
pub mod endpoint;
pub mod error;
pub mod identity;
pub mod incoming;
pub mod outgoing;
pub mod service;
pub mod slab;
pub mod state;

pub use endpoint::{Channel, ChannelStats, PacketOutcome, SavePacketAnswer};
pub use error::ChannelError;
pub use service::{ChannelService, Disposition, Refusal, TransactionState};
pub use state::{ChannelEvent, ChannelState};

#[cfg(test)]
mod tests;
