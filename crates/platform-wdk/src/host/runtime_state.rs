//! [`RuntimeStates`]: the buffers ferry hands to WFP from the runtime-state save callback.
//!
//! **Ownership — the one place to change.** Who frees the buffer a save callback returns
//! through `*runtimeState` is not documented (`wfp-vswitch.md` §4.3): no free callback, no
//! "copy done" notification, no pool type or tag. Both guesses fail badly when wrong: if ferry
//! frees and WFP reads later, WFP reads freed memory; if WFP frees, ferry's free is a double
//! free. ferry therefore takes the choice that is safe under the one guarantee it can rely on —
//! that WFP has finished with a port's blob by the time it asks for the next save of that port
//! or deletes the port:
//!
//! * the buffer is **driver-owned** (allocated with ferry's kernel services, non-paged, tagged
//!   `Fery`);
//! * it is kept, one per port, **until the next save of that port** replaces it, the port is
//!   deleted, or the driver unloads after unsubscribing — never freed while WFP may still read
//!   it;
//! * if WFP does free it itself, Driver Verifier reports a double free at the next save of the
//!   port (a clear failure on a test host, the experiment §4.3 asks for), not silent corruption.
//!
//! The cost is one blob per port held in memory between saves (a few KiB each). If a Hyper-V
//! test shows WFP frees the block, replace [`RuntimeStates::publish`] with a hand-over that
//! does not record the block; nothing else changes.

use core::ptr::NonNull;

use ferry_core::lock::Mutex;
use ferry_core::port::SwitchPortId;

use super::PORTS;
use crate::kernel::services::KernelServices;

/// One published blob.
struct Published {
    port: SwitchPortId,
    block: NonNull<u8>,
    len: usize,
}

// SAFETY: the block is plain non-paged memory owned by this record; no thread affinity.
unsafe impl Send for Published {}

/// A driver-owned block of `len` bytes from the kernel services, freed on drop unless
/// published.
pub struct StateBuffer<K: KernelServices> {
    block: NonNull<u8>,
    len: usize,
    kernel: core::marker::PhantomData<fn() -> K>,
}

impl<K: KernelServices> StateBuffer<K> {
    /// `len` zeroed bytes; `None` if `len` is zero or memory is exhausted.
    #[must_use]
    pub fn allocate(len: usize) -> Option<Self> {
        if len == 0 {
            return None;
        }
        K::allocate_zeroed(len).map(|block| Self {
            block,
            len,
            kernel: core::marker::PhantomData,
        })
    }

    /// The bytes, writable.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: `block` is `len` initialised (zeroed) bytes owned by `self`.
        unsafe { core::slice::from_raw_parts_mut(self.block.as_ptr(), self.len) }
    }
}

impl<K: KernelServices> Drop for StateBuffer<K> {
    fn drop(&mut self) {
        // SAFETY: allocated with this length by `allocate`, owned, never used again.
        unsafe { K::free(self.block, self.len) };
    }
}

/// The published runtime-state blobs, one per port.
pub struct RuntimeStates<K: KernelServices> {
    slots: Mutex<K::Lock, [Option<Published>; PORTS]>,
}

impl<K: KernelServices> RuntimeStates<K> {
    /// No blob published.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            slots: Mutex::new([const { None }; PORTS]),
        }
    }

    /// Publishes the first `len` bytes of `buffer` as `port`'s blob and returns the address
    /// and length to hand to WFP. The port's previous blob is freed (WFP asked for a new save,
    /// so it is done with the old one). If every slot is taken (more ports saved than the port
    /// table holds — impossible while ports are deleted through the vSwitch callbacks) the
    /// buffer is refused and `None` returned: refusing the save is safe, dropping a live blob
    /// is not.
    pub fn publish(
        &self,
        port: SwitchPortId,
        buffer: StateBuffer<K>,
        len: usize,
    ) -> Option<(NonNull<u8>, usize)> {
        let published = Published {
            port,
            block: buffer.block,
            len: buffer.len,
        };
        let handed = (buffer.block, len.min(buffer.len));
        let previous = {
            let mut slots = self.slots.lock();
            if let Some(slot) = slots
                .iter_mut()
                .find(|slot| slot.as_ref().is_some_and(|p| p.port == port))
            {
                slot.replace(published)
            } else if let Some(free) = slots.iter_mut().find(|slot| slot.is_none()) {
                *free = Some(published);
                None
            } else {
                return None;
            }
        };
        // Ownership moved into the slot; the StateBuffer must not free it.
        core::mem::forget(buffer);
        if let Some(previous) = previous {
            Self::free(previous);
        }
        Some(handed)
    }

    /// Frees `port`'s blob (the port was deleted). Returns whether there was one.
    pub fn release(&self, port: SwitchPortId) -> bool {
        let taken = self
            .slots
            .lock()
            .iter_mut()
            .find(|slot| slot.as_ref().is_some_and(|p| p.port == port))
            .and_then(Option::take);
        taken.map(Self::free).is_some()
    }

    /// Frees every blob (unload, after unsubscribing). Returns how many there were.
    pub fn release_all(&self) -> usize {
        let mut released = 0usize;
        for index in 0..PORTS {
            let taken = self.slots.lock().get_mut(index).and_then(Option::take);
            if let Some(published) = taken {
                Self::free(published);
                released = released.saturating_add(1);
            }
        }
        released
    }

    /// Number of blobs held.
    #[must_use]
    pub fn len(&self) -> usize {
        self.slots.lock().iter().flatten().count()
    }

    /// Whether no blob is held.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn free(published: Published) {
        // SAFETY: the block came from `StateBuffer::allocate` with this length and was owned
        // by the slot it was just taken from.
        unsafe { K::free(published.block, published.len) };
    }
}

impl<K: KernelServices> Default for RuntimeStates<K> {
    fn default() -> Self {
        Self::new()
    }
}
