//! [`WfpTable`]: the WFP functions ferry calls.

use crate::ffi::fwpm::{
    FN_FWPM_CALLOUT_ADD0, FN_FWPM_CALLOUT_DELETE_BY_ID0, FN_FWPM_ENGINE_CLOSE0,
    FN_FWPM_ENGINE_OPEN0, FN_FWPM_FILTER_ADD0, FN_FWPM_FILTER_DELETE_BY_ID0, FN_FWPM_PROVIDER_ADD0,
    FN_FWPM_SUBLAYER_ADD0, FN_FWPM_TRANSACTION_BEGIN0, FN_FWPM_TRANSACTION_END0,
};
use crate::ffi::fwps::{FN_FWPS_CALLOUT_REGISTER2, FN_FWPS_CALLOUT_UNREGISTER_BY_ID0};
use crate::ffi::nbl::FN_NDIS_GET_DATA_BUFFER;
use crate::ffi::wfp::{
    FN_FWPSV_SWITCH_EVENTS_SUBSCRIBE0, FN_FWPSV_SWITCH_EVENTS_UNSUBSCRIBE0,
    FN_FWPSV_SWITCH_NOTIFY_COMPLETE0,
};

/// The functions of `fwpkclnt.sys` ferry uses — the three vSwitch-event functions
/// (wfp-vswitch.md §1.5), the engine/callout/filter management of `fwpmk.h` and the callout
/// registration of `fwpsk.h` — plus `NdisGetDataBuffer` of `ndis.sys`, which only the
/// callout's classify path calls.
///
/// WFP has no interface table, so there is no C struct to fill this from:
///
/// * In `ferry.sys`: [`WfpTable::from_imports`].
/// * In host tests (`tests/abi/`): a fake host defines `extern "system"` functions with
///   exactly these signatures and the test builds the table with a struct literal.
#[derive(Clone, Copy, Debug)]
pub struct WfpTable {
    /// `FwpsvSwitchEventsSubscribe0`.
    pub events_subscribe: FN_FWPSV_SWITCH_EVENTS_SUBSCRIBE0,
    /// `FwpsvSwitchEventsUnsubscribe0`.
    pub events_unsubscribe: FN_FWPSV_SWITCH_EVENTS_UNSUBSCRIBE0,
    /// `FwpsvSwitchNotifyComplete0`.
    pub notify_complete: FN_FWPSV_SWITCH_NOTIFY_COMPLETE0,
    /// `FwpmEngineOpen0`.
    pub engine_open: FN_FWPM_ENGINE_OPEN0,
    /// `FwpmEngineClose0`.
    pub engine_close: FN_FWPM_ENGINE_CLOSE0,
    /// `FwpmTransactionBegin0`.
    pub transaction_begin: FN_FWPM_TRANSACTION_BEGIN0,
    /// `FwpmTransactionCommit0`.
    pub transaction_commit: FN_FWPM_TRANSACTION_END0,
    /// `FwpmTransactionAbort0`.
    pub transaction_abort: FN_FWPM_TRANSACTION_END0,
    /// `FwpmProviderAdd0`.
    pub provider_add: FN_FWPM_PROVIDER_ADD0,
    /// `FwpmSubLayerAdd0`.
    pub sublayer_add: FN_FWPM_SUBLAYER_ADD0,
    /// `FwpmCalloutAdd0`.
    pub callout_add: FN_FWPM_CALLOUT_ADD0,
    /// `FwpmCalloutDeleteById0`.
    pub callout_delete_by_id: FN_FWPM_CALLOUT_DELETE_BY_ID0,
    /// `FwpmFilterAdd0`.
    pub filter_add: FN_FWPM_FILTER_ADD0,
    /// `FwpmFilterDeleteById0`.
    pub filter_delete_by_id: FN_FWPM_FILTER_DELETE_BY_ID0,
    /// `FwpsCalloutRegister2`.
    pub callout_register: FN_FWPS_CALLOUT_REGISTER2,
    /// `FwpsCalloutUnregisterById0`.
    pub callout_unregister_by_id: FN_FWPS_CALLOUT_UNREGISTER_BY_ID0,
    /// `NdisGetDataBuffer` (`ndis.sys`).
    pub get_data_buffer: FN_NDIS_GET_DATA_BUFFER,
}

impl WfpTable {
    /// A table with the three vSwitch-event functions only, for a host that simulates the
    /// vSwitch but no filter engine (the C-ABI simulation): every engine and callout
    /// registration function answers `STATUS_NOT_SUPPORTED` (so `host::filters::register`
    /// fails at its first step) and `NdisGetDataBuffer` returns NULL.
    #[must_use]
    pub const fn events_only(
        events_subscribe: FN_FWPSV_SWITCH_EVENTS_SUBSCRIBE0,
        events_unsubscribe: FN_FWPSV_SWITCH_EVENTS_UNSUBSCRIBE0,
        notify_complete: FN_FWPSV_SWITCH_NOTIFY_COMPLETE0,
    ) -> Self {
        Self {
            events_subscribe,
            events_unsubscribe,
            notify_complete,
            engine_open: unbound::engine_open,
            engine_close: unbound::handle,
            transaction_begin: unbound::transaction_begin,
            transaction_commit: unbound::handle,
            transaction_abort: unbound::handle,
            provider_add: unbound::provider_add,
            sublayer_add: unbound::sublayer_add,
            callout_add: unbound::callout_add,
            callout_delete_by_id: unbound::callout_delete,
            filter_add: unbound::filter_add,
            filter_delete_by_id: unbound::filter_delete,
            callout_register: unbound::callout_register,
            callout_unregister_by_id: unbound::callout_unregister,
            get_data_buffer: unbound::get_data_buffer,
        }
    }

    /// The table over the direct imports from `fwpkclnt.sys` and `ndis.sys`. On other targets
    /// the imports are plain undefined symbols: only a test binary that defines them
    /// (ferry-sim-abi's `nt` module, for the driver's tests) may use this table.
    #[must_use]
    pub const fn from_imports() -> Self {
        use crate::ffi::fwpm::imports as m;
        use crate::ffi::fwps::imports as s;
        use crate::ffi::nbl::imports as n;
        use crate::ffi::wfp::imports as w;
        Self {
            events_subscribe: w::FwpsvSwitchEventsSubscribe0,
            events_unsubscribe: w::FwpsvSwitchEventsUnsubscribe0,
            notify_complete: w::FwpsvSwitchNotifyComplete0,
            engine_open: m::FwpmEngineOpen0,
            engine_close: m::FwpmEngineClose0,
            transaction_begin: m::FwpmTransactionBegin0,
            transaction_commit: m::FwpmTransactionCommit0,
            transaction_abort: m::FwpmTransactionAbort0,
            provider_add: m::FwpmProviderAdd0,
            sublayer_add: m::FwpmSubLayerAdd0,
            callout_add: m::FwpmCalloutAdd0,
            callout_delete_by_id: m::FwpmCalloutDeleteById0,
            filter_add: m::FwpmFilterAdd0,
            filter_delete_by_id: m::FwpmFilterDeleteById0,
            callout_register: s::FwpsCalloutRegister2,
            callout_unregister_by_id: s::FwpsCalloutUnregisterById0,
            get_data_buffer: n::NdisGetDataBuffer,
        }
    }
}

/// The engine functions of [`WfpTable::events_only`]: each refuses.
mod unbound {
    use core::ffi::c_void;

    use ferry_core::status::NtStatus;

    use crate::ffi::base::HANDLE;
    use crate::ffi::fwpm::{
        FWPM_CALLOUT0, FWPM_FILTER0, FWPM_PROVIDER0, FWPM_SESSION0, FWPM_SUBLAYER0,
    };
    use crate::ffi::fwps::FWPS_CALLOUT2;
    use crate::ffi::nbl::NET_BUFFER;

    pub(super) unsafe extern "system" fn engine_open(
        _: *const u16,
        _: u32,
        _: *mut c_void,
        _: *const FWPM_SESSION0,
        _: *mut HANDLE,
    ) -> NtStatus {
        NtStatus::NOT_SUPPORTED
    }
    pub(super) unsafe extern "system" fn handle(_: HANDLE) -> NtStatus {
        NtStatus::NOT_SUPPORTED
    }
    pub(super) unsafe extern "system" fn transaction_begin(_: HANDLE, _: u32) -> NtStatus {
        NtStatus::NOT_SUPPORTED
    }
    pub(super) unsafe extern "system" fn provider_add(
        _: HANDLE,
        _: *const FWPM_PROVIDER0,
        _: *mut c_void,
    ) -> NtStatus {
        NtStatus::NOT_SUPPORTED
    }
    pub(super) unsafe extern "system" fn sublayer_add(
        _: HANDLE,
        _: *const FWPM_SUBLAYER0,
        _: *mut c_void,
    ) -> NtStatus {
        NtStatus::NOT_SUPPORTED
    }
    pub(super) unsafe extern "system" fn callout_add(
        _: HANDLE,
        _: *const FWPM_CALLOUT0,
        _: *mut c_void,
        _: *mut u32,
    ) -> NtStatus {
        NtStatus::NOT_SUPPORTED
    }
    pub(super) unsafe extern "system" fn callout_delete(_: HANDLE, _: u32) -> NtStatus {
        NtStatus::NOT_SUPPORTED
    }
    pub(super) unsafe extern "system" fn filter_add(
        _: HANDLE,
        _: *const FWPM_FILTER0,
        _: *mut c_void,
        _: *mut u64,
    ) -> NtStatus {
        NtStatus::NOT_SUPPORTED
    }
    pub(super) unsafe extern "system" fn filter_delete(_: HANDLE, _: u64) -> NtStatus {
        NtStatus::NOT_SUPPORTED
    }
    pub(super) unsafe extern "system" fn callout_register(
        _: *mut c_void,
        _: *const FWPS_CALLOUT2,
        _: *mut u32,
    ) -> NtStatus {
        NtStatus::NOT_SUPPORTED
    }
    pub(super) unsafe extern "system" fn callout_unregister(_: u32) -> NtStatus {
        NtStatus::NOT_SUPPORTED
    }
    pub(super) unsafe extern "system" fn get_data_buffer(
        _: *mut NET_BUFFER,
        _: u32,
        _: *mut c_void,
        _: u32,
        _: u32,
    ) -> *mut c_void {
        core::ptr::null_mut()
    }
}
