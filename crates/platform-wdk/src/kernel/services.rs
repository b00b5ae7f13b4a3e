//! [`KernelServices`]: the kernel calls the platform makes that are not KMCL or WFP — the
//! lock, the clock and non-paged pool — behind one trait, so that host tests can run the whole
//! platform (trampolines included) on Linux with a substitute.
//!
//! In `ferry.sys` the implementation is [`NtKernel`]: `KSPIN_LOCK`,
//! `KeQueryInterruptTime`, `ExAllocatePool2(POOL_FLAG_NON_PAGED, .., 'Fery')`. Host tests supply
//! their own (a spin lock, a counter clock, the process allocator with leak accounting).

use core::fmt;
use core::ptr::NonNull;

use ferry_core::lock::RawLock;
use ferry_core::platform::Ticks;

use crate::kernel::log::Level;

/// The kernel services the platform and its trampolines use. Associated functions, not
/// methods: a trampoline has no context object to call them on.
pub trait KernelServices: 'static {
    /// The lock for every table the platform shares between callbacks (raises to
    /// `DISPATCH_LEVEL` on Windows).
    type Lock: RawLock + Send + Sync;

    /// The monotonic clock (`KeQueryInterruptTime`).
    fn now() -> Ticks;

    /// `len` zeroed bytes of memory usable at `DISPATCH_LEVEL`, 16-byte aligned, or `None`
    /// when none is left. `len` is never zero.
    fn allocate_zeroed(len: usize) -> Option<NonNull<u8>>;

    /// Frees a block from [`KernelServices::allocate_zeroed`].
    ///
    /// # Safety
    ///
    /// `block` came from `allocate_zeroed(len)` with this `len`, and is not used again.
    unsafe fn free(block: NonNull<u8>, len: usize);

    /// Reports something the driver should know about (a callback core refused, a failed
    /// allocation): `DbgPrintEx` in the kernel. Must be callable at `DISPATCH_LEVEL`.
    fn log(level: Level, args: fmt::Arguments<'_>);

    /// Gives the CPU away for a moment before a retry (`PASSIVE_LEVEL` only): used while the
    /// filter engine refuses to unregister a callout (`host::filters`). The default spins once,
    /// which is what a host test wants.
    fn pause() {
        core::hint::spin_loop();
    }
}

/// The real kernel: executive spin lock, interrupt time, tagged non-paged pool
/// ([`crate::kernel::pool::FERRY_POOL_TAG`]), all through `ntoskrnl.exe` imports. Compiled on
/// every target; on the Linux host only a test binary that defines the imports (ferry-sim-abi's
/// `nt` module) may use it.
#[derive(Debug)]
pub enum NtKernel {}

impl KernelServices for NtKernel {
    type Lock = crate::kernel::spin_lock::KernelSpinLock;

    fn now() -> Ticks {
        crate::kernel::clock::interrupt_time()
    }

    fn allocate_zeroed(len: usize) -> Option<NonNull<u8>> {
        crate::kernel::pool::PoolBuffer::allocate_zeroed(len)
            .ok()
            .map(|buffer| buffer.into_raw().0)
    }

    fn log(level: Level, args: fmt::Arguments<'_>) {
        crate::kernel::log::log(level, args);
    }

    unsafe fn free(block: NonNull<u8>, len: usize) {
        // SAFETY: the caller passes a block from `allocate_zeroed(len)`, which came from
        // `PoolBuffer::into_raw` with this length; dropping the rebuilt buffer frees it once.
        drop(unsafe { crate::kernel::pool::PoolBuffer::from_raw(block, len) });
    }

    /// One millisecond of `KeDelayExecutionThread` (kernel mode, not alertable).
    fn pause() {
        use crate::ffi::ntoskrnl::wait::{KERNEL_MODE, KeDelayExecutionThread};
        // Negative: relative, in 100 ns units.
        let mut interval: i64 = -10_000;
        // SAFETY: called at PASSIVE_LEVEL (the trait's contract); a valid interval.
        let _ = unsafe { KeDelayExecutionThread(KERNEL_MODE, 0, &raw mut interval) };
    }
}
