//! The outgoing ledger: host→guest transactions awaiting the guest's completion, each with the
//! VSP's own context — what `EvtVmbChannelSavePacket` saves and `EvtVmbChannelRestorePacket`
//! rebuilds.
//!
//! Sending is two-phase because the platform call happens without the channel lock: `reserve`
//! a slot with the context (under the lock), send (no lock), then `commit` the packet handle
//! (under the lock) or `abort` if the send failed. The guest may complete the packet on another
//! CPU before `commit` runs; `complete` then releases the reserved entry and the late `commit`
//! finds its key stale and reports it, so the entry is released exactly once either way.
//!
//! Beside the entries the ledger keeps an [`IdentityIndex`]: the identity the service gave
//! each transaction ([`crate::channel::ChannelService::transaction_identity`]), so that
//! [`OutgoingLedger::find_identity`] — the duplicate check of a repeated RestorePacket — takes
//! constant expected time instead of a pass over the ledger. The index costs 12 bytes per slot
//! of capacity, fixed at compile time.

use super::identity::IdentityIndex;
use super::slab::{Slab, SlotKey};
use crate::platform::TransactionKey;

/// One outstanding host→guest transaction.
#[derive(Debug)]
pub struct OutgoingEntry<H, C> {
    /// The packet object, once the send returned it.
    pub packet: Option<H>,
    /// The VSP's context for the transaction.
    pub context: C,
}

/// Converts between the ledger's slot keys and the key the platform stores on the packet.
#[must_use]
pub const fn transaction_key(key: SlotKey) -> TransactionKey {
    TransactionKey {
        slot: key.slot,
        generation: key.generation,
    }
}

const fn slot_key(key: TransactionKey) -> SlotKey {
    SlotKey {
        slot: key.slot,
        generation: key.generation,
    }
}

/// Outstanding host→guest transactions, at most `N`.
pub struct OutgoingLedger<H, C, const N: usize> {
    entries: Slab<OutgoingEntry<H, C>, N>,
    /// The identity of every entry that has one, by slot (an entry leaves the index when it
    /// leaves the slab).
    identities: IdentityIndex<N>,
}

impl<H, C, const N: usize> Default for OutgoingLedger<H, C, N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<H, C, const N: usize> OutgoingLedger<H, C, N> {
    /// An empty ledger.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            entries: Slab::new(),
            identities: IdentityIndex::new(),
        }
    }

    /// Transactions awaiting completion (including reserved ones).
    #[must_use]
    pub const fn outstanding(&self) -> usize {
        self.entries.len()
    }

    /// The fixed capacity.
    #[must_use]
    pub const fn capacity(&self) -> usize {
        N
    }

    /// Reserves a slot for a transaction about to be sent or restored; `identity` is the
    /// service's name for it (`None`: it has none and is never found by
    /// [`OutgoingLedger::find_identity`]).
    ///
    /// # Errors
    ///
    /// Gives the context back when the ledger is full.
    pub fn reserve(&mut self, context: C, identity: Option<u64>) -> Result<TransactionKey, C> {
        let key = self
            .entries
            .insert(OutgoingEntry {
                packet: None,
                context,
            })
            .map_err(|entry| entry.context)?;
        // Every removal below unindexes its slot, so the slot is not indexed; unindexing it
        // again costs one load and keeps the index exact even if that ever changed.
        self.identities.remove(key.slot);
        if let Some(identity) = identity {
            let _indexed = self.identities.insert(key.slot, identity);
        }
        Ok(transaction_key(key))
    }

    /// The outstanding transaction reserved with `identity` (the lowest slot, should several
    /// share it) — what a scan in slot order comparing identities would find, in constant
    /// expected time.
    #[must_use]
    pub fn find_identity(&self, identity: u64) -> Option<TransactionKey> {
        let slot = self.identities.find(identity)?;
        self.entries.key_at(usize::from(slot)).map(transaction_key)
    }

    /// The identity the transaction `key` was reserved with.
    #[must_use]
    pub fn identity(&self, key: TransactionKey) -> Option<u64> {
        self.entries.get(slot_key(key))?;
        self.identities.identity_of(key.slot)
    }

    /// Records the packet the platform created for a reserved transaction.
    ///
    /// # Errors
    ///
    /// Gives `packet` back if the transaction is no longer in the ledger (the guest completed
    /// it before the commit, or it was retired).
    pub fn commit(&mut self, key: TransactionKey, packet: H) -> Result<(), H> {
        match self.entries.get_mut(slot_key(key)) {
            Some(entry) if entry.packet.is_none() => {
                entry.packet = Some(packet);
                Ok(())
            }
            _ => Err(packet),
        }
    }

    /// Releases a reservation whose send failed.
    pub fn abort(&mut self, key: TransactionKey) -> Option<C> {
        self.complete(key).map(|entry| entry.context)
    }

    /// The context of an outstanding transaction.
    #[must_use]
    pub fn context(&self, key: TransactionKey) -> Option<&C> {
        self.entries.get(slot_key(key)).map(|entry| &entry.context)
    }

    /// Releases a transaction the guest completed; `None` if the key is stale.
    pub fn complete(&mut self, key: TransactionKey) -> Option<OutgoingEntry<H, C>> {
        let entry = self.entries.remove(slot_key(key))?;
        self.identities.remove(key.slot);
        Some(entry)
    }

    /// Releases the transaction in slot `index`, if any (retirement when the guest is gone).
    pub fn release_at(&mut self, index: usize) -> Option<(TransactionKey, OutgoingEntry<H, C>)> {
        let (key, entry) = self.entries.remove_at(index)?;
        self.identities.remove(key.slot);
        Some((transaction_key(key), entry))
    }

    /// The outstanding transactions with their keys.
    pub fn iter(&self) -> impl Iterator<Item = (TransactionKey, &OutgoingEntry<H, C>)> {
        self.entries
            .iter()
            .map(|(key, entry)| (transaction_key(key), entry))
    }
}

#[cfg(test)]
mod tests {
    use super::OutgoingLedger;

    #[test]
    fn reserve_commit_complete_releases_once() {
        let mut ledger = OutgoingLedger::<&str, u64, 2>::new();
        let key = ledger.reserve(7, None).unwrap();
        assert_eq!(ledger.context(key), Some(&7));
        ledger.commit(key, "pkt").unwrap();
        let entry = ledger.complete(key).unwrap();
        assert_eq!((entry.packet, entry.context), (Some("pkt"), 7));
        assert!(
            ledger.complete(key).is_none(),
            "a second completion finds nothing"
        );
    }

    #[test]
    fn completion_before_commit_makes_the_commit_report_stale() {
        let mut ledger = OutgoingLedger::<&str, u64, 2>::new();
        let key = ledger.reserve(1, None).unwrap();
        let early = ledger.complete(key).unwrap();
        assert_eq!(early.packet, None);
        assert_eq!(ledger.commit(key, "pkt"), Err("pkt"));
        assert_eq!(ledger.outstanding(), 0);
    }

    #[test]
    fn full_ledger_gives_the_context_back_and_abort_frees() {
        let mut ledger = OutgoingLedger::<(), u8, 1>::new();
        let key = ledger.reserve(1, None).unwrap();
        assert_eq!(ledger.reserve(2, None), Err(2));
        assert_eq!(ledger.abort(key), Some(1));
        assert!(ledger.reserve(3, None).is_ok());
    }

    #[test]
    fn identities_leave_the_index_with_their_transactions() {
        let mut ledger = OutgoingLedger::<u8, &str, 4>::new();
        let a = ledger.reserve("a", Some(10)).unwrap();
        let b = ledger.reserve("b", Some(11)).unwrap();
        let c = ledger.reserve("c", Some(12)).unwrap();
        let anonymous = ledger.reserve("d", None).unwrap();
        assert_eq!(ledger.find_identity(11), Some(b));
        assert_eq!(ledger.identity(c), Some(12));
        assert_eq!(ledger.identity(anonymous), None);
        ledger.complete(a).unwrap();
        assert_eq!(ledger.abort(b), Some("b"));
        let (released, _) = ledger.release_at(usize::from(c.slot)).unwrap();
        assert_eq!(released, c);
        for (gone, identity) in [(a, 10), (b, 11), (c, 12)] {
            assert_eq!(ledger.find_identity(identity), None);
            assert_eq!(ledger.identity(gone), None, "stale key");
        }
        // A reused slot carries only its new identity.
        let e = ledger.reserve("e", Some(13)).unwrap();
        assert!([a.slot, b.slot, c.slot].contains(&e.slot));
        assert_eq!(ledger.find_identity(13), Some(e));
        assert_eq!(ledger.find_identity(12), None);
    }

    #[test]
    fn a_committed_key_cannot_be_committed_twice() {
        let mut ledger = OutgoingLedger::<u8, (), 1>::new();
        let key = ledger.reserve((), None).unwrap();
        ledger.commit(key, 1).unwrap();
        assert_eq!(ledger.commit(key, 2), Err(2));
        assert_eq!(ledger.complete(key).unwrap().packet, Some(1));
    }
}
