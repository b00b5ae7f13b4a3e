//! Live migration of one VM from its host to the next: pause mid-traffic, save the channel
//! (session blob, KMCL's stream with SavePacket's two calls), save each port's runtime state
//! (maybe pended and finished through `FwpsvSwitchNotifyComplete0`), carry the bytes, restore
//! the ports under the destination's new ids and the channel (RestoreFromBuffer,
//! RestorePacket), start it there, and let the source go.

use ferry_platform_mock::vswitch::SaveProgress;
use ferry_platform_wdk::ffi::kmcl::VMBCHANNEL;

use super::{Migration, World};
use crate::ferry_hosts::HOSTS;

impl World {
    /// Live migration of `vm` to the next host. `pend`: whether the port saves answer
    /// `STATUS_PENDING` (random if `None`). Returns whether it completed.
    pub fn migrate(&mut self, vm: usize, pend: Option<bool>) -> bool {
        let src = self.vms[vm].host;
        let dst = (src + 1) % HOSTS;
        let id = self.vms[vm].id;
        let (channel, old_ports) = (self.vms[vm].channel, self.vms[vm].ports.clone());
        let mut report = Migration {
            from: src,
            to: dst,
            old_ports: old_ports.clone(),
            ..Migration::default()
        };

        // Source: pause mid-traffic, save the channel (SavePacket two-call through C).
        self.busy(vm);
        self.drivers[src].pause(channel);
        self.check_paused(vm);
        self.deliver(vm);
        report.in_flight_at_save = self.drivers[src].outstanding(channel).map_or(0, |o| o.1);
        let rng = &mut self.rng;
        let mut size = || rng.range(1, 400) as usize;
        let saved = self.drivers[src].save_channel(channel, &mut size);
        let (session, chunks) = match saved {
            Ok(saved) => saved,
            Err(reason) => {
                self.finding(format!("vm {id}: channel save failed: {reason}"));
                self.drivers[src].start(channel);
                return false;
            }
        };
        report.chunks = chunks.len();

        // Source: the switch saves each port's runtime state (maybe pended, then finished
        // through FwpsvSwitchNotifyComplete0).
        let mut blobs = Vec::new();
        let mut snapshots = Vec::new();
        for port in &old_ports {
            let pended = pend.unwrap_or_else(|| self.rng.chance(50));
            let driver = &self.drivers[src];
            let vswitch = &self.hosts[src].services.vswitch;
            driver.set_pend_saves(pended);
            let snapshot = driver.snapshot(*port);
            let oid = vswitch.request_save(
                *port,
                self.hosts[src].services.clock.now(),
                driver.callout(),
            );
            driver.set_pend_saves(false);
            let snapshot = if pended {
                report.pended_port_saves += 1;
                self.time.advance(self.rng.range(100, 20_000));
                let driver = &self.drivers[src];
                let snapshot = driver.snapshot(*port);
                if !driver.finish_save(*port) {
                    self.finding(format!(
                        "vm {id}: port {}: no pended save to finish",
                        port.0
                    ));
                }
                snapshot
            } else {
                snapshot
            };
            let now = self.hosts[src].services.clock.now();
            match self.hosts[src].services.vswitch.save_progress(oid, now) {
                Some(SaveProgress::Saved(blob)) => blobs.push(blob),
                other => {
                    self.finding(format!("vm {id}: port {} save ended {other:?}", port.0));
                    self.drivers[src].start(channel);
                    return false;
                }
            }
            snapshots.push(snapshot);
        }

        // Transfer: bytes only.
        let bytes = chunks.iter().map(Vec::len).sum::<usize>()
            + session.len()
            + blobs.iter().map(Vec::len).sum::<usize>();
        self.time.advance(bytes as u64 / 2 + 1_000);

        // Destination: ports (new ids) restored first, then the channel.
        let (nics, configs) = (self.vms[vm].nics.clone(), self.vms[vm].configs.clone());
        let new_ports = self.create_ports(dst, &nics, &configs);
        for ((port, blob), (old, at_save)) in new_ports
            .iter()
            .zip(&blobs)
            .zip(old_ports.iter().zip(&snapshots))
        {
            let status =
                self.hosts[dst]
                    .services
                    .vswitch
                    .restore(*port, blob, self.drivers[dst].callout());
            if !status.is_success() {
                self.finding(format!(
                    "vm {id}: restore of port {} -> {}: {status}",
                    old.0, port.0
                ));
                continue;
            }
            let now = self.drivers[dst].snapshot(*port);
            match (at_save, now) {
                (Some(a), Some(b)) if *a == b => {}
                (Some(a), Some(b)) => self.finding(format!(
                    "vm {id}: port {} -> {}: state differs: {}",
                    old.0,
                    port.0,
                    a.differences(&b).join("; ")
                )),
                _ => self.finding(format!("vm {id}: port {} -> {}: no state", old.0, port.0)),
            }
        }
        let vmbus = self.hosts[dst].add_vm(id);
        let new_channel = match self.drivers[dst].offer(vmbus, nics[0], false) {
            Ok(channel) => channel,
            Err(status) => {
                self.finding(format!("vm {id}: destination offer failed: {status}"));
                return false;
            }
        };
        if let Err(reason) = self.drivers[dst].restore_channel(new_channel, &session, &chunks) {
            self.finding(format!(
                "vm {id}: restore of intact bytes refused: {reason}"
            ));
            return false;
        }
        report.restored = self.drivers[dst]
            .stats(new_channel)
            .map_or(0, |s| s.transactions_restored);
        let Some(mock) = self.mock_of(dst, new_channel) else {
            self.finding(format!("vm {id}: restored channel has no KMCL channel"));
            return false;
        };
        {
            let v = &mut self.vms[vm];
            v.host = dst;
            v.channel = new_channel;
            v.mock = mock;
            v.ports = new_ports.clone();
        }
        self.drivers[dst].start(new_channel);

        // Source lets go: Disable (Closed, cancellations through the completion routine),
        // Cleanup, and the ports' PORT_DELETE.
        self.close_channel(src, channel);
        for port in &old_ports {
            self.hosts[src]
                .services
                .vswitch
                .delete_port(*port, self.drivers[src].callout());
        }
        self.deliver(vm);
        report.new_ports = new_ports;
        self.migrations.push(report);
        true
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
