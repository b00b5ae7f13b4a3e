//! A tiny single-threaded [`Platform`] that records what core asks of it and refuses to
//! complete a packet twice.

use std::cell::{Cell, RefCell};
use std::collections::BTreeSet;

use ferry_core::lock::SpinRawLock;
use ferry_core::platform::{Platform, Ticks, TransactionKey};
use ferry_core::status::NtStatus;

/// An incoming packet handle: neither `Copy` nor `Clone`, like the real one.
#[derive(Debug)]
pub struct Packet(pub u32);

/// One completed incoming packet.
#[derive(Debug)]
pub struct Completion {
    /// The packet's id.
    pub packet: u32,
    /// The completion payload (`None` for `VmbChannelPacketFail`).
    pub response: Option<Vec<u8>>,
}

/// Records completions and sends; the clock is set by the fuzz target.
#[derive(Default)]
pub struct FuzzPlatform {
    /// Every completion and fail, in order.
    pub completions: RefCell<Vec<Completion>>,
    /// Every transaction sent: its key and payload.
    pub sent: RefCell<Vec<(TransactionKey, Vec<u8>)>>,
    /// Packets completed or failed so far.
    done: RefCell<BTreeSet<u32>>,
    /// The clock.
    pub now: Cell<u64>,
    /// Fail sends with this status while set.
    pub fail_sends: Cell<Option<NtStatus>>,
    /// Fail restores with this status while set.
    pub fail_restores: Cell<Option<NtStatus>>,
    next_outgoing: Cell<u32>,
}

impl FuzzPlatform {
    fn finish(&self, packet: Packet, response: Option<&[u8]>) {
        assert!(
            self.done.borrow_mut().insert(packet.0),
            "packet {} completed twice",
            packet.0
        );
        self.completions.borrow_mut().push(Completion {
            packet: packet.0,
            response: response.map(<[u8]>::to_vec),
        });
    }

    /// Whether packet `id` was completed or failed.
    pub fn is_done(&self, id: u32) -> bool {
        self.done.borrow().contains(&id)
    }

    /// How many packets were completed or failed.
    pub fn done_count(&self) -> usize {
        self.done.borrow().len()
    }
}

impl Platform for FuzzPlatform {
    type Channel = ();
    type IncomingPacket = Packet;
    type OutgoingPacket = u32;
    type PortSaveCompletion = ();
    type Lock = SpinRawLock;

    fn complete_packet(&self, packet: Packet, response: &[u8]) {
        self.finish(packet, Some(response));
    }

    fn fail_packet(&self, packet: Packet) {
        self.finish(packet, None);
    }

    fn send_transaction(
        &self,
        _channel: &(),
        key: TransactionKey,
        payload: &[u8],
    ) -> Result<u32, NtStatus> {
        if let Some(status) = self.fail_sends.get() {
            return Err(status);
        }
        self.sent.borrow_mut().push((key, payload.to_vec()));
        let id = self.next_outgoing.get();
        self.next_outgoing.set(id.wrapping_add(1));
        Ok(id)
    }

    fn restore_transaction(
        &self,
        _channel: &(),
        _key: TransactionKey,
        _library_state: &[u8],
    ) -> Result<u32, NtStatus> {
        match self.fail_restores.get() {
            Some(status) => Err(status),
            None => Ok(u32::MAX),
        }
    }

    fn complete_port_save(&self, _completion: (), _status: NtStatus) {}

    fn now(&self) -> Ticks {
        Ticks(self.now.get())
    }
}
