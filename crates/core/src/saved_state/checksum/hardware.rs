//! The SSE 4.2 engine (x86-64 only; elsewhere it is never available, and every function here
//! computes the same value with the software engine).

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
    super::software::update(super::software::update(register, first), second)
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
        register = super::software::update(register, &word.to_le_bytes());
    }
    let tail = tail.to_le_bytes();
    super::software::update(register, tail.get(..TAIL).unwrap_or(&tail))
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
    super::software::update(register, bytes)
}

#[cfg(target_arch = "x86_64")]
/// Bytes per lane of the three-lane loop.
pub(super) const LANE: usize = 4096;
#[cfg(target_arch = "x86_64")]
/// Bytes per block of three lanes.
const BLOCK: usize = 3 * LANE;
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
        power = super::step_one_bit(power);
        step = step.wrapping_add(1);
    }
    power
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
        b = super::step_one_bit(b);
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
