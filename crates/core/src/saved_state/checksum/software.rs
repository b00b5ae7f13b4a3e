//! The software engine: CRC-32C sixteen bytes at a time from sixteen lookup tables ("slicing
//! by sixteen"), for processors without the SSE 4.2 `crc32` instruction.
//!
//! Written here rather than taken from the `crc` crate (which the tests keep as an independent
//! oracle) because of what the kernel image needs: the crate's slice-by-16 loop indexes its
//! input at offsets the optimiser could not prove in range, so a panic path — a bugcheck in
//! kernel mode — survived in the optimised `ferry.sys` (`cargo xtask check-panic-free`,
//! `docs/reliability.md`). Here every table lookup is by a byte value into a 256-entry array
//! and the input is walked with `as_chunks`, so there is no index for the optimiser to doubt.
//!
//! The tables (16 × 256 × 4 bytes = 16 KiB) are computed at compile time into a `static`.
//! Table `k`, entry `n`, is the register after feeding byte `n` and then `k` zero bytes into a
//! zero register; CRC is linear over XOR, so the contributions of sixteen input bytes to the
//! register can be looked up independently and combined with XOR.

use super::step_bits;

/// The sixteen lookup tables, built at compile time, in groups of four: group `g` holds the
/// tables for `4g`, `4g + 1`, `4g + 2` and `4g + 3` following zero bytes, the tables one
/// little-endian word of a 16-byte block needs.
static TABLES: [[[u32; 256]; 4]; 4] = [
    [table(0), table(1), table(2), table(3)],
    [table(4), table(5), table(6), table(7)],
    [table(8), table(9), table(10), table(11)],
    [table(12), table(13), table(14), table(15)],
];

/// The table for a byte followed by `zero_bytes` zero bytes: entry `n` is the register after
/// feeding byte `n`, then `zero_bytes` zero bytes, into a zero register — by the bitwise
/// definition, one polynomial step per bit (about 280,000 steps for all sixteen tables,
/// at compile time).
#[expect(
    clippy::large_stack_frames,
    reason = "evaluated only at compile time, to initialise `TABLES`"
)]
const fn table(zero_bytes: u32) -> [u32; 256] {
    let bits = zero_bytes.wrapping_add(1).wrapping_mul(8);
    let mut table = [0u32; 256];
    let mut byte = 0u32;
    let mut rest: &mut [u32] = &mut table;
    while let [entry, tail @ ..] = rest {
        *entry = step_bits(byte, bits);
        byte = byte.wrapping_add(1);
        rest = tail;
    }
    table
}

/// The entry of `table` for the low byte of `value`.
#[inline(always)]
fn entry(table: &[u32; 256], value: u32) -> u32 {
    let [low, ..] = value.to_le_bytes();
    // A byte indexes a 256-entry table: `get` always finds the entry (the optimiser sees that
    // too, so no fallback is compiled); it is used instead of `[]` so that no panic path exists
    // even in principle.
    table.get(usize::from(low)).copied().unwrap_or(0)
}

/// The contribution of one little-endian word to the register, its last byte followed by
/// as many zero bytes as `group`'s first table stands for.
#[inline(always)]
fn word(group: &[[u32; 256]; 4], value: u32) -> u32 {
    let [last, third, second, first] = group;
    entry(first, value)
        ^ entry(second, value >> 8)
        ^ entry(third, value >> 16)
        ^ entry(last, value >> 24)
}

/// Continues the reflected CRC-32C register `register` (before the final XOR) over `bytes`.
#[must_use]
pub fn update(register: u32, bytes: &[u8]) -> u32 {
    let [followed_by_0, followed_by_4, followed_by_8, followed_by_12] = &TABLES;
    let (blocks, tail) = bytes.as_chunks::<16>();
    let mut register = register;
    for block in blocks {
        let (words, _) = block.as_chunks::<4>();
        let [first, second, third, fourth] = words else {
            // A 16-byte block is exactly four words; this arm only keeps the code total.
            continue;
        };
        // The register folds into the first four bytes; each byte then contributes through
        // the table advanced over the bytes that follow it in the block.
        let first = register ^ u32::from_le_bytes(*first);
        // The three words without the register first: the compiler chains the XORs in this
        // order, and only the last word's lookups wait for the previous block, so the
        // loop-carried path is one word's lookups, not all sixteen.
        register = word(followed_by_0, u32::from_le_bytes(*fourth))
            ^ word(followed_by_4, u32::from_le_bytes(*third))
            ^ word(followed_by_8, u32::from_le_bytes(*second))
            ^ word(followed_by_12, first);
    }
    let [[t0, ..], ..] = &TABLES;
    for &byte in tail {
        register = (register >> 8) ^ entry(t0, register ^ u32::from(byte));
    }
    register
}
