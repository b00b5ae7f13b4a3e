//! ferry's bug check: how `ferry.sys` stops the machine when it cannot go on safely.
//!
//! In kernel mode there is nothing to unwind to and no process to kill: a driver that has
//! broken an invariant can only stop the machine, and the sooner the better for the crash dump.
//! ferry does it with `KeBugCheckEx` and its own code, so that `!analyze -v` shows at a glance
//! that ferry stopped the machine and why.

use crate::ffi::ntoskrnl::imports::KeBugCheckEx;

/// ferry's bug-check code, `0x2046_5259`: the customer bit (bit 29, which Microsoft's
/// bug-check and status codes leave clear) plus `"FRY"` in ASCII, so it cannot collide with a
/// code Windows defines.
pub const FERRY_BUGCHECK_CODE: u32 = 0x2000_0000 | 0x0046_5259;

/// Why ferry stopped the machine: the first bug-check parameter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(usize)]
pub enum BugcheckReason {
    /// A Rust panic. Parameters 2-4: source line, source column, address of the file name
    /// bytes (readable in the dump; the panic message itself was printed with `DbgPrintEx`
    /// just before).
    Panic = 1,
    /// `__chkstk` was called: a stack frame over 4 KiB, which ferry never means to have on a
    /// 12-24 KiB kernel stack. Parameters 2-3: the frame size asked for, the return address
    /// into the offending function.
    StackFrameTooLarge = 2,
}

/// Stops the machine with [`FERRY_BUGCHECK_CODE`], `reason` as parameter 1 and three
/// reason-specific values. Legal at any IRQL.
pub fn bugcheck(reason: BugcheckReason, p2: usize, p3: usize, p4: usize) -> ! {
    // SAFETY: KeBugCheckEx takes plain integers and does not return; it is callable at any
    // IRQL.
    unsafe { KeBugCheckEx(FERRY_BUGCHECK_CODE, reason as usize, p2, p3, p4) }
}

#[cfg(test)]
mod tests {
    use super::FERRY_BUGCHECK_CODE;

    #[test]
    fn bugcheck_code_has_the_customer_bit_and_spells_fry() {
        assert_ne!(FERRY_BUGCHECK_CODE & (1 << 29), 0);
        assert_eq!(&FERRY_BUGCHECK_CODE.to_be_bytes()[1..], b"FRY");
    }
}
