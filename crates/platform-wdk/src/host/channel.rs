//! One ferry channel on KMCL: its pool-resident context, the offer and teardown sequences, and
//! the `extern "system"` trampolines KMCL calls.
//!
//! Every trampoline recovers the [`ChannelContext`] with `VmbChannelGetPointer` (set at
//! allocation, before any callback can run) and calls the one core entry point for its
//! callback. The context lives in pool memory from [`OfferedChannel::offer`] until
//! [`OfferedChannel::close`], which frees it only after `VmbChannelDisable` (which waits for
//! every callback to finish) and `VmbChannelCleanup`.
//!
//! **ProcessPacket's response scratch** is a per-channel buffer of `MAX_MESSAGE_LEN` bytes in
//! the context (non-paged pool), behind a spin lock of the platform's type, instead of a buffer
//! on the kernel stack. ProcessPacket runs at up to `DISPATCH_LEVEL`, where the spin lock is
//! legal; the holder never waits (core's `process_packet` and the KMCL completion it makes do
//! not block). If KMCL delivers one channel's packets on two CPUs at once, the second spins
//! for one packet's processing time — acceptable for ferry's small control messages, and the
//! alternative (per-processor buffers) needs a processor count and index the driver would
//! have to query at `DISPATCH_LEVEL`. Lock order: scratch lock, then the channel lock inside
//! core; nothing takes the scratch lock while holding another lock.

use core::cell::UnsafeCell;
use core::ffi::c_void;
use core::ptr::{self, NonNull};

use ferry_core::channel::{Channel, ChannelError, ChannelEvent, PacketOutcome};
use ferry_core::lock::RawLock;
use ferry_core::platform::{Platform, TransactionKey};
use ferry_core::port::PortIdentity;
use ferry_core::protocol::MAX_MESSAGE_LEN;
use ferry_core::service::{FerryService, ServiceConfig};
use ferry_core::status::NtStatus;

use super::{FerryHost, OUTGOING, QUOTA, WdkPortTable};
use crate::ffi::base::{DEVICE_OBJECT, GUID, HANDLE};
use crate::ffi::kmcl::{
    VMB_CHANNEL_STATE_CHANGE_CALLBACKS, VMB_CHANNEL_STATE_CHANGE_CALLBACKS_INIT, VMBCHANNEL,
    VMBPACKET, VMBPACKETCOMPLETION, VMBUS_SERVER_CHANNEL_INIT_FLAG_LOOPBACK_OFFER,
};
use crate::kernel::log::Level;
use crate::kernel::services::KernelServices;
use crate::platform::{ChannelHandle, IncomingPacket, WdkPlatform};
use crate::tables::KmclTable;

/// ferry's reference service over the driver's port table.
pub type WdkService<K> = FerryService<&'static WdkPortTable<K>>;
/// A ferry channel on the real platform.
pub type WdkChannel<K> = Channel<WdkPlatform<K>, WdkService<K>, QUOTA, OUTGOING>;

/// What a channel lives on while KMCL knows it: core's channel, ProcessPacket's response
/// scratch, and the state-change callback table KMCL may keep a pointer to.
pub struct ChannelContext<K: KernelServices> {
    channel: WdkChannel<K>,
    scratch_lock: K::Lock,
    /// Only touched while `scratch_lock` is held (see [`ScratchGuard`]). Never written at
    /// creation: the pool block is zeroed, and zero bytes are a valid array.
    scratch: UnsafeCell<[u8; MAX_MESSAGE_LEN]>,
    callbacks: VMB_CHANNEL_STATE_CHANGE_CALLBACKS,
}

// SAFETY: `scratch` is reached only through `ScratchGuard`, which holds `scratch_lock`; every
// other field is `Sync` on its own.
unsafe impl<K: KernelServices> Sync for ChannelContext<K> where WdkChannel<K>: Sync {}

/// Exclusive use of a channel's response scratch: holds its lock until dropped.
struct ScratchGuard<'a, K: KernelServices> {
    context: &'a ChannelContext<K>,
    token: Option<<K::Lock as RawLock>::Token>,
}

impl<'a, K: KernelServices> ScratchGuard<'a, K> {
    fn lock(context: &'a ChannelContext<K>) -> Self {
        let token = context.scratch_lock.lock();
        Self {
            context,
            token: Some(token),
        }
    }

    fn buffer(&mut self) -> &mut [u8] {
        // SAFETY: the scratch lock is held for as long as `self` lives, and `&mut self` makes
        // this the only reference to the buffer.
        unsafe { &mut *self.context.scratch.get() }
    }
}

impl<K: KernelServices> Drop for ScratchGuard<'_, K> {
    fn drop(&mut self) {
        if let Some(token) = self.token.take() {
            // SAFETY: `lock` took the lock and stored this token; consumed once.
            unsafe { self.context.scratch_lock.unlock(token) };
        }
    }
}

impl<K: KernelServices> ChannelContext<K> {
    /// Core's channel.
    #[must_use]
    pub const fn channel(&self) -> &WdkChannel<K> {
        &self.channel
    }
}

/// How to offer a channel (the IOCTL's validated input).
#[derive(Clone, Copy, Debug)]
pub struct OfferConfig {
    /// The driver's control device (`VmbChannelAllocate`'s parent).
    pub device: *mut DEVICE_OBJECT,
    /// The interface type GUID the guest's driver binds to.
    pub interface_type: GUID,
    /// This offer's instance GUID.
    pub interface_instance: GUID,
    /// The VM's VMBus, as a kernel handle (from `VmbConvertVmbusHandleToKernelHandle`); `None`
    /// for a loopback offer.
    pub vmbus: Option<HANDLE>,
    /// Offer to the host itself (`VMBUS_SERVER_CHANNEL_INIT_FLAG_LOOPBACK_OFFER`).
    pub loopback: bool,
    /// The VM NIC this channel reports on, if known.
    pub identity: Option<PortIdentity>,
    /// Service options.
    pub service: ServiceConfig,
    /// Largest incoming packet accepted (`VmbChannelInitSetMaximumPacketSize`).
    pub maximum_packet_size: u32,
}

/// One chunk of KMCL's save stream from [`OfferedChannel::save_continue`]: the bytes written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SaveChunk {
    /// `STATUS_BUFFER_OVERFLOW`: a chunk was written; call again.
    More(u32),
    /// `STATUS_SUCCESS`: the last chunk.
    Last(u32),
}

/// Why [`OfferedChannel::save_continue`] wrote nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SaveChunkError {
    /// The buffer is smaller than KMCL's next indivisible piece; call with `required` bytes.
    TooSmall {
        /// The size KMCL asked for.
        required: u32,
    },
    /// The save failed.
    Failed(NtStatus),
}

/// A channel ferry offered: the KMCL handle and its context. Close it with
/// [`OfferedChannel::close`]; dropping it without closing leaks the channel (KMCL may still
/// call into the context, so nothing is freed implicitly).
pub struct OfferedChannel<K: KernelServices> {
    handle: VMBCHANNEL,
    context: NonNull<ChannelContext<K>>,
}

impl<K: KernelServices> core::fmt::Debug for OfferedChannel<K> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("OfferedChannel")
            .field("handle", &self.handle)
            .finish_non_exhaustive()
    }
}

// SAFETY: the handle is KMCL's (usable from any thread); the context is `Sync` data in pool
// memory, shared with KMCL's callbacks by design.
unsafe impl<K: KernelServices> Send for OfferedChannel<K> {}
// SAFETY: as above; `&self` only reads.
unsafe impl<K: KernelServices> Sync for OfferedChannel<K> {}

/// `status` as a `Result`.
fn check(status: NtStatus) -> Result<(), NtStatus> {
    if status.is_success() {
        Ok(())
    } else {
        Err(status)
    }
}

impl<K: KernelServices> OfferedChannel<K> {
    /// Allocates, configures and offers a channel for host `H` (PASSIVE_LEVEL): the order is
    /// `VmbChannelAllocate`, VMBus handle (as observed in dxgkrnl, kmcl.md §1.9),
    /// `VmbChannelSetPointer`, callbacks, quota, packet size, server flags, interface ids,
    /// `VmbChannelEnable` — the pointer is set before any callback is registered, so no
    /// callback can find it missing.
    ///
    /// # Errors
    ///
    /// The first failing KMCL status, or `STATUS_INSUFFICIENT_RESOURCES` when the context
    /// cannot be allocated; everything done so far is undone.
    pub fn offer<H: FerryHost<Kernel = K>>(config: &OfferConfig) -> Result<Self, NtStatus> {
        let kmcl = H::platform().kmcl();
        let mut handle = VMBCHANNEL::null();
        // SAFETY: PASSIVE_LEVEL caller; `handle` is a valid out-pointer.
        check(unsafe { (kmcl.channel_allocate)(config.device, 1, &raw mut handle) })?;
        let context = match Self::allocate_context::<H>(handle, config) {
            Some(context) => context,
            None => {
                // SAFETY: the channel was allocated above and never enabled.
                unsafe { (kmcl.channel_cleanup)(handle) };
                return Err(NtStatus::INSUFFICIENT_RESOURCES);
            }
        };
        let offered = Self { handle, context };
        if let Err(status) = offered.configure::<H>(config) {
            // SAFETY: configured but not enabled: no callback can run; cleanup frees it.
            unsafe { (kmcl.channel_cleanup)(handle) };
            offered.free_context();
            return Err(status);
        }
        // SAFETY: fully configured channel.
        if let Err(status) = check(unsafe { (kmcl.channel_enable)(handle) }) {
            // SAFETY: enable failed, so the offer was not made and no callback runs.
            unsafe { (kmcl.channel_cleanup)(handle) };
            offered.free_context();
            return Err(status);
        }
        if let Err(error) = offered.context().channel.request(ChannelEvent::Enable) {
            K::log(
                Level::Warning,
                format_args!("Enable refused by core: {error}"),
            );
        }
        Ok(offered)
    }

    fn allocate_context<H: FerryHost<Kernel = K>>(
        handle: VMBCHANNEL,
        config: &OfferConfig,
    ) -> Option<NonNull<ChannelContext<K>>> {
        const {
            assert!(
                align_of::<ChannelContext<K>>() <= 16,
                "allocate_zeroed guarantees 16-byte alignment only"
            );
        }
        let block = K::allocate_zeroed(size_of::<ChannelContext<K>>())?;
        let context = block.cast::<ChannelContext<K>>();
        let service = FerryService::new(H::ports(), config.identity, config.service);
        let mut callbacks = VMB_CHANNEL_STATE_CHANGE_CALLBACKS_INIT();
        callbacks.EvtChannelOpened = Some(channel_opened::<H>);
        callbacks.EvtChannelClosed = Some(channel_closed::<H>);
        callbacks.EvtChannelSuspend = Some(channel_suspend::<H>);
        callbacks.EvtChannelStarted = Some(channel_started::<H>);
        callbacks.EvtChannelPostStarted = Some(channel_post_started::<H>);
        let target = context.as_ptr();
        // Field by field, so that the 8 KiB scratch is never built on the stack: it stays the
        // zeroed bytes the allocation returned.
        // The six blocks below: `block` is a fresh, suitably aligned (asserted above)
        // allocation of the context's size; each field's address is taken without creating a
        // reference, and each field is written once before anyone else sees the context.
        // SAFETY: see above.
        let channel_field = unsafe { &raw mut (*target).channel };
        // SAFETY: see above.
        unsafe { channel_field.write(Channel::new(ChannelHandle(handle), service)) };
        // SAFETY: see above.
        let lock_field = unsafe { &raw mut (*target).scratch_lock };
        // SAFETY: see above.
        unsafe { lock_field.write(K::Lock::UNLOCKED) };
        // SAFETY: see above.
        let callbacks_field = unsafe { &raw mut (*target).callbacks };
        // SAFETY: see above.
        unsafe { callbacks_field.write(callbacks) };
        Some(context)
    }

    fn configure<H: FerryHost<Kernel = K>>(&self, config: &OfferConfig) -> Result<(), NtStatus> {
        let kmcl = H::platform().kmcl();
        let handle = self.handle;
        // The VMBus handle first, right after allocation: the order dxgkrnl's host code was
        // observed to use (kmcl.md §1.9); the other Init calls follow.
        if let Some(vmbus) = config.vmbus {
            // SAFETY: an allocated, not yet enabled channel; `vmbus` is a kernel handle the
            // caller converted (and keeps open until the channel is cleaned up).
            check(unsafe { (kmcl.server_channel_init_set_vmbus_handle)(handle, vmbus) })?;
        }
        // SAFETY: the context outlives the channel (freed only after cleanup).
        unsafe { (kmcl.channel_set_pointer)(handle, self.context.as_ptr().cast()) };
        // SAFETY: allocated, not yet enabled channel; the functions are this image's.
        check(unsafe {
            (kmcl.channel_init_set_process_packet_callbacks)(
                handle,
                Some(process_packet::<H>),
                Some(processing_complete::<H>),
            )
        })?;
        let callbacks = self.callbacks_ptr();
        // SAFETY: the table lives in the context, as long as the channel (KMCL may keep the
        // pointer: kmcl.md §1.5).
        check(unsafe { (kmcl.channel_init_set_state_change_callbacks)(handle, callbacks) })?;
        // SAFETY: as above.
        check(unsafe {
            (kmcl.server_channel_init_set_save_restore_packet_callbacks)(
                handle,
                Some(save_packet::<H>),
                Some(restore_packet::<H>),
            )
        })?;
        // QUOTA is a small constant (the incoming ledger's capacity).
        let quota = u32::try_from(QUOTA).unwrap_or(u32::MAX);
        // SAFETY: as above.
        unsafe { (kmcl.channel_set_transaction_quota)(handle, quota) };
        // SAFETY: as above.
        check(unsafe {
            (kmcl.channel_init_set_maximum_packet_size)(handle, config.maximum_packet_size)
        })?;
        let flags = if config.loopback {
            VMBUS_SERVER_CHANNEL_INIT_FLAG_LOOPBACK_OFFER
        } else {
            0
        };
        // SAFETY: as above.
        check(unsafe { (kmcl.server_channel_init_set_flags)(handle, flags) })?;
        // SAFETY: as above; the GUIDs are passed by value.
        check(unsafe {
            (kmcl.server_channel_init_set_target_interface_id)(
                handle,
                config.interface_type,
                config.interface_instance,
            )
        })?;
        Ok(())
    }

    fn callbacks_ptr(&self) -> *mut VMB_CHANNEL_STATE_CHANGE_CALLBACKS {
        let context = self.context.as_ptr();
        // SAFETY: `context` points to a live context; only the field's address is taken.
        unsafe { &raw mut (*context).callbacks }
    }

    fn context(&self) -> &ChannelContext<K> {
        // SAFETY: the context is live until `close`/`free_context`, which consume `self`.
        unsafe { self.context.as_ref() }
    }

    fn free_context(self) {
        let block = self.context;
        // SAFETY: the context was written by `allocate_context` and KMCL can no longer reach
        // it (the callers cleaned the channel up first); dropped once.
        unsafe { ptr::drop_in_place(block.as_ptr()) };
        // SAFETY: the block came from allocate_zeroed with this size and is not used again.
        unsafe { K::free(block.cast(), size_of::<ChannelContext<K>>()) };
    }

    /// The KMCL handle.
    #[must_use]
    pub const fn handle(&self) -> VMBCHANNEL {
        self.handle
    }

    /// Core's channel.
    #[must_use]
    pub fn channel(&self) -> &WdkChannel<K> {
        &self.context().channel
    }

    /// `VmbChannelStart`, recorded in core first (PASSIVE_LEVEL).
    ///
    /// # Errors
    ///
    /// Core refused the request (nothing called).
    pub fn start<H: FerryHost<Kernel = K>>(&self) -> Result<(), ChannelError> {
        self.channel().request(ChannelEvent::Start)?;
        // SAFETY: a live, enabled channel of this driver.
        unsafe { (H::platform().kmcl().channel_start)(self.handle) };
        Ok(())
    }

    /// `VmbChannelPause`, recorded in core first (PASSIVE_LEVEL; blocks until Suspend ran).
    ///
    /// # Errors
    ///
    /// Core refused the request (nothing called).
    pub fn pause<H: FerryHost<Kernel = K>>(&self) -> Result<(), ChannelError> {
        self.channel().request(ChannelEvent::Pause)?;
        // SAFETY: a live, enabled channel of this driver.
        unsafe { (H::platform().kmcl().channel_pause)(self.handle) };
        Ok(())
    }

    /// The exact size of the channel's session blob (kind 3) if saved now.
    #[must_use]
    pub fn saved_session_len(&self) -> usize {
        self.channel()
            .with_service(|service| service.saved_session_len())
    }

    /// Writes the channel's session blob (kind 3) into `out`: the first part of a channel's
    /// saved state, before KMCL's stream (`IOCTL_FERRY_SAVE_CHANNEL`).
    ///
    /// # Errors
    ///
    /// `STATUS_BUFFER_TOO_SMALL` if `out` is shorter than [`Self::saved_session_len`].
    pub fn save_session(&self, out: &mut [u8]) -> Result<usize, NtStatus> {
        self.channel()
            .with_service(|service| service.save_session(out))
            .map_err(|_| NtStatus::BUFFER_TOO_SMALL)
    }

    /// Installs a session blob (untrusted) on this channel: validated whole before anything
    /// changes (`IOCTL_FERRY_RESTORE_CHANNEL`, before KMCL's stream).
    ///
    /// # Errors
    ///
    /// The status of core's refusal; nothing changed.
    pub fn restore_session(&self, blob: &[u8]) -> Result<(), NtStatus> {
        self.channel()
            .with_service(|service| service.restore_session(blob))
            .map_err(|error| error.status())
    }

    /// `VmbChannelSaveBegin` on a paused channel (PASSIVE_LEVEL); KMCL then calls SavePacket
    /// for each packet in flight. Always follow with [`Self::save_end`].
    ///
    /// # Errors
    ///
    /// KMCL's status.
    pub fn save_begin<H: FerryHost<Kernel = K>>(&self) -> Result<(), NtStatus> {
        // SAFETY: a live channel of this driver, at PASSIVE_LEVEL.
        check(unsafe { (H::platform().kmcl().channel_save_begin)(self.handle) })
    }

    /// `VmbChannelSaveContinue` into `out`: one chunk of KMCL's stream.
    ///
    /// # Errors
    ///
    /// [`SaveChunkError::TooSmall`] with the size KMCL needs (nothing written), or KMCL's
    /// failure status.
    pub fn save_continue<H: FerryHost<Kernel = K>>(
        &self,
        out: &mut [u8],
    ) -> Result<SaveChunk, SaveChunkError> {
        let size = u32::try_from(out.len()).unwrap_or(u32::MAX);
        let mut filled = 0u32;
        let mut required = 0u32;
        // SAFETY: `out` is writable for `size` bytes (at most its length); both out-parameters
        // are valid.
        let status = unsafe {
            (H::platform().kmcl().channel_save_continue)(
                self.handle,
                out.as_mut_ptr().cast(),
                size,
                &raw mut filled,
                &raw mut required,
            )
        };
        // Never trust a count larger than the buffer.
        let filled = filled.min(size);
        match status {
            NtStatus::SUCCESS => Ok(SaveChunk::Last(filled)),
            NtStatus::BUFFER_OVERFLOW => Ok(SaveChunk::More(filled)),
            NtStatus::BUFFER_TOO_SMALL => Err(SaveChunkError::TooSmall { required }),
            other => Err(SaveChunkError::Failed(other)),
        }
    }

    /// `VmbChannelSaveEnd`: frees KMCL's save context; always called after `save_begin`.
    pub fn save_end<H: FerryHost<Kernel = K>>(&self) {
        // SAFETY: a live channel with a save in progress.
        unsafe { (H::platform().kmcl().channel_save_end)(self.handle) };
    }

    /// `VmbChannelRestoreFromBuffer` with one chunk of the source's KMCL stream (PASSIVE_LEVEL,
    /// on a channel not yet opened); KMCL calls RestorePacket for each packet it holds. Returns
    /// whether KMCL expects more chunks.
    ///
    /// # Errors
    ///
    /// KMCL's status (the restore failed; discard the channel).
    pub fn restore_chunk<H: FerryHost<Kernel = K>>(&self, chunk: &[u8]) -> Result<bool, NtStatus> {
        let size = u32::try_from(chunk.len()).map_err(|_| NtStatus::INVALID_BUFFER_SIZE)?;
        // SAFETY: KMCL reads `size` bytes of `chunk` during the call.
        let status = unsafe {
            (H::platform().kmcl().channel_restore_from_buffer)(
                self.handle,
                chunk.as_ptr().cast_mut().cast(),
                size,
            )
        };
        match status {
            NtStatus::MORE_PROCESSING_REQUIRED => Ok(true),
            status if status.is_success() => Ok(false),
            status => Err(status),
        }
    }

    /// Records in core that the restore is complete (`ChannelEvent::Restored`): the channel is
    /// open and paused, ready for [`Self::start`].
    ///
    /// # Errors
    ///
    /// Core refused (the channel was not in a restorable state).
    pub fn restored(&self) -> Result<(), ChannelError> {
        self.channel().request(ChannelEvent::Restored)
    }

    /// Revokes the offer and frees everything (PASSIVE_LEVEL): `VmbChannelDisable` (which
    /// waits for every callback, Closed included), `VmbChannelCleanup`, then the context.
    pub fn close<H: FerryHost<Kernel = K>>(self) {
        if let Err(error) = self.channel().request(ChannelEvent::Disable) {
            K::log(
                Level::Warning,
                format_args!("Disable refused by core: {error}"),
            );
        }
        let kmcl = H::platform().kmcl();
        // SAFETY: a live channel; Disable blocks until teardown is complete.
        unsafe { (kmcl.channel_disable)(self.handle) };
        // SAFETY: disabled above, so no callback can run any more.
        unsafe { (kmcl.channel_cleanup)(self.handle) };
        self.free_context();
    }
}

/// The context KMCL holds for `channel`, or `None` for a channel ferry does not know.
fn context_of<K: KernelServices>(
    kmcl: &KmclTable,
    channel: VMBCHANNEL,
) -> Option<&'static ChannelContext<K>> {
    // SAFETY: KMCL passes a live channel to its callbacks; GetPointer only reads.
    let pointer = unsafe { (kmcl.channel_get_pointer)(channel) };
    // SAFETY: every channel ferry creates carries a pointer to its ChannelContext<K>, live
    // until VmbChannelCleanup, after which KMCL makes no more callbacks for it.
    unsafe { pointer.cast::<ChannelContext<K>>().as_ref() }
}

/// The transaction key stored on an outgoing packet (`VmbPacketSetPointer`).
fn key_of(kmcl: &KmclTable, packet: VMBPACKET) -> TransactionKey {
    // SAFETY: KMCL passes a live packet object to its callbacks.
    let bits = unsafe { (kmcl.packet_get_pointer)(packet) };
    // The pointer's bits are the key (platform::allocate_packet); the upper half is zero.
    TransactionKey::from_bits(u32::try_from(bits.addr()).unwrap_or(u32::MAX))
}

/// `len` bytes at `buffer` (KMCL's), or empty for a NULL buffer or zero length.
///
/// # Safety
///
/// A non-NULL `buffer` points to `len` readable bytes that stay valid for `'a`.
unsafe fn bytes<'a>(buffer: *const c_void, len: u32) -> &'a [u8] {
    if buffer.is_null() || len == 0 {
        return &[];
    }
    let len = usize::try_from(len).unwrap_or(0);
    // SAFETY: the caller's contract.
    unsafe { core::slice::from_raw_parts(buffer.cast::<u8>(), len) }
}

/// `EVT_VMB_CHANNEL_PROCESS_PACKET` (<= DISPATCH_LEVEL).
///
/// # Safety
///
/// Called by KMCL with a live channel, an uncompleted packet and `length` readable bytes at
/// `buffer`.
pub unsafe extern "system" fn process_packet<H: FerryHost>(
    channel: VMBCHANNEL,
    packet: VMBPACKETCOMPLETION,
    buffer: *mut c_void,
    length: u32,
    _flags: u32,
) {
    let platform = H::platform();
    let Some(context) = context_of::<H::Kernel>(platform.kmcl(), channel) else {
        // Not ferry's channel: complete it empty rather than leak a quota slot.
        platform.complete_packet(IncomingPacket(packet), &[]);
        return;
    };
    // SAFETY: KMCL's buffer, valid for the callback.
    let payload = unsafe { bytes(buffer, length) };
    let mut scratch = ScratchGuard::lock(context);
    match context.channel.process_packet(
        platform,
        IncomingPacket(packet),
        payload,
        scratch.buffer(),
    ) {
        Ok(PacketOutcome::Completed | PacketOutcome::Failed | PacketOutcome::Deferred(_)) => {}
        Err(error) => H::Kernel::log(Level::Warning, format_args!("ProcessPacket: {error}")),
    }
}

/// `EVT_VMB_CHANNEL_PROCESSING_COMPLETE` (<= DISPATCH_LEVEL).
///
/// # Safety
///
/// Called by KMCL with a live channel.
pub unsafe extern "system" fn processing_complete<H: FerryHost>(channel: VMBCHANNEL, count: u32) {
    let platform = H::platform();
    if let Some(context) = context_of::<H::Kernel>(platform.kmcl(), channel)
        && let Err(error) = context.channel.processing_complete(count)
    {
        H::Kernel::log(
            Level::Warning,
            format_args!("ProcessingComplete({count}): {error}"),
        );
    }
}

/// `EVT_VMB_CHANNEL_OPENED` (PASSIVE_LEVEL): core's status is KMCL's answer.
///
/// # Safety
///
/// Called by KMCL with a live channel.
pub unsafe extern "system" fn channel_opened<H: FerryHost>(channel: VMBCHANNEL) -> NtStatus {
    let platform = H::platform();
    context_of::<H::Kernel>(platform.kmcl(), channel).map_or(NtStatus::NOT_FOUND, |context| {
        context.channel.on_opened(platform)
    })
}

/// Runs one of the four state callbacks without a status and logs a refusal.
fn state_callback<H: FerryHost>(
    channel: VMBCHANNEL,
    name: &str,
    call: impl FnOnce(&WdkChannel<H::Kernel>, &WdkPlatform<H::Kernel>) -> Result<(), ChannelError>,
) {
    let platform = H::platform();
    if let Some(context) = context_of::<H::Kernel>(platform.kmcl(), channel)
        && let Err(error) = call(&context.channel, platform)
    {
        H::Kernel::log(Level::Warning, format_args!("{name}: {error}"));
    }
}

/// `EVT_VMB_CHANNEL_CLOSED` (PASSIVE_LEVEL).
///
/// # Safety
///
/// Called by KMCL with a live channel.
pub unsafe extern "system" fn channel_closed<H: FerryHost>(channel: VMBCHANNEL) {
    state_callback::<H>(channel, "Closed", |c, p| c.on_closed(p));
}

/// `EVT_VMB_CHANNEL_SUSPEND` (PASSIVE_LEVEL).
///
/// # Safety
///
/// Called by KMCL with a live channel.
pub unsafe extern "system" fn channel_suspend<H: FerryHost>(channel: VMBCHANNEL) {
    state_callback::<H>(channel, "Suspend", |c, p| c.on_suspend(p));
}

/// `EVT_VMB_CHANNEL_STARTED` (PASSIVE_LEVEL).
///
/// # Safety
///
/// Called by KMCL with a live channel.
pub unsafe extern "system" fn channel_started<H: FerryHost>(channel: VMBCHANNEL) {
    state_callback::<H>(channel, "Started", |c, p| c.on_started(p));
}

/// `EVT_VMB_CHANNEL_POST_STARTED` (PASSIVE_LEVEL).
///
/// # Safety
///
/// Called by KMCL with a live channel.
pub unsafe extern "system" fn channel_post_started<H: FerryHost>(channel: VMBCHANNEL) {
    state_callback::<H>(channel, "PostStarted", |c, p| c.on_post_started(p));
}

/// `EVT_VMB_CHANNEL_SAVE_PACKET` (PASSIVE_LEVEL): the two-call protocol is core's
/// ([`Channel::save_packet`]); this writes `*BytesNeeded` and returns the status.
///
/// # Safety
///
/// Called by KMCL with a live channel and packet, `size` writable bytes at `buffer` (none for
/// the first call) and a writable `bytes_needed`.
pub unsafe extern "system" fn save_packet<H: FerryHost>(
    channel: VMBCHANNEL,
    packet: VMBPACKET,
    buffer: *mut c_void,
    size: u32,
    bytes_needed: *mut u32,
) -> NtStatus {
    let platform = H::platform();
    let Some(context) = context_of::<H::Kernel>(platform.kmcl(), channel) else {
        return NtStatus::NOT_FOUND;
    };
    let key = key_of(platform.kmcl(), packet);
    let out: &mut [u8] = if buffer.is_null() || size == 0 {
        &mut []
    } else {
        let len = usize::try_from(size).unwrap_or(0);
        // SAFETY: KMCL's save buffer of `size` bytes, valid and exclusively ours for the call.
        unsafe { core::slice::from_raw_parts_mut(buffer.cast::<u8>(), len) }
    };
    let answer = context.channel.save_packet(platform, key, out);
    if !bytes_needed.is_null() {
        // SAFETY: KMCL's out-parameter, checked non-NULL.
        unsafe { bytes_needed.write(answer.bytes) };
    }
    answer.status
}

/// `EVT_VMB_CHANNEL_RESTORE_PACKET` (PASSIVE_LEVEL): both buffers are read during the call
/// only (core decodes the VSP's bytes into its ledger; KMCL's go to `VmbPacketRestore`).
///
/// # Safety
///
/// Called by KMCL with a live channel and the two buffers readable for their sizes.
pub unsafe extern "system" fn restore_packet<H: FerryHost>(
    channel: VMBCHANNEL,
    library: *mut c_void,
    library_size: u32,
    saved: *mut c_void,
    saved_size: u32,
) -> NtStatus {
    let platform = H::platform();
    let Some(context) = context_of::<H::Kernel>(platform.kmcl(), channel) else {
        return NtStatus::NOT_FOUND;
    };
    // SAFETY: KMCL's buffer, valid for the callback.
    let library = unsafe { bytes(library, library_size) };
    // SAFETY: as above.
    let saved = unsafe { bytes(saved, saved_size) };
    match context.channel.restore_packet(platform, library, saved) {
        Ok(_) => NtStatus::SUCCESS,
        Err(error) => {
            H::Kernel::log(Level::Warning, format_args!("RestorePacket: {error}"));
            error.status()
        }
    }
}

/// `EVT_VMB_PACKET_COMPLETION_ROUTINE` (<= DISPATCH_LEVEL) of every packet ferry sends or
/// restores: hands the key, status and completion bytes to core, then frees the packet object
/// — always, whatever core answers (core never frees packets: [`Channel::on_closed`]).
///
/// # Safety
///
/// Called by KMCL once per sent packet, with `length` readable bytes at `buffer`.
pub unsafe extern "system" fn packet_completion<H: FerryHost>(
    packet: VMBPACKET,
    status: NtStatus,
    buffer: *mut c_void,
    length: u32,
) {
    let platform = H::platform();
    let kmcl = platform.kmcl();
    let key = key_of(kmcl, packet);
    // SAFETY: a live packet object (freed only below).
    let channel = unsafe { (kmcl.packet_get_channel)(packet) };
    if let Some(context) = context_of::<H::Kernel>(kmcl, channel) {
        // SAFETY: KMCL's completion bytes, valid for the callback.
        let completion = unsafe { bytes(buffer, length) };
        if let Err(error) = context
            .channel
            .transaction_completed(platform, key, status, completion)
        {
            H::Kernel::log(
                Level::Trace,
                format_args!("completion of {:#x}: {error}", key.to_bits()),
            );
        }
    }
    // SAFETY: the completion routine owns the packet object; it is not used again.
    unsafe { (kmcl.packet_free)(packet) };
}
