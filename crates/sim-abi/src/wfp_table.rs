//! The simulated host's WFP vSwitch API as C: `FwpsvSwitchEventsSubscribe0`,
//! `FwpsvSwitchEventsUnsubscribe0` and `FwpsvSwitchNotifyComplete0` with `fwpkclnt.sys`'s
//! signatures ([`table`]), and [`CCallout`], which delivers the simulated switch's events
//! (platform-mock's [`VSwitch`](ferry_platform_mock::vswitch::VSwitch)) through the dispatch
//! table the driver subscribed, with its `notifyContext`.
//!
//! A runtime-state save passes WFP-owned out-parameters (kept on the heap, as in WFP's
//! request context, until the save is finished); a save answered `STATUS_PENDING` is finished
//! by the driver's `FwpsvSwitchNotifyComplete0`, after which the blob is read from those
//! out-parameters (the simulated switch copies it, `wfp-vswitch.md` §4.3). Contracts: flags 0
//! and reserved NULL; each pended save completed once, never with `STATUS_PENDING`; a
//! successful save returns a non-NULL blob; unsubscribe only of a live subscription.
//!
//! Classify is not a C path here (the simulated host has no filter engine; the callouts'
//! C path is tested against [`crate::fake_engine`]): [`CCallout::classify`] hands the frame
//! to [`SwitchSide::classify`], which each user of this crate supplies.

use std::ffi::c_void;

use ferry_core::port::{FrameInfo, PortIdentity, SwitchPortId, Verdict};
use ferry_core::status::NtStatus;
use ferry_platform_mock::vswitch::{PortSaveCompletion, SaveReturn, VSwitchCallout};
use ferry_platform_wdk::ffi::base::GUID;
use ferry_platform_wdk::ffi::ndis::{NDIS_SWITCH_PARAMETERS, NDIS_SWITCH_PORT_PARAMETERS};
use ferry_platform_wdk::ffi::wfp::{FWPS_VSWITCH_EVENT_DISPATCH_TABLE0, FWPS_VSWITCH_EVENT_TYPE};
use ferry_platform_wdk::tables::WfpTable;

use crate::sim_host::{PendedSave, SimHost, Subscribed, Tag, decode, encode, host_of};

fn check_flags(host: &SimHost, name: &str, flags: u32, reserved: *mut c_void) {
    if flags != 0 || !reserved.is_null() {
        host.abi.violation(format!(
            "{name}: flags {flags:#x}, reserved {reserved:p} (0 and NULL)"
        ));
    }
}

unsafe extern "system" fn subscribe<const N: usize>(
    provider: *const GUID,
    context: *mut c_void,
    flags: u32,
    reserved: *mut c_void,
    table: *const FWPS_VSWITCH_EVENT_DISPATCH_TABLE0,
    id_out: *mut u32,
) -> NtStatus {
    let host = host_of::<N>();
    check_flags(&host, "FwpsvSwitchEventsSubscribe0", flags, reserved);
    if provider.is_null() || table.is_null() || id_out.is_null() {
        host.abi.violation(
            "FwpsvSwitchEventsSubscribe0 without a provider, a dispatch table or an id".into(),
        );
        return NtStatus::INVALID_PARAMETER;
    }
    if host.abi.subscription.borrow().is_some() {
        host.abi.violation(
            "FwpsvSwitchEventsSubscribe0 twice (the simulated switch has one subscriber)".into(),
        );
        return NtStatus::INVALID_DEVICE_STATE;
    }
    let id = u32::try_from(host.abi.new_id()).unwrap_or(u32::MAX);
    // SAFETY: non-NULL pointers from the driver, readable for the call; the table is copied
    // (the driver keeps its own in a `static` regardless).
    let provider = unsafe { provider.read() };
    // SAFETY: as above.
    let table = unsafe { table.read() };
    if provider
        == (GUID {
            Data1: 0,
            Data2: 0,
            Data3: 0,
            Data4: [0; 8],
        })
    {
        host.abi.violation(
            "FwpsvSwitchEventsSubscribe0 with a zero provider GUID (restores are routed by it)"
                .into(),
        );
    }
    *host.abi.subscription.borrow_mut() = Some(Subscribed { id, context, table });
    // SAFETY: checked non-NULL; the driver's out-parameter.
    unsafe { id_out.write(id) };
    NtStatus::SUCCESS
}

unsafe extern "system" fn unsubscribe<const N: usize>(id: u32, flags: u32, reserved: *mut c_void) {
    let host = host_of::<N>();
    check_flags(&host, "FwpsvSwitchEventsUnsubscribe0", flags, reserved);
    let mut subscription = host.abi.subscription.borrow_mut();
    if subscription.as_ref().is_some_and(|s| s.id == id) {
        *subscription = None;
    } else {
        drop(subscription);
        host.abi.violation(format!(
            "FwpsvSwitchEventsUnsubscribe0({id}): no such subscription"
        ));
    }
}

unsafe extern "system" fn notify_complete<const N: usize>(
    context: *mut c_void,
    status: NtStatus,
    flags: u32,
    reserved: *mut c_void,
) {
    let host = host_of::<N>();
    check_flags(&host, "FwpsvSwitchNotifyComplete0", flags, reserved);
    let pended =
        decode(N, Tag::Save, context).and_then(|oid| host.abi.saves.borrow_mut().remove(&oid));
    let Some(PendedSave { completion, out }) = pended else {
        host.abi.violation(format!(
            "FwpsvSwitchNotifyComplete0({context:p}, {status}): no save pending under that context (completed twice?)"
        ));
        return;
    };
    host.abi.count(|c| c.notify_complete += 1);
    if status.is_success() {
        match read_blob(out.0, out.1) {
            Some(blob) => host
                .services
                .vswitch
                .write_runtime_state(completion.oid(), blob),
            None => host.abi.violation(format!(
                "save {} completed with success but no blob in the out-parameters",
                completion.oid()
            )),
        }
    }
    host.services.vswitch.notify_complete(completion, status);
}

/// The blob a save handed over (driver memory), copied; `None` for NULL or empty.
fn read_blob(state: *mut c_void, length: usize) -> Option<Vec<u8>> {
    if state.is_null() || length == 0 {
        return None;
    }
    // SAFETY: the driver's published blob of `length` bytes, which it keeps until the port's
    // next save, delete or unload (platform-wdk's `host::runtime_state`).
    Some(unsafe { std::slice::from_raw_parts(state.cast::<u8>(), length) }.to_vec())
}

/// Host `N`'s three functions (the simulated host has no filter engine).
pub fn table<const N: usize>() -> WfpTable {
    WfpTable::events_only(subscribe::<N>, unsubscribe::<N>, notify_complete::<N>)
}

/// The driver on one simulated host, as the simulated switch's [`CCallout`] needs it.
pub trait SwitchSide {
    /// The host's index (which installed [`SimHost`] the switch belongs to).
    const INDEX: usize;
    /// Classifies one frame the switch carries on `port` (not through C: see the module
    /// page); `Verdict::Permit` when the driver has no opinion.
    fn classify(port: SwitchPortId, frame: &FrameInfo) -> Verdict;
}

/// The simulated switch's events on host `H`, delivered through the subscribed dispatch table.
pub struct CCallout<H>(std::marker::PhantomData<H>);

impl<H> CCallout<H> {
    /// The callout side of host `H`.
    pub const fn new() -> Self {
        Self(std::marker::PhantomData)
    }
}

impl<H> Default for CCallout<H> {
    fn default() -> Self {
        Self::new()
    }
}

/// A switch in its initial state: never read by ferry (`wfp-vswitch.md` §4).
fn switch_parameters() -> Box<NDIS_SWITCH_PARAMETERS> {
    // SAFETY: integers and arrays of integers: all-zero is valid.
    Box::new(unsafe { std::mem::zeroed() })
}

impl<H: SwitchSide> CCallout<H> {
    fn subscribed(host: &SimHost) -> Option<(*mut c_void, FWPS_VSWITCH_EVENT_DISPATCH_TABLE0)> {
        host.abi
            .subscription
            .borrow()
            .as_ref()
            .map(|s| (s.context, s.table))
    }

    fn port_event(port: SwitchPortId, event: FWPS_VSWITCH_EVENT_TYPE) -> NtStatus {
        let host = host_of_index(H::INDEX);
        let Some((context, table)) = Self::subscribed(&host) else {
            return NtStatus::SUCCESS;
        };
        let Some(callback) = table.vSwitchPortEventNotifyFn else {
            return NtStatus::SUCCESS;
        };
        host.abi.count(|c| c.port_events += 1);
        // SAFETY: integers and arrays of integers: all-zero is valid.
        let mut parameters: Box<NDIS_SWITCH_PORT_PARAMETERS> =
            Box::new(unsafe { std::mem::zeroed() });
        parameters.PortId = port.0;
        let switch = switch_parameters();
        // SAFETY: the driver's callback with its notifyContext and parameters readable for
        // the call.
        unsafe {
            callback(
                context,
                std::ptr::null_mut(),
                event,
                &raw const *switch,
                &raw const *parameters,
            )
        }
    }
}

/// Host `index` of this thread; a missing host is a harness bug (the process aborts).
pub fn host_of_index(index: usize) -> std::rc::Rc<SimHost> {
    crate::sim_host::host(index).unwrap_or_else(|| {
        eprintln!("simulated host {index} is not installed on this thread");
        std::process::abort()
    })
}

impl<H: SwitchSide> VSwitchCallout for CCallout<H> {
    fn port_create(&self, port: SwitchPortId, _identity: PortIdentity) -> NtStatus {
        Self::port_event(port, FWPS_VSWITCH_EVENT_TYPE::PORT_CREATE)
    }

    fn port_delete(&self, port: SwitchPortId) {
        let status = Self::port_event(port, FWPS_VSWITCH_EVENT_TYPE::PORT_DELETE);
        if !status.is_success() {
            host_of_index(H::INDEX)
                .abi
                .violation(format!("PORT_DELETE of port {} answered {status}", port.0));
        }
    }

    fn classify(&self, port: SwitchPortId, frame: &FrameInfo) -> Verdict {
        H::classify(port, frame)
    }

    fn runtime_state_save(&self, port: SwitchPortId, completion: PortSaveCompletion) -> SaveReturn {
        let host = host_of_index(H::INDEX);
        let Some((context, table)) = Self::subscribed(&host) else {
            return SaveReturn::Failed(NtStatus::NOT_FOUND);
        };
        let Some(callback) = table.vSwitchRuntimeStateSaveNotifyFn else {
            return SaveReturn::Failed(NtStatus::NOT_SUPPORTED);
        };
        let oid = completion.oid();
        let mut out: Box<(*mut c_void, usize)> = Box::new((std::ptr::null_mut(), 0));
        let switch = switch_parameters();
        let state_out = &raw mut out.0;
        let length_out = &raw mut out.1;
        // SAFETY: the driver's callback with its notifyContext, a completion context that is
        // only ever handed back, and two out-parameters that stay valid until the save is
        // finished (`out` moves into the pended record below, its heap address unchanged).
        let status = unsafe {
            callback(
                context,
                encode(H::INDEX, Tag::Save, oid),
                FWPS_VSWITCH_EVENT_TYPE::RUNTIME_STATE_SAVE,
                &raw const *switch,
                port.0,
                state_out,
                length_out,
            )
        };
        if status == NtStatus::PENDING {
            host.abi.count(|c| c.saves_pended += 1);
            host.abi
                .saves
                .borrow_mut()
                .insert(oid, PendedSave { completion, out });
            return SaveReturn::Pending;
        }
        if !status.is_success() {
            return SaveReturn::Failed(status);
        }
        host.abi.count(|c| c.saves_returned += 1);
        match read_blob(out.0, out.1) {
            Some(blob) => SaveReturn::Saved(blob),
            None => {
                host.abi.violation(format!(
                    "save of port {} returned success without a blob",
                    port.0
                ));
                SaveReturn::Failed(NtStatus::DATA_ERROR)
            }
        }
    }

    fn runtime_state_restore(&self, port: SwitchPortId, blob: &[u8]) -> NtStatus {
        let host = host_of_index(H::INDEX);
        let Some((context, table)) = Self::subscribed(&host) else {
            return NtStatus::NOT_FOUND;
        };
        let Some(callback) = table.vSwitchRuntimeStateRestoreNotifyFn else {
            return NtStatus::NOT_SUPPORTED;
        };
        host.abi.count(|c| c.restores += 1);
        let switch = switch_parameters();
        let mut copy = blob.to_vec();
        // SAFETY: the driver's callback with its notifyContext and an exact-size buffer
        // readable for the call.
        let status = unsafe {
            callback(
                context,
                std::ptr::null_mut(),
                FWPS_VSWITCH_EVENT_TYPE::RUNTIME_STATE_RESTORE,
                &raw const *switch,
                port.0,
                copy.as_mut_ptr().cast(),
                copy.len(),
            )
        };
        // WFP's buffer is gone after the call: a kept pointer now reads garbage.
        copy.fill(0xA5);
        status
    }
}
