//! The few `ntoskrnl.exe` services ferry uses (`wdm.h`, `ntddk.h`, `dpfilter.h`).
//!
//! These are standard WDK declarations that `shared/reference/` does not cover; each item names
//! its header. The figures were checked against public copies of `wdm.h` and WinDbg's
//! `dt nt!_DRIVER_OBJECT` output, not against a WDK on this machine: on a Windows machine with
//! the WDK, `wdk-sys` can check them (DESIGN.md, platform-wdk).
//!
//! Not bound, because nothing built yet needs them: `KeInitializeEvent` / `KeSetEvent` /
//! `KeWaitForSingleObject` (the unload path that waits for pended vSwitch completions will;
//! `KEVENT` is 24 bytes on x64 per `wdm.h`, to be pinned when added).

#![allow(non_camel_case_types, non_snake_case)]

use core::ffi::c_void;

use static_assertions::{assert_eq_size, const_assert_eq};

use super::base::{DEVICE_OBJECT, NTSTATUS, Opaque, UNICODE_STRING};

/// `KIRQL` (`UCHAR`).
pub type KIRQL = u8;
/// `PASSIVE_LEVEL`.
pub const PASSIVE_LEVEL: KIRQL = 0;
/// `APC_LEVEL`.
pub const APC_LEVEL: KIRQL = 1;
/// `DISPATCH_LEVEL`: where spin-lock holders and most KMCL/WFP callbacks run.
pub const DISPATCH_LEVEL: KIRQL = 2;

/// `KSPIN_LOCK` (`ULONG_PTR`): zero is unlocked (`KeInitializeSpinLock` stores 0).
pub type KSPIN_LOCK = usize;

/// `POOL_FLAGS` (`ULONG64`), the first argument of `ExAllocatePool2` (Windows 10 2004+).
pub type POOL_FLAGS = u64;
/// `POOL_FLAG_UNINITIALIZED`: do not zero the allocation (ExAllocatePool2 zeroes by default).
pub const POOL_FLAG_UNINITIALIZED: POOL_FLAGS = 0x0000_0000_0000_0002;
/// `POOL_FLAG_NON_PAGED`: non-paged, non-executable pool; usable at `DISPATCH_LEVEL`.
pub const POOL_FLAG_NON_PAGED: POOL_FLAGS = 0x0000_0000_0000_0040;
/// `POOL_FLAG_PAGED`: pageable pool; `PASSIVE_LEVEL`/`APC_LEVEL` only.
pub const POOL_FLAG_PAGED: POOL_FLAGS = 0x0000_0000_0000_0100;

/// `DPFLTR_IHVDRIVER_ID` (`dpfilter.h`): the component id for third-party drivers; its output
/// shows with `ed nt!Kd_IHVDRIVER_Mask` set to the wanted levels.
pub const DPFLTR_IHVDRIVER_ID: u32 = 77;
/// `DPFLTR_ERROR_LEVEL`: always shown.
pub const DPFLTR_ERROR_LEVEL: u32 = 0;
/// `DPFLTR_WARNING_LEVEL`.
pub const DPFLTR_WARNING_LEVEL: u32 = 1;
/// `DPFLTR_TRACE_LEVEL`.
pub const DPFLTR_TRACE_LEVEL: u32 = 2;
/// `DPFLTR_INFO_LEVEL`.
pub const DPFLTR_INFO_LEVEL: u32 = 3;

/// `DRIVER_EXTENSION` (`wdm.h`): only used by pointer.
pub type DRIVER_EXTENSION = Opaque;
/// `FAST_IO_DISPATCH` (`wdm.h`): only used by pointer.
pub type FAST_IO_DISPATCH = Opaque;
pub use super::io::IRP;

/// `IRP_MJ_MAXIMUM_FUNCTION + 1`: the size of `DRIVER_OBJECT::MajorFunction`.
pub const IRP_MJ_FUNCTION_COUNT: usize = 28;

/// `DRIVER_INITIALIZE`: `DriverEntry`'s type.
pub type PDRIVER_INITIALIZE = Option<
    unsafe extern "system" fn(
        DriverObject: *mut DRIVER_OBJECT,
        RegistryPath: *mut UNICODE_STRING,
    ) -> NTSTATUS,
>;
/// `DRIVER_UNLOAD`.
pub type PDRIVER_UNLOAD = Option<unsafe extern "system" fn(DriverObject: *mut DRIVER_OBJECT)>;
/// `DRIVER_STARTIO`.
pub type PDRIVER_STARTIO =
    Option<unsafe extern "system" fn(DeviceObject: *mut DEVICE_OBJECT, Irp: *mut IRP)>;
/// `DRIVER_DISPATCH`.
pub type PDRIVER_DISPATCH =
    Option<unsafe extern "system" fn(DeviceObject: *mut DEVICE_OBJECT, Irp: *mut IRP) -> NTSTATUS>;

/// `DRIVER_OBJECT` (`wdm.h`): what the I/O manager passes to `DriverEntry`. A driver sets
/// `DriverUnload` and `MajorFunction`; the other fields belong to the kernel.
#[repr(C)]
pub struct DRIVER_OBJECT {
    /// `IO_TYPE_DRIVER` (4).
    pub Type: i16,
    /// `sizeof(DRIVER_OBJECT)` (336).
    pub Size: i16,
    /// First device object the driver created.
    pub DeviceObject: *mut DEVICE_OBJECT,
    /// `DRVO_*` flags.
    pub Flags: u32,
    /// Image base.
    pub DriverStart: *mut c_void,
    /// Image size.
    pub DriverSize: u32,
    /// Loader entry.
    pub DriverSection: *mut c_void,
    /// Driver extension.
    pub DriverExtension: *mut DRIVER_EXTENSION,
    /// `\Driver\<name>`.
    pub DriverName: UNICODE_STRING,
    /// Hardware database path.
    pub HardwareDatabase: *mut UNICODE_STRING,
    /// Fast I/O table (file systems).
    pub FastIoDispatch: *mut FAST_IO_DISPATCH,
    /// The entry point.
    pub DriverInit: PDRIVER_INITIALIZE,
    /// StartIo routine.
    pub DriverStartIo: PDRIVER_STARTIO,
    /// Unload routine: without one the driver cannot be stopped.
    pub DriverUnload: PDRIVER_UNLOAD,
    /// IRP dispatch routines.
    pub MajorFunction: [PDRIVER_DISPATCH; IRP_MJ_FUNCTION_COUNT],
}

// wdm.h / `dt nt!_DRIVER_OBJECT` on x64: DriverName @0x38, DriverInit @0x58, DriverUnload
// @0x68, MajorFunction @0x70, sizeof 0x150 (336, the `Size` the kernel writes).
assert_eq_size!(DRIVER_OBJECT, [u8; 336]);
const_assert_eq!(core::mem::offset_of!(DRIVER_OBJECT, DeviceObject), 0x08);
const_assert_eq!(core::mem::offset_of!(DRIVER_OBJECT, DriverStart), 0x18);
const_assert_eq!(core::mem::offset_of!(DRIVER_OBJECT, DriverName), 0x38);
const_assert_eq!(core::mem::offset_of!(DRIVER_OBJECT, DriverInit), 0x58);
const_assert_eq!(core::mem::offset_of!(DRIVER_OBJECT, DriverUnload), 0x68);
const_assert_eq!(core::mem::offset_of!(DRIVER_OBJECT, MajorFunction), 0x70);

/// `KI_USER_SHARED_DATA` (`wdm.h`, x64): the kernel-mode address of `KUSER_SHARED_DATA`.
pub const KI_USER_SHARED_DATA: usize = 0xFFFF_F780_0000_0000;
/// `SharedInterruptTime` (`wdm.h`): `KI_USER_SHARED_DATA + 0x8`, the 64-bit interrupt time.
pub const SHARED_INTERRUPT_TIME: usize = KI_USER_SHARED_DATA + 0x8;

/// `KeQueryInterruptTime`: 100 ns units since boot, monotonic.
///
/// In the x64 WDK this is not an export but a macro, `*(volatile ULONG64 *)SharedInterruptTime`:
/// the kernel keeps the value current in `KUSER_SHARED_DATA`, and an aligned 64-bit load is
/// atomic on x64. This is the same read. (`KeQueryInterruptTimePrecise`, an export, would also
/// do but reads the performance counter on every call; the classify path calls this often.)
///
/// # Safety
///
/// Kernel mode on x64 Windows only: the address is mapped there and nowhere else (user mode
/// sees `KUSER_SHARED_DATA` at `0x7FFE0000`; Linux does not map it at all).
#[cfg(target_os = "windows")]
#[must_use]
pub unsafe fn KeQueryInterruptTime() -> u64 {
    // SAFETY: the caller runs in kernel mode on x64, where `SHARED_INTERRUPT_TIME` is a mapped,
    // 8-byte-aligned, always-readable u64 (wdm.h); volatile because the kernel updates it.
    unsafe { core::ptr::read_volatile(SHARED_INTERRUPT_TIME as *const u64) }
}

/// `KeQueryInterruptTime` on targets other than Windows: **the one place where platform-wdk's
/// code differs between the kernel image and the Linux host.** The read of `KUSER_SHARED_DATA`
/// above would fault on Linux, so here the same value comes from the export that returns it,
/// `KeQueryInterruptTimePrecise` (`wdm.h`, Windows 8.1+; its optional out-parameter is the
/// performance counter, not wanted). A Linux test binary that runs the driver defines the
/// symbol (ferry-sim-abi's `nt` module: the simulated host's clock); any other binary that
/// reached this would fail to link. The Windows image is unaffected: it never compiles this.
///
/// # Safety
///
/// Only in a binary that defines `KeQueryInterruptTimePrecise` with that C signature.
#[cfg(not(target_os = "windows"))]
#[must_use]
pub unsafe fn KeQueryInterruptTime() -> u64 {
    // SAFETY: a plain call of the stand-in export (the caller's contract); NULL is allowed for
    // the optional out-parameter.
    unsafe { host_substitute::KeQueryInterruptTimePrecise(core::ptr::null_mut()) }
}

/// The export that stands in for the `KUSER_SHARED_DATA` read on targets other than Windows.
#[cfg(not(target_os = "windows"))]
pub mod host_substitute {
    unsafe extern "system" {
        /// `KeQueryInterruptTimePrecise` (`wdm.h`): interrupt time, 100 ns units since boot.
        pub fn KeQueryInterruptTimePrecise(QpcTimeStamp: *mut u64) -> u64;
    }
}

/// Imports from `ntoskrnl.exe`. The `link` attribute applies only to Windows targets: on the
/// Linux host these are plain undefined symbols, never to be called there.
pub mod imports {
    use core::ffi::{c_char, c_void};

    use super::{KIRQL, KSPIN_LOCK, POOL_FLAGS};

    #[cfg_attr(
        windows,
        link(name = "ntoskrnl.exe", kind = "raw-dylib", modifiers = "+verbatim")
    )]
    unsafe extern "system" {
        /// `ExAllocatePool2` (Windows 10 2004+): zeroed unless `POOL_FLAG_UNINITIALIZED`;
        /// NULL on failure; at most `DISPATCH_LEVEL` for non-paged pool.
        pub fn ExAllocatePool2(Flags: POOL_FLAGS, NumberOfBytes: usize, Tag: u32) -> *mut c_void;
        /// `ExFreePoolWithTag`: `Tag` must be the allocation's tag.
        pub fn ExFreePoolWithTag(P: *mut c_void, Tag: u32);
        /// `KeAcquireSpinLockRaiseToDpc` (x64 export; `KeAcquireSpinLock` is a macro over it):
        /// raises to `DISPATCH_LEVEL`, spins, returns the previous IRQL.
        pub fn KeAcquireSpinLockRaiseToDpc(SpinLock: *mut KSPIN_LOCK) -> KIRQL;
        /// `KeReleaseSpinLock`: releases and restores `NewIrql`.
        pub fn KeReleaseSpinLock(SpinLock: *mut KSPIN_LOCK, NewIrql: KIRQL);
        /// `KeBugCheckEx`: stops the machine with a bug-check code and four parameters.
        pub fn KeBugCheckEx(
            BugCheckCode: u32,
            BugCheckParameter1: usize,
            BugCheckParameter2: usize,
            BugCheckParameter3: usize,
            BugCheckParameter4: usize,
        ) -> !;
    }

    #[cfg_attr(
        windows,
        link(name = "ntoskrnl.exe", kind = "raw-dylib", modifiers = "+verbatim")
    )]
    unsafe extern "C" {
        /// `DbgPrintEx` (`__cdecl`, variadic; on x64 the same convention as `system`): prints
        /// to the kernel debugger if `ComponentId`/`Level` pass the debug filter. At most 512
        /// bytes per call; `%s` of ANSI text is legal at any IRQL up to DIRQL.
        pub fn DbgPrintEx(ComponentId: u32, Level: u32, Format: *const c_char, ...) -> u32;
    }
}

/// `KeDelayExecutionThread` (`wdm.h`, `PASSIVE_LEVEL`..`APC_LEVEL`): the one wait ferry makes,
/// between retries of a callout unregistration the filter engine refused (`host::filters`).
/// Not in `shared/reference/`; standard `wdm.h` declaration.
pub mod wait {
    use super::super::base::NTSTATUS;

    /// `KPROCESSOR_MODE` (`CCHAR`).
    pub type KPROCESSOR_MODE = i8;
    /// `KernelMode`.
    pub const KERNEL_MODE: KPROCESSOR_MODE = 0;

    #[cfg_attr(
        windows,
        link(name = "ntoskrnl.exe", kind = "raw-dylib", modifiers = "+verbatim")
    )]
    unsafe extern "system" {
        /// Waits for `*Interval` (negative: relative, 100 ns units). `Alertable` is a
        /// `BOOLEAN`.
        pub fn KeDelayExecutionThread(
            WaitMode: KPROCESSOR_MODE,
            Alertable: u8,
            Interval: *mut i64,
        ) -> NTSTATUS;
    }
}
