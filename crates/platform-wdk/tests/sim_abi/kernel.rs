//! The kernel services of simulated host `N` ([`SimKernel`]): the host's clock (virtual time
//! with the host's own offset, so a migration crosses clocks), the process allocator with a
//! count of live blocks per host (so a scenario can assert that unload freed everything), a
//! spin lock, and a log kept per host.
//!
//! tests/abi's `TestKernel` has a clock the test advances by hand and one global count; this
//! one reads the simulated host's clock and counts per host, which is what lets two hosts run
//! side by side.

use std::alloc::{Layout, alloc_zeroed, dealloc};
use std::fmt;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicI64, Ordering};

use ferry_core::lock::SpinRawLock;
use ferry_core::platform::Ticks;
use ferry_platform_wdk::kernel::log::Level;
use ferry_platform_wdk::kernel::services::KernelServices;

use crate::sim_host::host;

/// Blocks allocated and not freed, per host.
static LIVE_BLOCKS: [AtomicI64; crate::ferry_hosts::HOSTS] =
    [const { AtomicI64::new(0) }; crate::ferry_hosts::HOSTS];

/// The kernel of simulated host `N`.
pub enum SimKernel<const N: usize> {}

impl<const N: usize> KernelServices for SimKernel<N> {
    type Lock = SpinRawLock;

    fn now() -> Ticks {
        host(N).map_or(Ticks(0), |h| h.services.clock.now())
    }

    fn allocate_zeroed(len: usize) -> Option<NonNull<u8>> {
        let layout = Layout::from_size_align(len, 16).ok()?;
        // SAFETY: `len` is never zero (the trait's contract), so the layout is non-zero-sized.
        let block = NonNull::new(unsafe { alloc_zeroed(layout) })?;
        LIVE_BLOCKS[N].fetch_add(1, Ordering::SeqCst);
        Some(block)
    }

    unsafe fn free(block: NonNull<u8>, len: usize) {
        let Ok(layout) = Layout::from_size_align(len, 16) else {
            return;
        };
        LIVE_BLOCKS[N].fetch_sub(1, Ordering::SeqCst);
        // SAFETY: the caller passes a block from `allocate_zeroed(len)`, same layout.
        unsafe { dealloc(block.as_ptr(), layout) };
    }

    fn log(level: Level, args: fmt::Arguments<'_>) {
        if let Some(h) = host(N) {
            h.abi.log.borrow_mut().push(format!("{level:?}: {args}"));
        }
    }
}

/// Blocks host `index`'s driver allocated and did not free.
pub fn live_blocks(index: usize) -> i64 {
    LIVE_BLOCKS[index].load(Ordering::SeqCst)
}
