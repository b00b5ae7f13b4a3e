//! The vSwitch side: [`VSwitch`] (port table, pending saves, published runtime-state blobs)
//! and the `extern "system"` callbacks of its `FWPS_VSWITCH_EVENT_DISPATCH_TABLE0`.
//!
//! WFP passes the `notifyContext` given at subscription to every callback: it is the address
//! of the driver's `static` [`VSwitch`], so the callbacks need no global lookup. All of them
//! may run at `DISPATCH_LEVEL`: they take only spin locks, allocate only non-paged memory and
//! never wait.
//!
//! `NDIS_SWITCH_PARAMETERS` (the `vSwitch` argument) is never read: during a save it may show
//! the switch's initial state (`wfp-vswitch.md` §4). Only the port id (an argument, or
//! `NDIS_SWITCH_PORT_PARAMETERS::PortId` for port events) is used.
//!
//! **Saves.** By default a save is answered at once: the port's blob is encoded into a
//! driver-owned buffer ([`super::runtime_state`] explains who owns it) and returned through
//! `*runtimeState` / `*runtimeStateLength`. With [`VSwitch::set_pend_saves`] the callback
//! returns `STATUS_PENDING` and the save is finished later by [`VSwitch::finish_save`], which
//! writes the two out-parameters and then calls `FwpsvSwitchNotifyComplete0`. Whether WFP
//! still reads those out-parameters at that point is **UNCONFIRMED** (§4.3): this path is
//! exercised by the host ABI tests only, and the driver leaves it off.
//!
//! **Restores** read WFP's buffer during the call only (core validates the whole blob, then
//! copies the values into the port) and key the state by the port id WFP passes — the
//! destination's, not the one the blob was saved from.

use core::ffi::c_void;
use core::ptr;
use core::sync::atomic::{AtomicBool, Ordering};

use ferry_core::platform::{Platform, Ticks};
use ferry_core::port::pending::PendingSaveError;
use ferry_core::port::{PendingSaves, PortConfig, PortError, SAVE_CANCELLED_STATUS, SwitchPortId};
use ferry_core::status::NtStatus;

use super::runtime_state::{RuntimeStates, StateBuffer};
use super::{PENDING_SAVES, WdkPortTable};
use crate::ffi::base::{BOOLEAN, GUID};
use crate::ffi::ndis::{
    NDIS_SWITCH_NIC_ARRAY, NDIS_SWITCH_NIC_PARAMETERS, NDIS_SWITCH_PARAMETERS,
    NDIS_SWITCH_PORT_ARRAY, NDIS_SWITCH_PORT_ID, NDIS_SWITCH_PORT_PARAMETERS,
};
use crate::ffi::wfp::{
    FWPS_VSWITCH_EVENT_DISPATCH_TABLE0, FWPS_VSWITCH_EVENT_TYPE, NDIS_ENUM_FILTERS,
    NDIS_SWITCH_PORT_PROPERTY_DELETE_PARAMETERS, NDIS_SWITCH_PORT_PROPERTY_PARAMETERS,
};
use crate::kernel::log::Level;
use crate::kernel::services::KernelServices;
use crate::platform::{PortSaveCompletion, WdkPlatform};

/// The pending-save list of the real platform.
pub type WdkPendingSaves<K> =
    PendingSaves<<K as KernelServices>::Lock, PortSaveCompletion, PENDING_SAVES>;

/// ferry's vSwitch state: what the WFP callbacks reach through `notifyContext`.
pub struct VSwitch<K: KernelServices> {
    platform: &'static WdkPlatform<K>,
    ports: &'static WdkPortTable<K>,
    pending: WdkPendingSaves<K>,
    states: RuntimeStates<K>,
    pend_saves: AtomicBool,
    dispatch: FWPS_VSWITCH_EVENT_DISPATCH_TABLE0,
}

impl<K: KernelServices> core::fmt::Debug for VSwitch<K> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("VSwitch").finish_non_exhaustive()
    }
}

/// An active `FwpsvSwitchEventsSubscribe0` subscription; end it with
/// [`VSwitch::unsubscribe`].
#[derive(Debug, PartialEq, Eq)]
pub struct Subscription(u32);

impl<K: KernelServices> VSwitch<K> {
    /// The vSwitch state over the driver's platform and port table (a `const fn`, for a
    /// `static`).
    #[must_use]
    pub const fn new(platform: &'static WdkPlatform<K>, ports: &'static WdkPortTable<K>) -> Self {
        Self {
            platform,
            ports,
            pending: PendingSaves::new(),
            states: RuntimeStates::new(),
            pend_saves: AtomicBool::new(false),
            dispatch: FWPS_VSWITCH_EVENT_DISPATCH_TABLE0 {
                vSwitchLifetimeNotifyFn: Some(lifetime_event::<K>),
                vSwitchPortEventNotifyFn: Some(port_event::<K>),
                vSwitchInterfaceEventNotifyFn: Some(interface_event::<K>),
                vSwitchFilterEngineReorderNotifyRn: Some(reorder_event::<K>),
                vSwitchPolicyEventNotifyFn: Some(policy_event::<K>),
                vSwitchRuntimeStateSaveNotifyFn: Some(runtime_state_save::<K>),
                vSwitchRuntimeStateRestoreNotifyFn: Some(runtime_state_restore::<K>),
            },
        }
    }

    /// The dispatch table handed to WFP (its callbacks expect `notifyContext` = `self`).
    #[must_use]
    pub const fn dispatch_table(&self) -> &FWPS_VSWITCH_EVENT_DISPATCH_TABLE0 {
        &self.dispatch
    }

    /// The port table.
    #[must_use]
    pub const fn ports(&self) -> &WdkPortTable<K> {
        self.ports
    }

    /// Number of saves answered `STATUS_PENDING` and not finished yet.
    #[must_use]
    pub fn pending_saves(&self) -> usize {
        self.pending.len()
    }

    /// Number of runtime-state blobs the driver holds for WFP.
    #[must_use]
    pub fn published_states(&self) -> usize {
        self.states.len()
    }

    /// Whether saves answer `STATUS_PENDING` (off by default; see the module docs).
    pub fn set_pend_saves(&self, pend: bool) {
        self.pend_saves.store(pend, Ordering::Relaxed);
    }

    /// `FwpsvSwitchEventsSubscribe0` with this table and `self` as `notifyContext`
    /// (PASSIVE_LEVEL). `provider` must be the provider GUID ferry's callouts are registered
    /// under: restores are routed by it.
    ///
    /// # Errors
    ///
    /// WFP's status.
    pub fn subscribe(&'static self, provider: &GUID) -> Result<Subscription, NtStatus> {
        let mut id = 0u32;
        let context = ptr::from_ref(self).cast_mut().cast::<c_void>();
        // SAFETY: `self` and its dispatch table are `'static`, so every callback WFP makes
        // finds them; `id` is a valid out-pointer.
        let status = unsafe {
            (self.platform.wfp().events_subscribe)(
                provider,
                context,
                0,
                ptr::null_mut(),
                &raw const self.dispatch,
                &raw mut id,
            )
        };
        if status.is_success() {
            Ok(Subscription(id))
        } else {
            Err(status)
        }
    }

    /// Ends the subscription, then completes every save still pending with
    /// `STATUS_CANCELLED` and frees every published blob (PASSIVE_LEVEL, at unload). After
    /// `FwpsvSwitchEventsUnsubscribe0` returns WFP makes no more callbacks (assumed, as for
    /// every WFP unregistration; **UNCONFIRMED** for this function), so no blob can be read
    /// any more.
    pub fn unsubscribe(&self, subscription: Subscription) {
        // SAFETY: the id of a live subscription, consumed here.
        unsafe { (self.platform.wfp().events_unsubscribe)(subscription.0, 0, ptr::null_mut()) };
        // "Overdue by more than 0 ticks at the end of time" is every pending save (none can
        // have started at `u64::MAX`).
        while let Some(save) = self.pending.take_overdue(Ticks(u64::MAX), 0) {
            self.platform
                .complete_port_save(save.completion, SAVE_CANCELLED_STATUS);
        }
        self.states.release_all();
    }

    /// Encodes `port`'s blob now into a new driver-owned buffer and publishes it: the address
    /// and length for WFP.
    fn save_now(&self, port: SwitchPortId) -> Result<(*mut c_void, usize), NtStatus> {
        let now = self.platform.now();
        let mut len = self.ports.saved_len(port, now).map_err(|e| e.status())?;
        // Traffic between sizing and encoding may add flows: one retry with the new size.
        for _ in 0..2 {
            let mut buffer =
                StateBuffer::<K>::allocate(len).ok_or(NtStatus::INSUFFICIENT_RESOURCES)?;
            match self.ports.save_port(port, now, buffer.as_mut_slice()) {
                Ok(written) => {
                    let (block, len) = self
                        .states
                        .publish(port, buffer, written)
                        .ok_or(NtStatus::INSUFFICIENT_RESOURCES)?;
                    return Ok((block.as_ptr().cast(), len));
                }
                Err(PortError::BufferTooSmall { needed }) => len = needed,
                Err(error) => return Err(error.status()),
            }
        }
        Err(NtStatus::BUFFER_TOO_SMALL)
    }

    /// Finishes the pending save of `port` (at `<= DISPATCH_LEVEL`): encodes the blob, writes
    /// the save callback's out-parameters, then `FwpsvSwitchNotifyComplete0`. Returns whether
    /// a save of `port` was pending.
    pub fn finish_save(&self, port: SwitchPortId) -> bool {
        let Some(save) = self.pending.take(port) else {
            return false;
        };
        let status = match self.save_now(port) {
            Ok((block, len)) => {
                // SAFETY: WFP's out-parameters of the pended callback (non-NULL, checked when
                // it was pended); that they are still WFP's to read is the UNCONFIRMED part
                // (module docs).
                unsafe { save.completion.state_out.write(block) };
                // SAFETY: as above.
                unsafe { save.completion.length_out.write(len) };
                NtStatus::SUCCESS
            }
            Err(status) => status,
        };
        self.platform.complete_port_save(save.completion, status);
        true
    }

    fn port_created(&self, port: SwitchPortId) -> NtStatus {
        // The NIC's identity arrives with the interface events; ports start unlimited.
        match self.ports.create_port(port, None, PortConfig::UNLIMITED) {
            Ok(()) => NtStatus::SUCCESS,
            Err(error) => {
                K::log(
                    Level::Warning,
                    format_args!("PORT_CREATE {}: {error}", port.0),
                );
                error.status()
            }
        }
    }

    fn port_deleted(&self, port: SwitchPortId) {
        let deletion = self.pending.delete_port(self.ports, port);
        if let Some(completion) = deletion.cancelled_save {
            self.platform
                .complete_port_save(completion, SAVE_CANCELLED_STATUS);
        }
        self.states.release(port);
        if let Err(error) = deletion.deleted {
            K::log(
                Level::Warning,
                format_args!("PORT_DELETE {}: {error}", port.0),
            );
        }
    }

    fn save(
        &self,
        completion: *mut c_void,
        port: SwitchPortId,
        state_out: *mut *mut c_void,
        length_out: *mut usize,
    ) -> NtStatus {
        if state_out.is_null() || length_out.is_null() {
            return NtStatus::INVALID_PARAMETER;
        }
        if self.pend_saves.load(Ordering::Relaxed) {
            let completion = PortSaveCompletion {
                context: completion,
                state_out,
                length_out,
            };
            return match self.pending.begin(port, completion, self.platform.now()) {
                Ok(()) => NtStatus::PENDING,
                Err(refused) => match refused.error {
                    PendingSaveError::Full => NtStatus::INSUFFICIENT_RESOURCES,
                    PendingSaveError::AlreadyPending(_) => NtStatus::INVALID_DEVICE_STATE,
                },
            };
        }
        match self.save_now(port) {
            Ok((block, len)) => {
                // SAFETY: WFP's out-parameters, checked non-NULL above.
                unsafe { state_out.write(block) };
                // SAFETY: as above.
                unsafe { length_out.write(len) };
                NtStatus::SUCCESS
            }
            Err(status) => {
                K::log(
                    Level::Warning,
                    format_args!("save of port {}: {status}", port.0),
                );
                status
            }
        }
    }

    fn restore(&self, port: SwitchPortId, blob: &[u8]) -> NtStatus {
        match self.ports.restore_port(port, blob, self.platform.now()) {
            Ok(()) => NtStatus::SUCCESS,
            Err(error) => {
                K::log(
                    Level::Warning,
                    format_args!("restore of port {}: {error}", port.0),
                );
                error.status()
            }
        }
    }
}

/// The [`VSwitch`] behind a `notifyContext`.
///
/// # Safety
///
/// `context` is NULL or the `notifyContext` ferry subscribed with: a `&'static VSwitch<K>`.
unsafe fn vswitch<'a, K: KernelServices>(context: *mut c_void) -> Option<&'a VSwitch<K>> {
    // SAFETY: the caller's contract.
    unsafe { context.cast::<VSwitch<K>>().cast_const().as_ref() }
}

/// `FWPS_VSWITCH_LIFETIME_EVENT_CALLBACK0`: nothing to do (ports arrive as port events).
///
/// # Safety
///
/// Called by WFP only.
pub unsafe extern "system" fn lifetime_event<K: KernelServices>(
    _context: *mut c_void,
    _event: FWPS_VSWITCH_EVENT_TYPE,
    _switch: *const NDIS_SWITCH_PARAMETERS,
    _ports: *const NDIS_SWITCH_PORT_ARRAY,
    _nics: *const NDIS_SWITCH_NIC_ARRAY,
) -> NtStatus {
    NtStatus::SUCCESS
}

/// `FWPS_VSWITCH_PORT_EVENT_CALLBACK0`: PORT_CREATE adds the port, PORT_DELETE removes it
/// through `PendingSaves::delete_port` (a pending save is completed `STATUS_CANCELLED`) and
/// frees its published blob.
///
/// # Safety
///
/// Called by WFP with ferry's `notifyContext` and a readable `port` (or NULL).
pub unsafe extern "system" fn port_event<K: KernelServices>(
    context: *mut c_void,
    _completion: *mut c_void,
    event: FWPS_VSWITCH_EVENT_TYPE,
    _switch: *const NDIS_SWITCH_PARAMETERS,
    port: *const NDIS_SWITCH_PORT_PARAMETERS,
) -> NtStatus {
    // SAFETY: WFP passes back the notifyContext ferry subscribed with.
    let Some(vswitch) = (unsafe { vswitch::<K>(context) }) else {
        return NtStatus::INVALID_PARAMETER;
    };
    // SAFETY: WFP's port parameters, readable for the call (or NULL).
    let Some(port) = (unsafe { port.as_ref() }) else {
        return NtStatus::INVALID_PARAMETER;
    };
    let id = SwitchPortId(port.PortId);
    match event {
        FWPS_VSWITCH_EVENT_TYPE::PORT_CREATE => vswitch.port_created(id),
        FWPS_VSWITCH_EVENT_TYPE::PORT_DELETE => {
            vswitch.port_deleted(id);
            NtStatus::SUCCESS
        }
        _ => NtStatus::SUCCESS,
    }
}

/// `FWPS_VSWITCH_INTERFACE_EVENT_CALLBACK0`: not used yet (NIC identities would come from
/// here).
///
/// # Safety
///
/// Called by WFP only.
pub unsafe extern "system" fn interface_event<K: KernelServices>(
    _context: *mut c_void,
    _completion: *mut c_void,
    _event: FWPS_VSWITCH_EVENT_TYPE,
    _switch: *const NDIS_SWITCH_PARAMETERS,
    _nic: *const NDIS_SWITCH_NIC_PARAMETERS,
) -> NtStatus {
    NtStatus::SUCCESS
}

/// `FWPS_VSWITCH_FILTER_ENGINE_REORDER_CALLBACK0`: ferry does not care about its position.
///
/// # Safety
///
/// Called by WFP only.
pub unsafe extern "system" fn reorder_event<K: KernelServices>(
    _context: *mut c_void,
    _completion: *mut c_void,
    _in_required_position: BOOLEAN,
    _filters: *const NDIS_ENUM_FILTERS,
) -> NtStatus {
    NtStatus::SUCCESS
}

/// `FWPS_VSWITCH_POLICY_EVENT_CALLBACK0`: no port policy is used.
///
/// # Safety
///
/// Called by WFP only.
pub unsafe extern "system" fn policy_event<K: KernelServices>(
    _context: *mut c_void,
    _completion: *mut c_void,
    _event: FWPS_VSWITCH_EVENT_TYPE,
    _switch: *const NDIS_SWITCH_PARAMETERS,
    _property: *const NDIS_SWITCH_PORT_PROPERTY_PARAMETERS,
    _delete: *const NDIS_SWITCH_PORT_PROPERTY_DELETE_PARAMETERS,
) -> NtStatus {
    NtStatus::SUCCESS
}

/// `FWPS_VSWITCH_RUNTIME_STATE_SAVE_CALLBACK0` (<= DISPATCH_LEVEL).
///
/// # Safety
///
/// Called by WFP with ferry's `notifyContext` and writable out-parameters (NULL refused).
pub unsafe extern "system" fn runtime_state_save<K: KernelServices>(
    context: *mut c_void,
    completion: *mut c_void,
    _event: FWPS_VSWITCH_EVENT_TYPE,
    _switch: *const NDIS_SWITCH_PARAMETERS,
    port: NDIS_SWITCH_PORT_ID,
    state_out: *mut *mut c_void,
    length_out: *mut usize,
) -> NtStatus {
    // SAFETY: WFP passes back the notifyContext ferry subscribed with.
    let Some(vswitch) = (unsafe { vswitch::<K>(context) }) else {
        return NtStatus::INVALID_PARAMETER;
    };
    vswitch.save(completion, SwitchPortId(port), state_out, length_out)
}

/// `FWPS_VSWITCH_RUNTIME_STATE_RESTORE_CALLBACK0` (<= DISPATCH_LEVEL): restores under the
/// port id given here (the destination's).
///
/// # Safety
///
/// Called by WFP with ferry's `notifyContext` and `length` readable bytes at `state`.
pub unsafe extern "system" fn runtime_state_restore<K: KernelServices>(
    context: *mut c_void,
    _completion: *mut c_void,
    _event: FWPS_VSWITCH_EVENT_TYPE,
    _switch: *const NDIS_SWITCH_PARAMETERS,
    port: NDIS_SWITCH_PORT_ID,
    state: *mut c_void,
    length: usize,
) -> NtStatus {
    // SAFETY: WFP passes back the notifyContext ferry subscribed with.
    let Some(vswitch) = (unsafe { vswitch::<K>(context) }) else {
        return NtStatus::INVALID_PARAMETER;
    };
    if state.is_null() || length == 0 {
        return NtStatus::INVALID_PARAMETER;
    }
    // SAFETY: WFP's buffer of `length` bytes, read during this call only.
    let blob = unsafe { core::slice::from_raw_parts(state.cast::<u8>(), length) };
    vswitch.restore(SwitchPortId(port), blob)
}
