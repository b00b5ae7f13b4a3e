//! Kernel services behind small safe types: a spin lock for core's [`Mutex`], non-paged pool
//! with ferry's tag, `DbgPrintEx` logging, ferry's bug check, the interrupt-time clock, and the
//! [`services::KernelServices`] trait over them.
//!
//! Everything here runs inside the Windows kernel. The code compiles on every target so that
//! the Linux host type-checks and lints it, and the pure parts (line formatting, the pool tag)
//! are unit-tested there; the kernel calls themselves are imports that do not exist on Linux,
//! so a host binary that used them without defining them would fail to link rather than
//! misbehave. The driver's tests do define them (ferry-sim-abi's `nt` module) and run this code
//! as it is; the one service that is not an import, `clock::interrupt_time`'s read of
//! `KUSER_SHARED_DATA`, is replaced on other targets by the export that returns the same value
//! (`crate::ffi::ntoskrnl::KeQueryInterruptTime`).
//!
//! [`services::KernelServices`] gathers the lock, clock, memory and logging the platform uses
//! behind one trait: `NtKernel` (Windows targets) is these services; host tests supply their
//! own, so the whole platform runs on Linux.
//!
//! [`Mutex`]: ferry_core::lock::Mutex

pub mod bugcheck;
pub mod clock;
pub mod log;
pub mod pool;
pub mod services;
pub mod spin_lock;
