//! A live migration a benchmark can drive step by step on the simulated host: save on a source
//! host, transfer the bytes, restore on a destination host — through the simulated KMCL
//! (`VmbChannelSaveBegin`/`SaveContinue`/`SaveEnd` with `EvtVmbChannelSavePacket` per packet,
//! `VmbChannelRestoreFromBuffer` with `EvtVmbChannelRestorePacket`) and the simulated switch
//! (`OID_SWITCH_NIC_SAVE` / `OID_SWITCH_NIC_RESTORE` into the callout), with ferry-core's
//! `Channel` and `PortTable` doing the work, as in a scenario's migration.
//!
//! What differs from [`crate::world`]: no guests, traffic, faults or checks of invariants, and
//! the ferry side is sized for a benchmark's set — [`DRIVER_OUTGOING`] (the Windows driver's)
//! or up to [`MAX_TRANSACTIONS`] in flight per channel, any number of channels, [`PORTS`] ports of [`FLOW_SLOTS`] flow slots — where the
//! scenario driver ([`crate::driver::Driver`]) is sized for small scenarios (8 transactions per
//! channel, 16 ports × 64 flows). The wiring ([`BenchDriver`]) forwards each KMCL and switch callback to
//! core exactly as [`crate::driver::Driver`] does. The in-flight transactions are
//! port-statistics notifications (blob kind 1) from [`NotifyingService`], a service that only
//! sends: the reference service would first need a guest to negotiate and subscribe.
//!
//! Nothing here changes the simulator's behaviour: it is new code over its public API.
//!
//! ```no_run
//! use ferry_platform_mock::bench_support::{DriverShapedMigration, MigrationSet};
//!
//! let set = MigrationSet { channels: 2, transactions: 64, ports: 4, flows_per_port: 16 };
//! let outcome = DriverShapedMigration::new(set).run().expect("intact bytes restore");
//! // (`run` takes `&mut self`: the hosts outlive the measured migration.)
//! assert_eq!(outcome.transactions_restored, 64);
//! ```

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::fmt;
use std::rc::Rc;

use ferry_core::channel::{
    Channel, ChannelEvent, ChannelService, Disposition, Refusal, TransactionState,
};
use ferry_core::lock::SpinRawLock;
use ferry_core::platform::{Platform, Ticks, TransactionKey};
use ferry_core::port::{
    Direction, FlowKey, FrameInfo, PortConfig, PortIdentity, PortTable, RateLimit, SwitchPortId,
    Verdict,
};
use ferry_core::protocol::{
    self, Event, Notification, NotificationBody, PROTOCOL_VERSION_1, PortStats,
};
use ferry_core::service::NotificationTx;
use ferry_core::status::NtStatus;

use crate::clock::{HostClock, VirtualTime};
use crate::driver::QUOTA;
use crate::kmcl::{ChannelHandle, IncomingPacketHandle, Kmcl, PacketHandle, ServerCallbacks};
use crate::platform::{HostServices, SimPlatform};
use crate::vswitch::{PortSaveCompletion, SaveProgress, SaveReturn, VSwitch, VSwitchCallout};

/// Most transactions in flight on one benchmark channel (the largest outgoing-ledger capacity
/// a [`PreparedMigration`] is built with).
pub const MAX_TRANSACTIONS: usize = 4096;
/// The Windows driver's outgoing-ledger capacity per channel (`OUTGOING` in
/// `crates/platform-wdk/src/host/mod.rs`).
pub const DRIVER_OUTGOING: usize = 16;
/// Port-table capacity of a benchmark host.
pub const PORTS: usize = 256;
/// Flow slots per port (a power of two; twice the 1,024 flows of the benchmark set, so no flow
/// is displaced by the probe window while the set is built).
pub const FLOW_SLOTS: usize = 2048;
/// Bytes per `VmbChannelSaveContinue` call.
pub const SAVE_CHUNK: usize = 64 << 10;

/// A benchmark host's port table.
pub type BenchPortTable = PortTable<SpinRawLock, PORTS, FLOW_SLOTS>;
/// A benchmark channel whose outgoing ledger holds `OUTGOING` transactions.
pub type BenchChannel<const OUTGOING: usize> =
    Channel<SimPlatform, NotifyingService, QUOTA, OUTGOING>;
/// The issue's set as the Windows driver holds it (see [`MigrationSet::ISSUE_7`]).
pub type DriverShapedMigration = PreparedMigration<DRIVER_OUTGOING>;
/// Every transaction on one channel (see [`MigrationSet::ISSUE_7_ONE_CHANNEL`]).
pub type OneChannelMigration = PreparedMigration<MAX_TRANSACTIONS>;

/// Rate limits of every port (both directions limited, so the buckets carry state).
const LIMIT: RateLimit = RateLimit {
    bytes_per_second: 125_000_000,
    burst_bytes: 1 << 20,
};

/// What migrates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MigrationSet {
    /// Channels (one per VM) the transactions are spread over, evenly.
    pub channels: usize,
    /// Host→guest transactions in flight, in all (at most [`MAX_TRANSACTIONS`] per channel).
    pub transactions: usize,
    /// Switch ports of the VM (at most [`PORTS`]).
    pub ports: usize,
    /// Flows per port (at most [`FLOW_SLOTS`]` / 2`).
    pub flows_per_port: usize,
}

impl MigrationSet {
    /// The set of issue 7 — 4,096 transactions, 256 ports × 1,024 flows — as the Windows
    /// driver holds it: 256 channels with 16 transactions in flight each (its `OUTGOING`,
    /// `crates/platform-wdk/src/host/mod.rs`).
    pub const ISSUE_7: Self = Self {
        channels: 256,
        transactions: 4096,
        ports: 256,
        flows_per_port: 1024,
    };

    /// The same set with all 4,096 transactions on one channel: work per channel that grows
    /// with the transactions in flight shows here.
    pub const ISSUE_7_ONE_CHANNEL: Self = Self {
        channels: 1,
        ..Self::ISSUE_7
    };

    /// Transactions on channel number `index`.
    const fn transactions_on(&self, index: usize) -> usize {
        let base = self.transactions / self.channels;
        if index < self.transactions % self.channels {
            base + 1
        } else {
            base
        }
    }
}

/// The bytes a migration carried, by part.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MigrationBytes {
    /// KMCL's saved channel streams (its own per-packet state plus each SaveBuf).
    pub kmcl_stream: usize,
    /// The SaveBufs inside the stream: ferry's kind-1 blobs.
    pub transaction_blobs: usize,
    /// The port runtime-state blobs (kind 2).
    pub port_blobs: usize,
}

impl MigrationBytes {
    /// Everything transferred.
    #[must_use]
    pub const fn total(&self) -> usize {
        self.kmcl_stream + self.port_blobs
    }
}

/// What one migration did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MigrationOutcome {
    /// Bytes transferred.
    pub bytes: MigrationBytes,
    /// Transactions restored on the destination channels.
    pub transactions_restored: usize,
    /// Flows held by the destination ports after the restore.
    pub flows_restored: usize,
}

/// A source host holding the set and an empty destination host, ready for one migration; each
/// channel's outgoing ledger holds `OUTGOING` transactions.
pub struct PreparedMigration<const OUTGOING: usize> {
    set: MigrationSet,
    source: BenchHost<OUTGOING>,
    channels: Vec<ChannelHandle>,
    source_ports: Vec<SwitchPortId>,
    destination: BenchHost<OUTGOING>,
    /// The save stream's and the transfer's buffers, sized and touched during setup: the
    /// `memcpy` baseline copies between buffers already mapped, so the measured migration does
    /// not pay first-touch page faults either.
    buffers: Buffers,
    ran: bool,
}

#[derive(Default)]
struct Buffers {
    stream: Vec<u8>,
    transfer: Vec<u8>,
}

impl Buffers {
    /// Buffers for a set of `transactions` and `flows`, generously sized and touched.
    fn for_set(set: MigrationSet) -> Self {
        let stream = set.transactions * 512 + SAVE_CHUNK;
        let transfer = stream + set.ports * (512 + 64 * set.flows_per_port);
        let touched = |len: usize| {
            let mut buffer = vec![1u8; len];
            buffer.clear();
            buffer
        };
        Self {
            stream: touched(stream),
            transfer: touched(transfer),
        }
    }
}

impl<const OUTGOING: usize> PreparedMigration<OUTGOING> {
    /// Builds both hosts and loads the source: the channel offered, opened by the guest,
    /// started, `set.transactions` notifications sent and not completed, then paused (a
    /// migration's first step); `set.ports` ports with `set.flows_per_port` flows each,
    /// created through the switch and filled by frames through its classify path.
    ///
    /// # Panics
    ///
    /// If the set exceeds the capacities above or the simulated host refuses a step (a bug
    /// in this module).
    #[must_use]
    pub fn new(set: MigrationSet) -> Self {
        assert!(set.channels > 0, "at least one channel");
        assert!(
            set.transactions_on(0) <= OUTGOING,
            "too many transactions per channel"
        );
        assert!(set.ports <= PORTS, "too many ports");
        assert!(
            set.flows_per_port <= FLOW_SLOTS / 2,
            "too many flows per port"
        );
        let time = VirtualTime::new();
        let source = BenchHost::new(&time, 0, 1_000_000_000);
        let destination = BenchHost::new(&time, 50_000, 7_000_000_000);

        let channels: Vec<ChannelHandle> = (0..set.channels)
            .map(|index| source.open_channel(vm(index), set.transactions_on(index)))
            .collect();

        let mut source_ports = Vec::with_capacity(set.ports);
        let mut flow = 0u32;
        for index in 0..set.ports {
            let port = source
                .services()
                .vswitch
                .create_port(identity(index), &source.driver)
                .expect("port create");
            while source.driver.ports.with_port(port, |p| p.flows().len()) != Ok(set.flows_per_port)
            {
                flow = flow.wrapping_add(1);
                time.advance(1);
                let frame = frame(flow);
                source
                    .services()
                    .vswitch
                    .classify(port, &frame, &source.driver)
                    .expect("classify");
            }
            source_ports.push(port);
        }
        time.advance(10_000);
        for &channel in &channels {
            source.driver.request(channel, ChannelEvent::Pause);
            source.services().kmcl.pause(channel, &source.driver);
        }
        Self {
            set,
            source,
            channels,
            source_ports,
            destination,
            buffers: Buffers::for_set(set),
            ran: false,
        }
    }

    /// The set this migration carries.
    #[must_use]
    pub const fn set(&self) -> MigrationSet {
        self.set
    }

    /// Save on the source, transfer, restore on the destination: the measured blackout. Both
    /// hosts stay alive afterwards (so a benchmark does not time their teardown); a prepared
    /// migration runs once.
    ///
    /// # Errors
    ///
    /// The first step the simulated host or ferry refused, as text; a second call.
    pub fn run(&mut self) -> Result<MigrationOutcome, String> {
        if self.ran {
            return Err("this migration already ran".into());
        }
        self.ran = true;
        let mut buffers = std::mem::take(&mut self.buffers);
        let saved = self.save(std::mem::take(&mut buffers.stream))?;
        let transferred = saved.transfer(std::mem::take(&mut buffers.transfer));
        self.restore(&transferred)
    }

    /// Saves every channel (KMCL streams, in [`SAVE_CHUNK`] chunks, one after the other in
    /// `streams`) and every port.
    fn save(&self, mut streams: Vec<u8>) -> Result<Saved, String> {
        let kmcl = &self.source.services().kmcl;
        streams.clear();
        let mut stream_spans = Vec::with_capacity(self.channels.len());
        for &channel in &self.channels {
            let first = streams.len();
            kmcl.save_begin(channel, &self.source.driver)
                .map_err(|status| format!("SaveBegin: {status}"))?;
            loop {
                let start = streams.len();
                streams.resize(start + SAVE_CHUNK, 0);
                let chunk = kmcl.save_continue(channel, &mut streams[start..]);
                streams.truncate(start + chunk.bytes);
                if chunk.status == NtStatus::SUCCESS {
                    break;
                }
                if chunk.status != NtStatus::BUFFER_OVERFLOW {
                    kmcl.save_end(channel);
                    return Err(format!("SaveContinue: {}", chunk.status));
                }
            }
            kmcl.save_end(channel);
            stream_spans.push((first, streams.len() - first));
        }

        let vswitch = &self.source.services().vswitch;
        let now = self.source.services().clock.now();
        let mut ports = Vec::with_capacity(self.source_ports.len());
        for &port in &self.source_ports {
            let oid = vswitch.request_save(port, now, &self.source.driver);
            match vswitch.save_progress(oid, now) {
                Some(SaveProgress::Saved(blob)) => ports.push(blob),
                other => return Err(format!("port {} save: {other:?}", port.0)),
            }
        }
        Ok(Saved {
            streams,
            stream_spans,
            ports,
        })
    }

    /// Creates the ports on the destination and restores them, then restores the channel
    /// from the stream.
    fn restore(&self, bytes: &Transferred) -> Result<MigrationOutcome, String> {
        let host = &self.destination;
        let vswitch = &host.services().vswitch;
        let mut flows_restored = 0;
        for (index, blob) in bytes.port_blobs().enumerate() {
            let port = vswitch
                .create_port(identity(index), &host.driver)
                .map_err(|status| format!("port create: {status}"))?;
            let status = vswitch.restore(port, blob, &host.driver);
            if status != NtStatus::SUCCESS {
                return Err(format!("port restore: {status}"));
            }
            flows_restored += host
                .driver
                .ports
                .with_port(port, |p| p.flows().len())
                .unwrap_or(0);
        }

        let kmcl = &host.services().kmcl;
        let mut transactions_restored = 0;
        for (index, stream) in bytes.streams().enumerate() {
            let channel = kmcl.allocate(vm(index), QUOTA as u32);
            host.driver.add_channel(channel, NotifyingService::new(0));
            let mut status = NtStatus::MORE_PROCESSING_REQUIRED;
            for chunk in stream.chunks(SAVE_CHUNK) {
                status = kmcl.restore_from_buffer(channel, chunk, &host.driver);
                if status != NtStatus::MORE_PROCESSING_REQUIRED {
                    break;
                }
            }
            if status != NtStatus::SUCCESS {
                return Err(format!("RestoreFromBuffer: {status}"));
            }
            if !host.driver.request(channel, ChannelEvent::Restored) {
                return Err("Restored refused by core".into());
            }
            transactions_restored += host
                .driver
                .channel(channel)
                .map_or(0, |c| c.outstanding().1);
        }
        // Counted by SavePacket as it wrote them (a parse of the streams here would be timed).
        let transaction_blobs = self.source.driver.saved_packet_bytes.get();
        Ok(MigrationOutcome {
            bytes: MigrationBytes {
                kmcl_stream: bytes.stream_len,
                transaction_blobs,
                port_blobs: bytes.bytes.len() - bytes.stream_len,
            },
            transactions_restored,
            flows_restored,
        })
    }
}

/// What the source saved.
struct Saved {
    streams: Vec<u8>,
    stream_spans: Vec<(usize, usize)>,
    ports: Vec<Vec<u8>>,
}

impl Saved {
    /// The transfer: every byte copied into one buffer (`bytes`, emptied first), as a
    /// migration's channel carries it.
    fn transfer(&self, mut bytes: Vec<u8>) -> Transferred {
        bytes.clear();
        bytes.extend_from_slice(&self.streams);
        let mut port_spans = Vec::with_capacity(self.ports.len());
        for blob in &self.ports {
            port_spans.push((bytes.len(), blob.len()));
            bytes.extend_from_slice(blob);
        }
        Transferred {
            bytes,
            stream_len: self.streams.len(),
            stream_spans: self.stream_spans.clone(),
            port_spans,
        }
    }
}

/// The bytes as the destination received them.
struct Transferred {
    bytes: Vec<u8>,
    /// Bytes of all channels' streams, at the start of `bytes`.
    stream_len: usize,
    stream_spans: Vec<(usize, usize)>,
    port_spans: Vec<(usize, usize)>,
}

impl Transferred {
    fn streams(&self) -> impl Iterator<Item = &[u8]> {
        self.stream_spans
            .iter()
            .map(|&(at, len)| &self.bytes[at..at + len])
    }

    fn port_blobs(&self) -> impl Iterator<Item = &[u8]> {
        self.port_spans
            .iter()
            .map(|&(at, len)| &self.bytes[at..at + len])
    }
}

/// The VM of channel number `index`.
fn vm(index: usize) -> u32 {
    u32::try_from(index).map_or(u32::MAX, |index| index + 1)
}

/// The NIC identity of port number `index`.
fn identity(index: usize) -> PortIdentity {
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&(index as u64 + 1).to_le_bytes());
    bytes[8..].copy_from_slice(b"benchnic");
    PortIdentity(bytes)
}

/// Frame number `n`: three in four IPv4, one in four IPv6, each a distinct flow.
fn frame(n: u32) -> FrameInfo {
    let flow = if n.is_multiple_of(4) {
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
    };
    FrameInfo {
        direction: if n.is_multiple_of(3) {
            Direction::Egress
        } else {
            Direction::Ingress
        },
        flow,
        length: 64 + n % 1400,
    }
}

/// One simulated host: its KMCL, switch and clock, with the benchmark driver loaded.
struct BenchHost<const OUTGOING: usize> {
    driver: BenchDriver<OUTGOING>,
}

impl<const OUTGOING: usize> BenchHost<OUTGOING> {
    fn new(time: &VirtualTime, first_port: u32, clock_offset: u64) -> Self {
        let services = Rc::new(HostServices {
            kmcl: Kmcl::new(),
            vswitch: VSwitch::new(first_port),
            clock: HostClock::new(time.clone(), clock_offset),
        });
        Self {
            driver: BenchDriver::new(SimPlatform(services)),
        }
    }

    fn services(&self) -> &HostServices {
        &self.driver.platform.0
    }

    /// A channel for `vm` offered, opened by its guest and started, with `transactions`
    /// notifications sent and not completed.
    fn open_channel(&self, vm: u32, transactions: usize) -> ChannelHandle {
        let kmcl = &self.services().kmcl;
        let channel = kmcl.allocate(vm, QUOTA as u32);
        self.driver
            .add_channel(channel, NotifyingService::new(transactions));
        kmcl.enable(channel);
        self.driver.request(channel, ChannelEvent::Enable);
        self.driver.request(channel, ChannelEvent::Start);
        kmcl.start(channel, &self.driver);
        let opened = kmcl.guest_open(channel, &self.driver);
        assert_eq!(opened, NtStatus::SUCCESS, "guest open");
        let outstanding = self.driver.channel(channel).map(|c| {
            // Sends whatever the channel did not send when it started.
            let _ = c.send_pending(&self.driver.platform);
            c.outstanding().1
        });
        assert_eq!(outstanding, Some(transactions), "notifications in flight");
        channel
    }
}

/// ferry's wiring on a benchmark host: each callback forwarded to core as
/// [`crate::driver::Driver`] forwards it, with capacities for the benchmark set.
pub struct BenchDriver<const OUTGOING: usize> {
    platform: SimPlatform,
    ports: Box<BenchPortTable>,
    channels: RefCell<BTreeMap<ChannelHandle, Rc<BenchChannel<OUTGOING>>>>,
    /// Bytes SavePacket wrote (ferry's kind-1 blobs), over every save.
    saved_packet_bytes: Cell<usize>,
}

impl<const OUTGOING: usize> BenchDriver<OUTGOING> {
    fn new(platform: SimPlatform) -> Self {
        Self {
            platform,
            ports: new_port_table(),
            channels: RefCell::new(BTreeMap::new()),
            saved_packet_bytes: Cell::new(0),
        }
    }

    fn add_channel(&self, handle: ChannelHandle, service: NotifyingService) {
        let channel = Rc::new(Channel::new(handle, service));
        self.channels.borrow_mut().insert(handle, channel);
    }

    fn channel(&self, handle: ChannelHandle) -> Option<Rc<BenchChannel<OUTGOING>>> {
        self.channels.borrow().get(&handle).cloned()
    }

    fn request(&self, handle: ChannelHandle, event: ChannelEvent) -> bool {
        self.channel(handle)
            .is_some_and(|channel| channel.request(event).is_ok())
    }
}

/// A port table of [`PORTS`] × [`FLOW_SLOTS`] (about 40 MiB) built in place on the heap.
fn new_port_table() -> Box<BenchPortTable> {
    // Built on a thread with a stack large enough for a compiler that builds the value on the
    // stack before moving it into the box.
    std::thread::Builder::new()
        .stack_size(256 << 20)
        .spawn(|| Box::new(BenchPortTable::new()))
        .and_then(|thread| thread.join().map_err(|_| std::io::ErrorKind::Other.into()))
        .expect("port table")
}

impl<const OUTGOING: usize> ServerCallbacks for BenchDriver<OUTGOING> {
    fn channel_opened(&self, channel: ChannelHandle) -> NtStatus {
        self.channel(channel)
            .map_or(NtStatus::NOT_FOUND, |c| c.on_opened(&self.platform))
    }

    fn channel_started(&self, channel: ChannelHandle) {
        if let Some(c) = self.channel(channel) {
            let _ = c.on_started(&self.platform);
        }
    }

    fn channel_post_started(&self, channel: ChannelHandle) {
        if let Some(c) = self.channel(channel) {
            let _ = c.on_post_started(&self.platform);
        }
    }

    fn channel_suspend(&self, channel: ChannelHandle) {
        if let Some(c) = self.channel(channel) {
            let _ = c.on_suspend(&self.platform);
        }
    }

    fn channel_closed(&self, channel: ChannelHandle) {
        if let Some(c) = self.channel(channel) {
            let _ = c.on_closed(&self.platform);
        }
    }

    fn process_packet(&self, _: ChannelHandle, packet: IncomingPacketHandle, _: &[u8]) {
        // No guest sends requests in a benchmark migration.
        self.platform.0.kmcl.packet_fail(packet);
    }

    fn processing_complete(&self, channel: ChannelHandle, count: u32) {
        if let Some(c) = self.channel(channel) {
            let _ = c.processing_complete(count);
        }
    }

    fn packet_completion(
        &self,
        channel: ChannelHandle,
        packet: PacketHandle,
        key_bits: u32,
        status: NtStatus,
        payload: &[u8],
    ) {
        self.platform.0.kmcl.packet_free(packet);
        if let Some(c) = self.channel(channel) {
            let key = TransactionKey::from_bits(key_bits);
            let _ = c.transaction_completed(&self.platform, key, status, payload);
        }
    }

    fn save_packet(
        &self,
        channel: ChannelHandle,
        key_bits: u32,
        buffer: &mut [u8],
    ) -> (NtStatus, u32) {
        let Some(core) = self.channel(channel) else {
            return (NtStatus::NOT_FOUND, 0);
        };
        let answer = core.save_packet(&self.platform, TransactionKey::from_bits(key_bits), buffer);
        if answer.status.is_success() && !buffer.is_empty() {
            let written = usize::try_from(answer.bytes).unwrap_or(0);
            self.saved_packet_bytes
                .set(self.saved_packet_bytes.get() + written);
        }
        (answer.status, answer.bytes)
    }

    fn restore_packet(&self, channel: ChannelHandle, library: &[u8], saved: &[u8]) -> NtStatus {
        let Some(core) = self.channel(channel) else {
            return NtStatus::NOT_FOUND;
        };
        match core.restore_packet(&self.platform, library, saved) {
            Ok(_) => NtStatus::SUCCESS,
            Err(error) => error.status(),
        }
    }
}

impl<const OUTGOING: usize> VSwitchCallout for BenchDriver<OUTGOING> {
    fn port_create(&self, port: SwitchPortId, identity: PortIdentity) -> NtStatus {
        let config = PortConfig {
            ingress: LIMIT,
            egress: LIMIT,
        };
        match self.ports.create_port(port, Some(identity), config) {
            Ok(()) => NtStatus::SUCCESS,
            Err(error) => error.status(),
        }
    }

    fn port_delete(&self, port: SwitchPortId) {
        let _ = self.ports.delete_port(port);
    }

    fn classify(&self, port: SwitchPortId, frame: &FrameInfo) -> Verdict {
        self.ports
            .classify(port, frame, self.platform.now())
            .unwrap_or(Verdict::Permit)
    }

    fn runtime_state_save(&self, port: SwitchPortId, _: PortSaveCompletion) -> SaveReturn {
        let now = self.platform.now();
        let len = match self.ports.saved_len(port, now) {
            Ok(len) => len,
            Err(error) => return SaveReturn::Failed(error.status()),
        };
        let mut blob = vec![0u8; len];
        match self.ports.save_port(port, now, &mut blob) {
            Ok(n) => {
                blob.truncate(n);
                SaveReturn::Saved(blob)
            }
            Err(error) => SaveReturn::Failed(error.status()),
        }
    }

    fn runtime_state_restore(&self, port: SwitchPortId, blob: &[u8]) -> NtStatus {
        match self.ports.restore_port(port, blob, self.platform.now()) {
            Ok(()) => NtStatus::SUCCESS,
            Err(error) => error.status(),
        }
    }
}

/// A service that only sends: a given number of port-statistics notifications (the reference
/// service's message and transaction context), none of which the guest completes here.
pub struct NotifyingService {
    to_send: usize,
    next_sequence: u64,
    restored: Cell<usize>,
}

impl NotifyingService {
    /// A service with `count` notifications to send.
    #[must_use]
    pub const fn new(count: usize) -> Self {
        Self {
            to_send: count,
            next_sequence: 1,
            restored: Cell::new(0),
        }
    }
}

/// A completion the benchmark service does not expect (it never gets one).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnexpectedCompletion;

impl fmt::Display for UnexpectedCompletion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the benchmark service expects no completion")
    }
}

impl ChannelService for NotifyingService {
    type Request = ();
    type Transaction = NotificationTx;
    type CompletionError = UnexpectedCompletion;

    fn handle_packet(&mut self, _: &[u8], _: &mut [u8], _: Ticks) -> Disposition<()> {
        Disposition::Fail
    }

    fn refusal(&self, _: Option<()>, _: &[u8], _: Refusal, _: &mut [u8]) -> usize {
        0
    }

    fn next_send(&mut self, out: &mut [u8], now: Ticks) -> Option<(NotificationTx, usize)> {
        self.to_send = self.to_send.checked_sub(1)?;
        let sequence = self.next_sequence;
        self.next_sequence += 1;
        let notification = Notification {
            version: PROTOCOL_VERSION_1,
            sequence,
            body: NotificationBody::PortStats(PortStats {
                rx_frames: sequence,
                rx_bytes: sequence * 1500,
                tx_frames: sequence,
                tx_bytes: sequence * 900,
                dropped_frames: 0,
                dropped_bytes: 0,
                flows_active: 1024,
                flows_evicted: 0,
            }),
        };
        let len = protocol::encode_notification(&notification, out).ok()?;
        let tx = NotificationTx {
            sequence: Some(sequence),
            event: Event::PortStats,
            sent_at: now,
        };
        debug_assert!(tx.saved_len(now) > 0, "port statistics save state");
        Some((tx, len))
    }

    fn send_failed(&mut self, _: NotificationTx, _: NtStatus) {
        self.to_send += 1;
    }

    fn transaction_completed(
        &mut self,
        _: NotificationTx,
        _: NtStatus,
        _: &[u8],
    ) -> Result<(), UnexpectedCompletion> {
        Err(UnexpectedCompletion)
    }

    fn transaction_retired(&mut self, _: NotificationTx) {}

    fn reset_session(&mut self) {}

    fn transaction_restored(&mut self, _: &NotificationTx) {
        self.restored.set(self.restored.get() + 1);
    }

    fn transaction_identity(&self, transaction: &NotificationTx) -> Option<u64> {
        transaction.sequence
    }
}

#[cfg(test)]
mod tests {
    use super::{DriverShapedMigration, MigrationSet, OneChannelMigration};

    #[test]
    fn a_small_set_migrates_whole() {
        let set = MigrationSet {
            channels: 3,
            transactions: 40,
            ports: 3,
            flows_per_port: 20,
        };
        let mut migration = DriverShapedMigration::new(set);
        let outcome = migration.run().unwrap();
        assert!(migration.run().is_err(), "runs once");
        assert_eq!(outcome.transactions_restored, 40);
        assert_eq!(outcome.flows_restored, 60);
        assert_eq!(outcome.bytes.transaction_blobs, 40 * 58);
        // 348 + 62 per flow per port (docs/saved-state/port-runtime-state.md).
        assert_eq!(outcome.bytes.port_blobs, 3 * (348 + 62 * 20));
        assert!(outcome.bytes.kmcl_stream > outcome.bytes.transaction_blobs);
    }

    #[test]
    fn one_channel_holds_a_set_the_driver_shape_spreads() {
        let set = MigrationSet {
            channels: 1,
            transactions: 100,
            ports: 1,
            flows_per_port: 4,
        };
        let outcome = OneChannelMigration::new(set).run().unwrap();
        assert_eq!(outcome.transactions_restored, 100);
        let spread = MigrationSet { channels: 7, ..set };
        let outcome = DriverShapedMigration::new(spread).run().unwrap();
        assert_eq!(outcome.transactions_restored, 100, "15 or 14 per channel");
    }
}
