//! The envelope checksum: CRC-32C (Castagnoli), the one place that computes it.
//!
//! Parameters (the `CRC-32/ISCSI` entry of the CRC catalogue): polynomial `0x1EDC6F41`, reflected
//! input and output, initial value and final XOR `0xFFFFFFFF`; check value of the ASCII bytes
//! `123456789` is `0xE3069283`. The `crc` crate's slice-by-16 table (16 KiB, built at compile
//! time into a `static`) computes it; a hardware (SSE 4.2 `crc32`) implementation can replace the
//! body of this module without touching any caller.

use crc::{CRC_32_ISCSI, Crc, Digest, Table};

/// The CRC-32C engine with its lookup tables, computed at compile time.
static CASTAGNOLI: Crc<u32, Table<16>> = Crc::<u32, Table<16>>::new(&CRC_32_ISCSI);

/// CRC-32C of `bytes` in one call.
#[must_use]
pub fn crc32c(bytes: &[u8]) -> u32 {
    CASTAGNOLI.checksum(bytes)
}

/// An incremental CRC-32C: feed the covered byte ranges in order with [`update`](Self::update),
/// then [`finish`](Self::finish). Equal to [`crc32c`] of the concatenated ranges.
#[derive(Clone)]
pub struct Crc32c {
    digest: Digest<'static, u32, Table<16>>,
}

impl Crc32c {
    /// A checksum over no bytes yet.
    #[must_use]
    pub fn new() -> Self {
        Self {
            digest: CASTAGNOLI.digest(),
        }
    }

    /// Adds `bytes` to the checksummed stream.
    pub fn update(&mut self, bytes: &[u8]) {
        self.digest.update(bytes);
    }

    /// The checksum of everything fed so far.
    #[must_use]
    pub fn finish(self) -> u32 {
        self.digest.finalize()
    }
}

impl Default for Crc32c {
    fn default() -> Self {
        Self::new()
    }
}

impl core::fmt::Debug for Crc32c {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Crc32c").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::{Crc32c, crc32c};
    use proptest::prelude::*;

    #[test]
    fn standard_check_value() {
        // The catalogue's check value for CRC-32/ISCSI (CRC-32C).
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
    }

    #[test]
    fn known_vectors_from_rfc_3720() {
        // RFC 3720 (iSCSI) appendix B.4: 32 bytes of zeros and 32 bytes of 0xFF. The RFC lists
        // the CRC bytes as transmitted (little-endian), e.g. `aa 36 91 8a` for zeros.
        assert_eq!(crc32c(&[0u8; 32]), 0x8A91_36AA);
        assert_eq!(crc32c(&[0xFFu8; 32]), 0x62A8_AB43);
        assert_eq!(crc32c(&[]), 0);
    }

    proptest! {
        #[test]
        fn incremental_equals_one_shot(bytes in proptest::collection::vec(any::<u8>(), 0..300),
                                       cut in 0usize..300) {
            let cut = cut.min(bytes.len());
            let (a, b) = bytes.split_at(cut);
            let mut digest = Crc32c::new();
            digest.update(a);
            digest.update(b);
            prop_assert_eq!(digest.finish(), crc32c(&bytes));
        }
    }
}
