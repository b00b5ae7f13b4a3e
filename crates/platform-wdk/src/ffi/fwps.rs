//! The WFP callout side ferry registers on the vSwitch ethernet layers: the classify-time
//! structures and the callout registration of `fwpsk.h`, with the value types they carry
//! from `fwptypes.h` and `fwpstypes.h`.
//!
//! **None of this is in `shared/reference/wfp-vswitch.md`**, which covers the vSwitch event
//! API only. Every item here is *from the header it names, not in the reference notes*: the
//! declarations were read from public copies of the WDK headers (`km/fwpsk.h` of WDK
//! 10.0.22621 and the SDK's `shared/fwptypes.h` / `shared/fwpstypes.h`), and the x64 offsets
//! were computed from them with the usual MSVC x64 rules (natural alignment, 8-byte
//! pointers). What ferry relies on is pinned below with `static_assertions`, and
//! `tests/abi/` exercises it through a fake filter engine; nothing here has met a real
//! `fwpkclnt.sys` (docs/driver.md).
//!
//! **Callout version: `FWPS_CALLOUT2` / `FwpsCalloutRegister2`.** The vSwitch layers, the
//! vSwitch metadata (`vSwitchSourcePortId` ...) and version 2 of the callout structures all
//! arrived in Windows 8 (`fwpsk.h` guards all three with `NTDDI_WIN8`; Learn's "WFP changes
//! for Windows 8" lists them together). Version 2 is therefore the oldest version that was
//! designed together with the layers ferry uses; versions 0 and 1 predate them and nothing
//! documents whether the filter engine calls them there. Version 3 (`FWPS_FILTER3`, RS3) adds
//! nothing ferry reads. The classify function's `filter` argument is never read, so the
//! version only fixes the function's signature.

#![allow(non_camel_case_types, non_snake_case)]

use core::ffi::c_void;

use static_assertions::{assert_eq_align, assert_eq_size, const_assert_eq};

use super::base::{GUID, NTSTATUS, Opaque};

// ---------------------------------------------------------------------------------------------
// fwptypes.h: values and actions
// ---------------------------------------------------------------------------------------------

/// `FWP_DATA_TYPE` (`fwptypes.h`, a `v1_enum`: 4 bytes): which member of a value's union is
/// valid.
pub type FWP_DATA_TYPE = u32;
/// `FWP_EMPTY`: no value (a filter weight of `FWP_EMPTY` lets the engine choose).
pub const FWP_EMPTY: FWP_DATA_TYPE = 0;
/// `FWP_UINT8`.
pub const FWP_UINT8: FWP_DATA_TYPE = 1;
/// `FWP_UINT16`.
pub const FWP_UINT16: FWP_DATA_TYPE = 2;
/// `FWP_UINT32`.
pub const FWP_UINT32: FWP_DATA_TYPE = 3;
/// `FWP_UINT64` (the value is a pointer to the `UINT64`).
pub const FWP_UINT64: FWP_DATA_TYPE = 4;
/// `FWP_BYTE_ARRAY6_TYPE` (MAC addresses; the value is a pointer to six bytes): the 19th
/// member of the enum.
pub const FWP_BYTE_ARRAY6_TYPE: FWP_DATA_TYPE = 18;

/// `FWP_BYTE_ARRAY6` (`fwptypes.h`): a MAC address.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FWP_BYTE_ARRAY6 {
    /// The six bytes.
    pub byteArray6: [u8; 6],
}

/// `FWP_BYTE_BLOB` (`fwptypes.h`): a counted byte buffer.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct FWP_BYTE_BLOB {
    /// Bytes at `data`.
    pub size: u32,
    /// The bytes (may be NULL when `size` is 0).
    pub data: *mut u8,
}

// fwptypes.h on x64: UINT32 + 4 bytes padding + pointer.
assert_eq_size!(FWP_BYTE_BLOB, [u64; 2]);
const_assert_eq!(core::mem::offset_of!(FWP_BYTE_BLOB, data), 8);

/// The anonymous union of `FWP_VALUE0` / `FWP_CONDITION_VALUE0`: only the members ferry
/// writes or reads are declared (every other member is a pointer or smaller, so the size is
/// the same: 8 bytes).
#[repr(C)]
#[derive(Clone, Copy)]
pub union FWP_VALUE0_UNION {
    /// `FWP_UINT8`.
    pub uint8: u8,
    /// `FWP_UINT16`.
    pub uint16: u16,
    /// `FWP_UINT32`.
    pub uint32: u32,
    /// `FWP_UINT64`: a pointer to the value.
    pub uint64: *mut u64,
    /// `FWP_BYTE_ARRAY6_TYPE`: a pointer to the bytes.
    pub byteArray6: *mut FWP_BYTE_ARRAY6,
    /// `FWP_BYTE_BLOB_TYPE`.
    pub byteBlob: *mut FWP_BYTE_BLOB,
}

assert_eq_size!(FWP_VALUE0_UNION, u64);

impl core::fmt::Debug for FWP_VALUE0_UNION {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("FWP_VALUE0_UNION { .. }")
    }
}

/// `FWP_VALUE0` (`fwptypes.h`): a tagged value. `type` is `r#type` here.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct FWP_VALUE0 {
    /// Which union member is valid.
    pub r#type: FWP_DATA_TYPE,
    /// The value (the header's anonymous union).
    pub value: FWP_VALUE0_UNION,
}

impl FWP_VALUE0 {
    /// `FWP_EMPTY`.
    pub const EMPTY: Self = Self {
        r#type: FWP_EMPTY,
        value: FWP_VALUE0_UNION {
            uint64: core::ptr::null_mut(),
        },
    };
}

// fwptypes.h on x64: 4-byte tag, 4 bytes padding, 8-byte union.
assert_eq_size!(FWP_VALUE0, [u64; 2]);
const_assert_eq!(core::mem::offset_of!(FWP_VALUE0, value), 8);

/// `FWP_CONDITION_VALUE0` (`fwptypes.h`): the same layout as [`FWP_VALUE0`] (its union adds
/// only pointer members). ferry's filters have no conditions; declared for
/// [`FWPM_FILTER_CONDITION0`](super::fwpm::FWPM_FILTER_CONDITION0).
pub type FWP_CONDITION_VALUE0 = FWP_VALUE0;

/// `FWP_ACTION_TYPE` (`fwptypes.h`: `UINT32`).
pub type FWP_ACTION_TYPE = u32;
/// `FWP_ACTION_FLAG_TERMINATING`.
pub const FWP_ACTION_FLAG_TERMINATING: FWP_ACTION_TYPE = 0x0000_1000;
/// `FWP_ACTION_FLAG_NON_TERMINATING`.
pub const FWP_ACTION_FLAG_NON_TERMINATING: FWP_ACTION_TYPE = 0x0000_2000;
/// `FWP_ACTION_FLAG_CALLOUT`.
pub const FWP_ACTION_FLAG_CALLOUT: FWP_ACTION_TYPE = 0x0000_4000;
/// `FWP_ACTION_BLOCK` (`0x1 | TERMINATING`).
pub const FWP_ACTION_BLOCK: FWP_ACTION_TYPE = 0x0000_0001 | FWP_ACTION_FLAG_TERMINATING;
/// `FWP_ACTION_PERMIT` (`0x2 | TERMINATING`).
pub const FWP_ACTION_PERMIT: FWP_ACTION_TYPE = 0x0000_0002 | FWP_ACTION_FLAG_TERMINATING;
/// `FWP_ACTION_CALLOUT_TERMINATING` (`0x3 | CALLOUT | TERMINATING`).
pub const FWP_ACTION_CALLOUT_TERMINATING: FWP_ACTION_TYPE =
    0x0000_0003 | FWP_ACTION_FLAG_CALLOUT | FWP_ACTION_FLAG_TERMINATING;
/// `FWP_ACTION_CALLOUT_INSPECTION` (`0x4 | CALLOUT | NON_TERMINATING`): the callout observes;
/// it answers `FWP_ACTION_CONTINUE`.
pub const FWP_ACTION_CALLOUT_INSPECTION: FWP_ACTION_TYPE =
    0x0000_0004 | FWP_ACTION_FLAG_CALLOUT | FWP_ACTION_FLAG_NON_TERMINATING;
/// `FWP_ACTION_CONTINUE` (`0x6 | NON_TERMINATING`).
pub const FWP_ACTION_CONTINUE: FWP_ACTION_TYPE = 0x0000_0006 | FWP_ACTION_FLAG_NON_TERMINATING;

// ---------------------------------------------------------------------------------------------
// fwpstypes.h: classify-time structures
// ---------------------------------------------------------------------------------------------

/// `FWPS_INCOMING_VALUE0` (`fwpstypes.h`): one field of the layer.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct FWPS_INCOMING_VALUE0 {
    /// The field's value.
    pub value: FWP_VALUE0,
}

assert_eq_size!(FWPS_INCOMING_VALUE0, [u64; 2]);

/// `FWPS_INCOMING_VALUES0` (`fwpstypes.h`): the layer's fixed fields, indexed by the layer's
/// `FWPS_FIELD_*` enum.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct FWPS_INCOMING_VALUES0 {
    /// The run-time layer id (`FWPS_BUILTIN_LAYERS`).
    pub layerId: u16,
    /// Entries at `incomingValue`. Untrusted as an index bound: checked before every read.
    pub valueCount: u32,
    /// The values.
    pub incomingValue: *mut FWPS_INCOMING_VALUE0,
}

// fwpstypes.h on x64: UINT16 @0, UINT32 @4, pointer @8.
assert_eq_size!(FWPS_INCOMING_VALUES0, [u64; 2]);
const_assert_eq!(core::mem::offset_of!(FWPS_INCOMING_VALUES0, valueCount), 4);
const_assert_eq!(
    core::mem::offset_of!(FWPS_INCOMING_VALUES0, incomingValue),
    8
);

/// `FWPS_RIGHT_ACTION_WRITE` (`fwpstypes.h`): the callout may write `actionType`. When it is
/// clear, a higher-priority filter has decided and the callout must not change the action.
pub const FWPS_RIGHT_ACTION_WRITE: u32 = 0x0000_0001;

/// `FWPS_CLASSIFY_OUT0` (`fwpstypes.h`): the callout's answer.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FWPS_CLASSIFY_OUT0 {
    /// The action (`FWP_ACTION_*`).
    pub actionType: FWP_ACTION_TYPE,
    /// Reserved for the engine.
    pub outContext: u64,
    /// Reserved for the engine.
    pub filterId: u64,
    /// `FWPS_RIGHT_*`.
    pub rights: u32,
    /// `FWPS_CLASSIFY_OUT_FLAG_*`.
    pub flags: u32,
    /// Reserved.
    pub reserved: u32,
}

// fwpstypes.h on x64: actionType @0, outContext @8, filterId @16, rights @24, flags @28,
// reserved @32, sizeof 40.
assert_eq_size!(FWPS_CLASSIFY_OUT0, [u64; 5]);
const_assert_eq!(core::mem::offset_of!(FWPS_CLASSIFY_OUT0, outContext), 8);
const_assert_eq!(core::mem::offset_of!(FWPS_CLASSIFY_OUT0, rights), 24);
const_assert_eq!(core::mem::offset_of!(FWPS_CLASSIFY_OUT0, flags), 28);

/// `FWPS_CALLOUT_NOTIFY_TYPE` (`fwpstypes.h`): a C enum; a newtype so that an unknown value is
/// not undefined behaviour.
#[repr(transparent)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FWPS_CALLOUT_NOTIFY_TYPE(pub i32);

impl FWPS_CALLOUT_NOTIFY_TYPE {
    /// `FWPS_CALLOUT_NOTIFY_ADD_FILTER` = 0.
    pub const ADD_FILTER: Self = Self(0);
    /// `FWPS_CALLOUT_NOTIFY_DELETE_FILTER` = 1.
    pub const DELETE_FILTER: Self = Self(1);
}

/// `FWPS_FILTER2` (`fwpstypes.h`): passed to classify and notify; ferry never reads it.
pub type FWPS_FILTER2 = Opaque;

// ---------------------------------------------------------------------------------------------
// fwpsk.h: layers, fields, metadata
// ---------------------------------------------------------------------------------------------

/// `FWPS_LAYER_INGRESS_VSWITCH_ETHERNET` (`fwpsk.h`, `FWPS_BUILTIN_LAYERS`, counted in a
/// Windows 8+ build): frames entering the switch through a port (sent by that port's NIC).
pub const FWPS_LAYER_INGRESS_VSWITCH_ETHERNET: u16 = 72;
/// `FWPS_LAYER_EGRESS_VSWITCH_ETHERNET` (`fwpsk.h`): frames leaving the switch through a port.
pub const FWPS_LAYER_EGRESS_VSWITCH_ETHERNET: u16 = 73;

/// `FWPS_FIELD_INGRESS_VSWITCH_ETHERNET_ETHER_TYPE` (`fwpsk.h`): the fifth field (after the
/// source MAC, its type, the destination MAC and its type). `FWP_UINT16`.
pub const FWPS_FIELD_INGRESS_VSWITCH_ETHERNET_ETHER_TYPE: usize = 4;
/// `FWPS_FIELD_EGRESS_VSWITCH_ETHERNET_ETHER_TYPE` (`fwpsk.h`): the same position at the
/// egress layer.
pub const FWPS_FIELD_EGRESS_VSWITCH_ETHERNET_ETHER_TYPE: usize = 4;

/// `FWPS_L2_METADATA_FIELD_VSWITCH_SOURCE_PORT_ID` (`fwpsk.h`): bit of
/// `currentL2MetadataValues` saying `vSwitchSourcePortId` is set.
pub const FWPS_L2_METADATA_FIELD_VSWITCH_SOURCE_PORT_ID: u32 = 0x0000_0004;
/// `FWPS_L2_METADATA_FIELD_VSWITCH_SOURCE_NIC_INDEX` (`fwpsk.h`).
pub const FWPS_L2_METADATA_FIELD_VSWITCH_SOURCE_NIC_INDEX: u32 = 0x0000_0008;
/// `FWPS_L2_METADATA_FIELD_VSWITCH_DESTINATION_PORT_ID` (`fwpsk.h`).
pub const FWPS_L2_METADATA_FIELD_VSWITCH_DESTINATION_PORT_ID: u32 = 0x0000_0020;

/// `FWPS_INCOMING_METADATA_VALUES0` (`fwpsk.h`, Windows 8+ with `NDIS_SUPPORT_NDIS630`),
/// **only the members ferry reads**, at their x64 offsets; the rest is kept as opaque words.
///
/// The offset of `currentL2MetadataValues` (224) follows from the members before it in the
/// header: two `UINT32` (0, 4), `UINT64` (8), `FWPS_DISCARD_METADATA0` (16 bytes at 16),
/// `flowHandle` (32), two `UINT32` (40, 44), `processPath` (48), `token` (56), `processId`
/// (64), three `UINT32` (72..84), `FWPS_INBOUND_FRAGMENT_METADATA0` (12 bytes at 84),
/// `pathMtu` (96), `completionHandle` (104), `transportEndpointHandle` (112), `SCOPE_ID`
/// (120), `controlData` (128), `controlDataLength` (136), `packetDirection` (140),
/// `headerIncludeHeader` (144), its length (152), `IP_ADDRESS_PREFIX` (32 bytes, 4-aligned,
/// at 156), `frameLength` (188), `parentEndpointHandle` (192), `icmpIdAndSequence` (200),
/// `localRedirectTargetPID` (204), `originalDestination` (208), `redirectRecords` (216).
/// WFP allocates this structure; ferry only reads it.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct FWPS_INCOMING_METADATA_VALUES0 {
    /// `FWPS_METADATA_FIELD_*` bits for the members before the L2 block.
    pub currentMetadataValues: u32,
    /// Internal flags.
    pub flags: u32,
    /// `reserved` (8) through `redirectRecords` (216): not read by ferry.
    pub _members_before_l2: [u64; 27],
    /// `FWPS_L2_METADATA_FIELD_*` bits: which of the members below are set.
    pub currentL2MetadataValues: u32,
    /// `FWP_CONDITION_L2_*` flags.
    pub l2Flags: u32,
    /// Size of the MAC header.
    pub ethernetMacHeaderSize: u32,
    /// Wi-Fi operation mode.
    pub wiFiOperationMode: u32,
    /// The switch port the frame came from.
    pub vSwitchSourcePortId: u32,
    /// The NIC index on that port.
    pub vSwitchSourceNicIndex: u16,
    /// The switch port the frame is delivered to (egress).
    pub vSwitchDestinationPortId: u32,
    /// The switch's packet context.
    pub vSwitchPacketContext: *mut c_void,
    /// Sub-process tag.
    pub subProcessTag: *mut c_void,
    /// Reserved.
    pub reserved1: u64,
}

// Offsets computed from fwpsk.h (see the type's docs); not in the reference notes.
assert_eq_size!(FWPS_INCOMING_METADATA_VALUES0, [u8; 280]);
assert_eq_align!(FWPS_INCOMING_METADATA_VALUES0, u64);
const_assert_eq!(
    core::mem::offset_of!(FWPS_INCOMING_METADATA_VALUES0, currentL2MetadataValues),
    224
);
const_assert_eq!(
    core::mem::offset_of!(FWPS_INCOMING_METADATA_VALUES0, vSwitchSourcePortId),
    240
);
const_assert_eq!(
    core::mem::offset_of!(FWPS_INCOMING_METADATA_VALUES0, vSwitchSourceNicIndex),
    244
);
const_assert_eq!(
    core::mem::offset_of!(FWPS_INCOMING_METADATA_VALUES0, vSwitchDestinationPortId),
    248
);
const_assert_eq!(
    core::mem::offset_of!(FWPS_INCOMING_METADATA_VALUES0, vSwitchPacketContext),
    256
);

// ---------------------------------------------------------------------------------------------
// fwpsk.h: callout functions and registration
// ---------------------------------------------------------------------------------------------

/// `FWPS_CALLOUT_CLASSIFY_FN2` (`fwpsk.h`): called at `<= DISPATCH_LEVEL` for every frame a
/// filter of the callout matches. `layerData` is the frame's `NET_BUFFER_LIST` at the
/// vSwitch ethernet layers (positioned at the Ethernet header).
pub type FWPS_CALLOUT_CLASSIFY_FN2 = Option<
    unsafe extern "system" fn(
        inFixedValues: *const FWPS_INCOMING_VALUES0,
        inMetaValues: *const FWPS_INCOMING_METADATA_VALUES0,
        layerData: *mut c_void,
        classifyContext: *const c_void,
        filter: *const FWPS_FILTER2,
        flowContext: u64,
        classifyOut: *mut FWPS_CLASSIFY_OUT0,
    ),
>;

/// `FWPS_CALLOUT_NOTIFY_FN2` (`fwpsk.h`): a filter referencing the callout was added or
/// deleted.
pub type FWPS_CALLOUT_NOTIFY_FN2 = Option<
    unsafe extern "system" fn(
        notifyType: FWPS_CALLOUT_NOTIFY_TYPE,
        filterKey: *const GUID,
        filter: *mut FWPS_FILTER2,
    ) -> NTSTATUS,
>;

/// `FWPS_CALLOUT_FLOW_DELETE_NOTIFY_FN0` (`fwpsk.h`): a flow with a context of this callout
/// ended (ferry associates none).
pub type FWPS_CALLOUT_FLOW_DELETE_NOTIFY_FN0 =
    Option<unsafe extern "system" fn(layerId: u16, calloutId: u32, flowContext: u64)>;

/// `FWPS_CALLOUT2` (`fwpsk.h`): the run-time half of a callout.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct FWPS_CALLOUT2 {
    /// The callout's key: the same GUID as the `FWPM_CALLOUT0` added for it.
    pub calloutKey: GUID,
    /// `FWP_CALLOUT_FLAG_*` (ferry: 0).
    pub flags: u32,
    /// Classify.
    pub classifyFn: FWPS_CALLOUT_CLASSIFY_FN2,
    /// Filter add/delete notification (required by the engine).
    pub notifyFn: FWPS_CALLOUT_NOTIFY_FN2,
    /// Flow delete (optional).
    pub flowDeleteFn: FWPS_CALLOUT_FLOW_DELETE_NOTIFY_FN0,
}

// fwpsk.h on x64: GUID @0, UINT32 @16, three pointers @24/@32/@40, sizeof 48.
assert_eq_size!(FWPS_CALLOUT2, [u64; 6]);
const_assert_eq!(core::mem::offset_of!(FWPS_CALLOUT2, flags), 16);
const_assert_eq!(core::mem::offset_of!(FWPS_CALLOUT2, classifyFn), 24);
const_assert_eq!(core::mem::offset_of!(FWPS_CALLOUT2, notifyFn), 32);
const_assert_eq!(core::mem::offset_of!(FWPS_CALLOUT2, flowDeleteFn), 40);

/// `STATUS_DEVICE_BUSY` (`ntstatus.h`, `0x80000011`): `FwpsCalloutUnregisterById0`'s answer
/// while flows still carry a context of the callout.
pub const STATUS_DEVICE_BUSY: NTSTATUS =
    ferry_core::status::NtStatus(0x8000_0011_u32.cast_signed());

/// `FwpsCalloutRegister2` (PASSIVE_LEVEL): `deviceObject` is the driver's own device object.
pub type FN_FWPS_CALLOUT_REGISTER2 = unsafe extern "system" fn(
    deviceObject: *mut c_void,
    callout: *const FWPS_CALLOUT2,
    calloutId: *mut u32,
) -> NTSTATUS;

/// `FwpsCalloutUnregisterById0` (PASSIVE_LEVEL). [`STATUS_DEVICE_BUSY`] means the callout is
/// still registered.
pub type FN_FWPS_CALLOUT_UNREGISTER_BY_ID0 = unsafe extern "system" fn(calloutId: u32) -> NTSTATUS;

/// The `fwpkclnt.sys` imports of this module (`raw-dylib` on Windows targets only).
pub mod imports {
    use core::ffi::c_void;

    use super::super::base::NTSTATUS;
    use super::FWPS_CALLOUT2;

    #[cfg_attr(
        windows,
        link(name = "fwpkclnt.sys", kind = "raw-dylib", modifiers = "+verbatim")
    )]
    unsafe extern "system" {
        /// See [`super::FN_FWPS_CALLOUT_REGISTER2`].
        pub fn FwpsCalloutRegister2(
            deviceObject: *mut c_void,
            callout: *const FWPS_CALLOUT2,
            calloutId: *mut u32,
        ) -> NTSTATUS;
        /// See [`super::FN_FWPS_CALLOUT_UNREGISTER_BY_ID0`].
        pub fn FwpsCalloutUnregisterById0(calloutId: u32) -> NTSTATUS;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The one place the header-derived numbers that are not layout (so not pinned by the
    /// assertions above) are checked against the header's own arithmetic. None of them is in
    /// `shared/reference/`; all come from `fwpsk.h` / `fwptypes.h` (see the module docs).
    #[test]
    fn values_derived_from_the_headers() {
        // fwptypes.h: the action values are a small number ORed with the flag bits.
        assert_eq!(FWP_ACTION_PERMIT, 0x1002);
        assert_eq!(FWP_ACTION_BLOCK, 0x1001);
        assert_eq!(FWP_ACTION_CONTINUE, 0x2006);
        assert_eq!(FWP_ACTION_CALLOUT_INSPECTION, 0x6004);
        assert_eq!(FWP_ACTION_CALLOUT_TERMINATING, 0x5003);
        // fwpsk.h FWPS_BUILTIN_LAYERS: STREAM_PACKET_V4 is 70 (commented in the header); the
        // vSwitch ethernet layers follow STREAM_PACKET_V6.
        let stream_packet_v6 = 71;
        assert_eq!(FWPS_LAYER_INGRESS_VSWITCH_ETHERNET, stream_packet_v6 + 1);
        assert_eq!(FWPS_LAYER_EGRESS_VSWITCH_ETHERNET, stream_packet_v6 + 2);
        // ntstatus.h: a warning (severity 2), so not a success but not an error either.
        assert!(!STATUS_DEVICE_BUSY.is_success());
    }
}
