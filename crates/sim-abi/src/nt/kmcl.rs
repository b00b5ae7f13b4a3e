//! The 33 `vmbkmclr.sys` imports of `KmclTable::from_imports()`, each forwarded to the same
//! function of the simulated KMCL of the host the driver is loaded on, taken from that host's
//! `KMCL_SERVER_INTERFACE_V1` ([`crate::kmcl_table::interface`]) — the table platform-wdk's
//! `tests/sim_abi` drives the trampolines through. The blocking calls (Allocate, Enable,
//! Disable, Pause, Start, Cleanup, the save and restore calls, the handle conversion) must be
//! made at `PASSIVE_LEVEL` (kmcl.md §1.7: annotated for Allocate, presumed for the blocking
//! ones).

use std::ffi::c_void;

use ferry_platform_wdk::ffi::base::{
    BOOLEAN, DEVICE_OBJECT, GUID, HANDLE, MDL, NTSTATUS, UNICODE_STRING,
};
use ferry_platform_wdk::ffi::kmcl::{
    PFN_VMB_CHANNEL_PROCESS_PACKET, PFN_VMB_CHANNEL_PROCESSING_COMPLETE,
    PFN_VMB_CHANNEL_RESTORE_PACKET, PFN_VMB_CHANNEL_SAVE_PACKET, PFN_VMB_PACKET_COMPLETION_ROUTINE,
    VMB_CHANNEL_STATE_CHANGE_CALLBACKS, VMBCHANNEL, VMBPACKET, VMBPACKETCOMPLETION,
};
use ferry_platform_wdk::tables::KmclTable;

use super::kernel::require_passive;
use super::{called, called_fallible, export, loaded_host};
use crate::kmcl_table::interface;

/// The loaded host's KMCL as ferry's table.
fn table() -> KmclTable {
    let interface = match loaded_host() {
        0 => interface::<0>(),
        1 => interface::<1>(),
        _ => interface::<2>(),
    };
    KmclTable::from_server_interface(&interface).unwrap_or_else(|missing| {
        eprintln!("the simulated KMCL lacks {missing:?}");
        std::process::abort()
    })
}

export! {
    /// `VmbChannelAllocate`: the loaded host's.
    ferry_platform_wdk::ffi::kmcl::imports::VmbChannelAllocate =>
    fn VmbChannelAllocate(ParentDeviceObject: *mut DEVICE_OBJECT, IsServer: BOOLEAN, Channel: *mut VMBCHANNEL) -> NTSTATUS {
        if let Some(status) = called_fallible("VmbChannelAllocate") {
            return status;
        }
        require_passive("VmbChannelAllocate");
        let function = table().channel_allocate;
        // SAFETY: the driver's arguments, unchanged, to the host's function of the same C type.
        unsafe { function(ParentDeviceObject, IsServer, Channel) }
    }
}

export! {
    /// `VmbChannelCleanup`: the loaded host's.
    ferry_platform_wdk::ffi::kmcl::imports::VmbChannelCleanup =>
    fn VmbChannelCleanup(Channel: VMBCHANNEL) {
        called("VmbChannelCleanup");
        require_passive("VmbChannelCleanup");
        let function = table().channel_cleanup;
        // SAFETY: the driver's arguments, unchanged, to the host's function of the same C type.
        unsafe { function(Channel) }
    }
}

export! {
    /// `VmbChannelEnable`: the loaded host's.
    ferry_platform_wdk::ffi::kmcl::imports::VmbChannelEnable =>
    fn VmbChannelEnable(Channel: VMBCHANNEL) -> NTSTATUS {
        if let Some(status) = called_fallible("VmbChannelEnable") {
            return status;
        }
        require_passive("VmbChannelEnable");
        let function = table().channel_enable;
        // SAFETY: the driver's arguments, unchanged, to the host's function of the same C type.
        unsafe { function(Channel) }
    }
}

export! {
    /// `VmbChannelDisable`: the loaded host's.
    ferry_platform_wdk::ffi::kmcl::imports::VmbChannelDisable =>
    fn VmbChannelDisable(Channel: VMBCHANNEL) {
        called("VmbChannelDisable");
        require_passive("VmbChannelDisable");
        let function = table().channel_disable;
        // SAFETY: the driver's arguments, unchanged, to the host's function of the same C type.
        unsafe { function(Channel) }
    }
}

export! {
    /// `VmbChannelStart`: the loaded host's.
    ferry_platform_wdk::ffi::kmcl::imports::VmbChannelStart =>
    fn VmbChannelStart(Channel: VMBCHANNEL) {
        called("VmbChannelStart");
        require_passive("VmbChannelStart");
        let function = table().channel_start;
        // SAFETY: the driver's arguments, unchanged, to the host's function of the same C type.
        unsafe { function(Channel) }
    }
}

export! {
    /// `VmbChannelPause`: the loaded host's.
    ferry_platform_wdk::ffi::kmcl::imports::VmbChannelPause =>
    fn VmbChannelPause(Channel: VMBCHANNEL) {
        called("VmbChannelPause");
        require_passive("VmbChannelPause");
        let function = table().channel_pause;
        // SAFETY: the driver's arguments, unchanged, to the host's function of the same C type.
        unsafe { function(Channel) }
    }
}

export! {
    /// `VmbChannelSetPointer`: the loaded host's.
    ferry_platform_wdk::ffi::kmcl::imports::VmbChannelSetPointer =>
    fn VmbChannelSetPointer(Channel: VMBCHANNEL, Pointer: *mut c_void) {
        called("VmbChannelSetPointer");
        let function = table().channel_set_pointer;
        // SAFETY: the driver's arguments, unchanged, to the host's function of the same C type.
        unsafe { function(Channel, Pointer) }
    }
}

export! {
    /// `VmbChannelGetPointer`: the loaded host's.
    ferry_platform_wdk::ffi::kmcl::imports::VmbChannelGetPointer =>
    fn VmbChannelGetPointer(Channel: VMBCHANNEL) -> *mut c_void {
        called("VmbChannelGetPointer");
        let function = table().channel_get_pointer;
        // SAFETY: the driver's arguments, unchanged, to the host's function of the same C type.
        unsafe { function(Channel) }
    }
}

export! {
    /// `VmbChannelSetTransactionQuota`: the loaded host's.
    ferry_platform_wdk::ffi::kmcl::imports::VmbChannelSetTransactionQuota =>
    fn VmbChannelSetTransactionQuota(Channel: VMBCHANNEL, Quota: u32) {
        called("VmbChannelSetTransactionQuota");
        let function = table().channel_set_transaction_quota;
        // SAFETY: the driver's arguments, unchanged, to the host's function of the same C type.
        unsafe { function(Channel, Quota) }
    }
}

export! {
    /// `VmbChannelSetIncomingProcessingAtPassive`: the loaded host's.
    ferry_platform_wdk::ffi::kmcl::imports::VmbChannelSetIncomingProcessingAtPassive =>
    fn VmbChannelSetIncomingProcessingAtPassive(Channel: VMBCHANNEL, RequirePassive: BOOLEAN) {
        called("VmbChannelSetIncomingProcessingAtPassive");
        let function = table().channel_set_incoming_processing_at_passive;
        // SAFETY: the driver's arguments, unchanged, to the host's function of the same C type.
        unsafe { function(Channel, RequirePassive) }
    }
}

export! {
    /// `VmbChannelInitSetMaximumPacketSize`: the loaded host's.
    ferry_platform_wdk::ffi::kmcl::imports::VmbChannelInitSetMaximumPacketSize =>
    fn VmbChannelInitSetMaximumPacketSize(Channel: VMBCHANNEL, PacketSize: u32) -> NTSTATUS {
        if let Some(status) = called_fallible("VmbChannelInitSetMaximumPacketSize") {
            return status;
        }
        let function = table().channel_init_set_maximum_packet_size;
        // SAFETY: the driver's arguments, unchanged, to the host's function of the same C type.
        unsafe { function(Channel, PacketSize) }
    }
}

export! {
    /// `VmbChannelInitSetFriendlyName`: the loaded host's.
    ferry_platform_wdk::ffi::kmcl::imports::VmbChannelInitSetFriendlyName =>
    fn VmbChannelInitSetFriendlyName(Channel: VMBCHANNEL, Name: *const UNICODE_STRING) -> NTSTATUS {
        if let Some(status) = called_fallible("VmbChannelInitSetFriendlyName") {
            return status;
        }
        let function = table().channel_init_set_friendly_name;
        // SAFETY: the driver's arguments, unchanged, to the host's function of the same C type.
        unsafe { function(Channel, Name) }
    }
}

export! {
    /// `VmbChannelInitSetProcessPacketCallbacks`: the loaded host's.
    ferry_platform_wdk::ffi::kmcl::imports::VmbChannelInitSetProcessPacketCallbacks =>
    fn VmbChannelInitSetProcessPacketCallbacks(Channel: VMBCHANNEL, ProcessPacketCallback: PFN_VMB_CHANNEL_PROCESS_PACKET, ProcessingCompleteCallback: PFN_VMB_CHANNEL_PROCESSING_COMPLETE) -> NTSTATUS {
        if let Some(status) = called_fallible("VmbChannelInitSetProcessPacketCallbacks") {
            return status;
        }
        let function = table().channel_init_set_process_packet_callbacks;
        // SAFETY: the driver's arguments, unchanged, to the host's function of the same C type.
        unsafe { function(Channel, ProcessPacketCallback, ProcessingCompleteCallback) }
    }
}

export! {
    /// `VmbChannelInitSetStateChangeCallbacks`: the loaded host's.
    ferry_platform_wdk::ffi::kmcl::imports::VmbChannelInitSetStateChangeCallbacks =>
    fn VmbChannelInitSetStateChangeCallbacks(Channel: VMBCHANNEL, StateChangeCallbacks: *mut VMB_CHANNEL_STATE_CHANGE_CALLBACKS) -> NTSTATUS {
        if let Some(status) = called_fallible("VmbChannelInitSetStateChangeCallbacks") {
            return status;
        }
        let function = table().channel_init_set_state_change_callbacks;
        // SAFETY: the driver's arguments, unchanged, to the host's function of the same C type.
        unsafe { function(Channel, StateChangeCallbacks) }
    }
}

export! {
    /// `VmbChannelPacketComplete`: the loaded host's.
    ferry_platform_wdk::ffi::kmcl::imports::VmbChannelPacketComplete =>
    fn VmbChannelPacketComplete(PacketCompletionContext: VMBPACKETCOMPLETION, PacketCompletionBuffer: *mut c_void, BufSize: u32) {
        called("VmbChannelPacketComplete");
        let function = table().channel_packet_complete;
        // SAFETY: the driver's arguments, unchanged, to the host's function of the same C type.
        unsafe { function(PacketCompletionContext, PacketCompletionBuffer, BufSize) }
    }
}

export! {
    /// `VmbChannelPacketFail`: the loaded host's.
    ferry_platform_wdk::ffi::kmcl::imports::VmbChannelPacketFail =>
    fn VmbChannelPacketFail(PacketCompletionContext: VMBPACKETCOMPLETION) {
        called("VmbChannelPacketFail");
        let function = table().channel_packet_fail;
        // SAFETY: the driver's arguments, unchanged, to the host's function of the same C type.
        unsafe { function(PacketCompletionContext) }
    }
}

export! {
    /// `VmbPacketAllocate`: the loaded host's.
    ferry_platform_wdk::ffi::kmcl::imports::VmbPacketAllocate =>
    fn VmbPacketAllocate(Channel: VMBCHANNEL) -> VMBPACKET {
        called("VmbPacketAllocate");
        let function = table().packet_allocate;
        // SAFETY: the driver's arguments, unchanged, to the host's function of the same C type.
        unsafe { function(Channel) }
    }
}

export! {
    /// `VmbPacketFree`: the loaded host's.
    ferry_platform_wdk::ffi::kmcl::imports::VmbPacketFree =>
    fn VmbPacketFree(VmbPacket: VMBPACKET) {
        called("VmbPacketFree");
        let function = table().packet_free;
        // SAFETY: the driver's arguments, unchanged, to the host's function of the same C type.
        unsafe { function(VmbPacket) }
    }
}

export! {
    /// `VmbPacketSetCompletionRoutine`: the loaded host's.
    ferry_platform_wdk::ffi::kmcl::imports::VmbPacketSetCompletionRoutine =>
    fn VmbPacketSetCompletionRoutine(PacketObject: VMBPACKET, CompletionRoutine: PFN_VMB_PACKET_COMPLETION_ROUTINE) {
        called("VmbPacketSetCompletionRoutine");
        let function = table().packet_set_completion_routine;
        // SAFETY: the driver's arguments, unchanged, to the host's function of the same C type.
        unsafe { function(PacketObject, CompletionRoutine) }
    }
}

export! {
    /// `VmbPacketSetPointer`: the loaded host's.
    ferry_platform_wdk::ffi::kmcl::imports::VmbPacketSetPointer =>
    fn VmbPacketSetPointer(PacketObject: VMBPACKET, Pointer: *mut c_void) {
        called("VmbPacketSetPointer");
        let function = table().packet_set_pointer;
        // SAFETY: the driver's arguments, unchanged, to the host's function of the same C type.
        unsafe { function(PacketObject, Pointer) }
    }
}

export! {
    /// `VmbPacketGetPointer`: the loaded host's.
    ferry_platform_wdk::ffi::kmcl::imports::VmbPacketGetPointer =>
    fn VmbPacketGetPointer(PacketObject: VMBPACKET) -> *mut c_void {
        called("VmbPacketGetPointer");
        let function = table().packet_get_pointer;
        // SAFETY: the driver's arguments, unchanged, to the host's function of the same C type.
        unsafe { function(PacketObject) }
    }
}

export! {
    /// `VmbPacketGetChannel`: the loaded host's.
    ferry_platform_wdk::ffi::kmcl::imports::VmbPacketGetChannel =>
    fn VmbPacketGetChannel(PacketObject: VMBPACKET) -> VMBCHANNEL {
        called("VmbPacketGetChannel");
        let function = table().packet_get_channel;
        // SAFETY: the driver's arguments, unchanged, to the host's function of the same C type.
        unsafe { function(PacketObject) }
    }
}

export! {
    /// `VmbPacketSend`: the loaded host's.
    ferry_platform_wdk::ffi::kmcl::imports::VmbPacketSend =>
    fn VmbPacketSend(PacketObject: VMBPACKET, Buffer: *mut c_void, BufferLength: u32, ExternalDataMdl: *mut MDL, Flags: u32) -> NTSTATUS {
        if let Some(status) = called_fallible("VmbPacketSend") {
            return status;
        }
        let function = table().packet_send;
        // SAFETY: the driver's arguments, unchanged, to the host's function of the same C type.
        unsafe { function(PacketObject, Buffer, BufferLength, ExternalDataMdl, Flags) }
    }
}

export! {
    /// `VmbPacketRestore`: the loaded host's.
    ferry_platform_wdk::ffi::kmcl::imports::VmbPacketRestore =>
    fn VmbPacketRestore(PacketObject: VMBPACKET, Buffer: *mut c_void, BufferSize: u32) -> NTSTATUS {
        if let Some(status) = called_fallible("VmbPacketRestore") {
            return status;
        }
        let function = table().packet_restore;
        // SAFETY: the driver's arguments, unchanged, to the host's function of the same C type.
        unsafe { function(PacketObject, Buffer, BufferSize) }
    }
}

export! {
    /// `VmbChannelSaveBegin`: the loaded host's.
    ferry_platform_wdk::ffi::kmcl::imports::VmbChannelSaveBegin =>
    fn VmbChannelSaveBegin(Channel: VMBCHANNEL) -> NTSTATUS {
        if let Some(status) = called_fallible("VmbChannelSaveBegin") {
            return status;
        }
        require_passive("VmbChannelSaveBegin");
        let function = table().channel_save_begin;
        // SAFETY: the driver's arguments, unchanged, to the host's function of the same C type.
        unsafe { function(Channel) }
    }
}

export! {
    /// `VmbChannelSaveContinue`: the loaded host's.
    ferry_platform_wdk::ffi::kmcl::imports::VmbChannelSaveContinue =>
    fn VmbChannelSaveContinue(Channel: VMBCHANNEL, SaveBuffer: *mut c_void, SaveBufferSize: u32, BytesFilled: *mut u32, BytesRequired: *mut u32) -> NTSTATUS {
        if let Some(status) = called_fallible("VmbChannelSaveContinue") {
            return status;
        }
        require_passive("VmbChannelSaveContinue");
        let function = table().channel_save_continue;
        // SAFETY: the driver's arguments, unchanged, to the host's function of the same C type.
        unsafe { function(Channel, SaveBuffer, SaveBufferSize, BytesFilled, BytesRequired) }
    }
}

export! {
    /// `VmbChannelSaveEnd`: the loaded host's.
    ferry_platform_wdk::ffi::kmcl::imports::VmbChannelSaveEnd =>
    fn VmbChannelSaveEnd(Channel: VMBCHANNEL) {
        called("VmbChannelSaveEnd");
        require_passive("VmbChannelSaveEnd");
        let function = table().channel_save_end;
        // SAFETY: the driver's arguments, unchanged, to the host's function of the same C type.
        unsafe { function(Channel) }
    }
}

export! {
    /// `VmbChannelRestoreFromBuffer`: the loaded host's.
    ferry_platform_wdk::ffi::kmcl::imports::VmbChannelRestoreFromBuffer =>
    fn VmbChannelRestoreFromBuffer(Channel: VMBCHANNEL, Buffer: *mut c_void, BufferSize: u32) -> NTSTATUS {
        if let Some(status) = called_fallible("VmbChannelRestoreFromBuffer") {
            return status;
        }
        require_passive("VmbChannelRestoreFromBuffer");
        let function = table().channel_restore_from_buffer;
        // SAFETY: the driver's arguments, unchanged, to the host's function of the same C type.
        unsafe { function(Channel, Buffer, BufferSize) }
    }
}

export! {
    /// `VmbServerChannelInitSetFlags`: the loaded host's.
    ferry_platform_wdk::ffi::kmcl::imports::VmbServerChannelInitSetFlags =>
    fn VmbServerChannelInitSetFlags(Channel: VMBCHANNEL, Flags: u32) -> NTSTATUS {
        if let Some(status) = called_fallible("VmbServerChannelInitSetFlags") {
            return status;
        }
        let function = table().server_channel_init_set_flags;
        // SAFETY: the driver's arguments, unchanged, to the host's function of the same C type.
        unsafe { function(Channel, Flags) }
    }
}

export! {
    /// `VmbServerChannelInitSetTargetInterfaceId`: the loaded host's.
    ferry_platform_wdk::ffi::kmcl::imports::VmbServerChannelInitSetTargetInterfaceId =>
    fn VmbServerChannelInitSetTargetInterfaceId(Channel: VMBCHANNEL, InterfaceType: GUID, InterfaceInstance: GUID) -> NTSTATUS {
        if let Some(status) = called_fallible("VmbServerChannelInitSetTargetInterfaceId") {
            return status;
        }
        let function = table().server_channel_init_set_target_interface_id;
        // SAFETY: the driver's arguments, unchanged, to the host's function of the same C type.
        unsafe { function(Channel, InterfaceType, InterfaceInstance) }
    }
}

export! {
    /// `VmbServerChannelInitSetSaveRestorePacketCallbacks`: the loaded host's.
    ferry_platform_wdk::ffi::kmcl::imports::VmbServerChannelInitSetSaveRestorePacketCallbacks =>
    fn VmbServerChannelInitSetSaveRestorePacketCallbacks(Channel: VMBCHANNEL, SavePacketCallback: PFN_VMB_CHANNEL_SAVE_PACKET, RestorePacketCallback: PFN_VMB_CHANNEL_RESTORE_PACKET) -> NTSTATUS {
        if let Some(status) = called_fallible("VmbServerChannelInitSetSaveRestorePacketCallbacks") {
            return status;
        }
        let function = table().server_channel_init_set_save_restore_packet_callbacks;
        // SAFETY: the driver's arguments, unchanged, to the host's function of the same C type.
        unsafe { function(Channel, SavePacketCallback, RestorePacketCallback) }
    }
}

export! {
    /// `VmbServerChannelInitSetVmbusHandle`: the loaded host's.
    ferry_platform_wdk::ffi::kmcl::imports::VmbServerChannelInitSetVmbusHandle =>
    fn VmbServerChannelInitSetVmbusHandle(Channel: VMBCHANNEL, VmbusHandle: HANDLE) -> NTSTATUS {
        if let Some(status) = called_fallible("VmbServerChannelInitSetVmbusHandle") {
            return status;
        }
        let function = table().server_channel_init_set_vmbus_handle;
        // SAFETY: the driver's arguments, unchanged, to the host's function of the same C type.
        unsafe { function(Channel, VmbusHandle) }
    }
}

export! {
    /// `VmbConvertVmbusHandleToKernelHandle`: the loaded host's.
    ferry_platform_wdk::ffi::kmcl::imports::VmbConvertVmbusHandleToKernelHandle =>
    fn VmbConvertVmbusHandleToKernelHandle(VmbusHandle: HANDLE, KernelHandle: *mut HANDLE) -> NTSTATUS {
        if let Some(status) = called_fallible("VmbConvertVmbusHandleToKernelHandle") {
            return status;
        }
        require_passive("VmbConvertVmbusHandleToKernelHandle");
        let function = table().convert_vmbus_handle_to_kernel_handle;
        // SAFETY: the driver's arguments, unchanged, to the host's function of the same C type.
        unsafe { function(VmbusHandle, KernelHandle) }
    }
}
