//! The driver's global state and its one [`FerryHost`]: the platform over the direct imports
//! of `vmbkmclr.sys` and `fwpkclnt.sys`, the port table, the vSwitch state and the control
//! device's channel registry, all `static`
//! (non-paged: ferry has no pageable sections) and built at compile time, so no callback can
//! ever find them uninitialised.

use ferry_core::lock::Mutex;
use ferry_core::port::PortTable;
use ferry_core::status::NtStatus;
use ferry_platform_wdk::control::ControlDevice;
use ferry_platform_wdk::control::registry::CHANNELS;
use ferry_platform_wdk::ferry_log;
use ferry_platform_wdk::ffi::base::{DEVICE_OBJECT, GUID};
use ferry_platform_wdk::ffi::io::imports::ZwClose;
use ferry_platform_wdk::host::callout::{CalloutHost, Callouts};
use ferry_platform_wdk::host::channel::packet_completion;
use ferry_platform_wdk::host::filters::{self, CalloutKeys, Registration};
use ferry_platform_wdk::host::vswitch::{Subscription, VSwitch};
use ferry_platform_wdk::host::{FerryHost, WdkPortTable};
use ferry_platform_wdk::kernel::log::Level;
use ferry_platform_wdk::kernel::services::NtKernel;
use ferry_platform_wdk::kernel::spin_lock::KernelSpinLock;
use ferry_platform_wdk::platform::WdkPlatform;
use ferry_platform_wdk::tables::{KmclTable, WfpTable};

/// ferry's WFP provider GUID `{f3a7e2c1-6b0d-4c5e-9a41-2f8e5d7c9b30}`: the subscription and
/// the callouts' engine objects use it, and WFP routes runtime-state restores by it.
pub const FERRY_PROVIDER: GUID = GUID {
    Data1: 0xF3A7_E2C1,
    Data2: 0x6B0D,
    Data3: 0x4C5E,
    Data4: [0x9A, 0x41, 0x2F, 0x8E, 0x5D, 0x7C, 0x9B, 0x30],
};

/// ferry.sys as the trampolines' host.
pub enum Driver {}

static PLATFORM: WdkPlatform<NtKernel> = WdkPlatform::new(
    KmclTable::from_imports(),
    WfpTable::from_imports(),
    Some(packet_completion::<Driver>),
);
static PORTS: WdkPortTable<NtKernel> = PortTable::new();
static VSWITCH: VSwitch<NtKernel> = VSwitch::new(&PLATFORM, &PORTS);
static SUBSCRIPTION: Mutex<KernelSpinLock, Option<Subscription>> = Mutex::new(None);
/// The control device's state: the channels it offered (`crate::device` is its IRP side).
pub static CONTROL: ControlDevice<Driver, CHANNELS> = ControlDevice::new(ZwClose);

impl FerryHost for Driver {
    type Kernel = NtKernel;

    fn platform() -> &'static WdkPlatform<NtKernel> {
        &PLATFORM
    }

    fn ports() -> &'static WdkPortTable<NtKernel> {
        &PORTS
    }
}

/// The driver's vSwitch state, for inspection (pending saves, published blobs) and for the host
/// ABI tests, which also turn on pended saves with it: the driver itself never does (see
/// `ferry_platform_wdk::host::vswitch`).
#[must_use]
pub fn vswitch() -> &'static VSwitch<NtKernel> {
    &VSWITCH
}

/// Subscribes to the vSwitch events (DriverEntry, PASSIVE_LEVEL).
///
/// # Errors
///
/// WFP's status; nothing is left subscribed.
pub fn start() -> Result<(), NtStatus> {
    let subscription = VSWITCH.subscribe(&FERRY_PROVIDER)?;
    *SUBSCRIPTION.lock() = Some(subscription);
    Ok(())
}

/// Tears down in the order that leaves no callback pointing at freed code (unload, or a
/// failed DriverEntry, PASSIVE_LEVEL). The callouts are removed before all of this, by
/// [`stop_callouts`], while the device object they were registered with still exists. Then:
/// (1) the control device's symbolic link goes, so nothing new can open it (unload runs only
/// once every handle is closed, so no request is in flight); (2) every channel in the registry
/// is closed — `VmbChannelDisable` waits for its callbacks, then `VmbChannelCleanup`, then its
/// VMBus kernel handle is closed — and then the device object, which parented them, is
/// deleted; (3) the vSwitch subscription ends, pending saves are completed `STATUS_CANCELLED`
/// and every runtime-state blob is freed. Only then does unload return and the image go away.
pub fn stop() {
    crate::device::delete_link();
    let closed = CONTROL.close_all();
    if closed > 0 {
        ferry_platform_wdk::ferry_log!(
            ferry_platform_wdk::kernel::log::Level::Info,
            "unload closed {closed} channel(s)"
        );
    }
    crate::device::delete_device();
    let subscription = SUBSCRIPTION.lock().take();
    if let Some(subscription) = subscription {
        VSWITCH.unsubscribe(subscription);
    }
}

// ---------------------------------------------------------------------------------------------
// WFP callouts on the vSwitch ethernet layers (ferry_platform_wdk::host::{callout, filters})
// ---------------------------------------------------------------------------------------------

/// The GUIDs of ferry's engine objects: the provider is [`FERRY_PROVIDER`]; the others were
/// generated for ferry.
pub const CALLOUT_KEYS: CalloutKeys = CalloutKeys {
    provider: FERRY_PROVIDER,
    // {04a76482-00a8-46b2-ba2e-ac6e8c2075d7}
    sublayer: GUID {
        Data1: 0x04a7_6482,
        Data2: 0x00a8,
        Data3: 0x46b2,
        Data4: [0xba, 0x2e, 0xac, 0x6e, 0x8c, 0x20, 0x75, 0xd7],
    },
    // {2952c931-30b3-4b08-9ffa-6bfbc741a948}
    ingress_callout: GUID {
        Data1: 0x2952_c931,
        Data2: 0x30b3,
        Data3: 0x4b08,
        Data4: [0x9f, 0xfa, 0x6b, 0xfb, 0xc7, 0x41, 0xa9, 0x48],
    },
    // {2de8c2d0-5801-4238-86f0-e44fc704dc26}
    egress_callout: GUID {
        Data1: 0x2de8_c2d0,
        Data2: 0x5801,
        Data3: 0x4238,
        Data4: [0x86, 0xf0, 0xe4, 0x4f, 0xc7, 0x04, 0xdc, 0x26],
    },
    // {4d4ed39c-9530-4ca5-8fa4-9809b1c158d1}
    ingress_filter: GUID {
        Data1: 0x4d4e_d39c,
        Data2: 0x9530,
        Data3: 0x4ca5,
        Data4: [0x8f, 0xa4, 0x98, 0x09, 0xb1, 0xc1, 0x58, 0xd1],
    },
    // {21b5fbda-667e-4a0a-8c25-de2078d314cf}
    egress_filter: GUID {
        Data1: 0x21b5_fbda,
        Data2: 0x667e,
        Data3: 0x4a0a,
        Data4: [0x8c, 0x25, 0xde, 0x20, 0x78, 0xd3, 0x14, 0xcf],
    },
};

static CALLOUTS: Callouts<NtKernel> = Callouts::new(&PLATFORM, &PORTS);
static REGISTRATION: Mutex<KernelSpinLock, Option<Registration>> = Mutex::new(None);

impl CalloutHost for Driver {
    type Kernel = NtKernel;

    fn callouts() -> &'static Callouts<NtKernel> {
        &CALLOUTS
    }
}

/// Registers the callouts and adds the filters that reach them (DriverEntry, PASSIVE_LEVEL,
/// after [`start`]). `device` is the driver's own device object, which
/// `FwpsCalloutRegister2` requires.
///
/// # Errors
///
/// The failing engine call's status; nothing is left registered.
pub fn start_callouts(device: *mut DEVICE_OBJECT) -> Result<(), NtStatus> {
    let registration =
        filters::register::<Driver>(PLATFORM.wfp(), device, &CALLOUT_KEYS).map_err(|error| {
            ferry_log!(Level::Error, "callout registration: {error}");
            error.status
        })?;
    *REGISTRATION.lock() = Some(registration);
    Ok(())
}

/// Removes the filters, the callouts and the session (unload, PASSIVE_LEVEL), before the
/// device object they were registered with is deleted and before [`stop`]. Returns once no
/// classify can reach ferry any more.
pub fn stop_callouts() {
    let registration = REGISTRATION.lock().take();
    if let Some(registration) = registration {
        registration.unregister::<NtKernel>(PLATFORM.wfp());
    }
}
