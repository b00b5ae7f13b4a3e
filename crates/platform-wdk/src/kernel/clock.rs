//! The monotonic clock behind `Platform::now`.

/// Interrupt time: 100 ns units since boot, monotonic, not adjusted for wall-clock changes
/// (`KeQueryInterruptTime`, read from `KUSER_SHARED_DATA` as the WDK's inline does; see
/// [`crate::ffi::ntoskrnl::KeQueryInterruptTime`]).
///
/// On Windows the address it reads is mapped in kernel mode, where this crate runs. On other
/// targets `KeQueryInterruptTime` calls an import a test binary defines instead (see there).
#[must_use]
pub fn interrupt_time() -> ferry_core::platform::Ticks {
    // SAFETY: this crate's Windows build runs in kernel mode on x64, the function's only
    // requirement there; elsewhere it is a plain call of the import that stands in for it.
    let raw = unsafe { crate::ffi::ntoskrnl::KeQueryInterruptTime() };
    ferry_core::platform::Ticks(raw)
}
