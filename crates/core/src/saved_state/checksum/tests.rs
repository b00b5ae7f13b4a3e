use super::{
    Crc32c, INITIAL_REGISTER, crc32c, crc32c_arrays, crc32c_pair, crc32c_words, hardware,
    register_after, software,
};
use proptest::prelude::*;

/// The register update of the software engine, under the name the tests below use.
fn software_update(register: u32, bytes: &[u8]) -> u32 {
    software::update(register, bytes)
}

/// CRC-32C by the `crc` crate: an implementation independent of both engines here.
fn oracle(bytes: &[u8]) -> u32 {
    crc::Crc::<u32>::new(&crc::CRC_32_ISCSI).checksum(bytes)
}

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

/// CRC-32C of `bytes` through [`Crc32c::software`].
fn software_checksum(bytes: &[u8]) -> u32 {
    let mut crc = Crc32c::software();
    crc.update(bytes);
    crc.finish()
}

#[test]
fn every_table_entry_agrees_with_the_oracle() {
    // One non-zero byte at each position of a 16-byte block (each position reads another
    // table), with and without a tail after it, and the same byte as a tail byte: every
    // entry of the sixteen tables is used at least once.
    for position in 0..16 {
        for byte in 0..=255u8 {
            let mut bytes = [0u8; 19];
            bytes[position] = byte;
            assert_eq!(
                software_checksum(&bytes[..16]),
                oracle(&bytes[..16]),
                "byte {byte:#04x} at {position}"
            );
            assert_eq!(software_checksum(&bytes), oracle(&bytes));
            let tail = [byte; 3];
            assert_eq!(
                software_checksum(&tail[..position % 3 + 1]),
                oracle(&tail[..position % 3 + 1])
            );
        }
    }
}

#[test]
fn both_engines_give_the_check_value() {
    assert_eq!(software_checksum(b"123456789"), 0xE306_9283);
    assert_eq!(
        !hardware::update(INITIAL_REGISTER, b"123456789"),
        0xE306_9283
    );
    assert_eq!(
        !software_update(INITIAL_REGISTER, b"123456789"),
        0xE306_9283
    );
}

#[test]
#[cfg(target_arch = "x86_64")]
fn this_x86_64_machine_uses_the_engine_cpuid_reports() {
    let reported = std::is_x86_feature_detected!("sse4.2");
    assert_eq!(hardware::available(), reported);
    assert_eq!(Crc32c::new().is_hardware(), reported);
}

#[test]
#[cfg(target_arch = "x86_64")]
fn the_lane_shift_advances_a_register_over_a_lane_of_zeros() {
    for register in [0, 1, 0x8000_0000, 0xFFFF_FFFF, 0x1234_5678] {
        assert_eq!(
            hardware::multiply(hardware::LANE_SHIFT, register),
            software_update(register, &std::vec![0u8; hardware::LANE]),
            "register {register:#x}"
        );
        assert_eq!(hardware::multiply(hardware::x_power(0), register), register);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn hardware_and_software_agree_across_three_lane_blocks(
        bytes in proptest::collection::vec(any::<u8>(), 12_000..40_000),
        cut in 0usize..40_000,
    ) {
        let expected = oracle(&bytes);
        prop_assert_eq!(software_checksum(&bytes), expected);
        prop_assert_eq!(!hardware::update(INITIAL_REGISTER, &bytes), expected);
        let (a, b) = bytes.split_at(cut.min(bytes.len()));
        let register = hardware::update(INITIAL_REGISTER, a);
        prop_assert_eq!(!hardware::update(register, b), expected);
    }
}

proptest! {
    #[test]
    fn fixed_size_parts_checksum_like_their_concatenation(
        a in any::<[u8; 16]>(),
        b in proptest::collection::vec(any::<u8>(), 45),
    ) {
        let b = <&[u8; 45]>::try_from(&b[..]).unwrap();
        let whole: std::vec::Vec<u8> = a.iter().chain(b).copied().collect();
        prop_assert_eq!(crc32c_arrays(&a, b), oracle(&whole));
        prop_assert_eq!(!hardware::update_arrays(INITIAL_REGISTER, &a, b), oracle(&whole));
        let short = <&[u8; 38]>::try_from(&b[..38]).unwrap();
        prop_assert_eq!(crc32c_arrays(&a, short), oracle(&whole[..54]));
    }

    #[test]
    fn words_continue_a_constant_prefix_like_bytes(
        prefix in proptest::collection::vec(any::<u8>(), 0..24),
        words in any::<[u64; 4]>(),
        tail in any::<u64>(),
    ) {
        let mut bytes = prefix.clone();
        for word in words {
            bytes.extend_from_slice(&word.to_le_bytes());
        }
        let register = register_after(&prefix);
        prop_assert_eq!(register, hardware::update(INITIAL_REGISTER, &prefix));
        let mut six = bytes.clone();
        six.extend_from_slice(&tail.to_le_bytes()[..6]);
        prop_assert_eq!(crc32c_words::<4, 6>(register, &words, tail), oracle(&six));
        let mut seven = bytes.clone();
        seven.extend_from_slice(&tail.to_le_bytes()[..7]);
        prop_assert_eq!(crc32c_words::<4, 7>(register, &words, tail), oracle(&seven));
        prop_assert_eq!(crc32c_words::<4, 0>(register, &words, tail), oracle(&bytes));
        prop_assert_eq!(!hardware::update_words::<4, 6>(register, &words, tail), oracle(&six));
    }

    #[test]
    fn hardware_and_software_agree(bytes in proptest::collection::vec(any::<u8>(), 0..2100),
                                   cut in 0usize..2100) {
        let expected = oracle(&bytes);
        prop_assert_eq!(software_checksum(&bytes), expected);
        prop_assert_eq!(!hardware::update(INITIAL_REGISTER, &bytes), expected);
        prop_assert_eq!(!software_update(INITIAL_REGISTER, &bytes), expected);
        prop_assert_eq!(crc32c(&bytes), expected);
        // Split anywhere, including mid-word for the 8-byte loop.
        let (a, b) = bytes.split_at(cut.min(bytes.len()));
        let register = hardware::update(INITIAL_REGISTER, a);
        prop_assert_eq!(!hardware::update(register, b), expected);
        prop_assert_eq!(crc32c_pair(a, b), expected);

        prop_assert_eq!(!hardware::update_pair(INITIAL_REGISTER, a, b), expected);
        let register = software_update(INITIAL_REGISTER, a);
        prop_assert_eq!(!software_update(register, b), expected);
    }


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
