//! ferry-sim-abi: test support, never shipped. platform-mock's simulated Hyper-V host behind
//! the C function tables of `vmbkmclr.sys` and `fwpkclnt.sys`, a fake WFP filter engine, and
//! (module [`nt`]) the kernel exports `ferry.sys` imports, so that the driver's own code —
//! `DriverEntry`, its IRP dispatch, unload — runs unchanged in a Linux test binary.
//!
//! | module | job |
//! |---|---|
//! | [`sim_host`] | the simulated hosts of this thread, handle encoding, the C side's objects and recorded violations |
//! | [`kmcl_table`] | KMCL as C functions, in a `KMCL_SERVER_INTERFACE_V1` |
//! | [`kmcl_callbacks`] | the callbacks KMCL makes into the driver, through the pointers it registered |
//! | [`wfp_table`] | the WFP vSwitch functions and the events delivered through the dispatch table |
//! | [`ioctl`] | the control device's request inputs, encoded as a caller writes them |
//! | [`fake_engine`] | a WFP filter engine (sessions, transactions, callouts, filters) that plays classify |
//! | [`nt`] | the driver's imports by their C names (`#[no_mangle]`), forwarded to the above, plus a fake I/O manager, pool, spin lock, clock, debug print and bug check |
//!
//! Users: platform-wdk's `tests/sim_abi` (the trampolines over the simulated host, with its
//! own copies of the driver's statics) and `tests/abi` (the fake engine), and ferry-driver's
//! tests (the real driver, linked against [`nt`]). Where the C tables live and why: they are
//! built on platform-wdk's own `ffi` types (the `#[repr(C)]` declarations whose sizes and
//! offsets are pinned) and on platform-mock's public Rust API only, so there is one set of C
//! declarations and dependencies keep pointing one way (DESIGN.md: platform-mock is a
//! dev-dependency of platform-wdk; this crate is only ever a dev-dependency).
//!
//! Code running inside an `extern "system"` function here never panics on a broken contract:
//! it records a violation, which the test then asserts on (a panic there would abort the
//! process).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
// Test code on test threads (megabytes of stack): IRPs and switch parameters are built on the
// heap, but unoptimised frames still add up.
#![allow(clippy::large_stack_frames)]

pub mod fake_engine;
pub mod ioctl;
pub mod kmcl_callbacks;
pub mod kmcl_table;
pub mod nt;
pub mod sim_host;
pub mod wfp_table;
