//! The control device's logic: one handler per IOCTL, over a fixed-capacity channel registry,
//! generic over the driver's [`FerryHost`] so that it runs on Linux against a fake KMCL
//! (`tests/abi/control.rs`) exactly as it runs in `ferry.sys`.
//!
//! | module | job |
//! |---|---|
//! | [`request`] | codes, wire layouts, validation of every input, encoding of the outputs |
//! | [`registry`] | the offered channels, their ids and owners, check-out for one request at a time |
//! | [`migration`] | the save and restore handlers (chunked, with the session blob) |
//! | [`access`] | the security descriptor applied to the device: SYSTEM and Administrators only |
//!
//! The driver's part is thin (`crates/driver/src/device.rs`): it creates `\Device\Ferry`,
//! finds the system buffer, the lengths and the code in the IRP, calls
//! [`ControlDevice::device_control`] and completes the IRP with the returned [`Completion`].
//!
//! Every handler runs at `PASSIVE_LEVEL` in the requesting thread (the control device is the
//! top of its stack, so the I/O manager calls the dispatch routine in the caller's context —
//! which `VmbConvertVmbusHandleToKernelHandle` requires: `kmcl.md` §2.6). A refused request
//! changes nothing and writes no output.

pub mod access;
pub mod migration;
pub mod registry;
pub mod request;

use core::marker::PhantomData;
use core::ptr;
use core::sync::atomic::{AtomicPtr, Ordering};

use ferry_core::channel::ChannelError;
use ferry_core::service::ServiceConfig;
use ferry_core::status::NtStatus;

use self::migration::SaveProgress;
use self::registry::{
    ChannelId, ChannelRegistry, CheckedOut, Entry, KernelHandle, Owner, RegistryError,
};
use self::request::{
    ChannelInput, ControlRequest, GuidBytes, IoctlError, OFFER_FLAG_DEFER_PORT_STATS,
    OFFER_FLAG_START_PAUSED, OFFER_OUTPUT_LEN, OfferInput, PORT_STATS_OUTPUT_LEN, PortStatsInput,
    encode_port_stats, parse_request,
};
use crate::ffi::base::{DEVICE_OBJECT, GUID, HANDLE, NTSTATUS};
use crate::host::FerryHost;
use crate::host::channel::{OfferConfig, OfferedChannel};
use crate::kernel::log::Level;
use crate::kernel::services::KernelServices;

/// `STATUS_DEVICE_BUSY` (`ntstatus.h`, 0x80000011): another request is working on the channel;
/// retry. A warning status: Win32 callers see `ERROR_BUSY`.
pub const STATUS_DEVICE_BUSY: NtStatus = NtStatus(0x8000_0011_u32.cast_signed());

/// `ZwClose`'s type: how the control device closes the kernel handle
/// `VmbConvertVmbusHandleToKernelHandle` returned (in the driver, the `ntoskrnl.exe` import;
/// in host tests, a fake that records).
pub type FnCloseHandle = unsafe extern "system" fn(handle: HANDLE) -> NTSTATUS;

/// Why a request was refused. Each maps to the IRP's status through [`ControlError::status`].
/// (`Debug` is written out below, not derived: see there.)
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum ControlError {
    /// The input buffer is malformed.
    Request(IoctlError),
    /// The registry refused (full, unknown id, busy).
    Registry(RegistryError),
    /// The output buffer is shorter than the answer.
    OutputTooSmall {
        /// The output length needed.
        needed: usize,
    },
    /// The channel is not in a state that allows the request (named).
    WrongState(&'static str),
    /// Core refused the request on the channel.
    Channel(ChannelError),
    /// A KMCL call or core's validation failed with this status.
    Failed(NtStatus),
    /// The last restore chunk left KMCL asking for more: the saved stream was truncated. The
    /// channel cannot be restored any more; close it.
    RestoreTruncated,
}

impl ControlError {
    /// The `NTSTATUS` to complete the IRP with.
    #[must_use]
    pub const fn status(&self) -> NtStatus {
        match self {
            Self::Request(error) => error.status(),
            Self::Registry(RegistryError::Full) => NtStatus::INSUFFICIENT_RESOURCES,
            Self::Registry(RegistryError::Unknown(_)) => NtStatus::NOT_FOUND,
            Self::Registry(RegistryError::Busy(_)) => STATUS_DEVICE_BUSY,
            Self::OutputTooSmall { .. } => NtStatus::BUFFER_TOO_SMALL,
            Self::WrongState(_) => NtStatus::INVALID_DEVICE_STATE,
            Self::Channel(error) => error.status(),
            Self::Failed(status) => *status,
            Self::RestoreTruncated => NtStatus::DATA_ERROR,
        }
    }
}

/// As derived, except that the state name of [`ControlError::WrongState`] is written as it is
/// rather than through `<str as Debug>`: that escapes characters with code that can panic
/// (`char::escape_debug_ext` indexes a slice), and the refusal is logged with `{:?}`, so a
/// derived impl left a panic path in `ferry.sys` (found by `cargo xtask check-panic-free`).
/// The names are plain text, so the output is the derived one.
impl core::fmt::Debug for ControlError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Request(error) => f.debug_tuple("Request").field(error).finish(),
            Self::Registry(error) => f.debug_tuple("Registry").field(error).finish(),
            Self::OutputTooSmall { needed } => f
                .debug_struct("OutputTooSmall")
                .field("needed", needed)
                .finish(),
            Self::WrongState(state) => write!(f, "WrongState(\"{state}\")"),
            Self::Channel(error) => f.debug_tuple("Channel").field(error).finish(),
            Self::Failed(status) => f.debug_tuple("Failed").field(status).finish(),
            Self::RestoreTruncated => f.write_str("RestoreTruncated"),
        }
    }
}

impl From<RegistryError> for ControlError {
    fn from(error: RegistryError) -> Self {
        Self::Registry(error)
    }
}

impl From<IoctlError> for ControlError {
    fn from(error: IoctlError) -> Self {
        Self::Request(error)
    }
}

impl From<ChannelError> for ControlError {
    fn from(error: ChannelError) -> Self {
        Self::Channel(error)
    }
}

/// How to complete the IRP: its status and `IoStatus.Information` (bytes of output written,
/// never more than the output length).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Completion {
    /// `Irp->IoStatus.Status`.
    pub status: NtStatus,
    /// `Irp->IoStatus.Information`.
    pub information: usize,
}

impl Completion {
    /// `STATUS_SUCCESS` with `information` bytes written.
    #[must_use]
    pub const fn success(information: usize) -> Self {
        Self {
            status: NtStatus::SUCCESS,
            information,
        }
    }
}

/// A `METHOD_BUFFERED` request's system buffer: **one** buffer of `max(input, output)` bytes
/// that holds the input on entry and receives the output (the I/O manager copies
/// `Information` bytes of it back to the caller). Handlers read the whole input before they
/// write any output.
#[derive(Debug)]
pub struct IoctlBuffer<'a> {
    bytes: &'a mut [u8],
    input_len: usize,
    output_len: usize,
}

impl<'a> IoctlBuffer<'a> {
    /// The buffer, with the input and output lengths of the request; `None` if either is
    /// longer than `bytes`.
    #[must_use]
    pub fn new(bytes: &'a mut [u8], input_len: usize, output_len: usize) -> Option<Self> {
        (input_len <= bytes.len() && output_len <= bytes.len()).then_some(Self {
            bytes,
            input_len,
            output_len,
        })
    }
}

/// A parsed request that borrows nothing from the system buffer.
enum Plain {
    Offer(OfferInput),
    ReadPortStats(PortStatsInput),
    Save(ChannelInput),
    Close(ChannelInput),
    Pause(ChannelInput),
    Resume(ChannelInput),
}

/// The control device's state: the channel registry of capacity `N`, the device object that
/// parents every channel, and how to close a kernel handle.
pub struct ControlDevice<H: FerryHost, const N: usize> {
    registry: ChannelRegistry<H::Kernel, N>,
    parent: AtomicPtr<DEVICE_OBJECT>,
    close_handle: FnCloseHandle,
    host: PhantomData<fn() -> H>,
}

impl<H: FerryHost, const N: usize> core::fmt::Debug for ControlDevice<H, N> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ControlDevice")
            .field("registry", &self.registry)
            .finish_non_exhaustive()
    }
}

/// `bytes` (Windows memory order) as a `GUID`.
#[must_use]
pub const fn guid_from_bytes(bytes: GuidBytes) -> GUID {
    let [a, b, c, d, e, f, g, h, data4 @ ..] = bytes;
    GUID {
        Data1: u32::from_le_bytes([a, b, c, d]),
        Data2: u16::from_le_bytes([e, f]),
        Data3: u16::from_le_bytes([g, h]),
        Data4: data4,
    }
}

impl<H: FerryHost, const N: usize> ControlDevice<H, N> {
    /// An empty control device (usable in a `static`); `close_handle` closes the VMBus kernel
    /// handles of the channels it offers.
    #[must_use]
    pub const fn new(close_handle: FnCloseHandle) -> Self {
        Self {
            registry: ChannelRegistry::new(),
            parent: AtomicPtr::new(ptr::null_mut()),
            close_handle,
            host: PhantomData,
        }
    }

    /// Records the device object that parents every channel (`VmbChannelAllocate`'s
    /// `ParentDeviceObject`); the driver sets it after `IoCreateDevice`, before creating the
    /// symbolic link, and clears it (NULL) after closing every channel.
    pub fn set_parent(&self, device: *mut DEVICE_OBJECT) {
        self.parent.store(device, Ordering::Release);
    }

    /// The registry (for inspection in tests and logs).
    #[must_use]
    pub const fn registry(&self) -> &ChannelRegistry<H::Kernel, N> {
        &self.registry
    }

    /// Handles one `IRP_MJ_DEVICE_CONTROL` request from `caller`'s handle.
    pub fn device_control(&self, caller: Owner, code: u32, buffer: IoctlBuffer<'_>) -> Completion {
        let completion = self.answer(caller, code, buffer);
        // The request has put its channel back: if its handle was cleaned up meanwhile, the
        // channel is an orphan now, and nobody else would close it before unload.
        self.close_orphans();
        completion
    }

    fn answer(&self, caller: Owner, code: u32, buffer: IoctlBuffer<'_>) -> Completion {
        match self.handle(caller, code, buffer) {
            Ok(completion) => completion,
            Err(error) => {
                H::Kernel::log(
                    Level::Trace,
                    format_args!("IOCTL {code:#010x} refused: {error:?}"),
                );
                Completion {
                    status: error.status(),
                    information: 0,
                }
            }
        }
    }

    fn handle(
        &self,
        caller: Owner,
        code: u32,
        buffer: IoctlBuffer<'_>,
    ) -> Result<Completion, ControlError> {
        let IoctlBuffer {
            bytes,
            input_len,
            output_len,
        } = buffer;
        let input = bytes.get(..input_len).unwrap_or(&[]);
        // Every request but a restore is plain values once parsed, so the buffer can then be
        // written; a restore has no output and reads its chunk in place.
        let request = match parse_request(code, input)? {
            ControlRequest::Restore(restore) => return self.restore(caller, &restore),
            ControlRequest::Offer(offer) => Plain::Offer(offer),
            ControlRequest::ReadPortStats(stats) => Plain::ReadPortStats(stats),
            ControlRequest::Save(channel) => Plain::Save(channel),
            ControlRequest::Close(channel) => Plain::Close(channel),
            ControlRequest::Pause(channel) => Plain::Pause(channel),
            ControlRequest::Resume(channel) => Plain::Resume(channel),
        };
        let output = bytes.get_mut(..output_len).unwrap_or(&mut []);
        match request {
            Plain::Offer(offer) => self.offer(caller, &offer, output),
            Plain::ReadPortStats(stats) => Self::read_port_stats(&stats, output),
            Plain::Save(channel) => self.save(caller, channel, output),
            Plain::Close(channel) => self.close(caller, channel),
            Plain::Pause(channel) => self.pause(caller, channel),
            Plain::Resume(channel) => self.resume(caller, channel),
        }
    }

    /// The channel `input` names, checked out for this request.
    fn check_out(
        &self,
        caller: Owner,
        input: ChannelInput,
    ) -> Result<CheckedOut<'_, H::Kernel, N>, ControlError> {
        Ok(self
            .registry
            .check_out(ChannelId(input.channel_id), caller)?)
    }

    /// `IOCTL_FERRY_OFFER_CHANNEL` / `_LOOPBACK`: reserve a slot, convert the worker's VMBus
    /// handle (in its process context), offer (`OfferedChannel::offer`: allocate, pointer,
    /// callbacks, quota, packet size, flags, interface ids, VMBus handle, enable), start unless
    /// asked not to, and answer the channel id. Each failure undoes what was done.
    fn offer(
        &self,
        caller: Owner,
        input: &OfferInput,
        output: &mut [u8],
    ) -> Result<Completion, ControlError> {
        let out = output
            .get_mut(..OFFER_OUTPUT_LEN)
            .ok_or(ControlError::OutputTooSmall {
                needed: OFFER_OUTPUT_LEN,
            })?;
        let reservation = self.registry.reserve(caller)?;
        let vmbus = match input.vmbus_handle {
            Some(user) => Some(self.convert(user)?),
            None => None,
        };
        let config = OfferConfig {
            device: self.parent.load(Ordering::Acquire),
            interface_type: guid_from_bytes(input.interface_type),
            interface_instance: guid_from_bytes(input.interface_instance),
            vmbus: vmbus.as_ref().map(KernelHandle::raw),
            loopback: vmbus.is_none(),
            identity: input.nic_identity,
            service: ServiceConfig {
                defer_port_stats: input.flags & OFFER_FLAG_DEFER_PORT_STATS != 0,
            },
            maximum_packet_size: input.maximum_packet_size,
        };
        let channel = match OfferedChannel::<H::Kernel>::offer::<H>(&config) {
            Ok(channel) => channel,
            Err(status) => {
                self.close_kernel_handle(vmbus);
                return Err(ControlError::Failed(status));
            }
        };
        if input.flags & OFFER_FLAG_START_PAUSED == 0
            && let Err(error) = channel.start::<H>()
        {
            channel.close::<H>();
            self.close_kernel_handle(vmbus);
            return Err(ControlError::Channel(error));
        }
        let id = reservation.fill(Entry::new(channel, vmbus, caller));
        out.copy_from_slice(&id.0.to_le_bytes());
        Ok(Completion::success(OFFER_OUTPUT_LEN))
    }

    /// `VmbConvertVmbusHandleToKernelHandle` on the worker's handle value.
    fn convert(&self, user: u64) -> Result<KernelHandle, ControlError> {
        let raw = usize::try_from(user)
            .map_err(|_| ControlError::Request(IoctlError::Field("vmbus_handle")))?;
        let mut kernel: HANDLE = ptr::null_mut();
        let convert = H::platform().kmcl().convert_vmbus_handle_to_kernel_handle;
        // SAFETY: PASSIVE_LEVEL, in the requesting process's context (module docs); the user
        // handle is only a value KMCL looks up in that process's handle table; `kernel` is a
        // valid out-pointer.
        let status = unsafe { convert(ptr::without_provenance_mut(raw), &raw mut kernel) };
        if !status.is_success() {
            return Err(ControlError::Failed(status));
        }
        if kernel.is_null() {
            return Err(ControlError::Failed(NtStatus::UNSUCCESSFUL));
        }
        Ok(KernelHandle(kernel))
    }

    fn close_kernel_handle(&self, handle: Option<KernelHandle>) {
        if let Some(handle) = handle {
            // SAFETY: a kernel handle from VmbConvertVmbusHandleToKernelHandle, owned by this
            // control device and closed once, after the channel using it was cleaned up.
            let status = unsafe { (self.close_handle)(handle.raw()) };
            if !status.is_success() {
                H::Kernel::log(
                    Level::Warning,
                    format_args!("closing a VMBus handle: {status}"),
                );
            }
        }
    }

    /// `IOCTL_FERRY_READ_PORT_STATS`: the counters of the port serving the NIC.
    fn read_port_stats(
        input: &PortStatsInput,
        output: &mut [u8],
    ) -> Result<Completion, ControlError> {
        if output.len() < PORT_STATS_OUTPUT_LEN {
            return Err(ControlError::OutputTooSmall {
                needed: PORT_STATS_OUTPUT_LEN,
            });
        }
        let (port, counters) = H::ports()
            .counters_by_identity(&input.nic_identity)
            .map_err(|error| ControlError::Failed(error.status()))?;
        let written =
            encode_port_stats(port, &counters, output).ok_or(ControlError::OutputTooSmall {
                needed: PORT_STATS_OUTPUT_LEN,
            })?;
        Ok(Completion::success(written))
    }

    /// `IOCTL_FERRY_PAUSE_CHANNEL`: `VmbChannelPause` (blocks until Suspend ran). Refused
    /// while a save or restore is in progress.
    fn pause(&self, caller: Owner, input: ChannelInput) -> Result<Completion, ControlError> {
        let mut checked = self.check_out(caller, input)?;
        let entry = checked.entry()?;
        if entry.save != SaveProgress::Idle || entry.restore.in_progress() {
            return Err(ControlError::WrongState("a save or restore is in progress"));
        }
        entry.channel.pause::<H>()?;
        Ok(Completion::success(0))
    }

    /// `IOCTL_FERRY_RESUME_CHANNEL`: ends an unfinished save (`VmbChannelSaveEnd`: the
    /// migration was abandoned; ended even if core then refuses the start), then
    /// `VmbChannelStart`. Refused while a restore is unfinished.
    fn resume(&self, caller: Owner, input: ChannelInput) -> Result<Completion, ControlError> {
        let mut checked = self.check_out(caller, input)?;
        let entry = checked.entry()?;
        if entry.restore.in_progress() {
            return Err(ControlError::WrongState(
                "a restore is unfinished or failed: finish it or close the channel",
            ));
        }
        if entry.save == SaveProgress::Streaming {
            entry.channel.save_end::<H>();
            entry.save = SaveProgress::Idle;
        }
        entry.channel.start::<H>()?;
        Ok(Completion::success(0))
    }

    /// `IOCTL_FERRY_CLOSE_CHANNEL`: the channel leaves the registry and is closed.
    fn close(&self, caller: Owner, input: ChannelInput) -> Result<Completion, ControlError> {
        let checked = self.check_out(caller, input)?;
        if let Some(entry) = checked.remove() {
            self.retire(entry);
        }
        Ok(Completion::success(0))
    }

    /// Ends an unfinished save, closes the channel (`VmbChannelDisable` waits for its
    /// callbacks, then `VmbChannelCleanup`), then closes its VMBus kernel handle.
    fn retire(&self, entry: Entry<H::Kernel>) {
        let Entry {
            channel,
            vmbus,
            save,
            ..
        } = entry;
        if save == SaveProgress::Streaming {
            channel.save_end::<H>();
        }
        channel.close::<H>();
        self.close_kernel_handle(vmbus);
    }

    /// Closes every channel of `owner` (`IRP_MJ_CLEANUP` of its handle); returns how many it
    /// closed here. A channel another request holds at that moment (checked out, or being
    /// offered) is doomed instead: that request closes it when it ends
    /// ([`device_control`](Self::device_control)).
    pub fn close_owned_by(&self, owner: Owner) -> usize {
        let doomed = self.registry.doom(owner);
        if doomed > 0 {
            H::Kernel::log(
                Level::Info,
                format_args!(
                    "{doomed} channel(s) in use at cleanup: closed when their request ends"
                ),
            );
        }
        self.close_where(|entry| entry.owner == owner)
    }

    /// Closes the channels whose handle was cleaned up while a request held them; returns how
    /// many.
    fn close_orphans(&self) -> usize {
        self.close_where(|entry| entry.owner == Owner::ORPHANED)
    }

    /// Takes every channel at rest that `select` picks out of the registry and closes it.
    fn close_where(&self, select: impl Fn(&Entry<H::Kernel>) -> bool) -> usize {
        let mut closed = 0usize;
        while let Some(entry) = self.registry.take_first(&select) {
            self.retire(entry);
            closed = closed.saturating_add(1);
        }
        closed
    }

    /// Closes every channel (unload, after the device is gone so no request can arrive);
    /// returns how many.
    pub fn close_all(&self) -> usize {
        self.close_where(|_| true)
    }
}
