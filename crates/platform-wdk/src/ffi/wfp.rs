//! The WFP vSwitch event API of `fwpsk.h` (WDK 10.0.14393 through 10.0.22621, identical), the
//! part ferry uses to keep per-port state across VM save and live migration.
//!
//! Every figure comes from `shared/reference/wfp-vswitch.md` (section named at each item); its
//! tags: \[H\] real header, \[D\] docs only, \[C\] computed layout, \[I\] inference.
//!
//! The functions live in `fwpkclnt.sys` ([`imports`]); ferry reaches them through
//! [`crate::tables::WfpTable`].

#![allow(non_camel_case_types, non_snake_case)]

use core::ffi::c_void;

use static_assertions::{assert_eq_size, const_assert_eq};

use super::base::{BOOLEAN, GUID, NTSTATUS, Opaque};
use super::ndis::{
    NDIS_SWITCH_NIC_ARRAY, NDIS_SWITCH_NIC_PARAMETERS, NDIS_SWITCH_PARAMETERS,
    NDIS_SWITCH_PORT_ARRAY, NDIS_SWITCH_PORT_ID, NDIS_SWITCH_PORT_PARAMETERS,
};

/// `FWPS_VSWITCH_EVENT_TYPE`: a C enum, 4 bytes (wfp-vswitch.md §1.2, \[H\]).
///
/// A newtype over the C value rather than a Rust `enum`: WFP could pass a value this build does
/// not know, and an unknown value must not be undefined behaviour.
///
/// The Learn page's syntax block lists the `INTERFACE_*` members in a different order (and
/// drops `CONNECT`); these values follow the header.
#[repr(transparent)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FWPS_VSWITCH_EVENT_TYPE(pub i32);

impl FWPS_VSWITCH_EVENT_TYPE {
    /// `FWPS_VSWITCH_EVENT_VSWITCH_NONE` = 0.
    pub const VSWITCH_NONE: Self = Self(0);
    /// `FWPS_VSWITCH_EVENT_VSWITCH_CREATE` = 1 (lifetime callback).
    pub const VSWITCH_CREATE: Self = Self(1);
    /// `FWPS_VSWITCH_EVENT_VSWITCH_DELETE` = 2 (lifetime callback).
    pub const VSWITCH_DELETE: Self = Self(2);
    /// `FWPS_VSWITCH_EVENT_PORT_CREATE` = 3 (port callback).
    pub const PORT_CREATE: Self = Self(3);
    /// `FWPS_VSWITCH_EVENT_PORT_DELETE` = 4 (port callback; after the port is deleted).
    pub const PORT_DELETE: Self = Self(4);
    /// `FWPS_VSWITCH_EVENT_INTERFACE_CREATE` = 5 (interface callback).
    pub const INTERFACE_CREATE: Self = Self(5);
    /// `FWPS_VSWITCH_EVENT_INTERFACE_DELETE` = 6 (interface callback).
    pub const INTERFACE_DELETE: Self = Self(6);
    /// `FWPS_VSWITCH_EVENT_INTERFACE_CONNECT` = 7 (interface callback, presumably \[D\]).
    pub const INTERFACE_CONNECT: Self = Self(7);
    /// `FWPS_VSWITCH_EVENT_INTERFACE_DISCONNECT` = 8 (interface callback).
    pub const INTERFACE_DISCONNECT: Self = Self(8);
    /// `FWPS_VSWITCH_EVENT_POLICY_ADD` = 9 (policy callback).
    pub const POLICY_ADD: Self = Self(9);
    /// `FWPS_VSWITCH_EVENT_POLICY_UPDATE` = 10 (policy callback).
    pub const POLICY_UPDATE: Self = Self(10);
    /// `FWPS_VSWITCH_EVENT_POLICY_DELETE` = 11 (policy callback).
    pub const POLICY_DELETE: Self = Self(11);
    /// `FWPS_VSWITCH_EVENT_RUNTIME_STATE_SAVE` = 12 (save callback).
    pub const RUNTIME_STATE_SAVE: Self = Self(12);
    /// `FWPS_VSWITCH_EVENT_RUNTIME_STATE_RESTORE` = 13 (restore callback).
    pub const RUNTIME_STATE_RESTORE: Self = Self(13);
}

// wfp-vswitch.md §1.2 / §1.3: a plain C enum, 4 bytes.
assert_eq_size!(FWPS_VSWITCH_EVENT_TYPE, u32);

/// `NDIS_ENUM_FILTERS` (ndis.h): only passed by pointer to the reorder callback; not bound.
pub type NDIS_ENUM_FILTERS = Opaque;
/// `NDIS_SWITCH_PORT_PROPERTY_PARAMETERS`: only passed by pointer; layout not in the
/// reference, so not bound.
pub type NDIS_SWITCH_PORT_PROPERTY_PARAMETERS = Opaque;
/// `NDIS_SWITCH_PORT_PROPERTY_DELETE_PARAMETERS`: only passed by pointer; not bound.
pub type NDIS_SWITCH_PORT_PROPERTY_DELETE_PARAMETERS = Opaque;

// ---------------------------------------------------------------------------------------------
// Callback typedefs (wfp-vswitch.md §1.3, [H]). Every one is `NTSTATUS NTAPI` and documented
// for IRQL <= DISPATCH_LEVEL [D]. Nullable, as every dispatch-table entry may be NULL.
// ---------------------------------------------------------------------------------------------

/// `FWPS_VSWITCH_LIFETIME_EVENT_CALLBACK0`: switch create/delete. No completion context: it
/// cannot return `STATUS_PENDING` \[D\].
pub type FWPS_VSWITCH_LIFETIME_EVENT_CALLBACK0 = Option<
    unsafe extern "system" fn(
        notifyContext: *mut c_void,
        eventType: FWPS_VSWITCH_EVENT_TYPE,
        vSwitch: *const NDIS_SWITCH_PARAMETERS,
        vSwitchPorts: *const NDIS_SWITCH_PORT_ARRAY,
        vSwitchInterfaces: *const NDIS_SWITCH_NIC_ARRAY,
    ) -> NTSTATUS,
>;

/// `FWPS_VSWITCH_PORT_EVENT_CALLBACK0`: port create/delete; may pend \[D\].
pub type FWPS_VSWITCH_PORT_EVENT_CALLBACK0 = Option<
    unsafe extern "system" fn(
        notifyContext: *mut c_void,
        completionContext: *mut c_void,
        eventType: FWPS_VSWITCH_EVENT_TYPE,
        vSwitch: *const NDIS_SWITCH_PARAMETERS,
        vSwitchPort: *const NDIS_SWITCH_PORT_PARAMETERS,
    ) -> NTSTATUS,
>;

/// `FWPS_VSWITCH_INTERFACE_EVENT_CALLBACK0`: NIC create/connect/disconnect/delete. The docs
/// list only success or an error, not `STATUS_PENDING`.
pub type FWPS_VSWITCH_INTERFACE_EVENT_CALLBACK0 = Option<
    unsafe extern "system" fn(
        notifyContext: *mut c_void,
        completionContext: *mut c_void,
        eventType: FWPS_VSWITCH_EVENT_TYPE,
        vSwitch: *const NDIS_SWITCH_PARAMETERS,
        vSwitchNic: *const NDIS_SWITCH_NIC_PARAMETERS,
    ) -> NTSTATUS,
>;

/// `FWPS_VSWITCH_FILTER_ENGINE_REORDER_CALLBACK0`: cannot return `STATUS_PENDING` \[D\].
pub type FWPS_VSWITCH_FILTER_ENGINE_REORDER_CALLBACK0 = Option<
    unsafe extern "system" fn(
        notifyContext: *mut c_void,
        completionContext: *mut c_void,
        isInRequiredPosition: BOOLEAN,
        vSwitchExtensionLwfList: *const NDIS_ENUM_FILTERS,
    ) -> NTSTATUS,
>;

/// `FWPS_VSWITCH_POLICY_EVENT_CALLBACK0`: exactly one of the two property pointers is non-NULL
/// (the delete one for `POLICY_DELETE`); may pend \[D\].
pub type FWPS_VSWITCH_POLICY_EVENT_CALLBACK0 = Option<
    unsafe extern "system" fn(
        notifyContext: *mut c_void,
        completionContext: *mut c_void,
        eventType: FWPS_VSWITCH_EVENT_TYPE,
        vSwitch: *const NDIS_SWITCH_PARAMETERS,
        vSwitchPortProperty: *const NDIS_SWITCH_PORT_PROPERTY_PARAMETERS,
        vSwitchPortPropertyDelete: *const NDIS_SWITCH_PORT_PROPERTY_DELETE_PARAMETERS,
    ) -> NTSTATUS,
>;

/// `FWPS_VSWITCH_RUNTIME_STATE_SAVE_CALLBACK0`: the callout returns its own buffer through
/// `runtimeState`; may pend \[D\].
///
/// **UNCONFIRMED** (wfp-vswitch.md §4.3): who frees `*runtimeState`, when, with which pool
/// tag; and whether the out-parameters must be written when returning `STATUS_PENDING`.
pub type FWPS_VSWITCH_RUNTIME_STATE_SAVE_CALLBACK0 = Option<
    unsafe extern "system" fn(
        notifyContext: *mut c_void,
        completionContext: *mut c_void,
        eventType: FWPS_VSWITCH_EVENT_TYPE,
        vSwitch: *const NDIS_SWITCH_PARAMETERS,
        portId: NDIS_SWITCH_PORT_ID,
        runtimeState: *mut *mut c_void,
        runtimeStateLength: *mut usize,
    ) -> NTSTATUS,
>;

/// `FWPS_VSWITCH_RUNTIME_STATE_RESTORE_CALLBACK0`: `runtimeState` is WFP's, read-only, and
/// assumed valid only during the call (copy it); `portId` is the destination's new id; may
/// pend \[D\].
pub type FWPS_VSWITCH_RUNTIME_STATE_RESTORE_CALLBACK0 = Option<
    unsafe extern "system" fn(
        notifyContext: *mut c_void,
        completionContext: *mut c_void,
        eventType: FWPS_VSWITCH_EVENT_TYPE,
        vSwitch: *const NDIS_SWITCH_PARAMETERS,
        portId: NDIS_SWITCH_PORT_ID,
        runtimeState: *mut c_void,
        runtimeStateLength: usize,
    ) -> NTSTATUS,
>;

/// `FWPS_VSWITCH_EVENT_DISPATCH_TABLE0` (wfp-vswitch.md §1.4, \[H\]\[C\]): seven nullable
/// function pointers and no size, version or flags member.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct FWPS_VSWITCH_EVENT_DISPATCH_TABLE0 {
    /// Switch create/delete.
    pub vSwitchLifetimeNotifyFn: FWPS_VSWITCH_LIFETIME_EVENT_CALLBACK0,
    /// Port create/delete.
    pub vSwitchPortEventNotifyFn: FWPS_VSWITCH_PORT_EVENT_CALLBACK0,
    /// NIC events.
    pub vSwitchInterfaceEventNotifyFn: FWPS_VSWITCH_INTERFACE_EVENT_CALLBACK0,
    /// Filter-engine reorder (the header spells it `...NotifyRn`).
    pub vSwitchFilterEngineReorderNotifyRn: FWPS_VSWITCH_FILTER_ENGINE_REORDER_CALLBACK0,
    /// Port policy events.
    pub vSwitchPolicyEventNotifyFn: FWPS_VSWITCH_POLICY_EVENT_CALLBACK0,
    /// Runtime-state save.
    pub vSwitchRuntimeStateSaveNotifyFn: FWPS_VSWITCH_RUNTIME_STATE_SAVE_CALLBACK0,
    /// Runtime-state restore.
    pub vSwitchRuntimeStateRestoreNotifyFn: FWPS_VSWITCH_RUNTIME_STATE_RESTORE_CALLBACK0,
}

// wfp-vswitch.md §1.4: +0, +8, .. +48; sizeof 56 on x64.
assert_eq_size!(FWPS_VSWITCH_EVENT_DISPATCH_TABLE0, [u8; 56]);
const_assert_eq!(
    core::mem::offset_of!(FWPS_VSWITCH_EVENT_DISPATCH_TABLE0, vSwitchLifetimeNotifyFn),
    0
);
const_assert_eq!(
    core::mem::offset_of!(FWPS_VSWITCH_EVENT_DISPATCH_TABLE0, vSwitchPortEventNotifyFn),
    8
);
const_assert_eq!(
    core::mem::offset_of!(
        FWPS_VSWITCH_EVENT_DISPATCH_TABLE0,
        vSwitchInterfaceEventNotifyFn
    ),
    16
);
const_assert_eq!(
    core::mem::offset_of!(
        FWPS_VSWITCH_EVENT_DISPATCH_TABLE0,
        vSwitchFilterEngineReorderNotifyRn
    ),
    24
);
const_assert_eq!(
    core::mem::offset_of!(
        FWPS_VSWITCH_EVENT_DISPATCH_TABLE0,
        vSwitchPolicyEventNotifyFn
    ),
    32
);
const_assert_eq!(
    core::mem::offset_of!(
        FWPS_VSWITCH_EVENT_DISPATCH_TABLE0,
        vSwitchRuntimeStateSaveNotifyFn
    ),
    40
);
const_assert_eq!(
    core::mem::offset_of!(
        FWPS_VSWITCH_EVENT_DISPATCH_TABLE0,
        vSwitchRuntimeStateRestoreNotifyFn
    ),
    48
);

// ---------------------------------------------------------------------------------------------
// Functions (wfp-vswitch.md §1.5, [H]). `flags` must be 0 and `reserved` NULL.
// ---------------------------------------------------------------------------------------------

/// `FwpsvSwitchEventsSubscribe0` (PASSIVE_LEVEL): `providerGuid` is optional in the header,
/// but WFP routes restored state and policy events by provider GUID, so ferry passes its own.
pub type FN_FWPSV_SWITCH_EVENTS_SUBSCRIBE0 = unsafe extern "system" fn(
    providerGuid: *const GUID,
    notifyContext: *mut c_void,
    flags: u32,
    reserved: *mut c_void,
    eventDispatchTable: *const FWPS_VSWITCH_EVENT_DISPATCH_TABLE0,
    subscriptionId: *mut u32,
) -> NTSTATUS;

/// `FwpsvSwitchEventsUnsubscribe0` (PASSIVE_LEVEL).
pub type FN_FWPSV_SWITCH_EVENTS_UNSUBSCRIBE0 =
    unsafe extern "system" fn(subscriptionId: u32, flags: u32, reserved: *mut c_void);

/// `FwpsvSwitchNotifyComplete0` (<= DISPATCH_LEVEL): finishes a callback that returned
/// `STATUS_PENDING`; `status` must not be `STATUS_PENDING` \[D\].
pub type FN_FWPSV_SWITCH_NOTIFY_COMPLETE0 = unsafe extern "system" fn(
    completionContext: *mut c_void,
    status: NTSTATUS,
    flags: u32,
    reserved: *mut c_void,
);

/// Direct imports from `fwpkclnt.sys` (`Fwpkclnt.lib` in the WDK; `raw-dylib` needs no import
/// library). The `link` attribute applies only to Windows targets: on the Linux host these are
/// plain undefined symbols, never to be called there.
pub mod imports {
    use core::ffi::c_void;

    use super::super::base::{GUID, NTSTATUS};
    use super::FWPS_VSWITCH_EVENT_DISPATCH_TABLE0;

    #[cfg_attr(
        windows,
        link(name = "fwpkclnt.sys", kind = "raw-dylib", modifiers = "+verbatim")
    )]
    unsafe extern "system" {
        /// See [`super::FN_FWPSV_SWITCH_EVENTS_SUBSCRIBE0`].
        pub fn FwpsvSwitchEventsSubscribe0(
            providerGuid: *const GUID,
            notifyContext: *mut c_void,
            flags: u32,
            reserved: *mut c_void,
            eventDispatchTable: *const FWPS_VSWITCH_EVENT_DISPATCH_TABLE0,
            subscriptionId: *mut u32,
        ) -> NTSTATUS;
        /// See [`super::FN_FWPSV_SWITCH_EVENTS_UNSUBSCRIBE0`].
        pub fn FwpsvSwitchEventsUnsubscribe0(
            subscriptionId: u32,
            flags: u32,
            reserved: *mut c_void,
        );
        /// See [`super::FN_FWPSV_SWITCH_NOTIFY_COMPLETE0`].
        pub fn FwpsvSwitchNotifyComplete0(
            completionContext: *mut c_void,
            status: NTSTATUS,
            flags: u32,
            reserved: *mut c_void,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::FWPS_VSWITCH_EVENT_TYPE as E;

    #[test]
    fn event_values_follow_the_header_not_the_learn_page() {
        // wfp-vswitch.md §1.2: the values are dense 0..=13 in header order.
        let in_header_order = [
            E::VSWITCH_NONE,
            E::VSWITCH_CREATE,
            E::VSWITCH_DELETE,
            E::PORT_CREATE,
            E::PORT_DELETE,
            E::INTERFACE_CREATE,
            E::INTERFACE_DELETE,
            E::INTERFACE_CONNECT,
            E::INTERFACE_DISCONNECT,
            E::POLICY_ADD,
            E::POLICY_UPDATE,
            E::POLICY_DELETE,
            E::RUNTIME_STATE_SAVE,
            E::RUNTIME_STATE_RESTORE,
        ];
        for (expected, event) in (0..).zip(in_header_order) {
            assert_eq!(event.0, expected, "{event:?}");
        }
        // The Learn page's order would put DISCONNECT at 6; the header has DELETE there.
        assert_eq!(E::INTERFACE_DELETE.0, 6);
        assert_eq!(E::INTERFACE_DISCONNECT.0, 8);
    }
}
