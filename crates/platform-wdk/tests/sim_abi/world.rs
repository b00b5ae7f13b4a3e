//! A scenario through the C tables: simulated hosts with ferry loaded, VMs whose guest agent
//! (platform-mock's) speaks ferry's protocol, switch traffic, suspends, live migrations with
//! only bytes crossing between hosts, and unload — the scenarios `ferry-sim` runs, with every
//! KMCL and WFP interaction going through platform-wdk's trampolines and tables.
//!
//! Invariants checked ([`World::check`], [`World::unload`]): every incoming packet completed
//! exactly once; every host→guest transaction completed exactly once across migrations; no
//! ProcessPacket after Suspend; port state after restore equal to the state at save and
//! counters conserved across hosts; every contract of the C boundary kept; after unload no
//! block, packet object, channel, pending save or published blob left.

use std::rc::Rc;
use std::sync::MutexGuard;

use ferry_core::port::{
    Direction, DirectionCounters, FlowKey, FrameInfo, PortConfig, PortCounters, PortIdentity,
    RateLimit, SwitchPortId, Verdict,
};
use ferry_core::protocol::EventSet;
use ferry_platform_mock::clock::{HostClock, VirtualTime};
use ferry_platform_mock::guest::GuestAgent;
use ferry_platform_mock::kmcl::{ChannelHandle, Kmcl};
use ferry_platform_mock::platform::HostServices;
use ferry_platform_mock::rng::SimRng;
use ferry_platform_mock::vswitch::VSwitch;
use ferry_platform_wdk::ffi::kmcl::VMBCHANNEL;

mod invariants;
mod migration;

use crate::ferry_hosts::{DriverOps, HOSTS, drivers};
use crate::kernel::live_blocks;
use crate::sim_host::{AbiCounts, SimHost, Tag, decode, install, prompt_guest};

/// What to simulate.
#[derive(Clone, Debug)]
pub struct Config {
    /// Everything derives from it.
    pub seed: u64,
    /// VMs (all start on host 0).
    pub vms: u32,
    /// NICs (switch ports) per VM.
    pub ports: u32,
    /// Flows per NIC.
    pub flows: u32,
    /// Traffic steps between the scenario's events.
    pub steps: u64,
    /// Live migrations (each to the next host, round robin).
    pub migrations: u32,
    /// Guests also send malformed and oversized requests.
    pub hostile: bool,
    /// Guests crash now and then (the channel closes under the driver; the guest reboots and
    /// opens it again later).
    pub crashes: bool,
    /// Migrations sometimes damage the bytes on the way (the destination must refuse them).
    pub corrupt: bool,
}

impl Config {
    /// A random scenario for campaign seed `seed`.
    pub fn random(seed: u64) -> Self {
        let mut rng = SimRng::new(seed ^ 0xAB1_C0DE);
        Self {
            seed,
            vms: rng.range(1, 3) as u32,
            ports: rng.range(1, 2) as u32,
            flows: rng.range(2, 40) as u32,
            steps: rng.range(20, 80),
            migrations: rng.range(0, 3) as u32,
            hostile: rng.chance(50),
            crashes: rng.chance(30),
            corrupt: rng.chance(40),
        }
    }
}

/// One VM.
pub struct Vm {
    pub id: u32,
    pub host: usize,
    pub channel: VMBCHANNEL,
    pub mock: ChannelHandle,
    pub ports: Vec<SwitchPortId>,
    pub nics: Vec<PortIdentity>,
    configs: Vec<PortConfig>,
    flows: Vec<Vec<FlowKey>>,
    pub guest: GuestAgent,
    expected: Vec<PortCounters>,
    /// When a crashed guest opens its channel again.
    reopen_at: Option<u64>,
}

/// What one migration did.
#[derive(Clone, Debug, Default)]
pub struct Migration {
    pub from: usize,
    pub to: usize,
    pub old_ports: Vec<SwitchPortId>,
    pub new_ports: Vec<SwitchPortId>,
    pub in_flight_at_save: usize,
    pub chunks: usize,
    pub pended_port_saves: usize,
    pub restored: u64,
    /// The destination refused damaged bytes; the VM stayed.
    pub refused: bool,
}

/// What a finished scenario did and found.
#[derive(Debug, Default)]
pub struct Summary {
    pub findings: Vec<String>,
    pub migrations: u64,
    pub refused: u64,
    pub pended_port_saves: u64,
    pub restored: u64,
    pub crashes: u64,
    pub malformed_refused: u64,
}

/// A scenario in progress (holds the test lock: the hosts' statics are shared).
pub struct World {
    _serial: MutexGuard<'static, ()>,
    config: Config,
    pub rng: SimRng,
    pub time: VirtualTime,
    pub hosts: Vec<Rc<SimHost>>,
    pub drivers: Vec<Box<dyn DriverOps>>,
    pub vms: Vec<Vm>,
    pub findings: Vec<String>,
    pub migrations: Vec<Migration>,
    blocks_before: [i64; HOSTS],
}

fn identity(vm: u32, nic: u32) -> PortIdentity {
    let mut bytes = [0u8; 16];
    bytes[..4].copy_from_slice(b"NIC-");
    bytes[4..8].copy_from_slice(&vm.to_be_bytes());
    bytes[8..12].copy_from_slice(&nic.to_be_bytes());
    PortIdentity(bytes)
}

fn add_direction(into: &mut DirectionCounters, verdict: Verdict, length: u32) {
    match verdict {
        Verdict::Permit => into.permitted.record(length),
        Verdict::Drop(_) => into.dropped_rate_limited.record(length),
    }
}

impl World {
    /// Boots the hosts, loads ferry on each (vSwitch subscription) and adds the VMs on
    /// host 0.
    pub fn new(config: Config) -> Self {
        let serial = crate::serial();
        let mut rng = SimRng::new(config.seed);
        let time = VirtualTime::new();
        let hosts: Vec<Rc<SimHost>> = (0..HOSTS)
            .map(|index| {
                let services = HostServices {
                    kmcl: Kmcl::new(),
                    vswitch: VSwitch::new(1000 * (index as u32 + 1) + rng.below(500) as u32),
                    clock: HostClock::new(time.clone(), rng.range(1, 1 << 40)),
                };
                services
                    .kmcl
                    .set_delivery_before_post_started(rng.chance(50));
                Rc::new(SimHost {
                    index,
                    services,
                    abi: Default::default(),
                })
            })
            .collect();
        install(hosts.clone());
        let blocks_before = std::array::from_fn(live_blocks);
        let mut world = Self {
            _serial: serial,
            config,
            rng,
            time,
            hosts,
            drivers: drivers(),
            vms: Vec::new(),
            findings: Vec::new(),
            migrations: Vec::new(),
            blocks_before,
        };
        for (index, driver) in world.drivers.iter().enumerate() {
            if let Err(status) = driver.load() {
                world
                    .findings
                    .push(format!("host-{index}: load failed: {status}"));
            }
        }
        for id in 1..=world.config.vms {
            world.add_vm(id);
        }
        world
    }

    fn finding(&mut self, text: String) {
        self.findings.push(text);
    }

    /// The simulated KMCL channel behind a driver's channel handle on `host`.
    fn mock_of(&self, host: usize, channel: VMBCHANNEL) -> Option<ChannelHandle> {
        let id = decode(host, Tag::Channel, channel.as_raw())?;
        self.hosts[host].abi.channels.borrow().get(&id)?.mock
    }

    /// Creates `nics` on `host` through PORT_CREATE and binds each to its NIC.
    fn create_ports(
        &mut self,
        host: usize,
        nics: &[PortIdentity],
        configs: &[PortConfig],
    ) -> Vec<SwitchPortId> {
        let mut ports = Vec::new();
        for (nic, config) in nics.iter().zip(configs) {
            let driver = &self.drivers[host];
            match self.hosts[host]
                .services
                .vswitch
                .create_port(*nic, driver.callout())
            {
                Ok(port) => {
                    if let Err(error) = driver.bind_nic(port, *nic, *config) {
                        self.finding(format!("host-{host}: port {}: {error}", port.0));
                    }
                    ports.push(port);
                }
                Err(status) => self.finding(format!("host-{host}: PORT_CREATE: {status}")),
            }
        }
        ports
    }

    fn add_vm(&mut self, id: u32) {
        let nics: Vec<PortIdentity> = (0..self.config.ports).map(|n| identity(id, n)).collect();
        let configs: Vec<PortConfig> = nics
            .iter()
            .map(|_| {
                if self.rng.chance(50) {
                    PortConfig {
                        ingress: RateLimit {
                            bytes_per_second: self.rng.range(20_000, 400_000),
                            burst_bytes: self.rng.range(2_000, 12_000),
                        },
                        egress: RateLimit::UNLIMITED,
                    }
                } else {
                    PortConfig::UNLIMITED
                }
            })
            .collect();
        let flows = (0..nics.len())
            .map(|n| {
                (0..self.config.flows)
                    .map(|f| {
                        FlowKey::v4(
                            [10, id as u8, n as u8, 1],
                            [10, 200, (f / 200) as u8, (f % 200) as u8],
                            1024 + f as u16,
                            if f % 2 == 0 { 443 } else { 53 },
                            if f % 2 == 0 { 6 } else { 17 },
                        )
                    })
                    .collect()
            })
            .collect();
        let ports = self.create_ports(0, &nics, &configs);
        let vmbus = self.hosts[0].add_vm(id);
        let channel = match self.drivers[0].offer(vmbus, nics[0], true) {
            Ok(channel) => channel,
            Err(status) => {
                self.finding(format!("vm {id}: offer failed: {status}"));
                return;
            }
        };
        let Some(mock) = self.mock_of(0, channel) else {
            self.finding(format!(
                "vm {id}: the offered channel reached no KMCL channel"
            ));
            return;
        };
        let mut guest = prompt_guest(id);
        let status = self.hosts[0]
            .services
            .kmcl
            .guest_open(mock, self.drivers[0].callbacks());
        guest.set_open(status.is_success());
        if !status.is_success() {
            self.finding(format!("vm {id}: the guest's open was refused: {status}"));
        }
        self.vms.push(Vm {
            id,
            host: 0,
            channel,
            mock,
            expected: vec![PortCounters::ZERO; nics.len()],
            ports,
            nics,
            configs,
            flows,
            guest,
            reopen_at: None,
        });
        let vm = self.vms.len() - 1;
        self.deliver(vm);
    }

    /// Hands the guest what KMCL put in its ring.
    pub fn deliver(&mut self, vm: usize) {
        let now = self.time.now();
        let v = &mut self.vms[vm];
        let items = self.hosts[v.host].services.kmcl.take_to_guest(v.mock);
        if !items.is_empty() {
            v.guest.receive(items, now, &mut self.rng);
        }
    }

    /// One delivery batch from the guest's ring (ProcessPacket, completion routines,
    /// ProcessingComplete, all through C).
    pub fn pump(&mut self, vm: usize, budget: usize) {
        let v = &mut self.vms[vm];
        let callbacks = self.drivers[v.host].callbacks();
        self.hosts[v.host]
            .services
            .kmcl
            .pump(v.mock, &mut v.guest.ring, budget, callbacks);
        self.deliver(vm);
    }

    fn classify(&mut self, vm: usize) {
        let v = &self.vms[vm];
        if v.ports.is_empty() {
            return;
        }
        let nic = self.rng.index(v.ports.len());
        let key = v.flows[nic][self.rng.index(v.flows[nic].len())];
        let direction = if self.rng.chance(50) {
            Direction::Ingress
        } else {
            Direction::Egress
        };
        let length = self.rng.range(64, 1514) as u32;
        let frame = FrameInfo {
            direction,
            flow: key,
            length,
        };
        let host = v.host;
        let Some(verdict) = self.hosts[host].services.vswitch.classify(
            v.ports[nic],
            &frame,
            self.drivers[host].callout(),
        ) else {
            let text = format!("vm {}: a frame for a port the switch does not know", v.id);
            self.finding(text);
            return;
        };
        let expected = &mut self.vms[vm].expected[nic];
        match direction {
            Direction::Ingress => add_direction(&mut expected.ingress, verdict, length),
            Direction::Egress => add_direction(&mut expected.egress, verdict, length),
        }
    }

    /// Raises every event on the VM's channel (notifications the guest must ack).
    pub fn raise(&mut self, vm: usize) {
        let v = &self.vms[vm];
        if let Err(error) = self.drivers[v.host].raise(v.channel, EventSet::ALL) {
            let text = format!("vm {}: send failed: {error}", v.id);
            self.finding(text);
        }
        self.deliver(vm);
    }

    /// The guest crashes: KMCL closes the channel under the driver (Suspend, Closed, in-flight
    /// transactions cancelled through the completion routine); it reboots and opens the
    /// channel again a little later.
    pub fn crash(&mut self, vm: usize) {
        let delay = self.rng.range(2_000, 30_000);
        let v = &mut self.vms[vm];
        v.guest.crash();
        let callbacks = self.drivers[v.host].callbacks();
        self.hosts[v.host]
            .services
            .kmcl
            .guest_close(v.mock, &mut v.guest.ring, callbacks);
        v.reopen_at = Some(self.time.now() + delay);
        self.deliver(vm);
    }

    /// Crashed guests whose time has come (all of them with `everyone`) boot and open their
    /// channel again.
    fn reopen(&mut self, everyone: bool) {
        let now = self.time.now();
        for vm in 0..self.vms.len() {
            let v = &mut self.vms[vm];
            if v.reopen_at.is_some_and(|at| everyone || at <= now) {
                v.reopen_at = None;
                v.guest.reboot();
                let callbacks = self.drivers[v.host].callbacks();
                let status = self.hosts[v.host]
                    .services
                    .kmcl
                    .guest_open(v.mock, callbacks);
                v.guest.set_open(status.is_success());
                if !status.is_success() {
                    let text = format!("vm {}: reopen after a crash refused: {status}", v.id);
                    self.finding(text);
                }
                self.deliver(vm);
            }
        }
    }

    /// A VM whose guest has its channel open, if any.
    pub fn pick_open(&mut self) -> Option<usize> {
        let open: Vec<usize> = (0..self.vms.len())
            .filter(|&vm| self.vms[vm].guest.is_open())
            .collect();
        (!open.is_empty()).then(|| open[self.rng.index(open.len())])
    }

    fn step(&mut self) {
        self.time.advance(self.rng.range(100, 3_000));
        self.reopen(false);
        let vm = self.rng.index(self.vms.len());
        match self.rng.below(100) {
            0..=29 => {
                let roll = self.rng.below(100);
                let v = &mut self.vms[vm];
                if self.config.hostile && roll < 5 {
                    v.guest.send_malformed(&mut self.rng);
                } else if self.config.hostile && roll < 8 {
                    v.guest.send_oversized(&mut self.rng);
                } else {
                    v.guest.send_request(&mut self.rng);
                }
            }
            30..=54 => {
                let budget = self.rng.range(1, 6) as usize;
                self.pump(vm, budget);
            }
            55..=79 => {
                for _ in 0..self.rng.range(1, 4) {
                    self.classify(vm);
                }
            }
            80..=87 => self.raise(vm),
            88..=89 if self.config.crashes && self.vms[vm].guest.is_open() => self.crash(vm),
            _ => {
                let now = self.time.now();
                self.vms[vm].guest.send_due_acks(now);
            }
        }
    }

    /// `steps` random steps of guest requests, deliveries, frames, notifications and acks.
    pub fn traffic(&mut self, steps: u64) {
        for _ in 0..steps {
            self.step();
        }
    }

    /// A burst right before a pause: requests delivered, notifications sent and not acked.
    fn busy(&mut self, vm: usize) {
        for _ in 0..self.rng.range(1, 4) {
            self.vms[vm].guest.send_request(&mut self.rng);
        }
        self.pump(vm, 8);
        self.raise(vm);
    }

    fn check_paused(&mut self, vm: usize) {
        let v = &self.vms[vm];
        let kmcl = self.hosts[v.host]
            .services
            .kmcl
            .info(v.mock)
            .map_or(0, |i| i.outstanding_incoming);
        let core = self.drivers[v.host]
            .outstanding(v.channel)
            .map_or(0, |o| o.0);
        if kmcl != 0 || core != 0 {
            let text = format!(
                "vm {}: after VmbChannelPause {kmcl} packets outstanding in KMCL, {core} in core",
                v.id
            );
            self.finding(text);
        }
    }

    /// Suspends the VM's channel in the middle of traffic, lets the guest keep writing, and
    /// resumes it.
    pub fn suspend_resume(&mut self, vm: usize) {
        self.busy(vm);
        let (host, channel) = (self.vms[vm].host, self.vms[vm].channel);
        self.drivers[host].pause(channel);
        self.check_paused(vm);
        let delivered = self.delivered(vm);
        for _ in 0..4 {
            self.time.advance(self.rng.range(1_000, 10_000));
            self.vms[vm].guest.send_request(&mut self.rng);
            self.pump(vm, 4);
        }
        if self.delivered(vm) != delivered {
            let text = format!("vm {}: packets delivered while paused", self.vms[vm].id);
            self.finding(text);
        }
        self.drivers[host].start(channel);
        self.deliver(vm);
    }

    fn delivered(&self, vm: usize) -> u64 {
        let v = &self.vms[vm];
        self.hosts[v.host]
            .services
            .kmcl
            .info(v.mock)
            .map_or(0, |i| i.stats.delivered)
    }

    /// Lets everything in flight finish: acks sent, rings drained.
    pub fn drain(&mut self) {
        self.reopen(true);
        for _ in 0..200 {
            self.time.advance(2_000);
            for vm in 0..self.vms.len() {
                self.vms[vm].guest.hurry_acks();
                let now = self.time.now();
                self.vms[vm].guest.send_due_acks(now);
                self.pump(vm, 64);
            }
            if self
                .vms
                .iter()
                .all(|v| v.guest.ring.is_empty() && v.guest.acks_due() == 0)
            {
                break;
            }
        }
    }

    /// Runs the configured scenario: traffic, a suspend, the migrations, traffic, drain,
    /// checks, unload.
    pub fn run(mut self) -> Summary {
        if self.vms.is_empty() {
            return self.summary();
        }
        let steps = self.config.steps;
        self.traffic(steps);
        if let Some(vm) = self.pick_open() {
            self.suspend_resume(vm);
        }
        self.traffic(steps);
        for _ in 0..self.config.migrations {
            if let Some(vm) = self.pick_open() {
                self.migrate(vm, None);
            }
            self.traffic(steps);
        }
        self.drain();
        self.check();
        self.unload();
        self.summary()
    }

    fn summary(self) -> Summary {
        Summary {
            migrations: self.migrations.iter().filter(|m| !m.refused).count() as u64,
            refused: self.migrations.iter().filter(|m| m.refused).count() as u64,
            pended_port_saves: self
                .migrations
                .iter()
                .map(|m| m.pended_port_saves as u64)
                .sum(),
            restored: self.migrations.iter().map(|m| m.restored).sum(),
            crashes: self.vms.iter().map(|v| v.guest.ledger.crashes).sum(),
            malformed_refused: self
                .vms
                .iter()
                .map(|v| v.guest.ledger.malformed_refused)
                .sum(),
            findings: self.findings,
        }
    }

    /// The C side's counters of `host`.
    pub fn counts(&self, host: usize) -> AbiCounts {
        self.hosts[host].abi.counts.get()
    }
}
