//! KMCL's calls into the driver: [`CCallbacks`] is what the simulated KMCL (platform-mock's
//! [`Kmcl`](ferry_platform_mock::kmcl::Kmcl)) calls when a callback is due; each method finds
//! the C function the driver registered for the channel (or the packet) and calls it with C
//! arguments, exactly as `vmbkmclr.sys` would: ProcessPacket with a fresh
//! `VMBPACKETCOMPLETION` and an exact-size buffer, ProcessingComplete, the five state
//! callbacks read from the driver's own `VMB_CHANNEL_STATE_CHANGE_CALLBACKS` at every call,
//! the packet's completion routine, SavePacket (a size call with NULL and 0, then a fill call
//! with a buffer of the size asked for) and RestorePacket.
//!
//! Buffers handed to the driver are exact-size heap copies, scribbled after the call: a read
//! past the end is a heap overflow and a kept pointer reads garbage (ASan reports both).

use ferry_core::status::NtStatus;
use ferry_platform_mock::kmcl::{
    ChannelHandle, IncomingPacketHandle, PacketHandle, ServerCallbacks,
};
use ferry_platform_wdk::ffi::kmcl::{VMBCHANNEL, VMBPACKETCOMPLETION};

use crate::kmcl_table::{channel_handle, packet_handle};
use crate::sim_host::{PacketState, SimHost, Tag, encode, host_of};

/// What the simulated KMCL of host `N` calls when it runs a driver callback: each method
/// finds the channel's registered C function and calls it with C arguments.
pub struct CCallbacks<const N: usize>;

/// Which state-change callback.
#[derive(Clone, Copy, Debug)]
enum StateEvent {
    Opened,
    Started,
    PostStarted,
    Suspend,
    Closed,
}

impl<const N: usize> CCallbacks<N> {
    fn channel(host: &SimHost, mock: ChannelHandle) -> Option<(u64, VMBCHANNEL)> {
        let id = host.abi.channel_of_mock(mock);
        if id.is_none() {
            host.abi.violation(format!(
                "KMCL callback for channel {} unknown to the C side",
                mock.0
            ));
        }
        id.map(|id| (id, channel_handle(N, id)))
    }

    fn state(mock: ChannelHandle, event: StateEvent) -> NtStatus {
        let host = host_of::<N>();
        let Some((id, handle)) = Self::channel(&host, mock) else {
            return NtStatus::NOT_FOUND;
        };
        let table = {
            let mut channels = host.abi.channels.borrow_mut();
            let Some(c) = channels.get_mut(&id) else {
                return NtStatus::NOT_FOUND;
            };
            match event {
                StateEvent::Suspend => c.suspended = true,
                StateEvent::Started => c.suspended = false,
                _ => {}
            }
            c.in_state_callback += 1;
            c.state_callbacks
        };
        let status = if table.is_null() {
            host.abi.violation(format!(
                "{event:?} on channel {id}: no state-change callbacks"
            ));
            NtStatus::SUCCESS
        } else {
            // SAFETY: the table the driver registered; it must keep it alive for the channel's
            // lifetime (kmcl.md §1.5): a freed table is a use-after-free ASan reports.
            let table = unsafe { table.read() };
            let simple = match event {
                StateEvent::Opened => {
                    return Self::finish_state(
                        &host,
                        id,
                        match table.EvtChannelOpened {
                            // SAFETY: the driver's callback, with its live channel.
                            Some(opened) => unsafe { opened(handle) },
                            None => NtStatus::SUCCESS,
                        },
                    );
                }
                StateEvent::Started => table.EvtChannelStarted,
                StateEvent::PostStarted => table.EvtChannelPostStarted,
                StateEvent::Suspend => table.EvtChannelSuspend,
                StateEvent::Closed => table.EvtChannelClosed,
            };
            if let Some(callback) = simple {
                // SAFETY: the driver's callback, with its live channel.
                unsafe { callback(handle) };
            }
            NtStatus::SUCCESS
        };
        Self::finish_state(&host, id, status)
    }

    fn finish_state(host: &SimHost, id: u64, status: NtStatus) -> NtStatus {
        if let Some(c) = host.abi.channels.borrow_mut().get_mut(&id) {
            c.in_state_callback -= 1;
        }
        status
    }
}

impl<const N: usize> ServerCallbacks for CCallbacks<N> {
    fn channel_opened(&self, channel: ChannelHandle) -> NtStatus {
        Self::state(channel, StateEvent::Opened)
    }

    fn channel_started(&self, channel: ChannelHandle) {
        Self::state(channel, StateEvent::Started);
    }

    fn channel_post_started(&self, channel: ChannelHandle) {
        Self::state(channel, StateEvent::PostStarted);
    }

    fn channel_suspend(&self, channel: ChannelHandle) {
        Self::state(channel, StateEvent::Suspend);
    }

    fn channel_closed(&self, channel: ChannelHandle) {
        Self::state(channel, StateEvent::Closed);
    }

    fn process_packet(&self, channel: ChannelHandle, packet: IncomingPacketHandle, payload: &[u8]) {
        let host = host_of::<N>();
        let Some((id, handle)) = Self::channel(&host, channel) else {
            host.services.kmcl.packet_complete(packet, &[]);
            return;
        };
        let (callback, suspended) = host
            .abi
            .channels
            .borrow()
            .get(&id)
            .map_or((None, false), |c| (c.process_packet, c.suspended));
        if suspended {
            host.abi
                .violation(format!("ProcessPacket on channel {id} after Suspend"));
        }
        let incoming = host.abi.new_id();
        host.abi
            .incoming
            .borrow_mut()
            .insert(incoming, (id, packet));
        let completion = encode(N, Tag::Incoming, incoming);
        host.abi.last_incoming.set(completion.addr());
        host.abi.count(|c| c.process_packet += 1);
        let Some(callback) = callback else {
            host.abi
                .violation(format!("ProcessPacket on channel {id}: none registered"));
            return;
        };
        // An exact-size copy: a read past the payload is a heap overflow ASan reports.
        let mut buffer = payload.to_vec();
        let length = u32::try_from(buffer.len()).unwrap_or(u32::MAX);
        // SAFETY: the driver's callback with its live channel, a fresh completion handle and
        // `length` readable bytes (valid for the call), as KMCL calls it.
        unsafe {
            callback(
                handle,
                VMBPACKETCOMPLETION::from_raw(completion),
                buffer.as_mut_ptr().cast(),
                length,
                0,
            )
        };
        // KMCL's buffer is gone after the callback: scribble so a kept pointer reads garbage.
        buffer.fill(0xA5);
    }

    fn processing_complete(&self, channel: ChannelHandle, count: u32) {
        let host = host_of::<N>();
        let Some((id, handle)) = Self::channel(&host, channel) else {
            return;
        };
        let callback = host
            .abi
            .channels
            .borrow()
            .get(&id)
            .and_then(|c| c.processing_complete);
        if let Some(callback) = callback {
            // SAFETY: the driver's callback with its live channel.
            unsafe { callback(handle, count) };
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
        let host = host_of::<N>();
        let id = u64::from(key_bits);
        let routine = {
            let mut packets = host.abi.packets.borrow_mut();
            match packets.get_mut(&id) {
                Some(p) if matches!(p.state, PacketState::InFlight) => {
                    p.state = PacketState::Completed;
                    Ok(p.routine)
                }
                Some(p) => Err(format!("packet {id} in state {:?}", p.state)),
                None => Err(format!("packet {id} freed already")),
            }
        };
        host.services.kmcl.packet_free(packet);
        let routine = match routine {
            Ok(routine) => routine,
            Err(text) => {
                host.abi.violation(format!(
                    "completion routine due on channel {} for a packet not in flight: {text}",
                    channel.0
                ));
                return;
            }
        };
        let Some(routine) = routine else {
            host.abi.violation(format!(
                "packet {id} completed without a completion routine"
            ));
            return;
        };
        host.abi.count(|c| c.completion_routine += 1);
        let mut buffer = payload.to_vec();
        let length = u32::try_from(buffer.len()).unwrap_or(u32::MAX);
        // SAFETY: the routine the driver set on this packet, called once with the packet,
        // the guest's status and `length` readable bytes valid for the call.
        unsafe {
            routine(
                packet_handle(N, id),
                status,
                buffer.as_mut_ptr().cast(),
                length,
            )
        };
        buffer.fill(0xA5);
    }

    fn save_packet(
        &self,
        channel: ChannelHandle,
        key_bits: u32,
        buffer: &mut [u8],
    ) -> (NtStatus, u32) {
        let host = host_of::<N>();
        let Some((id, handle)) = Self::channel(&host, channel) else {
            return (NtStatus::NOT_FOUND, 0);
        };
        let callback = host
            .abi
            .channels
            .borrow()
            .get(&id)
            .and_then(|c| c.save_packet);
        let Some(callback) = callback else {
            // No SavePacket callback: the VSP has nothing of its own to save.
            return (NtStatus::SUCCESS, 0);
        };
        let packet = u64::from(key_bits);
        let size = u32::try_from(buffer.len()).unwrap_or(u32::MAX);
        let mut bytes = 0xDEAD_BEEF_u32;
        let data = if buffer.is_empty() {
            std::ptr::null_mut()
        } else {
            buffer.as_mut_ptr().cast()
        };
        // SAFETY: the driver's callback with its live channel and packet object, `size`
        // writable bytes (NULL and 0 for the size call, as KMCL does) and an out-parameter.
        let status =
            unsafe { callback(handle, packet_handle(N, packet), data, size, &raw mut bytes) };
        let asked = host.abi.save_sizes.borrow_mut().remove(&packet);
        if size == 0 {
            host.abi.count(|c| c.save_packet_size_calls += 1);
            if status == NtStatus::BUFFER_TOO_SMALL {
                if bytes == 0 {
                    host.abi.violation(format!(
                        "SavePacket size call on channel {id}: STATUS_BUFFER_TOO_SMALL asking for 0 bytes"
                    ));
                }
                host.abi.save_sizes.borrow_mut().insert(packet, bytes);
            }
        } else {
            host.abi.count(|c| c.save_packet_fill_calls += 1);
            match asked {
                None => host.abi.violation(format!(
                    "SavePacket fill call on channel {id} without a size call before it"
                )),
                Some(asked) if status == NtStatus::SUCCESS && bytes != asked => {
                    host.abi.violation(format!(
                        "SavePacket on channel {id}: asked for {asked} bytes, wrote {bytes}"
                    ));
                }
                Some(_) if status == NtStatus::BUFFER_TOO_SMALL => host.abi.violation(format!(
                    "SavePacket fill call on channel {id} answered STATUS_BUFFER_TOO_SMALL again"
                )),
                Some(_) => {}
            }
        }
        (status, bytes)
    }

    fn restore_packet(&self, channel: ChannelHandle, library: &[u8], saved: &[u8]) -> NtStatus {
        let host = host_of::<N>();
        let Some((id, handle)) = Self::channel(&host, channel) else {
            return NtStatus::NOT_FOUND;
        };
        let callback = {
            let mut channels = host.abi.channels.borrow_mut();
            let Some(c) = channels.get_mut(&id) else {
                return NtStatus::NOT_FOUND;
            };
            c.restoring = true;
            c.restore_packet
        };
        host.abi.count(|c| c.restore_packet += 1);
        let mut library = library.to_vec();
        let mut saved = saved.to_vec();
        let status = match callback {
            None => {
                host.abi.violation(format!(
                    "RestorePacket due on channel {id}: none registered"
                ));
                NtStatus::NOT_SUPPORTED
            }
            // SAFETY: the driver's callback with its live channel and two exact-size buffers
            // readable for the call (NULL for an empty one, as KMCL passes).
            Some(callback) => unsafe {
                callback(
                    handle,
                    if library.is_empty() {
                        std::ptr::null_mut()
                    } else {
                        library.as_mut_ptr().cast()
                    },
                    u32::try_from(library.len()).unwrap_or(u32::MAX),
                    if saved.is_empty() {
                        std::ptr::null_mut()
                    } else {
                        saved.as_mut_ptr().cast()
                    },
                    u32::try_from(saved.len()).unwrap_or(u32::MAX),
                )
            },
        };
        library.fill(0xA5);
        saved.fill(0xA5);
        if let Some(c) = host.abi.channels.borrow_mut().get_mut(&id) {
            c.restoring = false;
        }
        status
    }
}
