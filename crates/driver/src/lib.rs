//! ferry-driver: the `ferry.sys` kernel image.
//!
//! What is built:
//!
//! * `DriverEntry` (module `entry`, Windows targets): sets the unload routine and subscribes to
//!   the vSwitch events; unload unsubscribes (module `wiring`: the `static` platform, port table
//!   and vSwitch state, and the teardown order).
//! * [`ioctl`]: the control device's IOCTL codes, wire layouts and the validation of every
//!   input buffer (portable, unit-tested).
//! * The items every kernel image needs (Windows targets with the `kernel-image` feature, which
//!   `cargo xtask build-sys` turns on): the panic handler, which logs the panic and bug-checks
//!   with ferry's code; `_fltused`; and a deliberate `__chkstk` (see `image`).
//!
//! **Not built yet:** the control device itself (`IoCreateDevice`, symbolic link,
//! `IRP_MJ_DEVICE_CONTROL` dispatch) and the IOCTL handlers (offer, loopback offer, port
//! statistics, channel save/restore); WFP engine session, callout and filter registration. So
//! `ferry.sys` today loads, tracks vSwitch ports (create/delete, runtime-state save/restore)
//! and unloads; it offers no channel and classifies no traffic. `docs/driver.md` describes the
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
