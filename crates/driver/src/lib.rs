//! ferry-driver: the `ferry.sys` kernel image (skeleton).
//!
//! **Not built yet** (tracked by the platform-wdk/driver issue). This crate will hold
//! `DriverEntry` and unload, the control device and its IOCTL surface (offer a channel to a VM,
//! loopback offer, read port statistics, channel-session save/restore for the VM worker
//! process), WFP callout and filter registration on the vSwitch layers, the vSwitch event
//! subscription, the panic handler and the `_fltused` / `__chkstk` symbols. It stays thin:
//! every decision lives in `ferry-core`.

#![no_std]
