//! The part of NDIS's packet structures the vSwitch classify path reads (`ndis.h`, `nbl.h`):
//! the first members of `NET_BUFFER_LIST` and `NET_BUFFER`, and `NdisGetDataBuffer`
//! (`ndis.sys`).
//!
//! **Not in `shared/reference/`**: *from `ndis.h`, not in the reference notes*. Both
//! structures start with a union of a member struct and an `SLIST_HEADER`; ferry declares only
//! the member struct's leading fields, at their x64 offsets, and never allocates either
//! structure (NDIS/WFP own them; the ABI tests' fake builds its own with these prefixes).

#![allow(non_camel_case_types, non_snake_case)]

use core::ffi::c_void;

use static_assertions::const_assert_eq;

use super::base::MDL;

/// `NET_BUFFER` (`ndis.h`): one frame. Only the leading members are declared.
#[repr(C)]
#[derive(Debug)]
pub struct NET_BUFFER {
    /// The next frame of the same list, or NULL.
    pub Next: *mut NET_BUFFER,
    /// The MDL holding the current data start.
    pub CurrentMdl: *mut MDL,
    /// Offset of the data start in `CurrentMdl`.
    pub CurrentMdlOffset: u32,
    /// Padding before the 8-aligned union below.
    pub _union_alignment: u32,
    /// Bytes of frame data (a union with `SIZE_T stDataLength`; ferry reads the `ULONG`).
    pub DataLength: u32,
    /// Padding of the `SIZE_T` union member.
    pub _data_length_high: u32,
    /// The MDL chain.
    pub MdlChain: *mut MDL,
    /// Offset of the data start in the chain.
    pub DataOffset: u32,
}

// ndis.h on x64: Next @0, CurrentMdl @8, CurrentMdlOffset @16, DataLength @24 (the union
// with SIZE_T is 8-aligned), MdlChain @32, DataOffset @40.
const_assert_eq!(core::mem::offset_of!(NET_BUFFER, CurrentMdl), 8);
const_assert_eq!(core::mem::offset_of!(NET_BUFFER, DataLength), 24);
const_assert_eq!(core::mem::offset_of!(NET_BUFFER, MdlChain), 32);
const_assert_eq!(core::mem::offset_of!(NET_BUFFER, DataOffset), 40);

/// `NET_BUFFER_LIST` (`ndis.h`): a list of frames with shared out-of-band data. Only the two
/// leading members are declared.
#[repr(C)]
#[derive(Debug)]
pub struct NET_BUFFER_LIST {
    /// The next list in a chain, or NULL.
    pub Next: *mut NET_BUFFER_LIST,
    /// The first frame.
    pub FirstNetBuffer: *mut NET_BUFFER,
}

// ndis.h on x64: Next @0, FirstNetBuffer @8.
const_assert_eq!(core::mem::offset_of!(NET_BUFFER_LIST, FirstNetBuffer), 8);

/// `NdisGetDataBuffer` (`ndis.sys`, `<= DISPATCH_LEVEL`): a pointer to `BytesNeeded`
/// contiguous bytes at the frame's data start, either in place or copied to `Storage`; NULL
/// if the frame is shorter than `BytesNeeded`, or if the bytes are not contiguous and
/// `Storage` is NULL. `AlignMultiple` 1 and `AlignOffset` 0 ask for no alignment.
pub type FN_NDIS_GET_DATA_BUFFER = unsafe extern "system" fn(
    NetBuffer: *mut NET_BUFFER,
    BytesNeeded: u32,
    Storage: *mut c_void,
    AlignMultiple: u32,
    AlignOffset: u32,
) -> *mut c_void;

/// The `ndis.sys` import (`raw-dylib` on Windows targets only).
pub mod imports {
    use core::ffi::c_void;

    use super::NET_BUFFER;

    #[cfg_attr(
        windows,
        link(name = "ndis.sys", kind = "raw-dylib", modifiers = "+verbatim")
    )]
    unsafe extern "system" {
        /// See [`super::FN_NDIS_GET_DATA_BUFFER`].
        pub fn NdisGetDataBuffer(
            NetBuffer: *mut NET_BUFFER,
            BytesNeeded: u32,
            Storage: *mut c_void,
            AlignMultiple: u32,
            AlignOffset: u32,
        ) -> *mut c_void;
    }
}
