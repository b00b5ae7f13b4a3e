//! Test level 3 against the simulated host: platform-wdk's trampolines, tables and
//! `WdkPlatform`, and the driver's wiring, driven on Linux by platform-mock's simulated
//! Hyper-V host reached only through C-ABI function tables — a `KMCL_SERVER_INTERFACE_V1` and
//! the three WFP vSwitch functions — with the same live-migration scenarios as `ferry-sim`.
//!
//! **Where the C tables live, and why there.** The C side of the simulated host is the
//! test-support crate ferry-sim-abi (`crates/sim-abi`, shared with the driver's tests), not a
//! module of platform-mock: it is built on platform-wdk's own `ffi` types (the `#[repr(C)]`
//! declarations whose sizes and offsets are pinned), and on platform-mock's public Rust API
//! only ([`Kmcl`](ferry_platform_mock::kmcl::Kmcl) with its
//! [`ServerCallbacks`](ferry_platform_mock::kmcl::ServerCallbacks),
//! [`VSwitch`](ferry_platform_mock::vswitch::VSwitch) with its
//! [`VSwitchCallout`](ferry_platform_mock::vswitch::VSwitchCallout), the guest agent).
//! Dependencies keep pointing one way (platform-wdk dev-depends on platform-mock; DESIGN.md),
//! and there is one set of C declarations, not a mirror that could drift from it.
//!
//! | module | job |
//! |---|---|
//! | `sim_host`, `kmcl_table`, `kmcl_callbacks`, `wfp_table` | ferry-sim-abi's: the simulated hosts, KMCL as C functions and its callbacks into the driver, the WFP vSwitch functions and events |
//! | `kernel` | each host's kernel services (its clock, counted allocations, log) |
//! | `ferry_hosts` | ferry's statics on each host and the driver's wiring (load, offer, save/restore IOCTLs, unload) |
//! | `world` | scenarios: VMs, guests, traffic, suspend, live migration, unload, invariants |
//! | `scenarios` | named scenarios |
//! | `contracts` | breaches of the C contracts are noticed (the checks can fail) |
//! | `campaign` | seeded random scenarios |
//!
//! The hosts' statics are shared by every test, so tests run one at a time ([`serial`]).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
// The port tables and `VSwitch` values are built inside `OnceLock`s here; the driver builds
// them at compile time. Test threads have megabytes of stack.
#![allow(clippy::large_stack_frames)]

mod campaign;
mod contracts;
mod ferry_hosts;
mod kernel;
mod scenarios;
mod world;

use ferry_sim_abi::{kmcl_callbacks, kmcl_table, sim_host, wfp_table};

use std::sync::{Mutex, MutexGuard};

static SERIAL: Mutex<()> = Mutex::new(());

/// Runs scenarios one at a time (a failed one does not poison the rest).
pub fn serial() -> MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
