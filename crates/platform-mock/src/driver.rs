//! ferry's driver wiring on a simulated host: what `crates/driver` and platform-wdk's
//! trampolines do on Windows — recover the core object for a callback and hand over — plus
//! the few decisions a driver owns (when to request Start/Pause/Disable, how to answer a
//! vSwitch save). Core decides everything else.
//!
//! Contract breaches the driver side notices (core refusing a callback KMCL should not have
//! made, a batch count that disagrees) are recorded as findings for the invariants.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::rc::Rc;

use ferry_core::channel::incoming::IncomingId;
use ferry_core::channel::{Channel, ChannelError, ChannelEvent, ChannelStats, PacketOutcome};
use ferry_core::lock::SpinRawLock;
use ferry_core::platform::{Platform, Ticks, TransactionKey};
use ferry_core::port::rate::BucketSnapshot;
use ferry_core::port::{
    Direction, PendingSaves, PortConfig, PortCounters, PortIdentity, PortState, PortTable,
    SAVE_CANCELLED_STATUS, SwitchPortId, TrafficCounters, Verdict,
};
use ferry_core::protocol::{EventSet, MAX_MESSAGE_LEN, PortStats};
use ferry_core::service::{FerryService, PortStatsSource, ServiceConfig, ServiceStats};
use ferry_core::status::NtStatus;

use crate::kmcl::{ChannelHandle, IncomingPacketHandle, PacketHandle, ServerCallbacks, ToHost};
use crate::platform::SimPlatform;
use crate::vswitch::{PortSaveCompletion, SaveReturn, VSwitchCallout};

/// The transaction quota of every simulated channel (core's incoming-ledger capacity).
pub const QUOTA: usize = 8;
/// Host→guest transactions in flight per channel.
pub const OUTGOING: usize = 8;
/// Port-table capacity per host.
pub const PORTS: usize = 16;
/// Flow-table capacity per port.
pub const FLOWS: usize = 64;
/// Pended port saves per host.
pub const PENDING_SAVES: usize = 16;

/// The port table of one simulated host.
pub type SimPortTable = PortTable<SpinRawLock, PORTS, FLOWS>;

/// The port table shared between the callout and the channels' services.
#[derive(Clone)]
pub struct SharedPorts(pub Rc<SimPortTable>);

impl PortStatsSource for SharedPorts {
    fn port_stats(&self, identity: &PortIdentity) -> Option<PortStats> {
        self.0.port_stats(identity)
    }
}

/// ferry's reference service on the simulated host.
pub type SimService = FerryService<SharedPorts>;
/// A ferry channel on the simulated host.
pub type SimChannel = Channel<SimPlatform, SimService, QUOTA, OUTGOING>;

/// How the callout answers the next runtime-state saves.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PortSaveMode {
    /// Save at once.
    #[default]
    Synchronous,
    /// Return `STATUS_PENDING` and finish later.
    Pending,
    /// Return `STATUS_PENDING` and never finish (only the watchdog ends it).
    Hang,
    /// Fail the save.
    Fail,
}

/// One port's state in a form comparable across hosts (no port id, no raw ticks).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortSnapshot {
    /// The NIC.
    pub identity: Option<PortIdentity>,
    /// Counters.
    pub counters: PortCounters,
    /// Flows as (debug key, counters, age in ticks), sorted.
    pub flows: Vec<(String, TrafficCounters, u64)>,
    /// Rate limits.
    pub config: PortConfig,
    /// Token buckets (ingress, egress).
    pub buckets: [BucketSnapshot; 2],
}

/// Counters of the driver side.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DriverStats {
    /// Packets deferred by the service.
    pub deferred: u64,
    /// Deferred packets answered by the worker.
    pub deferred_answered: u64,
    /// Deferred answers that found their packet already retired at Suspend.
    pub deferred_stale: u64,
    /// Guest completions core accepted.
    pub completions_accepted: u64,
    /// Late completions of transactions already retired at close (expected).
    pub late_cancellations: u64,
    /// Packets answered "busy" because core's ledger was full.
    pub busy: u64,
    /// Restores (packets, sessions, ports) refused as invalid.
    pub restores_refused: u64,
    /// Pended port saves the watchdog failed.
    pub saves_reaped: u64,
}

/// ferry on one simulated host.
pub struct Driver {
    platform: SimPlatform,
    ports: Rc<SimPortTable>,
    pending: PendingSaves<SpinRawLock, PortSaveCompletion, PENDING_SAVES>,
    channels: RefCell<BTreeMap<ChannelHandle, Rc<SimChannel>>>,
    deferred: RefCell<Vec<(ChannelHandle, IncomingId)>>,
    port_configs: RefCell<BTreeMap<[u8; 16], PortConfig>>,
    hung: RefCell<BTreeSet<SwitchPortId>>,
    findings: RefCell<Vec<String>>,
    stats: Cell<DriverStats>,
    /// Faults: refuse this many upcoming guest opens.
    pub refuse_opens: Cell<u32>,
    /// Faults: fail every SavePacket while set.
    pub fail_save_packet: Cell<bool>,
    /// Faults: how runtime-state saves are answered.
    pub port_save_mode: Cell<PortSaveMode>,
    /// Faults: completion statuses other than success expected (bad acks injected).
    pub tolerate_bad_acks: Cell<bool>,
}

impl Driver {
    /// ferry loaded on the host `platform` stands for.
    #[must_use]
    pub fn new(platform: SimPlatform) -> Self {
        Self {
            platform,
            ports: Rc::new(SimPortTable::new()),
            pending: PendingSaves::new(),
            channels: RefCell::new(BTreeMap::new()),
            deferred: RefCell::new(Vec::new()),
            port_configs: RefCell::new(BTreeMap::new()),
            hung: RefCell::new(BTreeSet::new()),
            findings: RefCell::new(Vec::new()),
            stats: Cell::new(DriverStats::default()),
            refuse_opens: Cell::new(0),
            fail_save_packet: Cell::new(false),
            port_save_mode: Cell::new(PortSaveMode::Synchronous),
            tolerate_bad_acks: Cell::new(false),
        }
    }

    fn bump(&self, f: impl FnOnce(&mut DriverStats)) {
        let mut stats = self.stats.get();
        f(&mut stats);
        self.stats.set(stats);
    }

    fn finding(&self, text: String) {
        self.findings.borrow_mut().push(text);
    }

    /// Findings, oldest first; the list is emptied.
    pub fn take_findings(&self) -> Vec<String> {
        std::mem::take(&mut self.findings.borrow_mut())
    }

    /// Counters.
    #[must_use]
    pub fn stats(&self) -> DriverStats {
        self.stats.get()
    }

    /// The host's platform.
    #[must_use]
    pub fn platform(&self) -> &SimPlatform {
        &self.platform
    }

    /// The port table.
    #[must_use]
    pub fn ports(&self) -> &SimPortTable {
        &self.ports
    }

    /// Pended saves in core's list.
    #[must_use]
    pub fn pending_saves(&self) -> usize {
        self.pending.len()
    }

    fn channel(&self, handle: ChannelHandle) -> Option<Rc<SimChannel>> {
        self.channels.borrow().get(&handle).cloned()
    }

    /// Every channel this driver created, with its handle.
    #[must_use]
    pub fn channels(&self) -> Vec<(ChannelHandle, Rc<SimChannel>)> {
        self.channels
            .borrow()
            .iter()
            .map(|(h, c)| (*h, Rc::clone(c)))
            .collect()
    }

    /// The core channel behind `handle`.
    #[must_use]
    pub fn core_channel(&self, handle: ChannelHandle) -> Option<Rc<SimChannel>> {
        self.channel(handle)
    }

    /// Core's counters of a channel.
    #[must_use]
    pub fn channel_stats(&self, handle: ChannelHandle) -> Option<ChannelStats> {
        self.channel(handle).map(|c| c.stats())
    }

    /// One counter of a channel (0 for a channel the driver does not know).
    pub fn channel_stat(
        &self,
        handle: ChannelHandle,
        counter: impl Fn(&ChannelStats) -> u64,
    ) -> u64 {
        self.channel_stats(handle)
            .map_or(0, |stats| counter(&stats))
    }

    /// The service's counters of a channel.
    #[must_use]
    pub fn service_stats(&self, handle: ChannelHandle) -> Option<ServiceStats> {
        self.channel(handle).map(|c| c.with_service(|s| s.stats()))
    }

    fn request(&self, handle: ChannelHandle, event: ChannelEvent) -> bool {
        let Some(channel) = self.channel(handle) else {
            return false;
        };
        match channel.request(event) {
            Ok(()) => true,
            Err(error) => {
                self.finding(format!(
                    "channel {}: request {event} refused: {error}",
                    handle.0
                ));
                false
            }
        }
    }

    /// Allocates a channel for the VM whose NIC is `identity` (`VmbChannelAllocate`, quota,
    /// callbacks), without offering it.
    pub fn allocate_channel(
        &self,
        vm: u32,
        identity: PortIdentity,
        defer_port_stats: bool,
    ) -> ChannelHandle {
        let handle = self.platform.0.kmcl.allocate(vm, QUOTA as u32);
        let service = FerryService::new(
            SharedPorts(Rc::clone(&self.ports)),
            Some(identity),
            ServiceConfig { defer_port_stats },
        );
        self.channels
            .borrow_mut()
            .insert(handle, Rc::new(Channel::new(handle, service)));
        handle
    }

    /// Offers a new channel and starts it (it runs once the guest opens it).
    pub fn offer_channel(
        &self,
        vm: u32,
        identity: PortIdentity,
        defer_port_stats: bool,
    ) -> ChannelHandle {
        let handle = self.allocate_channel(vm, identity, defer_port_stats);
        self.platform.0.kmcl.enable(handle);
        self.request(handle, ChannelEvent::Enable);
        self.start(handle);
        handle
    }

    /// `VmbChannelStart`, recorded in core first.
    pub fn start(&self, handle: ChannelHandle) {
        if self.request(handle, ChannelEvent::Start) {
            self.platform.0.kmcl.start(handle, self);
        }
    }

    /// `VmbChannelPause`, recorded in core first.
    pub fn pause(&self, handle: ChannelHandle) {
        if self.request(handle, ChannelEvent::Pause) {
            self.platform.0.kmcl.pause(handle, self);
        }
    }

    /// `VmbChannelDisable` (then the channel stays for its counters; `VmbChannelCleanup` is
    /// not modelled as a separate step).
    pub fn disable(&self, handle: ChannelHandle, ring: &mut VecDeque<ToHost>) {
        if self.request(handle, ChannelEvent::Disable) {
            self.platform.0.kmcl.disable(handle, ring, self);
        }
    }

    /// Raises `events` on a channel and sends what it can.
    pub fn raise(&self, handle: ChannelHandle, events: EventSet) {
        let Some(channel) = self.channel(handle) else {
            return;
        };
        channel.with_service(|s| s.raise(events));
        if let Err(error) = channel.send_pending(&self.platform) {
            self.finding(format!("channel {}: send failed: {error}", handle.0));
        }
    }

    /// Deferred packets produced since the last call (for the worker "thread").
    pub fn take_deferred(&self) -> Vec<(ChannelHandle, IncomingId)> {
        std::mem::take(&mut self.deferred.borrow_mut())
    }

    /// The worker answers one deferred packet.
    pub fn answer_deferred(&self, handle: ChannelHandle, id: IncomingId) {
        let Some(channel) = self.channel(handle) else {
            return;
        };
        let mut scratch = vec![0u8; MAX_MESSAGE_LEN];
        match channel.answer_deferred(&self.platform, id, &mut scratch, |s, request, out| {
            s.answer_deferred(request, out)
        }) {
            Ok(()) => self.bump(|s| s.deferred_answered += 1),
            Err(ChannelError::UnknownIncoming(_)) => self.bump(|s| s.deferred_stale += 1),
            Err(error) => self.finding(format!(
                "channel {}: deferred answer failed: {error}",
                handle.0
            )),
        }
    }

    /// The session's saved form (blob kind 3).
    #[must_use]
    pub fn save_session(&self, handle: ChannelHandle) -> Vec<u8> {
        let Some(channel) = self.channel(handle) else {
            return Vec::new();
        };
        channel.with_service(|s| {
            let mut blob = vec![0u8; s.saved_session_len()];
            match s.save_session(&mut blob) {
                Ok(n) => blob.truncate(n),
                Err(_) => blob.clear(),
            }
            blob
        })
    }

    /// Restores a channel on this host from a migration's bytes: the session first (validated
    /// before anything else), then the KMCL stream chunk by chunk (RestorePacket per saved
    /// transaction), then `Restored` in core.
    ///
    /// # Errors
    ///
    /// Why the bytes were refused; the caller discards the channel.
    pub fn restore_channel(
        &self,
        handle: ChannelHandle,
        session: &[u8],
        chunks: &[Vec<u8>],
    ) -> Result<(), String> {
        let channel = self.channel(handle).ok_or("no such channel")?;
        if let Err(error) = channel.with_service(|s| s.restore_session(session)) {
            self.bump(|s| s.restores_refused += 1);
            return Err(format!("session refused: {error}"));
        }
        let mut status = NtStatus::MORE_PROCESSING_REQUIRED;
        for chunk in chunks {
            status = self
                .platform
                .0
                .kmcl
                .restore_from_buffer(handle, chunk, self);
            if status != NtStatus::MORE_PROCESSING_REQUIRED {
                break;
            }
        }
        if status != NtStatus::SUCCESS {
            self.bump(|s| s.restores_refused += 1);
            return Err(format!("RestoreFromBuffer: {status}"));
        }
        if self.request(handle, ChannelEvent::Restored) {
            Ok(())
        } else {
            Err("Restored refused by core".into())
        }
    }

    /// Sets the rate limits the next port created for `identity` gets.
    pub fn set_port_config(&self, identity: PortIdentity, config: PortConfig) {
        self.port_configs.borrow_mut().insert(identity.0, config);
    }

    /// Ports with a pended save that the callout will finish (not hung).
    #[must_use]
    pub fn finishable_saves(&self, ports: &[SwitchPortId]) -> Vec<SwitchPortId> {
        let hung = self.hung.borrow();
        ports
            .iter()
            .copied()
            .filter(|p| self.pending.is_pending(*p) && !hung.contains(p))
            .collect()
    }

    /// The callout finishes the pended save of `port` (`FwpsvSwitchNotifyComplete0`).
    pub fn finish_port_save(&self, port: SwitchPortId) {
        let now = self.platform.now();
        let len = self.ports.saved_len(port, now).unwrap_or(0);
        let mut blob = vec![0u8; len];
        let Some(finished) = self.pending.finish(&self.ports, port, now, &mut blob) else {
            return;
        };
        if let Ok(n) = finished.result {
            blob.truncate(n);
            self.platform
                .0
                .vswitch
                .write_runtime_state(finished.completion.oid(), blob);
        }
        self.platform
            .complete_port_save(finished.completion, finished.status);
    }

    /// The watchdog: fails pended saves outstanding for more than `timeout` ticks.
    pub fn reap_overdue_saves(&self, timeout: u64) {
        let now = self.platform.now();
        while let Some(save) = self.pending.take_overdue(now, timeout) {
            self.hung.borrow_mut().remove(&save.port);
            self.bump(|s| s.saves_reaped += 1);
            self.platform
                .complete_port_save(save.completion, NtStatus::CANCELLED);
        }
    }

    /// A port's state, comparable across hosts.
    #[must_use]
    pub fn port_snapshot(&self, port: SwitchPortId) -> Option<PortSnapshot> {
        let now = self.platform.now();
        self.ports
            .with_port(port, |state| PortSnapshot::of(state, now))
            .ok()
    }
}

impl PortSnapshot {
    /// The snapshot of one port's `state` at `now` (any flow-table capacity: the simulated
    /// driver's and the real platform's port tables differ in size).
    #[must_use]
    pub fn of<const F: usize>(state: &PortState<F>, now: Ticks) -> Self {
        let mut flows: Vec<(String, TrafficCounters, u64)> = state
            .flows()
            .iter_for_save()
            .map(|f| {
                (
                    format!("{:?}", f.key),
                    f.counters,
                    now.saturating_since(f.last_seen),
                )
            })
            .collect();
        flows.sort_by(|a, b| a.0.cmp(&b.0));
        PortSnapshot {
            identity: state.identity(),
            counters: *state.counters(),
            flows,
            config: state.config(),
            // An unlimited bucket is never consulted; its refill time means nothing.
            buckets: [Direction::Ingress, Direction::Egress].map(|d| {
                let bucket = state.bucket(d);
                let limit = bucket.limit();
                let snapshot = bucket.snapshot(now);
                // Ticks to fill an empty bucket: any older refill means "full", and
                // restore may shorten such an age to the destination's uptime
                // (`TokenBucket::restore`), which changes nothing the bucket decides.
                let fill_ticks = u128::from(limit.burst_bytes) * u128::from(Ticks::PER_SECOND)
                    / u128::from(limit.bytes_per_second.max(1));
                if limit.is_unlimited() {
                    BucketSnapshot {
                        tokens: 0,
                        remainder: 0,
                        refill_age: 0,
                    }
                } else if u128::from(snapshot.refill_age) >= fill_ticks {
                    BucketSnapshot {
                        tokens: limit.burst_bytes,
                        remainder: 0,
                        refill_age: 0,
                    }
                } else {
                    snapshot
                }
            }),
        }
    }

    /// The parts of the state in which `self` and `other` differ (empty if equal).
    #[must_use]
    pub fn differences(&self, other: &Self) -> Vec<String> {
        let mut out = Vec::new();
        if self.identity != other.identity {
            out.push("identity".to_string());
        }
        if self.counters != other.counters {
            out.push(format!(
                "counters {:?} vs {:?}",
                self.counters, other.counters
            ));
        }
        if self.flows != other.flows {
            out.push(format!(
                "{} flows vs {} flows (or their counters/ages)",
                self.flows.len(),
                other.flows.len()
            ));
        }
        if self.config != other.config {
            out.push("rate limits".to_string());
        }
        if self.buckets != other.buckets {
            out.push(format!("buckets {:?} vs {:?}", self.buckets, other.buckets));
        }
        out
    }
}

impl ServerCallbacks for Driver {
    fn channel_opened(&self, channel: ChannelHandle) -> NtStatus {
        if self.refuse_opens.get() > 0 {
            self.refuse_opens.set(self.refuse_opens.get() - 1);
            return NtStatus::INSUFFICIENT_RESOURCES;
        }
        self.channel(channel)
            .map_or(NtStatus::NOT_FOUND, |c| c.on_opened(&self.platform))
    }

    fn channel_started(&self, channel: ChannelHandle) {
        if let Some(Err(error)) = self.channel(channel).map(|c| c.on_started(&self.platform)) {
            self.finding(format!("channel {}: Started refused: {error}", channel.0));
        }
    }

    fn channel_post_started(&self, channel: ChannelHandle) {
        if let Some(Err(error)) = self
            .channel(channel)
            .map(|c| c.on_post_started(&self.platform))
        {
            self.finding(format!(
                "channel {}: PostStarted refused: {error}",
                channel.0
            ));
        }
    }

    fn channel_suspend(&self, channel: ChannelHandle) {
        if let Some(Err(error)) = self.channel(channel).map(|c| c.on_suspend(&self.platform)) {
            self.finding(format!("channel {}: Suspend refused: {error}", channel.0));
        }
    }

    fn channel_closed(&self, channel: ChannelHandle) {
        if let Some(Err(error)) = self.channel(channel).map(|c| c.on_closed(&self.platform)) {
            self.finding(format!("channel {}: Closed refused: {error}", channel.0));
        }
    }

    fn process_packet(&self, channel: ChannelHandle, packet: IncomingPacketHandle, payload: &[u8]) {
        let Some(core) = self.channel(channel) else {
            self.platform.0.kmcl.packet_complete(packet, &[]);
            return;
        };
        let mut scratch = vec![0u8; MAX_MESSAGE_LEN];
        match core.process_packet(&self.platform, packet, payload, &mut scratch) {
            Ok(PacketOutcome::Deferred(id)) => {
                self.bump(|s| s.deferred += 1);
                self.deferred.borrow_mut().push((channel, id));
            }
            Ok(PacketOutcome::Completed | PacketOutcome::Failed) => {}
            Err(ChannelError::IncomingFull { .. }) => self.bump(|s| s.busy += 1),
            Err(error) => self.finding(format!(
                "channel {}: ProcessPacket refused by core ({error}): KMCL delivered outside Started..Suspend",
                channel.0
            )),
        }
    }

    fn processing_complete(&self, channel: ChannelHandle, count: u32) {
        let Some(core) = self.channel(channel) else {
            return;
        };
        match core.processing_complete(count) {
            Ok(n) if n == count => {}
            Ok(n) => self.finding(format!(
                "channel {}: batch of {count} reported as {n}",
                channel.0
            )),
            Err(error) => self.finding(format!(
                "channel {}: ProcessingComplete({count}): {error}",
                channel.0
            )),
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
        // The completion routine owns the packet object from here.
        self.platform.0.kmcl.packet_free(packet);
        let Some(core) = self.channel(channel) else {
            return;
        };
        match core.transaction_completed(
            &self.platform,
            TransactionKey::from_bits(key_bits),
            status,
            payload,
        ) {
            Ok(()) => self.bump(|s| s.completions_accepted += 1),
            Err(ChannelError::UnknownTransaction(_)) if status == NtStatus::CANCELLED => {
                self.bump(|s| s.late_cancellations += 1);
            }
            Err(ChannelError::CompletionMismatch) if self.tolerate_bad_acks.get() => {
                self.bump(|s| s.completions_accepted += 1);
            }
            Err(error) => self.finding(format!(
                "channel {}: guest completion ({status}) of transaction {key_bits:#x}: {error}",
                channel.0
            )),
        }
    }

    fn save_packet(
        &self,
        channel: ChannelHandle,
        key_bits: u32,
        buffer: &mut [u8],
    ) -> (NtStatus, u32) {
        if self.fail_save_packet.get() {
            return (NtStatus::INSUFFICIENT_RESOURCES, 0);
        }
        let Some(core) = self.channel(channel) else {
            return (NtStatus::NOT_FOUND, 0);
        };
        let answer = core.save_packet(&self.platform, TransactionKey::from_bits(key_bits), buffer);
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

impl VSwitchCallout for Driver {
    fn port_create(&self, port: SwitchPortId, identity: PortIdentity) -> NtStatus {
        let config = self
            .port_configs
            .borrow()
            .get(&identity.0)
            .copied()
            .unwrap_or(PortConfig::UNLIMITED);
        match self.ports.create_port(port, Some(identity), config) {
            Ok(()) => NtStatus::SUCCESS,
            Err(error) => error.status(),
        }
    }

    fn port_delete(&self, port: SwitchPortId) {
        let deletion = self.pending.delete_port(&self.ports, port);
        if let Some(completion) = deletion.cancelled_save {
            self.hung.borrow_mut().remove(&port);
            self.platform
                .complete_port_save(completion, SAVE_CANCELLED_STATUS);
        }
        if let Err(error) = deletion.deleted {
            self.finding(format!("PORT_DELETE for port {}: {error}", port.0));
        }
    }

    fn classify(&self, port: SwitchPortId, frame: &ferry_core::port::FrameInfo) -> Verdict {
        match self.ports.classify(port, frame, self.platform.now()) {
            Ok(verdict) => verdict,
            Err(error) => {
                self.finding(format!("classify on port {}: {error}", port.0));
                Verdict::Permit
            }
        }
    }

    fn runtime_state_save(&self, port: SwitchPortId, completion: PortSaveCompletion) -> SaveReturn {
        let now = self.platform.now();
        match self.port_save_mode.get() {
            PortSaveMode::Fail => SaveReturn::Failed(NtStatus::INSUFFICIENT_RESOURCES),
            PortSaveMode::Synchronous => {
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
            mode @ (PortSaveMode::Pending | PortSaveMode::Hang) => {
                match self.pending.begin(port, completion, now) {
                    Ok(()) => {
                        if mode == PortSaveMode::Hang {
                            self.hung.borrow_mut().insert(port);
                        }
                        SaveReturn::Pending
                    }
                    Err(refused) => SaveReturn::Failed(match refused.error {
                        ferry_core::port::pending::PendingSaveError::Full => {
                            NtStatus::INSUFFICIENT_RESOURCES
                        }
                        ferry_core::port::pending::PendingSaveError::AlreadyPending(_) => {
                            NtStatus::INVALID_DEVICE_STATE
                        }
                    }),
                }
            }
        }
    }

    fn runtime_state_restore(&self, port: SwitchPortId, blob: &[u8]) -> NtStatus {
        match self.ports.restore_port(port, blob, self.platform.now()) {
            Ok(()) => NtStatus::SUCCESS,
            Err(error) => {
                self.bump(|s| s.restores_refused += 1);
                error.status()
            }
        }
    }
}
