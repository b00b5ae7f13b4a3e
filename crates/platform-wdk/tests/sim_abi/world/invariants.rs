//! The invariants of a scenario, checked after it drained ([`World::check`]) and after
//! unload ([`World::unload`]).

use std::collections::BTreeSet;

use ferry_core::port::SwitchPortId;
use ferry_platform_mock::kmcl::ToHost;

use super::World;
use crate::kernel::live_blocks;
use crate::sim_host::Phase;

impl World {
    /// Checks the invariants now (after [`Self::drain`]); findings are added.
    pub fn check(&mut self) {
        let mut out = Vec::new();
        for host in &self.hosts {
            out.extend(host.take_violations());
            for line in host.abi.log.borrow_mut().drain(..) {
                if line.starts_with("Warning") || line.starts_with("Error") {
                    out.push(format!("host-{}: driver logged {line}", host.index));
                }
            }
            let kmcl = &host.services.kmcl;
            for handle in kmcl.channel_handles() {
                let Some(info) = kmcl.info(handle) else {
                    continue;
                };
                let s = info.stats;
                if s.delivered != s.completed + s.failed + info.outstanding_incoming as u64
                    || info.outstanding_incoming != 0
                {
                    out.push(format!(
                        "host-{} channel {}: delivered {}, completed {}, failed {}, outstanding {}",
                        host.index,
                        handle.0,
                        s.delivered,
                        s.completed,
                        s.failed,
                        info.outstanding_incoming
                    ));
                }
            }
            let c = host.abi.counts.get();
            if c.process_packet != c.packet_complete + c.packet_fail {
                out.push(format!(
                    "host-{}: ProcessPacket x{}, PacketComplete x{}, PacketFail x{}",
                    host.index, c.process_packet, c.packet_complete, c.packet_fail
                ));
            }
        }
        for v in &self.vms {
            let driver = &self.drivers[v.host];
            let kmcl = &self.hosts[v.host].services.kmcl;
            out.extend(v.guest.ledger.violations.iter().cloned());
            if v.guest.outstanding() != 0 {
                out.push(format!(
                    "vm {}: {} requests never answered",
                    v.id,
                    v.guest.outstanding()
                ));
            }
            if let (Some(core), Some(info)) = (driver.stats(v.channel), kmcl.info(v.mock))
                && core.packets_delivered != info.stats.delivered
            {
                out.push(format!(
                    "vm {}: KMCL delivered {}, core saw {}",
                    v.id, info.stats.delivered, core.packets_delivered
                ));
            }
            // Host->guest: every ack the guest sent reached exactly one completion routine,
            // on whichever host the VM was on.
            let completions: u64 = self
                .hosts
                .iter()
                .flat_map(|h| {
                    let kmcl = &h.services.kmcl;
                    kmcl.channel_handles()
                        .into_iter()
                        .filter_map(|c| kmcl.info(c))
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
                out.push(format!(
                    "vm {}: guest acked {acks} transactions, hosts saw {completions} completions",
                    v.id
                ));
            }
            let in_use: BTreeSet<u64> = kmcl.outgoing_txids(v.mock).into_iter().collect();
            if &in_use != v.guest.withheld() {
                out.push(format!(
                    "vm {}: transactions still in flight: {in_use:?}",
                    v.id
                ));
            }
            let core_out = driver.outstanding(v.channel).map_or(0, |o| o.1);
            if core_out != in_use.len() {
                out.push(format!(
                    "vm {}: core holds {core_out} transactions, KMCL {}",
                    v.id,
                    in_use.len()
                ));
            }
            for (nic, identity) in v.nics.iter().enumerate() {
                match driver.counters_by_identity(identity) {
                    Some(counters)
                        if counters.ingress == v.expected[nic].ingress
                            && counters.egress == v.expected[nic].egress => {}
                    other => out.push(format!(
                        "vm {} nic {nic}: port counters {other:?}, classified {:?}",
                        v.id, v.expected[nic]
                    )),
                }
            }
        }
        self.findings.extend(out);
    }

    /// Unloads ferry from every host (VMs still running: their channels are revoked) and
    /// checks that nothing is left: blocks, packet objects, channels, pending saves, blobs.
    pub fn unload(&mut self) {
        for (index, driver) in self.drivers.iter().enumerate() {
            driver.unload();
            let host = &self.hosts[index];
            let mut out = host.take_violations();
            let ports: Vec<SwitchPortId> = host
                .services
                .vswitch
                .ports()
                .into_iter()
                .map(|(p, _)| p)
                .collect();
            if driver.pending_saves() != 0 || driver.published_states() != 0 {
                out.push(format!(
                    "host-{index}: after unload {} saves pending, {} blobs held",
                    driver.pending_saves(),
                    driver.published_states()
                ));
            }
            // The switch's ports outlive the driver; the image's port table would not.
            driver.forget_ports(&ports);
            if driver.ports_len() != 0 {
                out.push(format!(
                    "host-{index}: {} ports left in the table",
                    driver.ports_len()
                ));
            }
            let blocks = live_blocks(index) - self.blocks_before[index];
            if blocks != 0 {
                out.push(format!(
                    "host-{index}: {blocks} kernel blocks not freed at unload"
                ));
            }
            if !host.abi.packets.borrow().is_empty() {
                out.push(format!(
                    "host-{index}: {} packet objects not freed",
                    host.abi.packets.borrow().len()
                ));
            }
            let live = host
                .abi
                .channels
                .borrow()
                .values()
                .filter(|c| c.phase != Phase::CleanedUp)
                .count();
            if live != 0 || driver.channels() != 0 {
                out.push(format!("host-{index}: {live} channels not cleaned up"));
            }
            if host.abi.subscription.borrow().is_some() || !host.abi.saves.borrow().is_empty() {
                out.push(format!("host-{index}: subscription or pended saves left"));
            }
            for line in host.abi.log.borrow_mut().drain(..) {
                if line.starts_with("Warning") || line.starts_with("Error") {
                    out.push(format!("host-{index}: driver logged {line} at unload"));
                }
            }
            self.findings.extend(out);
        }
        for v in &mut self.vms {
            v.guest.set_open(false);
        }
    }
}
