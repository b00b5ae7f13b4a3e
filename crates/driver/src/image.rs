//! The items a finished kernel image must define itself: there is no C runtime and no WDK
//! static library in the link (`/NODEFAULTLIB`).

use core::panic::PanicInfo;

#[cfg(not(feature = "panic-check"))]
use ferry_platform_wdk::ferry_log;
use ferry_platform_wdk::kernel::bugcheck::{BugcheckReason, bugcheck};
#[cfg(not(feature = "panic-check"))]
use ferry_platform_wdk::kernel::log::Level;

/// A panic in kernel mode: there is nothing to unwind to (the image is built with
/// `panic = "abort"`) and no process to end, so ferry prints the message and location with
/// `DbgPrintEx` and stops the machine with [`BugcheckReason::Panic`] (line, column and the
/// address of the file name as parameters 2-4). Core is written so that this never happens:
/// its lints deny every panicking construct.
#[cfg(not(feature = "panic-check"))]
#[panic_handler]
fn panic(info: &PanicInfo<'_>) -> ! {
    let (file, line, column) = info
        .location()
        .map_or(("<unknown>", 0, 0), |l| (l.file(), l.line(), l.column()));
    ferry_log!(
        Level::Error,
        "panic at {file}:{line}:{column}: {}",
        info.message()
    );
    bugcheck(
        BugcheckReason::Panic,
        line as usize,
        column as usize,
        file.as_ptr() as usize,
    )
}

/// The panic handler of the panic-freedom check (`cargo xtask check-panic-free`): it calls a
/// function no object defines. lld-link reports an undefined symbol for any reference left in
/// the link, even in code it would then discard, so the optimised image links if and only if
/// LLVM removed this handler, which it does when nothing calls it: when no panic path
/// survives optimisation (LTO with one codegen unit leaves only what the exported
/// `DriverEntry` and the callbacks it registers can reach).
#[cfg(feature = "panic-check")]
#[panic_handler]
fn panic(_info: &PanicInfo<'_>) -> ! {
    unsafe extern "C" {
        /// Defined nowhere: the link fails naming it if a panic path survives.
        fn ferry_panic_path_survives_optimisation() -> !;
    }
    // SAFETY: never executed: an image with this handler does not link unless the call is
    // removed as unreachable, and such an image is not shipped either way.
    unsafe { ferry_panic_path_survives_optimisation() }
}

/// The negative control of the panic-freedom check: a slice index whose bounds LLVM cannot
/// know, kept in the image by `#[used]`, so the check must report a surviving panic path.
#[cfg(feature = "panic-canary")]
#[used]
static PANIC_CANARY: fn(usize) -> u8 = panic_canary;

#[cfg(feature = "panic-canary")]
#[allow(clippy::indexing_slicing)] // the deliberate panic path
fn panic_canary(index: usize) -> u8 {
    static BYTES: [u8; 4] = [1, 2, 3, 4];
    BYTES[core::hint::black_box(index)]
}

// `_fltused`: the MSVC ABI's marker that floating point is used, referenced by objects that
// touch floats (compiler-builtins among them) and normally defined by the CRT. Any definition
// satisfies it; the value is never read. Defined in assembly rather than as a
// `#[no_mangle] static` because a cdylib exports every `#[no_mangle]` item, and the image
// should export `DriverEntry` only. With the `wdk-sys` feature, wdk-sys defines it.
#[cfg(not(feature = "wdk-sys"))]
core::arch::global_asm!(
    ".section .rdata,\"dr\"",
    ".globl _fltused",
    ".p2align 2",
    "_fltused:",
    ".long 0",
    ".text",
);

// `__chkstk`: LLVM calls it in the prologue of any function whose frame exceeds 4 KiB, with
// the frame size in RAX, to probe the stack page by page. ferry never means to have such a
// frame: kernel stacks are 12-24 KiB, fully resident, and the project's clippy settings flag
// frames over 2 KiB. So instead of probing, `__chkstk` stops the machine with
// [`BugcheckReason::StackFrameTooLarge`] (frame size, return address into the offender): the
// first run of an offending path is a clear, attributable crash rather than a stack overflow
// into whatever lies below. (Assembly, not Rust: it is entered mid-prologue with a
// non-standard convention; and not `#[no_mangle]`, to stay out of the export table.)
core::arch::global_asm!(
    ".text",
    ".globl __chkstk",
    ".p2align 4",
    ".seh_proc __chkstk",
    "__chkstk:",
    // Entry RSP is 8 mod 16 (after the call): 0x28 = shadow space + realignment.
    "sub rsp, 0x28",
    ".seh_stackalloc 0x28",
    ".seh_endprologue",
    "mov rcx, rax",
    "mov rdx, qword ptr [rsp + 0x28]",
    "call {too_large}",
    "ud2",
    ".seh_endproc",
    too_large = sym chkstk_frame_too_large,
);

/// Called only from `__chkstk`: bug-checks with the frame size and the return address.
extern "system" fn chkstk_frame_too_large(frame_size: usize, return_address: usize) -> ! {
    bugcheck(
        BugcheckReason::StackFrameTooLarge,
        frame_size,
        return_address,
        0,
    )
}
