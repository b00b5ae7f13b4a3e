//! ferry-driver: the `ferry.sys` kernel image.
//!
//! What is built:
//!
//! * `DriverEntry` (module `entry`, Windows targets): sets the unload routine, subscribes to
//!   the vSwitch events and registers the WFP callouts on the vSwitch ethernet layers (given a
//!   device object); unload removes filters, callouts and session first, then unsubscribes
//!   (module `wiring`: the `static` platform, port table, vSwitch and callout state, and the
//!   teardown order).
//! * [`ioctl`]: the control device's IOCTL codes, wire layouts and the validation of every
//!   input buffer (portable, unit-tested).
//! * The items every kernel image needs (Windows targets with the `kernel-image` feature, which
//!   `cargo xtask build-sys` turns on): the panic handler, which logs the panic and bug-checks
//!   with ferry's code; `_fltused`; and a deliberate `__chkstk` (see `image`).
//!
//! **Not built yet:** the control device itself (`IoCreateDevice`, symbolic link,
//! `IRP_MJ_DEVICE_CONTROL` dispatch) and the IOCTL handlers (offer, loopback offer, port
//! statistics, channel save/restore). So `ferry.sys` today loads, tracks vSwitch ports
//! (create/delete, runtime-state save/restore) and unloads; it offers no channel. The callouts
//! are registered with the driver's device object, so until the control device exists they are
//! skipped (logged) and no traffic is classified. `docs/driver.md` describes the
//! missing parts and how to install and verify the driver on Windows (not run here).
//!
//! On the Linux host this crate compiles to the portable [`ioctl`] module only. The image is
//! built by `cargo xtask build-sys` and checked by `cargo xtask check-sys`.

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
pub mod ioctl;
#[cfg(target_os = "windows")]
pub mod wiring;

#[cfg(test)]
extern crate std;
