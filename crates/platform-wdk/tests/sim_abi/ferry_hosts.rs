//! ferry loaded on each simulated host: the `static` platform, port table and vSwitch state
//! `ferry.sys` keeps (`crates/driver/src/wiring.rs`), one set per host, and [`Driver`], the
//! driver's wiring on that host — what `DriverEntry`, the control device's IOCTLs and unload
//! do, through platform-wdk's public API only.
//!
//! `FerryHost` wants `'static` references, so each host's statics are real `static`s
//! ([`Ferry<0>`], [`Ferry<1>`], [`Ferry<2>`]); tests that use them run one at a time
//! (`crate::serial`). Each platform is built exactly as in the driver, except that its tables
//! come from the simulated host: `KmclTable::from_server_interface` on host `N`'s
//! `KMCL_SERVER_INTERFACE_V1`, a `WfpTable` of host `N`'s three functions, and
//! `packet_completion::<Ferry<N>>` as the completion routine.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::ffi::c_void;
use std::sync::OnceLock;

use ferry_core::channel::ChannelStats;
use ferry_core::port::{
    FrameInfo, PortConfig, PortCounters, PortIdentity, PortTable, SwitchPortId, Verdict,
};
use ferry_core::protocol::EventSet;
use ferry_core::service::ServiceConfig;
use ferry_core::status::NtStatus;
use ferry_platform_mock::driver::PortSnapshot;
use ferry_platform_mock::kmcl::ServerCallbacks;
use ferry_platform_mock::vswitch::VSwitchCallout;
use ferry_platform_wdk::ffi::base::GUID;
use ferry_platform_wdk::ffi::kmcl::VMBCHANNEL;
use ferry_platform_wdk::host::channel::{
    OfferConfig, OfferedChannel, SaveChunk, SaveChunkError, packet_completion,
};
use ferry_platform_wdk::host::vswitch::{Subscription, VSwitch};
use ferry_platform_wdk::host::{FerryHost, WdkPortTable};
use ferry_platform_wdk::kernel::services::KernelServices;
use ferry_platform_wdk::platform::WdkPlatform;
use ferry_platform_wdk::tables::KmclTable;

use crate::kernel::SimKernel;
use crate::kmcl_callbacks::CCallbacks;
use crate::kmcl_table;
use crate::wfp_table::{self, CCallout, SwitchSide};

/// Simulated hosts a scenario can use.
pub const HOSTS: usize = 3;

/// ferry's WFP provider GUID (the driver's `FERRY_PROVIDER`).
pub const PROVIDER: GUID = GUID {
    Data1: 0xF3A7_E2C1,
    Data2: 0x6B0D,
    Data3: 0x4C5E,
    Data4: [0x9A, 0x41, 0x2F, 0x8E, 0x5D, 0x7C, 0x9B, 0x30],
};

/// The interface type GUID ferry offers.
pub const INTERFACE_TYPE: GUID = GUID {
    Data1: 0xF3A7_0001,
    Data2: 1,
    Data3: 1,
    Data4: [1; 8],
};

/// ferry loaded on simulated host `N`.
pub enum Ferry<const N: usize> {}

/// What the scenario needs of a host beyond `FerryHost`.
pub trait SimFerryHost: FerryHost + SwitchSide {
    /// The host's `static` vSwitch state.
    fn vswitch() -> &'static VSwitch<Self::Kernel>;
    /// The simulated KMCL's view of the host's callbacks.
    fn callbacks() -> &'static dyn ServerCallbacks;
}

macro_rules! ferry_on_host {
    ($n:literal, $platform:ident, $ports:ident, $vswitch:ident) => {
        static $platform: OnceLock<WdkPlatform<SimKernel<$n>>> = OnceLock::new();
        static $ports: WdkPortTable<SimKernel<$n>> = PortTable::new();
        static $vswitch: OnceLock<VSwitch<SimKernel<$n>>> = OnceLock::new();

        impl FerryHost for Ferry<$n> {
            type Kernel = SimKernel<$n>;

            fn platform() -> &'static WdkPlatform<SimKernel<$n>> {
                $platform.get_or_init(|| {
                    let kmcl = KmclTable::from_server_interface(&kmcl_table::interface::<$n>())
                        .expect("the simulated host fills every member ferry needs");
                    WdkPlatform::new(
                        kmcl,
                        wfp_table::table::<$n>(),
                        Some(packet_completion::<Ferry<$n>>),
                    )
                })
            }

            fn ports() -> &'static WdkPortTable<SimKernel<$n>> {
                &$ports
            }
        }

        impl SimFerryHost for Ferry<$n> {
            fn vswitch() -> &'static VSwitch<SimKernel<$n>> {
                $vswitch.get_or_init(|| VSwitch::new(Self::platform(), &$ports))
            }

            fn callbacks() -> &'static dyn ServerCallbacks {
                &CCallbacks::<$n>
            }
        }

        impl SwitchSide for Ferry<$n> {
            const INDEX: usize = $n;

            /// Straight into the port table: these statics register no callouts.
            fn classify(port: SwitchPortId, frame: &FrameInfo) -> Verdict {
                $ports
                    .classify(port, frame, SimKernel::<$n>::now())
                    .unwrap_or(Verdict::Permit)
            }
        }
    };
}

ferry_on_host!(0, PLATFORM_0, PORTS_0, VSWITCH_0);
ferry_on_host!(1, PLATFORM_1, PORTS_1, VSWITCH_1);
ferry_on_host!(2, PLATFORM_2, PORTS_2, VSWITCH_2);

/// The driver's operations on one host, as the scenario drives them (object-safe, so a
/// scenario can pick a host at run time).
pub trait DriverOps {
    /// `DriverEntry`'s part: subscribe to the vSwitch events.
    ///
    /// # Errors
    ///
    /// WFP's status.
    fn load(&self) -> Result<(), NtStatus>;
    /// Unload in `wiring::stop`'s order: close every channel (Disable waits for its
    /// callbacks), then unsubscribe (pending saves cancelled, blobs freed).
    fn unload(&self);
    /// The offer IOCTL: converts the VM worker's VMBus handle, offers a channel for the NIC
    /// `identity`, and (`start`) starts it at once, as the real host does (kmcl.md §1.9).
    ///
    /// # Errors
    ///
    /// The failing status.
    fn offer(
        &self,
        vmbus: *mut c_void,
        identity: PortIdentity,
        start: bool,
    ) -> Result<VMBCHANNEL, NtStatus>;
    /// `VmbChannelStart` after core's request.
    fn start(&self, channel: VMBCHANNEL);
    /// `VmbChannelPause` after core's request.
    fn pause(&self, channel: VMBCHANNEL);
    /// Revokes and frees the channel; returns core's counters as they were before.
    fn close(&self, channel: VMBCHANNEL) -> Option<ChannelStats>;
    /// Core's (incoming, outgoing) outstanding counts.
    fn outstanding(&self, channel: VMBCHANNEL) -> Option<(usize, usize)>;
    /// Core's counters.
    fn stats(&self, channel: VMBCHANNEL) -> Option<ChannelStats>;
    /// Raises `events` on the channel's service and sends what it can.
    ///
    /// # Errors
    ///
    /// Core's refusal, as text.
    fn raise(&self, channel: VMBCHANNEL, events: EventSet) -> Result<usize, String>;
    /// The save IOCTL: the session blob, then KMCL's stream in chunks of the sizes `size`
    /// returns (a too-small one is retried with the size KMCL asks for).
    ///
    /// # Errors
    ///
    /// Why the save failed (SaveEnd has run).
    fn save_channel(
        &self,
        channel: VMBCHANNEL,
        size: &mut dyn FnMut() -> usize,
    ) -> Result<(Vec<u8>, Vec<Vec<u8>>), String>;
    /// The restore IOCTL: session blob, then every chunk, then `Restored` in core.
    ///
    /// # Errors
    ///
    /// Why the bytes were refused.
    fn restore_channel(
        &self,
        channel: VMBCHANNEL,
        session: &[u8],
        chunks: &[Vec<u8>],
    ) -> Result<(), String>;
    /// Whether runtime-state saves answer `STATUS_PENDING`.
    fn set_pend_saves(&self, pend: bool);
    /// Finishes a pended save (`FwpsvSwitchNotifyComplete0`).
    fn finish_save(&self, port: SwitchPortId) -> bool;
    /// Pended saves not finished.
    fn pending_saves(&self) -> usize;
    /// Runtime-state blobs the driver holds for WFP.
    fn published_states(&self) -> usize;
    /// Gives a port created through PORT_CREATE its NIC identity and rate limits (what the
    /// interface events would carry; platform-wdk does not bind them yet).
    ///
    /// # Errors
    ///
    /// Core's refusal, as text.
    fn bind_nic(
        &self,
        port: SwitchPortId,
        identity: PortIdentity,
        config: PortConfig,
    ) -> Result<(), String>;
    /// A port's state, comparable across hosts.
    fn snapshot(&self, port: SwitchPortId) -> Option<PortSnapshot>;
    /// The counters of the port serving `identity`.
    fn counters_by_identity(&self, identity: &PortIdentity) -> Option<PortCounters>;
    /// Ports in the driver's table.
    fn ports_len(&self) -> usize;
    /// Deletes `ports` from the `static` port table (after unload: the image and its table
    /// would be gone; the tests reuse the statics).
    fn forget_ports(&self, ports: &[SwitchPortId]);
    /// The switch's way into the driver.
    fn callout(&self) -> &dyn VSwitchCallout;
    /// KMCL's way into the driver.
    fn callbacks(&self) -> &'static dyn ServerCallbacks;
    /// Channels offered and not closed.
    fn channels(&self) -> usize;
}

/// ferry's wiring on host `H`: the offered channels and the subscription.
pub struct Driver<H: SimFerryHost> {
    channels: RefCell<BTreeMap<usize, OfferedChannel<H::Kernel>>>,
    subscription: RefCell<Option<Subscription>>,
    callout: CCallout<H>,
    next_instance: std::cell::Cell<u32>,
}

impl<H: SimFerryHost> Driver<H> {
    /// ferry on host `H`, not loaded yet.
    pub fn new() -> Self {
        Self {
            channels: RefCell::new(BTreeMap::new()),
            subscription: RefCell::new(None),
            callout: CCallout::new(),
            next_instance: std::cell::Cell::new(0),
        }
    }

    fn with<R>(
        &self,
        channel: VMBCHANNEL,
        f: impl FnOnce(&OfferedChannel<H::Kernel>) -> R,
    ) -> Option<R> {
        self.channels.borrow().get(&channel.as_raw().addr()).map(f)
    }
}

impl<H: SimFerryHost> DriverOps for Driver<H> {
    fn load(&self) -> Result<(), NtStatus> {
        let subscription = H::vswitch().subscribe(&PROVIDER)?;
        *self.subscription.borrow_mut() = Some(subscription);
        Ok(())
    }

    fn unload(&self) {
        let channels = std::mem::take(&mut *self.channels.borrow_mut());
        for (_, channel) in channels {
            channel.close::<H>();
        }
        if let Some(subscription) = self.subscription.borrow_mut().take() {
            H::vswitch().unsubscribe(subscription);
        }
    }

    fn offer(
        &self,
        vmbus: *mut c_void,
        identity: PortIdentity,
        start: bool,
    ) -> Result<VMBCHANNEL, NtStatus> {
        let mut kernel = std::ptr::null_mut();
        let convert = H::platform().kmcl().convert_vmbus_handle_to_kernel_handle;
        // SAFETY: the VM worker's handle and a valid out-pointer (the IOCTL handler's call,
        // in the worker process's context).
        let status = unsafe { convert(vmbus, &raw mut kernel) };
        if !status.is_success() {
            return Err(status);
        }
        self.next_instance.set(self.next_instance.get() + 1);
        let config = OfferConfig {
            device: std::ptr::null_mut(),
            interface_type: INTERFACE_TYPE,
            interface_instance: GUID {
                Data1: self.next_instance.get(),
                Data2: 0,
                Data3: 0,
                Data4: [H::INDEX as u8; 8],
            },
            vmbus: Some(kernel),
            loopback: false,
            identity: Some(identity),
            service: ServiceConfig::default(),
            maximum_packet_size: 0x4000,
        };
        let offered = OfferedChannel::offer::<H>(&config)?;
        let handle = offered.handle();
        if start {
            offered.start::<H>().map_err(|e| e.status())?;
        }
        self.channels
            .borrow_mut()
            .insert(handle.as_raw().addr(), offered);
        Ok(handle)
    }

    fn start(&self, channel: VMBCHANNEL) {
        if let Some(Err(error)) = self.with(channel, |c| c.start::<H>()) {
            H::Kernel::log(
                ferry_platform_wdk::kernel::log::Level::Warning,
                format_args!("start refused by core: {error}"),
            );
        }
    }

    fn pause(&self, channel: VMBCHANNEL) {
        if let Some(Err(error)) = self.with(channel, |c| c.pause::<H>()) {
            H::Kernel::log(
                ferry_platform_wdk::kernel::log::Level::Warning,
                format_args!("pause refused by core: {error}"),
            );
        }
    }

    fn close(&self, channel: VMBCHANNEL) -> Option<ChannelStats> {
        let offered = self
            .channels
            .borrow_mut()
            .remove(&channel.as_raw().addr())?;
        // Read before close frees the context (no packet is delivered during close).
        let stats = offered.channel().stats();
        offered.close::<H>();
        Some(stats)
    }

    fn outstanding(&self, channel: VMBCHANNEL) -> Option<(usize, usize)> {
        self.with(channel, |c| c.channel().outstanding())
    }

    fn stats(&self, channel: VMBCHANNEL) -> Option<ChannelStats> {
        self.with(channel, |c| c.channel().stats())
    }

    fn raise(&self, channel: VMBCHANNEL, events: EventSet) -> Result<usize, String> {
        self.with(channel, |c| {
            c.channel().with_service(|s| s.raise(events));
            c.channel()
                .send_pending(H::platform())
                .map_err(|e| e.to_string())
        })
        .unwrap_or(Ok(0))
    }

    fn save_channel(
        &self,
        channel: VMBCHANNEL,
        size: &mut dyn FnMut() -> usize,
    ) -> Result<(Vec<u8>, Vec<Vec<u8>>), String> {
        let channels = self.channels.borrow();
        let offered = channels
            .get(&channel.as_raw().addr())
            .ok_or("no such channel")?;
        let mut session = vec![0u8; offered.saved_session_len()];
        let n = offered
            .save_session(&mut session)
            .map_err(|s| format!("session save: {s}"))?;
        session.truncate(n);
        if let Err(status) = offered.save_begin::<H>() {
            offered.save_end::<H>();
            return Err(format!("VmbChannelSaveBegin: {status}"));
        }
        let mut chunks = Vec::new();
        let mut next = size();
        let result = loop {
            let mut buffer = vec![0u8; next];
            match offered.save_continue::<H>(&mut buffer) {
                Ok(SaveChunk::More(n)) => {
                    buffer.truncate(n as usize);
                    chunks.push(buffer);
                    next = size();
                }
                Ok(SaveChunk::Last(n)) => {
                    buffer.truncate(n as usize);
                    chunks.push(buffer);
                    break Ok(());
                }
                Err(SaveChunkError::TooSmall { required }) if required as usize > next => {
                    next = required as usize;
                }
                Err(error) => break Err(format!("VmbChannelSaveContinue: {error:?}")),
            }
        };
        offered.save_end::<H>();
        result.map(|()| (session, chunks))
    }

    fn restore_channel(
        &self,
        channel: VMBCHANNEL,
        session: &[u8],
        chunks: &[Vec<u8>],
    ) -> Result<(), String> {
        let channels = self.channels.borrow();
        let offered = channels
            .get(&channel.as_raw().addr())
            .ok_or("no such channel")?;
        offered
            .restore_session(session)
            .map_err(|s| format!("session refused: {s}"))?;
        let mut more = true;
        for chunk in chunks {
            more = offered
                .restore_chunk::<H>(chunk)
                .map_err(|s| format!("VmbChannelRestoreFromBuffer: {s}"))?;
        }
        if more {
            return Err("the stream ended before KMCL had all of it".into());
        }
        offered
            .restored()
            .map_err(|e| format!("Restored refused by core: {e}"))
    }

    fn set_pend_saves(&self, pend: bool) {
        H::vswitch().set_pend_saves(pend);
    }

    fn finish_save(&self, port: SwitchPortId) -> bool {
        H::vswitch().finish_save(port)
    }

    fn pending_saves(&self) -> usize {
        H::vswitch().pending_saves()
    }

    fn published_states(&self) -> usize {
        H::vswitch().published_states()
    }

    fn bind_nic(
        &self,
        port: SwitchPortId,
        identity: PortIdentity,
        config: PortConfig,
    ) -> Result<(), String> {
        let ports = H::ports();
        ports.delete_port(port).map_err(|e| e.to_string())?;
        ports
            .create_port(port, Some(identity), config)
            .map_err(|e| e.to_string())
    }

    fn snapshot(&self, port: SwitchPortId) -> Option<PortSnapshot> {
        let now = H::Kernel::now();
        H::ports()
            .with_port(port, |state| PortSnapshot::of(state, now))
            .ok()
    }

    fn counters_by_identity(&self, identity: &PortIdentity) -> Option<PortCounters> {
        H::ports()
            .counters_by_identity(identity)
            .ok()
            .map(|(_, c)| c)
    }

    fn ports_len(&self) -> usize {
        H::ports().len()
    }

    fn forget_ports(&self, ports: &[SwitchPortId]) {
        for port in ports {
            let _ = H::ports().delete_port(*port);
        }
    }

    fn callout(&self) -> &dyn VSwitchCallout {
        &self.callout
    }

    fn callbacks(&self) -> &'static dyn ServerCallbacks {
        H::callbacks()
    }

    fn channels(&self) -> usize {
        self.channels.borrow().len()
    }
}

/// ferry on every host (not loaded).
pub fn drivers() -> Vec<Box<dyn DriverOps>> {
    vec![
        Box::new(Driver::<Ferry<0>>::new()),
        Box::new(Driver::<Ferry<1>>::new()),
        Box::new(Driver::<Ferry<2>>::new()),
    ]
}
