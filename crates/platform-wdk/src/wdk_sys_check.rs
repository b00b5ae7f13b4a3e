//! Compile-time comparison of ferry's own kernel declarations with `wdk-sys`'s (feature
//! `wdk-sys`, Windows targets only). **Not compiled in this project's CI**: `wdk-sys`'s build
//! script needs a Windows host with the WDK (it runs bindgen over the WDK headers).
//!
//! ferry keeps its hand-written declarations everywhere (they are what the Linux host tests
//! and the Linux-built image use); where the WDK is present, this module proves them equal
//! to the WDK's own, as bindgen reads them from the headers. Each assertion compares a size,
//! an alignment or an offset; a mismatch fails the build.
//!
//! Compared: `GUID`, `UNICODE_STRING`, `DRIVER_OBJECT` (the members ferry touches),
//! `KSPIN_LOCK`. Not comparable with `wdk-sys` 0.5.2, which generates bindings for
//! `ntddk.h`/`wdm.h` (and WDF, HID, SPB, storage, USB, `wsk.h`) but not for `ndis.h` or the
//! WFP headers: `NDIS_SWITCH_PARAMETERS`, `NET_BUFFER(_LIST)`, `FWPS_CALLOUT2`, the `FWPM_*`
//! structures and KMCL's tables — those stay pinned by the `static_assertions` in `ffi`
//! only. Function signatures are not compared either: bindgen declares the imports
//! `extern "C"` with `SIZE_T` as `u64`, so a pointer-type comparison would fail on spelling,
//! not on ABI.

use static_assertions::const_assert_eq;

use crate::ffi::base::{GUID, UNICODE_STRING};
use crate::ffi::ntoskrnl::{DRIVER_OBJECT, KSPIN_LOCK};

const_assert_eq!(
    core::mem::size_of::<GUID>(),
    core::mem::size_of::<wdk_sys::GUID>()
);
const_assert_eq!(
    core::mem::align_of::<GUID>(),
    core::mem::align_of::<wdk_sys::GUID>()
);
const_assert_eq!(
    core::mem::offset_of!(GUID, Data4),
    core::mem::offset_of!(wdk_sys::GUID, Data4)
);

const_assert_eq!(
    core::mem::size_of::<UNICODE_STRING>(),
    core::mem::size_of::<wdk_sys::UNICODE_STRING>()
);
const_assert_eq!(
    core::mem::offset_of!(UNICODE_STRING, Buffer),
    core::mem::offset_of!(wdk_sys::UNICODE_STRING, Buffer)
);

const_assert_eq!(
    core::mem::size_of::<DRIVER_OBJECT>(),
    core::mem::size_of::<wdk_sys::DRIVER_OBJECT>()
);
const_assert_eq!(
    core::mem::offset_of!(DRIVER_OBJECT, DeviceObject),
    core::mem::offset_of!(wdk_sys::DRIVER_OBJECT, DeviceObject)
);
const_assert_eq!(
    core::mem::offset_of!(DRIVER_OBJECT, DriverName),
    core::mem::offset_of!(wdk_sys::DRIVER_OBJECT, DriverName)
);
const_assert_eq!(
    core::mem::offset_of!(DRIVER_OBJECT, DriverUnload),
    core::mem::offset_of!(wdk_sys::DRIVER_OBJECT, DriverUnload)
);
const_assert_eq!(
    core::mem::offset_of!(DRIVER_OBJECT, MajorFunction),
    core::mem::offset_of!(wdk_sys::DRIVER_OBJECT, MajorFunction)
);

const_assert_eq!(
    core::mem::size_of::<KSPIN_LOCK>(),
    core::mem::size_of::<wdk_sys::KSPIN_LOCK>()
);
