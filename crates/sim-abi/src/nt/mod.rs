//! The kernel `ferry.sys` imports, as a Linux test binary provides it: every function the
//! driver imports from `ntoskrnl.exe`, `vmbkmclr.sys`, `fwpkclnt.sys` and `ndis.sys`, defined
//! here under its C name (`#[unsafe(no_mangle)]`) with its C signature, so that the driver's
//! own code — `DriverEntry`, the IRP dispatch, unload, the statics over
//! `KmclTable::from_imports()` / `WfpTable::from_imports()` — links and runs unchanged.
//!
//! On Windows the imports are `raw-dylib`; on other targets platform-wdk's `extern` blocks
//! have no `link` attribute, so they are plain undefined symbols which the definitions here
//! satisfy at link time. Each definition is checked at compile time to have exactly the C type
//! of platform-wdk's declaration (the [`export!`] macro coerces both to one function-pointer
//! type), so a signature that drifted would not build.
//!
//! **Where each import goes.**
//!
//! | imports | forwarded to |
//! |---|---|
//! | `Vmb*` (the 33 of `KmclTable`) | the simulated KMCL of the host the driver is loaded on ([`crate::kmcl_table`]), through its `KMCL_SERVER_INTERFACE_V1` ([`kmcl`]) |
//! | `FwpsvSwitch*` | that host's WFP vSwitch functions ([`crate::wfp_table`]) ([`wfp`]) |
//! | `Fwpm*`, `FwpsCallout*`, `NdisGetDataBuffer` | the fake filter engine ([`crate::fake_engine`]) ([`wfp`]) |
//! | `Io*`, `IofCompleteRequest`, `ObSetSecurityObjectByPointer`, `ZwClose` | a fake I/O manager that also builds the IRPs the tests send ([`io`]) |
//! | `ExAllocatePool2`, `ExFreePoolWithTag`, spin locks, `KeDelayExecutionThread` | the process allocator with per-tag accounting, an atomic spin lock with a per-thread IRQL ([`kernel`]) |
//!
//! **Substitutions** — the places where the Linux run cannot be what Windows does, all listed
//! here:
//!
//! 1. `KeQueryInterruptTime` is, in the WDK, a read of `KUSER_SHARED_DATA` at a kernel-only
//!    address. On other targets platform-wdk calls the export `KeQueryInterruptTimePrecise`
//!    instead (`crates/platform-wdk/src/ffi/ntoskrnl.rs`, the only target-dependent code in
//!    platform-wdk), which [`kernel`] defines as the loaded host's clock.
//! 2. `DbgPrintEx` is variadic, and stable Rust cannot define a variadic function: it is
//!    defined in C (`c/dbgprint.c`, built by this crate's build script with the `cc` crate),
//!    formats with `vsnprintf` and hands the line to [`kernel`], which keeps it.
//! 3. `KeBugCheckEx` cannot stop a machine: it prints the code and parameters and aborts the
//!    test process (a Rust panic cannot unwind out of an `extern "system"` function). A test
//!    run that reaches it fails.
//! 4. IRQL is not real: [`kernel`] tracks it per thread (spin locks raise it to
//!    `DISPATCH_LEVEL`), and the PASSIVE-only imports record a violation when called above
//!    `PASSIVE_LEVEL`. KMCL and WFP callbacks into the driver run at `PASSIVE_LEVEL` here.
//!
//! **State.** The driver's statics exist once per process, so the driver is loaded on one
//! simulated host at a time ([`io::load`] names it); tests that load it hold [`serial`].
//! Every import called is recorded in order ([`calls`]), which is how tests assert the load
//! and unload orders across subsystems; any import that returns an `NTSTATUS` can be made to
//! fail ([`fail`]); every broken rule is recorded ([`take_violations`]) rather than panicked
//! on.

pub mod io;
pub mod kernel;
pub mod kmcl;
pub mod wfp;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use ferry_core::status::NtStatus;

/// Defines an import: `$import` is platform-wdk's declaration, `$name` the definition with
/// its C name. The `const` block coerces both to the same function-pointer type, so the
/// definition's parameter and return types must be the declaration's.
macro_rules! export {
    (
        $(#[$meta:meta])*
        $import:path => fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block
    ) => {
        $(#[$meta])*
        ///
        /// # Safety
        ///
        /// Called by the driver with the arguments the C contract of the import allows.
        #[unsafe(no_mangle)]
        #[allow(non_snake_case)]
        pub unsafe extern "system" fn $name($($arg: $ty),*) $(-> $ret)? $body

        const _: () = {
            let _same_c_type: [unsafe extern "system" fn($($ty),*) $(-> $ret)?; 2] =
                [$import, $name];
        };
    };
}
pub(crate) use export;

/// Simulated hosts the driver can be loaded on (indices of [`crate::sim_host::install`]).
pub const MAX_HOSTS: usize = 3;

/// No host: the driver is not loaded.
const NOT_LOADED: usize = usize::MAX;

/// The host the driver's image is loaded on.
static LOADED_ON: AtomicUsize = AtomicUsize::new(NOT_LOADED);

/// The host the driver is loaded on; a call while it is not loaded is a harness bug (the
/// process aborts, as no import may be reached then).
pub(crate) fn loaded_host() -> usize {
    let host = LOADED_ON.load(Ordering::SeqCst);
    if host >= MAX_HOSTS {
        eprintln!("an import was called while the driver is not loaded on any host");
        std::process::abort();
    }
    host
}

/// Whether the driver is loaded on a host now.
#[must_use]
pub fn loaded() -> bool {
    LOADED_ON.load(Ordering::SeqCst) < MAX_HOSTS
}

/// One import call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Call {
    /// The import's C name.
    pub name: &'static str,
    /// Whether it returns an `NTSTATUS` (and so can be made to fail with [`fail`]).
    pub fallible: bool,
}

/// A failure to inject: the `occurrence`-th (0-based) next call of `name` returns `status`
/// without reaching the host.
#[derive(Clone, Copy, Debug)]
struct Injection {
    name: &'static str,
    occurrence: u32,
    status: NtStatus,
}

#[derive(Default)]
struct Record {
    calls: Vec<Call>,
    violations: Vec<String>,
    injection: Option<Injection>,
}

static RECORD: Mutex<Record> = Mutex::new(Record {
    calls: Vec::new(),
    violations: Vec::new(),
    injection: None,
});

fn record() -> MutexGuard<'static, Record> {
    RECORD.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Records a call of an import that returns nothing to fail with.
pub(crate) fn called(name: &'static str) {
    record().calls.push(Call {
        name,
        fallible: false,
    });
}

/// Records a call of an `NTSTATUS` import; returns the injected status if this call is to fail.
pub(crate) fn called_fallible(name: &'static str) -> Option<NtStatus> {
    let mut record = record();
    record.calls.push(Call {
        name,
        fallible: true,
    });
    match &mut record.injection {
        Some(injection) if injection.name == name && injection.occurrence == 0 => {
            let status = injection.status;
            record.injection = None;
            Some(status)
        }
        Some(injection) if injection.name == name => {
            injection.occurrence -= 1;
            None
        }
        _ => None,
    }
}

/// Records a broken rule.
pub(crate) fn violation(text: String) {
    record().violations.push(text);
}

/// The imports called since the last [`take_calls`], in order.
pub fn take_calls() -> Vec<Call> {
    std::mem::take(&mut record().calls)
}

/// The names of the imports called since the last [`take_calls`] (kept), in order.
pub fn calls() -> Vec<&'static str> {
    record().calls.iter().map(|c| c.name).collect()
}

/// Makes the `occurrence`-th (0-based) next call of import `name` return `status` without
/// reaching the host. Replaces any earlier injection.
pub fn fail(name: &'static str, occurrence: u32, status: NtStatus) {
    record().injection = Some(Injection {
        name,
        occurrence,
        status,
    });
}

/// Whether an injected failure is still waiting for its call (cleared).
pub fn injection_pending() -> bool {
    record().injection.take().is_some()
}

/// Broken rules noticed by the imports, the I/O manager and the kernel services (emptied).
pub fn take_violations() -> Vec<String> {
    std::mem::take(&mut record().violations)
}

static SERIAL: Mutex<()> = Mutex::new(());

/// Holds the driver for one test: the driver's statics and these records are per process, so
/// tests that load it run one at a time (a failed test does not poison the rest).
pub fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(PoisonError::into_inner)
}
