//! The simulated KMCL finds an outgoing packet object by its VMBus transaction id (a guest
//! completion, the duplicate check of `VmbPacketRestore`) through an index: these tests pin
//! what the index must agree with — the packets in use — across sends, completions, a
//! completion of nothing, save and restore, and repeated restores.

use std::cell::Cell;
use std::collections::{BTreeSet, VecDeque};

use ferry_core::status::NtStatus;
use ferry_platform_mock::kmcl::{
    self, ChannelHandle, IncomingPacketHandle, Kmcl, PacketHandle, ServerCallbacks, ToHost,
};

/// Callbacks that accept everything, save nothing per packet and count completions.
#[derive(Default)]
struct Accepting {
    completions: Cell<u32>,
}

impl ServerCallbacks for Accepting {
    fn channel_opened(&self, _: ChannelHandle) -> NtStatus {
        NtStatus::SUCCESS
    }
    fn channel_started(&self, _: ChannelHandle) {}
    fn channel_post_started(&self, _: ChannelHandle) {}
    fn channel_suspend(&self, _: ChannelHandle) {}
    fn channel_closed(&self, _: ChannelHandle) {}
    fn process_packet(&self, _: ChannelHandle, _: IncomingPacketHandle, _: &[u8]) {}
    fn processing_complete(&self, _: ChannelHandle, _: u32) {}
    fn packet_completion(&self, _: ChannelHandle, _: PacketHandle, _: u32, _: NtStatus, _: &[u8]) {
        self.completions.set(self.completions.get() + 1);
    }
    fn save_packet(&self, _: ChannelHandle, _: u32, _: &mut [u8]) -> (NtStatus, u32) {
        (NtStatus::SUCCESS, 0)
    }
    fn restore_packet(&self, _: ChannelHandle, _: &[u8], _: &[u8]) -> NtStatus {
        NtStatus::SUCCESS
    }
}

fn in_use(kmcl: &Kmcl, channel: ChannelHandle) -> BTreeSet<u64> {
    kmcl.outgoing_txids(channel).into_iter().collect()
}

fn completion(txid: u64) -> ToHost {
    ToHost::Completion {
        txid,
        payload: Vec::new(),
    }
}

/// The whole saved stream of a paused channel.
fn saved_stream(kmcl: &Kmcl, channel: ChannelHandle, callbacks: &Accepting) -> Vec<u8> {
    kmcl.save_begin(channel, callbacks).unwrap();
    let mut stream = vec![0u8; 1 << 16];
    let chunk = kmcl.save_continue(channel, &mut stream);
    assert_eq!(chunk.status, NtStatus::SUCCESS);
    stream.truncate(chunk.bytes);
    kmcl.save_end(channel);
    stream
}

#[test]
fn completions_and_restores_find_packets_by_transaction_id() {
    let kmcl = Kmcl::new();
    let callbacks = Accepting::default();
    let source = kmcl.allocate(4, 8);
    kmcl.enable(source);
    kmcl.start(source, &callbacks);
    assert!(kmcl.guest_open(source, &callbacks).is_success());
    for key_bits in 0..6u32 {
        kmcl.packet_send(source, key_bits, &[key_bits as u8])
            .unwrap();
    }
    assert_eq!(in_use(&kmcl, source), BTreeSet::from([1, 2, 3, 4, 5, 6]));

    // The guest completes two; completing one of them again finds nothing.
    let mut ring: VecDeque<ToHost> = [completion(2), completion(5)].into();
    let pumped = kmcl.pump(source, &mut ring, 8, &callbacks);
    assert_eq!(pumped.completions, 2);
    assert_eq!(in_use(&kmcl, source), BTreeSet::from([1, 3, 4, 6]));
    assert!(kmcl.take_violations().is_empty());
    let mut ring: VecDeque<ToHost> = [completion(5)].into();
    assert_eq!(kmcl.pump(source, &mut ring, 8, &callbacks).completions, 0);
    assert_eq!(callbacks.completions.get(), 2);
    let violations = kmcl.take_violations();
    assert_eq!(violations.len(), 1, "{violations:?}");
    assert!(violations[0].contains("transaction 5"), "{violations:?}");

    kmcl.pause(source, &callbacks);
    let stream = saved_stream(&kmcl, source, &callbacks);
    let packets = kmcl::saved_packets(&stream).unwrap();
    assert_eq!(packets.len(), 4);

    // Restored on another channel of the same VM: each once; a repeat is a collision.
    let destination = kmcl.allocate(4, 8);
    for (key_bits, (library, _)) in (100u32..).zip(&packets) {
        kmcl.packet_restore(destination, key_bits, library).unwrap();
    }
    for (library, _) in &packets {
        assert_eq!(
            kmcl.packet_restore(destination, 7, library),
            Err(NtStatus::OBJECT_NAME_COLLISION)
        );
    }
    assert_eq!(in_use(&kmcl, destination), BTreeSet::from([1, 3, 4, 6]));
    // Still in use on the source too: a restore there collides as well.
    assert_eq!(
        kmcl.packet_restore(source, 9, &packets[0].0),
        Err(NtStatus::OBJECT_NAME_COLLISION)
    );

    // Once the source's packets are cancelled by a close, the same ids restore there again,
    // and the guest's completion of a restored packet reaches it.
    kmcl.guest_close(source, &mut VecDeque::new(), &callbacks);
    assert!(in_use(&kmcl, source).is_empty());
    for (key_bits, (library, _)) in (200u32..).zip(&packets) {
        kmcl.packet_restore(source, key_bits, library).unwrap();
    }
    assert_eq!(in_use(&kmcl, source), BTreeSet::from([1, 3, 4, 6]));
    kmcl.enable(destination);
    kmcl.start(destination, &callbacks);
    assert!(kmcl.guest_open(destination, &callbacks).is_success());
    let before = callbacks.completions.get();
    let mut ring: VecDeque<ToHost> = [completion(4), completion(1)].into();
    assert_eq!(
        kmcl.pump(destination, &mut ring, 8, &callbacks).completions,
        2
    );
    assert_eq!(callbacks.completions.get(), before + 2);
    assert_eq!(in_use(&kmcl, destination), BTreeSet::from([3, 6]));
    assert!(kmcl.take_violations().is_empty());
}
