//! `DriverEntry` and the unload routine.

use ferry_core::status::NtStatus;
use ferry_platform_wdk::ferry_log;
use ferry_platform_wdk::ffi::base::UNICODE_STRING;
use ferry_platform_wdk::ffi::ntoskrnl::DRIVER_OBJECT;
use ferry_platform_wdk::kernel::log::Level;

use crate::{device, wiring};

/// The image's entry point (`/ENTRY:DriverEntry`), called once by the I/O manager at
/// `PASSIVE_LEVEL`.
///
/// Subscribes to the vSwitch events ([`wiring::start`]), creates the control device
/// (`device::create`), registers the WFP callouts with its device object
/// ([`wiring::start_callouts`]) and installs [`driver_unload`]. Returns `STATUS_SUCCESS`,
/// `STATUS_INVALID_PARAMETER` if handed no driver object, or the failing status (the driver
/// then does not load; whatever was done is undone by [`wiring::stop`]).
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
    if let Err(status) = wiring::start() {
        ferry_log!(Level::Error, "vSwitch event subscription failed: {status}");
        return status;
    }
    if let Err(status) = device::create(driver) {
        ferry_log!(Level::Error, "control device creation failed: {status}");
        wiring::stop();
        return status;
    }
    // The callouts need the driver's device object: the control device, which `IoCreateDevice`
    // linked at `DriverObject->DeviceObject`.
    if let Err(status) = wiring::start_callouts(driver.DeviceObject) {
        wiring::stop();
        return status;
    }
    driver.DriverUnload = Some(driver_unload);
    ferry_log!(
        Level::Info,
        "ferry.sys {} loaded (vSwitch events subscribed, \\Device\\Ferry created, callouts registered)",
        env!("CARGO_PKG_VERSION")
    );
    NtStatus::SUCCESS
}

/// The unload routine (`DRIVER_UNLOAD`, `PASSIVE_LEVEL`): [`wiring::stop_callouts`] (filters,
/// callouts, session: before the device object goes), then [`wiring::stop`].
extern "system" fn driver_unload(_driver: *mut DRIVER_OBJECT) {
    wiring::stop_callouts();
    wiring::stop();
    ferry_log!(Level::Info, "ferry.sys unloaded");
}
