//! Per-port and per-flow counters. All counters saturate instead of wrapping: a counter that
//! has reached `u64::MAX` stays there rather than restarting at zero.

use super::types::{Direction, DropReason};

/// Frames and bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct TrafficCounters {
    /// Number of frames.
    pub frames: u64,
    /// Sum of the frames' lengths in bytes.
    pub bytes: u64,
}

impl TrafficCounters {
    /// All zero.
    pub const ZERO: Self = Self {
        frames: 0,
        bytes: 0,
    };

    /// Counts one frame of `length` bytes.
    #[inline]
    pub fn record(&mut self, length: u32) {
        self.frames = self.frames.saturating_add(1);
        self.bytes = self.bytes.saturating_add(u64::from(length));
    }
}

/// What one direction of a port has seen.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct DirectionCounters {
    /// Frames permitted.
    pub permitted: TrafficCounters,
    /// Frames dropped because the direction's rate limit had too few tokens.
    pub dropped_rate_limited: TrafficCounters,
}

impl DirectionCounters {
    /// All zero.
    pub const ZERO: Self = Self {
        permitted: TrafficCounters::ZERO,
        dropped_rate_limited: TrafficCounters::ZERO,
    };

    /// The drop counters for `reason`.
    #[inline]
    pub fn dropped_mut(&mut self, reason: DropReason) -> &mut TrafficCounters {
        match reason {
            DropReason::RateLimited => &mut self.dropped_rate_limited,
        }
    }
}

/// Everything a port counts; what a guest's "read my port statistics" request returns.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct PortCounters {
    /// Frames the VM sent ([`Direction::Ingress`]).
    pub ingress: DirectionCounters,
    /// Frames delivered to the VM ([`Direction::Egress`]).
    pub egress: DirectionCounters,
    /// New flows inserted into the flow table.
    pub flows_created: u64,
    /// Flows removed to make room for a new one (see the flow table's eviction policy).
    pub flows_evicted: u64,
    /// New flows that arrived while every slot of the flow table was occupied.
    pub flow_table_full: u64,
}

impl PortCounters {
    /// All zero.
    pub const ZERO: Self = Self {
        ingress: DirectionCounters::ZERO,
        egress: DirectionCounters::ZERO,
        flows_created: 0,
        flows_evicted: 0,
        flow_table_full: 0,
    };

    /// The counters of one direction.
    #[inline]
    pub fn direction_mut(&mut self, direction: Direction) -> &mut DirectionCounters {
        match direction {
            Direction::Ingress => &mut self.ingress,
            Direction::Egress => &mut self.egress,
        }
    }

    /// The counters of one direction.
    #[must_use]
    pub const fn direction(&self, direction: Direction) -> &DirectionCounters {
        match direction {
            Direction::Ingress => &self.ingress,
            Direction::Egress => &self.egress,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::TrafficCounters;

    #[test]
    fn counters_saturate() {
        let mut c = TrafficCounters {
            frames: u64::MAX,
            bytes: u64::MAX - 3,
        };
        c.record(10);
        assert_eq!(c.frames, u64::MAX);
        assert_eq!(c.bytes, u64::MAX);
    }
}
