//! Virtual time: one global clock the scheduler advances, seen by each host through its own
//! offset (hosts' `KeQueryInterruptTime` readings are unrelated, so saved state may carry only
//! ages, never raw ticks).

use std::cell::Cell;
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
