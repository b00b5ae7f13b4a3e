//! [`Channel`]: one KMCL server channel — the state machine, both ledgers and the service,
//! behind one lock, driven by the platform's callbacks.
//!
//! Locking rule: the channel lock is never held across a platform call. Each entry point takes
//! what it needs under the lock, releases it, then completes, fails or sends. Because handles
//! leave the ledgers by value, a packet is completed exactly once even when a deferred
//! completion races Suspend's retirement on another CPU.
//!
//! Lock order: channel lock, then whatever the service takes inside it (the port table's locks
//! in ferry's reference service). Nothing takes the channel lock while holding another.

use super::error::ChannelError;
use super::incoming::{IncomingId, IncomingLedger};
use super::outgoing::OutgoingLedger;
use super::service::{
    ChannelService, Disposition, MAX_REFUSAL_LEN, MAX_SEND_LEN, Refusal, TransactionState,
};
use super::state::{ChannelEvent, ChannelMachine, ChannelState, Effects, Operation, StateError};
use crate::lock::Mutex;
use crate::platform::{Platform, TransactionKey};
use crate::status::NtStatus;

/// What happened to an incoming packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PacketOutcome {
    /// Completed before `process_packet` returned.
    Completed,
    /// Held in the ledger; complete it with [`Channel::complete_deferred`].
    Deferred(IncomingId),
    /// Failed (`VmbChannelPacketFail`).
    Failed,
}

/// The answer to one `EvtVmbChannelSavePacket` call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SavePacketAnswer {
    /// The callback's return value.
    pub status: NtStatus,
    /// The value for `*BytesNeeded`: the exact size needed (when `status` is
    /// `STATUS_BUFFER_TOO_SMALL`) or the bytes written (on success).
    pub bytes: u32,
}

/// Counters a channel keeps for diagnostics and for the simulator's invariants.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChannelStats {
    /// Packets delivered by ProcessPacket.
    pub packets_delivered: u64,
    /// Packets completed with the service's response (inline or deferred).
    pub packets_completed: u64,
    /// Packets completed with a refusal (not running, busy, or retired at Suspend).
    pub packets_refused: u64,
    /// Of the refused, those retired at Suspend.
    pub packets_retired: u64,
    /// Packets failed with `VmbChannelPacketFail`.
    pub packets_failed: u64,
    /// Host→guest transactions sent.
    pub transactions_sent: u64,
    /// Transactions the guest completed.
    pub transactions_completed: u64,
    /// Transactions released because the guest went away.
    pub transactions_retired: u64,
    /// Transactions recreated from saved state.
    pub transactions_restored: u64,
    /// Transactions saved by SavePacket (second call or nothing-to-save first call).
    pub transactions_saved: u64,
    /// Completions, saves or deferred completions naming nothing outstanding.
    pub stale_references: u64,
}

struct Inner<P: Platform, S: ChannelService, const QUOTA: usize, const OUTGOING: usize> {
    machine: ChannelMachine,
    incoming: IncomingLedger<P::IncomingPacket, S::Request, QUOTA>,
    outgoing: OutgoingLedger<P::OutgoingPacket, S::Transaction, OUTGOING>,
    service: S,
    stats: ChannelStats,
}

/// One KMCL server channel. `QUOTA` is the transaction quota (`VmbChannelSetTransactionQuota`,
/// the incoming ledger's capacity); `OUTGOING` bounds host→guest transactions in flight.
pub struct Channel<P: Platform, S: ChannelService, const QUOTA: usize, const OUTGOING: usize> {
    handle: P::Channel,
    inner: Mutex<P::Lock, Inner<P, S, QUOTA, OUTGOING>>,
}

/// The first `len` bytes of `buffer` (all of it if `len` overshoots: a service bug, never a
/// panic).
fn prefix(buffer: &[u8], len: usize) -> &[u8] {
    buffer.get(..len).unwrap_or(buffer)
}

impl<P: Platform, S: ChannelService, const QUOTA: usize, const OUTGOING: usize>
    Channel<P, S, QUOTA, OUTGOING>
{
    /// A freshly allocated channel (`VmbChannelAllocate` done) serving `service`.
    pub const fn new(handle: P::Channel, service: S) -> Self {
        Self {
            handle,
            inner: Mutex::new(Inner {
                machine: ChannelMachine::new(),
                incoming: IncomingLedger::new(),
                outgoing: OutgoingLedger::new(),
                service,
                stats: ChannelStats {
                    packets_delivered: 0,
                    packets_completed: 0,
                    packets_refused: 0,
                    packets_retired: 0,
                    packets_failed: 0,
                    transactions_sent: 0,
                    transactions_completed: 0,
                    transactions_retired: 0,
                    transactions_restored: 0,
                    transactions_saved: 0,
                    stale_references: 0,
                },
            }),
        }
    }

    /// The platform's handle of this channel.
    pub const fn handle(&self) -> &P::Channel {
        &self.handle
    }

    /// The current life-cycle state.
    pub fn state(&self) -> ChannelState {
        self.inner.lock().machine.state()
    }

    /// A copy of the counters.
    pub fn stats(&self) -> ChannelStats {
        self.inner.lock().stats
    }

    /// Incoming packets awaiting completion and host→guest transactions in flight.
    pub fn outstanding(&self) -> (usize, usize) {
        let inner = self.inner.lock();
        (inner.incoming.outstanding(), inner.outgoing.outstanding())
    }

    /// Runs `f` on the service under the channel lock (no waiting, no platform calls inside).
    pub fn with_service<R>(&self, f: impl FnOnce(&mut S) -> R) -> R {
        f(&mut self.inner.lock().service)
    }

    /// Records a driver request to KMCL: [`ChannelEvent::Enable`] after `VmbChannelEnable`
    /// succeeded, [`ChannelEvent::Start`] / [`ChannelEvent::Pause`] /
    /// [`ChannelEvent::Disable`] before calling the KMCL function of that name, and
    /// [`ChannelEvent::Restored`] after `VmbChannelRestoreFromBuffer` finished.
    ///
    /// # Errors
    ///
    /// A [`StateError`] if the request is not legal now (the driver must then not make the
    /// KMCL call), including any request made while a state callback runs.
    pub fn request(&self, event: ChannelEvent) -> Result<(), ChannelError> {
        if event.is_callback() {
            return Err(ChannelError::State(StateError::IllegalEvent {
                state: self.state(),
                event,
            }));
        }
        self.inner.lock().machine.apply(event)?;
        Ok(())
    }

    /// `EvtChannelOpened`: returns the status for KMCL (failure rolls the open back).
    pub fn on_opened(&self, platform: &P) -> NtStatus {
        match self.state_callback(platform, ChannelEvent::Opened) {
            Ok(()) => NtStatus::SUCCESS,
            Err(error) => error.status(),
        }
    }

    /// `EvtChannelStarted`.
    ///
    /// # Errors
    ///
    /// The event is not legal now; nothing changed.
    pub fn on_started(&self, platform: &P) -> Result<(), ChannelError> {
        self.state_callback(platform, ChannelEvent::Started)
    }

    /// `EvtChannelPostStarted`: sends what was held back while sending was stopped.
    ///
    /// # Errors
    ///
    /// The event is not legal now; nothing changed.
    pub fn on_post_started(&self, platform: &P) -> Result<(), ChannelError> {
        self.state_callback(platform, ChannelEvent::PostStarted)
    }

    /// `EvtChannelSuspend`: no more packets until the next Started; every outstanding incoming
    /// packet is completed with a "cancelled" refusal before this returns.
    ///
    /// # Errors
    ///
    /// The event is not legal now; nothing changed.
    pub fn on_suspend(&self, platform: &P) -> Result<(), ChannelError> {
        self.state_callback(platform, ChannelEvent::Suspend)
    }

    /// `EvtChannelClosed`: releases the transactions the departed guest owed and resets its
    /// session.
    ///
    /// Core never frees an outgoing packet object: the platform's completion routine does,
    /// whether or not core still knew the transaction. What KMCL does with packets outstanding
    /// at close is unconfirmed (`kmcl.md` §2.4); core's part holds either way.
    ///
    /// # Errors
    ///
    /// The event is not legal now; nothing changed.
    pub fn on_closed(&self, platform: &P) -> Result<(), ChannelError> {
        self.state_callback(platform, ChannelEvent::Closed)
    }

    fn state_callback(&self, platform: &P, event: ChannelEvent) -> Result<(), ChannelError> {
        let effects = {
            let mut inner = self.inner.lock();
            let effects = inner.machine.apply(event)?;
            inner.machine.enter_callback(event)?;
            effects
        };
        let result = self.perform(platform, effects);
        self.inner.lock().machine.exit_callback();
        result
    }

    fn perform(&self, platform: &P, effects: Effects) -> Result<(), ChannelError> {
        if effects.contains(Effects::RETIRE_INCOMING) {
            self.retire_incoming(platform);
        }
        if effects.contains(Effects::RETIRE_OUTGOING) {
            self.retire_outgoing();
        }
        if effects.contains(Effects::RESET_SESSION) {
            self.inner.lock().service.reset_session();
        }
        if effects.contains(Effects::FLUSH_PENDING_SENDS) {
            self.send_pending(platform)?;
        }
        Ok(())
    }

    fn retire_incoming(&self, platform: &P) {
        let mut response = [0u8; MAX_REFUSAL_LEN];
        for index in 0..QUOTA {
            let retired = {
                let mut inner = self.inner.lock();
                let inner = &mut *inner;
                inner.incoming.release_at(index).map(|entry| {
                    let len = inner.service.refusal(
                        Some(entry.request),
                        &[],
                        Refusal::Cancelled,
                        &mut response,
                    );
                    inner.stats.packets_refused = inner.stats.packets_refused.saturating_add(1);
                    inner.stats.packets_retired = inner.stats.packets_retired.saturating_add(1);
                    (entry.packet, len)
                })
            };
            if let Some((packet, len)) = retired {
                platform.complete_packet(packet, prefix(&response, len));
            }
        }
    }

    fn retire_outgoing(&self) {
        for index in 0..OUTGOING {
            let mut inner = self.inner.lock();
            let inner = &mut *inner;
            if let Some((_, entry)) = inner.outgoing.release_at(index) {
                inner.service.transaction_retired(entry.context);
                inner.stats.transactions_retired =
                    inner.stats.transactions_retired.saturating_add(1);
            }
        }
    }

    /// `EvtVmbChannelProcessPacket`: serves one packet. `response` is scratch space for the
    /// reply (at least the service's largest message; the platform supplies it so that no
    /// large buffer lives on the kernel stack).
    ///
    /// Packets the service answers inline never enter the ledger: they are completed before
    /// this returns, and KMCL does not run Suspend while ProcessPacket runs.
    ///
    /// # Errors
    ///
    /// The packet could not be served; it has been completed with a refusal all the same.
    pub fn process_packet(
        &self,
        platform: &P,
        packet: P::IncomingPacket,
        payload: &[u8],
        response: &mut [u8],
    ) -> Result<PacketOutcome, ChannelError> {
        let now = platform.now();
        let mut inner = self.inner.lock();
        let inner_ref = &mut *inner;
        inner_ref.incoming.note_delivered();
        inner_ref.stats.packets_delivered = inner_ref.stats.packets_delivered.saturating_add(1);
        if let Err(error) = inner_ref.machine.check(Operation::ProcessPacket) {
            let len = inner_ref
                .service
                .refusal(None, payload, Refusal::NotRunning, response);
            inner_ref.stats.packets_refused = inner_ref.stats.packets_refused.saturating_add(1);
            drop(inner);
            platform.complete_packet(packet, prefix(response, len));
            return Err(error.into());
        }
        match inner_ref.service.handle_packet(payload, response, now) {
            Disposition::Respond(len) => {
                inner_ref.stats.packets_completed =
                    inner_ref.stats.packets_completed.saturating_add(1);
                drop(inner);
                platform.complete_packet(packet, prefix(response, len));
                Ok(PacketOutcome::Completed)
            }
            Disposition::Defer(request) => match inner_ref.incoming.hold(packet, request) {
                Ok(id) => Ok(PacketOutcome::Deferred(id)),
                Err(entry) => {
                    let len = inner_ref.service.refusal(
                        Some(entry.request),
                        payload,
                        Refusal::Busy,
                        response,
                    );
                    inner_ref.stats.packets_refused =
                        inner_ref.stats.packets_refused.saturating_add(1);
                    drop(inner);
                    platform.complete_packet(entry.packet, prefix(response, len));
                    Err(ChannelError::IncomingFull { capacity: QUOTA })
                }
            },
            Disposition::Fail => {
                inner_ref.stats.packets_failed = inner_ref.stats.packets_failed.saturating_add(1);
                drop(inner);
                platform.fail_packet(packet);
                Ok(PacketOutcome::Failed)
            }
        }
    }

    /// `EvtVmbChannelProcessingComplete`: closes the batch; returns its size.
    ///
    /// # Errors
    ///
    /// The state forbids it, or `reported` disagrees with the packets delivered.
    pub fn processing_complete(&self, reported: u32) -> Result<u32, ChannelError> {
        let mut inner = self.inner.lock();
        inner.machine.check(Operation::ProcessingComplete)?;
        inner
            .incoming
            .close_batch(reported)
            .map_err(ChannelError::BatchMismatch)
    }

    /// Completes a deferred packet with `response`.
    ///
    /// # Errors
    ///
    /// [`ChannelError::UnknownIncoming`] if the packet already left the ledger (completed, or
    /// retired at Suspend): nothing is completed a second time.
    pub fn complete_deferred(
        &self,
        platform: &P,
        id: IncomingId,
        response: &[u8],
    ) -> Result<(), ChannelError> {
        let entry = {
            let mut inner = self.inner.lock();
            let entry = inner.incoming.release(id);
            let stats = &mut inner.stats;
            match entry {
                Some(_) => stats.packets_completed = stats.packets_completed.saturating_add(1),
                None => stats.stale_references = stats.stale_references.saturating_add(1),
            }
            entry
        };
        let entry = entry.ok_or(ChannelError::UnknownIncoming(id))?;
        platform.complete_packet(entry.packet, response);
        Ok(())
    }

    /// Completes a deferred packet with a response the service builds from the request it
    /// deferred: `answer` runs under the channel lock (no waiting, no platform calls) and
    /// returns the length it wrote into `response`.
    ///
    /// # Errors
    ///
    /// [`ChannelError::UnknownIncoming`] if the packet already left the ledger; `answer` is
    /// then not called.
    pub fn answer_deferred(
        &self,
        platform: &P,
        id: IncomingId,
        response: &mut [u8],
        answer: impl FnOnce(&mut S, S::Request, &mut [u8]) -> usize,
    ) -> Result<(), ChannelError> {
        let (packet, len) = {
            let mut inner = self.inner.lock();
            let inner = &mut *inner;
            let Some(entry) = inner.incoming.release(id) else {
                inner.stats.stale_references = inner.stats.stale_references.saturating_add(1);
                return Err(ChannelError::UnknownIncoming(id));
            };
            inner.stats.packets_completed = inner.stats.packets_completed.saturating_add(1);
            let len = answer(&mut inner.service, entry.request, response);
            (entry.packet, len)
        };
        platform.complete_packet(packet, prefix(response, len));
        Ok(())
    }

    /// Sends every host→guest message the service has pending, while the state allows sending
    /// and the outgoing ledger has room; returns how many were sent. Messages that do not fit
    /// stay pending in the service until a completion frees room.
    ///
    /// # Errors
    ///
    /// The platform's send failed (the service was told; later messages stay pending).
    pub fn send_pending(&self, platform: &P) -> Result<usize, ChannelError> {
        let mut sent = 0usize;
        loop {
            let mut message = [0u8; MAX_SEND_LEN];
            let (key, len) = {
                let mut inner = self.inner.lock();
                let inner = &mut *inner;
                if !inner.machine.state().permits(Operation::Send)
                    || inner.outgoing.outstanding() >= OUTGOING
                {
                    return Ok(sent);
                }
                let Some((transaction, len)) =
                    inner.service.next_send(&mut message, platform.now())
                else {
                    return Ok(sent);
                };
                let identity = inner.service.transaction_identity(&transaction);
                match inner.outgoing.reserve(transaction, identity) {
                    Ok(key) => (key, len),
                    Err(transaction) => {
                        // Unreachable given the room check above, but never lose it silently.
                        inner
                            .service
                            .send_failed(transaction, NtStatus::INSUFFICIENT_RESOURCES);
                        return Err(ChannelError::OutgoingFull { capacity: OUTGOING });
                    }
                }
            };
            match platform.send_transaction(&self.handle, key, prefix(&message, len)) {
                Ok(packet) => {
                    let mut inner = self.inner.lock();
                    inner.stats.transactions_sent = inner.stats.transactions_sent.saturating_add(1);
                    // A guest that completed before this commit already released the entry;
                    // the packet object is then the platform's completion routine's to free.
                    let _late = inner.outgoing.commit(key, packet);
                }
                Err(status) => {
                    let mut inner = self.inner.lock();
                    let inner = &mut *inner;
                    if let Some(transaction) = inner.outgoing.abort(key) {
                        inner.service.send_failed(transaction, status);
                    }
                    return Err(ChannelError::SendFailed(status));
                }
            }
            sent = sent.saturating_add(1);
        }
    }

    /// The completion routine of a host→guest transaction: the guest completed it with
    /// `status` and `completion` (hostile). Releases the ledger entry exactly once, then sends
    /// whatever was waiting for room.
    ///
    /// # Errors
    ///
    /// [`ChannelError::UnknownTransaction`] for a stale or unknown key (nothing released);
    /// [`ChannelError::CompletionMismatch`] if the service refused the completion's content
    /// (released anyway); a send error from flushing pending messages.
    pub fn transaction_completed(
        &self,
        platform: &P,
        key: TransactionKey,
        status: NtStatus,
        completion: &[u8],
    ) -> Result<(), ChannelError> {
        let verdict = {
            let mut inner = self.inner.lock();
            let inner = &mut *inner;
            let Some(entry) = inner.outgoing.complete(key) else {
                inner.stats.stale_references = inner.stats.stale_references.saturating_add(1);
                return Err(ChannelError::UnknownTransaction(key));
            };
            inner.stats.transactions_completed =
                inner.stats.transactions_completed.saturating_add(1);
            inner
                .service
                .transaction_completed(entry.context, status, completion)
        };
        self.send_pending(platform)?;
        verdict.map_err(|_| ChannelError::CompletionMismatch)
    }

    /// `EvtVmbChannelSavePacket` for the transaction `key` (the platform recovers the key from
    /// the packet object). The first call passes an empty buffer: with state to save the answer
    /// is `STATUS_BUFFER_TOO_SMALL` and the exact size; with nothing to save, success. A call
    /// with a large enough buffer writes the state.
    pub fn save_packet(
        &self,
        platform: &P,
        key: TransactionKey,
        out: &mut [u8],
    ) -> SavePacketAnswer {
        let now = platform.now();
        let mut inner = self.inner.lock();
        let inner = &mut *inner;
        if inner.machine.check(Operation::SavePacket).is_err() {
            return SavePacketAnswer {
                status: NtStatus::INVALID_DEVICE_STATE,
                bytes: 0,
            };
        }
        let Some(context) = inner.outgoing.context(key) else {
            inner.stats.stale_references = inner.stats.stale_references.saturating_add(1);
            return SavePacketAnswer {
                status: NtStatus::NOT_FOUND,
                bytes: 0,
            };
        };
        let needed = context.saved_len(now);
        let Ok(needed_u32) = u32::try_from(needed) else {
            return SavePacketAnswer {
                status: NtStatus::INVALID_BUFFER_SIZE,
                bytes: 0,
            };
        };
        if needed == 0 {
            inner.stats.transactions_saved = inner.stats.transactions_saved.saturating_add(1);
            return SavePacketAnswer {
                status: NtStatus::SUCCESS,
                bytes: 0,
            };
        }
        if out.len() < needed {
            return SavePacketAnswer {
                status: NtStatus::BUFFER_TOO_SMALL,
                bytes: needed_u32,
            };
        }
        match context.save(now, out) {
            Ok(written) => {
                inner.stats.transactions_saved = inner.stats.transactions_saved.saturating_add(1);
                SavePacketAnswer {
                    status: NtStatus::SUCCESS,
                    bytes: u32::try_from(written).unwrap_or(needed_u32),
                }
            }
            Err(status) => SavePacketAnswer { status, bytes: 0 },
        }
    }

    /// `EvtVmbChannelRestorePacket`: decodes the VSP's saved state (`saved`, untrusted), has the
    /// platform recreate the packet from KMCL's `library_state`, and re-inserts the
    /// transaction. Validation happens before anything changes; a failure restores nothing.
    ///
    /// # Errors
    ///
    /// The state forbids restoring, the saved bytes are refused, the same transaction is
    /// already in flight (a repeated RestorePacket), the ledger is full, or the platform could
    /// not recreate the packet.
    pub fn restore_packet(
        &self,
        platform: &P,
        library_state: &[u8],
        saved: &[u8],
    ) -> Result<TransactionKey, ChannelError> {
        let transaction = S::Transaction::restore(saved, platform.now())
            .map_err(|error| ChannelError::SavedStateRefused(error.into()))?;
        let key = {
            let mut inner = self.inner.lock();
            inner.machine.check(Operation::RestorePacket)?;
            let inner = &mut *inner;
            let identity = inner.service.transaction_identity(&transaction);
            if let Some(existing) = identity.and_then(|id| inner.outgoing.find_identity(id)) {
                return Err(ChannelError::DuplicateTransaction(existing));
            }
            inner
                .outgoing
                .reserve(transaction, identity)
                .map_err(|_| ChannelError::OutgoingFull { capacity: OUTGOING })?
        };
        match platform.restore_transaction(&self.handle, key, library_state) {
            Ok(packet) => {
                let mut inner = self.inner.lock();
                let inner = &mut *inner;
                let _late = inner.outgoing.commit(key, packet);
                if let Some(context) = inner.outgoing.context(key) {
                    inner.service.transaction_restored(context);
                }
                inner.stats.transactions_restored =
                    inner.stats.transactions_restored.saturating_add(1);
                Ok(key)
            }
            Err(status) => {
                let _released = self.inner.lock().outgoing.abort(key);
                Err(ChannelError::RestoreFailed(status))
            }
        }
    }

    /// The keys of the transactions in flight (what KMCL will call SavePacket for).
    pub fn transaction_keys(&self, mut each: impl FnMut(TransactionKey, &S::Transaction)) {
        let inner = self.inner.lock();
        for (key, entry) in inner.outgoing.iter() {
            each(key, &entry.context);
        }
    }
}
