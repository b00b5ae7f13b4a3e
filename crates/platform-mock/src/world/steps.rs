//! The simulated host one step at a time: a [`Setup`] builds a [`World`], each [`Action`] is
//! one host event, guest action, fault or migration, and [`World::check_step`] checks the
//! invariants after it. The fuzz target `host_sequence` and `tests/steps.rs` drive it;
//! with the `arbitrary` feature every type here implements `arbitrary::Arbitrary`.
//!
//! Numbers inside an action select (modulo the count) rather than name: `vm: 7` with three
//! VMs is VM 1, so every byte string is a valid sequence. An action whose precondition does
//! not hold (migrating a VM whose guest is closed, replugging a NIC of a VM without ports)
//! does nothing. Everything else the simulator decides (delays, which byte a bit flip hits)
//! comes from the seeded generator, so a sequence replays exactly.

use std::rc::Rc;

use ferry_core::port::{Direction, PortCounters, PortIdentity, SwitchPortId};
use ferry_core::protocol::EventSet;

use super::{CONTRACTS, CORRUPTION, PORT_SAVE_TIMEOUT, PORT_STATE, ScenarioConfig, Task, World};
use crate::driver::{PortSaveMode, QUOTA};
use crate::faults::{Fault, FaultSet};
use crate::vswitch::SaveProgress;

/// The world a sequence starts from.
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Setup {
    /// The seed of the generator behind every delay and damaged byte.
    pub seed: u64,
    /// VMs: 1 + `vms % 3`.
    pub vms: u8,
    /// NICs (switch ports) per VM: 1 + `ports % 2`.
    pub ports: u8,
    /// Flows per NIC: 1 + `flows % 96` (more than a port's flow table holds).
    pub flows: u8,
    /// Guests ack some notifications late.
    pub late_acks: bool,
    /// Guests never ack some notifications.
    pub withheld_acks: bool,
}

impl Setup {
    /// The scenario configuration this setup stands for.
    #[must_use]
    pub fn config(&self) -> ScenarioConfig {
        let mut faults = FaultSet::none();
        if self.late_acks {
            faults.0.insert(Fault::LateAck);
        }
        if self.withheld_acks {
            faults.0.insert(Fault::NoAck);
        }
        ScenarioConfig {
            seed: self.seed,
            vms: 1 + u32::from(self.vms % 3),
            ports: 1 + u32::from(self.ports % 2),
            flows: 1 + u32::from(self.flows % 96),
            packets: 0,
            migrations: 0,
            faults,
            trace: false,
        }
    }
}

/// How the callout answers a runtime-state save.
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PortSave {
    /// The blob is written in the save call.
    #[default]
    Synchronous,
    /// The save is pended and finished later (`FwpsvSwitchNotifyComplete0`).
    Pending,
    /// The save fails.
    Fail,
    /// The save is pended and never finished (the watchdog or the switch's timeout ends it).
    Hang,
}

impl PortSave {
    pub(super) const fn mode(self) -> PortSaveMode {
        match self {
            Self::Synchronous => PortSaveMode::Synchronous,
            Self::Pending => PortSaveMode::Pending,
            Self::Fail => PortSaveMode::Fail,
            Self::Hang => PortSaveMode::Hang,
        }
    }
}

/// Which of a migration's blobs is damaged in transfer.
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DamagedBlob {
    /// One transaction's SaveBuf inside the KMCL stream (the session blob if none has one).
    SaveBuf,
    /// The session blob (kind 3).
    Session,
    /// One port's runtime-state blob (kind 2; the session blob if the VM has no port blob).
    Port,
}

/// How a blob is damaged.
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DamageKind {
    /// Cut short (at least one byte stays).
    Truncate,
    /// One bit flipped.
    BitFlip,
    /// Replaced by another blob (another VM's session, another NIC's port, another kind).
    Foreign,
}

/// Damage done to a migration's bytes in transfer.
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Damage {
    /// The blob.
    pub blob: DamagedBlob,
    /// The damage.
    pub kind: DamageKind,
}

impl Damage {
    /// The fault and the target index `World::corrupt` uses.
    pub(super) const fn choice(self) -> (Fault, Option<u64>) {
        let fault = match self.kind {
            DamageKind::Truncate => Fault::Truncate,
            DamageKind::BitFlip => Fault::BitFlip,
            DamageKind::Foreign => Fault::Foreign,
        };
        let target = match self.blob {
            DamagedBlob::SaveBuf => 0,
            DamagedBlob::Session => 1,
            DamagedBlob::Port => 2,
        };
        (fault, Some(target))
    }
}

/// The faults one migration (or local save/restore) meets, in the order they strike.
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MigrationPlan {
    /// The guest crashes between the pause and the save.
    pub crash_before_save: bool,
    /// Every `EvtVmbChannelSavePacket` fails.
    pub save_packet_fail: bool,
    /// The first `VmbChannelSaveContinue` buffer is too small.
    pub short_buffer: bool,
    /// How the ports' runtime-state saves are answered.
    pub port_save: PortSave,
    /// Damage in transfer (live migration only).
    pub damage: Option<Damage>,
    /// The guest crashes on the destination between the restore and the start.
    pub crash_before_start: bool,
}

/// One step on the simulated host.
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// The guest writes its next request into its ring.
    Request {
        /// VM selector.
        vm: u8,
    },
    /// The guest writes a malformed packet.
    Malformed {
        /// VM selector.
        vm: u8,
    },
    /// The guest writes a packet larger than any message.
    Oversized {
        /// VM selector.
        vm: u8,
    },
    /// The guest writes 2 × quota + `extra % quota` pings at once (after negotiating).
    Flood {
        /// VM selector.
        vm: u8,
        /// Pings past twice the quota.
        extra: u8,
    },
    /// KMCL delivers one batch of at most 1 + `budget % 16` ring items.
    Pump {
        /// VM selector.
        vm: u8,
        /// Batch size selector.
        budget: u8,
    },
    /// The host raises every event on the VM's channel (notifications to send).
    Raise {
        /// VM selector.
        vm: u8,
    },
    /// The guest writes the acks that are due.
    Acks {
        /// VM selector.
        vm: u8,
    },
    /// Virtual time advances by 16 × `ticks` ticks; due tasks (deferred answers, pended port
    /// saves, guest reopens) run.
    Advance {
        /// Time selector.
        ticks: u16,
    },
    /// `VmbChannelPause` on the VM's channel.
    Pause {
        /// VM selector.
        vm: u8,
    },
    /// `VmbChannelStart` on the VM's channel.
    Start {
        /// VM selector.
        vm: u8,
    },
    /// The guest crashes (KMCL closes the channel) and reopens later.
    Crash {
        /// VM selector.
        vm: u8,
    },
    /// The guest closes its channel (and stays away until [`Action::Open`] or settling).
    Close {
        /// VM selector.
        vm: u8,
    },
    /// The guest opens its channel (booting first if it crashed), if it has it closed.
    Open {
        /// VM selector.
        vm: u8,
    },
    /// ferry refuses the next guest open on the VM's host.
    RefuseNextOpen {
        /// VM selector.
        vm: u8,
    },
    /// The switch classifies one frame on a NIC of the VM.
    Classify {
        /// VM selector.
        vm: u8,
        /// NIC selector.
        nic: u8,
        /// Flow selector.
        flow: u8,
        /// Ingress (else egress).
        ingress: bool,
        /// Length: 64 + `length % 1451` bytes.
        length: u16,
    },
    /// The NIC's switch port is deleted and created again (a fresh port id, zero counters).
    ReplugNic {
        /// VM selector.
        vm: u8,
        /// NIC selector.
        nic: u8,
    },
    /// A port belonging to no VM is created on the VM's host (refused when the table is
    /// full).
    CreateStrayPort {
        /// VM selector (the host).
        vm: u8,
        /// Distinguishes the port's identity.
        tag: u8,
    },
    /// A stray port is deleted.
    DeleteStrayPort {
        /// Stray port selector.
        index: u8,
    },
    /// The switch saves a NIC's runtime state; if that succeeds, the port is deleted, created
    /// again under a new port id and the blob restored onto it.
    PortSaveRestore {
        /// VM selector.
        vm: u8,
        /// NIC selector.
        nic: u8,
        /// How the callout answers.
        save: PortSave,
    },
    /// The driver's watchdog fails pended port saves older than the switch's timeout.
    ReapOverdueSaves {
        /// VM selector (the host).
        vm: u8,
    },
    /// Live migration of the VM to a new host (channel save, transfer, restore).
    Migrate {
        /// VM selector.
        vm: u8,
        /// Its faults.
        plan: MigrationPlan,
    },
    /// VM save and restore on the same host (damage in the plan is ignored).
    SaveRestoreLocal {
        /// VM selector.
        vm: u8,
        /// Its faults.
        plan: MigrationPlan,
    },
    /// Every guest opens, every channel starts, and the world drains until nothing is in
    /// flight; then the invariants that hold only at rest are checked too.
    Settle,
}

impl World {
    /// The world `setup` describes, every guest opening its channel.
    #[must_use]
    pub fn from_setup(setup: &Setup) -> Self {
        Self::new(setup.config())
    }

    /// Every invariant violation recorded so far, as `invariant: what`.
    #[must_use]
    pub fn violations(&self) -> Vec<String> {
        self.invariants
            .iter()
            .flat_map(|i| i.violations.iter().map(move |v| format!("{}: {v}", i.name)))
            .collect()
    }

    /// Checks the invariants that hold after every step (all of them after
    /// [`Action::Settle`]); the violations are in [`World::violations`].
    pub fn check_step(&mut self) {
        self.check_invariants(false);
    }

    /// Checks every invariant, those that hold only at rest included, without bringing the
    /// world to rest first (a test's way to show the at-rest checks can fail).
    pub fn check_as_if_at_rest(&mut self) {
        self.check_invariants(true);
    }

    /// Brings the world to rest ([`Action::Settle`]) and checks every invariant.
    pub fn settle(&mut self) {
        for vm in 0..self.vms.len() {
            if !self.vms[vm].guest.is_open() && !self.vms[vm].open_pending {
                self.guest_open(vm);
            }
            let (host, channel) = (self.vms[vm].host, self.vms[vm].channel);
            self.hosts[host].driver.start(channel);
            self.deliver(vm);
        }
        self.drain();
        self.check_invariants(true);
    }

    fn pick(&self, vm: u8) -> usize {
        usize::from(vm) % self.vms.len()
    }

    /// Applies one action (checking nothing: see [`World::check_step`]).
    pub fn apply(&mut self, action: &Action) {
        match *action {
            Action::Request { vm } => {
                let vm = self.pick(vm);
                self.vms[vm].guest.send_request(&mut self.rng);
            }
            Action::Malformed { vm } => {
                let vm = self.pick(vm);
                if self.vms[vm].guest.is_open() {
                    self.vms[vm].guest.send_malformed(&mut self.rng);
                    self.inject(Fault::Malformed);
                }
            }
            Action::Oversized { vm } => {
                let vm = self.pick(vm);
                if self.vms[vm].guest.is_open() {
                    self.vms[vm].guest.send_oversized(&mut self.rng);
                    self.inject(Fault::Oversized);
                }
            }
            Action::Flood { vm, extra } => {
                let vm = self.pick(vm);
                let guest = &mut self.vms[vm].guest;
                if guest.negotiated() && guest.is_open() {
                    guest.flood(QUOTA * 2 + usize::from(extra) % QUOTA);
                    self.inject(Fault::Flood);
                }
            }
            Action::Pump { vm, budget } => {
                let vm = self.pick(vm);
                self.pump(vm, 1 + usize::from(budget % 16));
            }
            Action::Raise { vm } => {
                let vm = self.pick(vm);
                let v = &self.vms[vm];
                self.hosts[v.host].driver.raise(v.channel, EventSet::ALL);
                self.deliver(vm);
            }
            Action::Acks { vm } => {
                let vm = self.pick(vm);
                let now = self.time.now();
                self.vms[vm].guest.send_due_acks(now);
            }
            Action::Advance { ticks } => {
                self.time.advance(u64::from(ticks) * 16);
                self.run_due(false);
            }
            Action::Pause { vm } => {
                let vm = self.pick(vm);
                let v = &self.vms[vm];
                self.hosts[v.host].driver.pause(v.channel);
                self.check_paused(vm);
                self.deliver(vm);
            }
            Action::Start { vm } => {
                let vm = self.pick(vm);
                let v = &self.vms[vm];
                self.hosts[v.host].driver.start(v.channel);
                self.deliver(vm);
            }
            Action::Crash { vm } => {
                let vm = self.pick(vm);
                if self.vms[vm].guest.is_open() {
                    self.crash(vm);
                }
            }
            Action::Close { vm } => {
                let vm = self.pick(vm);
                if self.vms[vm].guest.is_open() {
                    self.close(vm);
                }
            }
            Action::Open { vm } => {
                let vm = self.pick(vm);
                if !self.vms[vm].guest.is_open() && !self.vms[vm].open_pending {
                    self.guest_open(vm);
                }
            }
            Action::RefuseNextOpen { vm } => {
                let vm = self.pick(vm);
                let driver = &self.hosts[self.vms[vm].host].driver;
                driver.refuse_opens.set(driver.refuse_opens.get() + 1);
                self.inject(Fault::RefuseOpen);
            }
            Action::Classify {
                vm,
                nic,
                flow,
                ingress,
                length,
            } => {
                let vm = self.pick(vm);
                let v = &self.vms[vm];
                if !v.ports.is_empty() {
                    let nic = usize::from(nic) % v.ports.len();
                    let flow = usize::from(flow) % v.flows[nic].len();
                    let direction = if ingress {
                        Direction::Ingress
                    } else {
                        Direction::Egress
                    };
                    self.classify_frame(vm, nic, flow, direction, 64 + u32::from(length % 1451));
                }
            }
            Action::ReplugNic { vm, nic } => self.replug(self.pick(vm), nic),
            Action::CreateStrayPort { vm, tag } => {
                let host = self.vms[self.pick(vm)].host;
                let h = &self.hosts[host];
                let mut identity = *b"STRAY-PORT------";
                identity[15] = tag;
                // A full table refuses the port with a status: that is the contract, not a
                // violation.
                if let Ok(port) = h
                    .vswitch()
                    .create_port(PortIdentity(identity), h.driver.as_ref())
                {
                    self.stray_ports.push((host, port));
                }
            }
            Action::DeleteStrayPort { index } => {
                if !self.stray_ports.is_empty() {
                    let (host, port) = self
                        .stray_ports
                        .remove(usize::from(index) % self.stray_ports.len());
                    let h = &self.hosts[host];
                    h.vswitch().delete_port(port, h.driver.as_ref());
                }
            }
            Action::PortSaveRestore { vm, nic, save } => {
                self.port_save_restore(self.pick(vm), nic, save);
            }
            Action::ReapOverdueSaves { vm } => {
                let host = self.vms[self.pick(vm)].host;
                self.hosts[host]
                    .driver
                    .reap_overdue_saves(PORT_SAVE_TIMEOUT);
            }
            Action::Migrate { vm, plan } => self.planned_migration(vm, plan, false),
            Action::SaveRestoreLocal { vm, plan } => self.planned_migration(vm, plan, true),
            Action::Settle => self.settle(),
        }
    }

    fn planned_migration(&mut self, vm: u8, plan: MigrationPlan, same_host: bool) {
        let vm = self.pick(vm);
        if !self.vms[vm].guest.is_open() {
            return;
        }
        self.plan = Some(plan);
        self.migrate(vm, same_host);
        self.plan = None;
    }

    /// The guest closes its channel in an orderly way: to the host it looks like a crash (the
    /// ring is discarded), but nobody reopens it.
    fn close(&mut self, vm: usize) {
        let v = &mut self.vms[vm];
        let id = v.id;
        v.guest.crash();
        let host = &self.hosts[v.host];
        host.kmcl()
            .guest_close(v.channel, &mut v.guest.ring, host.driver.as_ref());
        self.log(|| format!("vm {id}: guest closed its channel"));
        self.deliver(vm);
    }

    fn replug(&mut self, vm: usize, nic: u8) {
        let v = &self.vms[vm];
        if v.ports.is_empty() {
            return;
        }
        let nic = usize::from(nic) % v.ports.len();
        let (host, port, identity) = (v.host, v.ports[nic], v.nics[nic]);
        let h = &self.hosts[host];
        h.vswitch().delete_port(port, h.driver.as_ref());
        match h.vswitch().create_port(identity, h.driver.as_ref()) {
            Ok(new) => {
                let v = &mut self.vms[vm];
                v.ports[nic] = new;
                v.expected[nic] = PortCounters::ZERO;
                if nic == 0 {
                    // The channel reports the first NIC's port to the guest.
                    v.guest.nic_replaced();
                }
            }
            Err(status) => {
                let id = v.id;
                self.violation(
                    CONTRACTS,
                    format!("vm {id}: re-creating a just-deleted port failed: {status}"),
                );
            }
        }
    }

    /// A runtime-state save of one NIC, then (if it produced a blob) the port deleted,
    /// created again and the blob restored onto the new port id: the state must come back
    /// exactly.
    fn port_save_restore(&mut self, vm: usize, nic: u8, save: PortSave) {
        let v = &self.vms[vm];
        if v.ports.is_empty() {
            return;
        }
        let nic = usize::from(nic) % v.ports.len();
        let (id, host, port, identity) = (v.id, v.host, v.ports[nic], v.nics[nic]);
        let driver = Rc::clone(&self.hosts[host].driver);
        let services = Rc::clone(&self.hosts[host].services);
        match save {
            PortSave::Fail => self.inject(Fault::PortSaveFail),
            PortSave::Hang => self.inject(Fault::PortSaveHang),
            PortSave::Synchronous | PortSave::Pending => {}
        }
        if let Some(snapshot) = driver.port_snapshot(port) {
            self.save_snapshots.insert((host, port), snapshot);
        }
        driver.port_save_mode.set(save.mode());
        let oid = services
            .vswitch
            .request_save(port, services.clock.now(), driver.as_ref());
        driver.port_save_mode.set(PortSaveMode::Synchronous);
        for finishable in driver.finishable_saves(&[port]) {
            let delay = self.rng.range(100, 20_000);
            self.schedule(
                delay,
                Task::FinishPortSave {
                    host,
                    port: finishable,
                },
            );
        }
        let blob = loop {
            match services.vswitch.save_progress(oid, services.clock.now()) {
                Some(SaveProgress::Saved(blob)) => break blob,
                Some(SaveProgress::Failed(_)) => {
                    self.save_snapshots.remove(&(host, port));
                    return;
                }
                Some(SaveProgress::Pending { outstanding }) if outstanding > PORT_SAVE_TIMEOUT => {
                    services.vswitch.abandon_save(oid);
                    driver.reap_overdue_saves(PORT_SAVE_TIMEOUT);
                    self.save_snapshots.remove(&(host, port));
                    return;
                }
                Some(SaveProgress::Pending { .. }) => {
                    self.time.advance(self.rng.range(500, 5_000));
                    self.run_due(false);
                }
                None => {
                    self.save_snapshots.remove(&(host, port));
                    self.violation(CONTRACTS, format!("vm {id}: save request {oid} vanished"));
                    return;
                }
            }
        };
        // The port may have moved on while the save was pended (a task ran): only restore
        // onto the port the VM still has.
        if self.vms[vm].ports.get(nic) != Some(&port) || self.vms[vm].host != host {
            self.save_snapshots.remove(&(host, port));
            return;
        }
        services.vswitch.delete_port(port, driver.as_ref());
        let new = match services.vswitch.create_port(identity, driver.as_ref()) {
            Ok(new) => new,
            Err(status) => {
                self.save_snapshots.remove(&(host, port));
                self.violation(
                    CONTRACTS,
                    format!("vm {id}: re-creating a just-deleted port failed: {status}"),
                );
                return;
            }
        };
        self.vms[vm].ports[nic] = new;
        let status = services.vswitch.restore(new, &blob, driver.as_ref());
        self.checked(CORRUPTION, 1);
        let at_save = self.save_snapshots.remove(&(host, port));
        if !status.is_success() {
            self.vms[vm].expected[nic] = PortCounters::ZERO;
            self.violation(
                CONTRACTS,
                format!(
                    "vm {id}: port {} -> {}: restore of an intact blob failed: {status}",
                    port.0, new.0
                ),
            );
            return;
        }
        self.checked(PORT_STATE, 1);
        match (at_save, driver.port_snapshot(new)) {
            (Some(a), Some(b)) if a == b => {}
            (Some(a), Some(b)) => {
                let diff = a.differences(&b).join("; ");
                self.violation(
                    PORT_STATE,
                    format!(
                        "vm {id}: port {} -> {}: restored state differs from state at save: {diff}",
                        port.0, new.0
                    ),
                );
            }
            (a, _) => {
                let what = if a.is_none() {
                    "no snapshot at save"
                } else {
                    "no restored port"
                };
                self.violation(
                    PORT_STATE,
                    format!("vm {id}: port {} -> {}: {what}", port.0, new.0),
                );
            }
        }
    }

    /// The report so far (migrations, totals, invariants) and the event log.
    #[must_use]
    pub fn into_report(self) -> (crate::report::Report, Vec<String>) {
        self.finish()
    }

    /// The switch port ids of every VM's NICs (for tests).
    #[must_use]
    pub fn vm_ports(&self) -> Vec<Vec<SwitchPortId>> {
        self.vms.iter().map(|v| v.ports.clone()).collect()
    }
}

/// Runs `actions` on the world `setup` describes, checking the invariants after every step
/// and, at the end, after settling. Returns the violations of the first step that had any
/// (with the step's index; `actions.len()` for the final settle), or `None`.
#[must_use]
pub fn run_sequence(setup: &Setup, actions: &[Action]) -> Option<(usize, Vec<String>)> {
    let mut world = World::from_setup(setup);
    world.check_step();
    let found = world.violations();
    if !found.is_empty() {
        return Some((0, found));
    }
    for (index, action) in actions.iter().enumerate() {
        world.apply(action);
        world.check_step();
        let found = world.violations();
        if !found.is_empty() {
            return Some((index, found));
        }
    }
    world.settle();
    let found = world.violations();
    (!found.is_empty()).then_some((actions.len(), found))
}
