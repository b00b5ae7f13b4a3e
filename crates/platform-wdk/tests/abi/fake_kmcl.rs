//! A fake KMCL: every function ferry uses, as an `extern "system"` function with KMCL's C
//! signature, gathered into a `KMCL_SERVER_INTERFACE_V1`. Handles are pointers to the fake's
//! own objects (`FakeChannel`, `FakeIncoming`, `FakePacket`), so a completed, freed or
//! misused handle is a real use-after-free that AddressSanitizer reports.
//!
//! The fake records; the test plays KMCL's part by calling the callbacks ferry registered,
//! through their C signatures, with no fake lock held.

use std::ffi::c_void;
use std::sync::atomic::{AtomicI32, AtomicI64, Ordering};
use std::sync::{Mutex, MutexGuard};

use ferry_core::status::NtStatus;
use ferry_platform_wdk::ffi::base::{BOOLEAN, DEVICE_OBJECT, GUID, HANDLE, MDL, UNICODE_STRING};
use ferry_platform_wdk::ffi::kmcl::{
    KMCL_SERVER_INTERFACE_V1, PFN_VMB_CHANNEL_PROCESS_PACKET, PFN_VMB_CHANNEL_PROCESSING_COMPLETE,
    PFN_VMB_CHANNEL_RESTORE_PACKET, PFN_VMB_CHANNEL_SAVE_PACKET, PFN_VMB_PACKET_COMPLETION_ROUTINE,
    VMB_CHANNEL_STATE_CHANGE_CALLBACKS, VMBCHANNEL, VMBPACKET, VMBPACKETCOMPLETION,
};

/// Every KMCL call a channel received, in order, with the values that matter.
#[derive(Default)]
pub struct ChannelRecord {
    pub calls: Vec<&'static str>,
    pub pointer: usize,
    pub process_packet: PFN_VMB_CHANNEL_PROCESS_PACKET,
    pub processing_complete: PFN_VMB_CHANNEL_PROCESSING_COMPLETE,
    pub state_callbacks: usize,
    pub save_packet: PFN_VMB_CHANNEL_SAVE_PACKET,
    pub restore_packet: PFN_VMB_CHANNEL_RESTORE_PACKET,
    pub quota: u32,
    pub maximum_packet_size: u32,
    pub server_flags: u32,
    pub interface: Option<(GUID, GUID)>,
    pub vmbus: usize,
    pub cleaned_up: bool,
    /// Incoming packets completed: (id, `Some(response)`) or failed: (id, `None`).
    pub completions: Vec<(u64, Option<Vec<u8>>)>,
    /// Packets sent: (packet handle, payload, flags).
    pub sent: Vec<(usize, Vec<u8>, u32)>,
    /// Packets restored: (packet handle, KMCL's library state).
    pub restored: Vec<(usize, Vec<u8>)>,
    /// Packets sent or restored and not yet freed (what a save must carry).
    pub live: Vec<usize>,
    /// The save stream between SaveBegin and SaveEnd, and how much was handed out.
    pub save_stream: Option<(Vec<u8>, usize)>,
    /// Restore chunks received so far, and how many packets were restored from them.
    pub restore_stream: (Vec<u8>, u32),
}

pub struct FakeChannel(Mutex<ChannelRecord>);

struct FakeIncoming {
    channel: VMBCHANNEL,
    id: u64,
}

struct FakePacket {
    channel: VMBCHANNEL,
    pointer: *mut c_void,
    completion: PFN_VMB_PACKET_COMPLETION_ROUTINE,
}

static CHANNELS: Mutex<Vec<usize>> = Mutex::new(Vec::new());
static LIVE_PACKETS: AtomicI64 = AtomicI64::new(0);
static SEND_STATUS: AtomicI32 = AtomicI32::new(0);
/// Run once inside the next `VmbChannelPause` or `VmbConvertVmbusHandleToKernelHandle`: what
/// another CPU does while a request is inside KMCL.
static HOOK: Mutex<Option<Box<dyn FnOnce() + Send>>> = Mutex::new(None);
static ENABLE_STATUS: AtomicI32 = AtomicI32::new(0);

/// Runs `hook` inside the next `VmbChannelPause` or `VmbConvertVmbusHandleToKernelHandle`.
pub fn set_hook(hook: impl FnOnce() + Send + 'static) {
    *HOOK.lock().unwrap() = Some(Box::new(hook));
}

fn run_hook() {
    let hook = HOOK.lock().unwrap().take();
    if let Some(hook) = hook {
        hook();
    }
}

/// The record of `channel`.
pub fn record(channel: VMBCHANNEL) -> MutexGuard<'static, ChannelRecord> {
    // SAFETY: every VMBCHANNEL this fake hands out points to a FakeChannel that lives until
    // `free_cleaned_channels`.
    let fake = unsafe { &*channel.as_raw().cast::<FakeChannel>() };
    fake.0.lock().unwrap()
}

/// The channel allocated last.
pub fn last_channel() -> VMBCHANNEL {
    let raw = *CHANNELS
        .lock()
        .unwrap()
        .last()
        .expect("a channel was allocated");
    VMBCHANNEL::from_raw(raw as *mut c_void)
}

/// Channels allocated so far (freed ones included until `free_cleaned_channels`).
pub fn channel_count() -> usize {
    CHANNELS.lock().unwrap().len()
}

/// Packet objects allocated and not freed.
pub fn live_packets() -> i64 {
    LIVE_PACKETS.load(Ordering::SeqCst)
}

/// The status `VmbPacketSend` returns from now on.
pub fn set_send_status(status: NtStatus) {
    SEND_STATUS.store(status.0, Ordering::SeqCst);
}

/// The status `VmbChannelEnable` returns from now on.
pub fn set_enable_status(status: NtStatus) {
    ENABLE_STATUS.store(status.0, Ordering::SeqCst);
}

/// Frees every channel that was cleaned up; returns how many were not (a leak in ferry).
pub fn free_cleaned_channels() -> usize {
    let mut channels = CHANNELS.lock().unwrap();
    let mut leaked = 0;
    channels.retain(|&raw| {
        let channel = VMBCHANNEL::from_raw(raw as *mut c_void);
        if record(channel).cleaned_up {
            // SAFETY: allocated by `channel_allocate` with Box::into_raw, freed once here.
            drop(unsafe { Box::from_raw(raw as *mut FakeChannel) });
            false
        } else {
            leaked += 1;
            true
        }
    });
    leaked
}

fn note(channel: VMBCHANNEL, call: &'static str) {
    record(channel).calls.push(call);
}

/// Delivers one incoming packet exactly as KMCL does: `EvtVmbChannelProcessPacket(Channel,
/// Packet, Buffer, Length, Flags)`.
pub fn deliver(channel: VMBCHANNEL, id: u64, payload: &[u8]) {
    let callback = record(channel)
        .process_packet
        .expect("ProcessPacket registered");
    let packet = Box::into_raw(Box::new(FakeIncoming { channel, id }));
    // SAFETY: the callback ferry registered, called with a live channel, a fresh completion
    // handle and a readable buffer, as KMCL would.
    unsafe {
        callback(
            channel,
            VMBPACKETCOMPLETION::from_raw(packet.cast()),
            payload.as_ptr().cast_mut().cast(),
            payload.len() as u32,
            0,
        )
    };
}

/// Ends a batch: `EvtVmbChannelProcessingComplete(Channel, n)`.
pub fn end_batch(channel: VMBCHANNEL, count: u32) {
    let callback = record(channel).processing_complete.expect("registered");
    // SAFETY: ferry's callback with a live channel.
    unsafe { callback(channel, count) };
}

/// Which state callback to run.
#[derive(Clone, Copy, Debug)]
pub enum StateEvent {
    Opened,
    Started,
    PostStarted,
    Suspend,
    Closed,
}

/// Runs a state callback through the table ferry registered; `Opened`'s status is returned
/// (success for the others).
pub fn state(channel: VMBCHANNEL, event: StateEvent) -> NtStatus {
    let table = record(channel).state_callbacks as *const VMB_CHANNEL_STATE_CHANGE_CALLBACKS;
    // SAFETY: ferry registered a table that lives as long as the channel.
    let table = unsafe { *table };
    assert_eq!((table.Version, table.Size), (1, 48));
    let simple = match event {
        StateEvent::Opened => {
            let opened = table.EvtChannelOpened.expect("registered");
            // SAFETY: ferry's callback with a live channel.
            return unsafe { opened(channel) };
        }
        StateEvent::Started => table.EvtChannelStarted,
        StateEvent::PostStarted => table.EvtChannelPostStarted,
        StateEvent::Suspend => table.EvtChannelSuspend,
        StateEvent::Closed => table.EvtChannelClosed,
    };
    let callback = simple.expect("registered");
    // SAFETY: ferry's callback with a live channel.
    unsafe { callback(channel) };
    NtStatus::SUCCESS
}

/// The first SavePacket call's (status, `*BytesNeeded`) and, if it asked for a buffer, the
/// second call's status and bytes.
pub type SaveCalls = ((NtStatus, u32), Option<(NtStatus, Vec<u8>)>);

/// KMCL's two-call `EvtVmbChannelSavePacket` for one packet: returns the first call's
/// status and size, then (if it asked for a buffer) the second call's status and bytes.
pub fn save_packet(channel: VMBCHANNEL, packet: usize) -> SaveCalls {
    let callback = record(channel).save_packet.expect("registered");
    let packet = VMBPACKET::from_raw(packet as *mut c_void);
    let mut needed = 0xDEAD_u32;
    // SAFETY: ferry's callback; first call with no buffer and size 0, as KMCL does.
    let first = unsafe { callback(channel, packet, std::ptr::null_mut(), 0, &raw mut needed) };
    if first != NtStatus::BUFFER_TOO_SMALL {
        return ((first, needed), None);
    }
    let mut buffer = vec![0u8; needed as usize];
    let mut written = 0u32;
    // SAFETY: second call with a buffer of the size asked for.
    let second = unsafe {
        callback(
            channel,
            packet,
            buffer.as_mut_ptr().cast(),
            needed,
            &raw mut written,
        )
    };
    buffer.truncate(written as usize);
    ((first, needed), Some((second, buffer)))
}

/// The two-call save for a packet object (allocated for the purpose) carrying `bits`.
pub fn save_packet_with_key(channel: VMBCHANNEL, bits: usize) -> SaveCalls {
    // SAFETY: the fake's own allocator; freed below.
    let packet = unsafe { packet_allocate(channel) };
    packet_ref(packet).pointer = bits as *mut c_void;
    let answer = save_packet(channel, packet.as_raw() as usize);
    // SAFETY: allocated above, not handed to ferry beyond the callback.
    unsafe { packet_free(packet) };
    answer
}

/// KMCL's `EvtVmbChannelRestorePacket(Channel, LibBuf, LibBufSize, SaveBuf, SaveBufSize)`.
pub fn restore_packet(channel: VMBCHANNEL, library: &[u8], saved: &[u8]) -> NtStatus {
    let callback = record(channel).restore_packet.expect("registered");
    // SAFETY: ferry's callback with readable buffers.
    unsafe {
        callback(
            channel,
            library.as_ptr().cast_mut().cast(),
            library.len() as u32,
            saved.as_ptr().cast_mut().cast(),
            saved.len() as u32,
        )
    }
}

/// The guest completes an outgoing packet: KMCL calls the packet's completion routine with
/// the packet, the status and the guest's completion bytes.
pub fn guest_completes(packet: usize, status: NtStatus, payload: &[u8]) {
    // SAFETY: `packet` is a live FakePacket (the caller took it from a send or restore).
    let routine = unsafe { (*(packet as *const FakePacket)).completion }.expect("routine set");
    // SAFETY: ferry's routine, called once for the packet as KMCL does.
    unsafe {
        routine(
            VMBPACKET::from_raw(packet as *mut c_void),
            status,
            payload.as_ptr().cast_mut().cast(),
            payload.len() as u32,
        )
    };
}

/// The key bits stored on a live packet.
pub fn packet_pointer(packet: usize) -> usize {
    // SAFETY: a live FakePacket.
    unsafe { (*(packet as *const FakePacket)).pointer as usize }
}

fn channel_of(completion: VMBPACKETCOMPLETION) -> (VMBCHANNEL, u64) {
    // SAFETY: every completion handle is a Box<FakeIncoming> from `deliver`, taken back here
    // exactly once (a second completion would be a double free ASan reports).
    let incoming = unsafe { Box::from_raw(completion.as_raw().cast::<FakeIncoming>()) };
    (incoming.channel, incoming.id)
}

unsafe extern "system" fn channel_allocate(
    _device: *mut DEVICE_OBJECT,
    is_server: BOOLEAN,
    channel: *mut VMBCHANNEL,
) -> NtStatus {
    assert_eq!(is_server, 1, "ferry allocates server channels");
    let fake = Box::into_raw(Box::new(FakeChannel(Mutex::new(ChannelRecord::default()))));
    CHANNELS.lock().unwrap().push(fake as usize);
    let handle = VMBCHANNEL::from_raw(fake.cast());
    note(handle, "Allocate");
    // SAFETY: ferry passes a valid out-pointer.
    unsafe { channel.write(handle) };
    NtStatus::SUCCESS
}

unsafe extern "system" fn channel_cleanup(channel: VMBCHANNEL) {
    let mut record = record(channel);
    record.calls.push("Cleanup");
    record.cleaned_up = true;
}

unsafe extern "system" fn channel_enable(channel: VMBCHANNEL) -> NtStatus {
    note(channel, "Enable");
    NtStatus(ENABLE_STATUS.load(Ordering::SeqCst))
}

unsafe extern "system" fn channel_disable(channel: VMBCHANNEL) {
    note(channel, "Disable");
}

unsafe extern "system" fn channel_start(channel: VMBCHANNEL) {
    note(channel, "Start");
}

unsafe extern "system" fn channel_pause(channel: VMBCHANNEL) {
    note(channel, "Pause");
    run_hook();
}

unsafe extern "system" fn channel_set_pointer(channel: VMBCHANNEL, pointer: *mut c_void) {
    let mut record = record(channel);
    record.calls.push("SetPointer");
    record.pointer = pointer as usize;
}

unsafe extern "system" fn channel_get_pointer(channel: VMBCHANNEL) -> *mut c_void {
    record(channel).pointer as *mut c_void
}

unsafe extern "system" fn channel_set_transaction_quota(channel: VMBCHANNEL, quota: u32) {
    let mut record = record(channel);
    record.calls.push("SetTransactionQuota");
    record.quota = quota;
}

unsafe extern "system" fn channel_set_incoming_processing_at_passive(
    channel: VMBCHANNEL,
    _passive: BOOLEAN,
) {
    note(channel, "SetIncomingProcessingAtPassive");
}

unsafe extern "system" fn channel_init_set_maximum_packet_size(
    channel: VMBCHANNEL,
    size: u32,
) -> NtStatus {
    let mut record = record(channel);
    record.calls.push("InitSetMaximumPacketSize");
    record.maximum_packet_size = size;
    NtStatus::SUCCESS
}

unsafe extern "system" fn channel_init_set_friendly_name(
    channel: VMBCHANNEL,
    _name: *const UNICODE_STRING,
) -> NtStatus {
    note(channel, "InitSetFriendlyName");
    NtStatus::SUCCESS
}

unsafe extern "system" fn channel_init_set_process_packet_callbacks(
    channel: VMBCHANNEL,
    process: PFN_VMB_CHANNEL_PROCESS_PACKET,
    complete: PFN_VMB_CHANNEL_PROCESSING_COMPLETE,
) -> NtStatus {
    let mut record = record(channel);
    record.calls.push("InitSetProcessPacketCallbacks");
    record.process_packet = process;
    record.processing_complete = complete;
    NtStatus::SUCCESS
}

unsafe extern "system" fn channel_init_set_state_change_callbacks(
    channel: VMBCHANNEL,
    callbacks: *mut VMB_CHANNEL_STATE_CHANGE_CALLBACKS,
) -> NtStatus {
    let mut record = record(channel);
    record.calls.push("InitSetStateChangeCallbacks");
    // The pointer is kept, not the contents: ferry must keep the table alive.
    record.state_callbacks = callbacks as usize;
    NtStatus::SUCCESS
}

unsafe extern "system" fn channel_packet_complete(
    completion: VMBPACKETCOMPLETION,
    buffer: *mut c_void,
    size: u32,
) {
    let response = if buffer.is_null() || size == 0 {
        Vec::new()
    } else {
        // SAFETY: ferry passes `size` readable bytes.
        unsafe { std::slice::from_raw_parts(buffer.cast::<u8>(), size as usize) }.to_vec()
    };
    let (channel, id) = channel_of(completion);
    record(channel).completions.push((id, Some(response)));
}

unsafe extern "system" fn channel_packet_fail(completion: VMBPACKETCOMPLETION) {
    let (channel, id) = channel_of(completion);
    record(channel).completions.push((id, None));
}

unsafe extern "system" fn packet_allocate(channel: VMBCHANNEL) -> VMBPACKET {
    LIVE_PACKETS.fetch_add(1, Ordering::SeqCst);
    let packet = Box::into_raw(Box::new(FakePacket {
        channel,
        pointer: std::ptr::null_mut(),
        completion: None,
    }));
    VMBPACKET::from_raw(packet.cast())
}

fn packet_ref<'a>(packet: VMBPACKET) -> &'a mut FakePacket {
    // SAFETY: every VMBPACKET is a live Box<FakePacket> until `packet_free` (a use after free
    // is what ASan is for).
    unsafe { &mut *packet.as_raw().cast::<FakePacket>() }
}

unsafe extern "system" fn packet_free(packet: VMBPACKET) {
    LIVE_PACKETS.fetch_sub(1, Ordering::SeqCst);
    let channel = packet_ref(packet).channel;
    let raw = packet.as_raw() as usize;
    record(channel).live.retain(|p| *p != raw);
    // SAFETY: allocated by `packet_allocate`; freed once (twice would be a double free).
    drop(unsafe { Box::from_raw(packet.as_raw().cast::<FakePacket>()) });
}

unsafe extern "system" fn packet_set_completion_routine(
    packet: VMBPACKET,
    routine: PFN_VMB_PACKET_COMPLETION_ROUTINE,
) {
    packet_ref(packet).completion = routine;
}

unsafe extern "system" fn packet_set_pointer(packet: VMBPACKET, pointer: *mut c_void) {
    packet_ref(packet).pointer = pointer;
}

unsafe extern "system" fn packet_get_pointer(packet: VMBPACKET) -> *mut c_void {
    packet_ref(packet).pointer
}

unsafe extern "system" fn packet_get_channel(packet: VMBPACKET) -> VMBCHANNEL {
    packet_ref(packet).channel
}

unsafe extern "system" fn packet_send(
    packet: VMBPACKET,
    buffer: *mut c_void,
    length: u32,
    mdl: *mut MDL,
    flags: u32,
) -> NtStatus {
    assert!(mdl.is_null());
    let status = NtStatus(SEND_STATUS.load(Ordering::SeqCst));
    if status.is_success() {
        // SAFETY: ferry passes `length` readable bytes.
        let payload = unsafe { std::slice::from_raw_parts(buffer.cast::<u8>(), length as usize) };
        let channel = packet_ref(packet).channel;
        let mut record = record(channel);
        record
            .sent
            .push((packet.as_raw() as usize, payload.to_vec(), flags));
        record.live.push(packet.as_raw() as usize);
    }
    status
}

unsafe extern "system" fn packet_restore(
    packet: VMBPACKET,
    buffer: *mut c_void,
    size: u32,
) -> NtStatus {
    // SAFETY: ferry passes `size` readable bytes.
    let library = unsafe { std::slice::from_raw_parts(buffer.cast::<u8>(), size as usize) };
    let channel = packet_ref(packet).channel;
    let mut record = record(channel);
    record
        .restored
        .push((packet.as_raw() as usize, library.to_vec()));
    record.live.push(packet.as_raw() as usize);
    NtStatus::SUCCESS
}

/// The smallest chunk SaveContinue hands out (a smaller buffer gets BUFFER_TOO_SMALL).
pub const MIN_SAVE_CHUNK: u32 = 8;

fn push_field(stream: &mut Vec<u8>, bytes: &[u8]) {
    stream.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    stream.extend_from_slice(bytes);
}

/// Like KMCL: asks the VSP to save every packet in flight (two-call SavePacket) and keeps the
/// stream — the fake's own format: a count, then per packet its library state and the VSP's
/// bytes, each length-prefixed.
unsafe extern "system" fn channel_save_begin(channel: VMBCHANNEL) -> NtStatus {
    note(channel, "SaveBegin");
    let live = record(channel).live.clone();
    let mut stream = (live.len() as u32).to_le_bytes().to_vec();
    for (n, packet) in live.into_iter().enumerate() {
        let saved = match save_packet(channel, packet) {
            ((NtStatus::SUCCESS, 0), None) => Vec::new(),
            (_, Some((NtStatus::SUCCESS, bytes))) => bytes,
            ((status, _), None) | (_, Some((status, _))) => return status,
        };
        push_field(&mut stream, format!("kmcl-packet-{n}").as_bytes());
        push_field(&mut stream, &saved);
    }
    record(channel).save_stream = Some((stream, 0));
    NtStatus::SUCCESS
}

unsafe extern "system" fn channel_save_continue(
    channel: VMBCHANNEL,
    buffer: *mut c_void,
    size: u32,
    filled: *mut u32,
    required: *mut u32,
) -> NtStatus {
    let mut record = record(channel);
    let Some((stream, cursor)) = record.save_stream.as_mut() else {
        return NtStatus::INVALID_DEVICE_STATE;
    };
    let remaining = stream.len() - *cursor;
    if remaining > 0 && size < MIN_SAVE_CHUNK {
        // SAFETY: ferry passes valid out-parameters.
        unsafe { required.write(MIN_SAVE_CHUNK) };
        return NtStatus::BUFFER_TOO_SMALL;
    }
    let n = remaining.min(size as usize);
    // SAFETY: ferry passes `size` writable bytes; n <= size.
    let out = unsafe { std::slice::from_raw_parts_mut(buffer.cast::<u8>(), n) };
    out.copy_from_slice(&stream[*cursor..*cursor + n]);
    *cursor += n;
    // SAFETY: a valid out-parameter.
    unsafe { filled.write(n as u32) };
    if *cursor < stream.len() {
        NtStatus::BUFFER_OVERFLOW
    } else {
        NtStatus::SUCCESS
    }
}

unsafe extern "system" fn channel_save_end(channel: VMBCHANNEL) {
    let mut record = record(channel);
    record.calls.push("SaveEnd");
    record.save_stream = None;
}

fn read_field(bytes: &[u8], at: &mut usize) -> Option<Vec<u8>> {
    let len = u32::from_le_bytes(bytes.get(*at..*at + 4)?.try_into().ok()?) as usize;
    let field = bytes.get(*at + 4..*at + 4 + len)?.to_vec();
    *at += 4 + len;
    Some(field)
}

/// Like KMCL: accumulates chunks and calls RestorePacket for each complete packet record;
/// MORE_PROCESSING_REQUIRED until every packet the stream announced is restored.
unsafe extern "system" fn channel_restore_from_buffer(
    channel: VMBCHANNEL,
    buffer: *mut c_void,
    size: u32,
) -> NtStatus {
    // SAFETY: ferry passes `size` readable bytes.
    let chunk = unsafe { std::slice::from_raw_parts(buffer.cast::<u8>(), size as usize) };
    let (stream, delivered) = {
        let mut record = record(channel);
        record.calls.push("RestoreFromBuffer");
        record.restore_stream.0.extend_from_slice(chunk);
        record.restore_stream.clone()
    };
    let Some(count) = stream
        .get(..4)
        .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
    else {
        return NtStatus::MORE_PROCESSING_REQUIRED;
    };
    let mut at = 4;
    let mut index = 0u32;
    while index < count {
        let Some(library) = read_field(&stream, &mut at) else {
            break;
        };
        let Some(saved) = read_field(&stream, &mut at) else {
            break;
        };
        if index >= delivered {
            let status = restore_packet(channel, &library, &saved);
            if !status.is_success() {
                return status;
            }
            record(channel).restore_stream.1 = index + 1;
        }
        index += 1;
    }
    if index == count {
        NtStatus::SUCCESS
    } else {
        NtStatus::MORE_PROCESSING_REQUIRED
    }
}

unsafe extern "system" fn server_channel_init_set_flags(
    channel: VMBCHANNEL,
    flags: u32,
) -> NtStatus {
    let mut record = record(channel);
    record.calls.push("ServerInitSetFlags");
    record.server_flags = flags;
    NtStatus::SUCCESS
}

unsafe extern "system" fn server_channel_init_set_target_interface_id(
    channel: VMBCHANNEL,
    interface_type: GUID,
    interface_instance: GUID,
) -> NtStatus {
    let mut record = record(channel);
    record.calls.push("ServerInitSetTargetInterfaceId");
    record.interface = Some((interface_type, interface_instance));
    NtStatus::SUCCESS
}

unsafe extern "system" fn server_channel_init_set_save_restore_packet_callbacks(
    channel: VMBCHANNEL,
    save: PFN_VMB_CHANNEL_SAVE_PACKET,
    restore: PFN_VMB_CHANNEL_RESTORE_PACKET,
) -> NtStatus {
    let mut record = record(channel);
    record.calls.push("ServerInitSetSaveRestorePacketCallbacks");
    record.save_packet = save;
    record.restore_packet = restore;
    NtStatus::SUCCESS
}

unsafe extern "system" fn server_channel_init_set_vmbus_handle(
    channel: VMBCHANNEL,
    handle: HANDLE,
) -> NtStatus {
    let mut record = record(channel);
    record.calls.push("ServerInitSetVmbusHandle");
    record.vmbus = handle as usize;
    NtStatus::SUCCESS
}

/// A kernel handle the fake's `VmbConvertVmbusHandleToKernelHandle` made: a heap object, so
/// a double `ZwClose` is a double free that ASan reports.
pub struct FakeKernelHandle {
    /// The user-mode handle value it was converted from.
    pub user: usize,
}

static LIVE_KERNEL_HANDLES: AtomicI64 = AtomicI64::new(0);
static CONVERT_STATUS: AtomicI32 = AtomicI32::new(0);
static CONVERTED: Mutex<Vec<usize>> = Mutex::new(Vec::new());

/// Kernel handles converted and not closed.
pub fn live_kernel_handles() -> i64 {
    LIVE_KERNEL_HANDLES.load(Ordering::SeqCst)
}

/// The status `VmbConvertVmbusHandleToKernelHandle` returns from now on (success converts).
pub fn set_convert_status(status: NtStatus) {
    CONVERT_STATUS.store(status.0, Ordering::SeqCst);
}

/// The user handle values converted so far (taken).
pub fn take_converted() -> Vec<usize> {
    std::mem::take(&mut CONVERTED.lock().unwrap())
}

/// The user handle a kernel handle of this fake was converted from.
pub fn user_handle_of(kernel: usize) -> usize {
    // SAFETY: every kernel handle the fake hands out is a live Box<FakeKernelHandle> until
    // `close_handle`.
    unsafe { (*(kernel as *const FakeKernelHandle)).user }
}

unsafe extern "system" fn convert_vmbus_handle_to_kernel_handle(
    handle: HANDLE,
    kernel: *mut HANDLE,
) -> NtStatus {
    let status = NtStatus(CONVERT_STATUS.load(Ordering::SeqCst));
    CONVERTED.lock().unwrap().push(handle as usize);
    run_hook();
    if status.is_success() {
        let object = Box::into_raw(Box::new(FakeKernelHandle {
            user: handle as usize,
        }));
        LIVE_KERNEL_HANDLES.fetch_add(1, Ordering::SeqCst);
        // SAFETY: ferry passes a valid out-pointer.
        unsafe { kernel.write(object.cast()) };
    }
    status
}

/// `ZwClose` for the fake's kernel handles (what the control device is given).
pub unsafe extern "system" fn close_handle(handle: HANDLE) -> NtStatus {
    LIVE_KERNEL_HANDLES.fetch_sub(1, Ordering::SeqCst);
    // SAFETY: made by `convert_vmbus_handle_to_kernel_handle`; closed once (twice would be a
    // double free).
    drop(unsafe { Box::from_raw(handle.cast::<FakeKernelHandle>()) });
    NtStatus::SUCCESS
}

/// The fake's interface table, as `IRP_MN_QUERY_INTERFACE` would return it.
pub fn interface() -> KMCL_SERVER_INTERFACE_V1 {
    let mut table = KMCL_SERVER_INTERFACE_V1::empty();
    let client = &mut table.Client;
    client.VmbChannelAllocate = Some(channel_allocate);
    client.VmbChannelCleanup = Some(channel_cleanup);
    client.VmbChannelEnable = Some(channel_enable);
    client.VmbChannelDisable = Some(channel_disable);
    client.VmbChannelStart = Some(channel_start);
    client.VmbChannelPause = Some(channel_pause);
    client.VmbChannelSetPointer = Some(channel_set_pointer);
    client.VmbChannelGetPointer = Some(channel_get_pointer);
    client.VmbChannelSetTransactionQuota = Some(channel_set_transaction_quota);
    client.VmbChannelSetIncomingProcessingAtPassive =
        Some(channel_set_incoming_processing_at_passive);
    client.VmbChannelInitSetMaximumPacketSize = Some(channel_init_set_maximum_packet_size);
    client.VmbChannelInitSetFriendlyName = Some(channel_init_set_friendly_name);
    client.VmbChannelInitSetProcessPacketCallbacks =
        Some(channel_init_set_process_packet_callbacks);
    client.VmbChannelInitSetStateChangeCallbacks = Some(channel_init_set_state_change_callbacks);
    client.VmbChannelPacketComplete = Some(channel_packet_complete);
    client.VmbChannelPacketFail = Some(channel_packet_fail);
    client.VmbPacketAllocate = Some(packet_allocate);
    client.VmbPacketFree = Some(packet_free);
    client.VmbPacketSetCompletionRoutine = Some(packet_set_completion_routine);
    client.VmbPacketSetPointer = Some(packet_set_pointer);
    client.VmbPacketGetPointer = Some(packet_get_pointer);
    client.VmbPacketGetChannel = Some(packet_get_channel);
    client.VmbPacketSend = Some(packet_send);
    let server = &mut table.ServerOnly;
    server.VmbPacketRestore = Some(packet_restore);
    server.VmbChannelSaveBegin = Some(channel_save_begin);
    server.VmbChannelSaveContinue = Some(channel_save_continue);
    server.VmbChannelSaveEnd = Some(channel_save_end);
    server.VmbChannelRestoreFromBuffer = Some(channel_restore_from_buffer);
    server.VmbServerChannelInitSetFlags = Some(server_channel_init_set_flags);
    server.VmbServerChannelInitSetTargetInterfaceId =
        Some(server_channel_init_set_target_interface_id);
    server.VmbServerChannelInitSetSaveRestorePacketCallbacks =
        Some(server_channel_init_set_save_restore_packet_callbacks);
    server.VmbServerChannelInitSetVmbusHandle = Some(server_channel_init_set_vmbus_handle);
    server.VmbConvertVmbusHandleToKernelHandle = Some(convert_vmbus_handle_to_kernel_handle);
    table
}
