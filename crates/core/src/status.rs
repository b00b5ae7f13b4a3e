//! `NTSTATUS` values that cross the core/platform boundary.
//!
//! Core returns these to the platform for the callbacks whose contract is an `NTSTATUS`
//! (`EvtVmbChannelSavePacket`, `EvtVmbChannelOpened`, the vSwitch save/restore callbacks).
//! Values are the standard ones from the WDK's `ntstatus.h`; the subset KMCL names is listed in
//! `shared/reference/kmcl.md` §1.8.

use core::fmt;

/// A Windows `NTSTATUS`: negative (severity bits `11`) is an error, non-negative is success or
/// information.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
#[repr(transparent)]
pub struct NtStatus(pub i32);

/// Reinterprets an `ntstatus.h` hexadecimal literal (`0xC000_0023`) as the signed value.
const fn nt(value: u32) -> NtStatus {
    NtStatus(value.cast_signed())
}

impl NtStatus {
    /// `STATUS_SUCCESS`.
    pub const SUCCESS: Self = nt(0x0000_0000);
    /// `STATUS_PENDING`: the operation completes later (vSwitch save via
    /// `FwpsvSwitchNotifyComplete0`).
    pub const PENDING: Self = nt(0x0000_0103);
    /// `STATUS_BUFFER_OVERFLOW` (a warning): partial data written, call again.
    pub const BUFFER_OVERFLOW: Self = nt(0x8000_0005);
    /// `STATUS_UNSUCCESSFUL`.
    pub const UNSUCCESSFUL: Self = nt(0xC000_0001);
    /// `STATUS_INVALID_PARAMETER`.
    pub const INVALID_PARAMETER: Self = nt(0xC000_000D);
    /// `STATUS_MORE_PROCESSING_REQUIRED`: `VmbChannelRestoreFromBuffer` wants more chunks.
    pub const MORE_PROCESSING_REQUIRED: Self = nt(0xC000_0016);
    /// `STATUS_BUFFER_TOO_SMALL`: the first `EvtVmbChannelSavePacket` call's answer when there
    /// is state to save.
    pub const BUFFER_TOO_SMALL: Self = nt(0xC000_0023);
    /// `STATUS_OBJECT_NAME_COLLISION`: an object with this name/id exists already.
    pub const OBJECT_NAME_COLLISION: Self = nt(0xC000_0035);
    /// `STATUS_DATA_ERROR`: saved state that does not decode.
    pub const DATA_ERROR: Self = nt(0xC000_003E);
    /// `STATUS_CRC_ERROR`: saved state whose checksum does not match.
    pub const CRC_ERROR: Self = nt(0xC000_003F);
    /// `STATUS_REVISION_MISMATCH`: saved state of an unsupported major format version.
    pub const REVISION_MISMATCH: Self = nt(0xC000_0059);
    /// `STATUS_INSUFFICIENT_RESOURCES`: a fixed-capacity table is full.
    pub const INSUFFICIENT_RESOURCES: Self = nt(0xC000_009A);
    /// `STATUS_NOT_SUPPORTED`.
    pub const NOT_SUPPORTED: Self = nt(0xC000_00BB);
    /// `STATUS_INVALID_PARAMETER_1`.
    pub const INVALID_PARAMETER_1: Self = nt(0xC000_00EF);
    /// `STATUS_INVALID_PARAMETER_2`.
    pub const INVALID_PARAMETER_2: Self = nt(0xC000_00F0);
    /// `STATUS_INVALID_PARAMETER_3`.
    pub const INVALID_PARAMETER_3: Self = nt(0xC000_00F1);
    /// `STATUS_CANCELLED`: an operation retired before it finished.
    pub const CANCELLED: Self = nt(0xC000_0120);
    /// `STATUS_INVALID_DEVICE_STATE`: the call is not legal in the channel's current state.
    pub const INVALID_DEVICE_STATE: Self = nt(0xC000_0184);
    /// `STATUS_INVALID_BUFFER_SIZE`: a size that cannot be expressed or accepted.
    pub const INVALID_BUFFER_SIZE: Self = nt(0xC000_0206);
    /// `STATUS_NOT_FOUND`.
    pub const NOT_FOUND: Self = nt(0xC000_0225);
    /// `STATUS_DEVICE_REMOVED`: the channel is shutting down.
    pub const DEVICE_REMOVED: Self = nt(0xC000_02B6);

    /// `NT_SUCCESS(status)`: true for success and informational values.
    #[must_use]
    pub const fn is_success(self) -> bool {
        self.0 >= 0
    }

    /// The symbolic name, when this is one of the values above.
    #[must_use]
    pub const fn name(self) -> Option<&'static str> {
        Some(match self {
            Self::SUCCESS => "STATUS_SUCCESS",
            Self::PENDING => "STATUS_PENDING",
            Self::BUFFER_OVERFLOW => "STATUS_BUFFER_OVERFLOW",
            Self::UNSUCCESSFUL => "STATUS_UNSUCCESSFUL",
            Self::INVALID_PARAMETER => "STATUS_INVALID_PARAMETER",
            Self::MORE_PROCESSING_REQUIRED => "STATUS_MORE_PROCESSING_REQUIRED",
            Self::BUFFER_TOO_SMALL => "STATUS_BUFFER_TOO_SMALL",
            Self::OBJECT_NAME_COLLISION => "STATUS_OBJECT_NAME_COLLISION",
            Self::DATA_ERROR => "STATUS_DATA_ERROR",
            Self::CRC_ERROR => "STATUS_CRC_ERROR",
            Self::REVISION_MISMATCH => "STATUS_REVISION_MISMATCH",
            Self::INSUFFICIENT_RESOURCES => "STATUS_INSUFFICIENT_RESOURCES",
            Self::NOT_SUPPORTED => "STATUS_NOT_SUPPORTED",
            Self::INVALID_PARAMETER_1 => "STATUS_INVALID_PARAMETER_1",
            Self::INVALID_PARAMETER_2 => "STATUS_INVALID_PARAMETER_2",
            Self::INVALID_PARAMETER_3 => "STATUS_INVALID_PARAMETER_3",
            Self::CANCELLED => "STATUS_CANCELLED",
            Self::INVALID_DEVICE_STATE => "STATUS_INVALID_DEVICE_STATE",
            Self::INVALID_BUFFER_SIZE => "STATUS_INVALID_BUFFER_SIZE",
            Self::NOT_FOUND => "STATUS_NOT_FOUND",
            Self::DEVICE_REMOVED => "STATUS_DEVICE_REMOVED",
            _ => return None,
        })
    }
}

impl fmt::Debug for NtStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "NTSTATUS({:#010x})", self.0.cast_unsigned()),
        }
    }
}

impl fmt::Display for NtStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::NtStatus;

    #[test]
    fn severity_decides_success() {
        assert!(NtStatus::SUCCESS.is_success());
        assert!(NtStatus::PENDING.is_success());
        // Warnings (severity 10) are negative as i32, so NT_SUCCESS is false for them.
        assert!(!NtStatus::BUFFER_OVERFLOW.is_success());
        assert!(!NtStatus::BUFFER_TOO_SMALL.is_success());
        assert_eq!(NtStatus::BUFFER_TOO_SMALL.0.cast_unsigned(), 0xC000_0023);
    }

    #[test]
    fn unknown_values_print_as_hex() {
        extern crate std;
        use std::format;
        assert_eq!(format!("{}", NtStatus(0x1234)), "NTSTATUS(0x00001234)");
        assert_eq!(format!("{}", NtStatus::CANCELLED), "STATUS_CANCELLED");
    }
}
