//! [`ChannelRegistry`]: the channels the control device offered, in a fixed number of slots
//! (`static` memory in the driver), each named by a [`ChannelId`] that a later request must
//! present.
//!
//! **Concurrency without a PASSIVE-level lock.** Handlers call KMCL functions that block
//! (`VmbChannelDisable`, `VmbChannelPause`, `VmbChannelSaveBegin` running SavePacket callbacks),
//! so no spin lock may be held across them. The registry's spin lock guards only the slots'
//! bookkeeping: a handler *checks a channel out* (its entry leaves the slot, which is marked in
//! use), works on it with no lock held, and checks it back in ([`CheckedOut`]'s drop). A second
//! request for the same channel meanwhile is refused with [`RegistryError::Busy`]; requests for
//! other channels run in parallel. An offer first *reserves* a slot, so a full registry refuses
//! before any KMCL call.
//!
//! **A handle closed while one of its requests runs.** `IRP_MJ_CLEANUP` can arrive while
//! another thread's request still holds one of the handle's channels (checked out, or an
//! offer between reservation and fill). [`ChannelRegistry::doom`] marks those slots; when the
//! request puts the channel back, it comes back owned by [`Owner::ORPHANED`] instead of the
//! gone handle, and the control device closes orphans at the end of every request
//! (`ControlDevice::device_control`), so the channel does not outlive its handle.
//!
//! **Ids.** A [`ChannelId`] is the slot index (low 8 bits) and the slot's generation (high 24
//! bits, never zero, bumped at each reservation): an id kept after its channel was closed
//! names nothing, even once the slot serves another channel.

use core::ffi::c_void;

use ferry_core::lock::Mutex;

use super::migration::{RestoreProgress, SaveProgress};
use crate::ffi::base::HANDLE;
use crate::host::channel::OfferedChannel;
use crate::kernel::services::KernelServices;

/// Channels the driver's control device holds at most.
pub const CHANNELS: usize = 16;

/// Bits of a [`ChannelId`] that hold the slot index.
const INDEX_BITS: u32 = 8;
/// The generation wraps within 24 bits.
const GENERATION_MASK: u32 = 0x00FF_FFFF;

/// A channel's id as the IOCTL surface carries it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ChannelId(pub u32);

impl ChannelId {
    const fn new(index: usize, generation: u32) -> Self {
        // `index` < N <= 256 (asserted in `ChannelRegistry::new`).
        Self((generation << INDEX_BITS) | (index as u32 & 0xFF))
    }

    const fn index(self) -> usize {
        (self.0 & 0xFF) as usize
    }

    const fn generation(self) -> u32 {
        self.0 >> INDEX_BITS
    }
}

/// Who offered a channel: the file object of the handle the offer came through (an opaque
/// token, never dereferenced). Only that handle may act on the channel, and closing that
/// handle closes the channel (`IRP_MJ_CLEANUP`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Owner(pub usize);

impl Owner {
    /// The owner of a channel whose handle was cleaned up while a request held the channel:
    /// closed by the control device when that request ends. No file object has address 0, and
    /// no caller is ever this owner ([`ChannelRegistry::check_out`] refuses it).
    pub const ORPHANED: Self = Self(0);
}

/// A kernel handle ferry must close (`ZwClose`) after the channel that uses it is cleaned up:
/// the VM's VMBus handle from `VmbConvertVmbusHandleToKernelHandle`.
#[derive(Debug, PartialEq, Eq)]
pub struct KernelHandle(pub HANDLE);

// SAFETY: a kernel handle (OBJ_KERNEL_HANDLE) is valid in any thread context; only the value
// is carried.
unsafe impl Send for KernelHandle {}

impl KernelHandle {
    /// The raw value.
    #[must_use]
    pub const fn raw(&self) -> *mut c_void {
        self.0
    }
}

/// One offered channel and what the control device knows about it.
#[derive(Debug)]
pub struct Entry<K: KernelServices> {
    /// The channel.
    pub channel: OfferedChannel<K>,
    /// The VM's VMBus handle the channel was bound to (`None` for a loopback offer).
    pub vmbus: Option<KernelHandle>,
    /// The handle it belongs to.
    pub owner: Owner,
    /// Where an `IOCTL_FERRY_SAVE_CHANNEL` sequence is.
    pub save: SaveProgress,
    /// Where an `IOCTL_FERRY_RESTORE_CHANNEL` sequence is.
    pub restore: RestoreProgress,
}

impl<K: KernelServices> Entry<K> {
    /// A freshly offered channel: nothing saved or restored.
    #[must_use]
    pub const fn new(
        channel: OfferedChannel<K>,
        vmbus: Option<KernelHandle>,
        owner: Owner,
    ) -> Self {
        Self {
            channel,
            vmbus,
            owner,
            save: SaveProgress::Idle,
            restore: RestoreProgress::NotStarted,
        }
    }
}

/// Why the registry refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegistryError {
    /// Every slot holds a channel (or an offer in progress).
    Full,
    /// No channel of the caller's has this id (never offered, closed, or another handle's).
    Unknown(ChannelId),
    /// Another request is working on this channel right now.
    Busy(ChannelId),
}

enum SlotState<K: KernelServices> {
    Free,
    /// An offer by `owner` is being made into this slot; `doomed`: the owner's handle was
    /// cleaned up meanwhile.
    Reserved {
        owner: Owner,
        doomed: bool,
    },
    /// A channel at rest.
    Idle(Entry<K>),
    /// A request of `owner` has the channel checked out; `doomed` as for `Reserved`.
    InUse {
        owner: Owner,
        doomed: bool,
    },
}

struct Slot<K: KernelServices> {
    generation: u32,
    state: SlotState<K>,
}

impl<K: KernelServices> Slot<K> {
    const FREE: Self = Self {
        generation: 0,
        state: SlotState::Free,
    };
}

/// The registry: `N` slots behind the kernel's spin lock.
pub struct ChannelRegistry<K: KernelServices, const N: usize> {
    slots: Mutex<K::Lock, [Slot<K>; N]>,
}

impl<K: KernelServices, const N: usize> core::fmt::Debug for ChannelRegistry<K, N> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ChannelRegistry")
            .field("capacity", &N)
            .finish_non_exhaustive()
    }
}

impl<K: KernelServices, const N: usize> Default for ChannelRegistry<K, N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: KernelServices, const N: usize> ChannelRegistry<K, N> {
    /// An empty registry (usable in a `static`).
    #[must_use]
    pub const fn new() -> Self {
        const {
            assert!(N > 0 && N <= 256, "the slot index is 8 bits of a ChannelId");
        }
        Self {
            slots: Mutex::new([const { Slot::FREE }; N]),
        }
    }

    /// Reserves a free slot for an offer in progress by `owner`.
    ///
    /// # Errors
    ///
    /// [`RegistryError::Full`]; nothing changed.
    pub fn reserve(&self, owner: Owner) -> Result<Reservation<'_, K, N>, RegistryError> {
        let mut slots = self.slots.lock();
        let (index, slot) = slots
            .iter_mut()
            .enumerate()
            .find(|(_, slot)| matches!(slot.state, SlotState::Free))
            .ok_or(RegistryError::Full)?;
        let next = slot.generation.wrapping_add(1) & GENERATION_MASK;
        slot.generation = if next == 0 { 1 } else { next };
        slot.state = SlotState::Reserved {
            owner,
            doomed: false,
        };
        Ok(Reservation {
            registry: self,
            id: ChannelId::new(index, slot.generation),
            filled: false,
        })
    }

    /// Takes channel `id` of `owner` out of its slot for one request.
    ///
    /// # Errors
    ///
    /// [`RegistryError::Unknown`] (also for another owner's channel, and for
    /// [`Owner::ORPHANED`]) or [`RegistryError::Busy`]; nothing changed.
    pub fn check_out(
        &self,
        id: ChannelId,
        owner: Owner,
    ) -> Result<CheckedOut<'_, K, N>, RegistryError> {
        if owner == Owner::ORPHANED {
            return Err(RegistryError::Unknown(id));
        }
        let mut slots = self.slots.lock();
        let slot = slots
            .get_mut(id.index())
            .filter(|slot| slot.generation == id.generation())
            .ok_or(RegistryError::Unknown(id))?;
        match &slot.state {
            SlotState::Idle(entry) if entry.owner == owner => {}
            SlotState::InUse { .. } => return Err(RegistryError::Busy(id)),
            SlotState::Free | SlotState::Reserved { .. } | SlotState::Idle(_) => {
                return Err(RegistryError::Unknown(id));
            }
        }
        let in_use = SlotState::InUse {
            owner,
            doomed: false,
        };
        match core::mem::replace(&mut slot.state, in_use) {
            SlotState::Idle(entry) => Ok(CheckedOut {
                registry: self,
                id,
                entry: Some(entry),
            }),
            // Matched as Idle just above, under the same lock.
            other => {
                slot.state = other;
                Err(RegistryError::Unknown(id))
            }
        }
    }

    /// Removes and returns the first channel at rest for which `select` is true (for closing
    /// every channel of a handle, or all of them at unload). Channels checked out by a running
    /// request are not returned.
    pub fn take_first(&self, select: impl Fn(&Entry<K>) -> bool) -> Option<Entry<K>> {
        let mut slots = self.slots.lock();
        let slot = slots
            .iter_mut()
            .find(|slot| matches!(&slot.state, SlotState::Idle(entry) if select(entry)))?;
        match core::mem::replace(&mut slot.state, SlotState::Free) {
            SlotState::Idle(entry) => Some(entry),
            other => {
                slot.state = other;
                None
            }
        }
    }

    /// Marks every channel of `owner` that a request holds right now (checked out, or an offer
    /// not yet filled) to come back as [`Owner::ORPHANED`] (`IRP_MJ_CLEANUP` of its handle,
    /// before the channels at rest are taken); returns how many.
    pub fn doom(&self, owner: Owner) -> usize {
        let mut slots = self.slots.lock();
        let mut doomed = 0usize;
        for slot in slots.iter_mut() {
            if let SlotState::Reserved {
                owner: held_by,
                doomed: flag,
            }
            | SlotState::InUse {
                owner: held_by,
                doomed: flag,
            } = &mut slot.state
                && *held_by == owner
            {
                *flag = true;
                doomed = doomed.saturating_add(1);
            }
        }
        doomed
    }

    /// Slots not free (channels at rest, checked out, or being offered).
    #[must_use]
    pub fn len(&self) -> usize {
        self.slots
            .lock()
            .iter()
            .filter(|slot| !matches!(slot.state, SlotState::Free))
            .count()
    }

    /// Whether every slot is free.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn put(&self, id: ChannelId, state: SlotState<K>) {
        let mut slots = self.slots.lock();
        if let Some(slot) = slots.get_mut(id.index()) {
            slot.state = state;
        }
    }

    /// Puts `entry` at rest in the slot a request held (reserved or checked out); its owner
    /// becomes [`Owner::ORPHANED`] if the slot was doomed meanwhile.
    fn check_in(&self, id: ChannelId, mut entry: Entry<K>) {
        let mut slots = self.slots.lock();
        if let Some(slot) = slots.get_mut(id.index()) {
            if let SlotState::Reserved { doomed: true, .. }
            | SlotState::InUse { doomed: true, .. } = slot.state
            {
                entry.owner = Owner::ORPHANED;
            }
            slot.state = SlotState::Idle(entry);
        }
    }
}

/// A reserved slot; dropped without [`Reservation::fill`], it is free again.
pub struct Reservation<'a, K: KernelServices, const N: usize> {
    registry: &'a ChannelRegistry<K, N>,
    id: ChannelId,
    filled: bool,
}

impl<K: KernelServices, const N: usize> Reservation<'_, K, N> {
    /// The id the channel will have.
    #[must_use]
    pub const fn id(&self) -> ChannelId {
        self.id
    }

    /// Puts the offered channel into the slot (as an orphan if its owner's handle was
    /// cleaned up meanwhile); returns its id.
    pub fn fill(mut self, entry: Entry<K>) -> ChannelId {
        self.filled = true;
        self.registry.check_in(self.id, entry);
        self.id
    }
}

impl<K: KernelServices, const N: usize> Drop for Reservation<'_, K, N> {
    fn drop(&mut self) {
        if !self.filled {
            self.registry.put(self.id, SlotState::Free);
        }
    }
}

/// A channel checked out for one request; back in its slot when dropped, unless
/// [`CheckedOut::remove`]d.
pub struct CheckedOut<'a, K: KernelServices, const N: usize> {
    registry: &'a ChannelRegistry<K, N>,
    id: ChannelId,
    entry: Option<Entry<K>>,
}

impl<K: KernelServices, const N: usize> CheckedOut<'_, K, N> {
    /// The channel's id.
    #[must_use]
    pub const fn id(&self) -> ChannelId {
        self.id
    }

    /// The entry.
    ///
    /// # Errors
    ///
    /// [`RegistryError::Unknown`] after [`CheckedOut::remove`] (which consumes `self`, so
    /// never in practice).
    pub fn entry(&mut self) -> Result<&mut Entry<K>, RegistryError> {
        self.entry.as_mut().ok_or(RegistryError::Unknown(self.id))
    }

    /// Takes the entry out for good: the slot is free again.
    #[must_use]
    pub fn remove(mut self) -> Option<Entry<K>> {
        let entry = self.entry.take();
        self.registry.put(self.id, SlotState::Free);
        entry
    }
}

impl<K: KernelServices, const N: usize> Drop for CheckedOut<'_, K, N> {
    fn drop(&mut self) {
        if let Some(entry) = self.entry.take() {
            self.registry.check_in(self.id, entry);
        }
    }
}
