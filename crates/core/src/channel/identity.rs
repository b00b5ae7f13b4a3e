//! The outgoing ledger's index by transaction identity: which slot holds the transaction a
//! service names by a `u64` ([`crate::channel::ChannelService::transaction_identity`]), so that
//! a repeated RestorePacket is found without comparing it with every transaction in flight.
//!
//! A chained hash table threaded through the ledger's own slots: `N` bucket heads, and per
//! slot the identity it holds and the next slot of its bucket. Memory is fixed at compile
//! time — 12 bytes per slot of capacity (an 8-byte identity, a 2-byte link, a 2-byte bucket
//! head) — and nothing is allocated. With at most `N` identities in `N` buckets a chain is
//! short on average, so insert, remove and lookup take constant expected time; identities
//! chosen to collide (saved state is untrusted) make a chain as long as the ledger, which is
//! the linear cost of the scan this index replaces, never more.
//!
//! The bucket of an identity is the high half of a Fibonacci hash scaled onto `0..N`
//! (multiply by 2⁶⁴/φ, then `(h × N) >> 64`): consecutive identities, such as sequence
//! numbers, land in distinct buckets.

/// End of a chain / empty bucket.
const END: u16 = u16::MAX;
/// `next` of a slot whose entry has no identity (or no entry).
const NOT_INDEXED: u16 = u16::MAX - 1;

/// 2⁶⁴ divided by the golden ratio, odd: multiplying by it permutes `u64`.
const FIBONACCI: u64 = 0x9E37_79B9_7F4A_7C15;

/// Maps identities to the slots (`0..N`, `N` < 65,534) that hold them.
pub struct IdentityIndex<const N: usize> {
    /// Per bucket: the first slot of its chain, or [`END`].
    heads: [u16; N],
    /// Per slot: the next slot of its chain, [`END`], or [`NOT_INDEXED`].
    next: [u16; N],
    /// Per slot: the identity it holds (meaningful only while indexed).
    identities: [u64; N],
}

impl<const N: usize> Default for IdentityIndex<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> IdentityIndex<N> {
    /// Compile-time check that slot numbers stay clear of the two markers.
    const CAPACITY_FITS: () = assert!(N < NOT_INDEXED as usize, "index capacity must be < 65534");

    /// An index of nothing.
    #[must_use]
    pub const fn new() -> Self {
        let () = Self::CAPACITY_FITS;
        Self {
            heads: [END; N],
            next: [NOT_INDEXED; N],
            identities: [0; N],
        }
    }

    /// The bucket of `identity`, in `0..N` (`0` when `N` is `0`, where no bucket exists and
    /// every access below finds nothing).
    #[must_use]
    pub fn bucket(identity: u64) -> usize {
        let mixed = u128::from(identity.wrapping_mul(FIBONACCI));
        // Both factors are below 2⁶⁴, so the product fits and the high half is below N.
        let scaled = mixed.wrapping_mul(N as u128).wrapping_shr(64);
        usize::try_from(scaled).unwrap_or(0)
    }

    /// Records that `slot` holds `identity`.
    ///
    /// Returns `false` and changes nothing if `slot` is out of range or already indexed (the
    /// ledger removes an entry's identity before its slot is reused, so neither happens).
    pub fn insert(&mut self, slot: u16, identity: u64) -> bool {
        let index = usize::from(slot);
        let (Some(head), Some(next), Some(held)) = (
            self.heads.get_mut(Self::bucket(identity)),
            self.next.get_mut(index),
            self.identities.get_mut(index),
        ) else {
            return false;
        };
        if *next != NOT_INDEXED {
            return false;
        }
        *next = *head;
        *held = identity;
        *head = slot;
        true
    }

    /// Forgets the identity of `slot`, if it has one.
    pub fn remove(&mut self, slot: u16) {
        let index = usize::from(slot);
        let (Some(&after), Some(&identity)) = (self.next.get(index), self.identities.get(index))
        else {
            return;
        };
        if after == NOT_INDEXED {
            return;
        }
        let bucket = Self::bucket(identity);
        if self.heads.get(bucket) == Some(&slot) {
            if let Some(head) = self.heads.get_mut(bucket) {
                *head = after;
            }
        } else {
            // Find the predecessor; a chain has at most N links (the bound only guards
            // against a corrupted chain, which the invariants rule out).
            let mut cursor = self.heads.get(bucket).copied().unwrap_or(END);
            for _ in 0..N {
                let Some(link) = self.next.get_mut(usize::from(cursor)) else {
                    break;
                };
                if *link == slot {
                    *link = after;
                    break;
                }
                cursor = *link;
            }
        }
        if let Some(link) = self.next.get_mut(index) {
            *link = NOT_INDEXED;
        }
    }

    /// The lowest slot holding `identity`, if any (the lowest, so that the answer is the one a
    /// scan of the ledger in slot order gives even if a service reuses an identity).
    #[must_use]
    pub fn find(&self, identity: u64) -> Option<u16> {
        let mut cursor = self.heads.get(Self::bucket(identity)).copied()?;
        let mut found: Option<u16> = None;
        for _ in 0..N {
            let index = usize::from(cursor);
            let (Some(&held), Some(&next)) = (self.identities.get(index), self.next.get(index))
            else {
                break;
            };
            if held == identity && found.is_none_or(|best| cursor < best) {
                found = Some(cursor);
            }
            cursor = next;
        }
        found
    }

    /// The identity `slot` is indexed under, if any.
    #[must_use]
    pub fn identity_of(&self, slot: u16) -> Option<u64> {
        let index = usize::from(slot);
        match self.next.get(index) {
            Some(&NOT_INDEXED) | None => None,
            Some(_) => self.identities.get(index).copied(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::IdentityIndex;
    use proptest::prelude::*;
    use std::collections::BTreeMap;
    use std::vec::Vec;

    /// Identities that all land in bucket 0 of an index of `N` slots.
    fn colliding<const N: usize>(count: usize) -> Vec<u64> {
        (0u64..)
            .filter(|&identity| IdentityIndex::<N>::bucket(identity) == 0)
            .take(count)
            .collect()
    }

    #[test]
    fn buckets_stay_in_range_and_spread_consecutive_identities() {
        let mut hit = [0u32; 16];
        for identity in 1_000u64..1_016 {
            hit[IdentityIndex::<16>::bucket(identity)] += 1;
        }
        assert!(hit.iter().all(|&n| n <= 2), "{hit:?}");
        for identity in [0, 1, u64::MAX, u64::MAX / 3] {
            assert!(IdentityIndex::<5>::bucket(identity) < 5);
        }
        assert_eq!(IdentityIndex::<0>::bucket(42), 0);
    }

    #[test]
    fn removal_from_head_middle_and_tail_of_one_chain() {
        let ids = colliding::<8>(4);
        for victim in 0..4u16 {
            let mut index = IdentityIndex::<8>::new();
            for (slot, &identity) in (0u16..).zip(&ids) {
                assert!(index.insert(slot, identity));
            }
            index.remove(victim);
            for (slot, &identity) in (0u16..).zip(&ids) {
                let expected = (slot != victim).then_some(slot);
                assert_eq!(
                    index.find(identity),
                    expected,
                    "victim {victim}, slot {slot}"
                );
            }
            assert_eq!(index.identity_of(victim), None);
            // The slot can be indexed again, under another identity.
            assert!(index.insert(victim, 99));
            assert_eq!(index.find(99), Some(victim));
        }
    }

    #[test]
    fn a_slot_is_indexed_once_and_out_of_range_slots_are_refused() {
        let mut index = IdentityIndex::<4>::new();
        assert!(index.insert(2, 7));
        assert!(!index.insert(2, 8), "already indexed");
        assert_eq!(index.find(8), None);
        assert!(!index.insert(4, 9), "slot out of range");
        assert_eq!(index.find(9), None);
        index.remove(4);
        index.remove(3);
        assert_eq!(index.find(7), Some(2));
    }

    #[test]
    fn a_repeated_identity_answers_its_lowest_slot() {
        let mut index = IdentityIndex::<4>::new();
        assert!(index.insert(3, 5));
        assert!(index.insert(1, 5));
        assert!(index.insert(2, 5));
        assert_eq!(index.find(5), Some(1));
        index.remove(1);
        assert_eq!(index.find(5), Some(2));
    }

    #[derive(Debug, Clone)]
    enum Op {
        Insert(u16, u64),
        Remove(u16),
    }

    proptest! {
        /// The index answers as a slot → identity map searched for the lowest matching slot,
        /// with identities drawn so that many share a bucket.
        #[test]
        fn agrees_with_a_scanned_map(ops in proptest::collection::vec(
            prop_oneof![
                (0u16..8, 0usize..12).prop_map(|(slot, pick)| Op::Insert(slot, pick as u64)),
                (0u16..9).prop_map(Op::Remove),
            ],
            0..120,
        )) {
            let pool: Vec<u64> = colliding::<8>(6).into_iter().chain([1, 2, 3, 4, 5, u64::MAX]).collect();
            let mut index = IdentityIndex::<8>::new();
            let mut model: BTreeMap<u16, u64> = BTreeMap::new();
            for op in ops {
                match op {
                    Op::Insert(slot, pick) => {
                        let identity = pool[pick as usize];
                        let fresh = !model.contains_key(&slot);
                        prop_assert_eq!(index.insert(slot, identity), fresh);
                        model.entry(slot).or_insert(identity);
                    }
                    Op::Remove(slot) => {
                        index.remove(slot);
                        model.remove(&slot);
                    }
                }
                for &identity in &pool {
                    let expected = model.iter().find(|(_, held)| **held == identity).map(|(slot, _)| *slot);
                    prop_assert_eq!(index.find(identity), expected);
                }
                for slot in 0u16..9 {
                    prop_assert_eq!(index.identity_of(slot), model.get(&slot).copied());
                }
            }
        }
    }
}
