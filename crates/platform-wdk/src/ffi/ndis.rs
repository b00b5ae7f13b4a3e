//! The Hyper-V extensible-switch structures of `ntddndis.h` / `ndis.h` that the WFP vSwitch
//! callbacks hand to ferry.
//!
//! Every figure comes from `shared/reference/wfp-vswitch.md` §2 (\[H\] header, \[C\] layout
//! computed there). WFP owns all of these: ferry only reads them, through pointers it received
//! in a callback, and checks `Header.Size` before reading a field that a revision may lack.

#![allow(non_camel_case_types, non_snake_case)]

use static_assertions::{assert_eq_align, assert_eq_size, const_assert_eq};

use super::base::{BOOLEAN, GUID};

/// `NDIS_SWITCH_PORT_ID` (`UINT32`).
pub type NDIS_SWITCH_PORT_ID = u32;
/// `NDIS_SWITCH_NIC_INDEX` (`USHORT`).
pub type NDIS_SWITCH_NIC_INDEX = u16;
/// `NDIS_SWITCH_DEFAULT_PORT_ID`.
pub const NDIS_SWITCH_DEFAULT_PORT_ID: NDIS_SWITCH_PORT_ID = 0;
/// `NDIS_SWITCH_DEFAULT_NIC_INDEX`.
pub const NDIS_SWITCH_DEFAULT_NIC_INDEX: NDIS_SWITCH_NIC_INDEX = 0;

/// `NDIS_OBJECT_HEADER` (wfp-vswitch.md §2.1): type, revision and size of the object it heads.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NDIS_OBJECT_HEADER {
    /// `NDIS_OBJECT_TYPE_*`.
    pub Type: u8,
    /// Structure revision.
    pub Revision: u8,
    /// Size in bytes of the whole object as the producer wrote it.
    pub Size: u16,
}

/// `NDIS_OBJECT_TYPE_DEFAULT`.
pub const NDIS_OBJECT_TYPE_DEFAULT: u8 = 0x80;

// wfp-vswitch.md §2.1: 4 bytes.
assert_eq_size!(NDIS_OBJECT_HEADER, u32);

/// `IF_MAX_STRING_SIZE`.
pub const IF_MAX_STRING_SIZE: usize = 256;
/// `IF_MAX_PHYS_ADDRESS_LENGTH` (= `NDIS_MAX_PHYS_ADDRESS_LENGTH`).
pub const IF_MAX_PHYS_ADDRESS_LENGTH: usize = 32;

/// `IF_COUNTED_STRING` (`IF_COUNTED_STRING_LH`): `Length` in **bytes**, then room for 256
/// UTF-16 units and a NUL. All the switch's name types are this struct.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct IF_COUNTED_STRING {
    /// Length of the string in bytes, without a terminating NUL. Untrusted: may exceed the
    /// array.
    pub Length: u16,
    /// The UTF-16 code units.
    pub String: [u16; IF_MAX_STRING_SIZE + 1],
}

// wfp-vswitch.md §2.1: sizeof 516 (0x204), align 2.
assert_eq_size!(IF_COUNTED_STRING, [u8; 516]);
assert_eq_align!(IF_COUNTED_STRING, u16);

impl IF_COUNTED_STRING {
    /// The counted UTF-16 units, clamped to the array: a `Length` that is odd or larger than
    /// the array never reads past it.
    #[must_use]
    pub fn units(&self) -> &[u16] {
        let count = usize::from(self.Length / 2).min(self.String.len());
        self.String.get(..count).unwrap_or(&[])
    }
}

/// `NDIS_SWITCH_NAME` and the other switch name typedefs.
pub type NDIS_SWITCH_NAME = IF_COUNTED_STRING;

/// `NDIS_SWITCH_PARAMETERS` (wfp-vswitch.md §2.2): what `vSwitch` points to. Inside WFP
/// callbacks it reflects the switch's initial state: `NumSwitchPorts` and `IsActive` may
/// still be 0 \[D\].
#[repr(C)]
#[derive(Clone, Copy)]
pub struct NDIS_SWITCH_PARAMETERS {
    /// Type `NDIS_OBJECT_TYPE_DEFAULT`, revision 1.
    pub Header: NDIS_OBJECT_HEADER,
    /// Reserved.
    pub Flags: u32,
    /// Switch name.
    pub SwitchName: NDIS_SWITCH_NAME,
    /// Switch friendly name.
    pub SwitchFriendlyName: NDIS_SWITCH_NAME,
    /// Port count.
    pub NumSwitchPorts: u32,
    /// Whether the switch is active.
    pub IsActive: BOOLEAN,
}

/// `NDIS_SWITCH_PARAMETERS_REVISION_1`.
pub const NDIS_SWITCH_PARAMETERS_REVISION_1: u8 = 1;
/// `NDIS_SIZEOF_NDIS_SWITCH_PARAMETERS_REVISION_1`: through `IsActive` (wfp-vswitch.md §2.2).
pub const NDIS_SIZEOF_NDIS_SWITCH_PARAMETERS_REVISION_1: usize = 1045;

// wfp-vswitch.md §2.2: offsets 0, 4, 8, 524, 1040, 1044; sizeof 1048, align 4.
assert_eq_size!(NDIS_SWITCH_PARAMETERS, [u8; 1048]);
assert_eq_align!(NDIS_SWITCH_PARAMETERS, u32);
const_assert_eq!(core::mem::offset_of!(NDIS_SWITCH_PARAMETERS, Flags), 4);
const_assert_eq!(core::mem::offset_of!(NDIS_SWITCH_PARAMETERS, SwitchName), 8);
const_assert_eq!(
    core::mem::offset_of!(NDIS_SWITCH_PARAMETERS, SwitchFriendlyName),
    524
);
const_assert_eq!(
    core::mem::offset_of!(NDIS_SWITCH_PARAMETERS, NumSwitchPorts),
    1040
);
const_assert_eq!(
    core::mem::offset_of!(NDIS_SWITCH_PARAMETERS, IsActive),
    1044
);
// Revision 1 ends right after the 1-byte `IsActive`.
#[allow(clippy::arithmetic_side_effects)] // Compile-time constants; overflow fails the build.
const _: () = assert!(
    core::mem::offset_of!(NDIS_SWITCH_PARAMETERS, IsActive) + 1
        == NDIS_SIZEOF_NDIS_SWITCH_PARAMETERS_REVISION_1
);

/// `NDIS_SWITCH_PORT_TYPE` (wfp-vswitch.md §2.3): a C enum, kept as its raw value.
#[repr(transparent)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NDIS_SWITCH_PORT_TYPE(pub i32);

impl NDIS_SWITCH_PORT_TYPE {
    /// `NdisSwitchPortTypeGeneric`.
    pub const GENERIC: Self = Self(0);
    /// `NdisSwitchPortTypeExternal`.
    pub const EXTERNAL: Self = Self(1);
    /// `NdisSwitchPortTypeSynthetic`.
    pub const SYNTHETIC: Self = Self(2);
    /// `NdisSwitchPortTypeEmulated`.
    pub const EMULATED: Self = Self(3);
    /// `NdisSwitchPortTypeInternal`.
    pub const INTERNAL: Self = Self(4);
}

/// `NDIS_SWITCH_PORT_STATE` (wfp-vswitch.md §2.3): a C enum, kept as its raw value.
#[repr(transparent)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NDIS_SWITCH_PORT_STATE(pub i32);

impl NDIS_SWITCH_PORT_STATE {
    /// `NdisSwitchPortStateUnknown`.
    pub const UNKNOWN: Self = Self(0);
    /// `NdisSwitchPortStateCreated`.
    pub const CREATED: Self = Self(1);
    /// `NdisSwitchPortStateTeardown`.
    pub const TEARDOWN: Self = Self(2);
    /// `NdisSwitchPortStateDeleted`.
    pub const DELETED: Self = Self(3);
}

/// `NDIS_SWITCH_PORT_PARAMETERS_FLAG_UNTRUSTED_INTERNAL_PORT` (NDIS 6.50).
pub const NDIS_SWITCH_PORT_PARAMETERS_FLAG_UNTRUSTED_INTERNAL_PORT: u32 = 0x1;
/// `NDIS_SWITCH_PORT_PARAMETERS_FLAG_RESTORING_PORT` (NDIS 6.60): the port has saved state
/// pending restore, so its create comes before its restore (wfp-vswitch.md §2.3, §2.6).
pub const NDIS_SWITCH_PORT_PARAMETERS_FLAG_RESTORING_PORT: u32 = 0x2;

/// `NDIS_SWITCH_PORT_PARAMETERS` (wfp-vswitch.md §2.3): what `vSwitchPort` points to.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct NDIS_SWITCH_PORT_PARAMETERS {
    /// Object header.
    pub Header: NDIS_OBJECT_HEADER,
    /// `NDIS_SWITCH_PORT_PARAMETERS_FLAG_*`.
    pub Flags: u32,
    /// The port's id on this host (it may differ after a migration).
    pub PortId: NDIS_SWITCH_PORT_ID,
    /// Port name.
    pub PortName: NDIS_SWITCH_NAME,
    /// Port friendly name.
    pub PortFriendlyName: NDIS_SWITCH_NAME,
    /// Port type.
    pub PortType: NDIS_SWITCH_PORT_TYPE,
    /// Whether this is a validation port.
    pub IsValidationPort: BOOLEAN,
    /// Port state.
    pub PortState: NDIS_SWITCH_PORT_STATE,
}

/// `NDIS_SIZEOF_NDIS_SWITCH_PORT_PARAMETERS_REVISION_1` (wfp-vswitch.md §2.3).
pub const NDIS_SIZEOF_NDIS_SWITCH_PORT_PARAMETERS_REVISION_1: usize = 1056;

// wfp-vswitch.md §2.3: offsets 0, 4, 8, 12, 528, 1044, 1048, 1052; sizeof 1056.
assert_eq_size!(
    NDIS_SWITCH_PORT_PARAMETERS,
    [u8; NDIS_SIZEOF_NDIS_SWITCH_PORT_PARAMETERS_REVISION_1]
);
const_assert_eq!(core::mem::offset_of!(NDIS_SWITCH_PORT_PARAMETERS, Flags), 4);
const_assert_eq!(
    core::mem::offset_of!(NDIS_SWITCH_PORT_PARAMETERS, PortId),
    8
);
const_assert_eq!(
    core::mem::offset_of!(NDIS_SWITCH_PORT_PARAMETERS, PortName),
    12
);
const_assert_eq!(
    core::mem::offset_of!(NDIS_SWITCH_PORT_PARAMETERS, PortFriendlyName),
    528
);
const_assert_eq!(
    core::mem::offset_of!(NDIS_SWITCH_PORT_PARAMETERS, PortType),
    1044
);
const_assert_eq!(
    core::mem::offset_of!(NDIS_SWITCH_PORT_PARAMETERS, IsValidationPort),
    1048
);
const_assert_eq!(
    core::mem::offset_of!(NDIS_SWITCH_PORT_PARAMETERS, PortState),
    1052
);

/// `NDIS_SWITCH_NIC_TYPE` (wfp-vswitch.md §2.3): a C enum, kept as its raw value.
#[repr(transparent)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NDIS_SWITCH_NIC_TYPE(pub i32);

impl NDIS_SWITCH_NIC_TYPE {
    /// `NdisSwitchNicTypeExternal`.
    pub const EXTERNAL: Self = Self(0);
    /// `NdisSwitchNicTypeSynthetic`.
    pub const SYNTHETIC: Self = Self(1);
    /// `NdisSwitchNicTypeEmulated`.
    pub const EMULATED: Self = Self(2);
    /// `NdisSwitchNicTypeInternal`.
    pub const INTERNAL: Self = Self(3);
}

/// `NDIS_SWITCH_NIC_STATE` (wfp-vswitch.md §2.3): a C enum, kept as its raw value.
#[repr(transparent)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NDIS_SWITCH_NIC_STATE(pub i32);

impl NDIS_SWITCH_NIC_STATE {
    /// `NdisSwitchNicStateUnknown`.
    pub const UNKNOWN: Self = Self(0);
    /// `NdisSwitchNicStateCreated`.
    pub const CREATED: Self = Self(1);
    /// `NdisSwitchNicStateConnected`.
    pub const CONNECTED: Self = Self(2);
    /// `NdisSwitchNicStateDisconnected`.
    pub const DISCONNECTED: Self = Self(3);
    /// `NdisSwitchNicStateDeleted`.
    pub const DELETED: Self = Self(4);
}

/// `NDIS_SWITCH_NIC_FLAGS_NIC_INITIALIZING` (NDIS 6.40).
pub const NDIS_SWITCH_NIC_FLAGS_NIC_INITIALIZING: u32 = 0x1;
/// `NDIS_SWITCH_NIC_FLAGS_NIC_SUSPENDED` (NDIS 6.50).
pub const NDIS_SWITCH_NIC_FLAGS_NIC_SUSPENDED: u32 = 0x2;
/// `NDIS_SWITCH_NIC_FLAGS_MAPPED_NIC_UPDATED` (NDIS 6.60).
pub const NDIS_SWITCH_NIC_FLAGS_MAPPED_NIC_UPDATED: u32 = 0x4;
/// `NDIS_SWITCH_NIC_FLAGS_NIC_SUSPENDED_LM` (NDIS 6.80).
pub const NDIS_SWITCH_NIC_FLAGS_NIC_SUSPENDED_LM: u32 = 0x10;

/// `NDIS_SWITCH_NIC_PARAMETERS` at revision 2 (NDIS >= 6.40, wfp-vswitch.md §2.3): what
/// `vSwitchNic` points to. A revision-1 producer writes only the first 2207 bytes: check
/// `Header.Size` before reading `NdisReserved`.
#[repr(C)]
pub struct NDIS_SWITCH_NIC_PARAMETERS {
    /// Object header.
    pub Header: NDIS_OBJECT_HEADER,
    /// `NDIS_SWITCH_NIC_FLAGS_*`.
    pub Flags: u32,
    /// NIC name.
    pub NicName: NDIS_SWITCH_NAME,
    /// NIC friendly name.
    pub NicFriendlyName: NDIS_SWITCH_NAME,
    /// The port the NIC connects to.
    pub PortId: NDIS_SWITCH_PORT_ID,
    /// NIC index on the port.
    pub NicIndex: NDIS_SWITCH_NIC_INDEX,
    /// NIC type.
    pub NicType: NDIS_SWITCH_NIC_TYPE,
    /// NIC state.
    pub NicState: NDIS_SWITCH_NIC_STATE,
    /// VM name.
    pub VmName: NDIS_SWITCH_NAME,
    /// VM friendly name.
    pub VmFriendlyName: NDIS_SWITCH_NAME,
    /// Network configuration instance id.
    pub NetCfgInstanceId: GUID,
    /// MTU.
    pub MTU: u32,
    /// NUMA node.
    pub NumaNodeId: u16,
    /// Permanent MAC address.
    pub PermanentMacAddress: [u8; IF_MAX_PHYS_ADDRESS_LENGTH],
    /// MAC address configured for the VM.
    pub VMMacAddress: [u8; IF_MAX_PHYS_ADDRESS_LENGTH],
    /// Current MAC address.
    pub CurrentMacAddress: [u8; IF_MAX_PHYS_ADDRESS_LENGTH],
    /// Whether a virtual function is assigned.
    pub VFAssigned: BOOLEAN,
    /// Reserved (revision 2).
    pub NdisReserved: [u64; 2],
}

/// `NDIS_SIZEOF_NDIS_SWITCH_NIC_PARAMETERS_REVISION_1`: through `VFAssigned`.
pub const NDIS_SIZEOF_NDIS_SWITCH_NIC_PARAMETERS_REVISION_1: usize = 2207;
/// `NDIS_SIZEOF_NDIS_SWITCH_NIC_PARAMETERS_REVISION_2`.
pub const NDIS_SIZEOF_NDIS_SWITCH_NIC_PARAMETERS_REVISION_2: usize = 2224;

// wfp-vswitch.md §2.3, NIC table: every offset, sizeof 2224 (revision 2).
assert_eq_size!(
    NDIS_SWITCH_NIC_PARAMETERS,
    [u8; NDIS_SIZEOF_NDIS_SWITCH_NIC_PARAMETERS_REVISION_2]
);
const_assert_eq!(core::mem::offset_of!(NDIS_SWITCH_NIC_PARAMETERS, Flags), 4);
const_assert_eq!(
    core::mem::offset_of!(NDIS_SWITCH_NIC_PARAMETERS, NicName),
    8
);
const_assert_eq!(
    core::mem::offset_of!(NDIS_SWITCH_NIC_PARAMETERS, NicFriendlyName),
    524
);
const_assert_eq!(
    core::mem::offset_of!(NDIS_SWITCH_NIC_PARAMETERS, PortId),
    1040
);
const_assert_eq!(
    core::mem::offset_of!(NDIS_SWITCH_NIC_PARAMETERS, NicIndex),
    1044
);
const_assert_eq!(
    core::mem::offset_of!(NDIS_SWITCH_NIC_PARAMETERS, NicType),
    1048
);
const_assert_eq!(
    core::mem::offset_of!(NDIS_SWITCH_NIC_PARAMETERS, NicState),
    1052
);
const_assert_eq!(
    core::mem::offset_of!(NDIS_SWITCH_NIC_PARAMETERS, VmName),
    1056
);
const_assert_eq!(
    core::mem::offset_of!(NDIS_SWITCH_NIC_PARAMETERS, VmFriendlyName),
    1572
);
const_assert_eq!(
    core::mem::offset_of!(NDIS_SWITCH_NIC_PARAMETERS, NetCfgInstanceId),
    2088
);
const_assert_eq!(core::mem::offset_of!(NDIS_SWITCH_NIC_PARAMETERS, MTU), 2104);
const_assert_eq!(
    core::mem::offset_of!(NDIS_SWITCH_NIC_PARAMETERS, NumaNodeId),
    2108
);
const_assert_eq!(
    core::mem::offset_of!(NDIS_SWITCH_NIC_PARAMETERS, PermanentMacAddress),
    2110
);
const_assert_eq!(
    core::mem::offset_of!(NDIS_SWITCH_NIC_PARAMETERS, VMMacAddress),
    2142
);
const_assert_eq!(
    core::mem::offset_of!(NDIS_SWITCH_NIC_PARAMETERS, CurrentMacAddress),
    2174
);
const_assert_eq!(
    core::mem::offset_of!(NDIS_SWITCH_NIC_PARAMETERS, VFAssigned),
    2206
);
const_assert_eq!(
    core::mem::offset_of!(NDIS_SWITCH_NIC_PARAMETERS, NdisReserved),
    2208
);
// Revision 1 ends right after the 1-byte `VFAssigned`.
#[allow(clippy::arithmetic_side_effects)] // Compile-time constants; overflow fails the build.
const _: () = assert!(
    core::mem::offset_of!(NDIS_SWITCH_NIC_PARAMETERS, VFAssigned) + 1
        == NDIS_SIZEOF_NDIS_SWITCH_NIC_PARAMETERS_REVISION_1
);

/// `NDIS_SWITCH_PORT_ARRAY` / `NDIS_SWITCH_NIC_ARRAY` header (wfp-vswitch.md §2.3): the n-th
/// element is at `FirstElementOffset + ElementSize * n` from the start of the array.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct NDIS_SWITCH_ARRAY_HEADER {
    /// Object header.
    pub Header: NDIS_OBJECT_HEADER,
    /// Reserved.
    pub Flags: u32,
    /// Offset of the first element from the start of the array (a `USHORT`).
    pub FirstElementOffset: u16,
    /// Element count.
    pub NumElements: u32,
    /// Size of each element.
    pub ElementSize: u32,
}

/// `NDIS_SWITCH_PORT_ARRAY`: [`NDIS_SWITCH_PORT_PARAMETERS`] elements.
pub type NDIS_SWITCH_PORT_ARRAY = NDIS_SWITCH_ARRAY_HEADER;
/// `NDIS_SWITCH_NIC_ARRAY`: [`NDIS_SWITCH_NIC_PARAMETERS`] elements.
pub type NDIS_SWITCH_NIC_ARRAY = NDIS_SWITCH_ARRAY_HEADER;

// wfp-vswitch.md §2.3: offsets 0, 4, 8 (USHORT), 12, 16; 20 bytes.
assert_eq_size!(NDIS_SWITCH_ARRAY_HEADER, [u8; 20]);
const_assert_eq!(
    core::mem::offset_of!(NDIS_SWITCH_ARRAY_HEADER, FirstElementOffset),
    8
);
const_assert_eq!(
    core::mem::offset_of!(NDIS_SWITCH_ARRAY_HEADER, NumElements),
    12
);
const_assert_eq!(
    core::mem::offset_of!(NDIS_SWITCH_ARRAY_HEADER, ElementSize),
    16
);

/// `NDIS_SWITCH_NIC_SAVE_STATE` at revision 2 (NDIS >= 6.50, wfp-vswitch.md §2.4).
///
/// `PortId` (u32) comes **before** `NicIndex` (u16): some older Learn revisions swap them; both
/// real headers agree on this order. The saved bytes are not a member: they start at
/// `SaveDataOffset` from the start of the structure. A revision-1 producer writes only 568
/// bytes (no `SaveDataSizeOverflow`): check `Header.Revision`/`Header.Size` before reading it.
/// ferry does not build this structure (WFP does, from the callouts' blobs); it is bound for
/// tests and diagnostics.
///
/// **UNCONFIRMED** (§2.4, §6): what `SaveDataSizeOverflow` means beyond "size in addition to
/// `SaveDataSize`", and the value of `NDIS_SWITCH_NIC_SAVE_STATE_MAX_DATA_SIZE` (no header
/// defines it; `SaveDataSize` is a u16, so 65535 is the hard cap).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct NDIS_SWITCH_NIC_SAVE_STATE {
    /// Type `NDIS_OBJECT_TYPE_DEFAULT`; `Size` is the whole buffer.
    pub Header: NDIS_OBJECT_HEADER,
    /// Reserved for NDIS.
    pub Flags: u32,
    /// The port on the host that saved or restores.
    pub PortId: NDIS_SWITCH_PORT_ID,
    /// Always 0 per the docs.
    pub NicIndex: NDIS_SWITCH_NIC_INDEX,
    /// Who owns the data.
    pub ExtensionId: GUID,
    /// Diagnostics only.
    pub ExtensionFriendlyName: IF_COUNTED_STRING,
    /// Optional feature class, zero if unused.
    pub FeatureClassId: GUID,
    /// On input: space available; on output: bytes written.
    pub SaveDataSize: u16,
    /// Offset of the data from the start of this structure.
    pub SaveDataOffset: u16,
    /// Revision 2 only.
    pub SaveDataSizeOverflow: u32,
}

/// `NDIS_SWITCH_NIC_SAVE_STATE_REVISION_1`.
pub const NDIS_SWITCH_NIC_SAVE_STATE_REVISION_1: u8 = 1;
/// `NDIS_SWITCH_NIC_SAVE_STATE_REVISION_2` (NDIS 6.50, adds `SaveDataSizeOverflow`).
pub const NDIS_SWITCH_NIC_SAVE_STATE_REVISION_2: u8 = 2;
/// `NDIS_SIZEOF_NDIS_SWITCH_NIC_SAVE_STATE_REVISION_1`: through `SaveDataOffset`.
pub const NDIS_SIZEOF_NDIS_SWITCH_NIC_SAVE_STATE_REVISION_1: usize = 568;
/// `NDIS_SIZEOF_NDIS_SWITCH_NIC_SAVE_STATE_REVISION_2`: through `SaveDataSizeOverflow`.
pub const NDIS_SIZEOF_NDIS_SWITCH_NIC_SAVE_STATE_REVISION_2: usize = 572;

// wfp-vswitch.md §2.4: +0, +4, +8 (PortId u32), +12 (NicIndex u16, 2 bytes padding), +16,
// +32, +548, +564, +566, +568; sizeof 572 (568 at revision 1), align 4.
assert_eq_size!(
    NDIS_SWITCH_NIC_SAVE_STATE,
    [u8; NDIS_SIZEOF_NDIS_SWITCH_NIC_SAVE_STATE_REVISION_2]
);
assert_eq_align!(NDIS_SWITCH_NIC_SAVE_STATE, u32);
const_assert_eq!(core::mem::offset_of!(NDIS_SWITCH_NIC_SAVE_STATE, Flags), 4);
const_assert_eq!(core::mem::offset_of!(NDIS_SWITCH_NIC_SAVE_STATE, PortId), 8);
const_assert_eq!(
    core::mem::offset_of!(NDIS_SWITCH_NIC_SAVE_STATE, NicIndex),
    12
);
const_assert_eq!(
    core::mem::offset_of!(NDIS_SWITCH_NIC_SAVE_STATE, ExtensionId),
    16
);
const_assert_eq!(
    core::mem::offset_of!(NDIS_SWITCH_NIC_SAVE_STATE, ExtensionFriendlyName),
    32
);
const_assert_eq!(
    core::mem::offset_of!(NDIS_SWITCH_NIC_SAVE_STATE, FeatureClassId),
    548
);
const_assert_eq!(
    core::mem::offset_of!(NDIS_SWITCH_NIC_SAVE_STATE, SaveDataSize),
    564
);
const_assert_eq!(
    core::mem::offset_of!(NDIS_SWITCH_NIC_SAVE_STATE, SaveDataOffset),
    566
);
const_assert_eq!(
    core::mem::offset_of!(NDIS_SWITCH_NIC_SAVE_STATE, SaveDataSizeOverflow),
    NDIS_SIZEOF_NDIS_SWITCH_NIC_SAVE_STATE_REVISION_1
);

#[cfg(test)]
mod tests {
    use super::{IF_COUNTED_STRING, IF_MAX_STRING_SIZE};

    fn counted(length: u16) -> IF_COUNTED_STRING {
        let mut string = [0u16; IF_MAX_STRING_SIZE + 1];
        for (unit, value) in string.iter_mut().zip(1u16..) {
            *unit = value;
        }
        IF_COUNTED_STRING {
            Length: length,
            String: string,
        }
    }

    #[test]
    fn counted_string_length_is_in_bytes() {
        assert_eq!(counted(6).units(), &[1, 2, 3]);
        // An odd byte count does not reach into half a unit.
        assert_eq!(counted(7).units(), &[1, 2, 3]);
        assert!(counted(0).units().is_empty());
    }

    #[test]
    fn hostile_counted_string_length_stays_inside_the_array() {
        assert_eq!(counted(u16::MAX).units().len(), IF_MAX_STRING_SIZE + 1);
        assert_eq!(counted(514).units().len(), 257);
        assert_eq!(counted(516).units().len(), 257);
    }
}
