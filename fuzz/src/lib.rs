//! Helpers shared by ferry's fuzz targets: resealing blobs, a tiny recording platform, the
//! operation stream of `service_packet`, the action sequence of `host_sequence` and the
//! IOCTL framing and layout oracle of `ioctl_request`. The seed corpora are written by the
//! ignored test `seeds::write_seed_corpora` (see `docs/reliability.md`).

pub mod host_sequence;
pub mod ioctl;
pub mod ops;
pub mod platform;
#[cfg(test)]
mod seeds;

use ferry_core::saved_state::{HEADER_LEN, crc32c};

/// Offset of the envelope's checksum (`docs/saved-state-format.md`).
const CHECKSUM_AT: usize = 16;

/// `data` with a correct CRC-32C written into its envelope (if it is long enough to have one),
/// so that the fuzzer reaches the fields behind the checksum.
pub fn reseal(data: &[u8]) -> Vec<u8> {
    let mut blob = data.to_vec();
    if blob.len() >= HEADER_LEN {
        let mut covered = blob[..CHECKSUM_AT].to_vec();
        covered.extend_from_slice(&blob[HEADER_LEN..]);
        let crc = crc32c(&covered);
        blob[CHECKSUM_AT..HEADER_LEN].copy_from_slice(&crc.to_le_bytes());
    }
    blob
}
