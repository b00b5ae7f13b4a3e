//! The flow table: a fixed-capacity map from [`FlowKey`] to per-flow counters and last-seen
//! time, built for a classify hit of a few dozen instructions.
//!
//! # Layout and lookup
//!
//! Open addressing over `N` slots (`N` a power of two, checked at compile time, so a slot index
//! is `hash & (N - 1)`: no division). A key's *home* slot is its [`FlowKey::hash`] masked; the
//! key lives in one of the [`PROBE_WINDOW`] slots starting at home (wrapping at the end). A
//! lookup walks that window and stops at the key or at the first free slot.
//!
//! Flows are never removed one by one (only replaced by eviction, or all at once by
//! [`FlowTable::clear`]), so a free slot in the window proves the key is absent: no tombstones.
//!
//! # Eviction policy
//!
//! A new flow takes the first free slot of its window. When all [`PROBE_WINDOW`] slots of the
//! window are occupied, the entry with the oldest last-seen time among them is replaced (the
//! first such slot on a tie) and the port counts it in `flows_evicted`. Eviction therefore
//! looks at the window only, never the whole table: it may evict while other windows have room.
//! A new flow arriving while every slot of the table is occupied also counts in
//! `flow_table_full`.

use super::counters::TrafficCounters;
use super::types::FlowKey;
use crate::platform::Ticks;

/// How many consecutive slots, starting at a key's home slot, may hold the key (fewer when the
/// table itself is smaller).
pub const PROBE_WINDOW: usize = 8;

/// One flow as the table reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FlowEntry {
    /// The flow's 5-tuple.
    pub key: FlowKey,
    /// Frames and bytes seen on the flow (permitted or dropped).
    pub counters: TrafficCounters,
    /// When the flow last saw a frame, on this host's clock.
    pub last_seen: Ticks,
}

/// What [`FlowTable::touch`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlowOutcome {
    /// The key was in the table.
    Hit,
    /// The key was new and took a free slot.
    Inserted {
        /// Every slot of the table was occupied before (so this insert also evicted).
        table_was_full: bool,
        /// An older flow was replaced to make room.
        evicted: bool,
    },
}

#[derive(Clone, Copy)]
struct FlowSlot {
    /// `None` when the slot is free.
    entry: Option<FlowEntry>,
}

/// A fixed-capacity flow table of `N` slots (`N` a power of two, at least 1).
pub struct FlowTable<const N: usize> {
    slots: [FlowSlot; N],
    len: usize,
}

impl<const N: usize> FlowTable<N> {
    /// Compile-time check of the capacity (evaluated when `new` is instantiated).
    const CAPACITY_IS_POWER_OF_TWO: () =
        assert!(N.is_power_of_two(), "flow capacity must be a power of two");
    const MASK: usize = N.wrapping_sub(1);
    const WINDOW: usize = if N < PROBE_WINDOW { N } else { PROBE_WINDOW };

    /// An empty table. A `const fn` so the table can be built in a `static` or in place.
    #[must_use]
    pub const fn new() -> Self {
        let () = Self::CAPACITY_IS_POWER_OF_TWO;
        Self {
            slots: [FlowSlot { entry: None }; N],
            len: 0,
        }
    }

    /// Number of slots.
    #[must_use]
    pub const fn capacity(&self) -> usize {
        N
    }

    /// Number of flows held.
    #[must_use]
    pub const fn len(&self) -> usize {
        self.len
    }

    /// Whether the table holds no flow.
    #[must_use]
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Forgets every flow.
    pub fn clear(&mut self) {
        for slot in &mut self.slots {
            slot.entry = None;
        }
        self.len = 0;
    }

    /// The flow with `key`, if held.
    #[must_use]
    pub fn get(&self, key: &FlowKey) -> Option<FlowEntry> {
        let home = Self::home(key);
        for step in 0..Self::WINDOW {
            let entry = self
                .slots
                .get(home.wrapping_add(step) & Self::MASK)?
                .entry?;
            if entry.key == *key {
                return Some(entry);
            }
        }
        None
    }

    /// Counts one frame of `length` bytes on `key` at `now`, inserting the flow if it is new
    /// (evicting per the module's policy when its window is full).
    ///
    /// A hit (the classify path's common case) is the inlined probe below; a new flow goes to
    /// the out-of-line [`FlowTable::insert_new`] with what the probe found.
    #[inline(always)]
    pub fn touch(&mut self, key: &FlowKey, length: u32, now: Ticks) -> FlowOutcome {
        let home = Self::home(key);
        let mut free = None;
        for step in 0..Self::WINDOW {
            let index = home.wrapping_add(step) & Self::MASK;
            let Some(slot) = self.slots.get_mut(index) else {
                break;
            };
            match &mut slot.entry {
                None => {
                    free = Some(index);
                    break;
                }
                Some(entry) if entry.key == *key => {
                    entry.counters.record(length);
                    entry.last_seen = now;
                    return FlowOutcome::Hit;
                }
                Some(_) => {}
            }
        }
        self.insert_new(home, free, key, length, now)
    }

    /// Inserts the new flow `key` with its first frame: into `free`, the first free slot of
    /// its window, or else in place of the window's least recently seen entry.
    #[inline(never)]
    fn insert_new(
        &mut self,
        home: usize,
        free: Option<usize>,
        key: &FlowKey,
        length: u32,
        now: Ticks,
    ) -> FlowOutcome {
        let table_was_full = self.len >= N;
        let (index, evicted) = match free {
            Some(index) => (index, false),
            None => (self.oldest_in_window(home), true),
        };
        if let Some(slot) = self.slots.get_mut(index) {
            if !evicted {
                self.len = self.len.saturating_add(1);
            }
            let mut counters = TrafficCounters::ZERO;
            counters.record(length);
            slot.entry = Some(FlowEntry {
                key: *key,
                counters,
                last_seen: now,
            });
        }
        FlowOutcome::Inserted {
            table_was_full,
            evicted,
        }
    }

    /// The slot of the least recently seen entry in the window starting at `home` (the first
    /// such slot on a tie); `home` itself if no slot of the window holds an entry.
    fn oldest_in_window(&self, home: usize) -> usize {
        let mut oldest: Option<(usize, Ticks)> = None;
        for step in 0..Self::WINDOW {
            let index = home.wrapping_add(step) & Self::MASK;
            if let Some(entry) = self.slots.get(index).and_then(|slot| slot.entry.as_ref())
                && oldest.is_none_or(|(_, seen)| entry.last_seen < seen)
            {
                oldest = Some((index, entry.last_seen));
            }
        }
        oldest.map_or(home, |(index, _)| index)
    }

    /// Inserts a flow decoded from saved state, by the same placement and eviction rules as a
    /// new flow; a key already present is merged into it (counters added, newest last-seen).
    pub fn insert_restored(&mut self, restored: &FlowEntry) -> FlowOutcome {
        let (outcome, entry) = self.find_or_insert(&restored.key, restored.last_seen);
        if let Some(entry) = entry {
            match outcome {
                FlowOutcome::Hit => {
                    entry.counters.frames = entry
                        .counters
                        .frames
                        .saturating_add(restored.counters.frames);
                    entry.counters.bytes =
                        entry.counters.bytes.saturating_add(restored.counters.bytes);
                    entry.last_seen = entry.last_seen.max(restored.last_seen);
                }
                FlowOutcome::Inserted { .. } => {
                    entry.counters = restored.counters;
                    entry.last_seen = restored.last_seen;
                }
            }
        }
        outcome
    }

    /// Every flow, in slot order starting just after the first free slot (or at slot 0 when
    /// the table is full).
    ///
    /// Re-inserting flows in this order into an empty table of the same capacity puts every
    /// flow back in its slot: each flow's window from its home slot up to its own slot was
    /// fully occupied, and that stretch never crosses a free slot, so it lies entirely before
    /// the flow in this order. Saving in this order makes a same-capacity restore lossless
    /// whenever the table had a free slot.
    pub fn iter_for_save(&self) -> impl Iterator<Item = FlowEntry> + '_ {
        let start = self
            .slots
            .iter()
            .position(|slot| slot.entry.is_none())
            .map_or(0, |free| free.wrapping_add(1) & Self::MASK);
        let (before, after) = self.slots.split_at(start.min(N));
        after
            .iter()
            .chain(before.iter())
            .filter_map(|slot| slot.entry)
    }

    /// Restores the exact layout of a table that was **full** when saved: `entries` are its
    /// flows as [`FlowTable::iter_for_save`] yielded them, which for a full table is slot order
    /// from slot 0, so entry `i` belongs in slot `i`. Re-inserting them one by one could not
    /// always rebuild such a table: evictions can leave every slot's window wrapping past every
    /// possible starting point.
    ///
    /// Returns `false`, leaving the table empty, unless exactly `N` entries form a valid table
    /// (every flow within its probe window, every key found by a lookup at its own slot, so no
    /// duplicates); the caller then falls back to insertion.
    pub fn restore_full_layout(&mut self, entries: impl Iterator<Item = FlowEntry>) -> bool {
        self.clear();
        let mut placed = 0usize;
        for (index, entry) in entries.enumerate() {
            let within_window =
                index.wrapping_sub(Self::home(&entry.key)) & Self::MASK < Self::WINDOW;
            let Some(slot) = self.slots.get_mut(index).filter(|_| within_window) else {
                self.clear();
                return false;
            };
            slot.entry = Some(entry);
            placed = placed.saturating_add(1);
        }
        self.len = placed;
        let consistent = placed == N
            && self.slots.iter().enumerate().all(|(index, slot)| {
                slot.entry
                    .is_some_and(|entry| self.position(&entry.key) == Some(index))
            });
        if !consistent {
            self.clear();
        }
        consistent
    }

    /// The slot holding `key`, if any.
    fn position(&self, key: &FlowKey) -> Option<usize> {
        let home = Self::home(key);
        (0..Self::WINDOW)
            .map(|step| home.wrapping_add(step) & Self::MASK)
            .take_while(|index| self.slots.get(*index).is_some_and(|s| s.entry.is_some()))
            .find(|index| {
                self.slots
                    .get(*index)
                    .and_then(|slot| slot.entry)
                    .is_some_and(|entry| entry.key == *key)
            })
    }

    #[inline]
    fn home(key: &FlowKey) -> usize {
        // Truncation is the point: only the low bits select the slot.
        (key.hash() as usize) & Self::MASK
    }

    /// The slot for `key`: its own, a free one in its window, or the window's least recently
    /// seen one (replaced). `None` only if the table has no slot at all, which the capacity
    /// check rules out.
    fn find_or_insert(
        &mut self,
        key: &FlowKey,
        now: Ticks,
    ) -> (FlowOutcome, Option<&mut FlowEntry>) {
        let home = Self::home(key);
        let mut free = None;
        let mut oldest: Option<(usize, Ticks)> = None;
        for step in 0..Self::WINDOW {
            let index = home.wrapping_add(step) & Self::MASK;
            match self.slots.get(index).and_then(|slot| slot.entry.as_ref()) {
                None => {
                    free = Some(index);
                    break;
                }
                Some(entry) if entry.key == *key => {
                    let entry = self
                        .slots
                        .get_mut(index)
                        .and_then(|slot| slot.entry.as_mut());
                    return (FlowOutcome::Hit, entry);
                }
                Some(entry) => {
                    if oldest.is_none_or(|(_, seen)| entry.last_seen < seen) {
                        oldest = Some((index, entry.last_seen));
                    }
                }
            }
        }
        let table_was_full = self.len >= N;
        let (index, evicted) = match (free, oldest) {
            (Some(index), _) => (index, false),
            (None, Some((index, _))) => (index, true),
            (None, None) => {
                return (
                    FlowOutcome::Inserted {
                        table_was_full,
                        evicted: false,
                    },
                    None,
                );
            }
        };
        if !evicted {
            self.len = self.len.saturating_add(1);
        }
        let entry = self.slots.get_mut(index).map(|slot| {
            slot.entry.insert(FlowEntry {
                key: *key,
                counters: TrafficCounters::ZERO,
                last_seen: now,
            })
        });
        (
            FlowOutcome::Inserted {
                table_was_full,
                evicted,
            },
            entry,
        )
    }
}

impl<const N: usize> Default for FlowTable<N> {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::{FlowOutcome, FlowTable, PROBE_WINDOW};
    use crate::platform::Ticks;
    use crate::port::types::FlowKey;
    use std::boxed::Box;
    use std::vec::Vec;

    fn key(n: u16) -> FlowKey {
        FlowKey::v4([10, 0, 0, 1], [10, 0, 0, 2], n, 80, 6)
    }

    /// Keys whose home slot in a table of `N` slots is `home`.
    fn keys_with_home<const N: usize>(home: usize, count: usize) -> Vec<FlowKey> {
        (0..u16::MAX)
            .map(key)
            .filter(|k| (k.hash() as usize) & (N - 1) == home)
            .take(count)
            .collect()
    }

    fn entry(key: FlowKey, frames: u64) -> super::FlowEntry {
        super::FlowEntry {
            key,
            counters: crate::port::counters::TrafficCounters {
                frames,
                bytes: frames,
            },
            last_seen: Ticks(frames),
        }
    }

    /// 16 slots, filled with keys whose home is their own slot: a valid full layout.
    fn full_layout() -> Vec<super::FlowEntry> {
        (0..16)
            .map(|slot| entry(keys_with_home::<16>(slot, 1)[0], slot as u64))
            .collect()
    }

    #[test]
    fn a_valid_full_layout_is_placed_slot_for_slot() {
        let mut table = FlowTable::<16>::new();
        let layout = full_layout();
        assert!(table.restore_full_layout(layout.iter().copied()));
        assert_eq!(table.len(), 16);
        assert_eq!(table.iter_for_save().collect::<Vec<_>>(), layout);
    }

    #[test]
    fn invalid_full_layouts_are_refused_and_leave_the_table_empty() {
        let layout = full_layout();
        let mut table = FlowTable::<16>::new();
        // Too few entries.
        assert!(!table.restore_full_layout(layout.iter().copied().take(15)));
        assert!(table.is_empty());
        // A flow outside its probe window (home 0 placed at slot 8).
        let mut far = layout.clone();
        far[8] = entry(keys_with_home::<16>(0, 2)[1], 99);
        assert!(!table.restore_full_layout(far.into_iter()));
        assert!(table.is_empty());
        // The same key twice: a lookup would never find the second copy.
        let mut twice = layout.clone();
        twice[1] = entry(layout[0].key, 5);
        assert!(!table.restore_full_layout(twice.into_iter()));
        assert!(table.is_empty());
    }

    #[test]
    fn hit_after_insert_counts_on_the_same_flow() {
        let mut table = FlowTable::<16>::new();
        assert_eq!(
            table.touch(&key(1), 100, Ticks(5)),
            FlowOutcome::Inserted {
                table_was_full: false,
                evicted: false
            }
        );
        assert_eq!(table.touch(&key(1), 50, Ticks(9)), FlowOutcome::Hit);
        let entry = table.get(&key(1)).unwrap();
        assert_eq!(entry.counters.frames, 2);
        assert_eq!(entry.counters.bytes, 150);
        assert_eq!(entry.last_seen, Ticks(9));
        assert_eq!(table.len(), 1);
        assert_eq!(table.get(&key(2)), None);
    }

    #[test]
    fn full_window_evicts_its_least_recently_seen_flow() {
        const N: usize = 64;
        let mut table = Box::new(FlowTable::<N>::new());
        let colliding = keys_with_home::<N>(3, PROBE_WINDOW + 1);
        // Fill the window; the flow touched at t=2 is the oldest after the re-touches below.
        for (i, k) in colliding.iter().take(PROBE_WINDOW).enumerate() {
            table.touch(k, 1, Ticks(i as u64 + 1));
        }
        for (i, k) in colliding.iter().take(PROBE_WINDOW).enumerate() {
            if i != 1 {
                table.touch(k, 1, Ticks(100 + i as u64));
            }
        }
        let newcomer = colliding[PROBE_WINDOW];
        assert_eq!(
            table.touch(&newcomer, 1, Ticks(200)),
            FlowOutcome::Inserted {
                table_was_full: false,
                evicted: true
            }
        );
        assert_eq!(
            table.get(&colliding[1]),
            None,
            "the oldest flow is the one evicted"
        );
        for (i, k) in colliding.iter().take(PROBE_WINDOW).enumerate() {
            if i != 1 {
                assert!(table.get(k).is_some(), "flow {i} must survive");
            }
        }
        assert!(table.get(&newcomer).is_some());
        assert_eq!(table.len(), PROBE_WINDOW);
    }

    #[test]
    fn full_table_reports_full_and_keeps_len() {
        let mut table = FlowTable::<4>::new();
        for n in 0..4 {
            table.touch(&key(n), 1, Ticks(u64::from(n)));
        }
        assert_eq!(table.len(), 4);
        assert_eq!(
            table.touch(&key(99), 1, Ticks(10)),
            FlowOutcome::Inserted {
                table_was_full: true,
                evicted: true
            }
        );
        assert_eq!(table.len(), 4);
        // Window = whole table when N < PROBE_WINDOW: the flow seen at t=0 went.
        assert_eq!(table.get(&key(0)), None);
        assert!(table.get(&key(99)).is_some());
    }

    #[test]
    fn save_order_rebuilds_the_same_slots() {
        const N: usize = 32;
        let mut table = Box::new(FlowTable::<N>::new());
        for n in 0..28 {
            table.touch(&key(n * 7), u32::from(n), Ticks(u64::from(n)));
        }
        let mut copy = Box::new(FlowTable::<N>::new());
        for entry in table.iter_for_save() {
            assert!(matches!(
                copy.insert_restored(&entry),
                FlowOutcome::Inserted { evicted: false, .. }
            ));
        }
        let original: Vec<_> = table.slots.iter().map(|s| s.entry).collect();
        let rebuilt: Vec<_> = copy.slots.iter().map(|s| s.entry).collect();
        assert_eq!(original, rebuilt);
    }

    #[test]
    fn clear_forgets_everything() {
        let mut table = FlowTable::<8>::new();
        table.touch(&key(1), 1, Ticks(1));
        table.clear();
        assert!(table.is_empty());
        assert_eq!(table.get(&key(1)), None);
        assert_eq!(table.iter_for_save().count(), 0);
    }
}
