//! [`WdkPlatform`]: ferry-core's [`Platform`] over the KMCL and WFP function tables and the
//! kernel services.
//!
//! Each method is the KMCL/WFP call sequence its core documentation names; nothing here
//! decides anything. The handle types wrap the C handles so that core can store them in its
//! ledgers (shared between CPUs) and consume them exactly once (none is `Clone`).

use core::ffi::c_void;
use core::marker::PhantomData;
use core::ptr;

use ferry_core::platform::{Platform, Ticks, TransactionKey};
use ferry_core::status::NtStatus;

use crate::ffi::kmcl::{
    PFN_VMB_PACKET_COMPLETION_ROUTINE, VMBCHANNEL, VMBPACKET, VMBPACKETCOMPLETION,
    VMBUS_CHANNEL_FORMAT_FLAG_WAIT_FOR_COMPLETION,
};
use crate::kernel::services::KernelServices;
use crate::tables::{KmclTable, WfpTable};

/// A KMCL channel handle as core stores it.
#[derive(Debug, PartialEq, Eq)]
pub struct ChannelHandle(pub VMBCHANNEL);

// SAFETY: a VMBCHANNEL is an opaque KMCL object usable from any CPU; the wrapper only carries
// the value.
unsafe impl Send for ChannelHandle {}
// SAFETY: shared access only copies the handle value out to pass it to KMCL.
unsafe impl Sync for ChannelHandle {}

/// An incoming packet awaiting `VmbChannelPacketComplete` or `VmbChannelPacketFail`.
#[derive(Debug, PartialEq, Eq)]
pub struct IncomingPacket(pub VMBPACKETCOMPLETION);

// SAFETY: KMCL allows completing a packet from any CPU (and from a later thread, for deferred
// completion); the wrapper only carries the value.
unsafe impl Send for IncomingPacket {}

/// An outgoing packet object (`VMBPACKET`) as core records it. Core never frees it: the
/// completion routine does (see [`crate::host::channel`]).
#[derive(Debug, PartialEq, Eq)]
pub struct OutgoingPacket(pub VMBPACKET);

// SAFETY: only the handle value is carried; it is never dereferenced by ferry.
unsafe impl Send for OutgoingPacket {}

/// The completion context of a vSwitch runtime-state save that returned `STATUS_PENDING`,
/// with the save callback's two out-parameters (see [`crate::host::vswitch`] for why they are
/// kept and what is unconfirmed about them).
#[derive(Debug, PartialEq, Eq)]
pub struct PortSaveCompletion {
    /// WFP's `completionContext`, handed back to `FwpsvSwitchNotifyComplete0`.
    pub context: *mut c_void,
    /// The callback's `runtimeState` out-parameter.
    pub state_out: *mut *mut c_void,
    /// The callback's `runtimeStateLength` out-parameter.
    pub length_out: *mut usize,
}

// SAFETY: the pointers are WFP's, kept only to be handed back once; WFP's completion may run
// on any CPU.
unsafe impl Send for PortSaveCompletion {}

/// ferry-core's platform on Windows: the KMCL and WFP tables, the completion routine to put
/// on every outgoing packet, and the kernel services `K`.
pub struct WdkPlatform<K: KernelServices> {
    kmcl: KmclTable,
    wfp: WfpTable,
    completion_routine: PFN_VMB_PACKET_COMPLETION_ROUTINE,
    kernel: PhantomData<fn() -> K>,
}

impl<K: KernelServices> core::fmt::Debug for WdkPlatform<K> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("WdkPlatform").finish_non_exhaustive()
    }
}

impl<K: KernelServices> WdkPlatform<K> {
    /// The platform over `kmcl` and `wfp`. `completion_routine` is set on every packet this
    /// platform sends or restores: the driver passes
    /// [`packet_completion`](crate::host::channel::packet_completion) for its host type.
    #[must_use]
    pub const fn new(
        kmcl: KmclTable,
        wfp: WfpTable,
        completion_routine: PFN_VMB_PACKET_COMPLETION_ROUTINE,
    ) -> Self {
        Self {
            kmcl,
            wfp,
            completion_routine,
            kernel: PhantomData,
        }
    }

    /// The KMCL table.
    #[must_use]
    pub const fn kmcl(&self) -> &KmclTable {
        &self.kmcl
    }

    /// The WFP table.
    #[must_use]
    pub const fn wfp(&self) -> &WfpTable {
        &self.wfp
    }

    /// Allocates a packet object on `channel` and stores `key` on it; `None` when KMCL has
    /// none to give.
    fn allocate_packet(&self, channel: VMBCHANNEL, key: TransactionKey) -> Option<VMBPACKET> {
        // SAFETY: `channel` is a live channel of this driver (core passes its own handle).
        let packet = unsafe { (self.kmcl.packet_allocate)(channel) };
        if packet.is_null() {
            return None;
        }
        // The key travels as the pointer's bits: it is never dereferenced.
        let bits = ptr::without_provenance_mut::<c_void>(key.to_bits() as usize);
        // SAFETY: `packet` was just allocated and is owned by this function.
        unsafe { (self.kmcl.packet_set_pointer)(packet, bits) };
        // SAFETY: as above; the routine is an `extern "system"` function of this image.
        unsafe { (self.kmcl.packet_set_completion_routine)(packet, self.completion_routine) };
        Some(packet)
    }

    fn free_packet(&self, packet: VMBPACKET) {
        // SAFETY: `packet` came from VmbPacketAllocate and was not sent or restored (the
        // callers free only after a failed send or restore), so ferry still owns it.
        unsafe { (self.kmcl.packet_free)(packet) };
    }
}

/// `len` as the `u32` KMCL takes. Every buffer ferry passes is far below 4 GiB (messages are
/// at most `MAX_MESSAGE_LEN`); a longer one is refused rather than truncated.
fn length_u32(len: usize) -> Result<u32, NtStatus> {
    u32::try_from(len).map_err(|_| NtStatus::INVALID_BUFFER_SIZE)
}

impl<K: KernelServices> Platform for WdkPlatform<K> {
    type Channel = ChannelHandle;
    type IncomingPacket = IncomingPacket;
    type OutgoingPacket = OutgoingPacket;
    type PortSaveCompletion = PortSaveCompletion;
    type Lock = K::Lock;

    fn complete_packet(&self, packet: IncomingPacket, response: &[u8]) {
        // A response never exceeds MAX_MESSAGE_LEN; should one, complete it empty rather than
        // send a truncated message.
        let (buffer, len) = match length_u32(response.len()) {
            Ok(len) => (response.as_ptr().cast_mut().cast::<c_void>(), len),
            Err(_) => (ptr::null_mut(), 0),
        };
        // SAFETY: `packet` is an uncompleted VMBPACKETCOMPLETION (core hands each one over
        // exactly once); KMCL copies `len` bytes from `buffer`, which `response` keeps alive
        // for the call.
        unsafe { (self.kmcl.channel_packet_complete)(packet.0, buffer, len) };
    }

    fn fail_packet(&self, packet: IncomingPacket) {
        // SAFETY: `packet` is an uncompleted VMBPACKETCOMPLETION, handed over exactly once.
        unsafe { (self.kmcl.channel_packet_fail)(packet.0) };
    }

    fn send_transaction(
        &self,
        channel: &ChannelHandle,
        key: TransactionKey,
        payload: &[u8],
    ) -> Result<OutgoingPacket, NtStatus> {
        let len = length_u32(payload.len())?;
        let packet = self
            .allocate_packet(channel.0, key)
            .ok_or(NtStatus::INSUFFICIENT_RESOURCES)?;
        // SAFETY: `packet` is ours and prepared; KMCL copies the payload into the ring before
        // returning; no MDL.
        let status = unsafe {
            (self.kmcl.packet_send)(
                packet,
                payload.as_ptr().cast_mut().cast(),
                len,
                ptr::null_mut(),
                VMBUS_CHANNEL_FORMAT_FLAG_WAIT_FOR_COMPLETION,
            )
        };
        if status.is_success() {
            // From here the packet belongs to KMCL until the completion routine frees it.
            Ok(OutgoingPacket(packet))
        } else {
            self.free_packet(packet);
            Err(status)
        }
    }

    fn restore_transaction(
        &self,
        channel: &ChannelHandle,
        key: TransactionKey,
        library_state: &[u8],
    ) -> Result<OutgoingPacket, NtStatus> {
        let len = length_u32(library_state.len())?;
        let packet = self
            .allocate_packet(channel.0, key)
            .ok_or(NtStatus::INSUFFICIENT_RESOURCES)?;
        // SAFETY: `packet` is ours and unsent; KMCL reads `len` bytes of its own saved state,
        // which `library_state` keeps alive for the call.
        let status = unsafe {
            (self.kmcl.packet_restore)(packet, library_state.as_ptr().cast_mut().cast(), len)
        };
        if status.is_success() {
            Ok(OutgoingPacket(packet))
        } else {
            self.free_packet(packet);
            Err(status)
        }
    }

    fn complete_port_save(&self, completion: PortSaveCompletion, status: NtStatus) {
        // SAFETY: `completion.context` is the completionContext of a save callback that
        // returned STATUS_PENDING, handed over exactly once (core's pending list holds it by
        // value); flags 0 and reserved NULL as documented.
        unsafe { (self.wfp.notify_complete)(completion.context, status, 0, ptr::null_mut()) };
    }

    fn now(&self) -> Ticks {
        K::now()
    }
}
