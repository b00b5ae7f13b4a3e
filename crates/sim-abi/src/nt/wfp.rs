//! The `fwpkclnt.sys` and `ndis.sys` imports of `WfpTable::from_imports()`: the three vSwitch
//! event functions go to the loaded host's ([`crate::wfp_table::table`]); the engine,
//! callout-registration and `NdisGetDataBuffer` functions to the fake filter engine
//! ([`crate::fake_engine`], one per process). The management and registration calls are
//! `PASSIVE_LEVEL` only (`fwpmk.h`, `fwpsk.h`; wfp-vswitch.md §1.5 for the subscription).
//! `NdisGetDataBuffer` runs in classify and is not recorded in [`super::calls`].

use std::ffi::c_void;

use ferry_platform_wdk::ffi::base::{GUID, HANDLE, NTSTATUS};
use ferry_platform_wdk::ffi::fwpm::{
    FWPM_CALLOUT0, FWPM_FILTER0, FWPM_PROVIDER0, FWPM_SESSION0, FWPM_SUBLAYER0,
};
use ferry_platform_wdk::ffi::fwps::FWPS_CALLOUT2;
use ferry_platform_wdk::ffi::nbl::NET_BUFFER;
use ferry_platform_wdk::ffi::wfp::FWPS_VSWITCH_EVENT_DISPATCH_TABLE0;
use ferry_platform_wdk::tables::WfpTable;

use super::kernel::require_passive;
use super::{called, called_fallible, export, loaded_host};
use crate::fake_engine;
use crate::wfp_table::table;

/// The loaded host's vSwitch functions.
fn vswitch() -> WfpTable {
    match loaded_host() {
        0 => table::<0>(),
        1 => table::<1>(),
        _ => table::<2>(),
    }
}

export! {
    /// `FwpsvSwitchEventsSubscribe0`: the loaded host's.
    ferry_platform_wdk::ffi::wfp::imports::FwpsvSwitchEventsSubscribe0 =>
    fn FwpsvSwitchEventsSubscribe0(providerGuid: *const GUID, notifyContext: *mut c_void, flags: u32, reserved: *mut c_void, eventDispatchTable: *const FWPS_VSWITCH_EVENT_DISPATCH_TABLE0, subscriptionId: *mut u32) -> NTSTATUS {
        if let Some(status) = called_fallible("FwpsvSwitchEventsSubscribe0") {
            return status;
        }
        require_passive("FwpsvSwitchEventsSubscribe0");
        // SAFETY: the driver's arguments, unchanged, to the loaded host of the same C type.
        unsafe { (vswitch().events_subscribe)(providerGuid, notifyContext, flags, reserved, eventDispatchTable, subscriptionId) }
    }
}

export! {
    /// `FwpsvSwitchEventsUnsubscribe0`: the loaded host's.
    ferry_platform_wdk::ffi::wfp::imports::FwpsvSwitchEventsUnsubscribe0 =>
    fn FwpsvSwitchEventsUnsubscribe0(subscriptionId: u32, flags: u32, reserved: *mut c_void) {
        called("FwpsvSwitchEventsUnsubscribe0");
        require_passive("FwpsvSwitchEventsUnsubscribe0");
        // SAFETY: the driver's arguments, unchanged, to the loaded host of the same C type.
        unsafe { (vswitch().events_unsubscribe)(subscriptionId, flags, reserved) }
    }
}

export! {
    /// `FwpsvSwitchNotifyComplete0`: the loaded host's.
    ferry_platform_wdk::ffi::wfp::imports::FwpsvSwitchNotifyComplete0 =>
    fn FwpsvSwitchNotifyComplete0(completionContext: *mut c_void, status: NTSTATUS, flags: u32, reserved: *mut c_void) {
        called("FwpsvSwitchNotifyComplete0");
        // SAFETY: the driver's arguments, unchanged, to the loaded host of the same C type.
        unsafe { (vswitch().notify_complete)(completionContext, status, flags, reserved) }
    }
}

export! {
    /// `FwpmEngineOpen0`: the fake filter engine's.
    ferry_platform_wdk::ffi::fwpm::imports::FwpmEngineOpen0 =>
    fn FwpmEngineOpen0(serverName: *const u16, authnService: u32, authIdentity: *mut c_void, session: *const FWPM_SESSION0, engineHandle: *mut HANDLE) -> NTSTATUS {
        if let Some(status) = called_fallible("FwpmEngineOpen0") {
            return status;
        }
        require_passive("FwpmEngineOpen0");
        // SAFETY: the driver's arguments, unchanged, to the fake filter engine of the same C type.
        unsafe { fake_engine::engine_open(serverName, authnService, authIdentity, session, engineHandle) }
    }
}

export! {
    /// `FwpmEngineClose0`: the fake filter engine's.
    ferry_platform_wdk::ffi::fwpm::imports::FwpmEngineClose0 =>
    fn FwpmEngineClose0(engineHandle: HANDLE) -> NTSTATUS {
        if let Some(status) = called_fallible("FwpmEngineClose0") {
            return status;
        }
        require_passive("FwpmEngineClose0");
        // SAFETY: the driver's arguments, unchanged, to the fake filter engine of the same C type.
        unsafe { fake_engine::engine_close(engineHandle) }
    }
}

export! {
    /// `FwpmTransactionBegin0`: the fake filter engine's.
    ferry_platform_wdk::ffi::fwpm::imports::FwpmTransactionBegin0 =>
    fn FwpmTransactionBegin0(engineHandle: HANDLE, flags: u32) -> NTSTATUS {
        if let Some(status) = called_fallible("FwpmTransactionBegin0") {
            return status;
        }
        require_passive("FwpmTransactionBegin0");
        // SAFETY: the driver's arguments, unchanged, to the fake filter engine of the same C type.
        unsafe { fake_engine::transaction_begin(engineHandle, flags) }
    }
}

export! {
    /// `FwpmTransactionCommit0`: the fake filter engine's.
    ferry_platform_wdk::ffi::fwpm::imports::FwpmTransactionCommit0 =>
    fn FwpmTransactionCommit0(engineHandle: HANDLE) -> NTSTATUS {
        if let Some(status) = called_fallible("FwpmTransactionCommit0") {
            return status;
        }
        require_passive("FwpmTransactionCommit0");
        // SAFETY: the driver's arguments, unchanged, to the fake filter engine of the same C type.
        unsafe { fake_engine::transaction_commit(engineHandle) }
    }
}

export! {
    /// `FwpmTransactionAbort0`: the fake filter engine's.
    ferry_platform_wdk::ffi::fwpm::imports::FwpmTransactionAbort0 =>
    fn FwpmTransactionAbort0(engineHandle: HANDLE) -> NTSTATUS {
        if let Some(status) = called_fallible("FwpmTransactionAbort0") {
            return status;
        }
        require_passive("FwpmTransactionAbort0");
        // SAFETY: the driver's arguments, unchanged, to the fake filter engine of the same C type.
        unsafe { fake_engine::transaction_abort(engineHandle) }
    }
}

export! {
    /// `FwpmProviderAdd0`: the fake filter engine's.
    ferry_platform_wdk::ffi::fwpm::imports::FwpmProviderAdd0 =>
    fn FwpmProviderAdd0(engineHandle: HANDLE, provider: *const FWPM_PROVIDER0, sd: *mut c_void) -> NTSTATUS {
        if let Some(status) = called_fallible("FwpmProviderAdd0") {
            return status;
        }
        require_passive("FwpmProviderAdd0");
        // SAFETY: the driver's arguments, unchanged, to the fake filter engine of the same C type.
        unsafe { fake_engine::provider_add(engineHandle, provider, sd) }
    }
}

export! {
    /// `FwpmSubLayerAdd0`: the fake filter engine's.
    ferry_platform_wdk::ffi::fwpm::imports::FwpmSubLayerAdd0 =>
    fn FwpmSubLayerAdd0(engineHandle: HANDLE, subLayer: *const FWPM_SUBLAYER0, sd: *mut c_void) -> NTSTATUS {
        if let Some(status) = called_fallible("FwpmSubLayerAdd0") {
            return status;
        }
        require_passive("FwpmSubLayerAdd0");
        // SAFETY: the driver's arguments, unchanged, to the fake filter engine of the same C type.
        unsafe { fake_engine::sublayer_add(engineHandle, subLayer, sd) }
    }
}

export! {
    /// `FwpmCalloutAdd0`: the fake filter engine's.
    ferry_platform_wdk::ffi::fwpm::imports::FwpmCalloutAdd0 =>
    fn FwpmCalloutAdd0(engineHandle: HANDLE, callout: *const FWPM_CALLOUT0, sd: *mut c_void, id: *mut u32) -> NTSTATUS {
        if let Some(status) = called_fallible("FwpmCalloutAdd0") {
            return status;
        }
        require_passive("FwpmCalloutAdd0");
        // SAFETY: the driver's arguments, unchanged, to the fake filter engine of the same C type.
        unsafe { fake_engine::callout_add(engineHandle, callout, sd, id) }
    }
}

export! {
    /// `FwpmCalloutDeleteById0`: the fake filter engine's.
    ferry_platform_wdk::ffi::fwpm::imports::FwpmCalloutDeleteById0 =>
    fn FwpmCalloutDeleteById0(engineHandle: HANDLE, id: u32) -> NTSTATUS {
        if let Some(status) = called_fallible("FwpmCalloutDeleteById0") {
            return status;
        }
        require_passive("FwpmCalloutDeleteById0");
        // SAFETY: the driver's arguments, unchanged, to the fake filter engine of the same C type.
        unsafe { fake_engine::callout_delete_by_id(engineHandle, id) }
    }
}

export! {
    /// `FwpmFilterAdd0`: the fake filter engine's.
    ferry_platform_wdk::ffi::fwpm::imports::FwpmFilterAdd0 =>
    fn FwpmFilterAdd0(engineHandle: HANDLE, filter: *const FWPM_FILTER0, sd: *mut c_void, id: *mut u64) -> NTSTATUS {
        if let Some(status) = called_fallible("FwpmFilterAdd0") {
            return status;
        }
        require_passive("FwpmFilterAdd0");
        // SAFETY: the driver's arguments, unchanged, to the fake filter engine of the same C type.
        unsafe { fake_engine::filter_add(engineHandle, filter, sd, id) }
    }
}

export! {
    /// `FwpmFilterDeleteById0`: the fake filter engine's.
    ferry_platform_wdk::ffi::fwpm::imports::FwpmFilterDeleteById0 =>
    fn FwpmFilterDeleteById0(engineHandle: HANDLE, id: u64) -> NTSTATUS {
        if let Some(status) = called_fallible("FwpmFilterDeleteById0") {
            return status;
        }
        require_passive("FwpmFilterDeleteById0");
        // SAFETY: the driver's arguments, unchanged, to the fake filter engine of the same C type.
        unsafe { fake_engine::filter_delete_by_id(engineHandle, id) }
    }
}

export! {
    /// `FwpsCalloutRegister2`: the fake filter engine's.
    ferry_platform_wdk::ffi::fwps::imports::FwpsCalloutRegister2 =>
    fn FwpsCalloutRegister2(deviceObject: *mut c_void, callout: *const FWPS_CALLOUT2, calloutId: *mut u32) -> NTSTATUS {
        if let Some(status) = called_fallible("FwpsCalloutRegister2") {
            return status;
        }
        require_passive("FwpsCalloutRegister2");
        // SAFETY: the driver's arguments, unchanged, to the fake filter engine of the same C type.
        unsafe { fake_engine::callout_register(deviceObject, callout, calloutId) }
    }
}

export! {
    /// `FwpsCalloutUnregisterById0`: the fake filter engine's.
    ferry_platform_wdk::ffi::fwps::imports::FwpsCalloutUnregisterById0 =>
    fn FwpsCalloutUnregisterById0(calloutId: u32) -> NTSTATUS {
        if let Some(status) = called_fallible("FwpsCalloutUnregisterById0") {
            return status;
        }
        require_passive("FwpsCalloutUnregisterById0");
        // SAFETY: the driver's arguments, unchanged, to the fake filter engine of the same C type.
        unsafe { fake_engine::callout_unregister_by_id(calloutId) }
    }
}

export! {
    /// `NdisGetDataBuffer`: the fake filter engine's.
    ferry_platform_wdk::ffi::nbl::imports::NdisGetDataBuffer =>
    fn NdisGetDataBuffer(NetBuffer: *mut NET_BUFFER, BytesNeeded: u32, Storage: *mut c_void, AlignMultiple: u32, AlignOffset: u32) -> *mut c_void {
        // SAFETY: the driver's arguments, unchanged, to the fake filter engine of the same C type.
        unsafe { fake_engine::get_data_buffer(NetBuffer, BytesNeeded, Storage, AlignMultiple, AlignOffset) }
    }
}
