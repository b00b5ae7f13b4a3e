//! ferry-platform-mock: a simulated Hyper-V host for ferry, and the `ferry-sim` binary.
//!
//! Everything runs on one thread, driven by one seeded generator and a virtual clock, so any
//! run replays exactly from its seed.
//!
//! | module | job |
//! |---|---|
//! | [`rng`] | the seeded generator |
//! | [`bench_support`] | a migration a benchmark drives step by step (save, transfer, restore) |
//! | [`clock`] | virtual time and per-host clocks |
//! | [`kmcl`] | simulated KMCL server channels, shaped like KMCL's functions and callbacks |
//! | [`vswitch`] | the simulated extensible switch and its WFP callout interface |
//! | [`platform`] | ferry-core's `Platform` over one simulated host |
//! | [`driver`] | ferry's wiring on a simulated host (what the driver and trampolines do) |
//! | [`guest`] | the guest agent speaking ferry's protocol, with its own ledger |
//! | [`faults`] | the faults a scenario can inject |
//! | [`world`] | hosts, VMs, traffic, live migration: one scenario from its seed |
//! | [`report`] | the per-phase report, text and JSON |
//!
//! ## What is not modelled
//!
//! - Concurrency inside an instant: callbacks never overlap (the scheduler interleaves at
//!   callback granularity), so a completion racing Suspend on another CPU is not exercised
//!   here (that is `loom`'s job).
//! - External data (GPADLs, MDLs, `VmbChannelPacketGetExternalData` pending),
//!   `VmbChannelPacketDeferToPassive`, a full outgoing ring, failing `VmbPacketSend`,
//!   `FORCE_NEW_CHANNEL`, Pause while disabled.
//! - KMCL's real saved-state format (opaque): the stream here is the simulator's own, with a
//!   check of its own, and a SaveBuf inside it is what the VSP wrote.
//! - Guesses, one place each: outstanding WAIT_FOR_COMPLETION packets at guest close are
//!   cancelled through their completion routine with `STATUS_CANCELLED` after Closed; a
//!   pended port save hands its blob over before `FwpsvSwitchNotifyComplete0`; the switch
//!   copies the blob; a save OID times out after 10 ms of virtual time; on the destination
//!   ports are restored before the channel; the source pauses the channel before saving ports.
//! - vSwitch events other than port create/delete and runtime-state save/restore (NIC
//!   connect/disconnect, `INTERFACE_*`), and more than one callout.
//! - One channel per VM, bound to the VM's first NIC; guests send one request per packet.
//!
//! ## Through C (test level 3)
//!
//! The same host is reached through C-ABI tables (a `KMCL_SERVER_INTERFACE_V1` and the WFP
//! vSwitch functions) by platform-wdk's `tests/sim_abi/`, test level 3: the functions of
//! [`kmcl::Kmcl`] and [`vswitch::VSwitch`] map one to one onto them, built on platform-wdk's
//! own C declarations, which is why that adapter lives there and not here.

// The simulated host runs on std threads with megabytes of stack; the kernel limits the
// workspace lint guards against do not apply here (the port table alone is ~90 KiB).
#![allow(clippy::large_stack_frames)]

pub mod bench_support;
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
