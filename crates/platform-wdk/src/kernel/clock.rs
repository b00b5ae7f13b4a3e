//! The monotonic clock behind `Platform::now`.

/// Interrupt time: 100 ns units since boot, monotonic, not adjusted for wall-clock changes
/// (`KeQueryInterruptTime`, read from `KUSER_SHARED_DATA` as the WDK's inline does; see
/// [`crate::ffi::ntoskrnl::KeQueryInterruptTime`]).
///
/// Windows targets only: the address it reads is mapped in kernel mode and nowhere else, and
/// this crate runs in the kernel.
#[cfg(target_os = "windows")]
#[must_use]
pub fn interrupt_time() -> ferry_core::platform::Ticks {
    // SAFETY: this crate's Windows build runs in kernel mode on x64, the function's only
    // requirement.
    let raw = unsafe { crate::ffi::ntoskrnl::KeQueryInterruptTime() };
    ferry_core::platform::Ticks(raw)
}
