//! ferry-driver: the `ferry.sys` kernel image.
//!
//! What is built:
//!
//! * `DriverEntry` (module `entry`): subscribes to the vSwitch events, creates the control
//!   device, registers the WFP callouts on the vSwitch ethernet layers with its device object,
//!   and sets the unload routine; unload removes filters, callouts and session first, then the
//!   control device and its channels, then unsubscribes (module `wiring`: the `static`
//!   platform, port table, vSwitch, callout and control-device state, and the teardown order).
//! * The control device (module `device`): `\Device\Ferry` with the link `\DosDevices\Ferry`,
//!   and the IRP dispatch routines. It is thin: the IOCTL validation, the channel registry and
//!   the handlers are `ferry_platform_wdk::control`.
//! * The items every kernel image needs (Windows targets with the `kernel-image` feature, which
//!   `cargo xtask build-sys` turns on): the panic handler, which logs the panic and bug-checks
//!   with ferry's code; `_fltused`; and a deliberate `__chkstk` (see `image`).
//!
//! `entry`, `wiring` and `device` compile on every target. On Windows their kernel imports are
//! `raw-dylib`; on the Linux host they are undefined symbols, which the host ABI tests
//! (`tests/host_abi/`) satisfy with ferry-sim-abi's definitions (`ferry_sim_abi::nt`), so the
//! driver's own code runs there against simulated Hyper-V hosts. Nothing of the driver's own
//! has run on Windows: `docs/driver.md` describes what is unconfirmed and how to install and
//! verify the driver on Windows (not run here). The image is built by `cargo xtask build-sys`
//! and checked by `cargo xtask check-sys`.

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

mod device;
pub mod entry;
#[cfg(all(target_os = "windows", feature = "kernel-image"))]
mod image;
pub mod wiring;

#[cfg(test)]
extern crate std;
