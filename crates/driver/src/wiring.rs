//! The driver's global state and its one [`FerryHost`]: the platform over the direct imports
//! of `vmbkmclr.sys` and `fwpkclnt.sys`, the port table, and the vSwitch state, all `static`
//! (non-paged: ferry has no pageable sections) and built at compile time, so no callback can
//! ever find them uninitialised.

use ferry_core::lock::Mutex;
use ferry_core::port::PortTable;
use ferry_core::status::NtStatus;
use ferry_platform_wdk::ffi::base::GUID;
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

/// Tears down in the order that leaves no callback pointing at freed code (unload,
/// PASSIVE_LEVEL): (1) the control device would go first, so no new offer arrives (not built);
/// (2) every offered channel is closed — `VmbChannelDisable` waits for its callbacks (none can
/// exist yet without the control device); (3) the vSwitch subscription ends, pending saves are
/// completed `STATUS_CANCELLED` and every runtime-state blob is freed; (4) callouts and filters
/// would be unregistered (not built). Only then does unload return and the image go away.
pub fn stop() {
    let subscription = SUBSCRIPTION.lock().take();
    if let Some(subscription) = subscription {
        VSWITCH.unsubscribe(subscription);
    }
}
