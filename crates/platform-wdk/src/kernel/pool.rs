//! Non-paged pool allocations tagged with ferry's pool tag.

use core::ptr::NonNull;

use ferry_core::status::NtStatus;

use crate::ffi::ntoskrnl::POOL_FLAG_NON_PAGED;
use crate::ffi::ntoskrnl::imports::{ExAllocatePool2, ExFreePoolWithTag};

/// ferry's pool tag, `'Fery'`.
///
/// A pool tag is four characters stored little-endian, so the memory (and `!poolused`,
/// `poolmon`, Driver Verifier's leak reports) shows `Fery`; in C it is the multi-character
/// literal `'yreF'`. Every allocation ferry makes carries it, and it is passed again to
/// `ExFreePoolWithTag`, which bug-checks on a mismatch: a free of memory that is not ferry's
/// is caught at once.
pub const FERRY_POOL_TAG: u32 = u32::from_le_bytes(*b"Fery");

/// An owned, zeroed block of non-paged pool, freed (with [`FERRY_POOL_TAG`]) on drop.
///
/// Non-paged so that it may be touched at `DISPATCH_LEVEL`. Pool blocks are at least 16-byte
/// aligned on x64.
#[derive(Debug)]
pub struct PoolBuffer {
    start: NonNull<u8>,
    len: usize,
}

// SAFETY: the buffer owns its block exclusively (like `Box<[u8]>`); pool memory has no thread
// affinity.
unsafe impl Send for PoolBuffer {}
// SAFETY: shared access only reads through `&self`.
unsafe impl Sync for PoolBuffer {}

impl PoolBuffer {
    /// Allocates `len` zeroed bytes of non-paged pool (`ExAllocatePool2`, IRQL <=
    /// `DISPATCH_LEVEL`).
    ///
    /// # Errors
    ///
    /// `STATUS_INVALID_PARAMETER` for `len == 0`; `STATUS_INSUFFICIENT_RESOURCES` when the pool
    /// is exhausted.
    pub fn allocate_zeroed(len: usize) -> Result<Self, NtStatus> {
        if len == 0 {
            return Err(NtStatus::INVALID_PARAMETER);
        }
        // SAFETY: a plain allocation call with valid flags; the result is checked for NULL.
        let raw = unsafe { ExAllocatePool2(POOL_FLAG_NON_PAGED, len, FERRY_POOL_TAG) };
        let start = NonNull::new(raw.cast::<u8>()).ok_or(NtStatus::INSUFFICIENT_RESOURCES)?;
        Ok(Self { start, len })
    }

    /// Length in bytes.
    #[must_use]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Always false: empty buffers are refused at allocation.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The bytes.
    #[must_use]
    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: `start` points to `len` initialised (zeroed) bytes owned by `self`.
        unsafe { core::slice::from_raw_parts(self.start.as_ptr(), self.len) }
    }

    /// The bytes, writable.
    #[must_use]
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: as in `as_slice`, and `&mut self` makes this the only reference.
        unsafe { core::slice::from_raw_parts_mut(self.start.as_ptr(), self.len) }
    }

    /// Gives up ownership: the block is no longer freed on drop. For handing a buffer to a
    /// component that frees it itself, or for keeping it behind a raw pointer until
    /// [`PoolBuffer::from_raw`].
    #[must_use]
    pub fn into_raw(self) -> (NonNull<u8>, usize) {
        let parts = (self.start, self.len);
        core::mem::forget(self);
        parts
    }

    /// Takes back ownership of a block from [`PoolBuffer::into_raw`].
    ///
    /// # Safety
    ///
    /// `start` and `len` come from one `into_raw` call, and nothing else owns or frees the
    /// block.
    #[must_use]
    pub unsafe fn from_raw(start: NonNull<u8>, len: usize) -> Self {
        Self { start, len }
    }
}

impl Drop for PoolBuffer {
    fn drop(&mut self) {
        // SAFETY: the block was allocated by ExAllocatePool2 with FERRY_POOL_TAG and is owned
        // by `self`, which is never used again.
        unsafe { ExFreePoolWithTag(self.start.as_ptr().cast(), FERRY_POOL_TAG) }
    }
}

#[cfg(test)]
mod tests {
    use super::FERRY_POOL_TAG;

    #[test]
    fn pool_tag_is_the_c_literal_yref() {
        // MSVC packs the multi-character literal 'yreF' big-end first: 'y' << 24 | 'r' << 16 |
        // 'e' << 8 | 'F'. A tag built the other way round would show as "yreF" in poolmon.
        let c_literal = (u32::from(b'y') << 24)
            | (u32::from(b'r') << 16)
            | (u32::from(b'e') << 8)
            | u32::from(b'F');
        assert_eq!(FERRY_POOL_TAG, c_literal);
        assert!(
            FERRY_POOL_TAG
                .to_le_bytes()
                .iter()
                .all(u8::is_ascii_alphanumeric)
        );
    }
}
