//! The WFP management calls ferry makes at load and unload (`fwpmk.h`, structures from
//! `fwpmtypes.h` / `fwptypes.h`): one engine session, a provider, a sublayer, two callouts
//! and two filters.
//!
//! **Not in `shared/reference/wfp-vswitch.md`.** Every item is *from the header it names,
//! not in the reference notes*: prototypes from `km/fwpmk.h` (WDK 10.0.22621), structures from
//! the SDK's `shared/fwpmtypes.h`, the layer GUIDs from `fwpmk.h`'s `DEFINE_GUID`s (the same
//! values appear in `fwpmu.h`). x64 offsets are computed from those declarations and pinned
//! below. All of it runs at `PASSIVE_LEVEL`.

#![allow(non_camel_case_types, non_snake_case)]

use core::ffi::c_void;

use static_assertions::{assert_eq_align, assert_eq_size, const_assert_eq};

use super::base::{GUID, HANDLE, NTSTATUS};
use super::fwps::{FWP_ACTION_TYPE, FWP_BYTE_BLOB, FWP_CONDITION_VALUE0, FWP_VALUE0};

/// `FWPM_LAYER_INGRESS_VSWITCH_ETHERNET` = `{7d98577a-9a87-41ec-9718-7cf589c9f32d}` (`fwpmk.h`).
pub const FWPM_LAYER_INGRESS_VSWITCH_ETHERNET: GUID = GUID {
    Data1: 0x7d98_577a,
    Data2: 0x9a87,
    Data3: 0x41ec,
    Data4: [0x97, 0x18, 0x7c, 0xf5, 0x89, 0xc9, 0xf3, 0x2d],
};

/// `FWPM_LAYER_EGRESS_VSWITCH_ETHERNET` = `{86c872b0-76fa-4b79-93a4-0750530ae292}` (`fwpmk.h`).
pub const FWPM_LAYER_EGRESS_VSWITCH_ETHERNET: GUID = GUID {
    Data1: 0x86c8_72b0,
    Data2: 0x76fa,
    Data3: 0x4b79,
    Data4: [0x93, 0xa4, 0x07, 0x50, 0x53, 0x0a, 0xe2, 0x92],
};

/// `RPC_C_AUTHN_WINNT` (`rpcdce.h`): the authentication service `FwpmEngineOpen0` takes in
/// kernel mode.
pub const RPC_C_AUTHN_WINNT: u32 = 10;

/// `FWPM_SESSION_FLAG_DYNAMIC` (`fwpmtypes.h`): every object added through the session is
/// deleted when the session closes.
pub const FWPM_SESSION_FLAG_DYNAMIC: u32 = 0x0000_0001;

/// `FWPM_DISPLAY_DATA0` (`fwptypes.h`): NUL-terminated UTF-16 name and description.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct FWPM_DISPLAY_DATA0 {
    /// Name (required for objects added to the engine).
    pub name: *mut u16,
    /// Description (optional).
    pub description: *mut u16,
}

assert_eq_size!(FWPM_DISPLAY_DATA0, [u64; 2]);

/// `FWPM_SESSION0` (`fwpmtypes.h`).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct FWPM_SESSION0 {
    /// Set by the engine.
    pub sessionKey: GUID,
    /// Optional names.
    pub displayData: FWPM_DISPLAY_DATA0,
    /// `FWPM_SESSION_FLAG_*`.
    pub flags: u32,
    /// Transaction wait timeout (0: default).
    pub txnWaitTimeoutInMSec: u32,
    /// Set by the engine.
    pub processId: u32,
    /// Set by the engine.
    pub sid: *mut c_void,
    /// Set by the engine.
    pub username: *mut u16,
    /// Set by the engine (`BOOL`).
    pub kernelMode: i32,
}

// fwpmtypes.h on x64: GUID @0, display @16, flags @32, timeout @36, pid @40, sid @48,
// username @56, kernelMode @64, sizeof 72.
assert_eq_size!(FWPM_SESSION0, [u64; 9]);
const_assert_eq!(core::mem::offset_of!(FWPM_SESSION0, flags), 32);
const_assert_eq!(core::mem::offset_of!(FWPM_SESSION0, sid), 48);
const_assert_eq!(core::mem::offset_of!(FWPM_SESSION0, kernelMode), 64);

/// `FWPM_PROVIDER0` (`fwpmtypes.h`).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct FWPM_PROVIDER0 {
    /// The provider's key.
    pub providerKey: GUID,
    /// Names.
    pub displayData: FWPM_DISPLAY_DATA0,
    /// `FWPM_PROVIDER_FLAG_*` (ferry: 0, not persistent).
    pub flags: u32,
    /// Optional data.
    pub providerData: FWP_BYTE_BLOB,
    /// Optional service name.
    pub serviceName: *mut u16,
}

// fwpmtypes.h on x64: flags @32, providerData @40, serviceName @56, sizeof 64.
assert_eq_size!(FWPM_PROVIDER0, [u64; 8]);
const_assert_eq!(core::mem::offset_of!(FWPM_PROVIDER0, providerData), 40);

/// `FWPM_SUBLAYER0` (`fwpmtypes.h`).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct FWPM_SUBLAYER0 {
    /// The sublayer's key.
    pub subLayerKey: GUID,
    /// Names.
    pub displayData: FWPM_DISPLAY_DATA0,
    /// `FWPM_SUBLAYER_FLAG_*` (ferry: 0).
    pub flags: u32,
    /// The owning provider (optional).
    pub providerKey: *mut GUID,
    /// Optional data.
    pub providerData: FWP_BYTE_BLOB,
    /// Weight among sublayers.
    pub weight: u16,
}

// fwpmtypes.h on x64: providerKey @40, providerData @48, weight @64, sizeof 72.
assert_eq_size!(FWPM_SUBLAYER0, [u64; 9]);
const_assert_eq!(core::mem::offset_of!(FWPM_SUBLAYER0, providerKey), 40);
const_assert_eq!(core::mem::offset_of!(FWPM_SUBLAYER0, weight), 64);

/// `FWPM_CALLOUT0` (`fwpmtypes.h`): the management half of a callout.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct FWPM_CALLOUT0 {
    /// The same GUID as the `FWPS_CALLOUT2` registered for it.
    pub calloutKey: GUID,
    /// Names.
    pub displayData: FWPM_DISPLAY_DATA0,
    /// `FWPM_CALLOUT_FLAG_*` (ferry: 0).
    pub flags: u32,
    /// The owning provider (optional).
    pub providerKey: *mut GUID,
    /// Optional data.
    pub providerData: FWP_BYTE_BLOB,
    /// The layer its filters may be added to.
    pub applicableLayer: GUID,
    /// Set by the engine.
    pub calloutId: u32,
}

// fwpmtypes.h on x64: providerKey @40, providerData @48, applicableLayer @64, calloutId @80,
// sizeof 88.
assert_eq_size!(FWPM_CALLOUT0, [u64; 11]);
const_assert_eq!(core::mem::offset_of!(FWPM_CALLOUT0, applicableLayer), 64);
const_assert_eq!(core::mem::offset_of!(FWPM_CALLOUT0, calloutId), 80);

/// `FWPM_ACTION0` (`fwpmtypes.h`): the action type and, for callout actions, the callout's
/// key (the header's union of `filterType` and `calloutKey`, both `GUID`).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct FWPM_ACTION0 {
    /// `FWP_ACTION_*`.
    pub r#type: FWP_ACTION_TYPE,
    /// `calloutKey` (or `filterType`).
    pub calloutKey: GUID,
}

// fwpmtypes.h: UINT32 then a 4-aligned GUID: 20 bytes, align 4.
assert_eq_size!(FWPM_ACTION0, [u32; 5]);
assert_eq_align!(FWPM_ACTION0, u32);

/// `FWPM_FILTER_CONDITION0` (`fwpmtypes.h`). ferry's filters have none (they match every
/// frame of their layer); declared for the layout of [`FWPM_FILTER0`].
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct FWPM_FILTER_CONDITION0 {
    /// The field.
    pub fieldKey: GUID,
    /// `FWP_MATCH_TYPE`.
    pub matchType: u32,
    /// The value to match.
    pub conditionValue: FWP_CONDITION_VALUE0,
}

// fwpmtypes.h on x64: GUID @0, matchType @16, value @24, sizeof 40.
assert_eq_size!(FWPM_FILTER_CONDITION0, [u64; 5]);
const_assert_eq!(
    core::mem::offset_of!(FWPM_FILTER_CONDITION0, conditionValue),
    24
);

/// The union after `FWPM_FILTER0::action`: `rawContext` or `providerContextKey`.
#[repr(C)]
#[derive(Clone, Copy)]
pub union FWPM_FILTER0_CONTEXT {
    /// A value handed to the callout as `FWPS_FILTER2::context` (ferry: 0, unused).
    pub rawContext: u64,
    /// With `FWPM_FILTER_FLAG_HAS_PROVIDER_CONTEXT`.
    pub providerContextKey: GUID,
}

impl core::fmt::Debug for FWPM_FILTER0_CONTEXT {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("FWPM_FILTER0_CONTEXT { .. }")
    }
}

/// `FWPM_FILTER0` (`fwpmtypes.h`).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct FWPM_FILTER0 {
    /// The filter's key.
    pub filterKey: GUID,
    /// Names.
    pub displayData: FWPM_DISPLAY_DATA0,
    /// `FWPM_FILTER_FLAG_*` (ferry: 0).
    pub flags: u32,
    /// The owning provider (optional).
    pub providerKey: *mut GUID,
    /// Optional data.
    pub providerData: FWP_BYTE_BLOB,
    /// The layer.
    pub layerKey: GUID,
    /// The sublayer.
    pub subLayerKey: GUID,
    /// Weight within the sublayer (`FWP_EMPTY`: chosen by the engine).
    pub weight: FWP_VALUE0,
    /// Entries at `filterCondition`.
    pub numFilterConditions: u32,
    /// The conditions (all must match).
    pub filterCondition: *mut FWPM_FILTER_CONDITION0,
    /// What a match does.
    pub action: FWPM_ACTION0,
    /// `rawContext` / `providerContextKey`.
    pub context: FWPM_FILTER0_CONTEXT,
    /// Reserved.
    pub reserved: *mut GUID,
    /// Set by the engine.
    pub filterId: u64,
    /// Set by the engine.
    pub effectiveWeight: FWP_VALUE0,
}

// fwpmtypes.h on x64: layerKey @64, subLayerKey @80, weight @96, numFilterConditions @112,
// filterCondition @120, action @128 (20 bytes), context @152 (8-aligned), reserved @168,
// filterId @176, effectiveWeight @184, sizeof 200.
assert_eq_size!(FWPM_FILTER0, [u64; 25]);
const_assert_eq!(core::mem::offset_of!(FWPM_FILTER0, layerKey), 64);
const_assert_eq!(core::mem::offset_of!(FWPM_FILTER0, subLayerKey), 80);
const_assert_eq!(core::mem::offset_of!(FWPM_FILTER0, weight), 96);
const_assert_eq!(
    core::mem::offset_of!(FWPM_FILTER0, numFilterConditions),
    112
);
const_assert_eq!(core::mem::offset_of!(FWPM_FILTER0, action), 128);
const_assert_eq!(core::mem::offset_of!(FWPM_FILTER0, context), 152);
const_assert_eq!(core::mem::offset_of!(FWPM_FILTER0, filterId), 176);

/// `FwpmEngineOpen0`.
pub type FN_FWPM_ENGINE_OPEN0 = unsafe extern "system" fn(
    serverName: *const u16,
    authnService: u32,
    authIdentity: *mut c_void,
    session: *const FWPM_SESSION0,
    engineHandle: *mut HANDLE,
) -> NTSTATUS;
/// `FwpmEngineClose0`.
pub type FN_FWPM_ENGINE_CLOSE0 = unsafe extern "system" fn(engineHandle: HANDLE) -> NTSTATUS;
/// `FwpmTransactionBegin0` (`flags` 0: read-write).
pub type FN_FWPM_TRANSACTION_BEGIN0 =
    unsafe extern "system" fn(engineHandle: HANDLE, flags: u32) -> NTSTATUS;
/// `FwpmTransactionCommit0` / `FwpmTransactionAbort0`.
pub type FN_FWPM_TRANSACTION_END0 = unsafe extern "system" fn(engineHandle: HANDLE) -> NTSTATUS;
/// `FwpmProviderAdd0`.
pub type FN_FWPM_PROVIDER_ADD0 = unsafe extern "system" fn(
    engineHandle: HANDLE,
    provider: *const FWPM_PROVIDER0,
    sd: *mut c_void,
) -> NTSTATUS;
/// `FwpmSubLayerAdd0`.
pub type FN_FWPM_SUBLAYER_ADD0 = unsafe extern "system" fn(
    engineHandle: HANDLE,
    subLayer: *const FWPM_SUBLAYER0,
    sd: *mut c_void,
) -> NTSTATUS;
/// `FwpmCalloutAdd0`.
pub type FN_FWPM_CALLOUT_ADD0 = unsafe extern "system" fn(
    engineHandle: HANDLE,
    callout: *const FWPM_CALLOUT0,
    sd: *mut c_void,
    id: *mut u32,
) -> NTSTATUS;
/// `FwpmCalloutDeleteById0`.
pub type FN_FWPM_CALLOUT_DELETE_BY_ID0 =
    unsafe extern "system" fn(engineHandle: HANDLE, id: u32) -> NTSTATUS;
/// `FwpmFilterAdd0`.
pub type FN_FWPM_FILTER_ADD0 = unsafe extern "system" fn(
    engineHandle: HANDLE,
    filter: *const FWPM_FILTER0,
    sd: *mut c_void,
    id: *mut u64,
) -> NTSTATUS;
/// `FwpmFilterDeleteById0`.
pub type FN_FWPM_FILTER_DELETE_BY_ID0 =
    unsafe extern "system" fn(engineHandle: HANDLE, id: u64) -> NTSTATUS;

/// The `fwpkclnt.sys` imports of this module (`raw-dylib` on Windows targets only).
pub mod imports {
    use core::ffi::c_void;

    use super::super::base::{HANDLE, NTSTATUS};
    use super::{FWPM_CALLOUT0, FWPM_FILTER0, FWPM_PROVIDER0, FWPM_SESSION0, FWPM_SUBLAYER0};

    #[cfg_attr(
        windows,
        link(name = "fwpkclnt.sys", kind = "raw-dylib", modifiers = "+verbatim")
    )]
    unsafe extern "system" {
        /// See [`super::FN_FWPM_ENGINE_OPEN0`].
        pub fn FwpmEngineOpen0(
            serverName: *const u16,
            authnService: u32,
            authIdentity: *mut c_void,
            session: *const FWPM_SESSION0,
            engineHandle: *mut HANDLE,
        ) -> NTSTATUS;
        /// See [`super::FN_FWPM_ENGINE_CLOSE0`].
        pub fn FwpmEngineClose0(engineHandle: HANDLE) -> NTSTATUS;
        /// See [`super::FN_FWPM_TRANSACTION_BEGIN0`].
        pub fn FwpmTransactionBegin0(engineHandle: HANDLE, flags: u32) -> NTSTATUS;
        /// See [`super::FN_FWPM_TRANSACTION_END0`].
        pub fn FwpmTransactionCommit0(engineHandle: HANDLE) -> NTSTATUS;
        /// See [`super::FN_FWPM_TRANSACTION_END0`].
        pub fn FwpmTransactionAbort0(engineHandle: HANDLE) -> NTSTATUS;
        /// See [`super::FN_FWPM_PROVIDER_ADD0`].
        pub fn FwpmProviderAdd0(
            engineHandle: HANDLE,
            provider: *const FWPM_PROVIDER0,
            sd: *mut c_void,
        ) -> NTSTATUS;
        /// See [`super::FN_FWPM_SUBLAYER_ADD0`].
        pub fn FwpmSubLayerAdd0(
            engineHandle: HANDLE,
            subLayer: *const FWPM_SUBLAYER0,
            sd: *mut c_void,
        ) -> NTSTATUS;
        /// See [`super::FN_FWPM_CALLOUT_ADD0`].
        pub fn FwpmCalloutAdd0(
            engineHandle: HANDLE,
            callout: *const FWPM_CALLOUT0,
            sd: *mut c_void,
            id: *mut u32,
        ) -> NTSTATUS;
        /// See [`super::FN_FWPM_CALLOUT_DELETE_BY_ID0`].
        pub fn FwpmCalloutDeleteById0(engineHandle: HANDLE, id: u32) -> NTSTATUS;
        /// See [`super::FN_FWPM_FILTER_ADD0`].
        pub fn FwpmFilterAdd0(
            engineHandle: HANDLE,
            filter: *const FWPM_FILTER0,
            sd: *mut c_void,
            id: *mut u64,
        ) -> NTSTATUS;
        /// See [`super::FN_FWPM_FILTER_DELETE_BY_ID0`].
        pub fn FwpmFilterDeleteById0(engineHandle: HANDLE, id: u64) -> NTSTATUS;
    }
}

#[cfg(test)]
mod tests {
    use super::{FWPM_LAYER_EGRESS_VSWITCH_ETHERNET, FWPM_LAYER_INGRESS_VSWITCH_ETHERNET};

    /// Formats a GUID the way the header's comment line above each `DEFINE_GUID` writes it.
    fn text(g: &crate::ffi::base::GUID) -> std::string::String {
        let d = g.Data4;
        std::format!(
            "{:08x}-{:04x}-{:04x}-{:02x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
            g.Data1,
            g.Data2,
            g.Data3,
            d[0],
            d[1],
            d[2],
            d[3],
            d[4],
            d[5],
            d[6],
            d[7]
        )
    }

    /// The layer GUIDs, as `fwpmk.h` spells them in the comment above each `DEFINE_GUID`:
    /// the split into `Data1..Data4` is easy to get wrong, the string form is what the header
    /// (and `netsh wfp show state`) shows.
    #[test]
    fn layer_guids_read_as_the_header_comments() {
        assert_eq!(
            text(&FWPM_LAYER_INGRESS_VSWITCH_ETHERNET),
            "7d98577a-9a87-41ec-9718-7cf589c9f32d"
        );
        assert_eq!(
            text(&FWPM_LAYER_EGRESS_VSWITCH_ETHERNET),
            "86c872b0-76fa-4b79-93a4-0750530ae292"
        );
    }
}
