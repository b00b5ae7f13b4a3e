//! `ntoskrnl.exe`'s executive services for the driver: pool (the process allocator, every
//! block accounted by tag so that a test can assert unload freed everything), spin locks (an
//! atomic word, with a per-thread IRQL), `KeDelayExecutionThread`, the interrupt-time clock
//! (the loaded host's), `KeBugCheckEx` (aborts the test process) and the sink of `DbgPrintEx`
//! (defined in `c/dbgprint.c`).

use std::alloc::{Layout, alloc_zeroed, dealloc};
use std::cell::Cell;
use std::collections::BTreeMap;
use std::ffi::{c_char, c_void};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

use ferry_core::status::NtStatus;
use ferry_platform_wdk::ffi::ntoskrnl::wait::KPROCESSOR_MODE;
use ferry_platform_wdk::ffi::ntoskrnl::{
    APC_LEVEL, DISPATCH_LEVEL, DPFLTR_IHVDRIVER_ID, KIRQL, KSPIN_LOCK, PASSIVE_LEVEL,
    POOL_FLAG_NON_PAGED, POOL_FLAG_PAGED, POOL_FLAGS,
};

use super::{called, export, loaded_host, violation};
use crate::sim_host::host;

thread_local! {
    /// This thread's IRQL.
    static IRQL: Cell<KIRQL> = const { Cell::new(PASSIVE_LEVEL) };
}

/// This thread's IRQL.
#[must_use]
pub fn irql() -> KIRQL {
    IRQL.with(Cell::get)
}

/// Records a violation if `name`, a `PASSIVE_LEVEL`-only service, is called above it.
pub(crate) fn require_passive(name: &str) {
    let irql = irql();
    if irql != PASSIVE_LEVEL {
        violation(format!("{name} at IRQL {irql} (PASSIVE_LEVEL only)"));
    }
}

// ---------------------------------------------------------------------------------------------
// Pool
// ---------------------------------------------------------------------------------------------

/// Live pool blocks: address -> (bytes, tag).
static POOL: Mutex<BTreeMap<usize, (usize, u32)>> = Mutex::new(BTreeMap::new());

/// Pool blocks allocated and not freed, as `(blocks, bytes)`.
#[must_use]
pub fn live_pool() -> (usize, usize) {
    let pool = POOL.lock().unwrap_or_else(PoisonError::into_inner);
    (pool.len(), pool.values().map(|(bytes, _)| bytes).sum())
}

/// Every pool block is 16-byte aligned on x64.
fn pool_layout(bytes: usize) -> Option<Layout> {
    Layout::from_size_align(bytes.max(1), 16).ok()
}

export! {
    /// `ExAllocatePool2`: zeroed blocks of the process allocator, accounted by tag.
    ferry_platform_wdk::ffi::ntoskrnl::imports::ExAllocatePool2 =>
    fn ExAllocatePool2(Flags: POOL_FLAGS, NumberOfBytes: usize, Tag: u32) -> *mut c_void {
        called("ExAllocatePool2");
        if Flags & POOL_FLAG_PAGED != 0 && irql() > APC_LEVEL {
            violation(format!("ExAllocatePool2 of paged pool at IRQL {}", irql()));
        }
        if Flags & POOL_FLAG_NON_PAGED == 0 && irql() >= DISPATCH_LEVEL {
            violation(format!("ExAllocatePool2 without POOL_FLAG_NON_PAGED at IRQL {}", irql()));
        }
        if Tag == 0 {
            violation("ExAllocatePool2 with tag 0".into());
        }
        let Some(layout) = pool_layout(NumberOfBytes) else {
            return std::ptr::null_mut();
        };
        // SAFETY: a non-zero-sized layout.
        let block = unsafe { alloc_zeroed(layout) };
        if !block.is_null() {
            POOL.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(block.addr(), (NumberOfBytes, Tag));
        }
        block.cast()
    }
}

export! {
    /// `ExFreePoolWithTag`: a block that is not live, or a tag that is not the block's, is a
    /// violation (Windows bug-checks) and the block is not touched.
    ferry_platform_wdk::ffi::ntoskrnl::imports::ExFreePoolWithTag =>
    fn ExFreePoolWithTag(P: *mut c_void, Tag: u32) {
        called("ExFreePoolWithTag");
        let entry = POOL.lock().unwrap_or_else(PoisonError::into_inner).remove(&P.addr());
        match entry {
            None => violation(format!("ExFreePoolWithTag({P:p}): not a live pool block")),
            Some((bytes, tag)) if tag != Tag => {
                violation(format!("ExFreePoolWithTag({P:p}, {Tag:#x}): allocated with tag {tag:#x}"));
                POOL.lock().unwrap_or_else(PoisonError::into_inner).insert(P.addr(), (bytes, tag));
            }
            Some((bytes, _)) => {
                if let Some(layout) = pool_layout(bytes) {
                    // SAFETY: allocated by ExAllocatePool2 above with this layout, and removed
                    // from the live set, so freed once.
                    unsafe { dealloc(P.cast(), layout) };
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Spin locks and waits
// ---------------------------------------------------------------------------------------------

export! {
    /// `KeAcquireSpinLockRaiseToDpc`: raises this thread to `DISPATCH_LEVEL` and takes the
    /// word (an atomic compare-exchange, spinning). Not recorded in [`super::calls`]: the
    /// driver takes locks constantly.
    ferry_platform_wdk::ffi::ntoskrnl::imports::KeAcquireSpinLockRaiseToDpc =>
    fn KeAcquireSpinLockRaiseToDpc(SpinLock: *mut KSPIN_LOCK) -> KIRQL {
        let old = irql();
        if old > DISPATCH_LEVEL {
            violation(format!("KeAcquireSpinLockRaiseToDpc at IRQL {old}"));
        }
        IRQL.with(|irql| irql.set(DISPATCH_LEVEL));
        // SAFETY: the driver's KSPIN_LOCK: an aligned, live word only ever touched through
        // these two functions (the lock's contract), so atomic access is sound.
        let word = unsafe { AtomicUsize::from_ptr(SpinLock) };
        while word
            .compare_exchange_weak(0, 1, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            std::hint::spin_loop();
        }
        old
    }
}

export! {
    /// `KeReleaseSpinLock`: releases the word and restores `NewIrql`.
    ferry_platform_wdk::ffi::ntoskrnl::imports::KeReleaseSpinLock =>
    fn KeReleaseSpinLock(SpinLock: *mut KSPIN_LOCK, NewIrql: KIRQL) {
        // SAFETY: as in KeAcquireSpinLockRaiseToDpc.
        let word = unsafe { AtomicUsize::from_ptr(SpinLock) };
        if word.swap(0, Ordering::Release) != 1 {
            violation("KeReleaseSpinLock of a lock that is not held".into());
        }
        if irql() != DISPATCH_LEVEL {
            violation(format!("KeReleaseSpinLock at IRQL {}", irql()));
        }
        IRQL.with(|irql| irql.set(NewIrql));
    }
}

export! {
    /// `KeDelayExecutionThread`: yields the thread (no real wait: time is the simulation's).
    ferry_platform_wdk::ffi::ntoskrnl::wait::KeDelayExecutionThread =>
    fn KeDelayExecutionThread(WaitMode: KPROCESSOR_MODE, Alertable: u8, Interval: *mut i64) -> NtStatus {
        called("KeDelayExecutionThread");
        if irql() > APC_LEVEL {
            violation(format!("KeDelayExecutionThread at IRQL {}", irql()));
        }
        // SAFETY: the driver passes a readable interval (or NULL, a violation).
        let interval = unsafe { Interval.as_ref() }.copied();
        if WaitMode != 0 || Alertable != 0 || interval.is_none_or(|i| i >= 0) {
            violation(format!(
                "KeDelayExecutionThread({WaitMode}, {Alertable}, {interval:?}): a kernel-mode, non-alertable, relative wait"
            ));
        }
        std::thread::yield_now();
        NtStatus::SUCCESS
    }
}

// ---------------------------------------------------------------------------------------------
// Clock, bug check, debug print
// ---------------------------------------------------------------------------------------------

export! {
    /// `KeQueryInterruptTimePrecise`, which stands in for the `KUSER_SHARED_DATA` read of
    /// `KeQueryInterruptTime` on Linux (substitution 1): the loaded host's clock. The
    /// performance-counter out-parameter, if any, gets the same value.
    ferry_platform_wdk::ffi::ntoskrnl::host_substitute::KeQueryInterruptTimePrecise =>
    fn KeQueryInterruptTimePrecise(QpcTimeStamp: *mut u64) -> u64 {
        let now = host(loaded_host()).map_or(0, |h| h.services.clock.now().0);
        if !QpcTimeStamp.is_null() {
            // SAFETY: a non-NULL out-parameter from the caller.
            unsafe { QpcTimeStamp.write(now) };
        }
        now
    }
}

export! {
    /// `KeBugCheckEx` (substitution 3): prints the stop code and aborts the process, which
    /// fails the test run. An `extern "system"` function cannot unwind, so this cannot be a
    /// panic caught by the test harness.
    ferry_platform_wdk::ffi::ntoskrnl::imports::KeBugCheckEx =>
    fn KeBugCheckEx(
        BugCheckCode: u32,
        BugCheckParameter1: usize,
        BugCheckParameter2: usize,
        BugCheckParameter3: usize,
        BugCheckParameter4: usize,
    ) -> ! {
        eprintln!(
            "KeBugCheckEx({BugCheckCode:#010x}, {BugCheckParameter1:#x}, {BugCheckParameter2:#x}, {BugCheckParameter3:#x}, {BugCheckParameter4:#x}): the driver stopped the machine"
        );
        for line in debug_output() {
            eprintln!("  debug output: {line}");
        }
        std::process::abort()
    }
}

/// What the driver printed with `DbgPrintEx`, as `(level, line)`.
static DEBUG_OUTPUT: Mutex<Vec<(u32, String)>> = Mutex::new(Vec::new());

/// The lines the driver printed since the last [`take_debug_output`] (kept).
#[must_use]
pub fn debug_output() -> Vec<String> {
    DEBUG_OUTPUT
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .iter()
        .map(|(level, line)| format!("[{level}] {line}"))
        .collect()
}

/// The lines the driver printed, as `(DPFLTR level, text)`; the list is emptied.
pub fn take_debug_output() -> Vec<(u32, String)> {
    std::mem::take(&mut *DEBUG_OUTPUT.lock().unwrap_or_else(PoisonError::into_inner))
}

/// Most bytes one `DbgPrintEx` call prints (`dpfilter.h`: longer output is cut).
const DBGPRINT_LIMIT: usize = 512;

/// Where `c/dbgprint.c`'s `DbgPrintEx` delivers each formatted line (substitution 2).
///
/// # Safety
///
/// `text` points to `len` readable bytes (the C side's formatting buffer).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ferry_sim_abi_debug_print(
    component: u32,
    level: u32,
    text: *const c_char,
    len: usize,
    full_len: usize,
) {
    if component != DPFLTR_IHVDRIVER_ID {
        violation(format!(
            "DbgPrintEx with component {component} (ferry uses DPFLTR_IHVDRIVER_ID)"
        ));
    }
    if full_len > DBGPRINT_LIMIT {
        violation(format!(
            "DbgPrintEx of {full_len} bytes (at most {DBGPRINT_LIMIT} are printed)"
        ));
    }
    let bytes = if text.is_null() || len == 0 {
        &[][..]
    } else {
        // SAFETY: the caller's contract.
        unsafe { std::slice::from_raw_parts(text.cast::<u8>(), len) }
    };
    let line = String::from_utf8_lossy(bytes)
        .trim_end_matches('\n')
        .to_owned();
    DEBUG_OUTPUT
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push((level, line));
}
