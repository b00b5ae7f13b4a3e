//! ferry-platform-wdk: the real Windows platform for ferry (skeleton).
//!
//! **Not built yet** (tracked by the platform-wdk/driver issue). This crate will hold
//! `#[repr(C)]` declarations for KMCL (`vmbuskernelmodeclientlibapi.h`), the WFP vSwitch API
//! (`fwpsk.h`), the NDIS switch structures and the ntoskrnl services ferry uses, each size and
//! offset pinned with `static_assertions`; the function tables through which KMCL and WFP are
//! reached (real imports in the driver, the simulated host in tests); the `extern "system"`
//! callback trampolines; and `impl ferry_core::platform::Platform` over all of it.

#![no_std]
