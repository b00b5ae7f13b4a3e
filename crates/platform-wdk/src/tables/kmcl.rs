//! [`KmclTable`]: the KMCL functions ferry calls, as non-null function pointers.

use core::fmt;

use crate::ffi::kmcl::{
    FN_VMB_CHANNEL_ALLOCATE, FN_VMB_CHANNEL_CLEANUP, FN_VMB_CHANNEL_DISABLE, FN_VMB_CHANNEL_ENABLE,
    FN_VMB_CHANNEL_GET_POINTER, FN_VMB_CHANNEL_INIT_SET_FRIENDLY_NAME,
    FN_VMB_CHANNEL_INIT_SET_MAXIMUM_PACKET_SIZE, FN_VMB_CHANNEL_INIT_SET_PROCESS_PACKET_CALLBACKS,
    FN_VMB_CHANNEL_INIT_SET_STATE_CHANGE_CALLBACKS, FN_VMB_CHANNEL_PACKET_COMPLETE,
    FN_VMB_CHANNEL_PACKET_FAIL, FN_VMB_CHANNEL_PAUSE, FN_VMB_CHANNEL_RESTORE_FROM_BUFFER,
    FN_VMB_CHANNEL_SAVE_BEGIN, FN_VMB_CHANNEL_SAVE_CONTINUE, FN_VMB_CHANNEL_SAVE_END,
    FN_VMB_CHANNEL_SET_INCOMING_PROCESSING_AT_PASSIVE, FN_VMB_CHANNEL_SET_POINTER,
    FN_VMB_CHANNEL_SET_TRANSACTION_QUOTA, FN_VMB_CHANNEL_START,
    FN_VMB_CONVERT_VMBUS_HANDLE_TO_KERNEL_HANDLE, FN_VMB_PACKET_ALLOCATE, FN_VMB_PACKET_FREE,
    FN_VMB_PACKET_GET_CHANNEL, FN_VMB_PACKET_GET_POINTER, FN_VMB_PACKET_RESTORE,
    FN_VMB_PACKET_SEND, FN_VMB_PACKET_SET_COMPLETION_ROUTINE, FN_VMB_PACKET_SET_POINTER,
    FN_VMB_SERVER_CHANNEL_INIT_SET_FLAGS,
    FN_VMB_SERVER_CHANNEL_INIT_SET_SAVE_RESTORE_PACKET_CALLBACKS,
    FN_VMB_SERVER_CHANNEL_INIT_SET_TARGET_INTERFACE_ID,
    FN_VMB_SERVER_CHANNEL_INIT_SET_VMBUS_HANDLE, KMCL_SERVER_INTERFACE_V1,
};

/// A function ferry needs is NULL in the interface table it was given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MissingKmclFunction {
    /// The C name of the missing member (`"VmbChannelEnable"`).
    pub name: &'static str,
}

impl fmt::Display for MissingKmclFunction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KMCL interface table has no {}", self.name)
    }
}

/// The KMCL functions ferry calls, each a non-null `extern "system"` pointer.
///
/// One code path for every host: the platform calls KMCL only through this table.
///
/// * In `ferry.sys`: [`KmclTable::from_imports`] fills it from the direct imports of
///   `vmbkmclr.sys`; [`KmclTable::from_server_interface`] fills it from a
///   `KMCL_SERVER_INTERFACE_V1` returned by `IRP_MN_QUERY_INTERFACE` (not usable yet: the
///   interface GUID is UNCONFIRMED, see [`crate::ffi::kmcl`]).
/// * In host tests (`tests/abi/`): a fake KMCL exposes a `KMCL_SERVER_INTERFACE_V1` whose
///   members are its own `extern "system"` functions, and the test calls
///   [`KmclTable::from_server_interface`] on it, exactly as the driver would on a queried
///   table. The same `extern "system"` ABI is then exercised on Linux.
///
/// The members ferry does not use (GPADLs, external data, synchronous requests, MMIO, VTL,
/// client-only calls) are left out; add a field here when a caller needs one.
#[derive(Clone, Copy)]
pub struct KmclTable {
    /// `VmbChannelAllocate`.
    pub channel_allocate: FN_VMB_CHANNEL_ALLOCATE,
    /// `VmbChannelCleanup`.
    pub channel_cleanup: FN_VMB_CHANNEL_CLEANUP,
    /// `VmbChannelEnable`.
    pub channel_enable: FN_VMB_CHANNEL_ENABLE,
    /// `VmbChannelDisable`.
    pub channel_disable: FN_VMB_CHANNEL_DISABLE,
    /// `VmbChannelStart`.
    pub channel_start: FN_VMB_CHANNEL_START,
    /// `VmbChannelPause`.
    pub channel_pause: FN_VMB_CHANNEL_PAUSE,
    /// `VmbChannelSetPointer`.
    pub channel_set_pointer: FN_VMB_CHANNEL_SET_POINTER,
    /// `VmbChannelGetPointer`.
    pub channel_get_pointer: FN_VMB_CHANNEL_GET_POINTER,
    /// `VmbChannelSetTransactionQuota`.
    pub channel_set_transaction_quota: FN_VMB_CHANNEL_SET_TRANSACTION_QUOTA,
    /// `VmbChannelSetIncomingProcessingAtPassive`.
    pub channel_set_incoming_processing_at_passive:
        FN_VMB_CHANNEL_SET_INCOMING_PROCESSING_AT_PASSIVE,
    /// `VmbChannelInitSetMaximumPacketSize`.
    pub channel_init_set_maximum_packet_size: FN_VMB_CHANNEL_INIT_SET_MAXIMUM_PACKET_SIZE,
    /// `VmbChannelInitSetFriendlyName`.
    pub channel_init_set_friendly_name: FN_VMB_CHANNEL_INIT_SET_FRIENDLY_NAME,
    /// `VmbChannelInitSetProcessPacketCallbacks`.
    pub channel_init_set_process_packet_callbacks: FN_VMB_CHANNEL_INIT_SET_PROCESS_PACKET_CALLBACKS,
    /// `VmbChannelInitSetStateChangeCallbacks`.
    pub channel_init_set_state_change_callbacks: FN_VMB_CHANNEL_INIT_SET_STATE_CHANGE_CALLBACKS,
    /// `VmbChannelPacketComplete`.
    pub channel_packet_complete: FN_VMB_CHANNEL_PACKET_COMPLETE,
    /// `VmbChannelPacketFail`.
    pub channel_packet_fail: FN_VMB_CHANNEL_PACKET_FAIL,
    /// `VmbPacketAllocate`.
    pub packet_allocate: FN_VMB_PACKET_ALLOCATE,
    /// `VmbPacketFree`.
    pub packet_free: FN_VMB_PACKET_FREE,
    /// `VmbPacketSetCompletionRoutine`.
    pub packet_set_completion_routine: FN_VMB_PACKET_SET_COMPLETION_ROUTINE,
    /// `VmbPacketSetPointer`.
    pub packet_set_pointer: FN_VMB_PACKET_SET_POINTER,
    /// `VmbPacketGetPointer`.
    pub packet_get_pointer: FN_VMB_PACKET_GET_POINTER,
    /// `VmbPacketGetChannel`.
    pub packet_get_channel: FN_VMB_PACKET_GET_CHANNEL,
    /// `VmbPacketSend`.
    pub packet_send: FN_VMB_PACKET_SEND,
    /// `VmbPacketRestore`.
    pub packet_restore: FN_VMB_PACKET_RESTORE,
    /// `VmbChannelSaveBegin`.
    pub channel_save_begin: FN_VMB_CHANNEL_SAVE_BEGIN,
    /// `VmbChannelSaveContinue`.
    pub channel_save_continue: FN_VMB_CHANNEL_SAVE_CONTINUE,
    /// `VmbChannelSaveEnd`.
    pub channel_save_end: FN_VMB_CHANNEL_SAVE_END,
    /// `VmbChannelRestoreFromBuffer`.
    pub channel_restore_from_buffer: FN_VMB_CHANNEL_RESTORE_FROM_BUFFER,
    /// `VmbServerChannelInitSetFlags`.
    pub server_channel_init_set_flags: FN_VMB_SERVER_CHANNEL_INIT_SET_FLAGS,
    /// `VmbServerChannelInitSetTargetInterfaceId`.
    pub server_channel_init_set_target_interface_id:
        FN_VMB_SERVER_CHANNEL_INIT_SET_TARGET_INTERFACE_ID,
    /// `VmbServerChannelInitSetSaveRestorePacketCallbacks`.
    pub server_channel_init_set_save_restore_packet_callbacks:
        FN_VMB_SERVER_CHANNEL_INIT_SET_SAVE_RESTORE_PACKET_CALLBACKS,
    /// `VmbServerChannelInitSetVmbusHandle`.
    pub server_channel_init_set_vmbus_handle: FN_VMB_SERVER_CHANNEL_INIT_SET_VMBUS_HANDLE,
    /// `VmbConvertVmbusHandleToKernelHandle`.
    pub convert_vmbus_handle_to_kernel_handle: FN_VMB_CONVERT_VMBUS_HANDLE_TO_KERNEL_HANDLE,
}

impl fmt::Debug for KmclTable {
    /// Function addresses say nothing useful; a derived impl would also need a large frame.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KmclTable").finish_non_exhaustive()
    }
}

/// `table_part.Member` if non-NULL; otherwise returns an error naming `Member` from the
/// enclosing function. A macro rather than a function so that the 33 checks do not leave 33
/// `Result` temporaries in an unoptimised build's stack frame.
macro_rules! member {
    ($part:ident . $member:ident) => {
        match $part.$member {
            Some(function) => function,
            None => {
                return Err(MissingKmclFunction {
                    name: stringify!($member),
                });
            }
        }
    };
}

impl KmclTable {
    /// Takes the functions ferry uses from an interface table.
    ///
    /// # Errors
    ///
    /// [`MissingKmclFunction`] naming the first member ferry needs that is NULL; nothing is
    /// called.
    pub fn from_server_interface(
        table: &KMCL_SERVER_INTERFACE_V1,
    ) -> Result<Self, MissingKmclFunction> {
        let client = &table.Client;
        let server = &table.ServerOnly;
        Ok(Self {
            channel_allocate: member!(client.VmbChannelAllocate),
            channel_cleanup: member!(client.VmbChannelCleanup),
            channel_enable: member!(client.VmbChannelEnable),
            channel_disable: member!(client.VmbChannelDisable),
            channel_start: member!(client.VmbChannelStart),
            channel_pause: member!(client.VmbChannelPause),
            channel_set_pointer: member!(client.VmbChannelSetPointer),
            channel_get_pointer: member!(client.VmbChannelGetPointer),
            channel_set_transaction_quota: member!(client.VmbChannelSetTransactionQuota),
            channel_set_incoming_processing_at_passive: member!(
                client.VmbChannelSetIncomingProcessingAtPassive
            ),
            channel_init_set_maximum_packet_size: member!(
                client.VmbChannelInitSetMaximumPacketSize
            ),
            channel_init_set_friendly_name: member!(client.VmbChannelInitSetFriendlyName),
            channel_init_set_process_packet_callbacks: member!(
                client.VmbChannelInitSetProcessPacketCallbacks
            ),
            channel_init_set_state_change_callbacks: member!(
                client.VmbChannelInitSetStateChangeCallbacks
            ),
            channel_packet_complete: member!(client.VmbChannelPacketComplete),
            channel_packet_fail: member!(client.VmbChannelPacketFail),
            packet_allocate: member!(client.VmbPacketAllocate),
            packet_free: member!(client.VmbPacketFree),
            packet_set_completion_routine: member!(client.VmbPacketSetCompletionRoutine),
            packet_set_pointer: member!(client.VmbPacketSetPointer),
            packet_get_pointer: member!(client.VmbPacketGetPointer),
            packet_get_channel: member!(client.VmbPacketGetChannel),
            packet_send: member!(client.VmbPacketSend),
            packet_restore: member!(server.VmbPacketRestore),
            channel_save_begin: member!(server.VmbChannelSaveBegin),
            channel_save_continue: member!(server.VmbChannelSaveContinue),
            channel_save_end: member!(server.VmbChannelSaveEnd),
            channel_restore_from_buffer: member!(server.VmbChannelRestoreFromBuffer),
            server_channel_init_set_flags: member!(server.VmbServerChannelInitSetFlags),
            server_channel_init_set_target_interface_id: member!(
                server.VmbServerChannelInitSetTargetInterfaceId
            ),
            server_channel_init_set_save_restore_packet_callbacks: member!(
                server.VmbServerChannelInitSetSaveRestorePacketCallbacks
            ),
            server_channel_init_set_vmbus_handle: member!(
                server.VmbServerChannelInitSetVmbusHandle
            ),
            convert_vmbus_handle_to_kernel_handle: member!(
                server.VmbConvertVmbusHandleToKernelHandle
            ),
        })
    }

    /// The table over the direct imports from `vmbkmclr.sys`.
    ///
    /// Using it makes `vmbkmclr.sys` a load-time dependency of the image: the driver then
    /// loads only on a Hyper-V host (root partition), which is where ferry belongs. On other
    /// targets the imports are plain undefined symbols: only a test binary that defines them
    /// (ferry-sim-abi's `nt` module, for the driver's tests) may use this table.
    #[must_use]
    pub const fn from_imports() -> Self {
        use crate::ffi::kmcl::imports as k;
        Self {
            channel_allocate: k::VmbChannelAllocate,
            channel_cleanup: k::VmbChannelCleanup,
            channel_enable: k::VmbChannelEnable,
            channel_disable: k::VmbChannelDisable,
            channel_start: k::VmbChannelStart,
            channel_pause: k::VmbChannelPause,
            channel_set_pointer: k::VmbChannelSetPointer,
            channel_get_pointer: k::VmbChannelGetPointer,
            channel_set_transaction_quota: k::VmbChannelSetTransactionQuota,
            channel_set_incoming_processing_at_passive: k::VmbChannelSetIncomingProcessingAtPassive,
            channel_init_set_maximum_packet_size: k::VmbChannelInitSetMaximumPacketSize,
            channel_init_set_friendly_name: k::VmbChannelInitSetFriendlyName,
            channel_init_set_process_packet_callbacks: k::VmbChannelInitSetProcessPacketCallbacks,
            channel_init_set_state_change_callbacks: k::VmbChannelInitSetStateChangeCallbacks,
            channel_packet_complete: k::VmbChannelPacketComplete,
            channel_packet_fail: k::VmbChannelPacketFail,
            packet_allocate: k::VmbPacketAllocate,
            packet_free: k::VmbPacketFree,
            packet_set_completion_routine: k::VmbPacketSetCompletionRoutine,
            packet_set_pointer: k::VmbPacketSetPointer,
            packet_get_pointer: k::VmbPacketGetPointer,
            packet_get_channel: k::VmbPacketGetChannel,
            packet_send: k::VmbPacketSend,
            packet_restore: k::VmbPacketRestore,
            channel_save_begin: k::VmbChannelSaveBegin,
            channel_save_continue: k::VmbChannelSaveContinue,
            channel_save_end: k::VmbChannelSaveEnd,
            channel_restore_from_buffer: k::VmbChannelRestoreFromBuffer,
            server_channel_init_set_flags: k::VmbServerChannelInitSetFlags,
            server_channel_init_set_target_interface_id:
                k::VmbServerChannelInitSetTargetInterfaceId,
            server_channel_init_set_save_restore_packet_callbacks:
                k::VmbServerChannelInitSetSaveRestorePacketCallbacks,
            server_channel_init_set_vmbus_handle: k::VmbServerChannelInitSetVmbusHandle,
            convert_vmbus_handle_to_kernel_handle: k::VmbConvertVmbusHandleToKernelHandle,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{KmclTable, MissingKmclFunction};
    use crate::ffi::kmcl::KMCL_SERVER_INTERFACE_V1;

    /// Words in `KMCL_SERVER_INTERFACE_V1` (472 bytes).
    const WORDS: usize = 472 / 8;
    /// Sentinel "address" stored at byte offset `off`: never called, only compared.
    const fn sentinel(off: usize) -> usize {
        0x5EED_0000 + off
    }

    /// Each table field read back as an address, with the member's byte offset in
    /// `KMCL_SERVER_INTERFACE_V1` from kmcl.md §1.7 and its C name.
    fn fields(t: &KmclTable) -> [(usize, usize, &'static str); 33] {
        [
            (t.channel_allocate as usize, 0x020, "VmbChannelAllocate"),
            (t.channel_cleanup as usize, 0x028, "VmbChannelCleanup"),
            (t.channel_disable as usize, 0x048, "VmbChannelDisable"),
            (t.channel_enable as usize, 0x050, "VmbChannelEnable"),
            (
                t.channel_get_pointer as usize,
                0x068,
                "VmbChannelGetPointer",
            ),
            (
                t.channel_init_set_friendly_name as usize,
                0x080,
                "VmbChannelInitSetFriendlyName",
            ),
            (
                t.channel_init_set_maximum_packet_size as usize,
                0x090,
                "VmbChannelInitSetMaximumPacketSize",
            ),
            (
                t.channel_init_set_process_packet_callbacks as usize,
                0x098,
                "VmbChannelInitSetProcessPacketCallbacks",
            ),
            (
                t.channel_init_set_state_change_callbacks as usize,
                0x0A0,
                "VmbChannelInitSetStateChangeCallbacks",
            ),
            (
                t.channel_packet_complete as usize,
                0x0A8,
                "VmbChannelPacketComplete",
            ),
            (
                t.channel_packet_fail as usize,
                0x0B8,
                "VmbChannelPacketFail",
            ),
            (t.channel_pause as usize, 0x0C8, "VmbChannelPause"),
            (
                t.channel_set_incoming_processing_at_passive as usize,
                0x0D8,
                "VmbChannelSetIncomingProcessingAtPassive",
            ),
            (
                t.channel_set_pointer as usize,
                0x0E8,
                "VmbChannelSetPointer",
            ),
            (
                t.channel_set_transaction_quota as usize,
                0x0F0,
                "VmbChannelSetTransactionQuota",
            ),
            (t.channel_start as usize, 0x100, "VmbChannelStart"),
            (t.packet_allocate as usize, 0x118, "VmbPacketAllocate"),
            (t.packet_free as usize, 0x120, "VmbPacketFree"),
            (t.packet_get_channel as usize, 0x128, "VmbPacketGetChannel"),
            (t.packet_get_pointer as usize, 0x130, "VmbPacketGetPointer"),
            (t.packet_send as usize, 0x140, "VmbPacketSend"),
            (
                t.packet_set_completion_routine as usize,
                0x158,
                "VmbPacketSetCompletionRoutine",
            ),
            (t.packet_set_pointer as usize, 0x160, "VmbPacketSetPointer"),
            (
                t.channel_restore_from_buffer as usize,
                0x170,
                "VmbChannelRestoreFromBuffer",
            ),
            (t.channel_save_begin as usize, 0x178, "VmbChannelSaveBegin"),
            (
                t.channel_save_continue as usize,
                0x180,
                "VmbChannelSaveContinue",
            ),
            (t.channel_save_end as usize, 0x188, "VmbChannelSaveEnd"),
            (
                t.convert_vmbus_handle_to_kernel_handle as usize,
                0x198,
                "VmbConvertVmbusHandleToKernelHandle",
            ),
            (t.packet_restore as usize, 0x1A0, "VmbPacketRestore"),
            (
                t.server_channel_init_set_flags as usize,
                0x1A8,
                "VmbServerChannelInitSetFlags",
            ),
            (
                t.server_channel_init_set_save_restore_packet_callbacks as usize,
                0x1B8,
                "VmbServerChannelInitSetSaveRestorePacketCallbacks",
            ),
            (
                t.server_channel_init_set_target_interface_id as usize,
                0x1C0,
                "VmbServerChannelInitSetTargetInterfaceId",
            ),
            (
                t.server_channel_init_set_vmbus_handle as usize,
                0x1D0,
                "VmbServerChannelInitSetVmbusHandle",
            ),
        ]
    }

    /// An interface table built as raw words, the way C sees it: each pointer slot from byte
    /// 0x20 on holds `sentinel(offset)`, except the slots in `nulls`.
    fn interface_with(nulls: &[usize]) -> KMCL_SERVER_INTERFACE_V1 {
        let mut words = [0usize; WORDS];
        for (index, word) in words.iter_mut().enumerate().skip(4) {
            let offset = index * 8;
            if !nulls.contains(&offset) {
                *word = sentinel(offset);
            }
        }
        // SAFETY: KMCL_SERVER_INTERFACE_V1 is 472 bytes (pinned in ffi::kmcl) of integers, raw
        // pointers and `Option<fn>`, for which every bit pattern is valid; the sentinel
        // function pointers are compared and never called.
        unsafe { core::mem::transmute::<[usize; WORDS], KMCL_SERVER_INTERFACE_V1>(words) }
    }

    #[test]
    fn each_field_comes_from_the_documented_member_offset() {
        let table = KmclTable::from_server_interface(&interface_with(&[])).unwrap();
        for (address, offset, name) in fields(&table) {
            assert_eq!(
                address,
                sentinel(offset),
                "{name} read from the wrong member"
            );
        }
    }

    #[test]
    fn members_ferry_does_not_use_may_be_null() {
        // Null every slot, then restore only the ones the table reads.
        let full = KmclTable::from_server_interface(&interface_with(&[])).unwrap();
        let used: std::vec::Vec<usize> = fields(&full).iter().map(|f| f.1).collect();
        let unused: std::vec::Vec<usize> = (4..WORDS)
            .map(|i| i * 8)
            .filter(|off| !used.contains(off))
            .collect();
        assert_eq!(unused.len(), WORDS - 4 - used.len());
        assert!(KmclTable::from_server_interface(&interface_with(&unused)).is_ok());
    }

    #[test]
    fn a_null_member_that_ferry_needs_is_named() {
        let full = KmclTable::from_server_interface(&interface_with(&[])).unwrap();
        for (_, offset, name) in fields(&full) {
            let error = KmclTable::from_server_interface(&interface_with(&[offset])).unwrap_err();
            assert_eq!(error, MissingKmclFunction { name });
        }
    }
}
