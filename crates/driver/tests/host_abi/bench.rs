//! The test bench: simulated hosts installed on the test thread, the driver loaded on one of
//! them through the fake I/O manager, handles to its device, VMs whose guest agents speak
//! ferry's protocol over a channel the driver offered, and the checks that end every test.

use std::rc::Rc;
use std::sync::MutexGuard;

use ferry_core::port::{FrameInfo, PortConfig, PortIdentity, SwitchPortId, Verdict};
use ferry_core::status::NtStatus;
use ferry_driver::entry::DriverEntry;
use ferry_driver::wiring::{self, CONTROL, Driver};
use ferry_platform_mock::clock::{HostClock, VirtualTime};
use ferry_platform_mock::guest::GuestAgent;
use ferry_platform_mock::kmcl::{ChannelHandle, Kmcl, ServerCallbacks};
use ferry_platform_mock::platform::HostServices;
use ferry_platform_mock::rng::SimRng;
use ferry_platform_mock::vswitch::{VSwitch, VSwitchCallout};
use ferry_platform_wdk::control::access::DEVICE_SECURITY_DESCRIPTOR_LEN;
use ferry_platform_wdk::control::request::{
    IOCTL_FERRY_OFFER_CHANNEL, IOCTL_FERRY_OFFER_LOOPBACK, IOCTL_FERRY_READ_PORT_STATS,
    OFFER_OUTPUT_LEN, PORT_STATS_OUTPUT_LEN,
};
use ferry_platform_wdk::ffi::fwps::{
    FWP_ACTION_CONTINUE, FWPS_LAYER_INGRESS_VSWITCH_ETHERNET, FWPS_RIGHT_ACTION_WRITE,
};
use ferry_platform_wdk::host::FerryHost;
use ferry_sim_abi::fake_engine::{self, Metadata, udp_frame};
use ferry_sim_abi::ioctl;
use ferry_sim_abi::kmcl_callbacks::CCallbacks;
use ferry_sim_abi::nt::{self, io, kernel};
use ferry_sim_abi::sim_host::{Phase, SimHost, install, prompt_guest};
use ferry_sim_abi::wfp_table::{CCallout, SwitchSide};

/// The control device's name.
pub const DEVICE_NAME: &str = "\\Device\\Ferry";
/// Its symbolic link (`\\.\Ferry` from user mode).
pub const LINK_NAME: &str = "\\DosDevices\\Ferry";
/// The status injected failures return (a facility-34 error no import returns by itself).
pub const INJECTED: NtStatus = NtStatus(0xC022_0ABC_u32.cast_signed());

/// The driver's switch side on host `N`. Frames reach the driver's callouts through the fake
/// filter engine's classify (the C path), never through the simulated switch's classify,
/// which therefore only answers `Permit`.
pub enum Side<const N: usize> {}

impl<const N: usize> SwitchSide for Side<N> {
    const INDEX: usize = N;

    fn classify(_port: SwitchPortId, _frame: &FrameInfo) -> Verdict {
        Verdict::Permit
    }
}

static CALLOUT_0: CCallout<Side<0>> = CCallout::new();
static CALLOUT_1: CCallout<Side<1>> = CCallout::new();

/// The switch's way into the driver on `host` (its subscribed dispatch table, through C).
pub fn callout(host: usize) -> &'static dyn VSwitchCallout {
    match host {
        0 => &CALLOUT_0,
        _ => &CALLOUT_1,
    }
}

/// KMCL's way into the driver on `host` (the callbacks the driver registered, through C).
pub fn callbacks(host: usize) -> &'static dyn ServerCallbacks {
    match host {
        0 => &CCallbacks::<0>,
        _ => &CCallbacks::<1>,
    }
}

/// A NIC's identity: `"NIC-"` and the VM id.
pub fn nic(vm: u32) -> PortIdentity {
    let mut bytes = [0u8; 16];
    bytes[..4].copy_from_slice(b"NIC-");
    bytes[4..8].copy_from_slice(&vm.to_be_bytes());
    PortIdentity(bytes)
}

/// A VM on a host: its channel as the guest sees it and the guest agent.
pub struct Vm {
    /// The host it runs on.
    pub host: usize,
    /// The channel id the offer IOCTL answered.
    pub channel: u32,
    /// The simulated KMCL's channel.
    pub mock: ChannelHandle,
    /// The guest.
    pub guest: GuestAgent,
}

/// Two simulated hosts and the driver.
pub struct Bench {
    _serial: MutexGuard<'static, ()>,
    /// Virtual time shared by the hosts (each clock has its own offset).
    pub time: VirtualTime,
    /// Host 0 and host 1.
    pub hosts: Vec<Rc<SimHost>>,
    /// Randomness for the guests.
    pub rng: SimRng,
}

impl Bench {
    /// Two fresh hosts; the driver not loaded; every record emptied. Asserts that the
    /// driver's statics hold nothing from an earlier test.
    pub fn new(seed: u64) -> Self {
        let serial = nt::serial();
        let mut rng = SimRng::new(seed);
        let time = VirtualTime::new();
        let hosts: Vec<Rc<SimHost>> = (0..2)
            .map(|index| {
                Rc::new(SimHost {
                    index,
                    services: HostServices {
                        kmcl: Kmcl::new(),
                        vswitch: VSwitch::new(100 * (index as u32 + 1)),
                        clock: HostClock::new(time.clone(), rng.range(1, 1 << 40)),
                    },
                    abi: Default::default(),
                })
            })
            .collect();
        install(hosts.clone());
        nt::take_calls();
        nt::take_violations();
        kernel::take_debug_output();
        fake_engine::reset();
        io::keep_descriptors(DEVICE_SECURITY_DESCRIPTOR_LEN);
        let bench = Self {
            _serial: serial,
            time,
            hosts,
            rng,
        };
        bench.assert_driver_holds_nothing();
        bench
    }

    /// Loads the driver on `host`: the real `DriverEntry`.
    pub fn load(&self, host: usize) -> NtStatus {
        // SAFETY: ferry's DriverEntry, whose imports are ferry-sim-abi's.
        unsafe { io::load(host, DriverEntry) }
    }

    /// Loads the driver on `host` and asserts it loaded.
    pub fn load_ok(&self, host: usize) {
        assert_eq!(
            self.load(host),
            NtStatus::SUCCESS,
            "{:?}",
            kernel::take_debug_output()
        );
    }

    /// Unloads the driver (its unload routine must be set) and asserts that nothing of it is
    /// left on `host`.
    pub fn unload(&self, host: usize) {
        assert!(io::unload(), "DriverEntry set no unload routine");
        self.assert_nothing_left(host);
    }

    /// Opens `\\.\Ferry`.
    pub fn open(&self) -> io::Handle {
        io::open(LINK_NAME).expect("the device opens")
    }

    /// What the driver's statics must hold when it is not loaded: no channel, no port, no
    /// pending save, no published blob, no pool block.
    pub fn assert_driver_holds_nothing(&self) {
        assert!(
            CONTROL.registry().is_empty(),
            "channels left in the registry"
        );
        assert_eq!(Driver::ports().len(), 0, "ports left in the port table");
        assert_eq!(wiring::vswitch().pending_saves(), 0, "pending saves left");
        assert_eq!(
            wiring::vswitch().published_states(),
            0,
            "runtime-state blobs left"
        );
        assert_eq!(kernel::live_pool(), (0, 0), "pool blocks left");
    }

    /// After unload or a failed `DriverEntry`: nothing registered anywhere, nothing held.
    pub fn assert_nothing_left(&self, host: usize) {
        self.assert_driver_holds_nothing();
        assert!(
            io::devices().is_empty(),
            "devices left: {:?}",
            io::devices()
        );
        assert!(io::links().is_empty(), "links left: {:?}", io::links());
        let h = &self.hosts[host];
        assert!(h.abi.subscription.borrow().is_none(), "still subscribed");
        assert!(
            h.abi.saves.borrow().is_empty(),
            "a pended save never completed"
        );
        assert!(
            h.abi.vms.borrow().is_empty(),
            "kernel VMBus handles left open"
        );
        assert!(h.abi.packets.borrow().is_empty(), "packet objects left");
        assert!(
            h.abi
                .channels
                .borrow()
                .values()
                .all(|c| c.phase == Phase::CleanedUp),
            "channels not cleaned up"
        );
        fake_engine::assert_clean();
    }

    /// Every broken rule noticed anywhere (imports, I/O manager, hosts, guests) — there must
    /// be none — and the driver must be unloaded.
    pub fn finish(self, vms: &[Vm]) {
        let mut violations = nt::take_violations();
        for host in &self.hosts {
            violations.extend(host.take_violations());
        }
        for vm in vms {
            violations.extend(vm.guest.ledger.violations.iter().cloned());
        }
        assert!(violations.is_empty(), "violations: {violations:#?}");
    }

    /// The switch on `host` creates a port for `nic` (PORT_CREATE through the dispatch
    /// table). The NIC's identity arrives with the interface events, which platform-wdk does
    /// not bind yet: the test binds it in the driver's port table, as those events would.
    pub fn create_port(&self, host: usize, nic: PortIdentity) -> SwitchPortId {
        let port = self.hosts[host]
            .services
            .vswitch
            .create_port(nic, callout(host))
            .expect("PORT_CREATE");
        let ports = Driver::ports();
        assert!(
            ports.counters(port).is_ok(),
            "PORT_CREATE reached the driver's port table"
        );
        ports.delete_port(port).unwrap();
        ports
            .create_port(port, Some(nic), PortConfig::UNLIMITED)
            .unwrap();
        port
    }

    /// The switch on `host` deletes `port` (PORT_DELETE).
    pub fn delete_port(&self, host: usize, port: SwitchPortId) {
        self.hosts[host]
            .services
            .vswitch
            .delete_port(port, callout(host));
        assert!(
            Driver::ports().counters(port).is_err(),
            "PORT_DELETE reached the driver"
        );
    }

    /// Offers a channel to VM `id` on `host` through `IOCTL_FERRY_OFFER_CHANNEL` and lets
    /// the guest open it (unless `flags` leave it paused for a restore).
    pub fn offer(&mut self, handle: &io::Handle, host: usize, id: u32, flags: u32) -> Vm {
        let vmbus = self.hosts[host].add_vm(id);
        let input = ioctl::Offer {
            flags,
            vmbus_handle: vmbus.addr() as u64,
            interface_type: [0x46; 16],
            interface_instance: [id as u8; 16],
            nic: nic(id).0,
            maximum_packet_size: 0x4000,
        };
        let reply =
            handle.device_control(IOCTL_FERRY_OFFER_CHANNEL, &input.encode(), OFFER_OUTPUT_LEN);
        assert_eq!(
            reply.status,
            NtStatus::SUCCESS,
            "offer: {:?}",
            kernel::take_debug_output()
        );
        assert_eq!(reply.information, OFFER_OUTPUT_LEN);
        let channel = u32::from_le_bytes(reply.output.try_into().unwrap());
        let mock = self.latest_mock(host);
        let mut guest = prompt_guest(id);
        if flags & ferry_platform_wdk::control::request::OFFER_FLAG_START_PAUSED == 0 {
            let status = self.hosts[host]
                .services
                .kmcl
                .guest_open(mock, callbacks(host));
            assert_eq!(status, NtStatus::SUCCESS, "the guest opens the channel");
            guest.set_open(true);
        }
        let mut vm = Vm {
            host,
            channel,
            mock,
            guest,
        };
        self.deliver(&mut vm);
        vm
    }

    /// Offers a loopback channel; returns its id.
    pub fn offer_loopback(&self, handle: &io::Handle) -> Result<u32, NtStatus> {
        let input = loopback_offer();
        let reply = handle.device_control(
            IOCTL_FERRY_OFFER_LOOPBACK,
            &input.encode(),
            OFFER_OUTPUT_LEN,
        );
        if reply.status != NtStatus::SUCCESS {
            return Err(reply.status);
        }
        Ok(u32::from_le_bytes(reply.output.try_into().unwrap()))
    }

    /// The simulated KMCL channel of the most recently enabled channel on `host`.
    pub fn latest_mock(&self, host: usize) -> ChannelHandle {
        self.hosts[host]
            .abi
            .channels
            .borrow()
            .values()
            .rev()
            .find_map(|c| c.mock)
            .expect("an enabled channel")
    }

    /// Hands the guest what KMCL put in its ring.
    pub fn deliver(&mut self, vm: &mut Vm) {
        let items = self.hosts[vm.host].services.kmcl.take_to_guest(vm.mock);
        if !items.is_empty() {
            let now = self.time.now();
            vm.guest.receive(items, now, &mut self.rng);
        }
    }

    /// `requests` guest requests, each delivered through ProcessPacket and answered.
    pub fn traffic(&mut self, vm: &mut Vm, requests: usize) {
        for _ in 0..requests {
            self.time.advance(self.rng.range(100, 2_000));
            vm.guest.send_request(&mut self.rng);
            self.pump(vm, 8);
        }
    }

    /// One delivery batch from the guest's ring.
    pub fn pump(&mut self, vm: &mut Vm, budget: usize) {
        self.hosts[vm.host].services.kmcl.pump(
            vm.mock,
            &mut vm.guest.ring,
            budget,
            callbacks(vm.host),
        );
        self.deliver(vm);
    }

    /// Packets KMCL delivered on the VM's channel so far.
    pub fn delivered(&self, vm: &Vm) -> u64 {
        self.hosts[vm.host]
            .services
            .kmcl
            .info(vm.mock)
            .map_or(0, |i| i.stats.delivered)
    }

    /// `frames` UDP frames of `length` bytes entering the switch from `port`, through the
    /// engine's classify of the driver's ingress callout. Each must continue (ferry inspects).
    pub fn ingress_frames(&self, port: SwitchPortId, frames: usize, length: usize) {
        let metadata = Metadata {
            source_port: Some(port.0),
            destination_port: None,
            ether_type: Some(0x0800),
            rights: FWPS_RIGHT_ACTION_WRITE,
        };
        for n in 0..frames {
            let frame = udp_frame([10, 0, 0, 1], [10, 0, 1, n as u8], 4000, 53, length);
            let out =
                fake_engine::classify(FWPS_LAYER_INGRESS_VSWITCH_ETHERNET, metadata, &[frame]);
            assert_eq!(out.len(), 1, "one filter reaches ferry's ingress callout");
            assert_eq!(out[0].actionType, FWP_ACTION_CONTINUE);
        }
    }
}

impl Drop for Bench {
    /// A test that failed half-way leaves the driver loaded: unload it (the real unload
    /// routine) and drop the ports the switches still had, so that the next test starts from
    /// nothing and fails only for its own reasons.
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        if nt::loaded() {
            io::unload();
        }
        io::abandon_all_handles();
        for port in 0..1_000 {
            let _ = Driver::ports().delete_port(SwitchPortId(port));
        }
        nt::take_violations();
    }
}

/// A valid loopback offer (no VMBus handle, no NIC).
pub fn loopback_offer() -> ioctl::Offer {
    ioctl::Offer {
        flags: 0,
        vmbus_handle: 0,
        interface_type: [0x46; 16],
        interface_instance: [0x99; 16],
        nic: [0; 16],
        maximum_packet_size: 0x1000,
    }
}

/// `IOCTL_FERRY_READ_PORT_STATS` for `nic`: `(status, port id, ingress frames, ingress
/// bytes, flows created)`.
pub fn port_stats(
    handle: &io::Handle,
    nic: PortIdentity,
) -> (NtStatus, Option<(u32, u64, u64, u64)>) {
    let reply = handle.device_control(
        IOCTL_FERRY_READ_PORT_STATS,
        &ioctl::port_stats(nic.0),
        PORT_STATS_OUTPUT_LEN,
    );
    if reply.status != NtStatus::SUCCESS {
        assert_eq!(reply.information, 0, "a refusal writes nothing");
        return (reply.status, None);
    }
    assert_eq!(reply.information, PORT_STATS_OUTPUT_LEN);
    let out = &reply.output;
    let u64_at = |at: usize| u64::from_le_bytes(out[at..at + 8].try_into().unwrap());
    let port = u32::from_le_bytes(out[4..8].try_into().unwrap());
    (
        reply.status,
        Some((port, u64_at(8), u64_at(16), u64_at(72))),
    )
}
