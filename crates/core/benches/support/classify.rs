//! The classify workloads shared by the `classify` bench and the `instructions` runner.
//!
//! One port of a [`PortTable`] with 1,024 flow slots, rate-limited in both directions with a
//! bucket large enough that every frame passes (so the limiter refills and spends on every
//! frame: the full path, not the unlimited shortcut). Each call is one
//! [`PortTable::classify`]: directory lookup, slot lock, token bucket, flow table, counters.
//!
//! - **hit**: 256 flows already in the table, frames cycle through them;
//! - **miss**: every frame is a new flow taking a free slot; the port is deleted and created
//!   again every [`MISS_BATCH`] frames so the table never fills (that reset is inside the
//!   measured loop, amortised over the batch);
//! - **evict**: the table is full and every frame is a new flow, evicting its window's least
//!   recently seen entry.

use std::hint::black_box;

use ferry_core::lock::SpinRawLock;
use ferry_core::platform::Ticks;
use ferry_core::port::{
    Direction, FlowKey, FrameInfo, PortConfig, PortTable, RateLimit, SwitchPortId,
};

/// Flow slots per port.
pub const FLOWS: usize = 1024;
/// The table under test: 4 ports of [`FLOWS`] slots.
pub type ClassifyTable = PortTable<SpinRawLock, 4, FLOWS>;
/// The port every frame crosses.
pub const PORT: SwitchPortId = SwitchPortId(17);
/// Flows cycled through by the hit workload.
pub const HIT_FLOWS: usize = 256;
/// Frames between resets in the miss workload (a quarter of the table).
pub const MISS_BATCH: u32 = 256;

const LIMIT: RateLimit = RateLimit {
    bytes_per_second: 1 << 40,
    burst_bytes: 1 << 50,
};

/// The port configuration: limited, but never limiting.
pub const CONFIG: PortConfig = PortConfig {
    ingress: LIMIT,
    egress: LIMIT,
};

/// The `n`th distinct flow (IPv4 TCP, varied addresses and ports).
pub fn flow(n: u32) -> FlowKey {
    FlowKey::v4(
        [10, (n >> 16) as u8, (n >> 8) as u8, n as u8],
        [192, 168, 1, (n % 7) as u8],
        (n % 50_000) as u16 + 1024,
        443,
        6,
    )
}

/// A frame of flow `n`.
pub fn frame(n: u32) -> FrameInfo {
    FrameInfo {
        direction: if n.is_multiple_of(2) {
            Direction::Ingress
        } else {
            Direction::Egress
        },
        flow: flow(n),
        length: 1500,
    }
}

/// A table with one port at [`PORT`], empty.
pub fn table() -> Box<ClassifyTable> {
    let table = Box::new(ClassifyTable::new());
    table.create_port(PORT, None, CONFIG).expect("create port");
    table
}

/// The hit workload's state.
pub struct Hit {
    table: Box<ClassifyTable>,
    frames: Vec<FrameInfo>,
    next: usize,
    now: u64,
}

impl Hit {
    /// A table holding [`HIT_FLOWS`] flows.
    pub fn new() -> Self {
        let table = table();
        let frames: Vec<FrameInfo> = (0..HIT_FLOWS as u32).map(frame).collect();
        for frame in &frames {
            table.classify(PORT, frame, Ticks(1)).expect("classify");
        }
        let flows = table.with_port(PORT, |p| p.flows().len()).expect("port");
        assert_eq!(flows, HIT_FLOWS, "every hit flow is in the table");
        Self {
            table,
            frames,
            next: 0,
            now: 2,
        }
    }

    /// One frame of a known flow.
    #[inline(never)]
    pub fn once(&mut self) {
        let frame = &self.frames[self.next];
        self.next = (self.next + 1) % HIT_FLOWS;
        self.now += 1;
        black_box(self.table.classify(PORT, frame, Ticks(self.now))).ok();
    }

    /// Flows created so far (to check the workload really hits).
    pub fn flows_created(&self) -> u64 {
        self.table.counters(PORT).expect("port").flows_created
    }
}

/// The miss workload's state.
pub struct Miss {
    table: Box<ClassifyTable>,
    n: u32,
    now: u64,
}

impl Miss {
    /// An empty port.
    pub fn new() -> Self {
        Self {
            table: table(),
            n: 0,
            now: 1,
        }
    }

    /// One frame of a new flow (plus, every [`MISS_BATCH`] frames, a port reset).
    #[inline(never)]
    pub fn once(&mut self) {
        if self.n.is_multiple_of(MISS_BATCH) {
            self.table.delete_port(PORT).expect("delete");
            self.table.create_port(PORT, None, CONFIG).expect("create");
        }
        self.n = self.n.wrapping_add(1);
        self.now += 1;
        black_box(self.table.classify(PORT, &frame(self.n), Ticks(self.now))).ok();
    }
}

/// The eviction workload's state.
pub struct Evict {
    table: Box<ClassifyTable>,
    n: u32,
    now: u64,
}

impl Evict {
    /// A full port table.
    pub fn new() -> Self {
        let table = table();
        let mut n = 0;
        while table.with_port(PORT, |p| p.flows().len()).expect("port") < FLOWS {
            n += 1;
            table
                .classify(PORT, &frame(n), Ticks(u64::from(n)))
                .expect("fill");
        }
        Self {
            table,
            n,
            now: u64::from(n),
        }
    }

    /// One frame of a new flow into the full table.
    #[inline(never)]
    pub fn once(&mut self) {
        self.n = self.n.wrapping_add(1);
        self.now += 1;
        black_box(self.table.classify(PORT, &frame(self.n), Ticks(self.now))).ok();
    }

    /// Flows evicted so far.
    pub fn evicted(&self) -> u64 {
        self.table.counters(PORT).expect("port").flows_evicted
    }
}
