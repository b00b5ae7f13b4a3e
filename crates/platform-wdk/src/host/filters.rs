//! Registering ferry's callouts with the filter engine at load, and removing them at unload
//! (`PASSIVE_LEVEL`, through [`WfpTable`]).
//!
//! **Session: dynamic** (`FWPM_SESSION_FLAG_DYNAMIC`). Every management object ferry adds
//! (provider, sublayer, callouts, filters) belongs to the session and is deleted by the engine
//! when the session closes — also when ferry never gets to close it cleanly. Nothing outlives
//! the driver in the engine's store, so no filter can ever name a callout whose code is gone,
//! and each load starts from nothing. The cost: the filters exist only while ferry runs, which
//! is all an observing callout needs.
//!
//! **Registration**, in this order (each failure undoes everything before it and names its
//! [`RegistrationStep`]):
//!
//! 1. `FwpmEngineOpen0` (dynamic session).
//! 2. `FwpsCalloutRegister2` for the ingress, then the egress callout, with the driver's device
//!    object: from here classify may be called (but no filter reaches it yet).
//! 3. `FwpmTransactionBegin0`; `FwpmProviderAdd0` (ferry's provider GUID, the one the vSwitch
//!    subscription uses: WFP routes runtime-state restores by it); `FwpmSubLayerAdd0` (ferry's
//!    own sublayer, so another vendor's terminating filter in a shared sublayer cannot keep
//!    ferry's filter from being evaluated); `FwpmCalloutAdd0` for each layer;
//!    `FwpmFilterAdd0` for each layer (no conditions: every frame; action
//!    `FWP_ACTION_CALLOUT_INSPECTION` with the callout's key); `FwpmTransactionCommit0`.
//!    A failure inside the transaction aborts it, which removes everything added in it.
//!
//! **Teardown** ([`Registration::unregister`]), the order that leaves no callback pointing at
//! freed code: delete both filters (no new classify reaches ferry), delete both management
//! callouts, unregister both run-time callouts, close the session (which removes the sublayer
//! and provider). `FwpsCalloutUnregisterById0` answers `STATUS_DEVICE_BUSY` while flows carry
//! a context of the callout; ferry associates none, so it is not expected — if it happens
//! anyway the callout is still registered and the image must not go away, so ferry waits a
//! moment ([`KernelServices::pause`]) and asks again until the engine lets go, logging the
//! first refusal.

use core::ffi::c_void;
use core::ptr;

use ferry_core::port::Direction;
use ferry_core::status::NtStatus;

use super::callout::{CalloutHost, classify_egress, classify_ingress, notify};
use crate::ffi::base::{DEVICE_OBJECT, GUID, HANDLE};
use crate::ffi::fwpm::{
    FWPM_ACTION0, FWPM_CALLOUT0, FWPM_DISPLAY_DATA0, FWPM_FILTER0, FWPM_FILTER0_CONTEXT,
    FWPM_LAYER_EGRESS_VSWITCH_ETHERNET, FWPM_LAYER_INGRESS_VSWITCH_ETHERNET, FWPM_PROVIDER0,
    FWPM_SESSION_FLAG_DYNAMIC, FWPM_SESSION0, FWPM_SUBLAYER0, RPC_C_AUTHN_WINNT,
};
use crate::ffi::fwps::{
    FWP_ACTION_CALLOUT_INSPECTION, FWP_BYTE_BLOB, FWP_VALUE0, FWPS_CALLOUT_CLASSIFY_FN2,
    FWPS_CALLOUT2, STATUS_DEVICE_BUSY,
};
use crate::kernel::log::Level;
use crate::kernel::services::KernelServices;
use crate::tables::WfpTable;

/// The GUIDs ferry's engine objects are added under (the driver's constants; tests use their
/// own).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CalloutKeys {
    /// The provider: the same GUID the vSwitch subscription uses.
    pub provider: GUID,
    /// ferry's sublayer.
    pub sublayer: GUID,
    /// The callout at `FWPM_LAYER_INGRESS_VSWITCH_ETHERNET`.
    pub ingress_callout: GUID,
    /// The callout at `FWPM_LAYER_EGRESS_VSWITCH_ETHERNET`.
    pub egress_callout: GUID,
    /// The filter at the ingress layer.
    pub ingress_filter: GUID,
    /// The filter at the egress layer.
    pub egress_filter: GUID,
}

/// The call of [`register`] that failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegistrationStep {
    /// `FwpmEngineOpen0`.
    EngineOpen,
    /// `FwpsCalloutRegister2` of one direction's callout.
    CalloutRegister(Direction),
    /// `FwpmTransactionBegin0`.
    TransactionBegin,
    /// `FwpmProviderAdd0`.
    ProviderAdd,
    /// `FwpmSubLayerAdd0`.
    SubLayerAdd,
    /// `FwpmCalloutAdd0` of one direction's callout.
    CalloutAdd(Direction),
    /// `FwpmFilterAdd0` of one direction's filter.
    FilterAdd(Direction),
    /// `FwpmTransactionCommit0`.
    TransactionCommit,
}

/// [`register`] failed at `step` with the engine's `status`; everything before it was undone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RegistrationError {
    /// The failing call.
    pub step: RegistrationStep,
    /// What it returned.
    pub status: NtStatus,
}

impl core::fmt::Display for RegistrationError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{:?} failed: {}", self.step, self.status)
    }
}

/// The engine's ids of one direction's objects.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DirectionIds {
    /// `FwpsCalloutRegister2`'s run-time id.
    pub runtime_callout: u32,
    /// `FwpmCalloutAdd0`'s id.
    pub callout: u32,
    /// `FwpmFilterAdd0`'s id.
    pub filter: u64,
}

/// ferry's live registration: the open session and the ids to remove at unload.
#[derive(Debug, PartialEq, Eq)]
#[must_use = "dropping it leaves the callouts registered: call `unregister` at unload"]
pub struct Registration {
    engine: HANDLE,
    ingress: DirectionIds,
    egress: DirectionIds,
}

// SAFETY: the engine handle is an opaque value the engine accepts from any thread at
// PASSIVE_LEVEL; the driver keeps the registration in a lock between load and unload.
unsafe impl Send for Registration {}

impl Registration {
    /// The ingress objects' ids.
    #[must_use]
    pub const fn ingress(&self) -> DirectionIds {
        self.ingress
    }

    /// The egress objects' ids.
    #[must_use]
    pub const fn egress(&self) -> DirectionIds {
        self.egress
    }

    /// Removes everything [`register`] added, in the order of the module docs
    /// (`PASSIVE_LEVEL`, at unload). Returns only once neither callout is registered.
    pub fn unregister<K: KernelServices>(self, wfp: &WfpTable) {
        for (direction, ids) in [
            (Direction::Ingress, self.ingress),
            (Direction::Egress, self.egress),
        ] {
            // SAFETY: the open session and a filter it added.
            let status = unsafe { (wfp.filter_delete_by_id)(self.engine, ids.filter) };
            report::<K>("FwpmFilterDeleteById0", direction, status);
        }
        for (direction, ids) in [
            (Direction::Ingress, self.ingress),
            (Direction::Egress, self.egress),
        ] {
            // SAFETY: the open session and a callout it added; no filter references it now.
            let status = unsafe { (wfp.callout_delete_by_id)(self.engine, ids.callout) };
            report::<K>("FwpmCalloutDeleteById0", direction, status);
        }
        unregister_runtime::<K>(wfp, self.ingress.runtime_callout);
        unregister_runtime::<K>(wfp, self.egress.runtime_callout);
        close_engine::<K>(wfp, self.engine);
    }
}

fn report<K: KernelServices>(call: &str, direction: Direction, status: NtStatus) {
    if !status.is_success() {
        K::log(
            Level::Warning,
            format_args!("{call} ({direction:?}) at unload: {status}"),
        );
    }
}

/// `FwpsCalloutUnregisterById0`, asked again after a pause for as long as it answers
/// `STATUS_DEVICE_BUSY` (see the module docs).
fn unregister_runtime<K: KernelServices>(wfp: &WfpTable, id: u32) {
    let mut refused = false;
    loop {
        // SAFETY: a run-time id FwpsCalloutRegister2 returned and that is unregistered once.
        let status = unsafe { (wfp.callout_unregister_by_id)(id) };
        if status != STATUS_DEVICE_BUSY {
            if !status.is_success() {
                K::log(
                    Level::Warning,
                    format_args!("FwpsCalloutUnregisterById0({id}): {status}"),
                );
            }
            return;
        }
        if !refused {
            refused = true;
            K::log(
                Level::Warning,
                format_args!("FwpsCalloutUnregisterById0({id}) busy; waiting for the engine"),
            );
        }
        K::pause();
    }
}

fn close_engine<K: KernelServices>(wfp: &WfpTable, engine: HANDLE) {
    // SAFETY: the session FwpmEngineOpen0 opened, closed once.
    let status = unsafe { (wfp.engine_close)(engine) };
    if !status.is_success() {
        K::log(Level::Warning, format_args!("FwpmEngineClose0: {status}"));
    }
}

/// A NUL-terminated UTF-16 copy of an ASCII literal, for the engine's display names.
#[allow(
    clippy::indexing_slicing,
    reason = "const fn (no `get` in const); the loop condition bounds `i` by both lengths"
)]
const fn wide<const N: usize>(text: &str) -> [u16; N] {
    let bytes = text.as_bytes();
    let mut out = [0u16; N];
    let mut i = 0;
    // Stops one short of N, so the last unit stays the terminating NUL.
    while i < bytes.len() && i.saturating_add(1) < N {
        out[i] = bytes[i] as u16;
        i = i.saturating_add(1);
    }
    out
}

static PROVIDER_NAME: [u16; 8] = wide("ferry");
static SUBLAYER_NAME: [u16; 24] = wide("ferry vSwitch sublayer");
static INGRESS_CALLOUT_NAME: [u16; 32] = wide("ferry vSwitch ingress callout");
static EGRESS_CALLOUT_NAME: [u16; 32] = wide("ferry vSwitch egress callout");
static INGRESS_FILTER_NAME: [u16; 32] = wide("ferry vSwitch ingress filter");
static EGRESS_FILTER_NAME: [u16; 32] = wide("ferry vSwitch egress filter");

fn display(name: &'static [u16]) -> FWPM_DISPLAY_DATA0 {
    FWPM_DISPLAY_DATA0 {
        // The engine copies the name and never writes through the pointer.
        name: name.as_ptr().cast_mut(),
        description: ptr::null_mut(),
    }
}

const NO_DATA: FWP_BYTE_BLOB = FWP_BYTE_BLOB {
    size: 0,
    data: ptr::null_mut(),
};

/// What one direction registers.
struct Side {
    direction: Direction,
    layer: GUID,
    callout_key: GUID,
    filter_key: GUID,
    classify: FWPS_CALLOUT_CLASSIFY_FN2,
    callout_name: &'static [u16],
    filter_name: &'static [u16],
}

fn sides<H: CalloutHost>(keys: &CalloutKeys) -> [Side; 2] {
    [
        Side {
            direction: Direction::Ingress,
            layer: FWPM_LAYER_INGRESS_VSWITCH_ETHERNET,
            callout_key: keys.ingress_callout,
            filter_key: keys.ingress_filter,
            classify: Some(classify_ingress::<H>),
            callout_name: &INGRESS_CALLOUT_NAME,
            filter_name: &INGRESS_FILTER_NAME,
        },
        Side {
            direction: Direction::Egress,
            layer: FWPM_LAYER_EGRESS_VSWITCH_ETHERNET,
            callout_key: keys.egress_callout,
            filter_key: keys.egress_filter,
            classify: Some(classify_egress::<H>),
            callout_name: &EGRESS_CALLOUT_NAME,
            filter_name: &EGRESS_FILTER_NAME,
        },
    ]
}

fn check(status: NtStatus, step: RegistrationStep) -> Result<(), RegistrationError> {
    if status.is_success() {
        Ok(())
    } else {
        Err(RegistrationError { step, status })
    }
}

/// Opens ferry's dynamic session, registers the two callouts and adds the provider, sublayer,
/// callouts and filters that reach them (`PASSIVE_LEVEL`, at load; see the module docs).
/// `device` is the driver's device object, which `FwpsCalloutRegister2` requires.
///
/// # Errors
///
/// [`RegistrationError`] naming the failing call; nothing is left registered, added or open.
pub fn register<H: CalloutHost>(
    wfp: &WfpTable,
    device: *mut DEVICE_OBJECT,
    keys: &CalloutKeys,
) -> Result<Registration, RegistrationError> {
    // SAFETY: FWPM_SESSION0 is integers, a GUID and pointers: all-zero is the empty session.
    let mut session: FWPM_SESSION0 = unsafe { core::mem::zeroed() };
    session.flags = FWPM_SESSION_FLAG_DYNAMIC;
    let mut engine: HANDLE = ptr::null_mut();
    // SAFETY: local server (NULL), no identity, a valid session and out-pointer.
    let status = unsafe {
        (wfp.engine_open)(
            ptr::null(),
            RPC_C_AUTHN_WINNT,
            ptr::null_mut(),
            &raw const session,
            &raw mut engine,
        )
    };
    check(status, RegistrationStep::EngineOpen)?;

    let sides = sides::<H>(keys);
    let mut runtime = [0u32; 2];
    for (index, side) in sides.iter().enumerate() {
        let callout = FWPS_CALLOUT2 {
            calloutKey: side.callout_key,
            flags: 0,
            classifyFn: side.classify,
            notifyFn: Some(notify),
            flowDeleteFn: None,
        };
        let mut id = 0u32;
        // SAFETY: the driver's device object; a valid callout description (the engine copies
        // it) whose functions are this image's; a valid out-pointer.
        let status = unsafe {
            (wfp.callout_register)(device.cast::<c_void>(), &raw const callout, &raw mut id)
        };
        if let Err(error) = check(status, RegistrationStep::CalloutRegister(side.direction)) {
            undo_runtime::<H::Kernel>(wfp, engine, runtime.get(..index).unwrap_or(&[]));
            return Err(error);
        }
        if let Some(slot) = runtime.get_mut(index) {
            *slot = id;
        }
    }

    match add_objects(wfp, engine, keys, &sides) {
        Ok([ingress, egress]) => {
            let [ingress_runtime, egress_runtime] = runtime;
            Ok(Registration {
                engine,
                ingress: DirectionIds {
                    runtime_callout: ingress_runtime,
                    callout: ingress.0,
                    filter: ingress.1,
                },
                egress: DirectionIds {
                    runtime_callout: egress_runtime,
                    callout: egress.0,
                    filter: egress.1,
                },
            })
        }
        Err(error) => {
            undo_runtime::<H::Kernel>(wfp, engine, &runtime);
            Err(error)
        }
    }
}

/// Unregisters the run-time callouts registered so far and closes the session.
fn undo_runtime<K: KernelServices>(wfp: &WfpTable, engine: HANDLE, registered: &[u32]) {
    for &id in registered.iter().rev() {
        unregister_runtime::<K>(wfp, id);
    }
    close_engine::<K>(wfp, engine);
}

/// The transaction of step 3: the management objects, each direction's `(callout id, filter
/// id)`. Aborted on any failure.
fn add_objects(
    wfp: &WfpTable,
    engine: HANDLE,
    keys: &CalloutKeys,
    sides: &[Side; 2],
) -> Result<[(u32, u64); 2], RegistrationError> {
    // SAFETY: the open session; flags 0 is a read-write transaction.
    let status = unsafe { (wfp.transaction_begin)(engine, 0) };
    check(status, RegistrationStep::TransactionBegin)?;
    let result = add_in_transaction(wfp, engine, keys, sides).and_then(|ids| {
        // SAFETY: the session's open transaction.
        let status = unsafe { (wfp.transaction_commit)(engine) };
        check(status, RegistrationStep::TransactionCommit).map(|()| ids)
    });
    if result.is_err() {
        // SAFETY: the session's transaction; after a failed commit the engine may already
        // have rolled it back, in which case the abort's error is meaningless and ignored.
        let _ = unsafe { (wfp.transaction_abort)(engine) };
    }
    result
}

fn add_in_transaction(
    wfp: &WfpTable,
    engine: HANDLE,
    keys: &CalloutKeys,
    sides: &[Side; 2],
) -> Result<[(u32, u64); 2], RegistrationError> {
    let mut provider_key = keys.provider;
    let provider = FWPM_PROVIDER0 {
        providerKey: keys.provider,
        displayData: display(&PROVIDER_NAME),
        flags: 0,
        providerData: NO_DATA,
        serviceName: ptr::null_mut(),
    };
    // SAFETY: the session's transaction; a valid provider the engine copies; no descriptor.
    let status = unsafe { (wfp.provider_add)(engine, &raw const provider, ptr::null_mut()) };
    check(status, RegistrationStep::ProviderAdd)?;

    let sublayer = FWPM_SUBLAYER0 {
        subLayerKey: keys.sublayer,
        displayData: display(&SUBLAYER_NAME),
        flags: 0,
        providerKey: &raw mut provider_key,
        providerData: NO_DATA,
        weight: 0,
    };
    // SAFETY: as above.
    let status = unsafe { (wfp.sublayer_add)(engine, &raw const sublayer, ptr::null_mut()) };
    check(status, RegistrationStep::SubLayerAdd)?;

    let mut ids = [(0u32, 0u64); 2];
    for (side, slot) in sides.iter().zip(ids.iter_mut()) {
        let callout = FWPM_CALLOUT0 {
            calloutKey: side.callout_key,
            displayData: display(side.callout_name),
            flags: 0,
            providerKey: &raw mut provider_key,
            providerData: NO_DATA,
            applicableLayer: side.layer,
            calloutId: 0,
        };
        // SAFETY: as above; a valid out-pointer.
        let status = unsafe {
            (wfp.callout_add)(engine, &raw const callout, ptr::null_mut(), &raw mut slot.0)
        };
        check(status, RegistrationStep::CalloutAdd(side.direction))?;
    }
    for (side, slot) in sides.iter().zip(ids.iter_mut()) {
        let filter = FWPM_FILTER0 {
            filterKey: side.filter_key,
            displayData: display(side.filter_name),
            flags: 0,
            providerKey: &raw mut provider_key,
            providerData: NO_DATA,
            layerKey: side.layer,
            subLayerKey: keys.sublayer,
            weight: FWP_VALUE0::EMPTY,
            numFilterConditions: 0,
            filterCondition: ptr::null_mut(),
            action: FWPM_ACTION0 {
                r#type: FWP_ACTION_CALLOUT_INSPECTION,
                calloutKey: side.callout_key,
            },
            context: FWPM_FILTER0_CONTEXT { rawContext: 0 },
            reserved: ptr::null_mut(),
            filterId: 0,
            effectiveWeight: FWP_VALUE0::EMPTY,
        };
        // SAFETY: as above; a valid out-pointer.
        let status = unsafe {
            (wfp.filter_add)(engine, &raw const filter, ptr::null_mut(), &raw mut slot.1)
        };
        check(status, RegistrationStep::FilterAdd(side.direction))?;
    }
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::wide;

    #[test]
    fn display_names_are_nul_terminated_even_when_cut() {
        let name: [u16; 6] = wide("ferry");
        assert_eq!(name, [102, 101, 114, 114, 121, 0]);
        let cut: [u16; 4] = wide("ferry");
        assert_eq!(cut, [102, 101, 114, 0]);
    }
}
