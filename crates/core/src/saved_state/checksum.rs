//! The envelope checksum: CRC-32C (Castagnoli), the one place that computes it.
//!
//! Parameters (the `CRC-32/ISCSI` entry of the CRC catalogue): polynomial `0x1EDC6F41`, reflected
//! input and output, initial value and final XOR `0xFFFFFFFF`; check value of the ASCII bytes
//! `123456789` is `0xE3069283`.
//!
//! Two engines compute it, chosen once per checksum:
//!
//! - **hardware**: on x86-64 processors with SSE 4.2, the `crc32` instruction (8 bytes per
//!   instruction). It reads and writes general-purpose registers only — no FPU or XMM state —
//!   so it is legal in kernel mode without saving extended state. Availability is read from
//!   `CPUID` (leaf 1, `ECX` bit 20) once and cached; the check cannot fail or panic. Builds with
//!   `sse4.2` enabled at compile time skip the check.
//! - **software**: the `crc` crate's slice-by-16 table (16 KiB, built at compile time into a
//!   `static`), everywhere else.
//!
//! Both compute the same function; a property test holds them to it.

use crc::{CRC_32_ISCSI, Crc, Digest, Table};

/// The CRC-32C engine with its lookup tables, computed at compile time.
static CASTAGNOLI: Crc<u32, Table<16>> = Crc::<u32, Table<16>>::new(&CRC_32_ISCSI);

/// The register value before any byte (the algorithm's initial value).
const INITIAL_REGISTER: u32 = 0xFFFF_FFFF;

/// CRC-32C of `bytes` in one call.
#[must_use]
pub fn crc32c(bytes: &[u8]) -> u32 {
    let mut crc = Crc32c::new();
    crc.update(bytes);
    crc.finish()
}

/// CRC-32C of `first` followed by `second` (an envelope's covered header bytes and its
/// payload) in one call: one engine choice and, on the hardware engine, one call into the
/// `crc32` loop for both parts, which matters for blobs of a few dozen bytes.
#[must_use]
#[inline]
pub fn crc32c_pair(first: &[u8], second: &[u8]) -> u32 {
    // Falls back to the table engine itself when the processor has no `crc32`.
    !hardware::update_pair(INITIAL_REGISTER, first, second)
}

/// The reflected polynomial, for the compile-time engine of [`register_after`].
const POLYNOMIAL_REFLECTED: u32 = 0x82F6_3B78;

/// The CRC register (before the final XOR) after `bytes` from the initial value, computed bit by
/// bit in a `const fn`: for a fixed-layout blob whose first bytes are a constant, the part of its
/// checksum that never changes, computed at compile time.
#[must_use]
pub const fn register_after(bytes: &[u8]) -> u32 {
    let mut register = INITIAL_REGISTER;
    let mut at = 0usize;
    while let Some((&byte, _)) = bytes.split_at(at).1.split_first() {
        register ^= byte as u32;
        let mut bit = 0u32;
        while bit < 8 {
            register = if register & 1 == 0 {
                register >> 1
            } else {
                (register >> 1) ^ POLYNOMIAL_REFLECTED
            };
            bit = bit.wrapping_add(1);
        }
        at = at.wrapping_add(1);
    }
    register
}

/// The checksum of a stream that continues a constant prefix (`register`, from
/// [`register_after`]) with the little-endian bytes of `words`, then the low `TAIL` bytes of
/// `tail` (`TAIL` < 8). For fixed-layout blobs whose values are in registers: the checksum is
/// computed from the values as they are written, without reading back bytes just stored.
#[must_use]
#[inline]
pub fn crc32c_words<const N: usize, const TAIL: usize>(
    register: u32,
    words: &[u64; N],
    tail: u64,
) -> u32 {
    !hardware::update_words::<N, TAIL>(register, words, tail)
}

/// [`crc32c_pair`] for parts whose sizes are constants (a fixed-layout blob's header and
/// payload): the hardware loop is instantiated for these sizes, so it runs unrolled, without
/// the bookkeeping of a loop over an arbitrary length.
#[must_use]
#[inline]
pub fn crc32c_arrays<const A: usize, const B: usize>(first: &[u8; A], second: &[u8; B]) -> u32 {
    // Falls back to the table engine itself when the processor has no `crc32`.
    !hardware::update_arrays(INITIAL_REGISTER, first, second)
}

/// An incremental CRC-32C: feed the covered byte ranges in order with [`update`](Self::update),
/// then [`finish`](Self::finish). Equal to [`crc32c`] of the concatenated ranges.
#[derive(Clone)]
pub struct Crc32c {
    engine: Engine,
}

#[derive(Clone)]
enum Engine {
    /// The reflected CRC register (before the final XOR), updated by the `crc32` instruction.
    Hardware { register: u32 },
    /// The table-driven digest.
    Software(Digest<'static, u32, Table<16>>),
}

impl Crc32c {
    /// A checksum over no bytes yet, on the hardware engine when the processor has one.
    #[must_use]
    pub fn new() -> Self {
        if hardware::available() {
            Self::hardware()
        } else {
            Self::software()
        }
    }

    /// A checksum on the software engine, whatever the processor.
    #[must_use]
    pub fn software() -> Self {
        Self {
            engine: Engine::Software(CASTAGNOLI.digest()),
        }
    }

    /// A checksum on the hardware engine; only built after [`hardware::available`] said yes.
    const fn hardware() -> Self {
        Self {
            engine: Engine::Hardware {
                register: INITIAL_REGISTER,
            },
        }
    }

    /// Whether this checksum runs on the hardware engine.
    #[must_use]
    pub const fn is_hardware(&self) -> bool {
        matches!(self.engine, Engine::Hardware { .. })
    }

    /// Adds `bytes` to the checksummed stream.
    pub fn update(&mut self, bytes: &[u8]) {
        match &mut self.engine {
            Engine::Hardware { register } => *register = hardware::update(*register, bytes),
            Engine::Software(digest) => digest.update(bytes),
        }
    }

    /// The checksum of everything fed so far.
    #[must_use]
    pub fn finish(self) -> u32 {
        match self.engine {
            Engine::Hardware { register } => !register,
            Engine::Software(digest) => digest.finalize(),
        }
    }
}

impl Default for Crc32c {
    fn default() -> Self {
        Self::new()
    }
}

impl core::fmt::Debug for Crc32c {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Crc32c")
            .field("hardware", &self.is_hardware())
            .finish_non_exhaustive()
    }
}

/// The SSE 4.2 engine (x86-64 only; elsewhere it is never available).
pub mod hardware {
    #[cfg(target_arch = "x86_64")]
    use core::sync::atomic::{AtomicU8, Ordering};

    /// Detection not done yet / done, absent / done, present.
    #[cfg(target_arch = "x86_64")]
    const UNKNOWN: u8 = 0;
    #[cfg(target_arch = "x86_64")]
    const ABSENT: u8 = 1;
    #[cfg(target_arch = "x86_64")]
    const PRESENT: u8 = 2;

    #[cfg(target_arch = "x86_64")]
    static DETECTED: AtomicU8 = AtomicU8::new(UNKNOWN);

    /// Whether the processor executes the SSE 4.2 `crc32` instruction.
    #[must_use]
    pub fn available() -> bool {
        #[cfg(all(target_arch = "x86_64", target_feature = "sse4.2"))]
        {
            true
        }
        #[cfg(all(target_arch = "x86_64", not(target_feature = "sse4.2")))]
        {
            match DETECTED.load(Ordering::Relaxed) {
                PRESENT => true,
                ABSENT => false,
                _ => {
                    let present = detect();
                    DETECTED.store(if present { PRESENT } else { ABSENT }, Ordering::Relaxed);
                    present
                }
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    }

    /// `CPUID` leaf 1, `ECX` bit 20 (SSE 4.2). Source: Intel SDM vol. 2A, CPUID, table
    /// "Feature Information Returned in the ECX Register"; AMD APM vol. 3, appendix E.
    #[cfg(all(target_arch = "x86_64", not(target_feature = "sse4.2")))]
    fn detect() -> bool {
        const SSE4_2: u32 = 1 << 20;
        // CPUID exists on every x86-64 processor and leaf 1 is always implemented.
        let leaf = core::arch::x86_64::__cpuid(1);
        leaf.ecx & SSE4_2 != 0
    }

    /// Continues the reflected CRC-32C register `register` over `first`, then `second`. Call
    /// only after [`available`] returned `true`; elsewhere it computes the same value in
    /// software.
    #[must_use]
    pub fn update_pair(register: u32, first: &[u8], second: &[u8]) -> u32 {
        #[cfg(target_arch = "x86_64")]
        if available() {
            // SAFETY: `available` confirmed through CPUID (or the compile-time target) that
            // the processor supports SSE 4.2, the only requirement of `update_pair_sse42`.
            return unsafe { update_pair_sse42(register, first, second) };
        }
        super::software_update(super::software_update(register, first), second)
    }

    /// Continues `register` over the little-endian bytes of `words`, then the low `TAIL` bytes of
    /// `tail` (see [`super::crc32c_words`]).
    #[must_use]
    #[inline]
    pub fn update_words<const N: usize, const TAIL: usize>(
        register: u32,
        words: &[u64; N],
        tail: u64,
    ) -> u32 {
        #[cfg(target_arch = "x86_64")]
        if available() {
            // SAFETY: `available` confirmed through CPUID (or the compile-time target) that
            // the processor supports SSE 4.2, the only requirement of `update_words_sse42`.
            return unsafe { update_words_sse42::<N, TAIL>(register, words, tail) };
        }
        let mut register = register;
        for word in words {
            register = super::software_update(register, &word.to_le_bytes());
        }
        let tail = tail.to_le_bytes();
        super::software_update(register, tail.get(..TAIL).unwrap_or(&tail))
    }

    /// [`update_words`] with the `crc32` instruction, on values in registers.
    ///
    /// # Safety
    ///
    /// The processor must support SSE 4.2.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "sse4.2")]
    unsafe fn update_words_sse42<const N: usize, const TAIL: usize>(
        register: u32,
        words: &[u64; N],
        tail: u64,
    ) -> u32 {
        use core::arch::x86_64::{_mm_crc32_u8, _mm_crc32_u16, _mm_crc32_u32, _mm_crc32_u64};
        let mut crc = u64::from(register);
        for &word in words {
            crc = _mm_crc32_u64(crc, word);
        }
        // The instruction leaves the upper 32 bits zero: the truncation loses nothing.
        let mut crc = crc as u32;
        let mut tail = tail;
        if TAIL & 4 != 0 {
            crc = _mm_crc32_u32(crc, tail as u32);
            tail >>= 32;
        }
        if TAIL & 2 != 0 {
            crc = _mm_crc32_u16(crc, tail as u16);
            tail >>= 16;
        }
        if TAIL & 1 != 0 {
            crc = _mm_crc32_u8(crc, tail as u8);
        }
        crc
    }

    /// [`update_pair`] for constant sizes (see [`super::crc32c_arrays`]).
    #[must_use]
    #[inline]
    pub fn update_arrays<const A: usize, const B: usize>(
        register: u32,
        first: &[u8; A],
        second: &[u8; B],
    ) -> u32 {
        #[cfg(target_arch = "x86_64")]
        if available() {
            // SAFETY: `available` confirmed through CPUID (or the compile-time target) that
            // the processor supports SSE 4.2, the only requirement of `update_arrays_sse42`.
            return unsafe { update_arrays_sse42(register, first, second) };
        }
        update_pair(register, first, second)
    }

    /// [`single_lane`] over two arrays, inlined with their sizes known.
    ///
    /// # Safety
    ///
    /// The processor must support SSE 4.2.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "sse4.2")]
    unsafe fn update_arrays_sse42<const A: usize, const B: usize>(
        register: u32,
        first: &[u8; A],
        second: &[u8; B],
    ) -> u32 {
        single_lane(single_lane(register, first), second)
    }

    /// [`update_sse42`] over two ranges in one call.
    ///
    /// # Safety
    ///
    /// The processor must support SSE 4.2.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "sse4.2")]
    unsafe fn update_pair_sse42(register: u32, first: &[u8], second: &[u8]) -> u32 {
        if first.len().saturating_add(second.len()) < BLOCK {
            // Short: no three-lane block in either part.
            return single_lane(single_lane(register, first), second);
        }
        // SAFETY: this function's own `target_feature` guarantees SSE 4.2, as `update_sse42`
        // requires.
        let register = unsafe { update_sse42(register, first) };
        // SAFETY: as above.
        unsafe { update_sse42(register, second) }
    }

    /// Continues the reflected CRC-32C register `register` over `bytes`. Call only after
    /// [`available`] returned `true`; elsewhere it computes the same value in software.
    #[must_use]
    pub fn update(register: u32, bytes: &[u8]) -> u32 {
        #[cfg(target_arch = "x86_64")]
        if available() {
            // SAFETY: `available` confirmed through CPUID (or the compile-time target) that
            // the processor supports SSE 4.2, the only requirement of `update_sse42`.
            return unsafe { update_sse42(register, bytes) };
        }
        super::software_update(register, bytes)
    }

    #[cfg(target_arch = "x86_64")]
    /// Bytes per lane of the three-lane loop.
    pub(super) const LANE: usize = 4096;
    #[cfg(target_arch = "x86_64")]
    /// Bytes per block of three lanes.
    const BLOCK: usize = 3 * LANE;
    #[cfg(target_arch = "x86_64")]
    /// The CRC-32C polynomial, bit-reflected.
    const POLY_REFLECTED: u32 = 0x82F6_3B78;
    #[cfg(target_arch = "x86_64")]
    /// `x^(8 * LANE)` modulo the polynomial, reflected: multiplying a register by it advances
    /// the register over `LANE` zero bytes.
    pub(super) const LANE_SHIFT: u32 = x_power(8 * LANE);

    #[cfg(target_arch = "x86_64")]
    /// `x^n` modulo the polynomial in the reflected representation (`x^0` is bit 31).
    pub(super) const fn x_power(n: usize) -> u32 {
        let mut power: u32 = 0x8000_0000;
        let mut step = 0;
        while step < n {
            power = times_x(power);
            step = step.wrapping_add(1);
        }
        power
    }

    #[cfg(target_arch = "x86_64")]
    /// Multiplies a reflected polynomial by `x` modulo the CRC polynomial (one zero bit through
    /// the register).
    const fn times_x(value: u32) -> u32 {
        if value & 1 == 0 {
            value >> 1
        } else {
            (value >> 1) ^ POLY_REFLECTED
        }
    }

    #[cfg(target_arch = "x86_64")]
    /// `a * b` modulo the CRC polynomial, both reflected (carry-less, on general-purpose
    /// registers; 32 steps).
    pub(super) fn multiply(a: u32, mut b: u32) -> u32 {
        let mut product = 0;
        let mut bit: u32 = 0x8000_0000;
        while bit != 0 {
            if a & bit != 0 {
                product ^= b;
            }
            b = times_x(b);
            bit >>= 1;
        }
        product
    }

    /// The `crc32` instruction: whole blocks as three independent lanes (the instruction's
    /// latency is three times its throughput, so one lane leaves two thirds of the unit idle),
    /// joined with `reg(A‖B) = x^(8|B|)·reg(A) ⊕ reg₀(B)`; then the rest 8 bytes at a time and
    /// the tail in at most three steps.
    ///
    /// # Safety
    ///
    /// The processor must support SSE 4.2.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "sse4.2")]
    unsafe fn update_sse42(register: u32, bytes: &[u8]) -> u32 {
        use core::arch::x86_64::_mm_crc32_u64;
        let mut crc = register;
        let (blocks, rest) = bytes.as_chunks::<BLOCK>();
        for block in blocks {
            let (lanes, _) = block.as_chunks::<LANE>();
            let [first, second, third] = lanes else {
                // A block is exactly three lanes; this arm only keeps the code total.
                crc = single_lane(crc, block);
                continue;
            };
            let (mut a, mut b, mut c) = (u64::from(crc), 0u64, 0u64);
            let lanes = words(first).zip(words(second)).zip(words(third));
            for ((x, y), z) in lanes {
                a = _mm_crc32_u64(a, u64::from_le_bytes(*x));
                b = _mm_crc32_u64(b, u64::from_le_bytes(*y));
                c = _mm_crc32_u64(c, u64::from_le_bytes(*z));
            }
            // The instruction leaves the upper 32 bits zero: the truncations lose nothing.
            let joined = multiply(LANE_SHIFT, a as u32) ^ b as u32;
            crc = multiply(LANE_SHIFT, joined) ^ c as u32;
        }
        single_lane(crc, rest)
    }

    /// A lane's 8-byte words.
    #[cfg(target_arch = "x86_64")]
    fn words(lane: &[u8; LANE]) -> core::slice::Iter<'_, [u8; 8]> {
        lane.as_chunks::<8>().0.iter()
    }

    /// The `crc32` instruction over 8 bytes at a time, then the tail.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "sse4.2")]
    #[inline]
    fn single_lane(register: u32, bytes: &[u8]) -> u32 {
        use core::arch::x86_64::{_mm_crc32_u8, _mm_crc32_u16, _mm_crc32_u32, _mm_crc32_u64};
        let mut crc = u64::from(register);
        let (words, tail) = bytes.as_chunks::<8>();
        for word in words {
            crc = _mm_crc32_u64(crc, u64::from_le_bytes(*word));
        }
        // The instruction leaves the upper 32 bits zero: the truncation loses nothing.
        let crc = crc as u32;
        // The tail (under 8 bytes) as at most one 4-, one 2- and one 1-byte step, not byte by
        // byte: small blobs end in such a tail, and each step waits for the one before.
        let (crc, tail) = match tail.split_first_chunk::<4>() {
            Some((word, rest)) => (_mm_crc32_u32(crc, u32::from_le_bytes(*word)), rest),
            None => (crc, tail),
        };
        let (crc, tail) = match tail.split_first_chunk::<2>() {
            Some((half, rest)) => (_mm_crc32_u16(crc, u16::from_le_bytes(*half)), rest),
            None => (crc, tail),
        };
        match tail.first() {
            Some(&byte) => _mm_crc32_u8(crc, byte),
            None => crc,
        }
    }
}

/// Continues the reflected register over `bytes` with the table engine (used by the hardware
/// module where the instruction is missing, so that `update` never computes a wrong value).
fn software_update(register: u32, bytes: &[u8]) -> u32 {
    // The `crc` crate takes the initial value unreflected for a reflected algorithm, and
    // `finalize` applies the final XOR: undo both around the table update.
    let mut digest = CASTAGNOLI.digest_with_initial(register.reverse_bits());
    digest.update(bytes);
    !digest.finalize()
}

#[cfg(test)]
mod tests {
    use super::{
        Crc32c, INITIAL_REGISTER, crc32c, crc32c_arrays, crc32c_pair, crc32c_words, hardware,
        register_after, software_update,
    };
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

    fn software(bytes: &[u8]) -> u32 {
        let mut crc = Crc32c::software();
        crc.update(bytes);
        crc.finish()
    }

    #[test]
    fn both_engines_give_the_check_value() {
        assert_eq!(software(b"123456789"), 0xE306_9283);
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
            let expected = software(&bytes);
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
            prop_assert_eq!(crc32c_arrays(&a, b), software(&whole));
            prop_assert_eq!(!hardware::update_arrays(INITIAL_REGISTER, &a, b), software(&whole));
            let short = <&[u8; 38]>::try_from(&b[..38]).unwrap();
            prop_assert_eq!(crc32c_arrays(&a, short), software(&whole[..54]));
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
            prop_assert_eq!(crc32c_words::<4, 6>(register, &words, tail), software(&six));
            let mut seven = bytes.clone();
            seven.extend_from_slice(&tail.to_le_bytes()[..7]);
            prop_assert_eq!(crc32c_words::<4, 7>(register, &words, tail), software(&seven));
            prop_assert_eq!(crc32c_words::<4, 0>(register, &words, tail), software(&bytes));
            prop_assert_eq!(!hardware::update_words::<4, 6>(register, &words, tail), software(&six));
        }

        #[test]
        fn hardware_and_software_agree(bytes in proptest::collection::vec(any::<u8>(), 0..2100),
                                       cut in 0usize..2100) {
            let expected = software(&bytes);
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
}
