//! The saved-state workloads shared by the `codec` and `migration` benches.
//!
//! - **transactions**: `count` outgoing-transaction contexts ([`NotificationTx`], blob kind 1),
//!   each saved as its own blob the way KMCL asks for them (`EvtVmbChannelSavePacket` per
//!   packet), through [`TransactionState::save`] / [`TransactionState::restore`];
//! - **ports**: 256 ports with `flows` flows each in a port table of 2,048 flow slots per port
//!   (half full, so every flow keeps its slot), each saved as a kind-2 blob through
//!   [`PortTable::save_port`] and restored onto a port of another id with
//!   [`PortTable::restore_port`] (decode, full validation, then install into the flow table).
//!
//! The baselines get the same data: `postcard` (serde) encodes mirror structs holding the same
//! fields (extracted before timing) one blob per item into one buffer, and decodes them back
//! into those structs; `memcpy` copies as many bytes as ferry's blobs take.

use std::hint::black_box;

use ferry_core::channel::TransactionState;
use ferry_core::lock::SpinRawLock;
use ferry_core::platform::Ticks;
use ferry_core::port::{
    Direction, FlowKey, FrameInfo, PortConfig, PortIdentity, PortTable, RateLimit, SwitchPortId,
};
use ferry_core::protocol::Event;
use ferry_core::service::NotificationTx;
use serde::{Deserialize, Serialize};

/// Transaction counts measured.
pub const TRANSACTION_COUNTS: [usize; 3] = [256, 1024, 4096];
/// Ports in the port workload.
pub const PORTS: usize = 256;
/// Flow slots per port.
pub const FLOW_SLOTS: usize = 2048;
/// Flows per port measured.
pub const FLOW_COUNTS: [usize; 3] = [64, 256, 1024];
/// The port table of the codec workloads.
pub type CodecTable = PortTable<SpinRawLock, PORTS, FLOW_SLOTS>;

/// The clock at save time; restores happen at [`RESTORE_NOW`].
pub const SAVE_NOW: Ticks = Ticks(1 << 40);
/// The destination's clock.
pub const RESTORE_NOW: Ticks = Ticks(7 << 40);

const LIMIT: RateLimit = RateLimit {
    bytes_per_second: 125_000_000,
    burst_bytes: 1 << 20,
};
const CONFIG: PortConfig = PortConfig {
    ingress: LIMIT,
    egress: LIMIT,
};

/// Where each blob of a set lies in its buffer.
pub type Spans = Vec<(usize, usize)>;

/// A set of transactions.
pub fn transactions(count: usize) -> Vec<NotificationTx> {
    (0..count as u64)
        .map(|i| NotificationTx {
            sequence: Some(1_000_000 + i),
            event: Event::PortStats,
            sent_at: Ticks(SAVE_NOW.0 - 1_000 * (i + 1)),
        })
        .collect()
}

/// Saves every transaction back to back into `out`; returns the bytes written.
#[inline(never)]
pub fn ferry_save_transactions(txs: &[NotificationTx], out: &mut [u8], spans: &mut Spans) -> usize {
    spans.clear();
    let mut at = 0;
    for tx in txs {
        let len = tx.save(SAVE_NOW, &mut out[at..]).expect("save");
        spans.push((at, len));
        at += len;
    }
    at
}

/// Restores every transaction blob of `blobs` into `into` (cleared first).
#[inline(never)]
pub fn ferry_restore_transactions(blobs: &[u8], spans: &Spans, into: &mut Vec<NotificationTx>) {
    into.clear();
    for &(at, len) in spans {
        let tx = NotificationTx::restore(&blobs[at..at + len], RESTORE_NOW).expect("restore");
        into.push(tx);
    }
}

/// The postcard mirror of a saved transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostcardTx {
    sequence: u64,
    event: u32,
    age: u64,
}

/// The mirror values of `txs` as saved at [`SAVE_NOW`].
pub fn postcard_transactions(txs: &[NotificationTx]) -> Vec<PostcardTx> {
    txs.iter()
        .map(|tx| PostcardTx {
            sequence: tx.sequence.unwrap_or(0),
            event: tx.event.bit(),
            age: SAVE_NOW.saturating_since(tx.sent_at),
        })
        .collect()
}

/// Encodes every item as its own postcard message back to back into `out`.
#[inline(never)]
pub fn postcard_encode<T: Serialize>(items: &[T], out: &mut [u8], spans: &mut Spans) -> usize {
    spans.clear();
    let mut at = 0;
    for item in items {
        let len = postcard::to_slice(item, &mut out[at..])
            .expect("postcard encode")
            .len();
        spans.push((at, len));
        at += len;
    }
    at
}

/// Decodes every postcard message of `bytes` into `into` (cleared first).
#[inline(never)]
pub fn postcard_decode<T: for<'de> Deserialize<'de>>(
    bytes: &[u8],
    spans: &Spans,
    into: &mut Vec<T>,
) {
    into.clear();
    for &(at, len) in spans {
        into.push(postcard::from_bytes(&bytes[at..at + len]).expect("postcard decode"));
    }
}

/// The `memcpy` baseline: a source holding the bytes and a destination, placed so that their
/// page offsets differ by half a page.
///
/// Where the two buffers land matters on this kind of machine: glibc's copy of 64 KiB ran at
/// about 1 GB/s when the source and destination page offsets were 16 bytes apart and at about
/// 17–23 GB/s otherwise (AMD Zen 3 under KVM). Fixing the offsets keeps the baseline at the
/// copy's normal speed instead of at the mercy of the allocator.
pub struct CopyBuffers {
    source: Vec<u8>,
    destination: Vec<u8>,
    source_at: usize,
    destination_at: usize,
    len: usize,
}

const PAGE: usize = 4096;

/// How far past `buffer`'s start its page offset becomes `target`.
fn distance_to_page_offset(buffer: &[u8], target: usize) -> usize {
    (target + PAGE - buffer.as_ptr() as usize % PAGE) % PAGE
}

impl CopyBuffers {
    /// Buffers for copying `bytes`.
    pub fn new(bytes: &[u8]) -> Self {
        let len = bytes.len();
        let mut source = vec![0u8; len + PAGE];
        let destination = vec![0u8; len + PAGE];
        let source_at = distance_to_page_offset(&source, 0);
        let destination_at = distance_to_page_offset(&destination, PAGE / 2);
        source[source_at..source_at + len].copy_from_slice(bytes);
        Self {
            source,
            destination,
            source_at,
            destination_at,
            len,
        }
    }

    /// One copy of every byte.
    #[inline(never)]
    pub fn copy(&mut self) {
        let from = &self.source[self.source_at..self.source_at + self.len];
        let to = &mut self.destination[self.destination_at..self.destination_at + self.len];
        to.copy_from_slice(black_box(from));
        black_box(to);
    }
}

/// The stable identity of port number `index`.
pub fn identity(index: usize) -> PortIdentity {
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&(index as u64 + 1).to_le_bytes());
    bytes[8..].copy_from_slice(&0xC0FF_EE00_u64.to_le_bytes());
    PortIdentity(bytes)
}

/// The source port id of port number `index`.
pub fn source_id(index: usize) -> SwitchPortId {
    SwitchPortId(index as u32 + 1)
}

/// The destination port id of port number `index` (another host numbers ports differently).
pub fn destination_id(index: usize) -> SwitchPortId {
    SwitchPortId(index as u32 + 10_001)
}

fn flow_key(n: u32) -> FlowKey {
    if n.is_multiple_of(4) {
        let mut destination = [0u8; 16];
        destination[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
        destination[12..].copy_from_slice(&n.to_be_bytes());
        FlowKey::v6([0xfe; 16], destination, (n % 60_000) as u16 + 1, 443, 6)
    } else {
        FlowKey::v4(
            [10, (n >> 16) as u8, (n >> 8) as u8, n as u8],
            [172, 16, (n >> 3) as u8, 1],
            (n % 60_000) as u16 + 1,
            80,
            17,
        )
    }
}

/// Builds a table with big frames on a thread with a large stack (the table is tens of MiB;
/// this keeps a compiler that builds it on the stack before boxing from overflowing).
fn boxed_table() -> Box<CodecTable> {
    std::thread::Builder::new()
        .stack_size(256 << 20)
        .spawn(|| Box::new(CodecTable::new()))
        .expect("spawn")
        .join()
        .expect("build table")
}

/// The source table: [`PORTS`] ports with `flows` flows each, counters and buckets in use.
pub fn source_table(flows: usize) -> Box<CodecTable> {
    let table = boxed_table();
    let mut n = 0u32;
    for index in 0..PORTS {
        let id = source_id(index);
        table
            .create_port(id, Some(identity(index)), CONFIG)
            .expect("create");
        while table.with_port(id, |p| p.flows().len()).expect("port") < flows {
            n += 1;
            let frame = FrameInfo {
                direction: if n.is_multiple_of(3) {
                    Direction::Egress
                } else {
                    Direction::Ingress
                },
                flow: flow_key(n),
                length: 64 + n % 1400,
            };
            table
                .classify(id, &frame, Ticks(SAVE_NOW.0 - u64::from(n)))
                .expect("classify");
        }
    }
    table
}

/// The destination table: the same ports (same identities, other ids), empty.
pub fn destination_table() -> Box<CodecTable> {
    let table = boxed_table();
    for index in 0..PORTS {
        table
            .create_port(destination_id(index), Some(identity(index)), CONFIG)
            .expect("create");
    }
    table
}

/// Total bytes of every port's blob.
pub fn ports_saved_len(table: &CodecTable) -> usize {
    (0..PORTS)
        .map(|index| table.saved_len(source_id(index), SAVE_NOW).expect("len"))
        .sum()
}

/// Saves every port back to back into `out`; returns the bytes written.
#[inline(never)]
pub fn ferry_save_ports(table: &CodecTable, out: &mut [u8], spans: &mut Spans) -> usize {
    spans.clear();
    let mut at = 0;
    for index in 0..PORTS {
        let len = table
            .save_port(source_id(index), SAVE_NOW, &mut out[at..])
            .expect("save port");
        spans.push((at, len));
        at += len;
    }
    at
}

/// Restores every port blob onto the destination's ports.
#[inline(never)]
pub fn ferry_restore_ports(table: &CodecTable, blobs: &[u8], spans: &Spans) {
    for (index, &(at, len)) in spans.iter().enumerate() {
        table
            .restore_port(destination_id(index), &blobs[at..at + len], RESTORE_NOW)
            .expect("restore port");
    }
}

/// The postcard mirror of one flow record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostcardFlow {
    family: u8,
    source: u128,
    destination: u128,
    source_port: u16,
    destination_port: u16,
    protocol: u8,
    frames: u64,
    bytes: u64,
    age: u64,
}

/// The postcard mirror of a port's saved state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostcardPort {
    identity: Option<[u8; 16]>,
    counters: [u64; 11],
    buckets: [[u64; 5]; 2],
    flows: Vec<PostcardFlow>,
}

/// The mirror values of every port of `table` as saved at [`SAVE_NOW`].
pub fn postcard_ports(table: &CodecTable) -> Vec<PostcardPort> {
    (0..PORTS)
        .map(|index| {
            table
                .with_port(source_id(index), |port| {
                    let c = port.counters();
                    let bucket = |direction| {
                        let b = port.bucket(direction);
                        let s = b.snapshot(SAVE_NOW);
                        [
                            b.limit().bytes_per_second,
                            b.limit().burst_bytes,
                            s.tokens,
                            s.remainder,
                            s.refill_age,
                        ]
                    };
                    PostcardPort {
                        identity: port.identity().map(|i| i.0),
                        counters: [
                            c.ingress.permitted.frames,
                            c.ingress.permitted.bytes,
                            c.ingress.dropped_rate_limited.frames,
                            c.ingress.dropped_rate_limited.bytes,
                            c.egress.permitted.frames,
                            c.egress.permitted.bytes,
                            c.egress.dropped_rate_limited.frames,
                            c.egress.dropped_rate_limited.bytes,
                            c.flows_created,
                            c.flows_evicted,
                            c.flow_table_full,
                        ],
                        buckets: [bucket(Direction::Ingress), bucket(Direction::Egress)],
                        flows: port
                            .flows()
                            .iter_for_save()
                            .map(|f| PostcardFlow {
                                family: f.key.family() as u8,
                                source: f.key.source(),
                                destination: f.key.destination(),
                                source_port: f.key.source_port(),
                                destination_port: f.key.destination_port(),
                                protocol: f.key.protocol(),
                                frames: f.counters.frames,
                                bytes: f.counters.bytes,
                                age: SAVE_NOW.saturating_since(f.last_seen),
                            })
                            .collect(),
                    }
                })
                .expect("port")
        })
        .collect()
}

/// Checks a restored destination port equals its source (flows, counters).
pub fn assert_restored(source: &CodecTable, destination: &CodecTable) {
    for index in 0..PORTS {
        let (a, b) = (
            source.counters(source_id(index)).expect("source"),
            destination
                .counters(destination_id(index))
                .expect("destination"),
        );
        assert_eq!(a, b, "counters of port {index}");
        let flows =
            |table: &CodecTable, id| table.with_port(id, |p| p.flows().len()).expect("port");
        assert_eq!(
            flows(source, source_id(index)),
            flows(destination, destination_id(index)),
            "flows of port {index}"
        );
    }
}
