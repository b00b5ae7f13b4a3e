//! [`KernelSpinLock`]: a `KSPIN_LOCK` as ferry-core's [`RawLock`].

use core::cell::UnsafeCell;

use ferry_core::lock::RawLock;

use crate::ffi::ntoskrnl::imports::{KeAcquireSpinLockRaiseToDpc, KeReleaseSpinLock};
use crate::ffi::ntoskrnl::{KIRQL, KSPIN_LOCK};

/// An executive spin lock: `lock` raises to `DISPATCH_LEVEL` and spins
/// (`KeAcquireSpinLockRaiseToDpc`); the token is the previous IRQL, which `unlock` restores
/// (`KeReleaseSpinLock`).
///
/// Rules the kernel imposes, which callers of `lock` must keep:
///
/// * the lock lives in non-paged memory: a `static` in the driver image (ferry puts no code or
///   data in pageable sections) or non-paged pool ([`crate::kernel::pool`]);
/// * `lock` is called at IRQL <= `DISPATCH_LEVEL`, and the holder does not wait, page-fault or
///   touch pageable memory until `unlock` (core's [`MutexGuard`] rules already forbid waiting);
/// * locks taken together are always taken in the same order.
///
/// [`MutexGuard`]: ferry_core::lock::MutexGuard
#[derive(Debug)]
pub struct KernelSpinLock(UnsafeCell<KSPIN_LOCK>);

// SAFETY: the KSPIN_LOCK word is only touched by the kernel's interlocked acquire/release
// routines, which are designed to be called from any CPU.
unsafe impl Sync for KernelSpinLock {}
// SAFETY: an unlocked KSPIN_LOCK is a plain zero word with no thread affinity; a held one
// cannot be moved because the holder's guard borrows it.
unsafe impl Send for KernelSpinLock {}

// SAFETY: KeAcquireSpinLockRaiseToDpc returns only once this CPU owns the lock word, and no
// other CPU can acquire it until KeReleaseSpinLock, so `lock`/`unlock` provide mutual exclusion.
unsafe impl RawLock for KernelSpinLock {
    type Token = KIRQL;

    /// `KeInitializeSpinLock` stores zero: an all-zero word is an unlocked spin lock.
    const UNLOCKED: Self = Self(UnsafeCell::new(0));

    fn lock(&self) -> KIRQL {
        // SAFETY: the pointer is to this lock's own word, valid for as long as `self`; the
        // non-paged-memory and IRQL rules are the type's documented contract.
        unsafe { KeAcquireSpinLockRaiseToDpc(self.0.get()) }
    }

    unsafe fn unlock(&self, old_irql: KIRQL) {
        // SAFETY: the caller holds the lock and passes the IRQL its `lock` returned
        // (RawLock::unlock's contract), which is what KeReleaseSpinLock requires.
        unsafe { KeReleaseSpinLock(self.0.get(), old_irql) }
    }
}
