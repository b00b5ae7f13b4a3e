//! ferry-core: everything in ferry that decides, with no I/O, no allocation and no panics.
//!
//! A Hyper-V host-side driver built on ferry is a VMBus server endpoint (VSP) on the Kernel
//! Mode Client Library and a WFP callout on the Hyper-V extensible switch. This crate holds the
//! logic of both, written against the [`Platform`](platform::Platform) trait so the same code
//! runs in `ferry.sys` (over `ferry-platform-wdk`) and on a simulated host on Linux (over
//! `ferry-platform-mock`).
//!
//! | module | job |
//! |---|---|
//! | [`platform`] | the hardware abstraction: what core needs from KMCL, WFP and the kernel |
//! | [`lock`] | the lock core uses, over the platform's raw lock |
//! | [`status`] | `NTSTATUS` values crossing the boundary |
//! | [`channel`] | the KMCL server channel: state machine, incoming and outgoing ledgers |
//! | [`saved_state`] | the versioned, checksummed saved-state format |
//! | [`protocol`] | the guest ↔ VSP service protocol: wire format and hostile-input parser |
//! | [`port`] | per-port runtime state of the vSwitch callout and its classify path |
//! | [`service`] | the reference VSP service answering the protocol |
//!
//! Kernel rules hold for the whole crate: it is `no_std` without `alloc`, panicking constructs
//! are denied by lint, guest-controlled arithmetic is checked, and every capacity is fixed and
//! documented.

#![no_std]
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing,
        clippy::todo,
        clippy::unimplemented,
        clippy::unreachable,
        clippy::arithmetic_side_effects,
    )
)]

#[cfg(test)]
extern crate std;

pub mod channel;
pub mod lock;
pub mod platform;
pub mod port;
pub mod protocol;
pub mod saved_state;
pub mod service;
pub mod status;
