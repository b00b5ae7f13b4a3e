//! A fake I/O manager: the `Io*` / `Ob*` / `Zw*` imports of the control device, and the other
//! half — loading the driver ([`load`]: a `DRIVER_OBJECT` handed to `DriverEntry`), opening
//! its device ([`open`]: a `FILE_OBJECT` and `IRP_MJ_CREATE`), sending `DeviceIoControl`
//! requests ([`Handle::device_control`]: a `METHOD_BUFFERED` IRP with its system buffer),
//! closing a handle (`IRP_MJ_CLEANUP`, `IRP_MJ_CLOSE`) and unloading ([`unload`]) — as the
//! Windows I/O manager does, with the layouts of `ferry_platform_wdk::ffi::io`.
//!
//! Rules checked (each breach recorded with [`super::violation`]): every IRP completed exactly
//! once, with the status the dispatch routine returns, never `STATUS_PENDING` (ferry completes
//! synchronously), and `Information` no larger than the output buffer; `IoCreateDevice` only
//! with the driver object being loaded, the device linked at `DriverObject->DeviceObject`;
//! the device secured before its symbolic link exists; `IoDeleteDevice` only of a live device
//! and only once no link names it; `ZwClose` only of an open kernel handle; every one of these
//! at `PASSIVE_LEVEL`; unload only with no handle open; and, after a failed `DriverEntry` or
//! after unload, no device or link left.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::c_void;
use std::sync::atomic::Ordering;
use std::sync::{Mutex, MutexGuard, PoisonError};

use ferry_core::status::NtStatus;
use ferry_platform_wdk::ffi::base::{BOOLEAN, DEVICE_OBJECT, HANDLE, NTSTATUS, UNICODE_STRING};
use ferry_platform_wdk::ffi::io::{
    DEVICE_IO_CONTROL_PARAMETERS, IO_STACK_LOCATION, IO_STACK_LOCATION_PARAMETERS, IRP,
    IRP_MJ_CLEANUP, IRP_MJ_CLOSE, IRP_MJ_CREATE, IRP_MJ_DEVICE_CONTROL,
};
use ferry_platform_wdk::ffi::ntoskrnl::{DISPATCH_LEVEL, DRIVER_OBJECT};

use super::kernel::{irql, require_passive};
use super::{LOADED_ON, MAX_HOSTS, NOT_LOADED, called, called_fallible, export, violation};
use crate::sim_host::{Tag, decode, host};

/// `sizeof(DEVICE_OBJECT)` on x64 (`wdm.h`, `dt nt!_DEVICE_OBJECT`): the block a device is.
const DEVICE_OBJECT_SIZE: usize = 0x150;
/// `sizeof(FILE_OBJECT)` on x64 (`wdm.h`, `dt nt!_FILE_OBJECT`).
const FILE_OBJECT_SIZE: usize = 0xD8;
/// `IO_TYPE_DRIVER`.
const IO_TYPE_DRIVER: i16 = 4;
/// `IO_TYPE_IRP`.
const IO_TYPE_IRP: i16 = 6;
/// What `IoStatus.Status` holds before the driver completes an IRP: a value no ferry path
/// returns, so an IRP completed without a status is noticed.
const UNSET_STATUS: NtStatus = NtStatus(0x7FFF_0BAD);
/// `STATUS_OBJECT_NAME_NOT_FOUND` (`ntstatus.h`): opening a name no link provides.
pub const STATUS_OBJECT_NAME_NOT_FOUND: NtStatus = NtStatus(0xC000_0034_u32.cast_signed());
/// `STATUS_INVALID_HANDLE` (`ntstatus.h`).
const STATUS_INVALID_HANDLE: NtStatus = NtStatus(0xC000_0008_u32.cast_signed());
/// `STATUS_INVALID_DEVICE_REQUEST` (`ntstatus.h`): the I/O manager's answer for a major
/// function the driver has no routine for.
pub const STATUS_INVALID_DEVICE_REQUEST: NtStatus = NtStatus(0xC000_0010_u32.cast_signed());

/// A device object the driver created.
#[derive(Clone, Debug)]
pub struct Device {
    /// Its name (`\Device\...`).
    pub name: String,
    /// `DeviceType`.
    pub device_type: u32,
    /// `DeviceCharacteristics`.
    pub characteristics: u32,
    /// `Exclusive`.
    pub exclusive: bool,
    /// `DeviceExtensionSize`.
    pub extension: u32,
    /// The security set by `ObSetSecurityObjectByPointer`: (`SecurityInformation`, the
    /// descriptor's first bytes, as many as `descriptor_len` asked for).
    pub security: Option<(u32, Vec<u8>)>,
}

/// One IRP's completion.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Completion {
    irp: usize,
    status: NtStatus,
    information: usize,
}

struct Manager {
    /// The `DRIVER_OBJECT` of the loaded driver (a leaked box, freed at unload).
    driver: usize,
    /// Device objects by address (leaked boxes, freed by `IoDeleteDevice`).
    devices: BTreeMap<usize, Device>,
    /// Symbolic links: link name -> device name.
    links: BTreeMap<String, String>,
    /// Open file objects.
    handles: BTreeSet<usize>,
    /// IRPs completed during the current dispatch.
    completions: Vec<Completion>,
    /// How many bytes of a security descriptor to keep.
    descriptor_len: usize,
    /// Devices created and deleted since [`load`], in order: `(name, created)`.
    history: Vec<(String, bool)>,
}

static MANAGER: Mutex<Manager> = Mutex::new(Manager {
    driver: 0,
    devices: BTreeMap::new(),
    links: BTreeMap::new(),
    handles: BTreeSet::new(),
    completions: Vec::new(),
    descriptor_len: 0,
    history: Vec::new(),
});

fn manager() -> MutexGuard<'static, Manager> {
    MANAGER.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The text of a counted UTF-16 string the driver passed (`None` for NULL or a bad one).
fn text(string: *const UNICODE_STRING) -> Option<String> {
    // SAFETY: the driver passes a readable UNICODE_STRING or NULL.
    let string = unsafe { string.as_ref() }?;
    if string.Length % 2 != 0 || string.Length > string.MaximumLength || string.Buffer.is_null() {
        return None;
    }
    // SAFETY: `Length` bytes of UTF-16 at `Buffer` (the string's contract).
    let units =
        unsafe { std::slice::from_raw_parts(string.Buffer, usize::from(string.Length) / 2) };
    String::from_utf16(units).ok()
}

/// Allocates a zeroed, 16-byte-aligned block standing for a kernel object (`DEVICE_OBJECT`,
/// `FILE_OBJECT`): the driver only uses its address.
fn object(bytes: usize) -> usize {
    let block: Box<[u128]> = vec![0u128; bytes.div_ceil(16)].into_boxed_slice();
    Box::into_raw(block).cast::<u8>().expose_provenance()
}

/// Frees a block from [`object`].
fn free_object(address: usize, bytes: usize) {
    let slice = std::ptr::slice_from_raw_parts_mut(
        std::ptr::with_exposed_provenance_mut::<u128>(address),
        bytes.div_ceil(16),
    );
    // SAFETY: a block [`object`] leaked with this length, freed once (callers remove it from
    // the manager's tables first).
    drop(unsafe { Box::from_raw(slice) });
}

/// The pointer for a block from [`object`].
fn object_ptr<T>(address: usize) -> *mut T {
    std::ptr::with_exposed_provenance_mut(address)
}

export! {
    /// `IoCreateDevice`: a device object named `DeviceName`, linked at
    /// `DriverObject->DeviceObject`.
    ferry_platform_wdk::ffi::io::imports::IoCreateDevice =>
    fn IoCreateDevice(
        DriverObject: *mut DRIVER_OBJECT,
        DeviceExtensionSize: u32,
        DeviceName: *mut UNICODE_STRING,
        DeviceType: u32,
        DeviceCharacteristics: u32,
        Exclusive: BOOLEAN,
        DeviceObject: *mut *mut DEVICE_OBJECT,
    ) -> NTSTATUS {
        if let Some(status) = called_fallible("IoCreateDevice") {
            return status;
        }
        require_passive("IoCreateDevice");
        let mut manager = manager();
        if DriverObject.addr() != manager.driver || DeviceObject.is_null() {
            drop(manager);
            violation("IoCreateDevice: not the loaded driver's object, or no out-pointer".into());
            return NtStatus::INVALID_PARAMETER;
        }
        let name = text(DeviceName).unwrap_or_default();
        if manager.devices.values().any(|d| !name.is_empty() && d.name == name) {
            return NtStatus::OBJECT_NAME_COLLISION;
        }
        let address = object(DEVICE_OBJECT_SIZE);
        manager.history.push((name.clone(), true));
        manager.devices.insert(address, Device {
            name,
            device_type: DeviceType,
            characteristics: DeviceCharacteristics,
            exclusive: Exclusive != 0,
            extension: DeviceExtensionSize,
            security: None,
        });
        let device = object_ptr::<DEVICE_OBJECT>(address);
        // SAFETY: the loaded driver's object (checked above), which this manager owns.
        unsafe { (*DriverObject).DeviceObject = device };
        // SAFETY: a non-NULL out-pointer from the driver.
        unsafe { DeviceObject.write(device) };
        NtStatus::SUCCESS
    }
}

export! {
    /// `IoDeleteDevice`.
    ferry_platform_wdk::ffi::io::imports::IoDeleteDevice =>
    fn IoDeleteDevice(DeviceObject: *mut DEVICE_OBJECT) {
        called("IoDeleteDevice");
        require_passive("IoDeleteDevice");
        let mut manager = manager();
        let Some(device) = manager.devices.remove(&DeviceObject.addr()) else {
            drop(manager);
            violation(format!("IoDeleteDevice({DeviceObject:p}): not a live device"));
            return;
        };
        if manager.links.values().any(|target| *target == device.name) {
            let name = device.name.clone();
            drop(manager);
            violation(format!("IoDeleteDevice of {name} while a symbolic link names it"));
            manager = self::manager();
        }
        manager.history.push((device.name, false));
        let driver = object_ptr::<DRIVER_OBJECT>(manager.driver);
        // SAFETY: the loaded driver's object, owned by this manager; a deleted device is
        // unlinked from it, as the I/O manager does.
        if !driver.is_null() && unsafe { (*driver).DeviceObject } == DeviceObject {
            // SAFETY: as above.
            unsafe { (*driver).DeviceObject = std::ptr::null_mut() };
        }
        free_object(DeviceObject.addr(), DEVICE_OBJECT_SIZE);
    }
}

export! {
    /// `IoCreateSymbolicLink`: the device must exist and be secured already.
    ferry_platform_wdk::ffi::io::imports::IoCreateSymbolicLink =>
    fn IoCreateSymbolicLink(SymbolicLinkName: *mut UNICODE_STRING, DeviceName: *mut UNICODE_STRING) -> NTSTATUS {
        if let Some(status) = called_fallible("IoCreateSymbolicLink") {
            return status;
        }
        require_passive("IoCreateSymbolicLink");
        let (Some(link), Some(target)) = (text(SymbolicLinkName), text(DeviceName)) else {
            violation("IoCreateSymbolicLink with an unreadable name".into());
            return NtStatus::INVALID_PARAMETER;
        };
        let mut manager = manager();
        match manager.devices.values().find(|d| d.name == target) {
            None => {
                drop(manager);
                violation(format!("IoCreateSymbolicLink({link} -> {target}): no such device"));
                return STATUS_OBJECT_NAME_NOT_FOUND;
            }
            Some(device) if device.security.is_none() => {
                drop(manager);
                violation(format!("IoCreateSymbolicLink({link}) before the device was secured"));
                manager = self::manager();
            }
            Some(_) => {}
        }
        if manager.links.contains_key(&link) {
            return NtStatus::OBJECT_NAME_COLLISION;
        }
        manager.links.insert(link, target);
        NtStatus::SUCCESS
    }
}

export! {
    /// `IoDeleteSymbolicLink`.
    ferry_platform_wdk::ffi::io::imports::IoDeleteSymbolicLink =>
    fn IoDeleteSymbolicLink(SymbolicLinkName: *mut UNICODE_STRING) -> NTSTATUS {
        if let Some(status) = called_fallible("IoDeleteSymbolicLink") {
            return status;
        }
        require_passive("IoDeleteSymbolicLink");
        let link = text(SymbolicLinkName).unwrap_or_default();
        if manager().links.remove(&link).is_none() {
            violation(format!("IoDeleteSymbolicLink({link}): no such link"));
            return STATUS_OBJECT_NAME_NOT_FOUND;
        }
        NtStatus::SUCCESS
    }
}

export! {
    /// `IofCompleteRequest`: records the completion (checked by the dispatch helpers).
    ferry_platform_wdk::ffi::io::imports::IofCompleteRequest =>
    fn IofCompleteRequest(Irp: *mut IRP, PriorityBoost: i8) {
        called("IofCompleteRequest");
        if irql() > DISPATCH_LEVEL {
            violation(format!("IofCompleteRequest at IRQL {}", irql()));
        }
        let _ = PriorityBoost;
        // SAFETY: the IRP the dispatch helpers built and are waiting on (or a violation below).
        let Some(irp) = (unsafe { Irp.as_ref() }) else {
            violation("IofCompleteRequest(NULL)".into());
            return;
        };
        // SAFETY: the union's `Status` member is what a driver writes.
        let status = unsafe { irp.IoStatus.u.Status };
        let completion = Completion {
            irp: Irp.addr(),
            status,
            information: irp.IoStatus.Information,
        };
        manager().completions.push(completion);
    }
}

export! {
    /// `ZwClose`: closes a kernel handle of the loaded host (the VMBus handles
    /// `VmbConvertVmbusHandleToKernelHandle` returned).
    ferry_platform_wdk::ffi::io::imports::ZwClose =>
    fn ZwClose(Handle: HANDLE) -> NTSTATUS {
        if let Some(status) = called_fallible("ZwClose") {
            return status;
        }
        require_passive("ZwClose");
        let index = super::loaded_host();
        let closed = host(index).and_then(|h| {
            let id = decode(index, Tag::KernelVmbus, Handle)?;
            h.abi.vms.borrow_mut().remove(&id)
        });
        if closed.is_none() {
            violation(format!("ZwClose({Handle:p}): not an open kernel handle of this host"));
            return STATUS_INVALID_HANDLE;
        }
        NtStatus::SUCCESS
    }
}

export! {
    /// `ObSetSecurityObjectByPointer`: records what was set on a device.
    ferry_platform_wdk::ffi::io::imports::ObSetSecurityObjectByPointer =>
    fn ObSetSecurityObjectByPointer(Object: *mut c_void, SecurityInformation: u32, SecurityDescriptor: *mut c_void) -> NTSTATUS {
        if let Some(status) = called_fallible("ObSetSecurityObjectByPointer") {
            return status;
        }
        require_passive("ObSetSecurityObjectByPointer");
        let mut manager = manager();
        let keep = manager.descriptor_len;
        let Some(device) = manager.devices.get_mut(&Object.addr()) else {
            drop(manager);
            violation(format!("ObSetSecurityObjectByPointer({Object:p}): not a device"));
            return NtStatus::INVALID_PARAMETER;
        };
        let bytes = if SecurityDescriptor.is_null() || keep == 0 {
            Vec::new()
        } else {
            // SAFETY: the driver's self-relative descriptor, at least `keep` bytes (the test
            // sets `keep` to the length of the descriptor the driver is meant to pass).
            unsafe { std::slice::from_raw_parts(SecurityDescriptor.cast::<u8>(), keep) }.to_vec()
        };
        device.security = Some((SecurityInformation, bytes));
        NtStatus::SUCCESS
    }
}

// ---------------------------------------------------------------------------------------------
// The I/O manager's side: load, open, IRPs, close, unload
// ---------------------------------------------------------------------------------------------

/// The driver's entry point, as the image exports it.
pub type DriverEntry =
    unsafe extern "system" fn(*mut DRIVER_OBJECT, *mut UNICODE_STRING) -> NTSTATUS;

/// The security descriptor length [`ObSetSecurityObjectByPointer`] keeps (the length of the
/// descriptor the driver is expected to pass).
pub fn keep_descriptors(bytes: usize) {
    manager().descriptor_len = bytes;
}

/// Loads the driver on simulated host `host` (installed on this thread): a fresh
/// `DRIVER_OBJECT` handed to `entry` at `PASSIVE_LEVEL`, as the I/O manager does. On failure
/// the image goes away at once (no unload routine runs), so nothing may be left: leftover
/// devices and links are recorded as violations and removed.
///
/// # Safety
///
/// `entry` is the driver's `DriverEntry`, whose imports are this module's.
pub unsafe fn load(host: usize, entry: DriverEntry) -> NtStatus {
    assert!(host < MAX_HOSTS, "host {host} out of range");
    assert_eq!(
        LOADED_ON.swap(host, Ordering::SeqCst),
        NOT_LOADED,
        "the driver is loaded already"
    );
    let driver = Box::into_raw(Box::new(blank_driver()));
    {
        let mut manager = manager();
        manager.driver = driver.expose_provenance();
        manager.history.clear();
    }
    let mut registry: Vec<u16> = "\\Registry\\Machine\\System\\CurrentControlSet\\Services\\ferry"
        .encode_utf16()
        .collect();
    let bytes = u16::try_from(registry.len() * 2).unwrap();
    let mut path = UNICODE_STRING {
        Length: bytes,
        MaximumLength: bytes,
        Buffer: registry.as_mut_ptr(),
    };
    // SAFETY: the caller's contract; a fresh driver object and a valid registry path.
    let status = unsafe { entry(driver, &raw mut path) };
    if !status.is_success() {
        // SAFETY: nothing else uses the driver object now.
        if unsafe { (*driver).DriverUnload }.is_some() {
            violation("DriverEntry failed but set an unload routine".into());
        }
        discard_image(driver);
    }
    status
}

/// A `DRIVER_OBJECT` as the I/O manager hands it to `DriverEntry`.
fn blank_driver() -> DRIVER_OBJECT {
    // SAFETY: integers, pointers and nullable function pointers: all-zero is valid.
    let mut driver: DRIVER_OBJECT = unsafe { std::mem::zeroed() };
    driver.Type = IO_TYPE_DRIVER;
    driver.Size = i16::try_from(size_of::<DRIVER_OBJECT>()).unwrap();
    driver
}

/// The image is gone: whatever it left is recorded and cleared.
fn discard_image(driver: *mut DRIVER_OBJECT) {
    let mut manager = manager();
    let devices: Vec<(usize, Device)> = std::mem::take(&mut manager.devices).into_iter().collect();
    let links = std::mem::take(&mut manager.links);
    manager.driver = 0;
    drop(manager);
    for (address, device) in devices {
        violation(format!("device {} left behind by the driver", device.name));
        free_object(address, DEVICE_OBJECT_SIZE);
    }
    for (link, target) in links {
        violation(format!(
            "symbolic link {link} -> {target} left behind by the driver"
        ));
    }
    // SAFETY: the box `load` leaked; nothing refers to it any more.
    drop(unsafe { Box::from_raw(driver) });
    LOADED_ON.store(NOT_LOADED, Ordering::SeqCst);
}

/// Unloads the driver as the I/O manager does once no handle is open: calls its unload
/// routine at `PASSIVE_LEVEL`, then discards the image. Returns whether an unload routine was
/// set (without one, Windows could not unload the driver: recorded as a violation).
pub fn unload() -> bool {
    let (driver, open) = {
        let manager = manager();
        (manager.driver, manager.handles.len())
    };
    assert_ne!(driver, 0, "the driver is not loaded");
    if open != 0 {
        violation(format!(
            "unload with {open} handle(s) open (the I/O manager waits for them)"
        ));
    }
    let driver = object_ptr::<DRIVER_OBJECT>(driver);
    // SAFETY: the loaded driver's object, owned by this manager.
    let routine = unsafe { (*driver).DriverUnload };
    match routine {
        // SAFETY: the driver's unload routine with its own object.
        Some(routine) => unsafe { routine(driver) },
        None => violation("the driver set no unload routine".into()),
    }
    discard_image(driver);
    routine.is_some()
}

/// Frees every open file object without IRPs: for a test harness recovering from a test
/// that failed with handles open (their `Handle`s are gone).
pub fn abandon_all_handles() {
    let handles = std::mem::take(&mut manager().handles);
    for file in handles {
        free_object(file, FILE_OBJECT_SIZE);
    }
}

/// The devices the driver has now.
#[must_use]
pub fn devices() -> Vec<Device> {
    manager().devices.values().cloned().collect()
}

/// The symbolic links now, as `(link, device name)`.
#[must_use]
pub fn links() -> Vec<(String, String)> {
    manager()
        .links
        .iter()
        .map(|(l, d)| (l.clone(), d.clone()))
        .collect()
}

/// Devices created (`true`) and deleted (`false`) since the last [`load`], by name, in order.
#[must_use]
pub fn device_history() -> Vec<(String, bool)> {
    manager().history.clone()
}

/// The `DRIVER_OBJECT` of the loaded driver, as its routines see it.
///
/// # Panics
///
/// If the driver is not loaded.
#[must_use]
pub fn driver_object() -> &'static DRIVER_OBJECT {
    let driver = manager().driver;
    assert_ne!(driver, 0, "the driver is not loaded");
    // SAFETY: the loaded driver's object, alive until unload; the tests read it between calls.
    unsafe { &*object_ptr::<DRIVER_OBJECT>(driver) }
}

/// What a dispatch routine did with one IRP.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    /// The status the IRP was completed with.
    pub status: NtStatus,
    /// `IoStatus.Information`.
    pub information: usize,
    /// The bytes the I/O manager copies back to the caller (`Information` bytes of the system
    /// buffer, unless the status is an error).
    pub output: Vec<u8>,
}

/// An open handle to the driver's device (its `FILE_OBJECT`).
#[derive(Debug, PartialEq, Eq)]
pub struct Handle {
    file: usize,
}

/// Opens `link` (`\DosDevices\Ferry`) as a user-mode `CreateFile` would: a fresh file object
/// and `IRP_MJ_CREATE`.
///
/// # Errors
///
/// `STATUS_OBJECT_NAME_NOT_FOUND` without such a link, or the status the driver completed the
/// create with.
pub fn open(link: &str) -> Result<Handle, NtStatus> {
    if !manager().links.contains_key(link) {
        return Err(STATUS_OBJECT_NAME_NOT_FOUND);
    }
    let file = object(FILE_OBJECT_SIZE);
    let handle = Handle { file };
    let reply = handle.send(IRP_MJ_CREATE, None);
    if !reply.status.is_success() {
        free_object(file, FILE_OBJECT_SIZE);
        return Err(reply.status);
    }
    manager().handles.insert(file);
    Ok(handle)
}

impl Handle {
    /// `DeviceIoControl(code, input, output_len)`: a `METHOD_BUFFERED` IRP whose system buffer
    /// holds `max(input, output)` bytes (exactly: a read or write past it is a heap overflow
    /// ASan reports), the input copied in and the rest filled with `0xCD`.
    pub fn device_control(&self, code: u32, input: &[u8], output_len: usize) -> Reply {
        let length = input.len().max(output_len);
        let mut buffer = vec![0xCD_u8; length].into_boxed_slice();
        buffer[..input.len()].copy_from_slice(input);
        // SAFETY: integers, padding and a pointer: all-zero is valid.
        let mut parameters: DEVICE_IO_CONTROL_PARAMETERS = unsafe { std::mem::zeroed() };
        parameters.OutputBufferLength = u32::try_from(output_len).unwrap();
        parameters.InputBufferLength = u32::try_from(input.len()).unwrap();
        parameters.IoControlCode = code;
        let system = if length == 0 {
            std::ptr::null_mut()
        } else {
            buffer.as_mut_ptr().cast()
        };
        let mut reply = self.send(IRP_MJ_DEVICE_CONTROL, Some((parameters, system)));
        if reply.information > output_len {
            violation(format!(
                "IOCTL {code:#x} completed with Information {} > output length {output_len}",
                reply.information
            ));
        }
        if !is_error(reply.status) {
            reply.output = buffer[..reply.information.min(output_len)].to_vec();
        }
        reply
    }

    /// Closes the handle: `IRP_MJ_CLEANUP`, then `IRP_MJ_CLOSE`, and the file object goes.
    pub fn close(self) -> (Reply, Reply) {
        let cleanup = self.send(IRP_MJ_CLEANUP, None);
        let close = self.send(IRP_MJ_CLOSE, None);
        manager().handles.remove(&self.file);
        free_object(self.file, FILE_OBJECT_SIZE);
        (cleanup, close)
    }

    /// Frees the file object without sending any IRP: only for a test that unloaded the
    /// driver with the handle still open (which the real I/O manager never does).
    pub fn abandon(self) {
        manager().handles.remove(&self.file);
        free_object(self.file, FILE_OBJECT_SIZE);
    }

    /// Builds one IRP with one stack location for `major` on this handle, calls the driver's
    /// dispatch routine and checks the completion.
    fn send(
        &self,
        major: usize,
        control: Option<(DEVICE_IO_CONTROL_PARAMETERS, *mut c_void)>,
    ) -> Reply {
        let (device, routine) = {
            let manager = manager();
            let driver = object_ptr::<DRIVER_OBJECT>(manager.driver);
            assert!(!driver.is_null(), "the driver is not loaded");
            // SAFETY: the loaded driver's object, owned by this manager.
            let driver = unsafe { &*driver };
            (driver.DeviceObject, driver.MajorFunction[major])
        };
        let Some(routine) = routine else {
            // No dispatch routine: the I/O manager's default completes STATUS_INVALID_DEVICE_REQUEST.
            return Reply {
                status: STATUS_INVALID_DEVICE_REQUEST,
                information: 0,
                output: Vec::new(),
            };
        };
        let (parameters, system) = control.map_or_else(
            || {
                (
                    IO_STACK_LOCATION_PARAMETERS {
                        Others: [std::ptr::null_mut(); 4],
                    },
                    std::ptr::null_mut(),
                )
            },
            |(p, s)| (IO_STACK_LOCATION_PARAMETERS { DeviceIoControl: p }, s),
        );
        let mut stack = Box::new(IO_STACK_LOCATION {
            MajorFunction: u8::try_from(major).unwrap(),
            MinorFunction: 0,
            Flags: 0,
            Control: 0,
            Parameters: parameters,
            DeviceObject: device,
            FileObject: object_ptr(self.file),
            CompletionRoutine: std::ptr::null_mut(),
            Context: std::ptr::null_mut(),
        });
        // SAFETY: integers, pointers and unions of them: all-zero is valid.
        let mut irp: Box<IRP> = Box::new(unsafe { std::mem::zeroed() });
        irp.Type = IO_TYPE_IRP;
        irp.Size = u16::try_from(size_of::<IRP>() + size_of::<IO_STACK_LOCATION>()).unwrap();
        irp.StackCount = 1;
        irp.CurrentLocation = 1;
        irp.RequestorMode = 1;
        irp.AssociatedIrp.SystemBuffer = system;
        irp.IoStatus.u.Status = UNSET_STATUS;
        irp.Tail.CurrentStackLocation = &raw mut *stack;
        irp.Tail.OriginalFileObject = object_ptr(self.file);
        let address = (&raw const *irp).addr();
        manager().completions.clear();
        // SAFETY: the driver's dispatch routine with its device and a well-formed IRP, at
        // PASSIVE_LEVEL in the caller's context, as for a top-level device.
        let returned = unsafe { routine(device, &raw mut *irp) };
        let completions = std::mem::take(&mut manager().completions);
        let mine: Vec<&Completion> = completions.iter().filter(|c| c.irp == address).collect();
        match mine.as_slice() {
            [completion] => {
                if completion.status != returned {
                    violation(format!(
                        "IRP_MJ {major:#x}: completed with {} but the dispatch routine returned {returned}",
                        completion.status
                    ));
                }
                if completion.status == UNSET_STATUS || completion.status == NtStatus::PENDING {
                    violation(format!(
                        "IRP_MJ {major:#x}: completed with status {}",
                        completion.status
                    ));
                }
                Reply {
                    status: completion.status,
                    information: completion.information,
                    output: Vec::new(),
                }
            }
            other => {
                violation(format!(
                    "IRP_MJ {major:#x}: completed {} times (exactly once)",
                    other.len()
                ));
                Reply {
                    status: returned,
                    information: 0,
                    output: Vec::new(),
                }
            }
        }
    }
}

/// `NT_ERROR(status)`: severity 3.
fn is_error(status: NtStatus) -> bool {
    (status.0 as u32) >> 30 == 3
}
