//! Base types shared by every header ferry binds (`ntdef.h`, `guiddef.h`, `wdm.h`).
//!
//! x64 only: the WDK's Windows targets ferry builds for are `x86_64-pc-windows-msvc`, and the
//! sizes below are checked at compile time on every target (the Linux host included), which only
//! holds for a 64-bit target with a 2-byte `u16` alignment, 4-byte `u32` alignment and 8-byte
//! pointers. `ULONG` is written `u32` everywhere (`c_long` would be 8 bytes on Linux).

#![allow(non_camel_case_types, non_snake_case)]

use core::ffi::c_void;
use core::marker::{PhantomData, PhantomPinned};

use static_assertions::{assert_eq_align, assert_eq_size, const_assert_eq};

/// `NTSTATUS`: ferry-core's status type is `#[repr(transparent)]` over `i32`, so it crosses
/// the ABI as the C type.
pub type NTSTATUS = ferry_core::status::NtStatus;

/// `BOOLEAN` (`UCHAR`): 0 is FALSE, anything else TRUE.
pub type BOOLEAN = u8;
/// `TRUE` as a [`BOOLEAN`].
pub const TRUE: BOOLEAN = 1;
/// `FALSE` as a [`BOOLEAN`].
pub const FALSE: BOOLEAN = 0;

/// `HANDLE`: an opaque kernel or VMBus handle value.
pub type HANDLE = *mut c_void;

/// `GUID` (`guiddef.h`): 16 bytes, 4-byte aligned.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct GUID {
    /// First 32 bits.
    pub Data1: u32,
    /// Next 16 bits.
    pub Data2: u16,
    /// Next 16 bits.
    pub Data3: u16,
    /// Last 64 bits, as bytes.
    pub Data4: [u8; 8],
}

// guiddef.h: 16 bytes; wfp-vswitch.md §2.4 relies on 4-byte alignment (ExtensionId at +16,
// FeatureClassId at +548).
assert_eq_size!(GUID, [u8; 16]);
assert_eq_align!(GUID, u32);

/// `UNICODE_STRING` (`ntdef.h`): a counted UTF-16 string, not necessarily NUL-terminated.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct UNICODE_STRING {
    /// Length of the string in **bytes**, without any terminating NUL.
    pub Length: u16,
    /// Size of `Buffer` in bytes.
    pub MaximumLength: u16,
    /// The UTF-16 code units.
    pub Buffer: *mut u16,
}

// ntdef.h on x64: two USHORTs, 4 bytes of padding, a pointer at +8; 16 bytes in all.
// (Standard WDK layout; not covered by shared/reference.)
assert_eq_size!(UNICODE_STRING, [u64; 2]);
const_assert_eq!(core::mem::offset_of!(UNICODE_STRING, Buffer), 8);

/// An opaque C object that Rust only ever sees behind a pointer.
///
/// Zero-sized, `!Send`, `!Sync`, `!Unpin`: the pattern the Rustonomicon recommends for
/// incomplete C types.
#[repr(C)]
pub struct Opaque {
    _data: [u8; 0],
    _marker: PhantomData<(*mut u8, PhantomPinned)>,
}

/// `DEVICE_OBJECT` (`wdm.h`): only ever used by pointer here.
pub type DEVICE_OBJECT = Opaque;
/// `MDL` (`wdm.h`): only ever used by pointer here.
pub type MDL = Opaque;

/// Declares a `DECLARE_HANDLE` type: a nullable pointer to an incomplete struct, kept opaque.
macro_rules! declare_handle {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[repr(transparent)]
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub struct $name(*mut $crate::ffi::base::Opaque);

        impl $name {
            /// The NULL handle.
            #[must_use]
            pub const fn null() -> Self {
                Self(core::ptr::null_mut())
            }

            /// Wraps a raw handle value (from the C side, or a simulated host's own pointer).
            #[must_use]
            pub const fn from_raw(raw: *mut core::ffi::c_void) -> Self {
                Self(raw.cast())
            }

            /// The raw handle value.
            #[must_use]
            pub const fn as_raw(self) -> *mut core::ffi::c_void {
                self.0.cast()
            }

            /// Whether this is the NULL handle.
            #[must_use]
            pub fn is_null(self) -> bool {
                self.0.is_null()
            }
        }
    };
}
pub(crate) use declare_handle;

// Every `DECLARE_HANDLE` type is one pointer: 8 bytes on x64 (kmcl.md §1.2).
assert_eq_size!(*mut Opaque, u64);
