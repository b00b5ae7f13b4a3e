//! The driver's own code on Linux: `DriverEntry`, the control device's IRP dispatch, the
//! callout registration and the unload routine of `crates/driver/src/{entry,wiring,device}.rs`
//! — not copies — linked against ferry-sim-abi's definitions of every kernel import
//! (`ferry_sim_abi::nt`) and run against platform-mock's simulated Hyper-V hosts through
//! their C tables, a fake WFP filter engine and a fake I/O manager that builds the
//! `DRIVER_OBJECT`, `FILE_OBJECT`s, IRPs and stack locations as Windows does.
//!
//! | module | job |
//! |---|---|
//! | `bench` | the simulated hosts, loading and unloading the driver, handles, VMs and their guests, the checks every test ends with |
//! | `load` | `DriverEntry`'s order, a failure at each of its imports, the unload order, reloading |
//! | `control` | handles, offers, port statistics, hostile requests through the real dispatch, cleanup closing a handle's channels |
//! | `migration` | guest traffic, pause/resume, a chunked save, pended port saves, unload, `DriverEntry` on a fresh destination host, restore under a new port id |
//!
//! The driver's state is `static`: one driver per process, so tests run one at a time
//! (`ferry_sim_abi::nt::serial`), and each one unloads the driver and checks that nothing is
//! left (that is also what lets the next test load it again).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
// IRPs, port tables and guest agents on test threads with megabytes of stack.
#![allow(clippy::large_stack_frames)]

mod bench;
mod control;
mod load;
mod migration;
