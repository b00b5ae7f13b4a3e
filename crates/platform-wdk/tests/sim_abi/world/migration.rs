//! Live migration of one VM from its host to the next: pause mid-traffic, save the channel
//! (session blob, KMCL's stream with SavePacket's two calls), save each port's runtime state
//! (maybe pended and finished through `FwpsvSwitchNotifyComplete0`), carry the bytes, restore
//! the ports under the destination's new ids and the channel (RestoreFromBuffer,
//! RestorePacket), start it there, and let the source go — or, when the bytes were damaged
//! on the way, see the destination refuse them and resume on the source.

use ferry_core::port::PortCounters;
use ferry_platform_mock::driver::PortSnapshot;
use ferry_platform_mock::kmcl;
use ferry_platform_mock::rng::SimRng;
use ferry_platform_mock::vswitch::SaveProgress;
use ferry_platform_wdk::ffi::kmcl::VMBCHANNEL;

use super::{Migration, World};
use crate::ferry_hosts::HOSTS;

/// What crosses from source to destination: bytes only (and, for the checks, the source's
/// port states at save).
struct Package {
    chunks: Vec<Vec<u8>>,
    session: Vec<u8>,
    ports: Vec<Vec<u8>>,
    snapshots: Vec<Option<PortSnapshot>>,
}

impl World {
    /// Live migration of `vm` to the next host. `pend`: whether the port saves answer
    /// `STATUS_PENDING` (random if `None`). With [`Config::corrupt`](super::Config) the bytes
    /// may be damaged on the way; the destination must refuse them, and the VM resumes on the
    /// source. Returns whether the VM moved.
    pub fn migrate(&mut self, vm: usize, pend: Option<bool>) -> bool {
        let src = self.vms[vm].host;
        let dst = (src + 1) % HOSTS;
        let id = self.vms[vm].id;
        let channel = self.vms[vm].channel;
        let mut report = Migration {
            from: src,
            to: dst,
            old_ports: self.vms[vm].ports.clone(),
            ..Migration::default()
        };
        let Some(mut package) = self.save(vm, pend, &mut report) else {
            self.drivers[src].start(channel);
            return false;
        };
        let bytes = package.chunks.iter().map(Vec::len).sum::<usize>()
            + package.session.len()
            + package.ports.iter().map(Vec::len).sum::<usize>();
        self.time.advance(bytes as u64 / 2 + 1_000);
        let corrupted = if self.config.corrupt && self.rng.chance(40) {
            self.corrupt(&mut package)
        } else {
            None
        };
        match (self.restore(vm, dst, &package, &mut report), corrupted) {
            (Ok(()), None) => {}
            (Ok(()), Some(what)) => {
                self.finding(format!("vm {id}: the destination accepted {what}"));
            }
            (Err(_), Some(_)) => {
                // Refused, as it must be: the VM resumes on the source. The destination's
                // driver logged the refusal; that line is expected, any other is not.
                self.hosts[dst].abi.log.borrow_mut().retain(|line| {
                    !line.starts_with("Warning: restore of port")
                        && !line.starts_with("Warning: RestorePacket:")
                });
                report.refused = true;
                self.migrations.push(report);
                self.drivers[src].start(channel);
                self.deliver(vm);
                return false;
            }
            (Err(reason), None) => {
                self.finding(format!(
                    "vm {id}: restore of intact bytes refused: {reason}"
                ));
                self.drivers[src].start(channel);
                self.deliver(vm);
                return false;
            }
        }

        // Source lets go: Disable (Closed, cancellations through the completion routine),
        // Cleanup, and the ports' PORT_DELETE.
        self.close_channel(src, channel);
        for port in &report.old_ports {
            self.hosts[src]
                .services
                .vswitch
                .delete_port(*port, self.drivers[src].callout());
        }
        self.deliver(vm);
        self.migrations.push(report);
        true
    }

    /// The source's half: pause mid-traffic, save the channel (SavePacket's two calls through
    /// C), then each port's runtime state (maybe pended and finished through
    /// `FwpsvSwitchNotifyComplete0`). `None` (recorded) if a save failed.
    fn save(&mut self, vm: usize, pend: Option<bool>, report: &mut Migration) -> Option<Package> {
        let (src, id, channel) = (self.vms[vm].host, self.vms[vm].id, self.vms[vm].channel);
        self.busy(vm);
        self.drivers[src].pause(channel);
        self.check_paused(vm);
        self.deliver(vm);
        report.in_flight_at_save = self.drivers[src].outstanding(channel).map_or(0, |o| o.1);
        let rng = &mut self.rng;
        let mut size = || rng.range(1, 400) as usize;
        let (session, chunks) = match self.drivers[src].save_channel(channel, &mut size) {
            Ok(saved) => saved,
            Err(reason) => {
                self.finding(format!("vm {id}: channel save failed: {reason}"));
                return None;
            }
        };
        report.chunks = chunks.len();
        let mut package = Package {
            chunks,
            session,
            ports: Vec::new(),
            snapshots: Vec::new(),
        };
        for port in report.old_ports.clone() {
            let pended = pend.unwrap_or_else(|| self.rng.chance(50));
            let driver = &self.drivers[src];
            let services = &self.hosts[src].services;
            driver.set_pend_saves(pended);
            let mut snapshot = driver.snapshot(port);
            let oid = services
                .vswitch
                .request_save(port, services.clock.now(), driver.callout());
            driver.set_pend_saves(false);
            if pended {
                report.pended_port_saves += 1;
                self.time.advance(self.rng.range(100, 20_000));
                let driver = &self.drivers[src];
                snapshot = driver.snapshot(port);
                if !driver.finish_save(port) {
                    self.finding(format!(
                        "vm {id}: port {}: no pended save to finish",
                        port.0
                    ));
                }
            }
            let now = self.hosts[src].services.clock.now();
            match self.hosts[src].services.vswitch.save_progress(oid, now) {
                Some(SaveProgress::Saved(blob)) => package.ports.push(blob),
                other => {
                    self.finding(format!("vm {id}: port {} save ended {other:?}", port.0));
                    return None;
                }
            }
            package.snapshots.push(snapshot);
        }
        Some(package)
    }

    /// Damages one of the package's blobs as a faulty transfer would: a transaction's SaveBuf
    /// inside KMCL's stream (KMCL's own check re-sealed, so only ferry can notice), the
    /// session blob, or a port blob; truncated, one bit flipped, or replaced by a blob of
    /// another kind or NIC. Returns what was done, or `None` if there was nothing to damage.
    fn corrupt(&mut self, package: &mut Package) -> Option<String> {
        let fault = self.rng.below(3);
        let rng = &mut self.rng;
        let damage = |blob: &mut Vec<u8>, rng: &mut SimRng, foreign: &[u8]| match fault {
            0 => blob.truncate(1 + rng.index(blob.len().saturating_sub(1))),
            1 => {
                let byte = rng.index(blob.len());
                blob[byte] ^= 1 << rng.below(8);
            }
            _ => *blob = foreign.to_vec(),
        };
        let name = ["truncation", "bit flip", "foreign blob"][fault as usize];
        let stream: Vec<u8> = package.chunks.concat();
        let with_state: Vec<usize> = kmcl::saved_packets(&stream)
            .unwrap_or_default()
            .iter()
            .enumerate()
            .filter(|(_, (_, saved))| !saved.is_empty())
            .map(|(i, _)| i)
            .collect();
        match rng.below(3) {
            0 if !with_state.is_empty() => {
                let index = with_state[rng.index(with_state.len())];
                let foreign = package.ports.first().cloned().unwrap_or_default();
                let mut sub = rng.fork();
                let rewritten = kmcl::rewrite_saved_packets(&stream, |packets| {
                    if let Some((_, saved)) = packets.get_mut(index) {
                        damage(saved, &mut sub, &foreign);
                    }
                })?;
                let mut chunks = Vec::new();
                let mut at = 0;
                while at < rewritten.len() {
                    let n = (rng.range(64, 512) as usize).min(rewritten.len() - at);
                    chunks.push(rewritten[at..at + n].to_vec());
                    at += n;
                }
                package.chunks = chunks;
                Some(format!("a {name} of a transaction's SaveBuf"))
            }
            1 if !package.ports.is_empty() => {
                let index = rng.index(package.ports.len());
                // Foreign: another NIC's blob, or the session (wrong kind) for a single NIC.
                let foreign = if package.ports.len() > 1 {
                    package.ports[(index + 1) % package.ports.len()].clone()
                } else {
                    package.session.clone()
                };
                damage(&mut package.ports[index], rng, &foreign);
                Some(format!("a {name} of port blob {index}"))
            }
            _ => {
                let foreign = package.ports.first().cloned().unwrap_or_default();
                damage(&mut package.session, rng, &foreign);
                Some(format!("a {name} of the session blob"))
            }
        }
    }

    /// The destination's half: ports created (new ids) and restored first, then the channel
    /// offered, restored (RestoreFromBuffer, RestorePacket) and started. On a refusal
    /// everything made on the destination is undone; a refused port blob must leave its port
    /// untouched.
    fn restore(
        &mut self,
        vm: usize,
        dst: usize,
        package: &Package,
        report: &mut Migration,
    ) -> Result<(), String> {
        let id = self.vms[vm].id;
        let (nics, configs) = (self.vms[vm].nics.clone(), self.vms[vm].configs.clone());
        let new_ports = self.create_ports(dst, &nics, &configs);
        let mut result = Ok(());
        for (index, port) in new_ports.iter().enumerate() {
            let old = report.old_ports[index];
            let blob = package.ports.get(index).cloned().unwrap_or_default();
            let callout = self.drivers[dst].callout();
            let status = self.hosts[dst]
                .services
                .vswitch
                .restore(*port, &blob, callout);
            let now = self.drivers[dst].snapshot(*port);
            if !status.is_success() {
                if now.is_some_and(|s| s.counters != PortCounters::ZERO || !s.flows.is_empty()) {
                    self.finding(format!(
                        "vm {id}: a refused blob left state on port {}",
                        port.0
                    ));
                }
                result = Err(format!("restore of port {} -> {}: {status}", old.0, port.0));
                break;
            }
            match (package.snapshots.get(index).cloned().flatten(), now) {
                (Some(a), Some(b)) if a == b => {}
                (Some(a), Some(b)) => self.finding(format!(
                    "vm {id}: port {} -> {}: state differs: {}",
                    old.0,
                    port.0,
                    a.differences(&b).join("; ")
                )),
                _ => self.finding(format!("vm {id}: port {} -> {}: no state", old.0, port.0)),
            }
        }
        let mut new_channel = None;
        if result.is_ok() {
            let vmbus = self.hosts[dst].add_vm(id);
            result = match self.drivers[dst].offer(vmbus, nics[0], false) {
                Ok(channel) => {
                    new_channel = Some(channel);
                    let driver = &self.drivers[dst];
                    driver.restore_channel(channel, &package.session, &package.chunks)
                }
                Err(status) => Err(format!("destination offer: {status}")),
            };
        }
        let mock = new_channel.and_then(|c| self.mock_of(dst, c));
        let (Ok(()), Some(channel), Some(mock)) = (&result, new_channel, mock) else {
            if let Some(channel) = new_channel {
                self.close_channel(dst, channel);
            }
            for port in &new_ports {
                let callout = self.drivers[dst].callout();
                self.hosts[dst].services.vswitch.delete_port(*port, callout);
            }
            return result.and(Err("the restored channel has no KMCL channel".into()));
        };
        report.restored = self.drivers[dst]
            .stats(channel)
            .map_or(0, |s| s.transactions_restored);
        report.new_ports = new_ports.clone();
        let v = &mut self.vms[vm];
        v.host = dst;
        v.channel = channel;
        v.mock = mock;
        v.ports = new_ports;
        self.drivers[dst].start(channel);
        Ok(())
    }

    /// Closes a channel and checks that core saw every packet KMCL delivered on it.
    fn close_channel(&mut self, host: usize, channel: VMBCHANNEL) {
        let mock = self.mock_of(host, channel);
        let stats = self.drivers[host].close(channel);
        let kmcl = mock.and_then(|m| self.hosts[host].services.kmcl.info(m));
        if let (Some(core), Some(kmcl)) = (stats, kmcl)
            && core.packets_delivered != kmcl.stats.delivered
        {
            self.finding(format!(
                "host-{host}: KMCL delivered {} packets, core saw {}",
                kmcl.stats.delivered, core.packets_delivered
            ));
        }
    }
}
