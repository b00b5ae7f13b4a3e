//! The I/O manager's structures and services the control device uses (`wdm.h`): `IRP`,
//! `IO_STACK_LOCATION` (the `DeviceIoControl` parameters), `IO_STATUS_BLOCK`, the major
//! function codes, and `IoCreateDevice` / `IoCreateSymbolicLink` / `IoDeleteSymbolicLink` /
//! `IoDeleteDevice` / `IofCompleteRequest` / `ZwClose` / `ObSetSecurityObjectByPointer`
//! (`ntifs.h`).
//!
//! **Source.** None of this is in `shared/reference/`: the layouts are the x64 layouts of the
//! public `wdm.h` (Windows 10/11 WDK), cross-checked with the field offsets WinDbg prints for
//! `dt nt!_IRP` and `dt nt!_IO_STACK_LOCATION` on x64. They are pinned below with
//! `static_assertions`; on a Windows machine with the WDK, the `wdk-sys` bindings can check
//! them. Only the fields ferry reads or writes are named; the rest are kept as
//! correctly sized members so that the offsets hold.

#![allow(non_camel_case_types, non_snake_case)]

use core::ffi::c_void;

use static_assertions::{assert_eq_size, const_assert_eq};

use super::base::{DEVICE_OBJECT, MDL, NTSTATUS, Opaque};

/// `FILE_OBJECT` (`wdm.h`): only its address is used (as the identity of an open handle).
pub type FILE_OBJECT = Opaque;

/// `IRP_MJ_CREATE`.
pub const IRP_MJ_CREATE: usize = 0x00;
/// `IRP_MJ_CLOSE`.
pub const IRP_MJ_CLOSE: usize = 0x02;
/// `IRP_MJ_DEVICE_CONTROL`.
pub const IRP_MJ_DEVICE_CONTROL: usize = 0x0E;
/// `IRP_MJ_CLEANUP`: the last handle to a file object was closed.
pub const IRP_MJ_CLEANUP: usize = 0x12;

/// `FILE_DEVICE_SECURE_OPEN` (`wdm.h` device characteristics): the device's security
/// descriptor also applies to opens of names below the device (`\Device\Ferry\x`).
pub const FILE_DEVICE_SECURE_OPEN: u32 = 0x0000_0100;
/// `IO_NO_INCREMENT`: no priority boost at completion.
pub const IO_NO_INCREMENT: i8 = 0;

/// `LIST_ENTRY` (`ntdef.h`).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct LIST_ENTRY {
    /// Next entry.
    pub Flink: *mut LIST_ENTRY,
    /// Previous entry.
    pub Blink: *mut LIST_ENTRY,
}

/// The anonymous union at the start of `IO_STATUS_BLOCK`.
#[repr(C)]
#[derive(Clone, Copy)]
pub union IO_STATUS_BLOCK_0 {
    /// The completion status.
    pub Status: NTSTATUS,
    /// Reserved for the system.
    pub Pointer: *mut c_void,
}

/// `IO_STATUS_BLOCK` (`wdm.h`): 16 bytes on x64.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct IO_STATUS_BLOCK {
    /// The status (`Status` member of the union).
    pub u: IO_STATUS_BLOCK_0,
    /// Request-dependent; for `METHOD_BUFFERED` IOCTLs the bytes of output to copy back.
    pub Information: usize,
}

/// `IRP::AssociatedIrp` (`wdm.h`).
#[repr(C)]
#[derive(Clone, Copy)]
pub union IRP_ASSOCIATED {
    /// For an associated IRP: its master.
    pub MasterIrp: *mut IRP,
    /// For a master IRP: its count of associated IRPs.
    pub IrpCount: i32,
    /// For buffered I/O: the system buffer.
    pub SystemBuffer: *mut c_void,
}

/// `IRP::Tail.Overlay` (`wdm.h`): 0x58 bytes on x64, the size of the `Tail` union (whose other
/// members, a `KAPC` and a completion key, are never used here).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct IRP_TAIL_OVERLAY {
    /// `DeviceQueueEntry` / `DriverContext[4]` (32 bytes).
    pub DriverContext: [*mut c_void; 4],
    /// The thread that issued the request.
    pub Thread: *mut c_void,
    /// Auxiliary buffer.
    pub AuxiliaryBuffer: *mut u8,
    /// Queue linkage.
    pub ListEntry: LIST_ENTRY,
    /// The current `IO_STACK_LOCATION` (`IoGetCurrentIrpStackLocation` reads this).
    pub CurrentStackLocation: *mut IO_STACK_LOCATION,
    /// The file object the request was issued on.
    pub OriginalFileObject: *mut FILE_OBJECT,
    /// `IrpExtension`.
    pub IrpExtension: *mut c_void,
}

/// `IRP` (`wdm.h`), x64: 0xD0 bytes. ferry reads `AssociatedIrp.SystemBuffer` and
/// `Tail.Overlay.CurrentStackLocation` and writes `IoStatus`.
#[repr(C)]
pub struct IRP {
    /// `IO_TYPE_IRP`.
    pub Type: i16,
    /// Bytes allocated for the IRP and its stack locations.
    pub Size: u16,
    /// `AllocationProcessorNumber`.
    pub AllocationProcessorNumber: u16,
    /// Reserved.
    pub Reserved: u16,
    /// Direct I/O's MDL.
    pub MdlAddress: *mut MDL,
    /// `IRP_*` flags.
    pub Flags: u32,
    /// The system buffer of buffered I/O.
    pub AssociatedIrp: IRP_ASSOCIATED,
    /// Thread linkage.
    pub ThreadListEntry: LIST_ENTRY,
    /// The completion status and information.
    pub IoStatus: IO_STATUS_BLOCK,
    /// `KernelMode` (0) or `UserMode` (1).
    pub RequestorMode: i8,
    /// `PendingReturned`.
    pub PendingReturned: u8,
    /// `StackCount`.
    pub StackCount: i8,
    /// `CurrentLocation`.
    pub CurrentLocation: i8,
    /// `Cancel`.
    pub Cancel: u8,
    /// `CancelIrql`.
    pub CancelIrql: u8,
    /// `ApcEnvironment`.
    pub ApcEnvironment: i8,
    /// `AllocationFlags`.
    pub AllocationFlags: u8,
    /// `UserIosb` (a union with `IoRingContext` in newer headers).
    pub UserIosb: *mut IO_STATUS_BLOCK,
    /// `UserEvent`.
    pub UserEvent: *mut c_void,
    /// `Overlay` (`AsynchronousParameters` / `AllocationSize`, 16 bytes).
    pub Overlay: [u64; 2],
    /// `CancelRoutine`.
    pub CancelRoutine: *mut c_void,
    /// `UserBuffer`.
    pub UserBuffer: *mut c_void,
    /// `Tail.Overlay`.
    pub Tail: IRP_TAIL_OVERLAY,
}

// wdm.h x64 / `dt nt!_IRP`: AssociatedIrp @0x18, IoStatus @0x30, UserBuffer @0x70, Tail @0x78,
// Tail.Overlay.CurrentStackLocation @0xB8, OriginalFileObject @0xC0, sizeof 0xD0.
assert_eq_size!(IRP, [u8; 0xD0]);
assert_eq_size!(IO_STATUS_BLOCK, [u8; 16]);
assert_eq_size!(IRP_TAIL_OVERLAY, [u8; 0x58]);
const_assert_eq!(core::mem::offset_of!(IO_STATUS_BLOCK, Information), 8);
const_assert_eq!(core::mem::offset_of!(IRP, MdlAddress), 0x08);
const_assert_eq!(core::mem::offset_of!(IRP, AssociatedIrp), 0x18);
const_assert_eq!(core::mem::offset_of!(IRP, IoStatus), 0x30);
const_assert_eq!(core::mem::offset_of!(IRP, RequestorMode), 0x40);
const_assert_eq!(core::mem::offset_of!(IRP, UserIosb), 0x48);
const_assert_eq!(core::mem::offset_of!(IRP, UserBuffer), 0x70);
const_assert_eq!(core::mem::offset_of!(IRP, Tail), 0x78);
// Tail @0x78 + CurrentStackLocation @0x40 = 0xB8; + OriginalFileObject @0x48 = 0xC0.
const_assert_eq!(
    core::mem::offset_of!(IRP_TAIL_OVERLAY, CurrentStackLocation),
    0x40
);
const_assert_eq!(
    core::mem::offset_of!(IRP_TAIL_OVERLAY, OriginalFileObject),
    0x48
);

/// `IO_STACK_LOCATION::Parameters.DeviceIoControl` (`wdm.h`): three `ULONG`s, the second and
/// third `POINTER_ALIGNMENT` (8 on x64), then a pointer — 32 bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct DEVICE_IO_CONTROL_PARAMETERS {
    /// Bytes the caller can receive.
    pub OutputBufferLength: u32,
    _align1: u32,
    /// Bytes the caller sent.
    pub InputBufferLength: u32,
    _align2: u32,
    /// The IOCTL code.
    pub IoControlCode: u32,
    _align3: u32,
    /// `METHOD_NEITHER`'s user input pointer (never used: ferry's codes are buffered).
    pub Type3InputBuffer: *mut c_void,
}

/// `IO_STACK_LOCATION::Parameters` (`wdm.h`): a union of per-major-function parameter blocks,
/// 32 bytes on x64; only `DeviceIoControl` is used.
#[repr(C)]
#[derive(Clone, Copy)]
pub union IO_STACK_LOCATION_PARAMETERS {
    /// `IRP_MJ_DEVICE_CONTROL`'s parameters.
    pub DeviceIoControl: DEVICE_IO_CONTROL_PARAMETERS,
    /// The union's size on x64 (its largest members are four pointers).
    pub Others: [*mut c_void; 4],
}

/// `IO_STACK_LOCATION` (`wdm.h`), x64: 0x48 bytes.
#[repr(C)]
pub struct IO_STACK_LOCATION {
    /// `IRP_MJ_*`.
    pub MajorFunction: u8,
    /// `IRP_MN_*`.
    pub MinorFunction: u8,
    /// `SL_*` flags.
    pub Flags: u8,
    /// `SL_*` control bits.
    pub Control: u8,
    /// Per-function parameters.
    pub Parameters: IO_STACK_LOCATION_PARAMETERS,
    /// The target device.
    pub DeviceObject: *mut DEVICE_OBJECT,
    /// The file object of the handle the request came through.
    pub FileObject: *mut FILE_OBJECT,
    /// Completion routine.
    pub CompletionRoutine: *mut c_void,
    /// Its context.
    pub Context: *mut c_void,
}

// wdm.h x64 / `dt nt!_IO_STACK_LOCATION`: Parameters @0x08 (OutputBufferLength @0x08,
// InputBufferLength @0x10, IoControlCode @0x18), DeviceObject @0x28, FileObject @0x30,
// sizeof 0x48.
assert_eq_size!(DEVICE_IO_CONTROL_PARAMETERS, [u8; 32]);
assert_eq_size!(IO_STACK_LOCATION_PARAMETERS, [u8; 32]);
assert_eq_size!(IO_STACK_LOCATION, [u8; 0x48]);
const_assert_eq!(core::mem::offset_of!(IO_STACK_LOCATION, Parameters), 0x08);
// Parameters @0x08 + InputBufferLength @0x08 = 0x10; + IoControlCode @0x10 = 0x18.
const_assert_eq!(
    core::mem::offset_of!(DEVICE_IO_CONTROL_PARAMETERS, InputBufferLength),
    0x08
);
const_assert_eq!(
    core::mem::offset_of!(DEVICE_IO_CONTROL_PARAMETERS, IoControlCode),
    0x10
);
const_assert_eq!(core::mem::offset_of!(IO_STACK_LOCATION, DeviceObject), 0x28);
const_assert_eq!(core::mem::offset_of!(IO_STACK_LOCATION, FileObject), 0x30);

/// Imports from `ntoskrnl.exe` for the control device. The `link` attribute applies only to
/// Windows targets: on the Linux host these are plain undefined symbols, never to be called.
pub mod imports {
    use core::ffi::c_void;

    use super::super::base::{BOOLEAN, DEVICE_OBJECT, HANDLE, NTSTATUS, UNICODE_STRING};
    use super::super::ntoskrnl::DRIVER_OBJECT;
    use super::IRP;

    #[cfg_attr(
        windows,
        link(name = "ntoskrnl.exe", kind = "raw-dylib", modifiers = "+verbatim")
    )]
    unsafe extern "system" {
        /// `IoCreateDevice` (PASSIVE_LEVEL): creates a device object (and its name).
        pub fn IoCreateDevice(
            DriverObject: *mut DRIVER_OBJECT,
            DeviceExtensionSize: u32,
            DeviceName: *mut UNICODE_STRING,
            DeviceType: u32,
            DeviceCharacteristics: u32,
            Exclusive: BOOLEAN,
            DeviceObject: *mut *mut DEVICE_OBJECT,
        ) -> NTSTATUS;
        /// `IoDeleteDevice` (PASSIVE_LEVEL).
        pub fn IoDeleteDevice(DeviceObject: *mut DEVICE_OBJECT);
        /// `IoCreateSymbolicLink` (PASSIVE_LEVEL).
        pub fn IoCreateSymbolicLink(
            SymbolicLinkName: *mut UNICODE_STRING,
            DeviceName: *mut UNICODE_STRING,
        ) -> NTSTATUS;
        /// `IoDeleteSymbolicLink` (PASSIVE_LEVEL).
        pub fn IoDeleteSymbolicLink(SymbolicLinkName: *mut UNICODE_STRING) -> NTSTATUS;
        /// `IofCompleteRequest` (`IoCompleteRequest` is a macro over it; <= DISPATCH_LEVEL):
        /// completes an IRP; the IRP must not be touched afterwards.
        pub fn IofCompleteRequest(Irp: *mut IRP, PriorityBoost: i8);
        /// `ZwClose` (PASSIVE_LEVEL): closes a kernel handle.
        pub fn ZwClose(Handle: HANDLE) -> NTSTATUS;
        /// `ObSetSecurityObjectByPointer` (`ntifs.h`, PASSIVE_LEVEL): sets the parts of an
        /// object's security descriptor that `SecurityInformation` names.
        pub fn ObSetSecurityObjectByPointer(
            Object: *mut c_void,
            SecurityInformation: u32,
            SecurityDescriptor: *mut c_void,
        ) -> NTSTATUS;
    }
}
