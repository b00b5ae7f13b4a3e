//! The port table: a fixed set of port slots behind a short directory lock and one lock per
//! slot.
//!
//! # Locks and their order
//!
//! - The **directory** lock guards the map from [`SwitchPortId`] to slot index (open
//!   addressing by a hash of the id), each entry's state (free, reserved, live), identity and
//!   generation. It is held only for a lookup or an update of a few entries: never while a
//!   flow table is walked, a blob encoded or decoded, or a platform called.
//! - Each **slot** lock guards one port's [`PortState`] and the slot's id, generation and
//!   `live` flag. Classify holds it for one frame; save holds it while encoding that one port;
//!   restore holds it while installing an already validated blob. Other ports never wait for
//!   it.
//!
//! Order: directory, then slot. Nothing takes the directory lock while holding a slot lock,
//! and nothing holds two slot locks. Most operations take the directory lock, copy
//! `(slot index, generation)` out, release it and only then take the slot lock; create's last
//! step and delete hold both (directory, then slot).
//!
//! A port deleted and its slot reused between the directory lookup and the slot lock is
//! detected: the slot's generation no longer matches the one read from the directory, and the
//! caller gets [`PortError::UnknownPort`] rather than the new port's state.
//!
//! # The classify fast path: one lock per frame
//!
//! A slot's `live` flag changes only while both locks are held (create's last step, delete),
//! so under a slot lock alone `live` and the slot's id say exactly what the directory says of
//! that slot at that moment: a live slot holding id `X` *is* port `X` (ids are unique among
//! live ports). An operation by id therefore first takes the slot lock of `X`'s **home** slot
//! (where the directory's probe for `X` starts, and where `X` sits unless its home was taken):
//! if that slot is live with id `X`, it acts there, under that one lock, without touching the
//! directory. Otherwise (a displaced port, an unknown id) it falls back to the directory
//! lookup. Both paths give the answer the directory gives at the moment the slot lock is
//! taken.

use super::PortError;
use super::counters::PortCounters;
use super::state::PortState;
use super::types::{FrameInfo, PortConfig, PortIdentity, SwitchPortId, Verdict};
use crate::lock::{Mutex, RawLock};
use crate::platform::Ticks;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum EntryState {
    Free,
    /// Claimed by a `create_port` that is initialising the slot; invisible to lookups.
    Reserved,
    Live,
}

#[derive(Clone, Copy, Debug)]
struct DirectoryEntry {
    state: EntryState,
    id: SwitchPortId,
    identity: Option<PortIdentity>,
    generation: u32,
}

/// Where a live port is: its slot and the slot's generation when it was looked up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SlotRef {
    pub(crate) index: usize,
    pub(crate) generation: u32,
}

struct Directory<const PORTS: usize> {
    entries: [DirectoryEntry; PORTS],
    /// The largest distance from its home slot at which any entry has been placed since the
    /// table was last empty; lookups probe no further.
    max_displacement: usize,
    live: usize,
}

impl<const PORTS: usize> Directory<PORTS> {
    const MASK: usize = PORTS.wrapping_sub(1);

    const fn new() -> Self {
        Self {
            entries: [DirectoryEntry {
                state: EntryState::Free,
                id: SwitchPortId(0),
                identity: None,
                generation: 0,
            }; PORTS],
            max_displacement: 0,
            live: 0,
        }
    }

    #[inline]
    fn home(id: SwitchPortId) -> usize {
        let mixed = u64::from(id.0).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        // Truncation intended: the high half carries the best-mixed bits.
        ((mixed >> 32) as usize) & Self::MASK
    }

    /// Index of the entry for `id` in one of `states`.
    fn position(&self, id: SwitchPortId, states: &[EntryState]) -> Option<usize> {
        let home = Self::home(id);
        (0..=self.max_displacement.min(PORTS.saturating_sub(1)))
            .map(|distance| home.wrapping_add(distance) & Self::MASK)
            .find(|&index| {
                self.entries
                    .get(index)
                    .is_some_and(|e| e.id == id && states.contains(&e.state))
            })
    }

    fn find_live(&self, id: SwitchPortId) -> Option<SlotRef> {
        let index = self.position(id, &[EntryState::Live])?;
        let entry = self.entries.get(index)?;
        Some(SlotRef {
            index,
            generation: entry.generation,
        })
    }

    fn reserve(
        &mut self,
        id: SwitchPortId,
        identity: Option<PortIdentity>,
    ) -> Result<SlotRef, PortError> {
        if self
            .position(id, &[EntryState::Live, EntryState::Reserved])
            .is_some()
        {
            return Err(PortError::DuplicatePort(id));
        }
        let home = Self::home(id);
        for distance in 0..PORTS {
            let index = home.wrapping_add(distance) & Self::MASK;
            if let Some(entry) = self.entries.get_mut(index)
                && entry.state == EntryState::Free
            {
                entry.state = EntryState::Reserved;
                entry.id = id;
                entry.identity = identity;
                entry.generation = entry.generation.wrapping_add(1);
                self.max_displacement = self.max_displacement.max(distance);
                self.live = self.live.saturating_add(1);
                return Ok(SlotRef {
                    index,
                    generation: entry.generation,
                });
            }
        }
        Err(PortError::TableFull)
    }

    fn entry_mut(&mut self, slot: SlotRef) -> Option<&mut DirectoryEntry> {
        self.entries
            .get_mut(slot.index)
            .filter(|entry| entry.generation == slot.generation && entry.state != EntryState::Free)
    }

    fn release(&mut self, slot: SlotRef) {
        if let Some(entry) = self.entry_mut(slot) {
            entry.state = EntryState::Free;
            entry.identity = None;
            self.live = self.live.saturating_sub(1);
            if self.live == 0 {
                self.max_displacement = 0;
            }
        }
    }
}

struct PortSlot<const FLOWS: usize> {
    /// The port's id while it is live (the directory entry's).
    id: SwitchPortId,
    /// Matches the directory entry's generation while the port is live.
    generation: u32,
    /// Whether the directory entry of this slot is live; changed only with both the directory
    /// and this slot's lock held.
    live: bool,
    state: PortState<FLOWS>,
}

/// The per-port runtime state of every switch port the callout serves.
///
/// `PORTS` and `FLOWS` (ports, and flows per port) are powers of two, checked at compile
/// time. The table is large (`PORTS * FLOWS` flow entries of about 80 bytes): build it with
/// the `const fn` [`PortTable::new`] in a `static` or directly in pool memory, never on a
/// kernel stack. See the module documentation for the locking design.
pub struct PortTable<L: RawLock, const PORTS: usize, const FLOWS: usize> {
    directory: Mutex<L, Directory<PORTS>>,
    slots: [Mutex<L, PortSlot<FLOWS>>; PORTS],
}

impl<L: RawLock, const PORTS: usize, const FLOWS: usize> PortTable<L, PORTS, FLOWS> {
    const PORTS_IS_POWER_OF_TWO: () = assert!(
        PORTS.is_power_of_two(),
        "port capacity must be a power of two"
    );

    /// An empty table.
    #[must_use]
    pub const fn new() -> Self {
        let () = Self::PORTS_IS_POWER_OF_TWO;
        Self {
            directory: Mutex::new(Directory::new()),
            slots: [const {
                Mutex::new(PortSlot {
                    id: SwitchPortId(0),
                    generation: 0,
                    live: false,
                    state: PortState::new(),
                })
            }; PORTS],
        }
    }

    /// Adds a port (`FWPS_VSWITCH_EVENT_PORT_CREATE`, or a port created on a restore
    /// destination). `identity` is the VM NIC's stable identity when the driver knows it;
    /// restoring a blob onto the port then requires the blob to carry the same identity.
    ///
    /// # Errors
    ///
    /// [`PortError::InvalidConfig`] for a rate limit with a rate and no burst,
    /// [`PortError::DuplicatePort`] if `id` exists, [`PortError::TableFull`] if all `PORTS`
    /// slots are in use.
    pub fn create_port(
        &self,
        id: SwitchPortId,
        identity: Option<PortIdentity>,
        config: PortConfig,
    ) -> Result<(), PortError> {
        if !config.is_valid() {
            return Err(PortError::InvalidConfig);
        }
        let slot = self.directory.lock().reserve(id, identity)?;
        let mutex = self.slots.get(slot.index);
        // The slot is not live (its entry was free): reset its state under the slot lock alone,
        // then publish entry and slot together, under both locks.
        if let Some(mutex) = mutex {
            mutex.lock().state.reset(identity, config);
        }
        let mut directory = self.directory.lock();
        if let Some(entry) = directory.entry_mut(slot) {
            entry.state = EntryState::Live;
        }
        if let Some(mutex) = mutex {
            let mut guard = mutex.lock();
            guard.id = id;
            guard.generation = slot.generation;
            guard.live = true;
        }
        drop(directory);
        Ok(())
    }

    /// Removes a port (`FWPS_VSWITCH_EVENT_PORT_DELETE`). Once this returns, no classify acts
    /// on the port's state. A save pending for the port is not known here: delete through
    /// [`PendingSaves::delete_port`](super::pending::PendingSaves::delete_port) so that it is
    /// completed rather than lost.
    ///
    /// # Errors
    ///
    /// [`PortError::UnknownPort`] if no live port has `id`.
    pub fn delete_port(&self, id: SwitchPortId) -> Result<(), PortError> {
        let mut directory = self.directory.lock();
        let slot = directory.find_live(id).ok_or(PortError::UnknownPort(id))?;
        if let Some(mutex) = self.slots.get(slot.index) {
            let mut guard = mutex.lock();
            if guard.generation == slot.generation {
                guard.live = false;
            }
        }
        directory.release(slot);
        Ok(())
    }

    /// Decides on one frame of port `id` at `now` and counts it.
    ///
    /// # Errors
    ///
    /// [`PortError::UnknownPort`] if no live port has `id` (the caller permits by default).
    pub fn classify(
        &self,
        id: SwitchPortId,
        frame: &FrameInfo,
        now: Ticks,
    ) -> Result<Verdict, PortError> {
        // The frame's whole classify inlined into the slot-lock section (see
        // `PortState::classify`).
        self.with_port_mut(
            id,
            #[inline(always)]
            |state| state.classify(frame, now),
        )
    }

    /// A copy of port `id`'s counters.
    ///
    /// # Errors
    ///
    /// [`PortError::UnknownPort`] if no live port has `id`.
    pub fn counters(&self, id: SwitchPortId) -> Result<PortCounters, PortError> {
        self.with_port(id, |state| *state.counters())
    }

    /// A copy of the counters of the port serving the VM NIC `identity` (what a guest's "read
    /// my port statistics" request is answered with), and that port's id. If several live
    /// ports carry the identity (a local migration's source and destination), the one in the
    /// lowest slot answers.
    ///
    /// # Errors
    ///
    /// [`PortError::UnknownIdentity`] if no live port carries `identity`.
    pub fn counters_by_identity(
        &self,
        identity: &PortIdentity,
    ) -> Result<(SwitchPortId, PortCounters), PortError> {
        let (id, slot) = {
            let directory = self.directory.lock();
            directory
                .entries
                .iter()
                .enumerate()
                .find(|(_, e)| e.state == EntryState::Live && e.identity.as_ref() == Some(identity))
                .map(|(index, e)| {
                    (
                        e.id,
                        SlotRef {
                            index,
                            generation: e.generation,
                        },
                    )
                })
                .ok_or(PortError::UnknownIdentity)?
        };
        self.with_slot(slot, |state| (id, *state.counters()))
            .ok_or(PortError::UnknownIdentity)
    }

    /// Runs `inspect` on port `id`'s state under its slot lock and returns its result.
    /// `inspect` must be short and must not call the platform (see [`crate::lock`]).
    ///
    /// # Errors
    ///
    /// [`PortError::UnknownPort`] if no live port has `id`.
    pub fn with_port<R>(
        &self,
        id: SwitchPortId,
        inspect: impl FnOnce(&PortState<FLOWS>) -> R,
    ) -> Result<R, PortError> {
        self.with_port_mut(id, |state| inspect(state))
    }

    /// Number of ports created and not deleted (counting one whose `create_port` is still
    /// running).
    #[must_use]
    pub fn len(&self) -> usize {
        self.directory.lock().live
    }

    /// Whether no port is live.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The slot of live port `id`, and its identity as the directory records it.
    pub(crate) fn lookup(
        &self,
        id: SwitchPortId,
    ) -> Result<(SlotRef, Option<PortIdentity>), PortError> {
        let directory = self.directory.lock();
        let slot = directory.find_live(id).ok_or(PortError::UnknownPort(id))?;
        let identity = directory.entries.get(slot.index).and_then(|e| e.identity);
        Ok((slot, identity))
    }

    /// Records a new identity for the port in `slot` (after a restore adopted the blob's).
    pub(crate) fn set_directory_identity(&self, slot: SlotRef, identity: Option<PortIdentity>) {
        if let Some(entry) = self.directory.lock().entry_mut(slot) {
            entry.identity = identity;
        }
    }

    /// Runs `act` on live port `id` under its slot lock: through the home slot alone when the
    /// port sits there, else through the directory (see the module documentation).
    #[inline]
    pub(crate) fn with_port_mut<R>(
        &self,
        id: SwitchPortId,
        act: impl FnOnce(&mut PortState<FLOWS>) -> R,
    ) -> Result<R, PortError> {
        if let Some(home) = self.slots.get(Directory::<PORTS>::home(id)) {
            let mut guard = home.lock();
            if guard.live && guard.id == id {
                return Ok(act(&mut guard.state));
            }
        }
        self.with_port_by_directory(id, act)
    }

    /// [`PortTable::with_port_mut`] for a port away from its home slot (or unknown).
    fn with_port_by_directory<R>(
        &self,
        id: SwitchPortId,
        act: impl FnOnce(&mut PortState<FLOWS>) -> R,
    ) -> Result<R, PortError> {
        let slot = self
            .directory
            .lock()
            .find_live(id)
            .ok_or(PortError::UnknownPort(id))?;
        self.with_slot(slot, act).ok_or(PortError::UnknownPort(id))
    }

    /// Runs `act` under the slot lock if the slot still holds the port looked up as `slot`.
    pub(crate) fn with_slot<R>(
        &self,
        slot: SlotRef,
        act: impl FnOnce(&mut PortState<FLOWS>) -> R,
    ) -> Option<R> {
        let mut guard = self.slots.get(slot.index)?.lock();
        if !guard.live || guard.generation != slot.generation {
            return None;
        }
        Some(act(&mut guard.state))
    }
}

impl<L: RawLock, const PORTS: usize, const FLOWS: usize> Default for PortTable<L, PORTS, FLOWS> {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::PortTable;
    use crate::lock::SpinRawLock;
    use crate::platform::Ticks;
    use crate::port::types::{Direction, FlowKey, FrameInfo, PortConfig, SwitchPortId};
    use crate::port::{PortError, PortIdentity};

    type Table = PortTable<SpinRawLock, 2, 8>;

    fn frame() -> FrameInfo {
        FrameInfo {
            direction: Direction::Ingress,
            flow: FlowKey::v4([1, 1, 1, 1], [2, 2, 2, 2], 1, 2, 17),
            length: 100,
        }
    }

    #[test]
    fn a_stale_lookup_does_not_reach_the_port_that_reused_the_slot() {
        let table = Table::new();
        table
            .create_port(SwitchPortId(1), None, PortConfig::UNLIMITED)
            .unwrap();
        let (stale, _) = table.lookup(SwitchPortId(1)).unwrap();
        table.delete_port(SwitchPortId(1)).unwrap();
        // Fill both slots so the old one is certainly reused.
        table
            .create_port(
                SwitchPortId(2),
                Some(PortIdentity([2; 16])),
                PortConfig::UNLIMITED,
            )
            .unwrap();
        table
            .create_port(SwitchPortId(3), None, PortConfig::UNLIMITED)
            .unwrap();
        let reused = [SwitchPortId(2), SwitchPortId(3)]
            .into_iter()
            .find(|&id| table.lookup(id).unwrap().0.index == stale.index)
            .unwrap();
        assert_eq!(
            table.with_slot(stale, |state| state.classify(&frame(), Ticks(1))),
            None
        );
        assert_eq!(table.counters(reused).unwrap().ingress.permitted.frames, 0);
        assert_eq!(
            table.classify(SwitchPortId(1), &frame(), Ticks(1)),
            Err(PortError::UnknownPort(SwitchPortId(1)))
        );
    }

    #[test]
    fn ports_two_and_three_share_a_home_slot_in_a_two_slot_table() {
        // The loom model of a displaced port's classify relies on this.
        let home = super::Directory::<2>::home;
        assert_eq!(home(SwitchPortId(2)), home(SwitchPortId(3)));
        let table = PortTable::<SpinRawLock, 2, 1>::new();
        for id in [2, 3] {
            table
                .create_port(SwitchPortId(id), None, PortConfig::UNLIMITED)
                .unwrap();
        }
        let slot_of = |id| table.lookup(SwitchPortId(id)).unwrap().0.index;
        assert_eq!(slot_of(2), home(SwitchPortId(2)));
        assert_ne!(slot_of(3), home(SwitchPortId(3)), "3 is displaced");
    }

    #[test]
    fn a_displaced_port_is_served_through_the_directory() {
        let table = PortTable::<SpinRawLock, 2, 8>::new();
        for id in [2, 3] {
            table
                .create_port(SwitchPortId(id), None, PortConfig::UNLIMITED)
                .unwrap();
        }
        table.classify(SwitchPortId(3), &frame(), Ticks(1)).unwrap();
        assert_eq!(
            table
                .counters(SwitchPortId(3))
                .unwrap()
                .ingress
                .permitted
                .frames,
            1
        );
        assert_eq!(
            table
                .counters(SwitchPortId(2))
                .unwrap()
                .ingress
                .permitted
                .frames,
            0
        );
        // Once the home port is gone and 3 re-created, 3 sits at home and starts afresh.
        table.delete_port(SwitchPortId(2)).unwrap();
        table.delete_port(SwitchPortId(3)).unwrap();
        table
            .create_port(SwitchPortId(3), None, PortConfig::UNLIMITED)
            .unwrap();
        assert_eq!(
            table.lookup(SwitchPortId(3)).unwrap().0.index,
            super::Directory::<2>::home(SwitchPortId(3))
        );
        assert_eq!(
            table
                .counters(SwitchPortId(3))
                .unwrap()
                .ingress
                .permitted
                .frames,
            0
        );
    }

    #[test]
    fn lookups_stay_correct_after_deletes_leave_holes() {
        // Ids that collide in the directory force displaced entries; deleting the one at the
        // home slot must not hide the displaced one.
        let table = PortTable::<SpinRawLock, 8, 1>::new();
        for id in 0..8 {
            table
                .create_port(SwitchPortId(id), None, PortConfig::UNLIMITED)
                .unwrap();
        }
        for id in (0..8).step_by(2) {
            table.delete_port(SwitchPortId(id)).unwrap();
        }
        for id in 0..8 {
            let found = table.counters(SwitchPortId(id)).is_ok();
            assert_eq!(found, !id.is_multiple_of(2), "port {id}");
        }
        assert_eq!(table.len(), 4);
    }
}
