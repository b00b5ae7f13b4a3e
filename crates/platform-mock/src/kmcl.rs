//! The simulated Kernel Mode Client Library: server channels as `vmbkmclr.sys` runs them
//! (`kmcl.md` §2), driven by the scheduler and calling the driver back through
//! [`ServerCallbacks`].
//!
//! The API is shaped like KMCL's: plain functions on a host-wide [`Kmcl`] taking a
//! [`ChannelHandle`] (`VMBCHANNEL`) and, where KMCL would invoke registered callbacks, a
//! `&dyn ServerCallbacks` standing for the callback table (`VMB_CHANNEL_STATE_CHANGE_CALLBACKS`,
//! `EvtVmbChannelProcessPacket`, …). No borrow of KMCL's state is held while a callback runs,
//! so the driver may call back into KMCL (complete, fail, send, restore) from inside one —
//! as it does on Windows. A later C-ABI layer can wrap each function one to one.
//!
//! What is modelled: offer / guest open (Opened may refuse) / Started / PostStarted; delivery
//! in batches with ProcessingComplete when a batch ends (ring drained, quota reached, or the
//! delivery slice over); the transaction quota (delivery stalls at the quota and resumes after
//! a completion); Pause (Suspend, then every incoming packet must be completed — a pause that
//! would block forever is reported); Disable; guest close and crash; PacketFail stopping the
//! queue; outgoing WAIT_FOR_COMPLETION packets and their completion routine; channel save
//! (SaveBegin with two-call SavePacket, chunked SaveContinue, SaveEnd) and RestoreFromBuffer
//! with RestorePacket. The guest's ring is guest memory: it belongs to the VM (the caller passes
//! it in) and moves with it.

use std::cell::RefCell;
use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};

use ferry_core::status::NtStatus;

use crate::clock::EventLog;

/// A simulated `VMBCHANNEL`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ChannelHandle(pub u32);

/// A simulated `VMBPACKETCOMPLETION`: one delivered incoming packet, completed (or failed)
/// exactly once. Neither `Copy` nor `Clone`.
#[derive(Debug, PartialEq, Eq)]
pub struct IncomingPacketHandle {
    channel: ChannelHandle,
    serial: u64,
}

/// A simulated `VMBPACKET`: one outgoing packet object. Neither `Copy` nor `Clone`.
#[derive(Debug, PartialEq, Eq)]
pub struct PacketHandle {
    channel: ChannelHandle,
    id: u64,
}

/// Something in the guest→host ring.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ToHost {
    /// A guest request; `guest_id` is the guest's VMBus transaction id.
    Packet {
        /// The guest's id for the packet (its completion comes back under it).
        guest_id: u64,
        /// The packet's payload.
        payload: Vec<u8>,
    },
    /// The guest's completion of a host→guest transaction.
    Completion {
        /// The VMBus transaction id the host sent the packet under.
        txid: u64,
        /// The completion payload.
        payload: Vec<u8>,
    },
}

/// Something KMCL hands to the guest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ToGuest {
    /// The completion of one of the guest's packets, with the host's response.
    Response {
        /// The guest's id for the packet.
        guest_id: u64,
        /// The completion payload.
        payload: Vec<u8>,
    },
    /// A host→guest packet that waits for the guest's completion.
    Transaction {
        /// The VMBus transaction id to complete it under.
        txid: u64,
        /// The packet's payload.
        payload: Vec<u8>,
    },
}

/// The callbacks a server channel registers with KMCL (one method per callback).
pub trait ServerCallbacks {
    /// `EvtChannelOpened`; a failure rolls the open back.
    fn channel_opened(&self, channel: ChannelHandle) -> NtStatus;
    /// `EvtChannelStarted`.
    fn channel_started(&self, channel: ChannelHandle);
    /// `EvtChannelPostStarted`.
    fn channel_post_started(&self, channel: ChannelHandle);
    /// `EvtChannelSuspend`.
    fn channel_suspend(&self, channel: ChannelHandle);
    /// `EvtChannelClosed`.
    fn channel_closed(&self, channel: ChannelHandle);
    /// `EvtVmbChannelProcessPacket`.
    fn process_packet(&self, channel: ChannelHandle, packet: IncomingPacketHandle, payload: &[u8]);
    /// `EvtVmbChannelProcessingComplete`.
    fn processing_complete(&self, channel: ChannelHandle, count: u32);
    /// The completion routine of an outgoing packet (`key_bits` from `VmbPacketGetPointer`).
    fn packet_completion(
        &self,
        channel: ChannelHandle,
        packet: PacketHandle,
        key_bits: u32,
        status: NtStatus,
        payload: &[u8],
    );
    /// `EvtVmbChannelSavePacket`: returns the status and `*BytesNeeded`.
    fn save_packet(
        &self,
        channel: ChannelHandle,
        key_bits: u32,
        buffer: &mut [u8],
    ) -> (NtStatus, u32);
    /// `EvtVmbChannelRestorePacket`.
    fn restore_packet(&self, channel: ChannelHandle, library: &[u8], saved: &[u8]) -> NtStatus;
}

/// Smallest chunk `VmbChannelSaveContinue` accepts (a smaller buffer gets
/// `STATUS_BUFFER_TOO_SMALL` with this as the bytes required).
pub const MIN_SAVE_CHUNK: usize = 64;

/// Largest guest packet the ring accepts.
pub const MAX_RING_PACKET: usize = 16 * 1024;

const STREAM_MAGIC: &[u8; 8] = b"SIMKMCL1";
const STREAM_HEADER: usize = 32;
const MAX_STREAM: usize = 1 << 20;

/// Counters of one simulated channel.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KmclChannelStats {
    /// Incoming packets delivered by ProcessPacket.
    pub delivered: u64,
    /// Incoming packets completed.
    pub completed: u64,
    /// Incoming packets failed (`VmbChannelPacketFail`).
    pub failed: u64,
    /// ProcessingComplete calls.
    pub batches: u64,
    /// Times delivery stalled at the transaction quota.
    pub quota_stalls: u64,
    /// Outgoing packets sent.
    pub sent: u64,
    /// Outgoing packets the guest completed.
    pub guest_completions: u64,
    /// Outgoing packets cancelled because the guest went away.
    pub cancelled: u64,
    /// Packets saved by SaveBegin.
    pub saved: u64,
    /// Packets recreated by RestoreFromBuffer.
    pub restored: u64,
    /// Largest number of incoming packets outstanding at once.
    pub max_outstanding: u64,
}

/// A channel's flags and counts as KMCL sees them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChannelInfo {
    /// The VM the channel serves.
    pub vm: u32,
    /// Offered (`VmbChannelEnable`) or restored.
    pub enabled: bool,
    /// The guest has it open.
    pub open: bool,
    /// `VmbChannelStart` requested (local axis).
    pub started: bool,
    /// Started callback ran and no Suspend since: ProcessPacket may run.
    pub running: bool,
    /// `VmbChannelDisable` ran.
    pub disabled: bool,
    /// A PacketFail stopped the queue.
    pub queue_stopped: bool,
    /// Incoming packets delivered, not completed.
    pub outstanding_incoming: usize,
    /// Outgoing packet objects in use.
    pub outgoing_in_use: usize,
    /// The transaction quota.
    pub quota: u32,
    /// Counters.
    pub stats: KmclChannelStats,
}

/// What one `pump` did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PumpResult {
    /// Packets delivered by ProcessPacket.
    pub delivered: u32,
    /// Guest completions handed to completion routines.
    pub completions: u32,
    /// Delivery stopped at the quota with packets waiting.
    pub stalled: bool,
}

/// The answer of `VmbChannelSaveContinue`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SaveChunk {
    /// `STATUS_SUCCESS` (last chunk written), `STATUS_BUFFER_OVERFLOW` (chunk written, call
    /// again) or `STATUS_BUFFER_TOO_SMALL` (nothing written).
    pub status: NtStatus,
    /// Bytes written, or the bytes required for `STATUS_BUFFER_TOO_SMALL`.
    pub bytes: usize,
}

struct OutPacket {
    txid: u64,
    key_bits: u32,
    payload: Vec<u8>,
}

#[derive(Default)]
struct KChannel {
    vm: u32,
    enabled: bool,
    open: bool,
    started: bool,
    running: bool,
    disabled: bool,
    queue_stopped: bool,
    post_start_pending: bool,
    quota: u32,
    outstanding: BTreeMap<u64, u64>,
    packets: BTreeMap<u64, OutPacket>,
    /// The packet object carrying each VMBus transaction id in `packets` (KMCL's lookup of a
    /// guest completion, and the duplicate check of a restore, without a pass over them all).
    by_txid: TxidIndex,
    next_txid: u64,
    to_guest: Vec<ToGuest>,
    save: Option<(Vec<u8>, usize)>,
    restore: Vec<u8>,
    stats: KmclChannelStats,
}

/// Hashes a VMBus transaction id for [`TxidIndex`]: ids are consecutive per channel, and one
/// multiplication by 2⁶⁴/φ spreads them over the low bits the table indexes with and the high
/// bits it tags with — far cheaper than the default SipHash, and the simulator's ids need no
/// defence against flooding.
#[derive(Default)]
struct TxidHasher(u64);

impl Hasher for TxidHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.write_u64(self.0.rotate_left(8) ^ u64::from(byte));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// Transaction id → packet object id.
type TxidIndex = HashMap<u64, u64, BuildHasherDefault<TxidHasher>>;

impl KChannel {
    /// Records that packet object `id` carries `txid`; `false` (nothing recorded) if another
    /// packet object in use already does.
    fn index_txid(&mut self, txid: u64, id: u64) -> bool {
        match self.by_txid.entry(txid) {
            Entry::Occupied(_) => false,
            Entry::Vacant(slot) => {
                slot.insert(id);
                true
            }
        }
    }

    /// Takes the packet object carrying transaction `txid` out of use.
    fn remove_packet_by_txid(&mut self, txid: u64) -> Option<(u64, OutPacket)> {
        let id = self.by_txid.remove(&txid)?;
        self.packets.remove(&id).map(|packet| (id, packet))
    }

    /// Takes every packet object out of use.
    fn take_packets(&mut self) -> BTreeMap<u64, OutPacket> {
        self.by_txid.clear();
        std::mem::take(&mut self.packets)
    }
}

#[derive(Default)]
struct KmclState {
    channels: BTreeMap<ChannelHandle, KChannel>,
    next_channel: u32,
    next_serial: u64,
    next_packet: u64,
    violations: Vec<String>,
    early_delivery: bool,
}

/// One host's KMCL (`vmbkmclr.sys`).
#[derive(Default)]
pub struct Kmcl {
    state: RefCell<KmclState>,
    log: RefCell<Option<(EventLog, String)>>,
}

fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}
fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}
fn get_u32(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}
fn get_u64(bytes: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(bytes.get(at..at + 8)?.try_into().ok()?))
}

/// FNV-1a over `bytes`: KMCL's own stream check (the VSP's blobs carry CRC-32C themselves).
fn fnv1a(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811C_9DC5u32, |h, b| {
        (h ^ u32::from(*b)).wrapping_mul(0x0100_0193)
    })
}

fn library_state(txid: u64, payload: &[u8]) -> Vec<u8> {
    let mut lib = Vec::with_capacity(12 + payload.len());
    put_u64(&mut lib, txid);
    put_u32(&mut lib, payload.len() as u32);
    lib.extend_from_slice(payload);
    lib
}

fn parse_library_state(lib: &[u8]) -> Option<(u64, Vec<u8>)> {
    let txid = get_u64(lib, 0)?;
    let len = get_u32(lib, 8)? as usize;
    let payload = lib.get(12..)?;
    (payload.len() == len).then(|| (txid, payload.to_vec()))
}

/// Saved packets as (LibBuf, SaveBuf) pairs.
pub type SavedPackets = Vec<(Vec<u8>, Vec<u8>)>;

fn parse_stream(stream: &[u8], vm: u32) -> Result<(u64, SavedPackets), NtStatus> {
    if stream.get(..8) != Some(STREAM_MAGIC.as_slice()) {
        return Err(NtStatus::DATA_ERROR);
    }
    let total = get_u32(stream, 8).ok_or(NtStatus::DATA_ERROR)? as usize;
    if total != stream.len() {
        return Err(NtStatus::DATA_ERROR);
    }
    let check = get_u32(stream, 12).ok_or(NtStatus::DATA_ERROR)?;
    if fnv1a(stream.get(16..).unwrap_or(&[])) != check {
        return Err(NtStatus::CRC_ERROR);
    }
    if get_u32(stream, 16) != Some(vm) {
        return Err(NtStatus::INVALID_PARAMETER);
    }
    let next_txid = get_u64(stream, 20).ok_or(NtStatus::DATA_ERROR)?;
    let count = get_u32(stream, 28).ok_or(NtStatus::DATA_ERROR)?;
    let mut at = STREAM_HEADER;
    let mut packets = Vec::new();
    for _ in 0..count {
        let mut take = || -> Option<Vec<u8>> {
            let len = get_u32(stream, at)? as usize;
            let bytes = stream
                .get(at + 4..at.checked_add(4)?.checked_add(len)?)?
                .to_vec();
            at += 4 + len;
            Some(bytes)
        };
        let lib = take().ok_or(NtStatus::DATA_ERROR)?;
        let saved = take().ok_or(NtStatus::DATA_ERROR)?;
        packets.push((lib, saved));
    }
    if at != stream.len() {
        return Err(NtStatus::DATA_ERROR);
    }
    Ok((next_txid, packets))
}

/// The saved packets of a channel-save stream as (LibBuf, SaveBuf) pairs, for inspection
/// (`None` if the stream does not parse). The VM binding is not checked.
#[must_use]
pub fn saved_packets(stream: &[u8]) -> Option<SavedPackets> {
    let vm = get_u32(stream, 16)?;
    parse_stream(stream, vm).ok().map(|(_, packets)| packets)
}

/// Rewrites the saved packets of a stream and re-seals KMCL's own check, so that only the
/// VSP's validation stands between an edited SaveBuf and the driver (fault injection).
#[must_use]
pub fn rewrite_saved_packets(
    stream: &[u8],
    edit: impl FnOnce(&mut SavedPackets),
) -> Option<Vec<u8>> {
    let vm = get_u32(stream, 16)?;
    let (next_txid, mut packets) = parse_stream(stream, vm).ok()?;
    edit(&mut packets);
    Some(seal_stream(vm, next_txid, &packets))
}

fn seal_stream(vm: u32, next_txid: u64, packets: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
    let mut body = Vec::new();
    put_u32(&mut body, vm);
    put_u64(&mut body, next_txid);
    put_u32(&mut body, packets.len() as u32);
    for (lib, saved) in packets {
        put_u32(&mut body, lib.len() as u32);
        body.extend_from_slice(lib);
        put_u32(&mut body, saved.len() as u32);
        body.extend_from_slice(saved);
    }
    let mut stream = Vec::with_capacity(16 + body.len());
    stream.extend_from_slice(STREAM_MAGIC);
    put_u32(&mut stream, (16 + body.len()) as u32);
    put_u32(&mut stream, fnv1a(&body));
    stream.extend_from_slice(&body);
    stream
}

impl Kmcl {
    /// A KMCL with no channels.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn with<R>(&self, channel: ChannelHandle, f: impl FnOnce(&mut KChannel) -> R) -> Option<R> {
        self.state.borrow_mut().channels.get_mut(&channel).map(f)
    }

    fn violation(&self, text: String) {
        self.state.borrow_mut().violations.push(text);
    }

    fn note(&self, text: impl FnOnce() -> String) {
        if let Some((log, host)) = self.log.borrow().as_ref() {
            log.record(|| format!("{host}: kmcl: {}", text()));
        }
    }

    /// Records KMCL's calls and callbacks in `log`, prefixed with `host`.
    pub fn set_event_log(&self, log: EventLog, host: &str) {
        *self.log.borrow_mut() = Some((log, host.to_string()));
    }

    /// Findings of contract breaches KMCL noticed (double completions, a pause that would
    /// block forever, …), oldest first; the list is emptied.
    pub fn take_violations(&self) -> Vec<String> {
        std::mem::take(&mut self.state.borrow_mut().violations)
    }

    /// `VmbChannelAllocate` (server) for VM `vm`, with `VmbChannelSetTransactionQuota(quota)`.
    pub fn allocate(&self, vm: u32, quota: u32) -> ChannelHandle {
        let mut state = self.state.borrow_mut();
        state.next_channel += 1;
        let handle = ChannelHandle(state.next_channel);
        state.channels.insert(
            handle,
            KChannel {
                vm,
                quota,
                next_txid: 1,
                ..KChannel::default()
            },
        );
        handle
    }

    /// `VmbChannelCleanup`: frees the channel (after Disable).
    pub fn cleanup(&self, channel: ChannelHandle) {
        self.state.borrow_mut().channels.remove(&channel);
    }

    /// `VmbChannelSetTransactionQuota`.
    pub fn set_transaction_quota(&self, channel: ChannelHandle, quota: u32) {
        self.with(channel, |c| c.quota = quota);
    }

    /// KMCL's view of `channel`.
    #[must_use]
    pub fn info(&self, channel: ChannelHandle) -> Option<ChannelInfo> {
        self.with(channel, |c| ChannelInfo {
            vm: c.vm,
            enabled: c.enabled,
            open: c.open,
            started: c.started,
            running: c.running,
            disabled: c.disabled,
            queue_stopped: c.queue_stopped,
            outstanding_incoming: c.outstanding.len(),
            outgoing_in_use: c.packets.len(),
            quota: c.quota,
            stats: c.stats,
        })
    }

    /// The VMBus transaction ids of the outgoing packets in use.
    #[must_use]
    pub fn outgoing_txids(&self, channel: ChannelHandle) -> Vec<u64> {
        self.with(channel, |c| c.packets.values().map(|p| p.txid).collect())
            .unwrap_or_default()
    }

    /// What KMCL delivered to the guest since the last call (the interrupt side of the rings).
    pub fn take_to_guest(&self, channel: ChannelHandle) -> Vec<ToGuest> {
        self.with(channel, |c| std::mem::take(&mut c.to_guest))
            .unwrap_or_default()
    }

    /// `VmbChannelEnable`: makes the offer.
    pub fn enable(&self, channel: ChannelHandle) {
        self.with(channel, |c| {
            c.enabled = true;
            c.disabled = false;
        });
    }

    fn maybe_run(&self, channel: ChannelHandle, callbacks: &dyn ServerCallbacks) {
        let run = self
            .with(channel, |c| {
                let run = c.enabled && c.open && c.started && !c.running && !c.disabled;
                if run {
                    c.running = true;
                    c.queue_stopped = false;
                }
                run
            })
            .unwrap_or(false);
        if !run {
            return;
        }
        self.note(|| format!("channel {}: EvtChannelStarted", channel.0));
        callbacks.channel_started(channel);
        if self.state.borrow().early_delivery {
            // KMCL starts the incoming queue before PostStarted (`kmcl.md` §2.2): the first
            // delivery slice runs before it (see `pump`).
            self.with(channel, |c| c.post_start_pending = true);
        } else {
            self.post_started(channel, callbacks);
        }
    }

    fn post_started(&self, channel: ChannelHandle, callbacks: &dyn ServerCallbacks) {
        let due = self
            .with(channel, |c| {
                let due = c.running;
                c.post_start_pending = false;
                due
            })
            .unwrap_or(false);
        if due {
            self.note(|| format!("channel {}: EvtChannelPostStarted", channel.0));
            callbacks.channel_post_started(channel);
        }
    }

    /// Lets ProcessPacket arrive between `EvtChannelStarted` and `EvtChannelPostStarted`:
    /// PostStarted then follows the first delivery slice after Started.
    pub fn set_delivery_before_post_started(&self, on: bool) {
        self.state.borrow_mut().early_delivery = on;
    }

    fn suspend(&self, channel: ChannelHandle, callbacks: &dyn ServerCallbacks) {
        let was_running = self
            .with(channel, |c| {
                c.post_start_pending = false;
                std::mem::replace(&mut c.running, false)
            })
            .unwrap_or(false);
        if was_running {
            self.note(|| format!("channel {}: EvtChannelSuspend", channel.0));
            callbacks.channel_suspend(channel);
            let outstanding = self.with(channel, |c| c.outstanding.len()).unwrap_or(0);
            if outstanding != 0 {
                self.violation(format!(
                    "channel {}: Suspend returned with {outstanding} incoming packets never completed (Pause/Disable would block forever)",
                    channel.0
                ));
            }
        }
    }

    /// `VmbChannelStart`: the channel runs once the guest has it open.
    pub fn start(&self, channel: ChannelHandle, callbacks: &dyn ServerCallbacks) {
        self.with(channel, |c| c.started = true);
        self.maybe_run(channel, callbacks);
    }

    /// `VmbChannelPause`: Suspend, then wait for every incoming packet to be completed.
    pub fn pause(&self, channel: ChannelHandle, callbacks: &dyn ServerCallbacks) {
        self.with(channel, |c| c.started = false);
        self.suspend(channel, callbacks);
    }

    fn close(
        &self,
        channel: ChannelHandle,
        ring: &mut VecDeque<ToHost>,
        callbacks: &dyn ServerCallbacks,
    ) {
        self.suspend(channel, callbacks);
        let was_open = self
            .with(channel, |c| std::mem::replace(&mut c.open, false))
            .unwrap_or(false);
        if !was_open {
            return;
        }
        ring.clear();
        self.note(|| format!("channel {}: EvtChannelClosed", channel.0));
        callbacks.channel_closed(channel);
        // Outstanding WAIT_FOR_COMPLETION packets: the guest will never complete them. What
        // KMCL does is unconfirmed (`kmcl.md` §2.4); the simulated KMCL cancels each through
        // its completion routine, after Closed, so a driver must tolerate the late call.
        let cancelled: Vec<(u64, u32)> = self
            .with(channel, |c| {
                let all = c.take_packets();
                c.stats.cancelled += all.len() as u64;
                all.into_iter().map(|(id, p)| (id, p.key_bits)).collect()
            })
            .unwrap_or_default();
        for (id, key_bits) in cancelled {
            callbacks.packet_completion(
                channel,
                PacketHandle { channel, id },
                key_bits,
                NtStatus::CANCELLED,
                &[],
            );
        }
    }

    /// `VmbChannelDisable`: pause, close, revoke the offer.
    pub fn disable(
        &self,
        channel: ChannelHandle,
        ring: &mut VecDeque<ToHost>,
        callbacks: &dyn ServerCallbacks,
    ) {
        self.with(channel, |c| c.started = false);
        self.close(channel, ring, callbacks);
        self.with(channel, |c| {
            c.disabled = true;
            c.enabled = false;
        });
    }

    /// The guest opens the offer: `EvtChannelOpened` (may refuse), then Started/PostStarted if
    /// the channel was started locally.
    pub fn guest_open(&self, channel: ChannelHandle, callbacks: &dyn ServerCallbacks) -> NtStatus {
        let can_open = self
            .with(channel, |c| {
                let ok = c.enabled && !c.open && !c.disabled;
                if ok {
                    c.open = true;
                }
                ok
            })
            .unwrap_or(false);
        if !can_open {
            return NtStatus::INVALID_DEVICE_STATE;
        }
        let status = callbacks.channel_opened(channel);
        self.note(|| format!("channel {}: EvtChannelOpened -> {status}", channel.0));
        if !status.is_success() {
            self.with(channel, |c| c.open = false);
            return status;
        }
        self.maybe_run(channel, callbacks);
        status
    }

    /// The guest closes the channel (orderly close, crash or rescind look the same to the
    /// host): Suspend if running, then Closed; the guest's ring is discarded.
    pub fn guest_close(
        &self,
        channel: ChannelHandle,
        ring: &mut VecDeque<ToHost>,
        callbacks: &dyn ServerCallbacks,
    ) {
        self.close(channel, ring, callbacks);
    }

    /// Delivers from the guest's ring: one batch of at most `budget` items. Guest completions
    /// go to the completion routine; packets go to ProcessPacket while fewer than the quota are
    /// outstanding. ProcessingComplete ends the batch (ring drained, quota reached or budget
    /// used up) with the number of packets delivered in it.
    pub fn pump(
        &self,
        channel: ChannelHandle,
        ring: &mut VecDeque<ToHost>,
        budget: usize,
        callbacks: &dyn ServerCallbacks,
    ) -> PumpResult {
        let mut result = PumpResult::default();
        let post_start_pending = self
            .with(channel, |c| c.post_start_pending)
            .unwrap_or(false);
        for _ in 0..budget {
            let go = self
                .with(channel, |c| c.running && c.open && !c.queue_stopped)
                .unwrap_or(false);
            if !go {
                break;
            }
            match ring.front() {
                None => break,
                Some(ToHost::Completion { .. }) => {
                    let Some(ToHost::Completion { txid, payload }) = ring.pop_front() else {
                        break;
                    };
                    let found = self
                        .with(channel, |c| {
                            let (id, packet) = c.remove_packet_by_txid(txid)?;
                            c.stats.guest_completions += 1;
                            Some((id, packet.key_bits))
                        })
                        .flatten();
                    match found {
                        Some((id, key_bits)) => {
                            result.completions += 1;
                            callbacks.packet_completion(
                                channel,
                                PacketHandle { channel, id },
                                key_bits,
                                NtStatus::SUCCESS,
                                &payload,
                            );
                        }
                        None => self.violation(format!(
                            "channel {}: the guest completed transaction {txid}, which no packet object carries (lost across save/restore?)",
                            channel.0
                        )),
                    }
                }
                Some(ToHost::Packet { .. }) => {
                    let at_quota = self
                        .with(channel, |c| c.outstanding.len() as u32 >= c.quota)
                        .unwrap_or(true);
                    if at_quota {
                        result.stalled = true;
                        self.with(channel, |c| c.stats.quota_stalls += 1);
                        break;
                    }
                    let Some(ToHost::Packet { guest_id, payload }) = ring.pop_front() else {
                        break;
                    };
                    let serial = {
                        let mut state = self.state.borrow_mut();
                        state.next_serial += 1;
                        let serial = state.next_serial;
                        if let Some(c) = state.channels.get_mut(&channel) {
                            c.outstanding.insert(serial, guest_id);
                            c.stats.delivered += 1;
                            c.stats.max_outstanding =
                                c.stats.max_outstanding.max(c.outstanding.len() as u64);
                        }
                        serial
                    };
                    result.delivered += 1;
                    callbacks.process_packet(
                        channel,
                        IncomingPacketHandle { channel, serial },
                        &payload,
                    );
                }
            }
        }
        if result.delivered > 0 || result.completions > 0 {
            self.note(|| {
                format!(
                    "channel {}: ProcessPacket x{}, completion routine x{}{}",
                    channel.0,
                    result.delivered,
                    result.completions,
                    if result.stalled {
                        ", stalled at the quota"
                    } else {
                        ""
                    }
                )
            });
        }
        if result.delivered > 0 {
            self.note(|| {
                format!(
                    "channel {}: EvtVmbChannelProcessingComplete({})",
                    channel.0, result.delivered
                )
            });
            self.with(channel, |c| c.stats.batches += 1);
            callbacks.processing_complete(channel, result.delivered);
        }
        if post_start_pending {
            self.post_started(channel, callbacks);
        }
        result
    }

    /// `VmbChannelPacketComplete`.
    pub fn packet_complete(&self, packet: IncomingPacketHandle, response: &[u8]) {
        let ok = self
            .with(packet.channel, |c| {
                let guest_id = c.outstanding.remove(&packet.serial)?;
                c.stats.completed += 1;
                if c.open {
                    c.to_guest.push(ToGuest::Response {
                        guest_id,
                        payload: response.to_vec(),
                    });
                }
                Some(())
            })
            .flatten();
        if ok.is_none() {
            self.violation(format!(
                "channel {}: incoming packet {} completed but not outstanding (double completion)",
                packet.channel.0, packet.serial
            ));
        }
    }

    /// `VmbChannelPacketFail`: the packet is retired and the channel's queue stops until the
    /// next Started.
    pub fn packet_fail(&self, packet: IncomingPacketHandle) {
        let ok = self
            .with(packet.channel, |c| {
                c.outstanding.remove(&packet.serial)?;
                c.stats.failed += 1;
                c.queue_stopped = true;
                Some(())
            })
            .flatten();
        if ok.is_none() {
            self.violation(format!(
                "channel {}: incoming packet {} failed but not outstanding",
                packet.channel.0, packet.serial
            ));
        }
    }

    /// `VmbPacketAllocate` + `VmbPacketSetPointer(key_bits)` + `VmbPacketSend` with
    /// `WAIT_FOR_COMPLETION`.
    ///
    /// # Errors
    ///
    /// `STATUS_INVALID_DEVICE_STATE` if the guest does not have the channel open.
    pub fn packet_send(
        &self,
        channel: ChannelHandle,
        key_bits: u32,
        payload: &[u8],
    ) -> Result<PacketHandle, NtStatus> {
        let mut state = self.state.borrow_mut();
        state.next_packet += 1;
        let id = state.next_packet;
        let c = state
            .channels
            .get_mut(&channel)
            .ok_or(NtStatus::INVALID_PARAMETER)?;
        if !c.open {
            return Err(NtStatus::INVALID_DEVICE_STATE);
        }
        let txid = c.next_txid;
        c.next_txid += 1;
        let unique = c.index_txid(txid, id);
        c.packets.insert(
            id,
            OutPacket {
                txid,
                key_bits,
                payload: payload.to_vec(),
            },
        );
        c.stats.sent += 1;
        c.to_guest.push(ToGuest::Transaction {
            txid,
            payload: payload.to_vec(),
        });
        drop(state);
        if !unique {
            self.violation(format!(
                "channel {}: VmbPacketSend gave txid {txid} to a second packet in use",
                channel.0
            ));
        }
        self.note(|| {
            format!(
                "channel {}: VmbPacketSend txid {txid} (wait for completion)",
                channel.0
            )
        });
        Ok(PacketHandle { channel, id })
    }

    /// `VmbPacketAllocate` + `VmbPacketRestore(library)` + `VmbPacketSetPointer(key_bits)`,
    /// from inside `EvtVmbChannelRestorePacket`. The guest already holds the packet: nothing is
    /// sent again.
    ///
    /// # Errors
    ///
    /// `STATUS_DATA_ERROR` if `library` is not KMCL's saved packet state.
    pub fn packet_restore(
        &self,
        channel: ChannelHandle,
        key_bits: u32,
        library: &[u8],
    ) -> Result<PacketHandle, NtStatus> {
        let (txid, payload) = parse_library_state(library).ok_or(NtStatus::DATA_ERROR)?;
        let mut state = self.state.borrow_mut();
        state.next_packet += 1;
        let id = state.next_packet;
        let c = state
            .channels
            .get_mut(&channel)
            .ok_or(NtStatus::INVALID_PARAMETER)?;
        if !c.index_txid(txid, id) {
            return Err(NtStatus::OBJECT_NAME_COLLISION);
        }
        c.packets.insert(
            id,
            OutPacket {
                txid,
                key_bits,
                payload,
            },
        );
        c.stats.restored += 1;
        drop(state);
        self.note(|| format!("channel {}: VmbPacketRestore txid {txid}", channel.0));
        Ok(PacketHandle { channel, id })
    }

    /// `VmbPacketFree`: the completion routine frees the packet object (KMCL took it out of
    /// the channel's in-use list before calling the routine).
    pub fn packet_free(&self, packet: PacketHandle) {
        let PacketHandle { channel: _, id: _ } = packet;
    }

    /// `VmbChannelSaveBegin`: calls SavePacket (size query first, then the fill) for every
    /// outgoing packet object in use and prepares the saved stream.
    ///
    /// # Errors
    ///
    /// `STATUS_INVALID_DEVICE_STATE` unless the channel is open and paused (a contained guess,
    /// as in core); otherwise the first failing SavePacket status.
    pub fn save_begin(
        &self,
        channel: ChannelHandle,
        callbacks: &dyn ServerCallbacks,
    ) -> Result<(), NtStatus> {
        let (packets, vm, next_txid) = self
            .with(channel, |c| {
                if !c.open || c.running {
                    return Err(NtStatus::INVALID_DEVICE_STATE);
                }
                let packets: Vec<(u32, Vec<u8>)> = c
                    .packets
                    .values()
                    .map(|p| (p.key_bits, library_state(p.txid, &p.payload)))
                    .collect();
                Ok((packets, c.vm, c.next_txid))
            })
            .ok_or(NtStatus::INVALID_PARAMETER)??;
        let mut saved_packets = Vec::with_capacity(packets.len());
        for (key_bits, lib) in packets {
            let (status, needed) = callbacks.save_packet(channel, key_bits, &mut []);
            let saved = if status == NtStatus::SUCCESS {
                Vec::new()
            } else if status == NtStatus::BUFFER_TOO_SMALL {
                let mut buffer = vec![0u8; needed as usize];
                let (status, written) = callbacks.save_packet(channel, key_bits, &mut buffer);
                if !status.is_success() {
                    return Err(status);
                }
                if written as usize > buffer.len() {
                    self.violation(format!(
                        "channel {}: SavePacket wrote {written} bytes into {}",
                        channel.0,
                        buffer.len()
                    ));
                    return Err(NtStatus::BUFFER_OVERFLOW);
                }
                buffer.truncate(written as usize);
                buffer
            } else {
                return Err(status);
            };
            saved_packets.push((lib, saved));
        }
        let stream = seal_stream(vm, next_txid, &saved_packets);
        let count = saved_packets.len() as u64;
        self.note(|| {
            format!(
                "channel {}: VmbChannelSaveBegin: SavePacket for {count} packets, stream {} bytes",
                channel.0,
                stream.len()
            )
        });
        self.with(channel, |c| {
            c.save = Some((stream, 0));
            c.stats.saved += count;
        });
        Ok(())
    }

    /// `VmbChannelSaveContinue`: copies the next chunk of the saved stream into `out`.
    pub fn save_continue(&self, channel: ChannelHandle, out: &mut [u8]) -> SaveChunk {
        self.with(channel, |c| {
            let Some((stream, position)) = c.save.as_mut() else {
                return SaveChunk {
                    status: NtStatus::INVALID_DEVICE_STATE,
                    bytes: 0,
                };
            };
            let remaining = stream.len() - *position;
            if out.len() < MIN_SAVE_CHUNK.min(remaining.max(1)) {
                return SaveChunk {
                    status: NtStatus::BUFFER_TOO_SMALL,
                    bytes: MIN_SAVE_CHUNK.min(remaining.max(1)),
                };
            }
            let n = remaining.min(out.len());
            out[..n].copy_from_slice(&stream[*position..*position + n]);
            *position += n;
            let status = if *position == stream.len() {
                NtStatus::SUCCESS
            } else {
                NtStatus::BUFFER_OVERFLOW
            };
            SaveChunk { status, bytes: n }
        })
        .unwrap_or(SaveChunk {
            status: NtStatus::INVALID_PARAMETER,
            bytes: 0,
        })
    }

    /// `VmbChannelSaveEnd`: frees the save context.
    pub fn save_end(&self, channel: ChannelHandle) {
        self.with(channel, |c| c.save = None);
    }

    /// `VmbChannelRestoreFromBuffer`: accepts one chunk; `STATUS_MORE_PROCESSING_REQUIRED`
    /// until the stream is whole, then calls RestorePacket per saved packet. On success the
    /// channel is offered and open (the guest's open is part of the restored state) and paused.
    pub fn restore_from_buffer(
        &self,
        channel: ChannelHandle,
        chunk: &[u8],
        callbacks: &dyn ServerCallbacks,
    ) -> NtStatus {
        let stream = self.with(channel, |c| {
            c.restore.extend_from_slice(chunk);
            let Some(total) = get_u32(&c.restore, 8).map(|t| t as usize) else {
                return Ok(None);
            };
            if !(STREAM_HEADER..=MAX_STREAM).contains(&total) {
                c.restore.clear();
                return Err(NtStatus::DATA_ERROR);
            }
            if c.restore.len() < total {
                return Ok(None);
            }
            Ok(Some(std::mem::take(&mut c.restore)))
        });
        let stream: Vec<u8> = match stream {
            None => return NtStatus::INVALID_PARAMETER,
            Some(Ok(None)) => return NtStatus::MORE_PROCESSING_REQUIRED,
            Some(Ok(Some(stream))) => stream,
            Some(Err(status)) => return status,
        };
        let vm = self.with(channel, |c| c.vm).unwrap_or(0);
        let (next_txid, packets) = match parse_stream(&stream, vm) {
            Ok(parsed) => parsed,
            Err(status) => return status,
        };
        self.note(|| {
            format!(
                "channel {}: VmbChannelRestoreFromBuffer: RestorePacket for {} packets",
                channel.0,
                packets.len()
            )
        });
        for (lib, saved) in &packets {
            let status = callbacks.restore_packet(channel, lib, saved);
            if !status.is_success() {
                return status;
            }
        }
        self.with(channel, |c| {
            c.next_txid = c.next_txid.max(next_txid);
            c.enabled = true;
            c.open = true;
        });
        NtStatus::SUCCESS
    }

    /// Every channel allocated and not cleaned up.
    #[must_use]
    pub fn channel_handles(&self) -> Vec<ChannelHandle> {
        self.state.borrow().channels.keys().copied().collect()
    }

    /// Whether any incoming packet of `channel` is delivered and not completed.
    #[must_use]
    pub fn outstanding_incoming(&self, channel: ChannelHandle) -> BTreeSet<u64> {
        self.with(channel, |c| c.outstanding.keys().copied().collect())
            .unwrap_or_default()
    }
}
