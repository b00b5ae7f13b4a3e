//! The incoming ledger: every `VMBPACKETCOMPLETION` between `EvtVmbChannelProcessPacket` and
//! its completion.
//!
//! Capacity is the channel's transaction quota (`VmbChannelSetTransactionQuota`), so KMCL never
//! has more outstanding packets than the ledger holds; if it did, the channel answers the extra
//! packet at once with a "busy" response instead of losing it. Packets leave the ledger by
//! value, so each one can be completed once only; a key kept after its packet left (a deferred
//! completion racing Suspend's retirement) finds nothing.
//!
//! The ledger also does the batch accounting checked against `EvtVmbChannelProcessingComplete`:
//! the number of packets delivered since the previous ProcessingComplete.

use super::slab::{Slab, SlotKey};

/// Names a packet held in the ledger (for a deferred completion).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IncomingId(pub SlotKey);

/// One outstanding incoming packet.
#[derive(Debug)]
pub struct IncomingEntry<T, R> {
    /// The platform's completion handle.
    pub packet: T,
    /// What the service needs to answer the packet if it is retired unanswered (e.g. the
    /// request's transaction id).
    pub request: R,
}

/// A ProcessingComplete whose count disagrees with the packets delivered in the batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchMismatch {
    /// Packets core saw delivered since the previous ProcessingComplete.
    pub delivered: u32,
    /// The count KMCL reported.
    pub reported: u32,
}

/// The ledger of outstanding incoming packets, `N` = the transaction quota.
pub struct IncomingLedger<T, R, const N: usize> {
    entries: Slab<IncomingEntry<T, R>, N>,
    batch_delivered: u32,
}

impl<T, R, const N: usize> Default for IncomingLedger<T, R, N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T, R, const N: usize> IncomingLedger<T, R, N> {
    /// An empty ledger.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            entries: Slab::new(),
            batch_delivered: 0,
        }
    }

    /// Packets awaiting completion.
    #[must_use]
    pub const fn outstanding(&self) -> usize {
        self.entries.len()
    }

    /// The capacity (transaction quota).
    #[must_use]
    pub const fn capacity(&self) -> usize {
        N
    }

    /// Counts one delivered packet towards the current batch.
    pub fn note_delivered(&mut self) {
        self.batch_delivered = self.batch_delivered.saturating_add(1);
    }

    /// Closes the current batch (ProcessingComplete) and returns its size.
    ///
    /// # Errors
    ///
    /// [`BatchMismatch`] when `reported` differs from what was delivered; the batch is closed
    /// either way.
    pub fn close_batch(&mut self, reported: u32) -> Result<u32, BatchMismatch> {
        let delivered = core::mem::take(&mut self.batch_delivered);
        if delivered == reported {
            Ok(delivered)
        } else {
            Err(BatchMismatch {
                delivered,
                reported,
            })
        }
    }

    /// Holds `packet` until it is completed.
    ///
    /// # Errors
    ///
    /// Gives the entry back when the ledger is full; the caller must still complete it.
    pub fn hold(&mut self, packet: T, request: R) -> Result<IncomingId, IncomingEntry<T, R>> {
        self.entries
            .insert(IncomingEntry { packet, request })
            .map(IncomingId)
    }

    /// Takes the packet `id` names for completion; `None` if it already left (completed or
    /// retired).
    pub fn release(&mut self, id: IncomingId) -> Option<IncomingEntry<T, R>> {
        self.entries.remove(id.0)
    }

    /// Takes the packet in slot `index`, if any: Suspend's retirement walks `0..capacity()`
    /// taking one at a time so no lock is held while completing.
    pub fn release_at(&mut self, index: usize) -> Option<IncomingEntry<T, R>> {
        self.entries.remove_at(index).map(|(_, entry)| entry)
    }
}

#[cfg(test)]
mod tests {
    use super::{BatchMismatch, IncomingLedger};

    #[test]
    fn each_packet_leaves_once() {
        let mut ledger = IncomingLedger::<&str, u64, 4>::new();
        let a = ledger.hold("a", 1).unwrap();
        let b = ledger.hold("b", 2).unwrap();
        assert_eq!(ledger.outstanding(), 2);
        assert_eq!(ledger.release(a).map(|e| e.packet), Some("a"));
        assert!(
            ledger.release(a).is_none(),
            "second completion must find nothing"
        );
        // Retirement takes the rest, including b, exactly once.
        let retired: std::vec::Vec<_> = (0..ledger.capacity())
            .filter_map(|i| ledger.release_at(i))
            .map(|e| (e.packet, e.request))
            .collect();
        assert_eq!(retired, [("b", 2)]);
        assert!(ledger.release(b).is_none());
        assert_eq!(ledger.outstanding(), 0);
    }

    #[test]
    fn full_ledger_hands_the_packet_back() {
        let mut ledger = IncomingLedger::<u8, (), 1>::new();
        ledger.hold(1, ()).unwrap();
        let back = ledger.hold(2, ()).unwrap_err();
        assert_eq!(back.packet, 2);
    }

    #[test]
    fn batches_count_deliveries_between_processing_completes() {
        let mut ledger = IncomingLedger::<u8, (), 1>::new();
        ledger.note_delivered();
        ledger.note_delivered();
        assert_eq!(ledger.close_batch(2), Ok(2));
        ledger.note_delivered();
        assert_eq!(
            ledger.close_batch(3),
            Err(BatchMismatch {
                delivered: 1,
                reported: 3
            })
        );
        // The mismatched batch is closed too.
        assert_eq!(ledger.close_batch(0), Ok(0));
    }
}
