//! The simulated hosts of this test thread and the state their C functions keep: the objects
//! behind every handle handed to the driver, the callbacks the driver registered, and the
//! contract violations noticed at the C boundary.
//!
//! **Handles.** `VMBCHANNEL`, `VMBPACKET`, `VMBPACKETCOMPLETION` and WFP's completion context
//! are opaque to the driver: it only hands them back. Their values encode
//! `(id << 12) | (host << 4) | tag` — odd, unaligned values that point nowhere, so a driver
//! that dereferenced one would fault at once (and ASan would name it). A handle given to the
//! wrong host, of the wrong kind, or after its object is gone decodes to nothing and is
//! recorded as a violation; ids never repeat, so a stale handle never finds a new object.
//!
//! **Where a C function finds its host.** Every function is generic over the host index `N`
//! (each simulated machine has its own `vmbkmclr.sys` and `fwpkclnt.sys`), and finds host `N`
//! in this thread's [`install`]ed list. No `RefCell` borrow of this state is held while a
//! driver callback runs, so the driver may call back into the host from inside one, as on
//! Windows.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::ffi::c_void;
use std::rc::Rc;

use ferry_platform_mock::guest::{AckPolicy, GuestAgent};
use ferry_platform_mock::kmcl::{ChannelHandle, IncomingPacketHandle};
use ferry_platform_mock::platform::HostServices;
use ferry_platform_mock::vswitch::PortSaveCompletion;
use ferry_platform_wdk::ffi::base::GUID;
use ferry_platform_wdk::ffi::kmcl::{
    PFN_VMB_CHANNEL_PROCESS_PACKET, PFN_VMB_CHANNEL_PROCESSING_COMPLETE,
    PFN_VMB_CHANNEL_RESTORE_PACKET, PFN_VMB_CHANNEL_SAVE_PACKET, PFN_VMB_PACKET_COMPLETION_ROUTINE,
    VMB_CHANNEL_STATE_CHANGE_CALLBACKS,
};
use ferry_platform_wdk::ffi::wfp::FWPS_VSWITCH_EVENT_DISPATCH_TABLE0;

/// Handle kinds (the low four bits of a handle value).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tag {
    /// `VMBCHANNEL`.
    Channel = 1,
    /// `VMBPACKET`.
    Packet = 2,
    /// `VMBPACKETCOMPLETION`.
    Incoming = 3,
    /// WFP's `completionContext` of a runtime-state save.
    Save = 4,
    /// A VM's VMBus handle, as the VM worker process holds it.
    UserVmbus = 5,
    /// The same, converted to a kernel handle.
    KernelVmbus = 6,
}

/// The handle value for object `id` of kind `tag` on host `host`.
pub fn encode(host: usize, tag: Tag, id: u64) -> *mut c_void {
    let bits = (usize::try_from(id).unwrap() << 12) | (host << 4) | tag as usize;
    std::ptr::without_provenance_mut(bits)
}

/// The id in `raw` if it is a handle of kind `tag` issued by host `host`.
pub fn decode(host: usize, tag: Tag, raw: *mut c_void) -> Option<u64> {
    let bits = raw.addr();
    let id = (bits >> 12) as u64;
    (bits & 0xF == tag as usize && (bits >> 4) & 0xFF == host && id != 0).then_some(id)
}

/// Where a channel is in KMCL's life cycle, as the C side sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// `VmbChannelAllocate` ran: the `*Init*` calls are legal.
    Allocated,
    /// `VmbChannelEnable` ran: offered.
    Enabled,
    /// `VmbChannelDisable` ran.
    Disabled,
    /// `VmbChannelCleanup` ran: the handle is dead.
    CleanedUp,
}

/// One `VMBCHANNEL` and what the driver configured on it.
pub struct ChannelObject {
    /// Where the channel is in its life cycle.
    pub phase: Phase,
    /// The simulated KMCL's channel (created at `VmbChannelEnable`, when the VM is known).
    pub mock: Option<ChannelHandle>,
    /// Every KMCL function called on the channel, in order.
    pub calls: Vec<&'static str>,
    /// The driver's `VmbChannelSetPointer` value.
    pub pointer: *mut c_void,
    /// `EvtVmbChannelProcessPacket`.
    pub process_packet: PFN_VMB_CHANNEL_PROCESS_PACKET,
    /// `EvtVmbChannelProcessingComplete` (optional).
    pub processing_complete: PFN_VMB_CHANNEL_PROCESSING_COMPLETE,
    /// The driver's `VMB_CHANNEL_STATE_CHANGE_CALLBACKS`: kept as a pointer and read at every
    /// callback, so the driver must keep it alive (kmcl.md §1.5).
    pub state_callbacks: *const VMB_CHANNEL_STATE_CHANGE_CALLBACKS,
    /// `EvtVmbChannelSavePacket`.
    pub save_packet: PFN_VMB_CHANNEL_SAVE_PACKET,
    /// `EvtVmbChannelRestorePacket`.
    pub restore_packet: PFN_VMB_CHANNEL_RESTORE_PACKET,
    /// `VmbChannelSetTransactionQuota`'s value.
    pub quota: Option<u32>,
    /// `VmbChannelInitSetMaximumPacketSize`'s value.
    pub maximum_packet_size: Option<u32>,
    /// `VmbServerChannelInitSetFlags`'s flags.
    pub server_flags: u32,
    /// `VmbServerChannelInitSetTargetInterfaceId`: (type, instance).
    pub interface: Option<(GUID, GUID)>,
    /// The VM bound by `VmbServerChannelInitSetVmbusHandle`.
    pub vm: Option<u32>,
    /// State callbacks running now (Start/Pause/Disable are illegal inside one).
    pub in_state_callback: u32,
    /// Between EvtChannelSuspend and the next EvtChannelStarted.
    pub suspended: bool,
    /// Inside EvtVmbChannelRestorePacket (VmbPacketRestore is legal only there).
    pub restoring: bool,
}

impl ChannelObject {
    fn new() -> Self {
        Self {
            phase: Phase::Allocated,
            mock: None,
            calls: Vec::new(),
            pointer: std::ptr::null_mut(),
            process_packet: None,
            processing_complete: None,
            state_callbacks: std::ptr::null(),
            save_packet: None,
            restore_packet: None,
            quota: None,
            maximum_packet_size: None,
            server_flags: 0,
            interface: None,
            vm: None,
            in_state_callback: 0,
            suspended: false,
            restoring: false,
        }
    }
}

/// Where an outgoing packet object is.
#[derive(Debug)]
pub enum PacketState {
    /// Allocated, owned by the driver (it may free it).
    Allocated,
    /// Sent or restored: KMCL owns it until the completion routine runs.
    InFlight,
    /// The completion routine ran: the driver owns it again and must free it.
    Completed,
}

/// One `VMBPACKET`.
pub struct PacketObject {
    /// The id of the channel it belongs to.
    pub channel: u64,
    /// The driver's `VmbPacketSetPointer` value.
    pub pointer: *mut c_void,
    /// The completion routine the driver set.
    pub routine: PFN_VMB_PACKET_COMPLETION_ROUTINE,
    /// Who owns it now.
    pub state: PacketState,
}

/// `FwpsvSwitchEventsSubscribe0`'s arguments.
pub struct Subscribed {
    /// The subscription id handed back.
    pub id: u32,
    /// The `notifyContext` to pass to every event.
    pub context: *mut c_void,
    /// The driver's dispatch table (copied).
    pub table: FWPS_VSWITCH_EVENT_DISPATCH_TABLE0,
}

/// A runtime-state save the driver pended: the switch's completion and the two
/// out-parameters it handed to the callback (heap-pinned, as in WFP's request context).
pub struct PendedSave {
    /// The simulated switch's handle of the save.
    pub completion: PortSaveCompletion,
    /// `(*stateOut, *stateLength)` as the driver writes them.
    pub out: Box<(*mut c_void, usize)>,
}

/// Counts of what crossed the C boundary.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AbiCounts {
    /// ProcessPacket calls.
    pub process_packet: u64,
    /// `VmbChannelPacketComplete` calls.
    pub packet_complete: u64,
    /// `VmbChannelPacketFail` calls.
    pub packet_fail: u64,
    /// Packet completion routines run.
    pub completion_routine: u64,
    /// SavePacket size calls (NULL buffer).
    pub save_packet_size_calls: u64,
    /// SavePacket fill calls.
    pub save_packet_fill_calls: u64,
    /// RestorePacket calls.
    pub restore_packet: u64,
    /// `VmbPacketRestore` calls.
    pub packet_restore: u64,
    /// Port create/delete events delivered.
    pub port_events: u64,
    /// Runtime-state saves answered at once.
    pub saves_returned: u64,
    /// Runtime-state saves answered `STATUS_PENDING`.
    pub saves_pended: u64,
    /// `FwpsvSwitchNotifyComplete0` calls.
    pub notify_complete: u64,
    /// Runtime-state restores delivered.
    pub restores: u64,
}

/// The C-side state of one simulated host.
#[derive(Default)]
pub struct AbiState {
    next_id: Cell<u64>,
    /// Every `VMBCHANNEL` by id (cleaned-up ones stay, in phase `CleanedUp`).
    pub channels: RefCell<BTreeMap<u64, ChannelObject>>,
    /// The simulated KMCL's channel -> the C side's id.
    pub by_mock: RefCell<BTreeMap<ChannelHandle, u64>>,
    /// Every `VMBPACKET` by id, until freed.
    pub packets: RefCell<BTreeMap<u64, PacketObject>>,
    /// Delivered incoming packets not completed: id -> (channel, the simulated KMCL's handle).
    pub incoming: RefCell<BTreeMap<u64, (u64, IncomingPacketHandle)>>,
    /// SavePacket size answers awaiting their fill call: packet -> bytes asked for.
    pub save_sizes: RefCell<BTreeMap<u64, u32>>,
    /// The live subscription, if any.
    pub subscription: RefCell<Option<Subscribed>>,
    /// Pended runtime-state saves by the switch's save id.
    pub saves: RefCell<BTreeMap<u64, PendedSave>>,
    /// Kernel VMBus handles of the VMs on this host: handle id -> VM.
    pub vms: RefCell<BTreeMap<u64, u32>>,
    /// Contract violations noticed at the C boundary.
    pub violations: RefCell<Vec<String>>,
    /// What the driver logged on this host.
    pub log: RefCell<Vec<String>>,
    /// Counts of what crossed the boundary.
    pub counts: Cell<AbiCounts>,
    /// The most recent `VMBPACKETCOMPLETION` handed to ProcessPacket (for contract tests).
    pub last_incoming: Cell<usize>,
}

impl AbiState {
    /// A fresh object id (never reused).
    pub fn new_id(&self) -> u64 {
        let id = self.next_id.get() + 1;
        self.next_id.set(id);
        id
    }

    /// Records a contract violation.
    pub fn violation(&self, text: String) {
        self.violations.borrow_mut().push(text);
    }

    /// Bumps one counter.
    pub fn count(&self, f: impl FnOnce(&mut AbiCounts)) {
        let mut counts = self.counts.get();
        f(&mut counts);
        self.counts.set(counts);
    }

    /// Allocates a channel object; returns its id.
    pub fn add_channel(&self) -> u64 {
        let id = self.new_id();
        self.channels.borrow_mut().insert(id, ChannelObject::new());
        id
    }

    /// The id of the channel the simulated KMCL calls `mock`.
    pub fn channel_of_mock(&self, mock: ChannelHandle) -> Option<u64> {
        self.by_mock.borrow().get(&mock).copied()
    }
}

/// One simulated Hyper-V host: platform-mock's KMCL, switch and clock, and the C side.
pub struct SimHost {
    /// The host's index (its handles carry it).
    pub index: usize,
    /// platform-mock's KMCL, switch and clock.
    pub services: HostServices,
    /// The C side's state.
    pub abi: AbiState,
}

impl SimHost {
    /// Registers VM `vm`'s VMBus on this host: the handle the VM worker process would pass
    /// to the driver (before `VmbConvertVmbusHandleToKernelHandle`).
    pub fn add_vm(&self, vm: u32) -> *mut c_void {
        encode(self.index, Tag::UserVmbus, u64::from(vm))
    }

    /// The kernel handle of VM `vm`'s VMBus (what `VmbConvertVmbusHandleToKernelHandle`
    /// returns for [`Self::add_vm`]'s handle).
    pub fn kernel_vmbus(&self, vm: u32) -> *mut c_void {
        let id = self.abi.new_id();
        self.abi.vms.borrow_mut().insert(id, vm);
        encode(self.index, Tag::KernelVmbus, id)
    }

    /// Violations noticed by the C side, the simulated KMCL and the simulated switch; the
    /// lists are emptied.
    pub fn take_violations(&self) -> Vec<String> {
        let mut all = std::mem::take(&mut *self.abi.violations.borrow_mut());
        all.extend(self.services.kmcl.take_violations());
        all.extend(self.services.vswitch.take_violations());
        all.into_iter()
            .map(|v| format!("host-{}: {v}", self.index))
            .collect()
    }
}

/// A guest agent for VM `vm` that acknowledges every notification at once (no late or
/// withheld acks): the scenarios that are about the host side, not the guest's timing.
#[must_use]
pub fn prompt_guest(vm: u32) -> GuestAgent {
    GuestAgent::new(
        vm,
        AckPolicy {
            late_percent: 0,
            late_ticks: 0,
            never_percent: 0,
        },
    )
}

thread_local! {
    static HOSTS: RefCell<Vec<Rc<SimHost>>> = const { RefCell::new(Vec::new()) };
}

/// Makes `hosts` this thread's simulated hosts (index = position).
pub fn install(hosts: Vec<Rc<SimHost>>) {
    HOSTS.with(|h| *h.borrow_mut() = hosts);
}

/// Host `index` of this thread, if installed.
pub fn host(index: usize) -> Option<Rc<SimHost>> {
    HOSTS.with(|h| h.borrow().get(index).cloned())
}

/// Host `N`: a C function of host `N` can only be reached once its host is installed (the
/// platform's tables are built from it), so a missing host is a harness bug.
pub fn host_of<const N: usize>() -> Rc<SimHost> {
    host(N).unwrap_or_else(|| {
        eprintln!("simulated host {N} is not installed on this thread");
        std::process::abort()
    })
}
