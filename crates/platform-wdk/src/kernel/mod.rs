//! Kernel services behind small safe types: a spin lock for core's [`Mutex`], non-paged pool
//! with ferry's tag, `DbgPrintEx` logging, ferry's bug check, and the interrupt-time clock.
//!
//! Everything here runs only inside the Windows kernel. The code compiles on every target so
//! that the Linux host type-checks and lints it, and the pure parts (line formatting, the pool
//! tag) are unit-tested there; the kernel calls themselves are imports that do not exist on
//! Linux, so a host binary that used them would fail to link rather than misbehave. The one
//! service that is not an import, `clock::interrupt_time`, reads a kernel-only address and is
//! therefore compiled for Windows targets only.
//!
//! Host tests that need a lock or a clock use the mock platform's, not these.
//!
//! [`Mutex`]: ferry_core::lock::Mutex

pub mod bugcheck;
pub mod clock;
pub mod log;
pub mod pool;
pub mod spin_lock;
