//! The VMBus Kernel Mode Client Library, `vmbuskernelmodeclientlibapi.h`, as far as a host-side
//! server endpoint (VSP) needs it.
//!
//! Every figure here comes from `shared/reference/kmcl.md` (section named at each item). That
//! reference tags facts by source: \[H\] header text, \[D\] Microsoft's DDI docs, \[B\] binaries,
//! \[I\] inference. Items the reference marks UNCONFIRMED say so in their docs.
//!
//! KMCL is reached two ways (kmcl.md §1.1): by direct import from the host library
//! `vmbkmclr.sys` ([`imports`]), or through the `KMCL_SERVER_INTERFACE_V1` table answered by an
//! `IRP_MN_QUERY_INTERFACE` ([`KMCL_SERVER_INTERFACE_V1`]). The GUIDs needed for that query
//! (`KMCL_CLIENT_INTERFACE_TYPE`, `KMCL_SERVER_INTERFACE_TYPE`) are **UNCONFIRMED**: no public
//! source gives their values, so this module does not define them. ferry's function table
//! ([`crate::tables::KmclTable`]) can be filled either way.
//!
//! All functions and callbacks are `extern "system"`: on x64 the header's `FASTCALL` and the
//! default convention are the same one (kmcl.md §1.2).

#![allow(non_camel_case_types, non_snake_case)]

use core::ffi::c_void;

use static_assertions::{assert_eq_size, const_assert_eq};

use super::base::declare_handle;
use super::base::{BOOLEAN, DEVICE_OBJECT, GUID, HANDLE, MDL, NTSTATUS, UNICODE_STRING};

declare_handle! {
    /// `VMBCHANNEL`: a KMCL channel object (kmcl.md §1.2).
    VMBCHANNEL
}
declare_handle! {
    /// `VMBPACKET`: an outgoing packet object (kmcl.md §1.2).
    VMBPACKET
}
declare_handle! {
    /// `VMBPACKETCOMPLETION`: identifies an incoming packet until it is completed (kmcl.md §1.2).
    VMBPACKETCOMPLETION
}

// kmcl.md §1.2: every handle is one pointer, 8 bytes on x64.
assert_eq_size!(VMBCHANNEL, u64);
assert_eq_size!(VMBPACKET, u64);
assert_eq_size!(VMBPACKETCOMPLETION, u64);

// ---------------------------------------------------------------------------------------------
// Constants (kmcl.md §1.3, all [H]). Newer headers may define more bits: UNCONFIRMED.
// ---------------------------------------------------------------------------------------------

/// Send flag: the peer completes the packet, and the completion routine receives its reply.
pub const VMBUS_CHANNEL_FORMAT_FLAG_WAIT_FOR_COMPLETION: u32 = 0x1;
/// Send flag: describe the external-data MDL with its byte count.
pub const VMBUS_CHANNEL_FORMAT_FLAG_FORCE_MDL_LENGTH: u32 = 0x2;
/// Send flag: the inline buffer is pageable; KMCL copies it before raising IRQL.
pub const VMBUS_CHANNEL_FORMAT_FLAG_PAGED_BUFFER: u32 = 0x4;
/// All send flags.
pub const VMBUS_CHANNEL_FORMAT_FLAGS: u32 = 0x7;

/// GPADL flag: read-only mapping (a migration speed-up, not a protection).
pub const VMBUS_CHANNEL_GPADL_FLAG_READ_ONLY: u32 = 0x1;
/// All GPADL flags.
pub const VMBUS_CHANNEL_GPADL_FLAGS: u32 = 0x1;

/// `VmbChannelInitSetFlags`: the channel is a pipe.
pub const VMBUS_CHANNEL_INIT_FLAG_IS_PIPE: u32 = 0x1;
/// All `VmbChannelInitSetFlags` flags.
pub const VMBUS_CHANNEL_INIT_FLAGS: u32 = 0x1;

/// `VmbServerChannelInitSetFlags`: offer the channel to the host itself (no VM).
pub const VMBUS_SERVER_CHANNEL_INIT_FLAG_LOOPBACK_OFFER: u32 = 0x01;
/// `VmbServerChannelInitSetFlags`: enumerate a device interface for the channel.
pub const VMBUS_SERVER_CHANNEL_INIT_FLAG_ENUMERATE_DEVICE_INTERFACE: u32 = 0x02;
/// `VmbServerChannelInitSetFlags`: offer the channel as a pipe.
pub const VMBUS_SERVER_CHANNEL_INIT_FLAG_OFFER_AS_PIPE: u32 = 0x04;
/// `VmbServerChannelInitSetFlags`: after save/restore, re-offer instead of resuming.
pub const VMBUS_SERVER_CHANNEL_INIT_FLAG_FORCE_NEW_CHANNEL: u32 = 0x08;
/// `VmbServerChannelInitSetFlags`: TLNPI provider offer.
pub const VMBUS_SERVER_CHANNEL_INIT_FLAG_TLNPI_PROVIDER_OFFER: u32 = 0x10;
/// All `VmbServerChannelInitSetFlags` flags.
pub const VMBUS_SERVER_CHANNEL_INIT_FLAGS: u32 = 0x1F;

/// `Flags` of `EVT_VMB_CHANNEL_PROCESS_PACKET`: the packet carries external data.
pub const VMBUS_CHANNEL_PROCESS_PACKET_FLAG_EXTERNAL_DATA: u32 = 0x1;
/// All process-packet flags.
pub const VMBUS_CHANNEL_PROCESS_PACKET_FLAGS: u32 = 0x1;

/// `VmbChannelPacketGetExternalData`: map the external data read-only.
pub const VMBUS_CHANNEL_PACKET_EXTERNAL_DATA_FLAG_READ_ONLY: u32 = 0x1;
/// All external-data flags.
pub const VMBUS_CHANNEL_PACKET_EXTERNAL_DATA_FLAGS: u32 = 0x1;

/// Maximum bytes of extra data in a channel offer.
pub const VMBUS_SERVER_CHANNEL_INIT_MAXIMUM_OFFER_DATA: u32 = 120;

/// `KMCL_CLIENT_INTERFACE_VERSION_V1`.
///
/// **UNCONFIRMED** (kmcl.md §1.1, §4): 1 is strongly indicated by dxgkrnl's client query
/// (Version = 1 with Size = 360) but was never seen in header text.
pub const KMCL_CLIENT_INTERFACE_VERSION_V1: u16 = 1;
/// `KMCL_SERVER_INTERFACE_VERSION_V1`.
///
/// **UNCONFIRMED** (kmcl.md §1.1, §4): assumed equal to the client's V1 value; no source shows
/// a public server-interface query.
pub const KMCL_SERVER_INTERFACE_VERSION_V1: u16 = 1;

// ---------------------------------------------------------------------------------------------
// Callback typedefs (kmcl.md §1.4, [H]). `PFN_*` is the nullable pointer; every member of the
// callback structures may be NULL.
// ---------------------------------------------------------------------------------------------

/// `EVT_VMB_CHANNEL_OPENED` (PASSIVE_LEVEL): the guest opened the offer; failing rolls back.
pub type PFN_VMB_CHANNEL_OPENED =
    Option<unsafe extern "system" fn(Channel: VMBCHANNEL) -> NTSTATUS>;
/// `EVT_VMB_CHANNEL_CLOSED` (PASSIVE_LEVEL): tear down GPADLs here.
pub type PFN_VMB_CHANNEL_CLOSED = Option<unsafe extern "system" fn(Channel: VMBCHANNEL)>;
/// `EVT_VMB_CHANNEL_SUSPEND` (PASSIVE_LEVEL): leaving Active; complete every incoming packet.
pub type PFN_VMB_CHANNEL_SUSPEND = Option<unsafe extern "system" fn(Channel: VMBCHANNEL)>;
/// `EVT_VMB_CHANNEL_STARTED` (PASSIVE_LEVEL): may queue sends, must not wait.
pub type PFN_VMB_CHANNEL_STARTED = Option<unsafe extern "system" fn(Channel: VMBCHANNEL)>;
/// `EVT_VMB_CHANNEL_POST_STARTED` (PASSIVE_LEVEL): the incoming queue runs; channel Active.
pub type PFN_VMB_CHANNEL_POST_STARTED = Option<unsafe extern "system" fn(Channel: VMBCHANNEL)>;
/// `EVT_VMB_CHANNEL_PNP_FAILURE` (client only).
pub type PFN_VMB_CHANNEL_PNP_FAILURE =
    Option<unsafe extern "system" fn(Channel: VMBCHANNEL, FailureStatus: NTSTATUS)>;

/// `EVT_VMB_CHANNEL_SAVE_PACKET` (PASSIVE_LEVEL, server): two-phase save of one packet object;
/// first call with `SaveBufSize == 0`.
pub type PFN_VMB_CHANNEL_SAVE_PACKET = Option<
    unsafe extern "system" fn(
        Channel: VMBCHANNEL,
        Packet: VMBPACKET,
        SaveBuf: *mut c_void,
        SaveBufSize: u32,
        BytesNeeded: *mut u32,
    ) -> NTSTATUS,
>;
/// `EVT_VMB_CHANNEL_RESTORE_PACKET` (PASSIVE_LEVEL, server): `LibBuf` is KMCL's own state for
/// `VmbPacketRestore`, `SaveBuf` the VSP's.
pub type PFN_VMB_CHANNEL_RESTORE_PACKET = Option<
    unsafe extern "system" fn(
        Channel: VMBCHANNEL,
        LibBuf: *mut c_void,
        LibBufSize: u32,
        SaveBuf: *mut c_void,
        SaveBufSize: u32,
    ) -> NTSTATUS,
>;
/// `EVT_VMB_CHANNEL_PROCESS_PACKET` (<= DISPATCH_LEVEL): one incoming packet's payload.
pub type PFN_VMB_CHANNEL_PROCESS_PACKET = Option<
    unsafe extern "system" fn(
        Channel: VMBCHANNEL,
        Packet: VMBPACKETCOMPLETION,
        Buffer: *mut c_void,
        BufferLength: u32,
        Flags: u32,
    ),
>;
/// `EVT_VMB_CHANNEL_PROCESSING_COMPLETE` (<= DISPATCH_LEVEL): end of a batch.
pub type PFN_VMB_CHANNEL_PROCESSING_COMPLETE =
    Option<unsafe extern "system" fn(Channel: VMBCHANNEL, PacketsProcessed: u32)>;
/// `EVT_VMB_PACKET_COMPLETION_ROUTINE` (<= DISPATCH_LEVEL): four parameters, no channel
/// (kmcl.md §3 resolves the header's doc-comment discrepancy this way).
pub type PFN_VMB_PACKET_COMPLETION_ROUTINE = Option<
    unsafe extern "system" fn(
        Packet: VMBPACKET,
        Status: NTSTATUS,
        Buffer: *mut c_void,
        BufferLength: u32,
    ),
>;

/// `VMB_CHANNEL_STATE_CHANGE_CALLBACKS` (kmcl.md §1.5, \[H\], size \[B\]).
///
/// Whether `VmbChannelInitSetStateChangeCallbacks` copies it or keeps the pointer is
/// **UNCONFIRMED**: keep it alive for the channel's lifetime (a `static`).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct VMB_CHANNEL_STATE_CHANGE_CALLBACKS {
    /// 1.
    pub Version: u32,
    /// `sizeof` = 48.
    pub Size: u32,
    /// Guest opened the offer.
    pub EvtChannelOpened: PFN_VMB_CHANNEL_OPENED,
    /// Channel closed.
    pub EvtChannelClosed: PFN_VMB_CHANNEL_CLOSED,
    /// Leaving Active.
    pub EvtChannelSuspend: PFN_VMB_CHANNEL_SUSPEND,
    /// Opened and started.
    pub EvtChannelStarted: PFN_VMB_CHANNEL_STARTED,
    /// Incoming queue running.
    pub EvtChannelPostStarted: PFN_VMB_CHANNEL_POST_STARTED,
}

// kmcl.md §1.5: offsets 0x00, 0x04, 0x08 .. 0x28; sizeof 48 (0x30), confirmed by dxgkrnl [B].
assert_eq_size!(VMB_CHANNEL_STATE_CHANGE_CALLBACKS, [u8; 48]);
const_assert_eq!(
    core::mem::offset_of!(VMB_CHANNEL_STATE_CHANGE_CALLBACKS, Size),
    0x04
);
const_assert_eq!(
    core::mem::offset_of!(VMB_CHANNEL_STATE_CHANGE_CALLBACKS, EvtChannelOpened),
    0x08
);
const_assert_eq!(
    core::mem::offset_of!(VMB_CHANNEL_STATE_CHANGE_CALLBACKS, EvtChannelClosed),
    0x10
);
const_assert_eq!(
    core::mem::offset_of!(VMB_CHANNEL_STATE_CHANGE_CALLBACKS, EvtChannelSuspend),
    0x18
);
const_assert_eq!(
    core::mem::offset_of!(VMB_CHANNEL_STATE_CHANGE_CALLBACKS, EvtChannelStarted),
    0x20
);
const_assert_eq!(
    core::mem::offset_of!(VMB_CHANNEL_STATE_CHANGE_CALLBACKS, EvtChannelPostStarted),
    0x28
);

/// The `Version` that `VMB_CHANNEL_STATE_CHANGE_CALLBACKS_INIT` writes (kmcl.md §1.5).
pub const VMB_CHANNEL_STATE_CHANGE_CALLBACKS_VERSION_1: u32 = 1;

/// `VMB_CHANNEL_STATE_CHANGE_CALLBACKS_INIT`, an inline helper in the header (not an export):
/// every callback NULL, `Version` 1, `Size` 48 (kmcl.md §1.5). Wrong values make
/// `VmbChannelInitSetStateChangeCallbacks` fail with `STATUS_INVALID_PARAMETER_2`.
#[must_use]
pub const fn VMB_CHANNEL_STATE_CHANGE_CALLBACKS_INIT() -> VMB_CHANNEL_STATE_CHANGE_CALLBACKS {
    VMB_CHANNEL_STATE_CHANGE_CALLBACKS {
        Version: VMB_CHANNEL_STATE_CHANGE_CALLBACKS_VERSION_1,
        // 48: pinned above, so the cast cannot truncate.
        Size: size_of::<VMB_CHANNEL_STATE_CHANGE_CALLBACKS>() as u32,
        EvtChannelOpened: None,
        EvtChannelClosed: None,
        EvtChannelSuspend: None,
        EvtChannelStarted: None,
        EvtChannelPostStarted: None,
    }
}

// ---------------------------------------------------------------------------------------------
// `INTERFACE` (wdm.h, layout in kmcl.md §1.7).
// ---------------------------------------------------------------------------------------------

/// `PINTERFACE_REFERENCE` / `PINTERFACE_DEREFERENCE` (wdm.h): take or drop a reference on the
/// interface provider.
pub type PINTERFACE_REFERENCE = Option<unsafe extern "system" fn(Context: *mut c_void)>;
/// `PINTERFACE_DEREFERENCE`: the caller calls it once when done with a queried interface.
pub type PINTERFACE_DEREFERENCE = Option<unsafe extern "system" fn(Context: *mut c_void)>;

/// `INTERFACE` (wdm.h): the header of every table returned by `IRP_MN_QUERY_INTERFACE`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct INTERFACE {
    /// Size of the whole interface structure in bytes.
    pub Size: u16,
    /// Interface version.
    pub Version: u16,
    /// Provider context passed to the reference callbacks.
    pub Context: *mut c_void,
    /// Takes a reference.
    pub InterfaceReference: PINTERFACE_REFERENCE,
    /// Drops a reference.
    pub InterfaceDereference: PINTERFACE_DEREFERENCE,
}

// kmcl.md §1.7: Size @0, Version @2, Context @8, InterfaceReference @0x10,
// InterfaceDereference @0x18, 32 bytes.
assert_eq_size!(INTERFACE, [u8; 32]);
const_assert_eq!(core::mem::offset_of!(INTERFACE, Version), 2);
const_assert_eq!(core::mem::offset_of!(INTERFACE, Context), 8);
const_assert_eq!(core::mem::offset_of!(INTERFACE, InterfaceReference), 0x10);
const_assert_eq!(core::mem::offset_of!(INTERFACE, InterfaceDereference), 0x18);

// ---------------------------------------------------------------------------------------------
// Functions: `FN_*` / `PFN_*` types (kmcl.md §1.7 naming) and the direct imports.
// ---------------------------------------------------------------------------------------------

/// Declares, for each KMCL function, its `FN_*` type (a non-null function pointer), its
/// `PFN_*` type (the nullable pointer stored in the interface tables) and its direct import in
/// [`imports`].
macro_rules! kmcl_functions {
    ($(
        $(#[$meta:meta])*
        fn $name:ident / $fn_ty:ident / $pfn_ty:ident ($($arg:ident: $arg_ty:ty),* $(,)?) $(-> $ret:ty)?;
    )*) => {
        $(
            $(#[$meta])*
            #[doc = ""]
            #[doc = concat!("The C function type of `", stringify!($name), "`: a non-null pointer.")]
            pub type $fn_ty = unsafe extern "system" fn($($arg: $arg_ty),*) $(-> $ret)?;
            #[doc = concat!("`", stringify!($pfn_ty), "`: a nullable [`", stringify!($fn_ty), "`].")]
            pub type $pfn_ty = Option<$fn_ty>;
        )*

        /// Direct imports from the host library `vmbkmclr.sys`, by undecorated name.
        ///
        /// Microsoft's own host VSP (`vmswitch.sys`) imports these by name (kmcl.md §1.1, \[B\]).
        /// Whether a `vmbkmclr.lib` import library ships with the WDK, and whether linking
        /// against `vmbkmclr.sys` is officially supported, is **UNCONFIRMED**; `raw-dylib`
        /// needs no import library. The `link` attribute applies only to Windows targets, so
        /// on the Linux host these are plain undefined symbols: never call them there.
        pub mod imports {
            #[allow(unused_imports)]
            use super::*;

            #[cfg_attr(
                windows,
                link(name = "vmbkmclr.sys", kind = "raw-dylib", modifiers = "+verbatim")
            )]
            unsafe extern "system" {
                $(
                    #[doc = concat!("`", stringify!($name), "` (see [`super::", stringify!($fn_ty), "`]).")]
                    pub fn $name($($arg: $arg_ty),*) $(-> $ret)?;
                )*
            }
        }
    };
}

kmcl_functions! {
    /// `VmbChannelAllocate` (PASSIVE_LEVEL): a new, Disabled channel; a server passes
    /// `IsServer = TRUE` (there is no `VmbServerChannelAllocate`).
    fn VmbChannelAllocate / FN_VMB_CHANNEL_ALLOCATE / PFN_VMB_CHANNEL_ALLOCATE(
        ParentDeviceObject: *mut DEVICE_OBJECT, IsServer: BOOLEAN, Channel: *mut VMBCHANNEL
    ) -> NTSTATUS;
    /// `VmbChannelCleanup`: frees a channel; only after `VmbChannelDisable`.
    fn VmbChannelCleanup / FN_VMB_CHANNEL_CLEANUP / PFN_VMB_CHANNEL_CLEANUP(Channel: VMBCHANNEL);
    /// `VmbChannelCreateGpadlFromBuffer` (client).
    fn VmbChannelCreateGpadlFromBuffer / FN_VMB_CHANNEL_CREATE_GPADL_FROM_BUFFER
        / PFN_VMB_CHANNEL_CREATE_GPADL_FROM_BUFFER(
        Channel: VMBCHANNEL, Flags: u32, Buffer: *mut c_void, ByteCount: u32, GpadlHandle: *mut u32
    ) -> NTSTATUS;
    /// `VmbChannelCreateGpadlFromMdl` (client); `DataLengthWithinMdl` 0 means to the end.
    fn VmbChannelCreateGpadlFromMdl / FN_VMB_CHANNEL_CREATE_GPADL_FROM_MDL
        / PFN_VMB_CHANNEL_CREATE_GPADL_FROM_MDL(
        Channel: VMBCHANNEL, Flags: u32, Mdl: *mut MDL, StartOffsetWithinMdl: u32,
        DataLengthWithinMdl: u32, GpadlHandle: *mut u32
    ) -> NTSTATUS;
    /// `VmbChannelDeleteGpadl` (client); blocks while the GPADL is mapped.
    fn VmbChannelDeleteGpadl / FN_VMB_CHANNEL_DELETE_GPADL / PFN_VMB_CHANNEL_DELETE_GPADL(
        Channel: VMBCHANNEL, GpadlHandle: u32
    );
    /// `VmbChannelDisable`: blocks until the channel is fully torn down (revokes the offer).
    fn VmbChannelDisable / FN_VMB_CHANNEL_DISABLE / PFN_VMB_CHANNEL_DISABLE(Channel: VMBCHANNEL);
    /// `VmbChannelEnable`: on the host, makes the offer and returns at once.
    fn VmbChannelEnable / FN_VMB_CHANNEL_ENABLE / PFN_VMB_CHANNEL_ENABLE(Channel: VMBCHANNEL)
        -> NTSTATUS;
    /// `VmbChannelGetInterfaceInstance`.
    fn VmbChannelGetInterfaceInstance / FN_VMB_CHANNEL_GET_INTERFACE_INSTANCE
        / PFN_VMB_CHANNEL_GET_INTERFACE_INSTANCE(Channel: VMBCHANNEL, InterfaceInstance: *mut GUID);
    /// `VmbChannelGetMmioSpace`: docs only (\[D\]); not in the older header, so its direct
    /// import may not exist. The meaning of the two values is **UNCONFIRMED** (kmcl.md §3).
    fn VmbChannelGetMmioSpace / FN_VMB_CHANNEL_GET_MMIO_SPACE / PFN_VMB_CHANNEL_GET_MMIO_SPACE(
        Channel: VMBCHANNEL, MmioAddress: *mut u64, MmioSize: *mut u64
    );
    /// `VmbChannelGetPointer` (`FASTCALL` in the header): the value `VmbChannelSetPointer`
    /// stored.
    fn VmbChannelGetPointer / FN_VMB_CHANNEL_GET_POINTER / PFN_VMB_CHANNEL_GET_POINTER(
        Channel: VMBCHANNEL
    ) -> *mut c_void;
    /// `VmbChannelInitSetClientContextSize`.
    fn VmbChannelInitSetClientContextSize / FN_VMB_CHANNEL_INIT_SET_CLIENT_CONTEXT_SIZE
        / PFN_VMB_CHANNEL_INIT_SET_CLIENT_CONTEXT_SIZE(Channel: VMBCHANNEL, ContextSize: u32)
        -> NTSTATUS;
    /// `VmbChannelInitSetFlags` (`VMBUS_CHANNEL_INIT_FLAG_*`).
    fn VmbChannelInitSetFlags / FN_VMB_CHANNEL_INIT_SET_FLAGS / PFN_VMB_CHANNEL_INIT_SET_FLAGS(
        Channel: VMBCHANNEL, Flags: u32
    ) -> NTSTATUS;
    /// `VmbChannelInitSetFriendlyName`.
    fn VmbChannelInitSetFriendlyName / FN_VMB_CHANNEL_INIT_SET_FRIENDLY_NAME
        / PFN_VMB_CHANNEL_INIT_SET_FRIENDLY_NAME(Channel: VMBCHANNEL, Name: *const UNICODE_STRING)
        -> NTSTATUS;
    /// `VmbChannelInitSetMaximumExternalData`: both values > 0.
    fn VmbChannelInitSetMaximumExternalData / FN_VMB_CHANNEL_INIT_SET_MAXIMUM_EXTERNAL_DATA
        / PFN_VMB_CHANNEL_INIT_SET_MAXIMUM_EXTERNAL_DATA(
        Channel: VMBCHANNEL, DataSize: u32, ChainLength: u32
    ) -> NTSTATUS;
    /// `VmbChannelInitSetMaximumPacketSize`: > 0; the default is **UNCONFIRMED**.
    fn VmbChannelInitSetMaximumPacketSize / FN_VMB_CHANNEL_INIT_SET_MAXIMUM_PACKET_SIZE
        / PFN_VMB_CHANNEL_INIT_SET_MAXIMUM_PACKET_SIZE(Channel: VMBCHANNEL, PacketSize: u32)
        -> NTSTATUS;
    /// `VmbChannelInitSetProcessPacketCallbacks`; the second callback is optional.
    fn VmbChannelInitSetProcessPacketCallbacks / FN_VMB_CHANNEL_INIT_SET_PROCESS_PACKET_CALLBACKS
        / PFN_VMB_CHANNEL_INIT_SET_PROCESS_PACKET_CALLBACKS(
        Channel: VMBCHANNEL,
        ProcessPacketCallback: PFN_VMB_CHANNEL_PROCESS_PACKET,
        ProcessingCompleteCallback: PFN_VMB_CHANNEL_PROCESSING_COMPLETE
    ) -> NTSTATUS;
    /// `VmbChannelInitSetStateChangeCallbacks`: `STATUS_INVALID_PARAMETER_2` on a wrong
    /// Version/Size.
    fn VmbChannelInitSetStateChangeCallbacks / FN_VMB_CHANNEL_INIT_SET_STATE_CHANGE_CALLBACKS
        / PFN_VMB_CHANNEL_INIT_SET_STATE_CHANGE_CALLBACKS(
        Channel: VMBCHANNEL, StateChangeCallbacks: *mut VMB_CHANNEL_STATE_CHANGE_CALLBACKS
    ) -> NTSTATUS;
    /// `VmbChannelPacketComplete`: completes an incoming packet, with an optional reply.
    fn VmbChannelPacketComplete / FN_VMB_CHANNEL_PACKET_COMPLETE / PFN_VMB_CHANNEL_PACKET_COMPLETE(
        PacketCompletionContext: VMBPACKETCOMPLETION, PacketCompletionBuffer: *mut c_void,
        BufSize: u32
    );
    /// `VmbChannelPacketDeferToPassive` (`FASTCALL`): only inline from ProcessPacket.
    fn VmbChannelPacketDeferToPassive / FN_VMB_CHANNEL_PACKET_DEFER_TO_PASSIVE
        / PFN_VMB_CHANNEL_PACKET_DEFER_TO_PASSIVE(PacketCompletionContext: VMBPACKETCOMPLETION);
    /// `VmbChannelPacketFail` (`FASTCALL`): stops the queue. Whether a completion is still
    /// required afterwards is **UNCONFIRMED** (kmcl.md §2.3).
    fn VmbChannelPacketFail / FN_VMB_CHANNEL_PACKET_FAIL / PFN_VMB_CHANNEL_PACKET_FAIL(
        PacketCompletionContext: VMBPACKETCOMPLETION
    );
    /// `VmbChannelPacketGetExternalData`: may return `STATUS_PENDING`.
    fn VmbChannelPacketGetExternalData / FN_VMB_CHANNEL_PACKET_GET_EXTERNAL_DATA
        / PFN_VMB_CHANNEL_PACKET_GET_EXTERNAL_DATA(
        PacketCompletionContext: VMBPACKETCOMPLETION, Flags: u32, Mdl: *mut *mut MDL
    ) -> NTSTATUS;
    /// `VmbChannelPause`: blocks until Suspend has run and no incoming packet is outstanding.
    fn VmbChannelPause / FN_VMB_CHANNEL_PAUSE / PFN_VMB_CHANNEL_PAUSE(Channel: VMBCHANNEL);
    /// `VmbChannelSendSynchronousRequest`: the root may use it only with `*Timeout == 0` and
    /// without `WAIT_FOR_COMPLETION`. `Timeout` is a `PLARGE_INTEGER`.
    fn VmbChannelSendSynchronousRequest / FN_VMB_CHANNEL_SEND_SYNCHRONOUS_REQUEST
        / PFN_VMB_CHANNEL_SEND_SYNCHRONOUS_REQUEST(
        Channel: VMBCHANNEL, Buffer: *mut c_void, BufferSize: u32, ExternalDataMdl: *mut MDL,
        Flags: u32, CompletionBuffer: *mut c_void, CompletionBufferSize: *mut u32,
        Timeout: *mut i64
    ) -> NTSTATUS;
    /// `VmbChannelSetIncomingProcessingAtPassive`.
    fn VmbChannelSetIncomingProcessingAtPassive / FN_VMB_CHANNEL_SET_INCOMING_PROCESSING_AT_PASSIVE
        / PFN_VMB_CHANNEL_SET_INCOMING_PROCESSING_AT_PASSIVE(
        Channel: VMBCHANNEL, RequirePassive: BOOLEAN
    );
    /// `VmbChannelSetInterruptLatency` (100 ns units).
    fn VmbChannelSetInterruptLatency / FN_VMB_CHANNEL_SET_INTERRUPT_LATENCY
        / PFN_VMB_CHANNEL_SET_INTERRUPT_LATENCY(
        Channel: VMBCHANNEL, Latency: u16, OriginalLatency: *mut u16
    ) -> NTSTATUS;
    /// `VmbChannelSetPointer` (`FASTCALL`): the channel's context pointer.
    fn VmbChannelSetPointer / FN_VMB_CHANNEL_SET_POINTER / PFN_VMB_CHANNEL_SET_POINTER(
        Channel: VMBCHANNEL, Pointer: *mut c_void
    );
    /// `VmbChannelSetTransactionQuota`: caps uncompleted incoming packets; > 0.
    fn VmbChannelSetTransactionQuota / FN_VMB_CHANNEL_SET_TRANSACTION_QUOTA
        / PFN_VMB_CHANNEL_SET_TRANSACTION_QUOTA(Channel: VMBCHANNEL, Quota: u32);
    /// `VmbChannelSizeofPacket`: the buffer size `VmbPacketInitialize` needs.
    fn VmbChannelSizeofPacket / FN_VMB_CHANNEL_SIZEOF_PACKET / PFN_VMB_CHANNEL_SIZEOF_PACKET(
        Channel: VMBCHANNEL
    ) -> u32;
    /// `VmbChannelStart`: leave Paused (a host must call it explicitly).
    fn VmbChannelStart / FN_VMB_CHANNEL_START / PFN_VMB_CHANNEL_START(Channel: VMBCHANNEL);
    /// `VmbClientChannelInitSetRingBufferPageCount` (client only).
    fn VmbClientChannelInitSetRingBufferPageCount
        / FN_VMB_CLIENT_CHANNEL_INIT_SET_RING_BUFFER_PAGE_COUNT
        / PFN_VMB_CLIENT_CHANNEL_INIT_SET_RING_BUFFER_PAGE_COUNT(
        Channel: VMBCHANNEL, IncomingPageCount: u32, OutgoingPageCount: u32
    ) -> NTSTATUS;
    /// `VmbClientChannelInitSetTargetPnp` (client only).
    fn VmbClientChannelInitSetTargetPnp / FN_VMB_CLIENT_CHANNEL_INIT_SET_TARGET_PNP
        / PFN_VMB_CLIENT_CHANNEL_INIT_SET_TARGET_PNP(
        Channel: VMBCHANNEL, InterfaceType: *const GUID, InterfaceInstance: *const GUID,
        PnpFailureCallback: PFN_VMB_CHANNEL_PNP_FAILURE
    ) -> NTSTATUS;
    /// `VmbPacketAllocate`: a packet object from the channel's lookaside; NULL on failure.
    fn VmbPacketAllocate / FN_VMB_PACKET_ALLOCATE / PFN_VMB_PACKET_ALLOCATE(Channel: VMBCHANNEL)
        -> VMBPACKET;
    /// `VmbPacketFree`.
    fn VmbPacketFree / FN_VMB_PACKET_FREE / PFN_VMB_PACKET_FREE(VmbPacket: VMBPACKET);
    /// `VmbPacketGetChannel` (`FASTCALL`).
    fn VmbPacketGetChannel / FN_VMB_PACKET_GET_CHANNEL / PFN_VMB_PACKET_GET_CHANNEL(
        PacketObject: VMBPACKET
    ) -> VMBCHANNEL;
    /// `VmbPacketGetPointer` (`FASTCALL`).
    fn VmbPacketGetPointer / FN_VMB_PACKET_GET_POINTER / PFN_VMB_PACKET_GET_POINTER(
        PacketObject: VMBPACKET
    ) -> *mut c_void;
    /// `VmbPacketInitialize`: a packet object in caller memory.
    fn VmbPacketInitialize / FN_VMB_PACKET_INITIALIZE / PFN_VMB_PACKET_INITIALIZE(
        Channel: VMBCHANNEL, VmbPacket: VMBPACKET, ByteCount: u32
    ) -> NTSTATUS;
    /// `VmbPacketSend`.
    fn VmbPacketSend / FN_VMB_PACKET_SEND / PFN_VMB_PACKET_SEND(
        PacketObject: VMBPACKET, Buffer: *mut c_void, BufferLength: u32,
        ExternalDataMdl: *mut MDL, Flags: u32
    ) -> NTSTATUS;
    /// `VmbPacketSendWithExternalMdl`: `MdlLength` 0 means all; needs `WAIT_FOR_COMPLETION`.
    fn VmbPacketSendWithExternalMdl / FN_VMB_PACKET_SEND_WITH_EXTERNAL_MDL
        / PFN_VMB_PACKET_SEND_WITH_EXTERNAL_MDL(
        PacketObject: VMBPACKET, Buffer: *mut c_void, BufferLength: u32,
        ExternalDataMdl: *mut MDL, MdlOffset: u32, MdlLength: u32, Flags: u32
    ) -> NTSTATUS;
    /// `VmbPacketSendWithExternalPfns`: six parameters, no `PfnOffset` (kmcl.md §3).
    fn VmbPacketSendWithExternalPfns / FN_VMB_PACKET_SEND_WITH_EXTERNAL_PFNS
        / PFN_VMB_PACKET_SEND_WITH_EXTERNAL_PFNS(
        PacketObject: VMBPACKET, Buffer: *mut c_void, BufferLength: u32,
        ExternalDataPfns: *mut usize, PfnLength: u32, Flags: u32
    ) -> NTSTATUS;
    /// `VmbPacketSetCompletionRoutine`.
    fn VmbPacketSetCompletionRoutine / FN_VMB_PACKET_SET_COMPLETION_ROUTINE
        / PFN_VMB_PACKET_SET_COMPLETION_ROUTINE(
        PacketObject: VMBPACKET, CompletionRoutine: PFN_VMB_PACKET_COMPLETION_ROUTINE
    );
    /// `VmbPacketSetPointer` (`FASTCALL`).
    fn VmbPacketSetPointer / FN_VMB_PACKET_SET_POINTER / PFN_VMB_PACKET_SET_POINTER(
        PacketObject: VMBPACKET, Pointer: *mut c_void
    );

    // Server-only methods (KMCL_SERVER_ONLY_METHODS, kmcl.md §1.6 and §1.7).

    /// `VmbChannelMapGpadl` (server).
    fn VmbChannelMapGpadl / FN_VMB_CHANNEL_MAP_GPADL / PFN_VMB_CHANNEL_MAP_GPADL(
        Channel: VMBCHANNEL, Flags: u32, GpadlHandle: u32, Mdl: *mut *mut MDL
    ) -> NTSTATUS;
    /// `VmbChannelRestoreFromBuffer`: `STATUS_MORE_PROCESSING_REQUIRED` means more chunks.
    fn VmbChannelRestoreFromBuffer / FN_VMB_CHANNEL_RESTORE_FROM_BUFFER
        / PFN_VMB_CHANNEL_RESTORE_FROM_BUFFER(
        Channel: VMBCHANNEL, Buffer: *mut c_void, BufferSize: u32
    ) -> NTSTATUS;
    /// `VmbChannelSaveBegin`.
    fn VmbChannelSaveBegin / FN_VMB_CHANNEL_SAVE_BEGIN / PFN_VMB_CHANNEL_SAVE_BEGIN(
        Channel: VMBCHANNEL
    ) -> NTSTATUS;
    /// `VmbChannelSaveContinue`: `STATUS_BUFFER_OVERFLOW` = chunk written, call again;
    /// `STATUS_BUFFER_TOO_SMALL` = give at least `*BytesRequired`.
    fn VmbChannelSaveContinue / FN_VMB_CHANNEL_SAVE_CONTINUE / PFN_VMB_CHANNEL_SAVE_CONTINUE(
        Channel: VMBCHANNEL, SaveBuffer: *mut c_void, SaveBufferSize: u32, BytesFilled: *mut u32,
        BytesRequired: *mut u32
    ) -> NTSTATUS;
    /// `VmbChannelSaveEnd`: always, to free the save context.
    fn VmbChannelSaveEnd / FN_VMB_CHANNEL_SAVE_END / PFN_VMB_CHANNEL_SAVE_END(Channel: VMBCHANNEL);
    /// `VmbChannelUnmapGpadl` (server).
    fn VmbChannelUnmapGpadl / FN_VMB_CHANNEL_UNMAP_GPADL / PFN_VMB_CHANNEL_UNMAP_GPADL(
        Channel: VMBCHANNEL, GpadlHandle: u32
    );
    /// `VmbConvertVmbusHandleToKernelHandle`: in the VM worker process's context; the caller
    /// closes the kernel handle.
    fn VmbConvertVmbusHandleToKernelHandle / FN_VMB_CONVERT_VMBUS_HANDLE_TO_KERNEL_HANDLE
        / PFN_VMB_CONVERT_VMBUS_HANDLE_TO_KERNEL_HANDLE(
        VmbusHandle: HANDLE, KernelHandle: *mut HANDLE
    ) -> NTSTATUS;
    /// `VmbPacketRestore`: recreates a packet object from KMCL's saved state (`LibBuf`).
    fn VmbPacketRestore / FN_VMB_PACKET_RESTORE / PFN_VMB_PACKET_RESTORE(
        PacketObject: VMBPACKET, Buffer: *mut c_void, BufferSize: u32
    ) -> NTSTATUS;
    /// `VmbServerChannelInitSetFlags` (`VMBUS_SERVER_CHANNEL_INIT_FLAG_*`).
    fn VmbServerChannelInitSetFlags / FN_VMB_SERVER_CHANNEL_INIT_SET_FLAGS
        / PFN_VMB_SERVER_CHANNEL_INIT_SET_FLAGS(Channel: VMBCHANNEL, Flags: u32) -> NTSTATUS;
    /// `VmbServerChannelInitSetMmioMegabytes`.
    fn VmbServerChannelInitSetMmioMegabytes / FN_VMB_SERVER_CHANNEL_INIT_SET_MMIO_MEGABYTES
        / PFN_VMB_SERVER_CHANNEL_INIT_SET_MMIO_MEGABYTES(
        Channel: VMBCHANNEL, MmioMegabytes: u16, MmioMegabytesOptional: u16
    ) -> NTSTATUS;
    /// `VmbServerChannelInitSetSaveRestorePacketCallbacks`.
    fn VmbServerChannelInitSetSaveRestorePacketCallbacks
        / FN_VMB_SERVER_CHANNEL_INIT_SET_SAVE_RESTORE_PACKET_CALLBACKS
        / PFN_VMB_SERVER_CHANNEL_INIT_SET_SAVE_RESTORE_PACKET_CALLBACKS(
        Channel: VMBCHANNEL, SavePacketCallback: PFN_VMB_CHANNEL_SAVE_PACKET,
        RestorePacketCallback: PFN_VMB_CHANNEL_RESTORE_PACKET
    ) -> NTSTATUS;
    /// `VmbServerChannelInitSetTargetInterfaceId`: both GUIDs **by value** (Win64 passes each
    /// as a pointer to a caller copy, which is what Rust's `extern "system"` does).
    fn VmbServerChannelInitSetTargetInterfaceId / FN_VMB_SERVER_CHANNEL_INIT_SET_TARGET_INTERFACE_ID
        / PFN_VMB_SERVER_CHANNEL_INIT_SET_TARGET_INTERFACE_ID(
        Channel: VMBCHANNEL, InterfaceType: GUID, InterfaceInstance: GUID
    ) -> NTSTATUS;
    /// `VmbServerChannelInitSetTargetVtl`: docs only (\[D\]); its direct import may not exist.
    fn VmbServerChannelInitSetTargetVtl / FN_VMB_SERVER_CHANNEL_INIT_SET_TARGET_VTL
        / PFN_VMB_SERVER_CHANNEL_INIT_SET_TARGET_VTL(Channel: VMBCHANNEL, TargetVtl: u8)
        -> NTSTATUS;
    /// `VmbServerChannelInitSetVmbusHandle`: binds the channel to one VM's VMBus.
    fn VmbServerChannelInitSetVmbusHandle / FN_VMB_SERVER_CHANNEL_INIT_SET_VMBUS_HANDLE
        / PFN_VMB_SERVER_CHANNEL_INIT_SET_VMBUS_HANDLE(Channel: VMBCHANNEL, VmbusHandle: HANDLE)
        -> NTSTATUS;
}

// ---------------------------------------------------------------------------------------------
// Interface tables (kmcl.md §1.7, order [D], sizes [B]/[I]).
// ---------------------------------------------------------------------------------------------

/// `KMCL_CLIENT_INTERFACE_V1`: `INTERFACE` then 41 function pointers, alphabetical.
///
/// 360 bytes, the size dxgkrnl passes in its client query (kmcl.md §1.1, \[B\]).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct KMCL_CLIENT_INTERFACE_V1 {
    /// The anonymous `INTERFACE` member the C++ header inherits.
    pub InterfaceHeader: INTERFACE,
    /// See [`FN_VMB_CHANNEL_ALLOCATE`].
    pub VmbChannelAllocate: PFN_VMB_CHANNEL_ALLOCATE,
    /// See [`FN_VMB_CHANNEL_CLEANUP`].
    pub VmbChannelCleanup: PFN_VMB_CHANNEL_CLEANUP,
    /// See [`FN_VMB_CHANNEL_CREATE_GPADL_FROM_BUFFER`].
    pub VmbChannelCreateGpadlFromBuffer: PFN_VMB_CHANNEL_CREATE_GPADL_FROM_BUFFER,
    /// See [`FN_VMB_CHANNEL_CREATE_GPADL_FROM_MDL`].
    pub VmbChannelCreateGpadlFromMdl: PFN_VMB_CHANNEL_CREATE_GPADL_FROM_MDL,
    /// See [`FN_VMB_CHANNEL_DELETE_GPADL`].
    pub VmbChannelDeleteGpadl: PFN_VMB_CHANNEL_DELETE_GPADL,
    /// See [`FN_VMB_CHANNEL_DISABLE`].
    pub VmbChannelDisable: PFN_VMB_CHANNEL_DISABLE,
    /// See [`FN_VMB_CHANNEL_ENABLE`].
    pub VmbChannelEnable: PFN_VMB_CHANNEL_ENABLE,
    /// See [`FN_VMB_CHANNEL_GET_INTERFACE_INSTANCE`].
    pub VmbChannelGetInterfaceInstance: PFN_VMB_CHANNEL_GET_INTERFACE_INSTANCE,
    /// See [`FN_VMB_CHANNEL_GET_MMIO_SPACE`].
    pub VmbChannelGetMmioSpace: PFN_VMB_CHANNEL_GET_MMIO_SPACE,
    /// See [`FN_VMB_CHANNEL_GET_POINTER`].
    pub VmbChannelGetPointer: PFN_VMB_CHANNEL_GET_POINTER,
    /// See [`FN_VMB_CHANNEL_INIT_SET_CLIENT_CONTEXT_SIZE`].
    pub VmbChannelInitSetClientContextSize: PFN_VMB_CHANNEL_INIT_SET_CLIENT_CONTEXT_SIZE,
    /// See [`FN_VMB_CHANNEL_INIT_SET_FLAGS`].
    pub VmbChannelInitSetFlags: PFN_VMB_CHANNEL_INIT_SET_FLAGS,
    /// See [`FN_VMB_CHANNEL_INIT_SET_FRIENDLY_NAME`].
    pub VmbChannelInitSetFriendlyName: PFN_VMB_CHANNEL_INIT_SET_FRIENDLY_NAME,
    /// See [`FN_VMB_CHANNEL_INIT_SET_MAXIMUM_EXTERNAL_DATA`].
    pub VmbChannelInitSetMaximumExternalData: PFN_VMB_CHANNEL_INIT_SET_MAXIMUM_EXTERNAL_DATA,
    /// See [`FN_VMB_CHANNEL_INIT_SET_MAXIMUM_PACKET_SIZE`].
    pub VmbChannelInitSetMaximumPacketSize: PFN_VMB_CHANNEL_INIT_SET_MAXIMUM_PACKET_SIZE,
    /// See [`FN_VMB_CHANNEL_INIT_SET_PROCESS_PACKET_CALLBACKS`].
    pub VmbChannelInitSetProcessPacketCallbacks: PFN_VMB_CHANNEL_INIT_SET_PROCESS_PACKET_CALLBACKS,
    /// See [`FN_VMB_CHANNEL_INIT_SET_STATE_CHANGE_CALLBACKS`].
    pub VmbChannelInitSetStateChangeCallbacks: PFN_VMB_CHANNEL_INIT_SET_STATE_CHANGE_CALLBACKS,
    /// See [`FN_VMB_CHANNEL_PACKET_COMPLETE`].
    pub VmbChannelPacketComplete: PFN_VMB_CHANNEL_PACKET_COMPLETE,
    /// See [`FN_VMB_CHANNEL_PACKET_DEFER_TO_PASSIVE`].
    pub VmbChannelPacketDeferToPassive: PFN_VMB_CHANNEL_PACKET_DEFER_TO_PASSIVE,
    /// See [`FN_VMB_CHANNEL_PACKET_FAIL`].
    pub VmbChannelPacketFail: PFN_VMB_CHANNEL_PACKET_FAIL,
    /// See [`FN_VMB_CHANNEL_PACKET_GET_EXTERNAL_DATA`].
    pub VmbChannelPacketGetExternalData: PFN_VMB_CHANNEL_PACKET_GET_EXTERNAL_DATA,
    /// See [`FN_VMB_CHANNEL_PAUSE`].
    pub VmbChannelPause: PFN_VMB_CHANNEL_PAUSE,
    /// See [`FN_VMB_CHANNEL_SEND_SYNCHRONOUS_REQUEST`].
    pub VmbChannelSendSynchronousRequest: PFN_VMB_CHANNEL_SEND_SYNCHRONOUS_REQUEST,
    /// See [`FN_VMB_CHANNEL_SET_INCOMING_PROCESSING_AT_PASSIVE`].
    pub VmbChannelSetIncomingProcessingAtPassive:
        PFN_VMB_CHANNEL_SET_INCOMING_PROCESSING_AT_PASSIVE,
    /// See [`FN_VMB_CHANNEL_SET_INTERRUPT_LATENCY`].
    pub VmbChannelSetInterruptLatency: PFN_VMB_CHANNEL_SET_INTERRUPT_LATENCY,
    /// See [`FN_VMB_CHANNEL_SET_POINTER`].
    pub VmbChannelSetPointer: PFN_VMB_CHANNEL_SET_POINTER,
    /// See [`FN_VMB_CHANNEL_SET_TRANSACTION_QUOTA`].
    pub VmbChannelSetTransactionQuota: PFN_VMB_CHANNEL_SET_TRANSACTION_QUOTA,
    /// See [`FN_VMB_CHANNEL_SIZEOF_PACKET`].
    pub VmbChannelSizeofPacket: PFN_VMB_CHANNEL_SIZEOF_PACKET,
    /// See [`FN_VMB_CHANNEL_START`].
    pub VmbChannelStart: PFN_VMB_CHANNEL_START,
    /// See [`FN_VMB_CLIENT_CHANNEL_INIT_SET_RING_BUFFER_PAGE_COUNT`].
    pub VmbClientChannelInitSetRingBufferPageCount:
        PFN_VMB_CLIENT_CHANNEL_INIT_SET_RING_BUFFER_PAGE_COUNT,
    /// See [`FN_VMB_CLIENT_CHANNEL_INIT_SET_TARGET_PNP`].
    pub VmbClientChannelInitSetTargetPnp: PFN_VMB_CLIENT_CHANNEL_INIT_SET_TARGET_PNP,
    /// See [`FN_VMB_PACKET_ALLOCATE`].
    pub VmbPacketAllocate: PFN_VMB_PACKET_ALLOCATE,
    /// See [`FN_VMB_PACKET_FREE`].
    pub VmbPacketFree: PFN_VMB_PACKET_FREE,
    /// See [`FN_VMB_PACKET_GET_CHANNEL`].
    pub VmbPacketGetChannel: PFN_VMB_PACKET_GET_CHANNEL,
    /// See [`FN_VMB_PACKET_GET_POINTER`].
    pub VmbPacketGetPointer: PFN_VMB_PACKET_GET_POINTER,
    /// See [`FN_VMB_PACKET_INITIALIZE`].
    pub VmbPacketInitialize: PFN_VMB_PACKET_INITIALIZE,
    /// See [`FN_VMB_PACKET_SEND`].
    pub VmbPacketSend: PFN_VMB_PACKET_SEND,
    /// See [`FN_VMB_PACKET_SEND_WITH_EXTERNAL_MDL`].
    pub VmbPacketSendWithExternalMdl: PFN_VMB_PACKET_SEND_WITH_EXTERNAL_MDL,
    /// See [`FN_VMB_PACKET_SEND_WITH_EXTERNAL_PFNS`].
    pub VmbPacketSendWithExternalPfns: PFN_VMB_PACKET_SEND_WITH_EXTERNAL_PFNS,
    /// See [`FN_VMB_PACKET_SET_COMPLETION_ROUTINE`].
    pub VmbPacketSetCompletionRoutine: PFN_VMB_PACKET_SET_COMPLETION_ROUTINE,
    /// See [`FN_VMB_PACKET_SET_POINTER`].
    pub VmbPacketSetPointer: PFN_VMB_PACKET_SET_POINTER,
}

/// `KMCL_SERVER_ONLY_METHODS`: 14 function pointers, alphabetical, no `INTERFACE` header.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct KMCL_SERVER_ONLY_METHODS {
    /// See [`FN_VMB_CHANNEL_MAP_GPADL`].
    pub VmbChannelMapGpadl: PFN_VMB_CHANNEL_MAP_GPADL,
    /// See [`FN_VMB_CHANNEL_RESTORE_FROM_BUFFER`].
    pub VmbChannelRestoreFromBuffer: PFN_VMB_CHANNEL_RESTORE_FROM_BUFFER,
    /// See [`FN_VMB_CHANNEL_SAVE_BEGIN`].
    pub VmbChannelSaveBegin: PFN_VMB_CHANNEL_SAVE_BEGIN,
    /// See [`FN_VMB_CHANNEL_SAVE_CONTINUE`].
    pub VmbChannelSaveContinue: PFN_VMB_CHANNEL_SAVE_CONTINUE,
    /// See [`FN_VMB_CHANNEL_SAVE_END`].
    pub VmbChannelSaveEnd: PFN_VMB_CHANNEL_SAVE_END,
    /// See [`FN_VMB_CHANNEL_UNMAP_GPADL`].
    pub VmbChannelUnmapGpadl: PFN_VMB_CHANNEL_UNMAP_GPADL,
    /// See [`FN_VMB_CONVERT_VMBUS_HANDLE_TO_KERNEL_HANDLE`].
    pub VmbConvertVmbusHandleToKernelHandle: PFN_VMB_CONVERT_VMBUS_HANDLE_TO_KERNEL_HANDLE,
    /// See [`FN_VMB_PACKET_RESTORE`].
    pub VmbPacketRestore: PFN_VMB_PACKET_RESTORE,
    /// See [`FN_VMB_SERVER_CHANNEL_INIT_SET_FLAGS`].
    pub VmbServerChannelInitSetFlags: PFN_VMB_SERVER_CHANNEL_INIT_SET_FLAGS,
    /// See [`FN_VMB_SERVER_CHANNEL_INIT_SET_MMIO_MEGABYTES`].
    pub VmbServerChannelInitSetMmioMegabytes: PFN_VMB_SERVER_CHANNEL_INIT_SET_MMIO_MEGABYTES,
    /// See [`FN_VMB_SERVER_CHANNEL_INIT_SET_SAVE_RESTORE_PACKET_CALLBACKS`].
    pub VmbServerChannelInitSetSaveRestorePacketCallbacks:
        PFN_VMB_SERVER_CHANNEL_INIT_SET_SAVE_RESTORE_PACKET_CALLBACKS,
    /// See [`FN_VMB_SERVER_CHANNEL_INIT_SET_TARGET_INTERFACE_ID`].
    pub VmbServerChannelInitSetTargetInterfaceId:
        PFN_VMB_SERVER_CHANNEL_INIT_SET_TARGET_INTERFACE_ID,
    /// See [`FN_VMB_SERVER_CHANNEL_INIT_SET_TARGET_VTL`].
    pub VmbServerChannelInitSetTargetVtl: PFN_VMB_SERVER_CHANNEL_INIT_SET_TARGET_VTL,
    /// See [`FN_VMB_SERVER_CHANNEL_INIT_SET_VMBUS_HANDLE`].
    pub VmbServerChannelInitSetVmbusHandle: PFN_VMB_SERVER_CHANNEL_INIT_SET_VMBUS_HANDLE,
}

/// `KMCL_SERVER_INTERFACE_V1`: the client table followed by the server-only methods (two
/// anonymous members in C). 472 bytes (kmcl.md §1.7, \[I\] from the confirmed order and sizes).
///
/// This is the public server interface. Whether the host's `\Device\RootVMBus\kmcl_interface`
/// answers a query for it is **UNCONFIRMED**: only a private, larger (792-byte) server table was
/// observed there (kmcl.md §1.1).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct KMCL_SERVER_INTERFACE_V1 {
    /// The anonymous `KMCL_CLIENT_INTERFACE_V1` member.
    pub Client: KMCL_CLIENT_INTERFACE_V1,
    /// The anonymous `KMCL_SERVER_ONLY_METHODS` member.
    pub ServerOnly: KMCL_SERVER_ONLY_METHODS,
}

/// Shorthand for the offset pins below.
macro_rules! offset {
    ($ty:ty, $($field:tt).+) => {
        core::mem::offset_of!($ty, $($field).+)
    };
}

// kmcl.md §1.7: INTERFACE (32) + 41 pointers = 360 (0x168), the size dxgkrnl passes [B].
assert_eq_size!(KMCL_CLIENT_INTERFACE_V1, [u8; 360]);
// kmcl.md §1.7: 14 pointers = 112.
assert_eq_size!(KMCL_SERVER_ONLY_METHODS, [u8; 112]);
// kmcl.md §1.7: 360 + 112 = 472 (0x1D8).
assert_eq_size!(KMCL_SERVER_INTERFACE_V1, [u8; 472]);

// kmcl.md §1.7, client table offsets (column "off").
const_assert_eq!(offset!(KMCL_CLIENT_INTERFACE_V1, VmbChannelAllocate), 0x020);
const_assert_eq!(offset!(KMCL_CLIENT_INTERFACE_V1, VmbChannelCleanup), 0x028);
const_assert_eq!(
    offset!(KMCL_CLIENT_INTERFACE_V1, VmbChannelCreateGpadlFromBuffer),
    0x030
);
const_assert_eq!(
    offset!(KMCL_CLIENT_INTERFACE_V1, VmbChannelCreateGpadlFromMdl),
    0x038
);
const_assert_eq!(
    offset!(KMCL_CLIENT_INTERFACE_V1, VmbChannelDeleteGpadl),
    0x040
);
const_assert_eq!(offset!(KMCL_CLIENT_INTERFACE_V1, VmbChannelDisable), 0x048);
const_assert_eq!(offset!(KMCL_CLIENT_INTERFACE_V1, VmbChannelEnable), 0x050);
const_assert_eq!(
    offset!(KMCL_CLIENT_INTERFACE_V1, VmbChannelGetInterfaceInstance),
    0x058
);
const_assert_eq!(
    offset!(KMCL_CLIENT_INTERFACE_V1, VmbChannelGetMmioSpace),
    0x060
);
const_assert_eq!(
    offset!(KMCL_CLIENT_INTERFACE_V1, VmbChannelGetPointer),
    0x068
);
const_assert_eq!(
    offset!(KMCL_CLIENT_INTERFACE_V1, VmbChannelInitSetClientContextSize),
    0x070
);
const_assert_eq!(
    offset!(KMCL_CLIENT_INTERFACE_V1, VmbChannelInitSetFlags),
    0x078
);
const_assert_eq!(
    offset!(KMCL_CLIENT_INTERFACE_V1, VmbChannelInitSetFriendlyName),
    0x080
);
const_assert_eq!(
    offset!(
        KMCL_CLIENT_INTERFACE_V1,
        VmbChannelInitSetMaximumExternalData
    ),
    0x088
);
const_assert_eq!(
    offset!(KMCL_CLIENT_INTERFACE_V1, VmbChannelInitSetMaximumPacketSize),
    0x090
);
const_assert_eq!(
    offset!(
        KMCL_CLIENT_INTERFACE_V1,
        VmbChannelInitSetProcessPacketCallbacks
    ),
    0x098
);
const_assert_eq!(
    offset!(
        KMCL_CLIENT_INTERFACE_V1,
        VmbChannelInitSetStateChangeCallbacks
    ),
    0x0A0
);
const_assert_eq!(
    offset!(KMCL_CLIENT_INTERFACE_V1, VmbChannelPacketComplete),
    0x0A8
);
const_assert_eq!(
    offset!(KMCL_CLIENT_INTERFACE_V1, VmbChannelPacketDeferToPassive),
    0x0B0
);
const_assert_eq!(
    offset!(KMCL_CLIENT_INTERFACE_V1, VmbChannelPacketFail),
    0x0B8
);
const_assert_eq!(
    offset!(KMCL_CLIENT_INTERFACE_V1, VmbChannelPacketGetExternalData),
    0x0C0
);
const_assert_eq!(offset!(KMCL_CLIENT_INTERFACE_V1, VmbChannelPause), 0x0C8);
const_assert_eq!(
    offset!(KMCL_CLIENT_INTERFACE_V1, VmbChannelSendSynchronousRequest),
    0x0D0
);
const_assert_eq!(
    offset!(
        KMCL_CLIENT_INTERFACE_V1,
        VmbChannelSetIncomingProcessingAtPassive
    ),
    0x0D8
);
const_assert_eq!(
    offset!(KMCL_CLIENT_INTERFACE_V1, VmbChannelSetInterruptLatency),
    0x0E0
);
const_assert_eq!(
    offset!(KMCL_CLIENT_INTERFACE_V1, VmbChannelSetPointer),
    0x0E8
);
const_assert_eq!(
    offset!(KMCL_CLIENT_INTERFACE_V1, VmbChannelSetTransactionQuota),
    0x0F0
);
const_assert_eq!(
    offset!(KMCL_CLIENT_INTERFACE_V1, VmbChannelSizeofPacket),
    0x0F8
);
const_assert_eq!(offset!(KMCL_CLIENT_INTERFACE_V1, VmbChannelStart), 0x100);
const_assert_eq!(
    offset!(
        KMCL_CLIENT_INTERFACE_V1,
        VmbClientChannelInitSetRingBufferPageCount
    ),
    0x108
);
const_assert_eq!(
    offset!(KMCL_CLIENT_INTERFACE_V1, VmbClientChannelInitSetTargetPnp),
    0x110
);
const_assert_eq!(offset!(KMCL_CLIENT_INTERFACE_V1, VmbPacketAllocate), 0x118);
const_assert_eq!(offset!(KMCL_CLIENT_INTERFACE_V1, VmbPacketFree), 0x120);
const_assert_eq!(
    offset!(KMCL_CLIENT_INTERFACE_V1, VmbPacketGetChannel),
    0x128
);
const_assert_eq!(
    offset!(KMCL_CLIENT_INTERFACE_V1, VmbPacketGetPointer),
    0x130
);
const_assert_eq!(
    offset!(KMCL_CLIENT_INTERFACE_V1, VmbPacketInitialize),
    0x138
);
const_assert_eq!(offset!(KMCL_CLIENT_INTERFACE_V1, VmbPacketSend), 0x140);
const_assert_eq!(
    offset!(KMCL_CLIENT_INTERFACE_V1, VmbPacketSendWithExternalMdl),
    0x148
);
const_assert_eq!(
    offset!(KMCL_CLIENT_INTERFACE_V1, VmbPacketSendWithExternalPfns),
    0x150
);
const_assert_eq!(
    offset!(KMCL_CLIENT_INTERFACE_V1, VmbPacketSetCompletionRoutine),
    0x158
);
const_assert_eq!(
    offset!(KMCL_CLIENT_INTERFACE_V1, VmbPacketSetPointer),
    0x160
);

// kmcl.md §1.7, server-only offsets as embedded in KMCL_SERVER_INTERFACE_V1.
const_assert_eq!(offset!(KMCL_SERVER_INTERFACE_V1, ServerOnly), 0x168);
const_assert_eq!(
    offset!(KMCL_SERVER_INTERFACE_V1, ServerOnly.VmbChannelMapGpadl),
    0x168
);
const_assert_eq!(
    offset!(
        KMCL_SERVER_INTERFACE_V1,
        ServerOnly.VmbChannelRestoreFromBuffer
    ),
    0x170
);
const_assert_eq!(
    offset!(KMCL_SERVER_INTERFACE_V1, ServerOnly.VmbChannelSaveBegin),
    0x178
);
const_assert_eq!(
    offset!(KMCL_SERVER_INTERFACE_V1, ServerOnly.VmbChannelSaveContinue),
    0x180
);
const_assert_eq!(
    offset!(KMCL_SERVER_INTERFACE_V1, ServerOnly.VmbChannelSaveEnd),
    0x188
);
const_assert_eq!(
    offset!(KMCL_SERVER_INTERFACE_V1, ServerOnly.VmbChannelUnmapGpadl),
    0x190
);
const_assert_eq!(
    offset!(
        KMCL_SERVER_INTERFACE_V1,
        ServerOnly.VmbConvertVmbusHandleToKernelHandle
    ),
    0x198
);
const_assert_eq!(
    offset!(KMCL_SERVER_INTERFACE_V1, ServerOnly.VmbPacketRestore),
    0x1A0
);
const_assert_eq!(
    offset!(
        KMCL_SERVER_INTERFACE_V1,
        ServerOnly.VmbServerChannelInitSetFlags
    ),
    0x1A8
);
const_assert_eq!(
    offset!(
        KMCL_SERVER_INTERFACE_V1,
        ServerOnly.VmbServerChannelInitSetMmioMegabytes
    ),
    0x1B0
);
const_assert_eq!(
    offset!(
        KMCL_SERVER_INTERFACE_V1,
        ServerOnly.VmbServerChannelInitSetSaveRestorePacketCallbacks
    ),
    0x1B8
);
const_assert_eq!(
    offset!(
        KMCL_SERVER_INTERFACE_V1,
        ServerOnly.VmbServerChannelInitSetTargetInterfaceId
    ),
    0x1C0
);
const_assert_eq!(
    offset!(
        KMCL_SERVER_INTERFACE_V1,
        ServerOnly.VmbServerChannelInitSetTargetVtl
    ),
    0x1C8
);
const_assert_eq!(
    offset!(
        KMCL_SERVER_INTERFACE_V1,
        ServerOnly.VmbServerChannelInitSetVmbusHandle
    ),
    0x1D0
);

impl KMCL_SERVER_INTERFACE_V1 {
    /// A table with every pointer NULL and the `INTERFACE` header describing this structure
    /// (`Size` 472, `Version` [`KMCL_SERVER_INTERFACE_VERSION_V1`]): what a caller hands to
    /// `IRP_MN_QUERY_INTERFACE`, and what a simulated host starts from before filling in its
    /// functions.
    #[must_use]
    pub const fn empty() -> Self {
        Self {
            Client: KMCL_CLIENT_INTERFACE_V1 {
                InterfaceHeader: INTERFACE {
                    // 472: pinned above, fits in a u16.
                    Size: size_of::<Self>() as u16,
                    Version: KMCL_SERVER_INTERFACE_VERSION_V1,
                    Context: core::ptr::null_mut(),
                    InterfaceReference: None,
                    InterfaceDereference: None,
                },
                VmbChannelAllocate: None,
                VmbChannelCleanup: None,
                VmbChannelCreateGpadlFromBuffer: None,
                VmbChannelCreateGpadlFromMdl: None,
                VmbChannelDeleteGpadl: None,
                VmbChannelDisable: None,
                VmbChannelEnable: None,
                VmbChannelGetInterfaceInstance: None,
                VmbChannelGetMmioSpace: None,
                VmbChannelGetPointer: None,
                VmbChannelInitSetClientContextSize: None,
                VmbChannelInitSetFlags: None,
                VmbChannelInitSetFriendlyName: None,
                VmbChannelInitSetMaximumExternalData: None,
                VmbChannelInitSetMaximumPacketSize: None,
                VmbChannelInitSetProcessPacketCallbacks: None,
                VmbChannelInitSetStateChangeCallbacks: None,
                VmbChannelPacketComplete: None,
                VmbChannelPacketDeferToPassive: None,
                VmbChannelPacketFail: None,
                VmbChannelPacketGetExternalData: None,
                VmbChannelPause: None,
                VmbChannelSendSynchronousRequest: None,
                VmbChannelSetIncomingProcessingAtPassive: None,
                VmbChannelSetInterruptLatency: None,
                VmbChannelSetPointer: None,
                VmbChannelSetTransactionQuota: None,
                VmbChannelSizeofPacket: None,
                VmbChannelStart: None,
                VmbClientChannelInitSetRingBufferPageCount: None,
                VmbClientChannelInitSetTargetPnp: None,
                VmbPacketAllocate: None,
                VmbPacketFree: None,
                VmbPacketGetChannel: None,
                VmbPacketGetPointer: None,
                VmbPacketInitialize: None,
                VmbPacketSend: None,
                VmbPacketSendWithExternalMdl: None,
                VmbPacketSendWithExternalPfns: None,
                VmbPacketSetCompletionRoutine: None,
                VmbPacketSetPointer: None,
            },
            ServerOnly: KMCL_SERVER_ONLY_METHODS {
                VmbChannelMapGpadl: None,
                VmbChannelRestoreFromBuffer: None,
                VmbChannelSaveBegin: None,
                VmbChannelSaveContinue: None,
                VmbChannelSaveEnd: None,
                VmbChannelUnmapGpadl: None,
                VmbConvertVmbusHandleToKernelHandle: None,
                VmbPacketRestore: None,
                VmbServerChannelInitSetFlags: None,
                VmbServerChannelInitSetMmioMegabytes: None,
                VmbServerChannelInitSetSaveRestorePacketCallbacks: None,
                VmbServerChannelInitSetTargetInterfaceId: None,
                VmbServerChannelInitSetTargetVtl: None,
                VmbServerChannelInitSetVmbusHandle: None,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{KMCL_SERVER_INTERFACE_V1, VMB_CHANNEL_STATE_CHANGE_CALLBACKS_INIT, VMBCHANNEL};

    #[test]
    fn state_change_callbacks_init_matches_the_header_helper() {
        let callbacks = VMB_CHANNEL_STATE_CHANGE_CALLBACKS_INIT();
        // kmcl.md §1.5: Version 1, Size 48, every callback NULL.
        assert_eq!(callbacks.Version, 1);
        assert_eq!(callbacks.Size, 48);
        assert!(callbacks.EvtChannelOpened.is_none());
        assert!(callbacks.EvtChannelPostStarted.is_none());
    }

    #[test]
    fn empty_server_interface_describes_itself() {
        let table = KMCL_SERVER_INTERFACE_V1::empty();
        assert_eq!(table.Client.InterfaceHeader.Size, 472);
        assert_eq!(table.Client.InterfaceHeader.Version, 1);
        assert!(table.Client.VmbChannelAllocate.is_none());
        assert!(
            table
                .ServerOnly
                .VmbServerChannelInitSetVmbusHandle
                .is_none()
        );
    }

    #[test]
    fn handles_round_trip_their_raw_value() {
        let mut target = 0u8;
        let raw = (&raw mut target).cast::<core::ffi::c_void>();
        let channel = VMBCHANNEL::from_raw(raw);
        assert_eq!(channel.as_raw(), raw);
        assert!(!channel.is_null());
        assert!(VMBCHANNEL::null().is_null());
    }
}
