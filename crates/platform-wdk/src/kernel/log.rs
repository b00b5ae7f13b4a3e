//! Logging to the kernel debugger through `DbgPrintEx`.
//!
//! [`ferry_log!`](crate::ferry_log) formats into a fixed 256-byte buffer on the stack (no
//! allocation; the line is cut at a character boundary when longer) and prints it as
//! `ferry: <line>` with component `DPFLTR_IHVDRIVER_ID`. The text is passed as an argument to
//! a constant `%.*s` format, never as the format itself, so a `%` in a message is harmless.
//! Usable at any IRQL up to `DISPATCH_LEVEL` (and above: `DbgPrintEx` of ANSI text is legal up
//! to DIRQL).

use core::fmt;

use crate::ffi::ntoskrnl::imports::DbgPrintEx;
use crate::ffi::ntoskrnl::{
    DPFLTR_ERROR_LEVEL, DPFLTR_IHVDRIVER_ID, DPFLTR_INFO_LEVEL, DPFLTR_TRACE_LEVEL,
    DPFLTR_WARNING_LEVEL,
};

/// How important a message is: selects the `DPFLTR_*_LEVEL` the debug filter checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    /// Always printed.
    Error,
    /// Printed when `Kd_IHVDRIVER_Mask` has bit 1.
    Warning,
    /// Printed when `Kd_IHVDRIVER_Mask` has bit 2.
    Trace,
    /// Printed when `Kd_IHVDRIVER_Mask` has bit 3.
    Info,
}

impl Level {
    /// The `DbgPrintEx` level.
    #[must_use]
    pub const fn dpfltr_level(self) -> u32 {
        match self {
            Self::Error => DPFLTR_ERROR_LEVEL,
            Self::Warning => DPFLTR_WARNING_LEVEL,
            Self::Trace => DPFLTR_TRACE_LEVEL,
            Self::Info => DPFLTR_INFO_LEVEL,
        }
    }
}

/// Bytes of message text per line (`DbgPrintEx` itself accepts at most 512 per call).
pub const LINE_CAPACITY: usize = 256;

/// One log line being formatted: fixed capacity, cut at a UTF-8 boundary when full.
pub struct LineBuffer {
    bytes: [u8; LINE_CAPACITY],
    len: usize,
    truncated: bool,
}

impl LineBuffer {
    /// An empty line.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            bytes: [0; LINE_CAPACITY],
            len: 0,
            truncated: false,
        }
    }

    /// The text written so far.
    #[must_use]
    pub fn as_str(&self) -> &str {
        let written = self.bytes.get(..self.len).unwrap_or(&[]);
        // Only whole `str` prefixes cut at char boundaries are ever copied in.
        core::str::from_utf8(written).unwrap_or("")
    }

    /// Whether some text did not fit.
    #[must_use]
    pub fn truncated(&self) -> bool {
        self.truncated
    }
}

impl Default for LineBuffer {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Write for LineBuffer {
    /// Appends what fits; once something did not fit, appends nothing more (a line with a gap
    /// in it would mislead). Never fails, so formatting always runs to the end.
    fn write_str(&mut self, text: &str) -> fmt::Result {
        if self.truncated {
            return Ok(());
        }
        let room = LINE_CAPACITY.saturating_sub(self.len);
        let mut take = text.len().min(room);
        while !text.is_char_boundary(take) {
            take = take.saturating_sub(1);
        }
        if take < text.len() {
            self.truncated = true;
        }
        let source = text.as_bytes().get(..take).unwrap_or(&[]);
        // The target is `..source.len()` of the free tail, so its length equals the source's
        // by construction and the optimiser drops `copy_from_slice`'s length-mismatch panic.
        if let Some(target) = self
            .bytes
            .get_mut(self.len..)
            .and_then(|free| free.get_mut(..source.len()))
        {
            target.copy_from_slice(source);
            self.len = self.len.saturating_add(source.len());
        }
        Ok(())
    }
}

/// Formats `args` and prints it to the kernel debugger. Use [`ferry_log!`](crate::ferry_log).
pub fn log(level: Level, args: fmt::Arguments<'_>) {
    let mut line = LineBuffer::new();
    // `LineBuffer::write_str` never fails; an `Err` could only come from a `Display` impl,
    // and then the line printed so far is still worth printing.
    let _ = fmt::write(&mut line, args);
    let text = line.as_str();
    // At most LINE_CAPACITY (256): fits an i32.
    let len = i32::try_from(text.len()).unwrap_or(0);
    let suffix: &core::ffi::CStr = if line.truncated() { c"..." } else { c"" };
    // SAFETY: the format is a NUL-terminated constant whose conversions match the arguments:
    // `%.*s` takes an int precision and a pointer to at least that many bytes (`text`), `%s` a
    // NUL-terminated string (`suffix`).
    unsafe {
        DbgPrintEx(
            DPFLTR_IHVDRIVER_ID,
            level.dpfltr_level(),
            c"ferry: %.*s%s\n".as_ptr(),
            len,
            text.as_ptr(),
            suffix.as_ptr(),
        );
    }
}

/// Logs a formatted line to the kernel debugger: `ferry_log!(Level::Info, "x = {}", x)`.
///
/// See [`kernel::log`](crate::kernel::log) for the format and its limits.
#[macro_export]
macro_rules! ferry_log {
    ($level:expr, $($arg:tt)+) => {
        $crate::kernel::log::log($level, ::core::format_args!($($arg)+))
    };
}

#[cfg(test)]
mod tests {
    use core::fmt::Write;

    use super::{LINE_CAPACITY, Level, LineBuffer};

    #[test]
    fn short_lines_are_kept_whole() {
        let mut line = LineBuffer::new();
        write!(line, "port {} saved {} bytes", 7, 120).unwrap();
        assert_eq!(line.as_str(), "port 7 saved 120 bytes");
        assert!(!line.truncated());
    }

    #[test]
    fn long_lines_are_cut_at_capacity_and_flagged() {
        let mut line = LineBuffer::new();
        for _ in 0..100 {
            write!(line, "abc").unwrap();
        }
        assert_eq!(line.as_str().len(), LINE_CAPACITY);
        assert!(line.as_str().bytes().all(|b| b"abc".contains(&b)));
        assert!(line.truncated());
    }

    #[test]
    fn cutting_never_splits_a_character() {
        let mut line = LineBuffer::new();
        // 255 ASCII bytes leave one byte of room: a 2-byte 'é' must not be half-copied.
        write!(line, "{}", "x".repeat(LINE_CAPACITY - 1)).unwrap();
        write!(line, "é").unwrap();
        assert_eq!(line.as_str().len(), LINE_CAPACITY - 1);
        assert!(line.truncated());
        // Nothing is appended after a cut, even text that would fit.
        write!(line, "y").unwrap();
        assert_eq!(line.as_str().len(), LINE_CAPACITY - 1);
        assert!(line.as_str().ends_with('x'));
    }

    #[test]
    fn levels_map_to_dpfltr_values_in_increasing_verbosity() {
        let levels = [Level::Error, Level::Warning, Level::Trace, Level::Info];
        let values: std::vec::Vec<u32> = levels.iter().map(|l| l.dpfltr_level()).collect();
        assert_eq!(values, [0, 1, 2, 3]);
    }
}
