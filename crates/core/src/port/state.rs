//! One port's runtime state and its classify decision, without any locking (the port table
//! provides that).

use super::counters::PortCounters;
use super::flow::{FlowOutcome, FlowTable};
use super::rate::TokenBucket;
use super::types::{Direction, DropReason, FrameInfo, PortConfig, PortIdentity, Verdict};
use crate::platform::Ticks;

/// Everything the callout keeps for one switch port.
pub struct PortState<const FLOWS: usize> {
    identity: Option<PortIdentity>,
    ingress: TokenBucket,
    egress: TokenBucket,
    counters: PortCounters,
    flows: FlowTable<FLOWS>,
}

impl<const FLOWS: usize> PortState<FLOWS> {
    /// A port with no identity, no limits, zero counters and no flows.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            identity: None,
            ingress: TokenBucket::new(PortConfig::UNLIMITED.ingress),
            egress: TokenBucket::new(PortConfig::UNLIMITED.egress),
            counters: PortCounters::ZERO,
            flows: FlowTable::new(),
        }
    }

    /// Resets the state in place (no large temporary) for a newly created port.
    pub(crate) fn reset(&mut self, identity: Option<PortIdentity>, config: PortConfig) {
        self.identity = identity;
        self.ingress = TokenBucket::new(config.ingress);
        self.egress = TokenBucket::new(config.egress);
        self.counters = PortCounters::ZERO;
        self.flows.clear();
    }

    /// The identity of the VM NIC the port serves, if the driver supplied one.
    #[must_use]
    pub const fn identity(&self) -> Option<PortIdentity> {
        self.identity
    }

    /// The rate limits.
    #[must_use]
    pub const fn config(&self) -> PortConfig {
        PortConfig {
            ingress: self.ingress.limit(),
            egress: self.egress.limit(),
        }
    }

    /// The port's counters.
    #[must_use]
    pub const fn counters(&self) -> &PortCounters {
        &self.counters
    }

    /// The port's flow table.
    #[must_use]
    pub const fn flows(&self) -> &FlowTable<FLOWS> {
        &self.flows
    }

    /// The token bucket of one direction.
    #[must_use]
    pub const fn bucket(&self, direction: Direction) -> &TokenBucket {
        match direction {
            Direction::Ingress => &self.ingress,
            Direction::Egress => &self.egress,
        }
    }

    pub(crate) fn set_identity(&mut self, identity: Option<PortIdentity>) {
        self.identity = identity;
    }

    pub(crate) fn parts_mut(
        &mut self,
    ) -> (
        &mut TokenBucket,
        &mut TokenBucket,
        &mut PortCounters,
        &mut FlowTable<FLOWS>,
    ) {
        (
            &mut self.ingress,
            &mut self.egress,
            &mut self.counters,
            &mut self.flows,
        )
    }

    /// Decides on one frame and counts it: the direction's rate limit decides the verdict, the
    /// flow table records the frame either way, and the port counters record both.
    // Always inlined into `PortTable::classify`, its one caller on the classify path, so that
    // one function holds the whole frame under the slot lock (LTO builds otherwise keep it
    // out of line).
    #[inline(always)]
    pub fn classify(&mut self, frame: &FrameInfo, now: Ticks) -> Verdict {
        let bucket = match frame.direction {
            Direction::Ingress => &mut self.ingress,
            Direction::Egress => &mut self.egress,
        };
        let verdict = if bucket.admit(frame.length, now) {
            Verdict::Permit
        } else {
            Verdict::Drop(DropReason::RateLimited)
        };
        if let FlowOutcome::Inserted {
            table_was_full,
            evicted,
        } = self.flows.touch(&frame.flow, frame.length, now)
        {
            count_insert(&mut self.counters, table_was_full, evicted);
        }
        let direction = self.counters.direction_mut(frame.direction);
        match verdict {
            Verdict::Permit => direction.permitted.record(frame.length),
            Verdict::Drop(reason) => direction.dropped_mut(reason).record(frame.length),
        }
        verdict
    }
}

/// Counts a flow insert in the port counters.
pub(crate) fn count_insert(counters: &mut PortCounters, table_was_full: bool, evicted: bool) {
    counters.flows_created = counters.flows_created.saturating_add(1);
    if evicted {
        counters.flows_evicted = counters.flows_evicted.saturating_add(1);
    }
    if table_was_full {
        counters.flow_table_full = counters.flow_table_full.saturating_add(1);
    }
}

impl<const FLOWS: usize> Default for PortState<FLOWS> {
    fn default() -> Self {
        Self::new()
    }
}
