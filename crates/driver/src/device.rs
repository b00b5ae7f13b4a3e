//! The control device `\Device\Ferry` (link `\DosDevices\Ferry`, i.e. `\\.\Ferry` from user
//! mode) and its IRP dispatch routines. Thin on purpose: the IRP is reduced to a code, an
//! [`IoctlBuffer`] and the file object, and everything else is
//! `ferry_platform_wdk::control` (tested on Linux).
//!
//! Every dispatch routine completes its IRP exactly once, synchronously, and returns the status
//! it completed it with (never `STATUS_PENDING`). Only `METHOD_BUFFERED` codes of ferry's own
//! are looked at; any other code is completed `STATUS_NOT_SUPPORTED` without touching a buffer
//! (for other transfer methods `SystemBuffer` is not the buffer the lengths describe).
//!
//! **Access.** SYSTEM and Administrators only: the device is created with
//! `FILE_DEVICE_SECURE_OPEN`, and the descriptor of `ferry_platform_wdk::control::access`
//! (`D:P(A;;FA;;;SY)(A;;FA;;;BA)`) replaces the I/O manager's default before the symbolic link
//! exists.

use core::ptr;
use core::sync::atomic::{AtomicPtr, Ordering};

use ferry_core::status::NtStatus;
use ferry_platform_wdk::control::access::{DACL_SECURITY_INFORMATION, DEVICE_SECURITY_DESCRIPTOR};
use ferry_platform_wdk::control::registry::Owner;
use ferry_platform_wdk::control::request::{FILE_DEVICE_FERRY, IOCTL_CODES, METHOD_BUFFERED};
use ferry_platform_wdk::control::{Completion, IoctlBuffer};
use ferry_platform_wdk::ffi::base::{DEVICE_OBJECT, FALSE, UNICODE_STRING};
use ferry_platform_wdk::ffi::io::imports::{
    IoCreateDevice, IoCreateSymbolicLink, IoDeleteDevice, IoDeleteSymbolicLink, IofCompleteRequest,
    ObSetSecurityObjectByPointer,
};
use ferry_platform_wdk::ffi::io::{
    FILE_DEVICE_SECURE_OPEN, IO_NO_INCREMENT, IO_STACK_LOCATION, IRP, IRP_MJ_CLEANUP, IRP_MJ_CLOSE,
    IRP_MJ_CREATE, IRP_MJ_DEVICE_CONTROL,
};
use ferry_platform_wdk::ffi::ntoskrnl::{DRIVER_OBJECT, PDRIVER_DISPATCH};

use crate::wiring::CONTROL;

/// `text` as UTF-16 code units (ASCII only), for the constant names below; evaluated at
/// compile time, where a wrong length or a non-ASCII byte is a build error.
const fn utf16<const N: usize>(text: &str) -> [u16; N] {
    assert!(text.len() == N, "the array is the text's length");
    let mut out = [0u16; N];
    let mut source = text.as_bytes();
    let mut target: &mut [u16] = &mut out;
    while let ([byte, source_rest @ ..], [unit, target_rest @ ..]) = (source, target) {
        assert!(byte.is_ascii(), "ASCII names only");
        *unit = *byte as u16;
        source = source_rest;
        target = target_rest;
    }
    out
}

/// `\Device\Ferry`.
static DEVICE_NAME: [u16; 13] = utf16("\\Device\\Ferry");
/// `\DosDevices\Ferry` (`\??\Ferry`).
static LINK_NAME: [u16; 17] = utf16("\\DosDevices\\Ferry");

/// The device object, once created (NULL before and after).
static DEVICE: AtomicPtr<DEVICE_OBJECT> = AtomicPtr::new(ptr::null_mut());

/// A counted string over one of the names above (the kernel only reads it).
fn unicode(name: &'static [u16]) -> UNICODE_STRING {
    // The names are a few dozen bytes.
    let bytes = u16::try_from(size_of_val(name)).unwrap_or(0);
    UNICODE_STRING {
        Length: bytes,
        MaximumLength: bytes,
        Buffer: name.as_ptr().cast_mut(),
    }
}

/// Installs the dispatch routines, creates the device, restricts it to SYSTEM and
/// Administrators, and creates its symbolic link (DriverEntry, PASSIVE_LEVEL). The dispatch
/// routines are in place before the device exists, and the device is secured and the
/// channels' parent before the link lets anyone open it.
///
/// # Errors
///
/// The failing status of `IoCreateDevice`, `ObSetSecurityObjectByPointer` or
/// `IoCreateSymbolicLink`; nothing is left created.
pub fn create(driver: &mut DRIVER_OBJECT) -> Result<(), NtStatus> {
    let routines: [(usize, PDRIVER_DISPATCH); 4] = [
        (IRP_MJ_CREATE, Some(dispatch_create_close)),
        (IRP_MJ_CLOSE, Some(dispatch_create_close)),
        (IRP_MJ_CLEANUP, Some(dispatch_cleanup)),
        (IRP_MJ_DEVICE_CONTROL, Some(dispatch_device_control)),
    ];
    for (major, routine) in routines {
        if let Some(slot) = driver.MajorFunction.get_mut(major) {
            *slot = routine;
        }
    }
    let mut name = unicode(&DEVICE_NAME);
    let mut device: *mut DEVICE_OBJECT = ptr::null_mut();
    // SAFETY: PASSIVE_LEVEL in DriverEntry with the driver's own object; `name` points to a
    // static string; `device` is a valid out-pointer. No device extension (the state is
    // `static`), not exclusive (several handles may be open).
    let status = unsafe {
        IoCreateDevice(
            driver,
            0,
            &raw mut name,
            FILE_DEVICE_FERRY,
            FILE_DEVICE_SECURE_OPEN,
            FALSE,
            &raw mut device,
        )
    };
    if !status.is_success() {
        return Err(status);
    }
    let mut descriptor = DEVICE_SECURITY_DESCRIPTOR;
    // SAFETY: PASSIVE_LEVEL; `device` was just created; the descriptor is a valid
    // self-relative one (tested in `control::access`) in a local copy the call only reads.
    let status = unsafe {
        ObSetSecurityObjectByPointer(
            device.cast(),
            DACL_SECURITY_INFORMATION,
            (&raw mut descriptor).cast(),
        )
    };
    if !status.is_success() {
        // SAFETY: created above and not yet reachable through a link.
        unsafe { IoDeleteDevice(device) };
        return Err(status);
    }
    CONTROL.set_parent(device);
    let mut link = unicode(&LINK_NAME);
    // SAFETY: PASSIVE_LEVEL; both strings are static.
    let status = unsafe { IoCreateSymbolicLink(&raw mut link, &raw mut name) };
    if !status.is_success() {
        CONTROL.set_parent(ptr::null_mut());
        // SAFETY: created above, no link, so nobody can have opened it.
        unsafe { IoDeleteDevice(device) };
        return Err(status);
    }
    DEVICE.store(device, Ordering::Release);
    Ok(())
}

/// Deletes the symbolic link, so that nothing new can open the device (unload, first step).
/// Unload only runs once every handle is closed, so no request is in flight either.
pub fn delete_link() {
    if DEVICE.load(Ordering::Acquire).is_null() {
        return;
    }
    let mut link = unicode(&LINK_NAME);
    // SAFETY: PASSIVE_LEVEL; the link was created by `create`.
    let status = unsafe { IoDeleteSymbolicLink(&raw mut link) };
    if !status.is_success() {
        ferry_platform_wdk::ferry_log!(
            ferry_platform_wdk::kernel::log::Level::Warning,
            "IoDeleteSymbolicLink: {status}"
        );
    }
}

/// Deletes the device object (unload, after every channel it parents was closed).
pub fn delete_device() {
    let device = DEVICE.swap(ptr::null_mut(), Ordering::AcqRel);
    CONTROL.set_parent(ptr::null_mut());
    if !device.is_null() {
        // SAFETY: the device this driver created, deleted once (swapped out above).
        unsafe { IoDeleteDevice(device) };
    }
}

/// Completes `irp` with `completion` and returns its status.
///
/// # Safety
///
/// `irp` is a live IRP this driver owns and has not completed.
unsafe fn complete(irp: &mut IRP, completion: Completion) -> NtStatus {
    irp.IoStatus.u.Status = completion.status;
    irp.IoStatus.Information = completion.information;
    // SAFETY: the caller's contract; the IRP is not touched after this call.
    unsafe { IofCompleteRequest(irp, IO_NO_INCREMENT) };
    completion.status
}

/// The current stack location of `irp`.
fn stack_location(irp: &IRP) -> Option<&IO_STACK_LOCATION> {
    // SAFETY: the I/O manager sets the current stack location before calling a dispatch
    // routine; it lives as long as the IRP.
    unsafe { irp.Tail.CurrentStackLocation.as_ref() }
}

/// `IRP_MJ_CREATE` / `IRP_MJ_CLOSE`: nothing to set up or tear down per handle.
unsafe extern "system" fn dispatch_create_close(
    _device: *mut DEVICE_OBJECT,
    irp: *mut IRP,
) -> NtStatus {
    // SAFETY: the I/O manager passes a live IRP for this driver to complete.
    let Some(irp) = (unsafe { irp.as_mut() }) else {
        return NtStatus::INVALID_PARAMETER;
    };
    // SAFETY: a live IRP, completed once here.
    unsafe { complete(irp, Completion::success(0)) }
}

/// `IRP_MJ_CLEANUP`: the handle's last reference is gone; close the channels it offered.
unsafe extern "system" fn dispatch_cleanup(_device: *mut DEVICE_OBJECT, irp: *mut IRP) -> NtStatus {
    // SAFETY: the I/O manager passes a live IRP for this driver to complete.
    let Some(irp) = (unsafe { irp.as_mut() }) else {
        return NtStatus::INVALID_PARAMETER;
    };
    if let Some(stack) = stack_location(irp) {
        CONTROL.close_owned_by(Owner(stack.FileObject.addr()));
    }
    // SAFETY: a live IRP, completed once here.
    unsafe { complete(irp, Completion::success(0)) }
}

/// `IRP_MJ_DEVICE_CONTROL`: ferry's buffered codes go to the control device's handlers.
unsafe extern "system" fn dispatch_device_control(
    _device: *mut DEVICE_OBJECT,
    irp: *mut IRP,
) -> NtStatus {
    // SAFETY: the I/O manager passes a live IRP for this driver to complete.
    let Some(irp) = (unsafe { irp.as_mut() }) else {
        return NtStatus::INVALID_PARAMETER;
    };
    let refused = |status| Completion {
        status,
        information: 0,
    };
    let Some(stack) = stack_location(irp) else {
        // SAFETY: a live IRP, completed once here.
        return unsafe { complete(irp, refused(NtStatus::INVALID_PARAMETER)) };
    };
    // SAFETY: an IRP_MJ_DEVICE_CONTROL stack location: `DeviceIoControl` is the union's
    // active member.
    let parameters = unsafe { stack.Parameters.DeviceIoControl };
    let owner = Owner(stack.FileObject.addr());
    let code = parameters.IoControlCode;
    if code & 3 != METHOD_BUFFERED || !IOCTL_CODES.contains(&code) {
        // SAFETY: a live IRP, completed once here.
        return unsafe { complete(irp, refused(NtStatus::NOT_SUPPORTED)) };
    }
    let input = usize::try_from(parameters.InputBufferLength).unwrap_or(usize::MAX);
    let output = usize::try_from(parameters.OutputBufferLength).unwrap_or(usize::MAX);
    let length = input.max(output);
    // SAFETY: METHOD_BUFFERED: `SystemBuffer` is the union's active member.
    let system = unsafe { irp.AssociatedIrp.SystemBuffer }.cast::<u8>();
    let bytes: &mut [u8] = if system.is_null() || length == 0 {
        &mut []
    } else {
        // SAFETY: for METHOD_BUFFERED the I/O manager allocated `SystemBuffer` with
        // max(input, output) bytes of non-paged pool, holding the input; it is this request's
        // alone until completion, and the slice ends before `complete`.
        unsafe { core::slice::from_raw_parts_mut(system, length) }
    };
    let completion = match IoctlBuffer::new(bytes, input, output) {
        Some(buffer) => CONTROL.device_control(owner, code, buffer),
        None => refused(NtStatus::INVALID_PARAMETER),
    };
    // SAFETY: a live IRP, completed once here.
    unsafe { complete(irp, completion) }
}
