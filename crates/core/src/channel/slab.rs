//! A fixed-capacity slab with generation-checked keys: the storage under both packet ledgers.
//!
//! Insert and remove are O(1) (a free list threaded through vacant slots, plus a high-water
//! mark so that `const fn new` needs no initialisation loop). A removed slot's generation is
//! bumped, so a key kept after its entry was removed — a late completion, a retired packet —
//! finds nothing instead of a newer entry. Generations are 16 bits and wrap: a key would alias
//! only after the same slot was reused 65,536 times while the stale key was held.

/// Identifies an entry of a [`Slab`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SlotKey {
    /// Index of the slot.
    pub slot: u16,
    /// Generation of the slot when the entry was inserted.
    pub generation: u16,
}

/// `free_head` value meaning "no vacant slot below the high-water mark".
const NO_SLOT: u16 = u16::MAX;

enum Slot<T> {
    Vacant { next_free: u16, generation: u16 },
    Occupied { value: T, generation: u16 },
}

/// Fixed-capacity storage of `N` entries (`N` < 65,535).
pub struct Slab<T, const N: usize> {
    slots: [Slot<T>; N],
    free_head: u16,
    high_water: u16,
    len: u16,
}

impl<T, const N: usize> Default for Slab<T, N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T, const N: usize> Slab<T, N> {
    /// Compile-time check that slot indices fit in 16 bits with one value left for `NO_SLOT`.
    const CAPACITY_FITS: () = assert!(N < NO_SLOT as usize, "slab capacity must be < 65535");

    /// An empty slab.
    #[must_use]
    pub const fn new() -> Self {
        let () = Self::CAPACITY_FITS;
        Self {
            slots: [const {
                Slot::Vacant {
                    next_free: NO_SLOT,
                    generation: 0,
                }
            }; N],
            free_head: NO_SLOT,
            high_water: 0,
            len: 0,
        }
    }

    /// The fixed capacity.
    #[must_use]
    pub const fn capacity(&self) -> usize {
        N
    }

    /// How many entries are stored.
    #[must_use]
    pub const fn len(&self) -> usize {
        self.len as usize
    }

    /// Whether nothing is stored.
    #[must_use]
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Stores `value`.
    ///
    /// # Errors
    ///
    /// Gives `value` back when the slab is full.
    pub fn insert(&mut self, value: T) -> Result<SlotKey, T> {
        let index = if self.free_head != NO_SLOT {
            self.free_head
        } else if usize::from(self.high_water) < N {
            self.high_water
        } else {
            return Err(value);
        };
        let Some(slot) = self.slots.get_mut(usize::from(index)) else {
            return Err(value);
        };
        let Slot::Vacant {
            next_free,
            generation,
        } = *slot
        else {
            // The free list only links vacant slots; refuse rather than overwrite.
            return Err(value);
        };
        *slot = Slot::Occupied { value, generation };
        if index == self.free_head {
            self.free_head = next_free;
        } else {
            self.high_water = self.high_water.saturating_add(1);
        }
        self.len = self.len.saturating_add(1);
        Ok(SlotKey {
            slot: index,
            generation,
        })
    }

    /// The entry `key` names, if it is still stored.
    #[must_use]
    pub fn get(&self, key: SlotKey) -> Option<&T> {
        match self.slots.get(usize::from(key.slot))? {
            Slot::Occupied { value, generation } if *generation == key.generation => Some(value),
            _ => None,
        }
    }

    /// The entry `key` names, mutably, if it is still stored.
    #[must_use]
    pub fn get_mut(&mut self, key: SlotKey) -> Option<&mut T> {
        match self.slots.get_mut(usize::from(key.slot))? {
            Slot::Occupied { value, generation } if *generation == key.generation => Some(value),
            _ => None,
        }
    }

    /// The key of the entry in slot `index`, if the slot is occupied.
    #[must_use]
    pub fn key_at(&self, index: usize) -> Option<SlotKey> {
        match self.slots.get(index)? {
            Slot::Occupied { generation, .. } => Some(SlotKey {
                slot: u16::try_from(index).ok()?,
                generation: *generation,
            }),
            Slot::Vacant { .. } => None,
        }
    }

    /// Removes and returns the entry `key` names; `None` if it is gone (stale or never was).
    pub fn remove(&mut self, key: SlotKey) -> Option<T> {
        match self.slots.get(usize::from(key.slot))? {
            Slot::Occupied { generation, .. } if *generation == key.generation => {}
            _ => return None,
        }
        self.vacate(key.slot).map(|(_, value)| value)
    }

    /// Removes and returns the entry at slot `index`, whatever its generation. Used to retire
    /// everything with one pass over `0..capacity()`.
    pub fn remove_at(&mut self, index: usize) -> Option<(SlotKey, T)> {
        let index = u16::try_from(index).ok()?;
        self.vacate(index)
    }

    /// The stored entries with their keys, in slot order.
    pub fn iter(&self) -> impl Iterator<Item = (SlotKey, &T)> {
        self.slots
            .iter()
            .take(usize::from(self.high_water))
            .zip(0u16..)
            .filter_map(|(slot, index)| match slot {
                Slot::Occupied { value, generation } => Some((
                    SlotKey {
                        slot: index,
                        generation: *generation,
                    },
                    value,
                )),
                Slot::Vacant { .. } => None,
            })
    }

    fn vacate(&mut self, index: u16) -> Option<(SlotKey, T)> {
        let slot = self.slots.get_mut(usize::from(index))?;
        let generation = match slot {
            Slot::Occupied { generation, .. } => *generation,
            Slot::Vacant { .. } => return None,
        };
        let vacant = Slot::Vacant {
            next_free: self.free_head,
            generation: generation.wrapping_add(1),
        };
        let Slot::Occupied { value, .. } = core::mem::replace(slot, vacant) else {
            return None;
        };
        self.free_head = index;
        self.len = self.len.saturating_sub(1);
        Some((
            SlotKey {
                slot: index,
                generation,
            },
            value,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::{Slab, SlotKey};
    use proptest::prelude::*;
    use std::collections::HashMap;
    use std::vec::Vec;

    #[test]
    fn full_slab_gives_the_value_back() {
        let mut slab = Slab::<u32, 2>::new();
        slab.insert(1).unwrap();
        slab.insert(2).unwrap();
        assert_eq!(slab.insert(3), Err(3));
        assert_eq!(slab.len(), 2);
    }

    #[test]
    fn stale_keys_find_nothing_after_reuse() {
        let mut slab = Slab::<&str, 1>::new();
        let old = slab.insert("first").unwrap();
        assert_eq!(slab.remove(old), Some("first"));
        let new = slab.insert("second").unwrap();
        assert_eq!(new.slot, old.slot);
        assert_ne!(new.generation, old.generation);
        assert_eq!(slab.get(old), None);
        assert_eq!(slab.remove(old), None);
        assert_eq!(slab.get(new), Some(&"second"));
    }

    #[test]
    fn keys_out_of_range_find_nothing() {
        let mut slab = Slab::<u8, 4>::new();
        let key = SlotKey {
            slot: 900,
            generation: 0,
        };
        assert_eq!(slab.get(key), None);
        assert_eq!(slab.remove(key), None);
        assert_eq!(slab.remove_at(900), None);
    }

    #[derive(Debug, Clone)]
    enum Op {
        Insert(u32),
        Remove(usize),
        RemoveAt(usize),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            any::<u32>().prop_map(Op::Insert),
            (0usize..16).prop_map(Op::Remove),
            (0usize..10).prop_map(Op::RemoveAt),
        ]
    }

    proptest! {
        /// The slab behaves like a map from live keys to values, bounded by its capacity.
        #[test]
        fn behaves_like_a_bounded_map(ops in proptest::collection::vec(op(), 0..200)) {
            let mut slab = Slab::<u32, 8>::new();
            let mut model: HashMap<SlotKey, u32> = HashMap::new();
            let mut issued: Vec<SlotKey> = Vec::new();
            for op in ops {
                match op {
                    Op::Insert(v) => match slab.insert(v) {
                        Ok(key) => {
                            prop_assert!(model.insert(key, v).is_none());
                            issued.push(key);
                        }
                        Err(back) => {
                            prop_assert_eq!(back, v);
                            prop_assert_eq!(model.len(), 8);
                        }
                    },
                    Op::Remove(i) => {
                        if let Some(&key) = issued.get(i % issued.len().max(1)) {
                            prop_assert_eq!(slab.remove(key), model.remove(&key));
                        }
                    }
                    Op::RemoveAt(index) => {
                        let got = slab.remove_at(index);
                        if let Some((key, value)) = got {
                            prop_assert_eq!(model.remove(&key), Some(value));
                        } else {
                            prop_assert!(model.keys().all(|k| usize::from(k.slot) != index));
                        }
                    }
                }
                prop_assert_eq!(slab.len(), model.len());
                for index in 0..9 {
                    let expected = model.keys().find(|k| usize::from(k.slot) == index).copied();
                    prop_assert_eq!(slab.key_at(index), expected);
                }
                let mut listed: Vec<_> = slab.iter().map(|(k, v)| (k, *v)).collect();
                let mut expected: Vec<_> = model.iter().map(|(k, v)| (*k, *v)).collect();
                listed.sort_by_key(|(k, _)| k.slot);
                expected.sort_by_key(|(k, _)| k.slot);
                prop_assert_eq!(listed, expected);
            }
        }
    }
}
