//! ferry-platform-wdk: the real Windows platform for ferry.
//!
//! | module | job |
//! |---|---|
//! | [`ffi`] | hand-written `#[repr(C)]` bindings for KMCL, the WFP vSwitch API, the NDIS switch structures and ntoskrnl, every size and offset pinned |
//! | [`tables`] | [`KmclTable`](tables::KmclTable) and [`WfpTable`](tables::WfpTable): the functions ferry calls, filled from the real imports or (in host tests) a simulated host |
//! | [`kernel`] | kernel services: [`KernelSpinLock`](kernel::spin_lock::KernelSpinLock) (core's `RawLock`), tagged non-paged pool, `DbgPrintEx` logging, ferry's bug check, the interrupt-time clock, and [`KernelServices`](kernel::services::KernelServices), the trait that makes them replaceable in host tests |
//! | [`platform`] | [`WdkPlatform`](platform::WdkPlatform): `ferry_core::platform::Platform` over the tables |
//! | [`host`] | the `extern "system"` trampolines KMCL and WFP call, channel offer/close, the vSwitch state and the runtime-state buffers |
//! | [`control`] | the control device's IOCTL surface: request validation, the channel registry and one handler per IOCTL |
//!
//! The ABI tests (`tests/abi/`) run the trampolines on Linux against a fake KMCL and WFP
//! built from `extern "system"` functions, through the same C signatures. Test level 3
//! (`tests/sim_abi/`) runs `ferry-sim`'s scenarios — guest traffic, suspend, live migration
//! across simulated hosts with SavePacket's two calls and pended port saves, damaged
//! transfers the destination must refuse, guest crashes, unload — through the same trampolines against platform-mock's simulated host, reached only
//! through a `KMCL_SERVER_INTERFACE_V1` and the WFP vSwitch functions. Both run under
//! AddressSanitizer (`docs/reliability.md`, "ABI tests under AddressSanitizer"):
//!
//! ```text
//! RUSTFLAGS=-Zsanitizer=address cargo +nightly test -p ferry-platform-wdk --target x86_64-unknown-linux-gnu
//! ```
//!
//! The crate is `no_std` and compiles on the Linux host as well as on
//! `x86_64-pc-windows-msvc`: the layout pins are checked at compile time on both, and the unit
//! tests run on the host. Kernel imports are declared with `raw-dylib` on Windows only; on the
//! host they are plain undefined symbols, which only a test binary that defines them may reach
//! (ferry-driver's tests, through ferry-sim-abi's `nt` module; see [`kernel`]).
//!
//! Feature `wdk-sys` (off by default; Windows with the WDK only, never built here): links
//! `wdk-sys` and compares the crate's declarations of the kernel types with `wdk-sys`'s at
//! compile time (module `wdk_sys_check`).

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

pub mod control;
pub mod ffi;
pub mod host;
pub mod kernel;
pub mod platform;
pub mod tables;
#[cfg(all(windows, feature = "wdk-sys"))]
mod wdk_sys_check;
