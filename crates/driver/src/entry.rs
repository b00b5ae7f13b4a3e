//! `DriverEntry` and the unload routine.

use ferry_core::status::NtStatus;
use ferry_platform_wdk::ferry_log;
use ferry_platform_wdk::ffi::base::UNICODE_STRING;
use ferry_platform_wdk::ffi::ntoskrnl::DRIVER_OBJECT;
use ferry_platform_wdk::kernel::log::Level;

/// The image's entry point (`/ENTRY:DriverEntry`), called once by the I/O manager at
/// `PASSIVE_LEVEL`.
///
/// Today it only installs [`driver_unload`] and logs: no device, no channel, no callout (see
/// the crate docs for what is not built yet). Returns `STATUS_SUCCESS`, or
/// `STATUS_INVALID_PARAMETER` if handed no driver object.
///
/// # Safety
///
/// Called by the I/O manager only, with the driver object it created for this image.
#[unsafe(no_mangle)]
pub unsafe extern "system" fn DriverEntry(
    driver: *mut DRIVER_OBJECT,
    _registry_path: *mut UNICODE_STRING,
) -> NtStatus {
    // SAFETY: the I/O manager passes the driver object it created for this image (or NULL,
    // handled below); nothing else uses it while DriverEntry runs.
    let Some(driver) = (unsafe { driver.as_mut() }) else {
        return NtStatus::INVALID_PARAMETER;
    };
    driver.DriverUnload = Some(driver_unload);
    ferry_log!(
        Level::Info,
        "ferry.sys {} loaded (channel and vSwitch wiring not built yet)",
        env!("CARGO_PKG_VERSION")
    );
    NtStatus::SUCCESS
}

/// The unload routine (`DRIVER_UNLOAD`, `PASSIVE_LEVEL`): nothing to tear down yet.
extern "system" fn driver_unload(_driver: *mut DRIVER_OBJECT) {
    ferry_log!(Level::Info, "ferry.sys unloading");
}
