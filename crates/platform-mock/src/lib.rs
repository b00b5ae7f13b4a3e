//! ferry-platform-mock: a simulated Hyper-V host for ferry, and the `ferry-sim` binary.
//!
//! Everything runs on one thread, driven by one seeded generator and a virtual clock, so any
//! run replays exactly from its seed.
//!
//! | module | job |
//! |---|---|
//! | [`rng`] | the seeded generator |
//! | [`clock`] | virtual time and per-host clocks |
//! | [`kmcl`] | simulated KMCL server channels, shaped like KMCL's functions and callbacks |
//! | [`vswitch`] | the simulated extensible switch and its WFP callout interface |
//! | [`platform`] | ferry-core's `Platform` over one simulated host |
//! | [`driver`] | ferry's wiring on a simulated host (what the driver and trampolines do) |
//! | [`guest`] | the guest agent speaking ferry's protocol, with its own ledger |
//! | [`faults`] | the faults a scenario can inject |
//! | [`world`] | hosts, VMs, traffic, live migration: one scenario from its seed |
//! | [`report`] | the per-phase report, text and JSON |

// The simulated host runs on std threads with megabytes of stack; the kernel limits the
// workspace lint guards against do not apply here (the port table alone is ~90 KiB).
#![allow(clippy::large_stack_frames)]

pub mod clock;
pub mod driver;
pub mod faults;
pub mod guest;
pub mod kmcl;
pub mod platform;
pub mod report;
pub mod rng;
pub mod vswitch;
pub mod world;
