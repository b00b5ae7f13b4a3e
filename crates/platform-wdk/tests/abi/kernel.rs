//! The kernel services of the test host: a spin lock, a clock the test advances, and the
//! process allocator with a count of live blocks (so tests can assert nothing leaked and
//! nothing was freed twice).

use std::alloc::{Layout, alloc_zeroed, dealloc};
use std::fmt;
use std::ptr::NonNull;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};

use ferry_core::lock::SpinRawLock;
use ferry_core::platform::Ticks;
use ferry_platform_wdk::kernel::log::Level;
use ferry_platform_wdk::kernel::services::KernelServices;

static CLOCK: AtomicU64 = AtomicU64::new(1_000);
static LIVE_BLOCKS: AtomicI64 = AtomicI64::new(0);
static FAIL_ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);
static LOG: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// The test host's kernel.
pub enum TestKernel {}

impl KernelServices for TestKernel {
    type Lock = SpinRawLock;

    fn now() -> Ticks {
        Ticks(CLOCK.load(Ordering::SeqCst))
    }

    fn allocate_zeroed(len: usize) -> Option<NonNull<u8>> {
        if FAIL_ALLOCATIONS
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return None;
        }
        let layout = Layout::from_size_align(len, 16).ok()?;
        // SAFETY: `len` is never zero (the trait's contract), so the layout is non-zero-sized.
        let block = NonNull::new(unsafe { alloc_zeroed(layout) })?;
        LIVE_BLOCKS.fetch_add(1, Ordering::SeqCst);
        Some(block)
    }

    unsafe fn free(block: NonNull<u8>, len: usize) {
        let layout = Layout::from_size_align(len, 16).expect("layout of an allocated block");
        LIVE_BLOCKS.fetch_sub(1, Ordering::SeqCst);
        // SAFETY: the caller passes a block from `allocate_zeroed(len)`, same layout.
        unsafe { dealloc(block.as_ptr(), layout) };
    }

    fn log(level: Level, args: fmt::Arguments<'_>) {
        LOG.lock().unwrap().push(format!("{level:?}: {args}"));
    }
}

/// Blocks allocated through the kernel services and not freed.
pub fn live_blocks() -> i64 {
    LIVE_BLOCKS.load(Ordering::SeqCst)
}

/// Makes the next `n` allocations fail.
pub fn fail_next_allocations(n: usize) {
    FAIL_ALLOCATIONS.store(n, Ordering::SeqCst);
}

/// Advances the clock.
pub fn advance(ticks: u64) {
    CLOCK.fetch_add(ticks, Ordering::SeqCst);
}

/// Takes the lines logged so far.
pub fn take_log() -> Vec<String> {
    std::mem::take(&mut LOG.lock().unwrap())
}
