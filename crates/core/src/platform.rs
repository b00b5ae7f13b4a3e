//! [`Platform`]: everything core needs from outside, and nothing more.
//!
//! Core decides; a platform carries decisions out. `ferry-platform-wdk` implements this trait
//! over KMCL (`vmbkmclr.sys`), WFP (`fwpkclnt.sys`) and ntoskrnl; `ferry-platform-mock`
//! implements it over a simulated Hyper-V host. Each method names the call it stands for.
//!
//! Handles are associated types so that core never sees a raw pointer. Handles that must be
//! consumed exactly once ([`Platform::IncomingPacket`], [`Platform::PortSaveCompletion`]) are
//! taken by value: a platform should make them neither `Copy` nor `Clone`, and then the type
//! system rules out completing one twice.

use crate::lock::RawLock;
use crate::status::NtStatus;

/// Identifies one host→guest transaction in a channel's outgoing ledger.
///
/// The platform stores it on the packet object (`VmbPacketSetPointer`) and hands it back when
/// the guest completes the packet or KMCL asks to save it. The generation makes a key from a
/// slot that has since been reused fail lookup instead of finding the wrong transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TransactionKey {
    /// Slot index in the outgoing ledger.
    pub slot: u16,
    /// Generation of the slot when the transaction was inserted.
    pub generation: u16,
}

impl TransactionKey {
    /// Packs the key into a pointer-sized integer (for `VmbPacketSetPointer`).
    #[must_use]
    pub const fn to_bits(self) -> u32 {
        ((self.generation as u32) << 16) | self.slot as u32
    }

    /// Reverses [`TransactionKey::to_bits`].
    #[must_use]
    pub const fn from_bits(bits: u32) -> Self {
        Self {
            slot: (bits & 0xFFFF) as u16,
            generation: (bits >> 16) as u16,
        }
    }
}

/// A monotonic time stamp in 100 ns units (`KeQueryInterruptTime` on Windows).
///
/// Only differences between two readings of the same host mean anything: saved state never
/// carries a raw [`Ticks`] across hosts, only ages.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ticks(pub u64);

impl Ticks {
    /// 100 ns ticks in one second.
    pub const PER_SECOND: u64 = 10_000_000;

    /// `self - earlier`, or zero if `earlier` is later (a clock that went backwards is treated
    /// as no time passing).
    #[must_use]
    pub const fn saturating_since(self, earlier: Ticks) -> u64 {
        self.0.saturating_sub(earlier.0)
    }
}

/// What core needs from the host it runs on.
///
/// Methods are called without any core lock held, so an implementation may call back into core
/// (the simulated host does, to model synchronous completion).
pub trait Platform {
    /// A channel (`VMBCHANNEL`).
    type Channel;
    /// An incoming packet awaiting completion (`VMBPACKETCOMPLETION`). Consumed by
    /// [`Platform::complete_packet`] or [`Platform::fail_packet`].
    type IncomingPacket;
    /// An outgoing packet object (`VMBPACKET`) carrying a host→guest transaction.
    type OutgoingPacket;
    /// The completion context of a vSwitch runtime-state save that returned `STATUS_PENDING`.
    type PortSaveCompletion;
    /// The lock safe where callbacks run (a spin lock raising to `DISPATCH_LEVEL` on Windows).
    type Lock: RawLock;

    /// Completes an incoming packet, sending `response` to the guest as the completion payload.
    ///
    /// KMCL: `VmbChannelPacketComplete(packet, response, len)`.
    fn complete_packet(&self, packet: Self::IncomingPacket, response: &[u8]);

    /// Fails an incoming packet so malformed that the channel's queue should stop.
    ///
    /// KMCL: `VmbChannelPacketFail(packet)`. Whether KMCL still expects a completion after a
    /// fail is unconfirmed (`kmcl.md` §2.3); core treats the packet as retired either way and a
    /// platform that learns otherwise changes only its implementation of this method.
    fn fail_packet(&self, packet: Self::IncomingPacket);

    /// Sends a host→guest transaction that stays outstanding until the guest completes it.
    ///
    /// KMCL: `VmbPacketAllocate`, `VmbPacketSetPointer(key)`, `VmbPacketSetCompletionRoutine`,
    /// `VmbPacketSend(.., VMBUS_CHANNEL_FORMAT_FLAG_WAIT_FOR_COMPLETION)`. The completion
    /// routine hands `key` back to core.
    ///
    /// # Errors
    ///
    /// The status of the failed allocation or send; core then releases the ledger entry.
    fn send_transaction(
        &self,
        channel: &Self::Channel,
        key: TransactionKey,
        payload: &[u8],
    ) -> Result<Self::OutgoingPacket, NtStatus>;

    /// Recreates an outgoing packet on the destination host from KMCL's own saved state.
    ///
    /// KMCL, inside `EvtVmbChannelRestorePacket`: `VmbPacketAllocate`,
    /// `VmbPacketRestore(packet, library_state)`, `VmbPacketSetPointer(key)`.
    ///
    /// # Errors
    ///
    /// The status of the failed allocation or restore; core then restores nothing.
    fn restore_transaction(
        &self,
        channel: &Self::Channel,
        key: TransactionKey,
        library_state: &[u8],
    ) -> Result<Self::OutgoingPacket, NtStatus>;

    /// Finishes a vSwitch runtime-state save that returned `STATUS_PENDING`.
    ///
    /// WFP: `FwpsvSwitchNotifyComplete0(completion, status, 0, NULL)`. `status` is never
    /// `STATUS_PENDING`.
    fn complete_port_save(&self, completion: Self::PortSaveCompletion, status: NtStatus);

    /// The monotonic clock (`KeQueryInterruptTime`).
    fn now(&self) -> Ticks;
}

#[cfg(test)]
mod tests {
    use super::{Ticks, TransactionKey};

    #[test]
    fn transaction_key_round_trips_through_bits() {
        for key in [
            TransactionKey {
                slot: 0,
                generation: 0,
            },
            TransactionKey {
                slot: 0xFFFF,
                generation: 1,
            },
            TransactionKey {
                slot: 7,
                generation: 0xFFFF,
            },
        ] {
            assert_eq!(TransactionKey::from_bits(key.to_bits()), key);
        }
        assert_ne!(
            TransactionKey {
                slot: 1,
                generation: 2
            }
            .to_bits(),
            TransactionKey {
                slot: 2,
                generation: 1
            }
            .to_bits()
        );
    }

    #[test]
    fn ticks_never_go_negative() {
        assert_eq!(Ticks(5).saturating_since(Ticks(9)), 0);
        assert_eq!(Ticks(9).saturating_since(Ticks(5)), 4);
    }
}
