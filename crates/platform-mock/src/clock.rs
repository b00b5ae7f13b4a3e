//! Virtual time: one global clock the scheduler advances, seen by each host through its own
//! offset (hosts' `KeQueryInterruptTime` readings are unrelated, so saved state may carry only
//! ages, never raw ticks).

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use ferry_core::platform::Ticks;

/// The scheduler's virtual time in 100 ns ticks, shared by every host of one simulation.
#[derive(Clone, Debug, Default)]
pub struct VirtualTime(Rc<Cell<u64>>);

impl VirtualTime {
    /// Time zero.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The current virtual time.
    #[must_use]
    pub fn now(&self) -> u64 {
        self.0.get()
    }

    /// Moves time forward by `ticks`.
    pub fn advance(&self, ticks: u64) {
        self.0.set(self.0.get().saturating_add(ticks));
    }
}

/// One host's monotonic clock: the virtual time plus a boot offset of its own.
#[derive(Clone, Debug)]
pub struct HostClock {
    time: VirtualTime,
    offset: u64,
}

impl HostClock {
    /// A clock reading `time + offset`.
    #[must_use]
    pub fn new(time: VirtualTime, offset: u64) -> Self {
        Self { time, offset }
    }

    /// `KeQueryInterruptTime` on this host.
    #[must_use]
    pub fn now(&self) -> Ticks {
        Ticks(self.time.now().saturating_add(self.offset))
    }
}

/// The event log (`ferry-sim --trace`): one list for every host, each line stamped with the
/// virtual time at which it happened. Recording is off unless enabled.
#[derive(Clone, Debug, Default)]
pub struct EventLog {
    time: VirtualTime,
    lines: Rc<RefCell<Vec<String>>>,
    on: bool,
}

impl EventLog {
    /// A log stamped from `time`, recording only if `on`.
    #[must_use]
    pub fn new(time: VirtualTime, on: bool) -> Self {
        Self {
            time,
            lines: Rc::default(),
            on,
        }
    }

    /// Records one line (built only if recording is on).
    pub fn record(&self, text: impl FnOnce() -> String) {
        if self.on {
            let line = format!("[{:>10}] {}", self.time.now(), text());
            self.lines.borrow_mut().push(line);
        }
    }

    /// Everything recorded, oldest first; the log is emptied.
    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut self.lines.borrow_mut())
    }
}
