//! The PE image checksum (`IMAGE_OPTIONAL_HEADER::CheckSum`).
//!
//! The algorithm Windows uses (`CheckSumMappedFile`, and what `lld-link /RELEASE` writes): add
//! the file up as little-endian 16-bit words (an odd last byte padded with zero) in
//! ones'-complement arithmetic, folding each carry back into the low 16 bits, with the 4-byte
//! checksum field itself counted as zero; then add the file length.

/// The checksum of `image`, whose own checksum field starts at byte `field_offset`.
pub fn pe_checksum(image: &[u8], field_offset: usize) -> u32 {
    let field = field_offset..field_offset.saturating_add(4);
    let byte_at = |index: usize| -> u16 {
        if field.contains(&index) {
            0
        } else {
            image.get(index).copied().map_or(0, u16::from)
        }
    };
    let mut sum: u32 = 0;
    for word_start in (0..image.len()).step_by(2) {
        let word = byte_at(word_start) | (byte_at(word_start + 1) << 8);
        sum += u32::from(word);
        sum = (sum & 0xFFFF) + (sum >> 16);
    }
    // The file length is added as a 32-bit value; a PE file is far below 4 GiB.
    sum.wrapping_add(u32::try_from(image.len()).unwrap_or(u32::MAX))
}

#[cfg(test)]
mod tests {
    use super::pe_checksum;
    use proptest::prelude::*;

    /// A second, deliberately different formulation: sum every word into a u64 and fold once
    /// at the end. Ones'-complement addition is associative, so both must agree.
    fn fold_at_end(image: &[u8], field_offset: usize) -> u32 {
        let mut copy = image.to_vec();
        for byte in copy.iter_mut().skip(field_offset).take(4) {
            *byte = 0;
        }
        let mut total: u64 = copy
            .chunks(2)
            .map(|pair| u64::from(pair[0]) | (u64::from(*pair.get(1).unwrap_or(&0)) << 8))
            .sum();
        while total > 0xFFFF {
            total = (total & 0xFFFF) + (total >> 16);
        }
        u32::try_from(total).unwrap() + u32::try_from(image.len()).unwrap()
    }

    #[test]
    fn worked_example_with_a_carry() {
        // Words 0x0001, 0x0002, [field: counted as 0, 0], 0xFFFF, 0x0001.
        // 1 + 2 = 3; + 0xFFFF = 0x1_0002, folded 0x0003; + 1 = 4; + length 12 = 16.
        let image = [
            0x01, 0x00, 0x02, 0x00, 0xAA, 0xBB, 0xCC, 0xDD, 0xFF, 0xFF, 0x01, 0x00,
        ];
        assert_eq!(pe_checksum(&image, 4), 16);
    }

    #[test]
    fn odd_length_pads_the_last_byte() {
        // Field (zeros anyway) at 0; words 0x1234 and 0x0056 (padded): 0x128A + 7.
        let image = [0, 0, 0, 0, 0x34, 0x12, 0x56];
        assert_eq!(pe_checksum(&image, 0), 0x128A + 7);
    }

    #[test]
    fn the_stored_checksum_does_not_feed_into_itself() {
        let mut image = vec![0x5Au8; 64];
        let before = pe_checksum(&image, 16);
        image[16..20].copy_from_slice(&0xDEAD_BEEFu32.to_le_bytes());
        assert_eq!(pe_checksum(&image, 16), before);
        // A byte outside the field does count.
        image[20] = 0x5B;
        assert_ne!(pe_checksum(&image, 16), before);
    }

    proptest! {
        #[test]
        fn agrees_with_a_fold_at_the_end_formulation(
            image in proptest::collection::vec(any::<u8>(), 0..4096),
            field in 0usize..4096,
        ) {
            prop_assert_eq!(pe_checksum(&image, field), fold_at_end(&image, field));
        }
    }
}
