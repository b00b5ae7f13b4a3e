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
//! - **software**: eight bytes at a time from eight lookup tables (8 KiB, built at compile
//!   time into a `static`), everywhere else ([`software`]).
//!
//! Both compute the same function; property tests hold them to it and to the `crc` crate, an
//! independent implementation kept as the tests' oracle.

pub mod hardware;
pub mod software;
#[cfg(test)]
mod tests;

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

/// The CRC-32C polynomial, bit-reflected.
const POLYNOMIAL_REFLECTED: u32 = 0x82F6_3B78;

/// One bit through the reflected register: the register times `x` modulo the polynomial. The
/// definition every table and constant here is computed from.
const fn step_one_bit(register: u32) -> u32 {
    if register & 1 == 0 {
        register >> 1
    } else {
        (register >> 1) ^ POLYNOMIAL_REFLECTED
    }
}

/// The register after `bits` bits of zeros from `register` (bit by bit; for compile time).
const fn step_bits(mut register: u32, bits: u32) -> u32 {
    let mut bit = 0;
    while bit < bits {
        register = step_one_bit(register);
        bit = bit.wrapping_add(1);
    }
    register
}

/// The CRC register (before the final XOR) after `bytes` from the initial value, computed bit by
/// bit in a `const fn`: for a fixed-layout blob whose first bytes are a constant, the part of its
/// checksum that never changes, computed at compile time.
#[must_use]
pub const fn register_after(bytes: &[u8]) -> u32 {
    let mut register = INITIAL_REGISTER;
    let mut at = 0usize;
    while let Some((&byte, _)) = bytes.split_at(at).1.split_first() {
        register = step_bits(register ^ byte as u32, 8);
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
    /// The reflected CRC register (before the final XOR).
    register: u32,
    /// Whether [`update`](Self::update) uses the `crc32` instruction (else the tables).
    hardware: bool,
}

impl Crc32c {
    /// A checksum over no bytes yet, on the hardware engine when the processor has one.
    #[must_use]
    pub fn new() -> Self {
        Self {
            register: INITIAL_REGISTER,
            hardware: hardware::available(),
        }
    }

    /// A checksum on the software engine, whatever the processor.
    #[must_use]
    pub const fn software() -> Self {
        Self {
            register: INITIAL_REGISTER,
            hardware: false,
        }
    }

    /// Whether this checksum runs on the hardware engine.
    #[must_use]
    pub const fn is_hardware(&self) -> bool {
        self.hardware
    }

    /// Adds `bytes` to the checksummed stream.
    pub fn update(&mut self, bytes: &[u8]) {
        self.register = if self.hardware {
            hardware::update(self.register, bytes)
        } else {
            software::update(self.register, bytes)
        };
    }

    /// The checksum of everything fed so far.
    #[must_use]
    pub const fn finish(self) -> u32 {
        !self.register
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
