//! One scenario: hosts, VMs with their guests, traffic, suspends, live migrations and VM
//! save/restore, faults, and the invariants checked at the end — all driven by one seeded
//! generator and the virtual clock.
//!
//! Only bytes cross between hosts: a migration hands the destination the KMCL stream chunks,
//! the session blob and the port blobs (plus the VM's own memory: the guest agent and its
//! ring). Everything the destination knows about the VM's host-side state comes from them.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::rc::Rc;
use std::time::Instant;

use ferry_core::channel::ChannelStats;
use ferry_core::channel::incoming::IncomingId;
use ferry_core::port::{
    Direction, DirectionCounters, FlowKey, FrameInfo, PortConfig, PortCounters, PortIdentity,
    RateLimit, SwitchPortId, Verdict,
};
use ferry_core::protocol::EventSet;
use ferry_core::saved_state::{self, BlobKind};
use ferry_core::status::NtStatus;

use crate::clock::{EventLog, HostClock, VirtualTime};
use crate::driver::{Driver, OUTGOING, PENDING_SAVES, PORTS, PortSaveMode, PortSnapshot, QUOTA};
use crate::faults::{Fault, FaultSet};
use crate::guest::{AckPolicy, GuestAgent};
use crate::kmcl::{self, ChannelHandle, Kmcl, MIN_SAVE_CHUNK, ToHost};
use crate::platform::{HostServices, SimPlatform};
use crate::report::{InvariantReport, MigrationReport, PHASES, PhaseReport, Report, Totals};
use crate::rng::SimRng;
use crate::vswitch::{SaveProgress, VSwitch};

pub mod steps;

use steps::MigrationPlan;

/// How long the switch waits for a pended port save before giving up (10 ms).
pub const PORT_SAVE_TIMEOUT: u64 = 100_000;

/// What to simulate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScenarioConfig {
    /// The seed everything derives from.
    pub seed: u64,
    /// VMs.
    pub vms: u32,
    /// Switch ports (NICs) per VM.
    pub ports: u32,
    /// Flows per port.
    pub flows: u32,
    /// Guest requests to send (roughly).
    pub packets: u64,
    /// Live migrations.
    pub migrations: u32,
    /// Faults to inject.
    pub faults: FaultSet,
    /// Record the event log.
    pub trace: bool,
}

impl Default for ScenarioConfig {
    fn default() -> Self {
        Self {
            seed: 0,
            vms: 3,
            ports: 2,
            flows: 16,
            packets: 400,
            migrations: 2,
            faults: FaultSet::none(),
            trace: false,
        }
    }
}

impl ScenarioConfig {
    /// A random scenario for campaign seed `seed` (workload scaled by `scale` percent).
    #[must_use]
    pub fn random(seed: u64, scale: u64) -> Self {
        let mut rng = SimRng::new(seed ^ 0xC0FF_EE00_D15E_A5E5);
        let faults = FaultSet(Fault::ALL.into_iter().filter(|_| rng.chance(40)).collect());
        Self {
            seed,
            vms: rng.range(1, 4) as u32,
            ports: rng.range(1, 2) as u32,
            flows: rng.range(2, 80) as u32,
            packets: (rng.range(60, 300) * scale / 100).max(10),
            migrations: rng.range(0, 3) as u32,
            faults,
            trace: false,
        }
    }

    /// Checks that the scenario fits one host: every VM starts on the first host, whose port
    /// table holds [`PORTS`] ports.
    ///
    /// # Errors
    ///
    /// What is out of range.
    pub fn validate(&self) -> Result<(), String> {
        if self.vms == 0 || self.ports == 0 || self.flows == 0 {
            return Err("--vms, --ports and --flows must be at least 1".into());
        }
        let nics = u64::from(self.vms) * u64::from(self.ports);
        if nics > PORTS as u64 {
            return Err(format!(
                "{} VMs x {} ports = {nics} switch ports, but a host's port table holds {PORTS}",
                self.vms, self.ports
            ));
        }
        Ok(())
    }

    /// The `ferry-sim` command line that runs this scenario.
    #[must_use]
    pub fn replay_command(&self) -> String {
        format!(
            "ferry-sim --seed {} --vms {} --ports {} --flows {} --packets {} --migrations {} --faults {}",
            self.seed,
            self.vms,
            self.ports,
            self.flows,
            self.packets,
            self.migrations,
            self.faults.names()
        )
    }
}

/// One simulated Hyper-V host with ferry loaded.
pub struct Host {
    /// Its name in reports.
    pub name: String,
    /// KMCL, switch, clock.
    pub services: Rc<HostServices>,
    /// ferry.
    pub driver: Rc<Driver>,
}

impl Host {
    fn kmcl(&self) -> &Kmcl {
        &self.services.kmcl
    }
    fn vswitch(&self) -> &VSwitch {
        &self.services.vswitch
    }
}

struct Vm {
    id: u32,
    nics: Vec<PortIdentity>,
    configs: Vec<PortConfig>,
    flows: Vec<Vec<FlowKey>>,
    host: usize,
    channel: ChannelHandle,
    ports: Vec<SwitchPortId>,
    guest: GuestAgent,
    defer: bool,
    expected: Vec<PortCounters>,
    open_pending: bool,
    /// Restored transactions on the current host not yet counted as completed.
    restored_watch: Option<(usize, BTreeSet<u64>)>,
}

#[derive(Debug)]
enum Task {
    AnswerDeferred {
        host: usize,
        channel: ChannelHandle,
        id: IncomingId,
    },
    FinishPortSave {
        host: usize,
        port: SwitchPortId,
    },
    GuestOpen {
        vm: usize,
    },
}

const INVARIANTS: [&str; 9] = [
    "incoming packets completed exactly once",
    "host->guest transactions completed exactly once",
    "no ProcessPacket after Suspend before the next Started",
    "port state after restore equals state at save",
    "counters conserved across hosts",
    "no corrupted blob accepted",
    "tables within capacity",
    "guest protocol checks",
    "KMCL / vSwitch / driver contracts",
];
const INCOMING: usize = 0;
const OUTGOING_TX: usize = 1;
const NO_PP_AFTER_SUSPEND: usize = 2;
const PORT_STATE: usize = 3;
const COUNTERS: usize = 4;
const CORRUPTION: usize = 5;
const CAPACITY: usize = 6;
const GUEST: usize = 7;
const CONTRACTS: usize = 8;

/// A scenario in progress.
pub struct World {
    config: ScenarioConfig,
    rng: SimRng,
    time: VirtualTime,
    hosts: Vec<Host>,
    vms: Vec<Vm>,
    agenda: BTreeMap<(u64, u64), Task>,
    agenda_seq: u64,
    events: EventLog,
    phases: Vec<PhaseReport>,
    migrations: Vec<MigrationReport>,
    invariants: Vec<InvariantReport>,
    faults_injected: BTreeMap<String, u64>,
    frames: u64,
    frames_dropped: u64,
    save_snapshots: BTreeMap<(usize, SwitchPortId), PortSnapshot>,
    /// Set by [`steps`]: the migration's fault choices, instead of the seeded draws.
    plan: Option<MigrationPlan>,
    /// Ports created by [`steps`] that belong to no VM: (host, port).
    stray_ports: Vec<(usize, SwitchPortId)>,
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
    /// Builds the scenario's hosts and VMs (nothing runs yet).
    #[must_use]
    pub fn new(config: ScenarioConfig) -> Self {
        let rng = SimRng::new(config.seed);
        let time = VirtualTime::new();
        let mut world = Self {
            rng,
            time: time.clone(),
            hosts: Vec::new(),
            vms: Vec::new(),
            agenda: BTreeMap::new(),
            agenda_seq: 0,
            events: EventLog::new(time.clone(), config.trace),
            phases: PHASES
                .iter()
                .map(|n| PhaseReport {
                    name: (*n).to_string(),
                    ..PhaseReport::default()
                })
                .collect(),
            migrations: Vec::new(),
            invariants: INVARIANTS
                .iter()
                .map(|n| InvariantReport {
                    name: (*n).to_string(),
                    ..InvariantReport::default()
                })
                .collect(),
            faults_injected: BTreeMap::new(),
            frames: 0,
            frames_dropped: 0,
            save_snapshots: BTreeMap::new(),
            plan: None,
            stray_ports: Vec::new(),
            config,
        };
        world.add_host();
        let policy = AckPolicy {
            late_percent: if world.config.faults.has(Fault::LateAck) {
                30
            } else {
                0
            },
            late_ticks: 400_000,
            never_percent: if world.config.faults.has(Fault::NoAck) {
                10
            } else {
                0
            },
        };
        for id in 1..=world.config.vms {
            world.add_vm(id, policy);
        }
        world
    }

    fn log(&self, text: impl FnOnce() -> String) {
        self.events.record(text);
    }

    fn inject(&mut self, fault: Fault) {
        *self
            .faults_injected
            .entry(fault.name().to_string())
            .or_default() += 1;
        self.log(|| format!("fault: {fault}"));
    }

    fn violation(&mut self, invariant: usize, text: String) {
        self.log(|| format!("VIOLATION: {text}"));
        if let Some(inv) = self.invariants.get_mut(invariant) {
            inv.violations.push(text);
        }
    }

    fn checked(&mut self, invariant: usize, count: u64) {
        if let Some(inv) = self.invariants.get_mut(invariant) {
            inv.checks += count;
        }
    }

    fn add_host(&mut self) -> usize {
        let index = self.hosts.len();
        let offset = self.rng.range(1, 1 << 40);
        let first_port = 1000 * (index as u32 + 1) + self.rng.below(500) as u32;
        let services = Rc::new(HostServices {
            kmcl: Kmcl::new(),
            vswitch: VSwitch::new(first_port),
            clock: HostClock::new(self.time.clone(), offset),
        });
        let driver = Rc::new(Driver::new(SimPlatform(Rc::clone(&services))));
        services
            .kmcl
            .set_delivery_before_post_started(self.rng.chance(50));
        services
            .kmcl
            .set_event_log(self.events.clone(), &format!("host-{index}"));
        services
            .vswitch
            .set_event_log(self.events.clone(), &format!("host-{index}"));
        self.hosts.push(Host {
            name: format!("host-{index}"),
            services,
            driver,
        });
        self.log(|| format!("host-{index} boots (clock offset {offset}, ports from {first_port})"));
        index
    }

    fn add_vm(&mut self, id: u32, policy: AckPolicy) {
        let nics: Vec<PortIdentity> = (0..self.config.ports.max(1))
            .map(|n| identity(id, n))
            .collect();
        let configs: Vec<PortConfig> = nics
            .iter()
            .map(|_| {
                if self.rng.chance(50) {
                    let limit = RateLimit {
                        bytes_per_second: self.rng.range(20_000, 400_000),
                        burst_bytes: self.rng.range(2_000, 12_000),
                    };
                    PortConfig {
                        ingress: limit,
                        egress: RateLimit::UNLIMITED,
                    }
                } else {
                    PortConfig::UNLIMITED
                }
            })
            .collect();
        let flows = nics
            .iter()
            .enumerate()
            .map(|(n, _)| {
                (0..self.config.flows.max(1))
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
        let defer = self.rng.chance(50);
        let host = 0;
        let mut ports = Vec::new();
        for (nic, config) in nics.iter().zip(&configs) {
            let h = &self.hosts[host];
            h.driver.set_port_config(*nic, *config);
            match h.vswitch().create_port(*nic, h.driver.as_ref()) {
                Ok(port) => ports.push(port),
                Err(status) => {
                    let text = format!("vm {id}: port create failed: {status}");
                    self.violation(CONTRACTS, text);
                }
            }
        }
        let channel = self.hosts[host].driver.offer_channel(id, nics[0], defer);
        let index = self.vms.len();
        self.vms.push(Vm {
            id,
            expected: vec![PortCounters::ZERO; nics.len()],
            nics,
            configs,
            flows,
            host,
            channel,
            ports,
            guest: GuestAgent::new(id, policy),
            defer,
            open_pending: false,
            restored_watch: None,
        });
        if self.config.faults.has(Fault::RefuseOpen) && self.rng.chance(50) {
            self.hosts[host].driver.refuse_opens.set(1);
            self.inject(Fault::RefuseOpen);
        }
        self.guest_open(index);
    }

    fn schedule(&mut self, delay: u64, task: Task) {
        self.agenda_seq += 1;
        self.agenda
            .insert((self.time.now() + delay, self.agenda_seq), task);
    }

    fn guest_open(&mut self, vm: usize) {
        let v = &mut self.vms[vm];
        v.open_pending = false;
        if !v.guest.alive() {
            v.guest.reboot();
        }
        let host = &self.hosts[v.host];
        let status = host.kmcl().guest_open(v.channel, host.driver.as_ref());
        let id = v.id;
        if status.is_success() {
            v.guest.set_open(true);
            self.log(|| format!("vm {id}: guest opened its channel"));
        } else {
            v.open_pending = true;
            self.log(|| format!("vm {id}: open refused ({status}); the guest retries"));
            let delay = self.rng.range(2_000, 20_000);
            self.schedule(delay, Task::GuestOpen { vm });
        }
        self.deliver(vm);
    }

    fn run_task(&mut self, task: Task) {
        match task {
            Task::AnswerDeferred { host, channel, id } => {
                self.hosts[host].driver.answer_deferred(channel, id)
            }
            Task::FinishPortSave { host, port } => {
                if let Some(snapshot) = self.hosts[host].driver.port_snapshot(port) {
                    self.save_snapshots.insert((host, port), snapshot);
                }
                self.hosts[host].driver.finish_port_save(port);
            }
            Task::GuestOpen { vm } => self.guest_open(vm),
        }
        self.collect_deferred();
        for vm in 0..self.vms.len() {
            self.deliver(vm);
        }
    }

    /// Runs the tasks due now (`everything`: every task scheduled so far, whatever its time;
    /// tasks they schedule wait for the next call, so a task that keeps rescheduling itself
    /// cannot spin).
    fn run_due(&mut self, everything: bool) {
        let horizon = if everything {
            u64::MAX
        } else {
            self.time.now()
        };
        let last_seq = self.agenda_seq;
        while let Some(key) = self
            .agenda
            .keys()
            .find(|(at, seq)| *at <= horizon && *seq <= last_seq)
            .copied()
        {
            if let Some(task) = self.agenda.remove(&key) {
                self.run_task(task);
            }
        }
    }

    fn collect_deferred(&mut self) {
        for host in 0..self.hosts.len() {
            for (channel, id) in self.hosts[host].driver.take_deferred() {
                let delay = self.rng.range(200, 30_000);
                self.schedule(delay, Task::AnswerDeferred { host, channel, id });
            }
        }
    }

    fn deliver(&mut self, vm: usize) {
        let now = self.time.now();
        let v = &mut self.vms[vm];
        let items = self.hosts[v.host].kmcl().take_to_guest(v.channel);
        if !items.is_empty() {
            v.guest.receive(items, now, &mut self.rng);
        }
    }

    fn pump(&mut self, vm: usize, budget: usize) -> u32 {
        let v = &mut self.vms[vm];
        let host = &self.hosts[v.host];
        let result = host
            .kmcl()
            .pump(v.channel, &mut v.guest.ring, budget, host.driver.as_ref());
        self.collect_deferred();
        self.deliver(vm);
        result.delivered
    }

    fn classify(&mut self, vm: usize) {
        let v = &self.vms[vm];
        if v.ports.is_empty() {
            return;
        }
        let nic = self.rng.index(v.ports.len());
        let flow = self.rng.index(v.flows[nic].len());
        let direction = if self.rng.chance(50) {
            Direction::Ingress
        } else {
            Direction::Egress
        };
        let length = self.rng.range(64, 1514) as u32;
        self.classify_frame(vm, nic, flow, direction, length);
    }

    /// The switch classifies one frame of flow `flow` on NIC `nic` of VM `vm` (both in range),
    /// and the VM's expected counters follow the verdict.
    fn classify_frame(
        &mut self,
        vm: usize,
        nic: usize,
        flow: usize,
        direction: Direction,
        length: u32,
    ) {
        let v = &self.vms[vm];
        let port = v.ports[nic];
        let frame = FrameInfo {
            direction,
            flow: v.flows[nic][flow],
            length,
        };
        let host = &self.hosts[v.host];
        let Some(verdict) = host.vswitch().classify(port, &frame, host.driver.as_ref()) else {
            let id = v.id;
            self.violation(
                CONTRACTS,
                format!(
                    "vm {id}: frame for port {} that the switch does not know",
                    port.0
                ),
            );
            return;
        };
        self.frames += 1;
        if matches!(verdict, Verdict::Drop(_)) {
            self.frames_dropped += 1;
        }
        let expected = &mut self.vms[vm].expected[nic];
        match direction {
            Direction::Ingress => add_direction(&mut expected.ingress, verdict, length),
            Direction::Egress => add_direction(&mut expected.egress, verdict, length),
        }
    }

    fn crash(&mut self, vm: usize) {
        self.inject(Fault::Crash);
        let v = &mut self.vms[vm];
        let id = v.id;
        v.guest.crash();
        let host = &self.hosts[v.host];
        host.kmcl()
            .guest_close(v.channel, &mut v.guest.ring, host.driver.as_ref());
        v.open_pending = true;
        self.log(|| format!("vm {id}: guest crashed"));
        let delay = self.rng.range(5_000, 60_000);
        self.schedule(delay, Task::GuestOpen { vm });
        self.deliver(vm);
    }

    fn step(&mut self) {
        let dt = self.rng.range(100, 3_000);
        self.time.advance(dt);
        self.run_due(false);
        let vm = self.rng.index(self.vms.len());
        let faults = self.config.faults.clone();
        match self.rng.below(100) {
            0..=29 => {
                let roll = self.rng.below(100);
                let v = &mut self.vms[vm];
                if faults.has(Fault::Malformed) && roll < 6 && v.guest.is_open() {
                    v.guest.send_malformed(&mut self.rng);
                    self.inject(Fault::Malformed);
                } else if faults.has(Fault::Oversized)
                    && (6..9).contains(&roll)
                    && v.guest.is_open()
                {
                    v.guest.send_oversized(&mut self.rng);
                    self.inject(Fault::Oversized);
                } else if faults.has(Fault::Flood)
                    && (9..11).contains(&roll)
                    && v.guest.negotiated()
                    && v.guest.is_open()
                {
                    let count = QUOTA * 2 + self.rng.index(QUOTA);
                    v.guest.flood(count);
                    self.inject(Fault::Flood);
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
            80..=87 => {
                let v = &self.vms[vm];
                self.hosts[v.host].driver.raise(v.channel, EventSet::ALL);
                self.deliver(vm);
            }
            88..=96 => {
                let now = self.time.now();
                self.vms[vm].guest.send_due_acks(now);
            }
            _ => {
                let v = &self.vms[vm];
                if faults.has(Fault::Crash) && v.guest.is_open() && self.rng.chance(40) {
                    self.crash(vm);
                } else {
                    self.hosts[v.host]
                        .driver
                        .reap_overdue_saves(PORT_SAVE_TIMEOUT);
                }
            }
        }
    }

    fn kmcl_delivered(&self) -> u64 {
        self.hosts
            .iter()
            .flat_map(|h| {
                h.kmcl()
                    .channel_handles()
                    .into_iter()
                    .filter_map(|c| h.kmcl().info(c))
                    .collect::<Vec<_>>()
            })
            .map(|i| i.stats.delivered)
            .sum()
    }

    fn phase(&mut self, index: usize, started_ticks: u64, started: Instant, packets: u64) {
        let ticks = self.time.now() - started_ticks;
        let real = started.elapsed();
        if let Some(p) = self.phases.get_mut(index) {
            p.runs += 1;
            p.packets += packets;
            p.simulated_ticks += ticks;
            p.real += real;
        }
    }

    /// Runs `action` as one run of phase `index`, counting the change of one of `channel`'s
    /// counters across it.
    fn counted_phase(
        &mut self,
        index: usize,
        host: usize,
        channel: ChannelHandle,
        counter: fn(&ChannelStats) -> u64,
        action: impl FnOnce(&mut Self),
    ) {
        let t0 = self.time.now();
        let r0 = Instant::now();
        let before = self.hosts[host].driver.channel_stat(channel, counter);
        action(self);
        let counted = self.hosts[host].driver.channel_stat(channel, counter) - before;
        self.phase(index, t0, r0, counted);
    }

    fn traffic(&mut self, steps: u64) {
        let t0 = self.time.now();
        let r0 = Instant::now();
        let before = self.kmcl_delivered();
        for _ in 0..steps {
            self.step();
        }
        let delivered = self.kmcl_delivered() - before;
        self.phase(0, t0, r0, delivered);
    }

    fn settle_watches(&mut self) {
        for vm in 0..self.vms.len() {
            if let Some((index, txids)) = self.vms[vm].restored_watch.take() {
                let v = &self.vms[vm];
                let still: BTreeSet<u64> = self.hosts[v.host]
                    .kmcl()
                    .outgoing_txids(v.channel)
                    .into_iter()
                    .collect();
                let done = txids.iter().filter(|t| !still.contains(t)).count() as u64;
                if let Some(m) = self.migrations.get_mut(index) {
                    m.completed_after_restore = done;
                }
            }
        }
    }

    /// A burst of work right before a pause: requests delivered (deferred ones stay
    /// outstanding) and notifications sent (they stay in flight until the guest acks).
    fn busy(&mut self, vm: usize) {
        for _ in 0..self.rng.range(1, 4) {
            self.vms[vm].guest.send_request(&mut self.rng);
        }
        self.pump(vm, 8);
        let v = &self.vms[vm];
        self.hosts[v.host].driver.raise(v.channel, EventSet::ALL);
        self.deliver(vm);
    }

    /// Pauses a VM's channel and resumes it (a suspend in the middle of traffic).
    fn suspend_resume(&mut self, vm: usize) {
        self.busy(vm);
        let (host, channel, id) = (self.vms[vm].host, self.vms[vm].channel, self.vms[vm].id);
        self.log(|| format!("vm {id}: suspend (VmbChannelPause) in the middle of traffic"));
        self.counted_phase(
            1,
            host,
            channel,
            |s| s.packets_retired,
            |world| {
                world.hosts[host].driver.pause(channel);
                world.check_paused(vm);
            },
        );
        // Time passes while paused: deferred answers find their packets retired; the guest
        // keeps writing into its ring.
        for _ in 0..5 {
            self.time.advance(self.rng.range(1_000, 10_000));
            self.run_due(false);
            self.vms[vm].guest.send_request(&mut self.rng);
            self.pump(vm, 4);
        }
        self.counted_phase(
            5,
            host,
            channel,
            |s| s.transactions_sent,
            |world| {
                world.hosts[host].driver.start(channel);
                world.deliver(vm);
            },
        );
    }

    fn check_paused(&mut self, vm: usize) {
        let v = &self.vms[vm];
        let id = v.id;
        let host = &self.hosts[v.host];
        let info = host.kmcl().info(v.channel);
        let core = host.driver.core_channel(v.channel).map(|c| c.outstanding());
        self.checked(INCOMING, 1);
        if let (Some(info), Some((incoming, _))) = (info, core)
            && (info.outstanding_incoming != 0 || incoming != 0)
        {
            let text = format!(
                "vm {id}: after Pause {} packets still outstanding in KMCL, {} in core",
                info.outstanding_incoming, incoming
            );
            self.violation(INCOMING, text);
        }
    }
}

/// What crosses from source to destination: bytes only.
struct Package {
    chunks: Vec<Vec<u8>>,
    session: Vec<u8>,
    ports: Vec<Vec<u8>>,
}

enum Corruption {
    None,
    Stream(Fault),
    Session(Fault),
    Port(usize, Fault),
}

fn rechunk(stream: &[u8], rng: &mut SimRng) -> Vec<Vec<u8>> {
    let mut chunks = Vec::new();
    let mut at = 0;
    while at < stream.len() {
        let n = (rng.range(MIN_SAVE_CHUNK as u64, 512) as usize).min(stream.len() - at);
        chunks.push(stream[at..at + n].to_vec());
        at += n;
    }
    chunks
}

impl World {
    fn abort(&mut self, report: &mut MigrationReport, vm: usize, reason: String) {
        let (id, host, channel) = (self.vms[vm].id, self.vms[vm].host, self.vms[vm].channel);
        self.log(|| format!("vm {id}: migration aborted: {reason}; the VM resumes on the source"));
        report.outcome = format!("aborted: {reason}");
        self.hosts[host].driver.start(channel);
        self.deliver(vm);
    }

    fn corrupt(&mut self, package: &mut Package, other_session: Option<Vec<u8>>) -> Corruption {
        let (fault, target) = match &self.plan {
            Some(plan) => match plan.damage {
                Some(damage) => damage.choice(),
                None => return Corruption::None,
            },
            None => {
                let candidates: Vec<Fault> = [Fault::Truncate, Fault::BitFlip, Fault::Foreign]
                    .into_iter()
                    .filter(|f| self.config.faults.has(*f))
                    .collect();
                if candidates.is_empty() || !self.rng.chance(40) {
                    return Corruption::None;
                }
                (candidates[self.rng.index(candidates.len())], None)
            }
        };
        let stream: Vec<u8> = package.chunks.concat();
        let packets = kmcl::saved_packets(&stream).unwrap_or_default();
        let with_state: Vec<usize> = packets
            .iter()
            .enumerate()
            .filter(|(_, (_, s))| !s.is_empty())
            .map(|(i, _)| i)
            .collect();
        let target = target.unwrap_or_else(|| self.rng.below(3));
        let rng = &mut self.rng;
        let damage = |blob: &mut Vec<u8>, rng: &mut SimRng, foreign: &[u8]| match fault {
            Fault::Truncate => {
                // At least one byte stays: an empty SaveBuf is KMCL's legal "nothing saved"
                // (first SavePacket call succeeded), which no VSP can tell from a loss.
                let keep = 1 + rng.index(blob.len().saturating_sub(1));
                blob.truncate(keep);
            }
            Fault::BitFlip => {
                let byte = rng.index(blob.len());
                blob[byte] ^= 1 << rng.below(8);
            }
            _ => *blob = foreign.to_vec(),
        };
        let result = if target == 0 && !with_state.is_empty() {
            // A transaction's SaveBuf; KMCL's own check is re-sealed so only ferry can notice.
            let index = with_state[rng.index(with_state.len())];
            let foreign = package
                .ports
                .first()
                .cloned()
                .unwrap_or_else(|| package.session.clone());
            let mut sub = rng.fork();
            let rewritten = kmcl::rewrite_saved_packets(&stream, |packets| {
                if let Some((_, saved)) = packets.get_mut(index) {
                    damage(saved, &mut sub, &foreign);
                }
            });
            match rewritten {
                Some(stream) => {
                    package.chunks = rechunk(&stream, rng);
                    Corruption::Stream(fault)
                }
                None => Corruption::None,
            }
        } else if target == 1 || package.ports.is_empty() {
            let foreign =
                other_session.unwrap_or_else(|| package.ports.first().cloned().unwrap_or_default());
            if package.session.is_empty() {
                return Corruption::None;
            }
            damage(&mut package.session, rng, &foreign);
            Corruption::Session(fault)
        } else {
            let index = rng.index(package.ports.len());
            // Foreign: another NIC's port blob, or the session (wrong kind) if there is one NIC.
            let foreign = if package.ports.len() > 1 {
                package.ports[(index + 1) % package.ports.len()].clone()
            } else {
                package.session.clone()
            };
            if package.ports[index].is_empty() {
                return Corruption::None;
            }
            damage(&mut package.ports[index], rng, &foreign);
            Corruption::Port(index, fault)
        };
        if let Corruption::Stream(f) | Corruption::Session(f) | Corruption::Port(_, f) = &result {
            self.inject(*f);
        }
        result
    }

    /// Live migration of VM `vm` to a fresh host (`same_host`: VM save, then restore on the
    /// same host).
    fn migrate(&mut self, vm: usize, same_host: bool) {
        let src = self.vms[vm].host;
        let channel = self.vms[vm].channel;
        let id = self.vms[vm].id;
        let kind = if same_host {
            "save/restore"
        } else {
            "live migration"
        };
        let mut report = MigrationReport {
            kind: kind.to_string(),
            vm: id,
            from_host: self.hosts[src].name.clone(),
            ..MigrationReport::default()
        };
        self.log(|| format!("vm {id}: {kind} begins"));

        self.settle_watches();
        self.busy(vm);
        // Pause.
        let t0 = self.time.now();
        let r0 = Instant::now();
        let driver = Rc::clone(&self.hosts[src].driver);
        let retired_before = driver.channel_stat(channel, |s| s.packets_retired);
        driver.pause(channel);
        self.check_paused(vm);
        report.retired_at_suspend =
            driver.channel_stat(channel, |s| s.packets_retired) - retired_before;
        self.deliver(vm);
        self.phase(1, t0, r0, report.retired_at_suspend);
        let crash_before_save = match &self.plan {
            Some(plan) => plan.crash_before_save,
            None => self.config.faults.has(Fault::Crash) && self.rng.chance(10),
        };
        if crash_before_save {
            // The guest dies between the pause and the save: KMCL closes the channel and
            // the save finds nothing open (the migration is aborted, the guest reboots).
            report.fault = Some("guest crash between pause and save".to_string());
            self.crash(vm);
        }

        // Save.
        let t0 = self.time.now();
        let r0 = Instant::now();
        let package = self.save(vm, &mut report);
        self.phase(2, t0, r0, report.in_flight_at_save);
        let Some(mut package) = package else {
            report.to_host = "-".to_string();
            self.migrations.push(report);
            return;
        };

        // Transfer: only bytes.
        let t0 = self.time.now();
        let r0 = Instant::now();
        let other_session = self
            .vms
            .iter()
            .find(|o| o.id != id)
            .map(|o| self.hosts[o.host].driver.save_session(o.channel));
        let corruption = if same_host {
            Corruption::None
        } else {
            self.corrupt(&mut package, other_session)
        };
        report.fault = match &corruption {
            Corruption::None => report.fault.take(),
            Corruption::Stream(f) => Some(format!("{f} of a transaction's SaveBuf")),
            Corruption::Session(f) => Some(format!("{f} of the session blob")),
            Corruption::Port(i, f) => Some(format!("{f} of port blob {i}")),
        };
        let bytes: usize = package.chunks.iter().map(Vec::len).sum::<usize>()
            + package.session.len()
            + package.ports.iter().map(Vec::len).sum::<usize>();
        self.log(|| {
            format!(
                "vm {id}: transfer {bytes} bytes: KMCL stream in {} chunks, session {} bytes, {} port blobs",
                package.chunks.len(),
                package.session.len(),
                package.ports.len()
            )
        });
        self.time.advance(bytes as u64 * 8 / 10 + 1_000);
        self.phase(3, t0, r0, bytes as u64);

        // Restore.
        let t0 = self.time.now();
        let r0 = Instant::now();
        let old_ports = self.vms[vm].ports.clone();
        let dst = if same_host {
            self.teardown(src, channel, &old_ports);
            src
        } else {
            self.add_host()
        };
        report.to_host = self.hosts[dst].name.clone();
        let restored = self.restore(vm, dst, &package, &mut report);
        let corrupted = !matches!(corruption, Corruption::None);
        self.checked(CORRUPTION, 1);
        let restored_count = report.restored;
        self.phase(4, t0, r0, restored_count);
        let (new_channel, new_ports) = match restored {
            Ok(restored) => {
                if corrupted {
                    let text = format!(
                        "vm {id}: the destination accepted a corrupted migration ({})",
                        report.fault.clone().unwrap_or_default()
                    );
                    self.violation(CORRUPTION, text);
                }
                restored
            }
            Err(reason) => {
                if !corrupted {
                    self.violation(
                        CONTRACTS,
                        format!("vm {id}: restore of intact bytes failed: {reason}"),
                    );
                }
                if same_host {
                    report.outcome = format!("failed: {reason}");
                    self.migrations.push(report);
                    return;
                }
                self.abort(
                    &mut report,
                    vm,
                    format!("destination refused the bytes ({reason})"),
                );
                self.migrations.push(report);
                return;
            }
        };

        // Resume on the destination; the source lets go.
        let t0 = self.time.now();
        let r0 = Instant::now();
        let dst_driver = Rc::clone(&self.hosts[dst].driver);
        let watch: BTreeSet<u64> = self.hosts[dst]
            .kmcl()
            .outgoing_txids(new_channel)
            .into_iter()
            .collect();
        let index = self.migrations.len();
        let v = &mut self.vms[vm];
        v.host = dst;
        v.channel = new_channel;
        report.ports = v
            .ports
            .iter()
            .zip(&new_ports)
            .map(|(a, b)| (a.0, b.0))
            .collect();
        v.ports = new_ports;
        v.restored_watch = Some((index, watch));
        let crash_before_start = match &self.plan {
            Some(plan) => plan.crash_before_start && self.vms[vm].guest.alive(),
            None => {
                self.config.faults.has(Fault::Crash)
                    && self.vms[vm].guest.alive()
                    && self.rng.chance(10)
            }
        };
        if crash_before_start {
            // The guest dies on the destination before the channel starts: the restored
            // channel is closed from Opened, its restored transactions retired.
            report.fault = Some("guest crash between restore and start".to_string());
            self.crash(vm);
        }
        dst_driver.start(new_channel);
        if !same_host {
            self.teardown(src, channel, &old_ports);
        }
        self.deliver(vm);
        let sent = dst_driver
            .channel_stats(new_channel)
            .map_or(0, |s| s.transactions_sent);
        self.phase(5, t0, r0, sent);
        report.outcome = "ok".into();
        self.log(|| format!("vm {id}: {kind} done"));
        self.migrations.push(report);
    }

    fn save(&mut self, vm: usize, report: &mut MigrationReport) -> Option<Package> {
        let v = &self.vms[vm];
        let (src, channel, id) = (v.host, v.channel, v.id);
        let host_driver = Rc::clone(&self.hosts[src].driver);
        let services = Rc::clone(&self.hosts[src].services);
        let in_flight = host_driver
            .core_channel(channel)
            .map_or(0, |c| c.outstanding().1);
        report.in_flight_at_save = in_flight as u64;
        let save_packet_fail = match &self.plan {
            Some(plan) => plan.save_packet_fail,
            None => {
                self.config.faults.has(Fault::SavePacketFail)
                    && in_flight > 0
                    && self.rng.chance(30)
            }
        };
        if save_packet_fail {
            host_driver.fail_save_packet.set(true);
            self.inject(Fault::SavePacketFail);
        }
        let begun = services.kmcl.save_begin(channel, host_driver.as_ref());
        host_driver.fail_save_packet.set(false);
        if let Err(status) = begun {
            services.kmcl.save_end(channel);
            self.abort(report, vm, format!("SaveBegin failed: {status}"));
            return None;
        }
        let mut chunks = Vec::new();
        let short_buffer = match &self.plan {
            Some(plan) => plan.short_buffer,
            None => self.config.faults.has(Fault::ShortBuffer) && self.rng.chance(50),
        };
        let mut size = if short_buffer {
            self.inject(Fault::ShortBuffer);
            self.rng.range(1, MIN_SAVE_CHUNK as u64 - 1) as usize
        } else {
            self.rng.range(MIN_SAVE_CHUNK as u64, 512) as usize
        };
        loop {
            let mut buffer = vec![0u8; size];
            let chunk = services.kmcl.save_continue(channel, &mut buffer);
            if chunk.status == NtStatus::BUFFER_TOO_SMALL {
                report.short_buffer_retries += 1;
                size = chunk.bytes;
                continue;
            }
            if chunk.status != NtStatus::SUCCESS && chunk.status != NtStatus::BUFFER_OVERFLOW {
                services.kmcl.save_end(channel);
                self.abort(report, vm, format!("SaveContinue failed: {}", chunk.status));
                return None;
            }
            buffer.truncate(chunk.bytes);
            chunks.push(buffer);
            if chunk.status == NtStatus::SUCCESS {
                break;
            }
            size = self.rng.range(MIN_SAVE_CHUNK as u64, 512) as usize;
        }
        services.kmcl.save_end(channel);
        report.chunks = chunks.len() as u64;
        let stream: Vec<u8> = chunks.concat();
        report.saved.kmcl_stream = stream.len() as u64;
        for (_, saved) in kmcl::saved_packets(&stream).unwrap_or_default() {
            if !saved.is_empty() {
                report.with_saved_state += 1;
                report.saved.kind1_transactions += saved.len() as u64;
                self.checked(CORRUPTION, 1);
                if saved_state::open(&saved, BlobKind::OutgoingTransaction).is_err() {
                    self.violation(
                        CONTRACTS,
                        format!("vm {id}: SavePacket produced a blob that does not open as kind 1"),
                    );
                }
            }
        }
        let session = host_driver.save_session(channel);
        report.saved.kind3_session = session.len() as u64;

        // Ports: the switch asks the callout for each NIC's runtime state.
        let faults = self.config.faults.clone();
        let mode = if let Some(plan) = &self.plan {
            let mode = plan.port_save.mode();
            match mode {
                PortSaveMode::Fail => self.inject(Fault::PortSaveFail),
                PortSaveMode::Hang => self.inject(Fault::PortSaveHang),
                PortSaveMode::Synchronous | PortSaveMode::Pending => {}
            }
            mode
        } else if faults.has(Fault::PortSaveFail) && self.rng.chance(15) {
            self.inject(Fault::PortSaveFail);
            PortSaveMode::Fail
        } else if faults.has(Fault::PortSaveHang) && self.rng.chance(15) {
            self.inject(Fault::PortSaveHang);
            PortSaveMode::Hang
        } else if self.rng.chance(50) {
            PortSaveMode::Pending
        } else {
            PortSaveMode::Synchronous
        };
        host_driver.port_save_mode.set(mode);
        let ports = self.vms[vm].ports.clone();
        let mut oids = Vec::new();
        for port in &ports {
            let now = services.clock.now();
            if let Some(snapshot) = host_driver.port_snapshot(*port) {
                self.save_snapshots.insert((src, *port), snapshot);
            }
            let oid = services
                .vswitch
                .request_save(*port, now, host_driver.as_ref());
            oids.push(oid);
        }
        host_driver.port_save_mode.set(PortSaveMode::Synchronous);
        for port in host_driver.finishable_saves(&ports) {
            let delay = self.rng.range(100, 20_000);
            self.schedule(delay, Task::FinishPortSave { host: src, port });
        }
        let waited_from = self.time.now();
        let mut blobs = Vec::new();
        for (oid, port) in oids.iter().zip(&ports) {
            loop {
                let now = services.clock.now();
                match services.vswitch.save_progress(*oid, now) {
                    Some(SaveProgress::Saved(blob)) => {
                        self.checked(CORRUPTION, 1);
                        if saved_state::open(&blob, BlobKind::PortRuntimeState).is_err() {
                            self.violation(
                                CONTRACTS,
                                format!(
                                    "vm {id}: port {} saved a blob that does not open as kind 2",
                                    port.0
                                ),
                            );
                        }
                        report.saved.kind2_ports += blob.len() as u64;
                        blobs.push(blob);
                        break;
                    }
                    Some(SaveProgress::Failed(status)) => {
                        self.abort(
                            report,
                            vm,
                            format!("runtime-state save of port {} failed: {status}", port.0),
                        );
                        return None;
                    }
                    Some(SaveProgress::Pending { outstanding })
                        if outstanding > PORT_SAVE_TIMEOUT =>
                    {
                        for oid in &oids {
                            services.vswitch.abandon_save(*oid);
                        }
                        host_driver.reap_overdue_saves(PORT_SAVE_TIMEOUT);
                        let waited = self.time.now() - waited_from;
                        self.abort(report, vm, format!("runtime-state save of port {} never completed (detected after {} ticks)", port.0, waited));
                        return None;
                    }
                    Some(SaveProgress::Pending { .. }) => {
                        self.time.advance(self.rng.range(500, 5_000));
                        self.run_due(false);
                    }
                    None => {
                        self.abort(report, vm, format!("save request {oid} vanished"));
                        return None;
                    }
                }
            }
        }
        Some(Package {
            chunks,
            session,
            ports: blobs,
        })
    }

    /// The source lets go of the VM: the channel is disabled (the VM's ring is not touched:
    /// it is guest memory, gone with the VM) and its ports deleted.
    fn teardown(&mut self, host: usize, channel: ChannelHandle, ports: &[SwitchPortId]) {
        let driver = Rc::clone(&self.hosts[host].driver);
        driver.disable(channel, &mut VecDeque::new());
        for &port in ports {
            self.hosts[host]
                .vswitch()
                .delete_port(port, driver.as_ref());
        }
    }

    fn restore(
        &mut self,
        vm: usize,
        dst: usize,
        package: &Package,
        report: &mut MigrationReport,
    ) -> Result<(ChannelHandle, Vec<SwitchPortId>), String> {
        let driver = Rc::clone(&self.hosts[dst].driver);
        let services = Rc::clone(&self.hosts[dst].services);
        let v = &self.vms[vm];
        let (id, src, old_ports, nics, configs, defer) = (
            v.id,
            v.host,
            v.ports.clone(),
            v.nics.clone(),
            v.configs.clone(),
            v.defer,
        );
        let mut new_ports = Vec::new();
        let mut failure = None;
        for (i, nic) in nics.iter().enumerate() {
            driver.set_port_config(*nic, configs[i]);
            match services.vswitch.create_port(*nic, driver.as_ref()) {
                Ok(port) => new_ports.push(port),
                Err(status) => {
                    failure = Some(format!("port create: {status}"));
                    break;
                }
            }
        }
        if failure.is_none() {
            for (i, port) in new_ports.iter().enumerate() {
                let blob = package.ports.get(i).cloned().unwrap_or_default();
                let status = services.vswitch.restore(*port, &blob, driver.as_ref());
                if !status.is_success() {
                    // Refused: nothing may have been installed.
                    self.checked(CORRUPTION, 1);
                    let fresh = driver.port_snapshot(*port);
                    if fresh
                        .as_ref()
                        .is_some_and(|s| s.counters != PortCounters::ZERO || !s.flows.is_empty())
                    {
                        self.violation(
                            CORRUPTION,
                            format!("vm {id}: refused port blob left state on port {}", port.0),
                        );
                    }
                    failure = Some(format!(
                        "runtime-state restore of port {}: {status}",
                        port.0
                    ));
                    break;
                }
                self.checked(PORT_STATE, 1);
                let old = old_ports.get(i).copied().unwrap_or(SwitchPortId(0));
                let at_save = self.save_snapshots.remove(&(src, old));
                let now = driver.port_snapshot(*port);
                match (at_save, now) {
                    (Some(a), Some(b)) if a == b => {}
                    (Some(a), Some(b)) => {
                        let diff = a.differences(&b).join("; ");
                        self.violation(PORT_STATE, format!("vm {id}: port {} -> {}: restored state differs from state at save: {diff}", old.0, port.0));
                    }
                    (a, b) => {
                        let what = if a.is_none() {
                            "no snapshot at save"
                        } else if b.is_none() {
                            "no restored port"
                        } else {
                            "?"
                        };
                        self.violation(
                            PORT_STATE,
                            format!("vm {id}: port {} -> {}: {what}", old.0, port.0),
                        );
                    }
                }
            }
        }
        let channel = driver.allocate_channel(id, nics[0], defer);
        if failure.is_none()
            && let Err(reason) = driver.restore_channel(channel, &package.session, &package.chunks)
        {
            failure = Some(reason);
        }
        report.restored = driver.channel_stat(channel, |s| s.transactions_restored);
        if let Some(reason) = failure {
            driver.disable(channel, &mut VecDeque::new());
            for port in new_ports {
                services.vswitch.delete_port(port, driver.as_ref());
            }
            return Err(reason);
        }
        Ok((channel, new_ports))
    }

    fn pick_migratable(&mut self) -> Option<usize> {
        let candidates: Vec<usize> = (0..self.vms.len())
            .filter(|&i| self.vms[i].guest.is_open())
            .collect();
        if candidates.is_empty() {
            return None;
        }
        Some(candidates[self.rng.index(candidates.len())])
    }

    /// Stops generating work and lets everything in flight finish.
    fn drain(&mut self) {
        for _ in 0..400 {
            self.time.advance(2_000);
            self.run_due(true);
            for vm in 0..self.vms.len() {
                self.vms[vm].guest.hurry_acks();
                let now = self.time.now();
                self.vms[vm].guest.send_due_acks(now);
                self.pump(vm, 64);
            }
            self.run_due(true);
            let quiet = self.agenda.is_empty()
                && self.vms.iter().all(|v| {
                    v.guest.ring.is_empty()
                        && (v.guest.acks_due() == 0 || !v.guest.alive())
                        && !v.open_pending
                });
            if quiet {
                break;
            }
        }
        self.settle_watches();
    }

    /// Runs the whole scenario and checks the invariants.
    pub fn run(mut self) -> (Report, Vec<String>) {
        let live = self.config.migrations as u64;
        let segments = live + 3;
        let steps = (self.config.packets * 10 / 3).max(segments);
        let per = steps / segments;
        self.traffic(per);
        if let Some(vm) = self.pick_migratable() {
            self.suspend_resume(vm);
        }
        self.traffic(per);
        for _ in 0..live {
            if let Some(vm) = self.pick_migratable() {
                self.migrate(vm, false);
            }
            self.traffic(per);
        }
        if let Some(vm) = self.pick_migratable() {
            self.migrate(vm, true);
        }
        self.traffic(per);
        self.drain();
        self.check_invariants(true);
        self.finish()
    }

    /// Checks the invariants. Some hold only at rest (`quiescent`: after [`World::drain`] with
    /// every guest open and every channel started): nothing outstanding, every request
    /// answered, the transactions in flight exactly the ones the guest withholds. The others
    /// hold after every step.
    fn check_invariants(&mut self, quiescent: bool) {
        let mut findings = Vec::new();
        for host in &self.hosts {
            findings.extend(host.kmcl().take_violations());
            findings.extend(host.vswitch().take_violations());
            findings.extend(host.driver.take_findings());
        }
        for text in findings {
            let invariant = if text.contains("double completion")
                || text.contains("never completed")
                || text.contains("failed but not outstanding")
            {
                INCOMING
            } else if text.contains("no packet object carries") || text.contains("guest completion")
            {
                OUTGOING_TX
            } else if text.contains("ProcessPacket refused") || text.contains("ProcessingComplete")
            {
                NO_PP_AFTER_SUSPEND
            } else {
                CONTRACTS
            };
            self.violation(invariant, text);
        }

        // Incoming: KMCL's and core's accounts balance on every channel; nothing outstanding.
        let mut checks = Vec::new();
        for host in &self.hosts {
            for handle in host.kmcl().channel_handles() {
                let Some(info) = host.kmcl().info(handle) else {
                    continue;
                };
                let s = info.stats;
                if s.delivered != s.completed + s.failed + info.outstanding_incoming as u64 {
                    checks.push((INCOMING, format!("{} channel {}: delivered {} != completed {} + failed {} + outstanding {}", host.name, handle.0, s.delivered, s.completed, s.failed, info.outstanding_incoming)));
                }
                if quiescent && info.outstanding_incoming != 0 {
                    checks.push((
                        INCOMING,
                        format!(
                            "{} channel {}: {} incoming packets never completed",
                            host.name, handle.0, info.outstanding_incoming
                        ),
                    ));
                }
                if let Some(core) = host.driver.channel_stats(handle) {
                    let outstanding =
                        host.driver
                            .core_channel(handle)
                            .map_or(0, |c| c.outstanding().0) as u64;
                    if core.packets_delivered
                        != core.packets_completed
                            + core.packets_refused
                            + core.packets_failed
                            + outstanding
                    {
                        checks.push((INCOMING, format!("{} channel {}: core delivered {} != completed {} + refused {} + failed {} + outstanding {}", host.name, handle.0, core.packets_delivered, core.packets_completed, core.packets_refused, core.packets_failed, outstanding)));
                    }
                    if core.packets_delivered != s.delivered {
                        checks.push((
                            NO_PP_AFTER_SUSPEND,
                            format!(
                                "{} channel {}: KMCL delivered {} but core saw {}",
                                host.name, handle.0, s.delivered, core.packets_delivered
                            ),
                        ));
                    }
                }
                if s.max_outstanding > u64::from(info.quota) || info.quota as usize > QUOTA {
                    checks.push((
                        CAPACITY,
                        format!(
                            "{} channel {}: {} outstanding with quota {}",
                            host.name, handle.0, s.max_outstanding, info.quota
                        ),
                    ));
                }
                if info.outgoing_in_use > OUTGOING {
                    checks.push((
                        CAPACITY,
                        format!(
                            "{} channel {}: {} outgoing packets in use",
                            host.name, handle.0, info.outgoing_in_use
                        ),
                    ));
                }
            }
            if host.driver.ports().len() > PORTS || host.driver.pending_saves() > PENDING_SAVES {
                checks.push((
                    CAPACITY,
                    format!(
                        "{}: {} ports, {} pending saves",
                        host.name,
                        host.driver.ports().len(),
                        host.driver.pending_saves()
                    ),
                ));
            }
        }
        let channel_count: u64 = self
            .hosts
            .iter()
            .map(|h| h.kmcl().channel_handles().len() as u64)
            .sum();
        self.checked(INCOMING, channel_count * 2);
        self.checked(NO_PP_AFTER_SUSPEND, channel_count);
        self.checked(CAPACITY, channel_count * 2 + self.hosts.len() as u64);
        for (invariant, text) in checks {
            self.violation(invariant, text);
        }

        // Per VM: guest-side and host-side accounts.
        for vm in 0..self.vms.len() {
            let v = &self.vms[vm];
            let host = &self.hosts[v.host];
            let mut out = Vec::new();
            for text in &v.guest.ledger.violations {
                out.push((GUEST, text.clone()));
            }
            if quiescent && v.guest.alive() && v.guest.is_open() && v.guest.outstanding() != 0 {
                out.push((
                    INCOMING,
                    format!(
                        "vm {}: {} requests never answered",
                        v.id,
                        v.guest.outstanding()
                    ),
                ));
            }
            // Host->guest: the guest's completions all arrived, each exactly once, on this VM.
            let completions: u64 = self
                .hosts
                .iter()
                .flat_map(|h| {
                    h.kmcl()
                        .channel_handles()
                        .into_iter()
                        .filter_map(|c| h.kmcl().info(c))
                        .collect::<Vec<_>>()
                })
                .filter(|i| i.vm == v.id)
                .map(|i| i.stats.guest_completions)
                .sum();
            let in_ring = v
                .guest
                .ring
                .iter()
                .filter(|i| matches!(i, ToHost::Completion { .. }))
                .count() as u64;
            let acks = v.guest.ledger.acks_sent - v.guest.ledger.acks_lost_in_crash - in_ring;
            if completions != acks {
                out.push((
                    OUTGOING_TX,
                    format!(
                        "vm {}: guest acked {} transactions, hosts saw {} completions",
                        v.id, acks, completions
                    ),
                ));
            }
            if v.guest.alive() && v.guest.is_open() {
                let in_use: BTreeSet<u64> =
                    host.kmcl().outgoing_txids(v.channel).into_iter().collect();
                if quiescent && &in_use != v.guest.withheld() {
                    out.push((
                        OUTGOING_TX,
                        format!(
                            "vm {}: transactions still in flight {:?}, guest withholds {:?}",
                            v.id,
                            in_use,
                            v.guest.withheld()
                        ),
                    ));
                }
                let core_out = host
                    .driver
                    .core_channel(v.channel)
                    .map_or(0, |c| c.outstanding().1);
                if core_out != in_use.len() {
                    out.push((
                        OUTGOING_TX,
                        format!(
                            "vm {}: core holds {} transactions, KMCL {}",
                            v.id,
                            core_out,
                            in_use.len()
                        ),
                    ));
                }
            }
            if let Some(service) = host.driver.service_stats(v.channel)
                && service.acks_refused != 0
            {
                out.push((
                    OUTGOING_TX,
                    format!(
                        "vm {}: {} acks named another notification (wrong VM or transaction)",
                        v.id, service.acks_refused
                    ),
                ));
            }
            // Counters: what the switch classified for this VM equals what its ports hold now,
            // wherever they are.
            for (nic, identity) in v.nics.iter().enumerate() {
                match host.driver.ports().counters_by_identity(identity) {
                    Ok((_, counters)) => {
                        let expected = &v.expected[nic];
                        if counters.ingress != expected.ingress
                            || counters.egress != expected.egress
                        {
                            out.push((COUNTERS, format!("vm {} nic {nic}: port counters {:?}/{:?}, classified {:?}/{:?}", v.id, counters.ingress, counters.egress, expected.ingress, expected.egress)));
                        }
                    }
                    Err(error) => out.push((
                        COUNTERS,
                        format!("vm {} nic {nic}: no port on {}: {error}", v.id, host.name),
                    )),
                }
            }
            for (invariant, text) in out {
                self.violation(invariant, text);
            }
        }
        let vms = self.vms.len() as u64;
        let nics: u64 = self.vms.iter().map(|v| v.nics.len() as u64).sum();
        self.checked(GUEST, vms);
        self.checked(OUTGOING_TX, vms * 4);
        self.checked(COUNTERS, nics);
        self.checked(CONTRACTS, self.hosts.len() as u64 * 3);
    }

    fn finish(self) -> (Report, Vec<String>) {
        let mut totals = Totals {
            hosts: self.hosts.len() as u64,
            frames: self.frames,
            frames_dropped: self.frames_dropped,
            faults_injected: self.faults_injected.clone(),
            ..Totals::default()
        };
        for v in &self.vms {
            let l = &v.guest.ledger;
            totals.requests += l.requests_sent;
            totals.responses += l.responses;
            totals.refused += l.busy + l.cancelled;
            totals.malformed_refused += l.malformed_refused;
            totals.notifications += l.notifications;
            totals.acks += l.acks_sent;
            totals.crashes += l.crashes;
            for (fault, count) in [
                (Fault::LateAck, l.late_acks),
                (Fault::NoAck, l.acks_withheld),
            ] {
                if count > 0 {
                    *totals
                        .faults_injected
                        .entry(fault.name().to_string())
                        .or_default() += count;
                }
            }
        }
        for host in &self.hosts {
            let d = host.driver.stats();
            totals.deferred += d.deferred;
            totals.deferred_stale += d.deferred_stale;
            totals.pended_port_saves += host.vswitch().stats().pended;
            for handle in host.kmcl().channel_handles() {
                totals.quota_stalls += host.kmcl().info(handle).map_or(0, |i| i.stats.quota_stalls);
            }
        }
        let violations = self
            .invariants
            .iter()
            .map(|i| i.violations.len() as u64)
            .sum();
        let report = Report {
            seed: self.config.seed,
            replay: self.config.replay_command(),
            phases: self.phases,
            migrations: self.migrations,
            totals,
            invariants: self.invariants,
            violations,
        };
        (report, self.events.take())
    }
}

/// Runs one scenario: its report (real durations filled in unless `deterministic`) and its
/// event log (empty unless `config.trace`).
#[must_use]
pub fn run_scenario(config: ScenarioConfig, deterministic: bool) -> (Report, Vec<String>) {
    let (mut report, trace) = World::new(config).run();
    for phase in &mut report.phases {
        phase.real_micros = (!deterministic).then_some(phase.real.as_micros() as u64);
    }
    (report, trace)
}
