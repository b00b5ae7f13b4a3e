//! ferry-driver: the `ferry.sys` kernel image.
//!
//! What is built:
//!
//! * `DriverEntry` (module `entry`, Windows targets): sets the unload routine and logs through
//!   `DbgPrintEx`; the unload routine logs. Nothing else happens at load.
//! * The items every kernel image needs (Windows targets with the `kernel-image` feature, which
//!   `cargo xtask build-sys` turns on): the panic handler, which logs the panic and bug-checks
//!   with ferry's code; `_fltused`; and a deliberate `__chkstk` (see `image`).
//!
//! **Not built yet** (platform-wdk/driver issue): the control device and its IOCTL surface
//! (offer a channel to a VM, loopback offer, port statistics, channel-session save/restore),
//! the KMCL channel wiring, WFP callout and filter registration, and the vSwitch event
//! subscription. `ferry.sys` today loads, logs and unloads; it offers no channel and filters
//! no traffic. The wiring waits for core's channel and port APIs and platform-wdk's
//! trampolines; it will stay thin, with every decision in `ferry-core`.
//!
//! On the Linux host this crate compiles to an almost empty library: everything above is
//! Windows-only. The image is built by `cargo xtask build-sys` and checked by
//! `cargo xtask check-sys`.

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

#[cfg(target_os = "windows")]
pub mod entry;
#[cfg(all(target_os = "windows", feature = "kernel-image"))]
mod image;
