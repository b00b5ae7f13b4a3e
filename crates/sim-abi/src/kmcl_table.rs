//! The simulated host's KMCL as C: every function ferry uses, with `vmbkmclr.sys`'s C
//! signature, gathered into a `KMCL_SERVER_INTERFACE_V1` ([`interface`]). Each forwards to
//! the simulated KMCL (platform-mock's [`Kmcl`](ferry_platform_mock::kmcl::Kmcl)), which
//! decides when a callback runs; `kmcl_callbacks` makes the callbacks.
//!
//! Contracts enforced here (each breach is recorded, not panicked on):
//!
//! * set-up: `*Init*` calls only between `VmbChannelAllocate` and `VmbChannelEnable`; Enable
//!   only with ProcessPacket and state callbacks (Version 1, Size 48), a target interface id,
//!   and a VMBus handle or the loopback flag; Start/Pause after Enable and never inside a
//!   state callback (kmcl.md §2.2); Cleanup only before Enable or after Disable, with every
//!   packet object freed and every incoming packet completed; nothing after Cleanup;
//! * incoming packets: each `VMBPACKETCOMPLETION` completed or failed exactly once;
//! * outgoing packets: freed exactly once, never while KMCL owns them (sent, routine not run
//!   yet); no send between Suspend and the next Started; `VmbPacketRestore` only inside
//!   RestorePacket;
//! * SavePacket's two calls: a size call answering `STATUS_BUFFER_TOO_SMALL` must ask for a
//!   non-zero size, the fill call must succeed and write exactly that many bytes.

use std::collections::VecDeque;
use std::ffi::c_void;

use ferry_core::status::NtStatus;
use ferry_platform_mock::kmcl::{ChannelHandle, IncomingPacketHandle};
use ferry_platform_wdk::ffi::base::{BOOLEAN, DEVICE_OBJECT, GUID, HANDLE, MDL, UNICODE_STRING};
use ferry_platform_wdk::ffi::kmcl::{
    KMCL_SERVER_INTERFACE_V1, PFN_VMB_CHANNEL_PROCESS_PACKET, PFN_VMB_CHANNEL_PROCESSING_COMPLETE,
    PFN_VMB_CHANNEL_RESTORE_PACKET, PFN_VMB_CHANNEL_SAVE_PACKET, PFN_VMB_PACKET_COMPLETION_ROUTINE,
    VMB_CHANNEL_STATE_CHANGE_CALLBACKS, VMBCHANNEL, VMBPACKET, VMBPACKETCOMPLETION,
    VMBUS_CHANNEL_FORMAT_FLAG_WAIT_FOR_COMPLETION, VMBUS_SERVER_CHANNEL_INIT_FLAG_LOOPBACK_OFFER,
    VMBUS_SERVER_CHANNEL_INIT_FLAGS,
};

use crate::kmcl_callbacks::CCallbacks;
use crate::sim_host::{
    ChannelObject, PacketObject, PacketState, Phase, SimHost, Tag, decode, encode, host_of,
};

/// The transaction quota KMCL uses when the driver sets none (the real default is
/// unconfirmed, kmcl.md §4).
const DEFAULT_QUOTA: u32 = 256;

/// `STATUS_INVALID_HANDLE` (ntstatus.h).
const STATUS_INVALID_HANDLE: NtStatus = NtStatus(0xC000_0008_u32 as i32);

/// The `VMBCHANNEL` of channel `id` on host `host`.
pub fn channel_handle(host: usize, id: u64) -> VMBCHANNEL {
    VMBCHANNEL::from_raw(encode(host, Tag::Channel, id))
}

/// The `VMBPACKET` of packet `id` on host `host`.
pub fn packet_handle(host: usize, id: u64) -> VMBPACKET {
    VMBPACKET::from_raw(encode(host, Tag::Packet, id))
}

/// `len` bytes at `buffer` (driver memory) copied, or `None` (recorded) for a NULL buffer
/// with a length.
fn copy_in(host: &SimHost, what: &str, buffer: *const c_void, len: u32) -> Option<Vec<u8>> {
    if len == 0 {
        return Some(Vec::new());
    }
    if buffer.is_null() {
        host.abi
            .violation(format!("{what}: NULL buffer with length {len}"));
        return None;
    }
    // SAFETY: the driver promises `len` readable bytes at `buffer` for the call (the contract
    // under test: ASan reports it if the promise is false).
    Some(unsafe { std::slice::from_raw_parts(buffer.cast::<u8>(), len as usize) }.to_vec())
}

/// Runs `f` on the live channel `channel` of host `N` after recording `name` in its call log;
/// records a violation (and returns `None`) for a handle that names no live channel.
fn on_channel<const N: usize, R>(
    host: &SimHost,
    channel: VMBCHANNEL,
    name: &'static str,
    f: impl FnOnce(&mut ChannelObject) -> R,
) -> Option<R> {
    let Some(id) = decode(N, Tag::Channel, channel.as_raw()) else {
        host.abi.violation(format!(
            "{name}: {:p} is not a channel of this host",
            channel.as_raw()
        ));
        return None;
    };
    let mut channels = host.abi.channels.borrow_mut();
    let Some(object) = channels.get_mut(&id) else {
        drop(channels);
        host.abi.violation(format!("{name}: unknown channel {id}"));
        return None;
    };
    if object.phase == Phase::CleanedUp {
        drop(channels);
        host.abi
            .violation(format!("{name} on channel {id} after VmbChannelCleanup"));
        return None;
    }
    object.calls.push(name);
    Some(f(object))
}

/// An `*Init*` call: legal only before `VmbChannelEnable`.
fn on_init<const N: usize>(
    channel: VMBCHANNEL,
    name: &'static str,
    f: impl FnOnce(&mut ChannelObject) -> NtStatus,
) -> NtStatus {
    let host = host_of::<N>();
    let result = on_channel::<N, _>(&host, channel, name, |c| {
        if c.phase == Phase::Allocated {
            Ok(f(c))
        } else {
            Err(c.phase)
        }
    });
    match result {
        Some(Ok(status)) => status,
        Some(Err(phase)) => {
            host.abi.violation(format!(
                "{name} in phase {phase:?}: only before VmbChannelEnable"
            ));
            NtStatus::INVALID_DEVICE_STATE
        }
        None => NtStatus::INVALID_PARAMETER,
    }
}

/// The simulated KMCL's handle of an enabled channel, for a call that needs one; records why
/// not otherwise. `control`: Start/Pause/Disable, illegal inside a state callback.
fn mock_of<const N: usize>(
    host: &SimHost,
    channel: VMBCHANNEL,
    name: &'static str,
    control: bool,
) -> Option<ChannelHandle> {
    let found = on_channel::<N, _>(host, channel, name, |c| {
        if control && c.in_state_callback > 0 {
            return Err(format!("{name} called from inside a state-change callback"));
        }
        match (c.phase, c.mock) {
            (Phase::Enabled, Some(mock)) => Ok(mock),
            (phase, _) => Err(format!(
                "{name} in phase {phase:?}: the channel is not enabled"
            )),
        }
    })?;
    match found {
        Ok(mock) => Some(mock),
        Err(text) => {
            host.abi.violation(text);
            None
        }
    }
}

unsafe extern "system" fn channel_allocate<const N: usize>(
    _device: *mut DEVICE_OBJECT,
    is_server: BOOLEAN,
    channel: *mut VMBCHANNEL,
) -> NtStatus {
    let host = host_of::<N>();
    if is_server != 1 || channel.is_null() {
        host.abi.violation(format!(
            "VmbChannelAllocate(IsServer {is_server}, out {channel:p}): a server channel and an out-pointer"
        ));
        return NtStatus::INVALID_PARAMETER;
    }
    let id = host.abi.add_channel();
    if let Some(c) = host.abi.channels.borrow_mut().get_mut(&id) {
        c.calls.push("VmbChannelAllocate");
    }
    // SAFETY: checked non-NULL; the driver passes a writable out-pointer.
    unsafe { channel.write(channel_handle(N, id)) };
    NtStatus::SUCCESS
}

unsafe extern "system" fn channel_cleanup<const N: usize>(channel: VMBCHANNEL) {
    let host = host_of::<N>();
    let Some((id, phase)) = on_channel::<N, _>(&host, channel, "VmbChannelCleanup", |c| {
        let phase = c.phase;
        c.phase = Phase::CleanedUp;
        phase
    })
    .and_then(|phase| decode(N, Tag::Channel, channel.as_raw()).map(|id| (id, phase))) else {
        return;
    };
    if phase == Phase::Enabled {
        host.abi.violation(format!(
            "VmbChannelCleanup of channel {id} without VmbChannelDisable"
        ));
    }
    // Packet objects KMCL still owns (restored on a channel whose restore then failed, so it
    // never opened and nothing cancelled them) go with the channel; the driver's own must have
    // been freed.
    host.abi
        .packets
        .borrow_mut()
        .retain(|_, p| p.channel != id || !matches!(p.state, PacketState::InFlight));
    let packets = host
        .abi
        .packets
        .borrow()
        .values()
        .filter(|p| p.channel == id)
        .count();
    if packets != 0 {
        host.abi.violation(format!(
            "VmbChannelCleanup of channel {id} with {packets} packet objects not freed"
        ));
    }
    let incoming = host
        .abi
        .incoming
        .borrow()
        .values()
        .filter(|(c, _)| *c == id)
        .count();
    if incoming != 0 {
        host.abi.violation(format!(
            "VmbChannelCleanup of channel {id} with {incoming} incoming packets never completed"
        ));
    }
    // The simulated KMCL keeps its record of the channel: its counters feed the invariants.
}

unsafe extern "system" fn channel_enable<const N: usize>(channel: VMBCHANNEL) -> NtStatus {
    let host = host_of::<N>();
    let checked = on_channel::<N, _>(&host, channel, "VmbChannelEnable", |c| {
        if c.phase != Phase::Allocated {
            return Err(format!("VmbChannelEnable in phase {:?}", c.phase));
        }
        let mut missing = Vec::new();
        if c.process_packet.is_none() {
            missing.push("ProcessPacket callback");
        }
        if c.state_callbacks.is_null() {
            missing.push("state-change callbacks");
        }
        if c.interface.is_none() {
            missing.push("target interface id");
        }
        let loopback = c.server_flags & VMBUS_SERVER_CHANNEL_INIT_FLAG_LOOPBACK_OFFER != 0;
        if c.vm.is_none() && !loopback {
            missing.push("VMBus handle (or the loopback flag)");
        }
        if !missing.is_empty() {
            return Err(format!("VmbChannelEnable without {}", missing.join(", ")));
        }
        Ok((c.vm.unwrap_or(0), c.quota.unwrap_or(DEFAULT_QUOTA)))
    });
    let (vm, quota) = match checked {
        Some(Ok(found)) => found,
        Some(Err(text)) => {
            host.abi.violation(text);
            return NtStatus::INVALID_DEVICE_STATE;
        }
        None => return NtStatus::INVALID_PARAMETER,
    };
    let mock = host.services.kmcl.allocate(vm, quota);
    host.services.kmcl.enable(mock);
    let Some(id) = decode(N, Tag::Channel, channel.as_raw()) else {
        return NtStatus::INVALID_PARAMETER;
    };
    if let Some(c) = host.abi.channels.borrow_mut().get_mut(&id) {
        c.phase = Phase::Enabled;
        c.mock = Some(mock);
    }
    host.abi.by_mock.borrow_mut().insert(mock, id);
    NtStatus::SUCCESS
}

unsafe extern "system" fn channel_disable<const N: usize>(channel: VMBCHANNEL) {
    let host = host_of::<N>();
    let Some(mock) = mock_of::<N>(&host, channel, "VmbChannelDisable", true) else {
        return;
    };
    // The VM's ring is guest memory: a guest still attached is closed by the scenario, which
    // owns it; KMCL's side of the close runs here.
    host.services
        .kmcl
        .disable(mock, &mut VecDeque::new(), &CCallbacks::<N>);
    if let Some(id) = decode(N, Tag::Channel, channel.as_raw())
        && let Some(c) = host.abi.channels.borrow_mut().get_mut(&id)
    {
        c.phase = Phase::Disabled;
    }
}

unsafe extern "system" fn channel_start<const N: usize>(channel: VMBCHANNEL) {
    let host = host_of::<N>();
    if let Some(mock) = mock_of::<N>(&host, channel, "VmbChannelStart", true) {
        host.services.kmcl.start(mock, &CCallbacks::<N>);
    }
}

unsafe extern "system" fn channel_pause<const N: usize>(channel: VMBCHANNEL) {
    let host = host_of::<N>();
    if let Some(mock) = mock_of::<N>(&host, channel, "VmbChannelPause", true) {
        host.services.kmcl.pause(mock, &CCallbacks::<N>);
    }
}

unsafe extern "system" fn channel_set_pointer<const N: usize>(
    channel: VMBCHANNEL,
    pointer: *mut c_void,
) {
    let host = host_of::<N>();
    on_channel::<N, _>(&host, channel, "VmbChannelSetPointer", |c| {
        c.pointer = pointer
    });
}

unsafe extern "system" fn channel_get_pointer<const N: usize>(channel: VMBCHANNEL) -> *mut c_void {
    let host = host_of::<N>();
    on_channel::<N, _>(&host, channel, "VmbChannelGetPointer", |c| c.pointer)
        .unwrap_or(std::ptr::null_mut())
}

unsafe extern "system" fn channel_set_transaction_quota<const N: usize>(
    channel: VMBCHANNEL,
    quota: u32,
) {
    let host = host_of::<N>();
    let mock = on_channel::<N, _>(&host, channel, "VmbChannelSetTransactionQuota", |c| {
        c.quota = Some(quota);
        c.mock
    })
    .flatten();
    if let Some(mock) = mock {
        host.services.kmcl.set_transaction_quota(mock, quota);
    }
}

unsafe extern "system" fn channel_set_incoming_processing_at_passive<const N: usize>(
    channel: VMBCHANNEL,
    _passive: BOOLEAN,
) {
    on_init::<N>(channel, "VmbChannelSetIncomingProcessingAtPassive", |_| {
        NtStatus::SUCCESS
    });
}

unsafe extern "system" fn channel_init_set_maximum_packet_size<const N: usize>(
    channel: VMBCHANNEL,
    size: u32,
) -> NtStatus {
    on_init::<N>(channel, "VmbChannelInitSetMaximumPacketSize", |c| {
        c.maximum_packet_size = Some(size);
        NtStatus::SUCCESS
    })
}

unsafe extern "system" fn channel_init_set_friendly_name<const N: usize>(
    channel: VMBCHANNEL,
    _name: *const UNICODE_STRING,
) -> NtStatus {
    on_init::<N>(channel, "VmbChannelInitSetFriendlyName", |_| {
        NtStatus::SUCCESS
    })
}

unsafe extern "system" fn channel_init_set_process_packet_callbacks<const N: usize>(
    channel: VMBCHANNEL,
    process: PFN_VMB_CHANNEL_PROCESS_PACKET,
    complete: PFN_VMB_CHANNEL_PROCESSING_COMPLETE,
) -> NtStatus {
    on_init::<N>(channel, "VmbChannelInitSetProcessPacketCallbacks", |c| {
        if process.is_none() {
            return NtStatus::INVALID_PARAMETER;
        }
        c.process_packet = process;
        c.processing_complete = complete;
        NtStatus::SUCCESS
    })
}

unsafe extern "system" fn channel_init_set_state_change_callbacks<const N: usize>(
    channel: VMBCHANNEL,
    callbacks: *mut VMB_CHANNEL_STATE_CHANGE_CALLBACKS,
) -> NtStatus {
    on_init::<N>(channel, "VmbChannelInitSetStateChangeCallbacks", |c| {
        if callbacks.is_null() {
            return NtStatus::INVALID_PARAMETER;
        }
        // SAFETY: a non-NULL table from the driver, readable for the call.
        let table = unsafe { callbacks.read() };
        if (table.Version, table.Size) != (1, 48) {
            return NtStatus::INVALID_PARAMETER;
        }
        c.state_callbacks = callbacks.cast_const();
        NtStatus::SUCCESS
    })
}

unsafe extern "system" fn server_channel_init_set_flags<const N: usize>(
    channel: VMBCHANNEL,
    flags: u32,
) -> NtStatus {
    on_init::<N>(channel, "VmbServerChannelInitSetFlags", |c| {
        if flags & !VMBUS_SERVER_CHANNEL_INIT_FLAGS != 0 {
            return NtStatus::INVALID_PARAMETER;
        }
        c.server_flags = flags;
        NtStatus::SUCCESS
    })
}

unsafe extern "system" fn server_channel_init_set_target_interface_id<const N: usize>(
    channel: VMBCHANNEL,
    interface_type: GUID,
    interface_instance: GUID,
) -> NtStatus {
    on_init::<N>(channel, "VmbServerChannelInitSetTargetInterfaceId", |c| {
        c.interface = Some((interface_type, interface_instance));
        NtStatus::SUCCESS
    })
}

unsafe extern "system" fn server_channel_init_set_save_restore_packet_callbacks<const N: usize>(
    channel: VMBCHANNEL,
    save: PFN_VMB_CHANNEL_SAVE_PACKET,
    restore: PFN_VMB_CHANNEL_RESTORE_PACKET,
) -> NtStatus {
    on_init::<N>(
        channel,
        "VmbServerChannelInitSetSaveRestorePacketCallbacks",
        |c| {
            c.save_packet = save;
            c.restore_packet = restore;
            NtStatus::SUCCESS
        },
    )
}

unsafe extern "system" fn server_channel_init_set_vmbus_handle<const N: usize>(
    channel: VMBCHANNEL,
    handle: HANDLE,
) -> NtStatus {
    let host = host_of::<N>();
    let vm =
        decode(N, Tag::KernelVmbus, handle).and_then(|id| host.abi.vms.borrow().get(&id).copied());
    let status = on_init::<N>(
        channel,
        "VmbServerChannelInitSetVmbusHandle",
        |c| match vm {
            Some(vm) => {
                c.vm = Some(vm);
                NtStatus::SUCCESS
            }
            None => STATUS_INVALID_HANDLE,
        },
    );
    if vm.is_none() {
        host.abi.violation(format!(
            "VmbServerChannelInitSetVmbusHandle({handle:p}): not a kernel VMBus handle of this host"
        ));
    }
    status
}

unsafe extern "system" fn convert_vmbus_handle_to_kernel_handle<const N: usize>(
    user: HANDLE,
    kernel: *mut HANDLE,
) -> NtStatus {
    let host = host_of::<N>();
    let Some(vm) = decode(N, Tag::UserVmbus, user) else {
        return STATUS_INVALID_HANDLE;
    };
    if kernel.is_null() {
        return NtStatus::INVALID_PARAMETER;
    }
    let converted = host.kernel_vmbus(u32::try_from(vm).unwrap_or(0));
    // SAFETY: checked non-NULL; the caller's out-pointer.
    unsafe { kernel.write(converted) };
    NtStatus::SUCCESS
}

/// Takes a delivered incoming packet back from its handle: `None` (recorded) if it is not
/// outstanding.
fn take_incoming<const N: usize>(
    host: &SimHost,
    name: &str,
    completion: VMBPACKETCOMPLETION,
) -> Option<IncomingPacketHandle> {
    let taken = decode(N, Tag::Incoming, completion.as_raw())
        .and_then(|id| host.abi.incoming.borrow_mut().remove(&id));
    if taken.is_none() {
        host.abi.violation(format!(
            "{name}({:p}): not an outstanding incoming packet (completed twice, or never delivered)",
            completion.as_raw()
        ));
    }
    taken.map(|(_, handle)| handle)
}

unsafe extern "system" fn channel_packet_complete<const N: usize>(
    completion: VMBPACKETCOMPLETION,
    buffer: *mut c_void,
    size: u32,
) {
    let host = host_of::<N>();
    let Some(handle) = take_incoming::<N>(&host, "VmbChannelPacketComplete", completion) else {
        return;
    };
    host.abi.count(|c| c.packet_complete += 1);
    let response = copy_in(&host, "VmbChannelPacketComplete", buffer, size).unwrap_or_default();
    host.services.kmcl.packet_complete(handle, &response);
}

unsafe extern "system" fn channel_packet_fail<const N: usize>(completion: VMBPACKETCOMPLETION) {
    let host = host_of::<N>();
    if let Some(handle) = take_incoming::<N>(&host, "VmbChannelPacketFail", completion) {
        host.abi.count(|c| c.packet_fail += 1);
        host.services.kmcl.packet_fail(handle);
    }
}

unsafe extern "system" fn packet_allocate<const N: usize>(channel: VMBCHANNEL) -> VMBPACKET {
    let host = host_of::<N>();
    let Some(channel_id) = on_channel::<N, _>(&host, channel, "VmbPacketAllocate", |_| ())
        .and_then(|()| decode(N, Tag::Channel, channel.as_raw()))
    else {
        return VMBPACKET::null();
    };
    let id = host.abi.new_id();
    host.abi.packets.borrow_mut().insert(
        id,
        PacketObject {
            channel: channel_id,
            pointer: std::ptr::null_mut(),
            routine: None,
            state: PacketState::Allocated,
        },
    );
    packet_handle(N, id)
}

/// Runs `f` on live packet object `packet`; records a violation for anything else.
fn on_packet<const N: usize, R>(
    host: &SimHost,
    packet: VMBPACKET,
    name: &str,
    f: impl FnOnce(u64, &mut PacketObject) -> R,
) -> Option<R> {
    let id = decode(N, Tag::Packet, packet.as_raw());
    let mut packets = host.abi.packets.borrow_mut();
    let Some((id, object)) = id.and_then(|id| packets.get_mut(&id).map(|p| (id, p))) else {
        drop(packets);
        host.abi.violation(format!(
            "{name}({:p}): not a live packet object (freed already?)",
            packet.as_raw()
        ));
        return None;
    };
    Some(f(id, object))
}

unsafe extern "system" fn packet_free<const N: usize>(packet: VMBPACKET) {
    let host = host_of::<N>();
    let in_flight = on_packet::<N, _>(&host, packet, "VmbPacketFree", |id, p| {
        matches!(p.state, PacketState::InFlight).then_some(id)
    });
    match in_flight {
        Some(Some(id)) => host.abi.violation(format!(
            "VmbPacketFree of packet {id} while KMCL owns it (sent, completion routine not run)"
        )),
        Some(None) => {
            if let Some(id) = decode(N, Tag::Packet, packet.as_raw()) {
                host.abi.packets.borrow_mut().remove(&id);
                host.abi.save_sizes.borrow_mut().remove(&id);
            }
        }
        None => {}
    }
}

unsafe extern "system" fn packet_set_completion_routine<const N: usize>(
    packet: VMBPACKET,
    routine: PFN_VMB_PACKET_COMPLETION_ROUTINE,
) {
    let host = host_of::<N>();
    on_packet::<N, _>(&host, packet, "VmbPacketSetCompletionRoutine", |_, p| {
        p.routine = routine;
    });
}

unsafe extern "system" fn packet_set_pointer<const N: usize>(
    packet: VMBPACKET,
    pointer: *mut c_void,
) {
    let host = host_of::<N>();
    on_packet::<N, _>(&host, packet, "VmbPacketSetPointer", |_, p| {
        p.pointer = pointer
    });
}

unsafe extern "system" fn packet_get_pointer<const N: usize>(packet: VMBPACKET) -> *mut c_void {
    let host = host_of::<N>();
    on_packet::<N, _>(&host, packet, "VmbPacketGetPointer", |_, p| p.pointer)
        .unwrap_or(std::ptr::null_mut())
}

unsafe extern "system" fn packet_get_channel<const N: usize>(packet: VMBPACKET) -> VMBCHANNEL {
    let host = host_of::<N>();
    on_packet::<N, _>(&host, packet, "VmbPacketGetChannel", |_, p| {
        channel_handle(N, p.channel)
    })
    .unwrap_or(VMBCHANNEL::null())
}

/// The channel of an allocated (not in-flight) packet object, its simulated KMCL handle and
/// whether the channel is suspended; records why not otherwise.
fn sendable<const N: usize>(
    host: &SimHost,
    packet: VMBPACKET,
    name: &str,
) -> Option<(u64, u64, ChannelHandle, bool, bool)> {
    let found = on_packet::<N, _>(host, packet, name, |id, p| {
        if matches!(p.state, PacketState::Allocated) {
            Ok((id, p.channel, p.routine.is_some()))
        } else {
            Err(format!(
                "{name} of packet {id}, which was sent or restored already"
            ))
        }
    })?;
    let (id, channel, has_routine) = match found {
        Ok(found) => found,
        Err(text) => {
            host.abi.violation(text);
            return None;
        }
    };
    if !has_routine {
        host.abi.violation(format!(
            "{name} of packet {id} without a completion routine"
        ));
    }
    let channels = host.abi.channels.borrow();
    let c = channels.get(&channel)?;
    let Some(mock) = c.mock.filter(|_| c.phase == Phase::Enabled) else {
        drop(channels);
        host.abi
            .violation(format!("{name} on channel {channel}, which is not enabled"));
        return None;
    };
    Some((id, channel, mock, c.suspended, c.restoring))
}

unsafe extern "system" fn packet_send<const N: usize>(
    packet: VMBPACKET,
    buffer: *mut c_void,
    length: u32,
    mdl: *mut MDL,
    flags: u32,
) -> NtStatus {
    let host = host_of::<N>();
    let Some((id, channel, mock, suspended, _)) = sendable::<N>(&host, packet, "VmbPacketSend")
    else {
        return NtStatus::INVALID_PARAMETER;
    };
    if !mdl.is_null() || flags != VMBUS_CHANNEL_FORMAT_FLAG_WAIT_FOR_COMPLETION {
        host.abi.violation(format!(
            "VmbPacketSend with MDL {mdl:p}, flags {flags:#x}: the simulated host models inline WAIT_FOR_COMPLETION packets only"
        ));
        return NtStatus::NOT_SUPPORTED;
    }
    if suspended {
        host.abi.violation(format!(
            "VmbPacketSend on channel {channel} after EvtChannelSuspend, before the next Started"
        ));
    }
    let Some(payload) = copy_in(&host, "VmbPacketSend", buffer, length) else {
        return NtStatus::INVALID_PARAMETER;
    };
    let key_bits = u32::try_from(id).unwrap_or(u32::MAX);
    match host.services.kmcl.packet_send(mock, key_bits, &payload) {
        // The simulated KMCL's handle stands for its in-use record; the C side tracks the
        // object itself.
        Ok(_in_use) => {
            if let Some(p) = host.abi.packets.borrow_mut().get_mut(&id) {
                p.state = PacketState::InFlight;
            }
            NtStatus::SUCCESS
        }
        Err(status) => status,
    }
}

unsafe extern "system" fn packet_restore<const N: usize>(
    packet: VMBPACKET,
    buffer: *mut c_void,
    size: u32,
) -> NtStatus {
    let host = host_of::<N>();
    let Some((id, channel, mock, _, restoring)) = sendable::<N>(&host, packet, "VmbPacketRestore")
    else {
        return NtStatus::INVALID_PARAMETER;
    };
    if !restoring {
        host.abi.violation(format!(
            "VmbPacketRestore on channel {channel} outside EvtVmbChannelRestorePacket"
        ));
    }
    let Some(library) = copy_in(&host, "VmbPacketRestore", buffer, size) else {
        return NtStatus::INVALID_PARAMETER;
    };
    let key_bits = u32::try_from(id).unwrap_or(u32::MAX);
    match host.services.kmcl.packet_restore(mock, key_bits, &library) {
        // The simulated KMCL's handle stands for its in-use record; the C side tracks the
        // object itself.
        Ok(_in_use) => {
            host.abi.count(|c| c.packet_restore += 1);
            if let Some(p) = host.abi.packets.borrow_mut().get_mut(&id) {
                p.state = PacketState::InFlight;
            }
            NtStatus::SUCCESS
        }
        Err(status) => status,
    }
}

unsafe extern "system" fn channel_save_begin<const N: usize>(channel: VMBCHANNEL) -> NtStatus {
    let host = host_of::<N>();
    let Some(mock) = mock_of::<N>(&host, channel, "VmbChannelSaveBegin", false) else {
        return NtStatus::INVALID_DEVICE_STATE;
    };
    match host.services.kmcl.save_begin(mock, &CCallbacks::<N>) {
        Ok(()) => NtStatus::SUCCESS,
        Err(status) => status,
    }
}

unsafe extern "system" fn channel_save_continue<const N: usize>(
    channel: VMBCHANNEL,
    buffer: *mut c_void,
    size: u32,
    filled: *mut u32,
    required: *mut u32,
) -> NtStatus {
    let host = host_of::<N>();
    let Some(mock) = mock_of::<N>(&host, channel, "VmbChannelSaveContinue", false) else {
        return NtStatus::INVALID_DEVICE_STATE;
    };
    if filled.is_null() || required.is_null() || (buffer.is_null() && size != 0) {
        host.abi.violation(format!(
            "VmbChannelSaveContinue(buffer {buffer:p}, size {size}, filled {filled:p}, required {required:p})"
        ));
        return NtStatus::INVALID_PARAMETER;
    }
    let mut out = vec![0u8; size as usize];
    let chunk = host.services.kmcl.save_continue(mock, &mut out);
    let bytes = u32::try_from(chunk.bytes).unwrap_or(u32::MAX);
    if chunk.status == NtStatus::BUFFER_TOO_SMALL {
        // SAFETY: checked non-NULL; the driver's out-parameter.
        unsafe { required.write(bytes) };
        // SAFETY: as above.
        unsafe { filled.write(0) };
    } else {
        if chunk.bytes != 0 {
            // SAFETY: the driver's buffer holds `size` writable bytes; `chunk.bytes <= size`.
            unsafe {
                std::ptr::copy_nonoverlapping(out.as_ptr(), buffer.cast::<u8>(), chunk.bytes)
            };
        }
        // SAFETY: checked non-NULL; the driver's out-parameter.
        unsafe { filled.write(bytes) };
    }
    chunk.status
}

unsafe extern "system" fn channel_save_end<const N: usize>(channel: VMBCHANNEL) {
    let host = host_of::<N>();
    if let Some(mock) = mock_of::<N>(&host, channel, "VmbChannelSaveEnd", false) {
        host.services.kmcl.save_end(mock);
    }
}

unsafe extern "system" fn channel_restore_from_buffer<const N: usize>(
    channel: VMBCHANNEL,
    buffer: *mut c_void,
    size: u32,
) -> NtStatus {
    let host = host_of::<N>();
    let Some(mock) = mock_of::<N>(&host, channel, "VmbChannelRestoreFromBuffer", false) else {
        return NtStatus::INVALID_DEVICE_STATE;
    };
    let Some(chunk) = copy_in(&host, "VmbChannelRestoreFromBuffer", buffer, size) else {
        return NtStatus::INVALID_PARAMETER;
    };
    host.services
        .kmcl
        .restore_from_buffer(mock, &chunk, &CCallbacks::<N>)
}

/// Host `N`'s KMCL as `IRP_MN_QUERY_INTERFACE` would return it: every member ferry uses is
/// one of the functions above; the rest stay NULL.
pub fn interface<const N: usize>() -> KMCL_SERVER_INTERFACE_V1 {
    let mut table = KMCL_SERVER_INTERFACE_V1::empty();
    let client = &mut table.Client;
    client.VmbChannelAllocate = Some(channel_allocate::<N>);
    client.VmbChannelCleanup = Some(channel_cleanup::<N>);
    client.VmbChannelEnable = Some(channel_enable::<N>);
    client.VmbChannelDisable = Some(channel_disable::<N>);
    client.VmbChannelStart = Some(channel_start::<N>);
    client.VmbChannelPause = Some(channel_pause::<N>);
    client.VmbChannelSetPointer = Some(channel_set_pointer::<N>);
    client.VmbChannelGetPointer = Some(channel_get_pointer::<N>);
    client.VmbChannelSetTransactionQuota = Some(channel_set_transaction_quota::<N>);
    client.VmbChannelSetIncomingProcessingAtPassive =
        Some(channel_set_incoming_processing_at_passive::<N>);
    client.VmbChannelInitSetMaximumPacketSize = Some(channel_init_set_maximum_packet_size::<N>);
    client.VmbChannelInitSetFriendlyName = Some(channel_init_set_friendly_name::<N>);
    client.VmbChannelInitSetProcessPacketCallbacks =
        Some(channel_init_set_process_packet_callbacks::<N>);
    client.VmbChannelInitSetStateChangeCallbacks =
        Some(channel_init_set_state_change_callbacks::<N>);
    client.VmbChannelPacketComplete = Some(channel_packet_complete::<N>);
    client.VmbChannelPacketFail = Some(channel_packet_fail::<N>);
    client.VmbPacketAllocate = Some(packet_allocate::<N>);
    client.VmbPacketFree = Some(packet_free::<N>);
    client.VmbPacketSetCompletionRoutine = Some(packet_set_completion_routine::<N>);
    client.VmbPacketSetPointer = Some(packet_set_pointer::<N>);
    client.VmbPacketGetPointer = Some(packet_get_pointer::<N>);
    client.VmbPacketGetChannel = Some(packet_get_channel::<N>);
    client.VmbPacketSend = Some(packet_send::<N>);
    let server = &mut table.ServerOnly;
    server.VmbPacketRestore = Some(packet_restore::<N>);
    server.VmbChannelSaveBegin = Some(channel_save_begin::<N>);
    server.VmbChannelSaveContinue = Some(channel_save_continue::<N>);
    server.VmbChannelSaveEnd = Some(channel_save_end::<N>);
    server.VmbChannelRestoreFromBuffer = Some(channel_restore_from_buffer::<N>);
    server.VmbServerChannelInitSetFlags = Some(server_channel_init_set_flags::<N>);
    server.VmbServerChannelInitSetTargetInterfaceId =
        Some(server_channel_init_set_target_interface_id::<N>);
    server.VmbServerChannelInitSetSaveRestorePacketCallbacks =
        Some(server_channel_init_set_save_restore_packet_callbacks::<N>);
    server.VmbServerChannelInitSetVmbusHandle = Some(server_channel_init_set_vmbus_handle::<N>);
    server.VmbConvertVmbusHandleToKernelHandle = Some(convert_vmbus_handle_to_kernel_handle::<N>);
    table
}
