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
use ferry_platform_wdk::ffi::base::GUID;
use ferry_platform_wdk::ffi::io::imports::ZwClose;
use ferry_platform_wdk::host::channel::packet_completion;
use ferry_platform_wdk::host::vswitch::{Subscription, VSwitch};
use ferry_platform_wdk::host::{FerryHost, WdkPortTable};
use ferry_platform_wdk::kernel::services::NtKernel;
use ferry_platform_wdk::kernel::spin_lock::KernelSpinLock;
use ferry_platform_wdk::platform::WdkPlatform;
use ferry_platform_wdk::tables::{KmclTable, WfpTable};

/// ferry's WFP provider GUID `{f3a7e2c1-6b0d-4c5e-9a41-2f8e5d7c9b30}`: the subscription (and,
/// once built, the callouts) use it, and WFP routes runtime-state restores by it.
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
/// failed DriverEntry, PASSIVE_LEVEL): (1) the control device's symbolic link goes first, so
/// nothing new can open it (unload runs only once every handle is closed, so no request is in
/// flight); (2) every channel in the registry is closed — `VmbChannelDisable` waits for its
/// callbacks, then `VmbChannelCleanup`, then its VMBus kernel handle is closed — and then the
/// device object, which parented them, is deleted; (3) the vSwitch subscription ends, pending
/// saves are completed `STATUS_CANCELLED` and every runtime-state blob is freed; (4) callouts
/// and filters would be unregistered (not built). Only then does unload return and the image
/// go away.
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
