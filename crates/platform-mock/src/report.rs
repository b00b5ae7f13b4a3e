//! The report of one scenario: per phase, per migration, totals and invariants; rendered as
//! text or serialized as JSON (`--json`).

use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;

/// The phases a report accounts time and packets to.
pub const PHASES: [&str; 6] = ["traffic", "pause", "save", "transfer", "restore", "resume"];

/// One phase, summed over the run.
#[derive(Clone, Debug, Default, Serialize)]
pub struct PhaseReport {
    /// The phase's name.
    pub name: String,
    /// Times the phase ran.
    pub runs: u64,
    /// Incoming packets delivered (traffic), retired at Suspend (pause), bytes moved
    /// (transfer), transactions restored (restore), notifications flushed (resume).
    pub packets: u64,
    /// Simulated time spent, in 100 ns ticks.
    pub simulated_ticks: u64,
    /// Real time spent, in microseconds (absent with `--deterministic`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub real_micros: Option<u64>,
    #[serde(skip)]
    pub(crate) real: Duration,
}

/// Saved bytes per blob kind.
#[derive(Clone, Debug, Default, Serialize)]
pub struct SavedBytes {
    /// KMCL's channel-save stream (LibBufs and SaveBufs included).
    pub kmcl_stream: u64,
    /// Kind 1: outgoing transactions (the SaveBufs inside the stream).
    pub kind1_transactions: u64,
    /// Kind 2: port runtime state.
    pub kind2_ports: u64,
    /// Kind 3: the channel session.
    pub kind3_session: u64,
}

/// One live migration or VM save/restore.
#[derive(Clone, Debug, Default, Serialize)]
pub struct MigrationReport {
    /// "live migration" or "save/restore".
    pub kind: String,
    /// The VM.
    pub vm: u32,
    /// Source host.
    pub from_host: String,
    /// Destination host.
    pub to_host: String,
    /// "ok", or why it was aborted (the VM then resumed on the source).
    pub outcome: String,
    /// Host→guest transactions in flight at save.
    pub in_flight_at_save: u64,
    /// Of those, with VSP state saved by SavePacket's second call.
    pub with_saved_state: u64,
    /// Incoming packets retired at Suspend.
    pub retired_at_suspend: u64,
    /// SaveContinue calls answered `STATUS_BUFFER_TOO_SMALL`.
    pub short_buffer_retries: u64,
    /// Chunks the stream crossed in.
    pub chunks: u64,
    /// Saved bytes per kind.
    pub saved: SavedBytes,
    /// Port ids, source → destination.
    pub ports: Vec<(u32, u32)>,
    /// Transactions restored on the destination.
    pub restored: u64,
    /// Of those, completed by the guest on the destination (before the VM moved on or the run
    /// ended).
    pub completed_after_restore: u64,
    /// Fault injected into this migration, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fault: Option<String>,
}

/// One invariant's verdict.
#[derive(Clone, Debug, Default, Serialize)]
pub struct InvariantReport {
    /// What is checked.
    pub name: String,
    /// Individual checks made.
    pub checks: u64,
    /// Breaches found.
    pub violations: Vec<String>,
}

/// Totals over the run.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Totals {
    /// Hosts that existed.
    pub hosts: u64,
    /// Guest requests sent.
    pub requests: u64,
    /// Responses the guests received.
    pub responses: u64,
    /// Busy / cancelled refusals.
    pub refused: u64,
    /// Malformed or oversized requests refused.
    pub malformed_refused: u64,
    /// Notifications delivered to guests.
    pub notifications: u64,
    /// Acks guests sent.
    pub acks: u64,
    /// Deferred packets (answered by the worker / found retired).
    pub deferred: u64,
    /// Deferred answers that found their packet retired at Suspend.
    pub deferred_stale: u64,
    /// Frames classified.
    pub frames: u64,
    /// Of those, dropped by a rate limit.
    pub frames_dropped: u64,
    /// Quota stalls.
    pub quota_stalls: u64,
    /// Guest crashes.
    pub crashes: u64,
    /// Pended port saves.
    pub pended_port_saves: u64,
    /// Faults injected, by name.
    pub faults_injected: std::collections::BTreeMap<String, u64>,
}

/// The whole report.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    /// The seed.
    pub seed: u64,
    /// The scenario, as the command line that replays it.
    pub replay: String,
    /// Per phase.
    pub phases: Vec<PhaseReport>,
    /// Per migration.
    pub migrations: Vec<MigrationReport>,
    /// Totals.
    pub totals: Totals,
    /// Invariants.
    pub invariants: Vec<InvariantReport>,
    /// Breaches in all.
    pub violations: u64,
}

fn ms(ticks: u64) -> String {
    format!("{}.{:03} ms", ticks / 10_000, (ticks % 10_000) / 10)
}

impl Report {
    /// Whether every invariant held.
    #[must_use]
    pub fn passed(&self) -> bool {
        self.violations == 0
    }

    /// The readable report. Real durations appear only if they were recorded.
    #[must_use]
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "ferry-sim: seed {}", self.seed);
        let _ = writeln!(out, "replay:    {}", self.replay);
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "{:<10} {:>5} {:>9} {:>14} {:>12}",
            "phase", "runs", "packets", "simulated", "real"
        );
        for phase in &self.phases {
            let real = phase.real_micros.map_or_else(
                || "-".to_string(),
                |us| format!("{}.{:03} ms", us / 1000, us % 1000),
            );
            let _ = writeln!(
                out,
                "{:<10} {:>5} {:>9} {:>14} {:>12}",
                phase.name,
                phase.runs,
                phase.packets,
                ms(phase.simulated_ticks),
                real
            );
        }
        let _ = writeln!(
            out,
            "  (packets: delivered in traffic, retired at suspend in pause, bytes in transfer,"
        );
        let _ = writeln!(
            out,
            "   transactions restored in restore, notifications flushed in resume)"
        );
        let _ = writeln!(out);
        let _ = writeln!(out, "migrations");
        if self.migrations.is_empty() {
            let _ = writeln!(out, "  none");
        }
        for (i, m) in self.migrations.iter().enumerate() {
            let _ = writeln!(
                out,
                "  #{} {} of vm {}: {} -> {}: {}",
                i + 1,
                m.kind,
                m.vm,
                m.from_host,
                m.to_host,
                m.outcome
            );
            if let Some(fault) = &m.fault {
                let _ = writeln!(out, "     fault injected: {fault}");
            }
            let _ = writeln!(
                out,
                "     in flight at save: {} transactions ({} with saved state); incoming retired at suspend: {}",
                m.in_flight_at_save, m.with_saved_state, m.retired_at_suspend
            );
            let _ = writeln!(
                out,
                "     saved bytes: kmcl stream {} in {} chunks ({} short-buffer retries); kind 1 {}; kind 2 {}; kind 3 {}",
                m.saved.kmcl_stream,
                m.chunks,
                m.short_buffer_retries,
                m.saved.kind1_transactions,
                m.saved.kind2_ports,
                m.saved.kind3_session
            );
            if !m.ports.is_empty() {
                let ports: Vec<String> =
                    m.ports.iter().map(|(a, b)| format!("{a} -> {b}")).collect();
                let _ = writeln!(out, "     ports moved: {}", ports.join(", "));
            }
            let _ = writeln!(
                out,
                "     restored transactions: {}, completed after restore: {}",
                m.restored, m.completed_after_restore
            );
        }
        let t = &self.totals;
        let _ = writeln!(out);
        let _ = writeln!(out, "totals");
        let _ = writeln!(
            out,
            "  hosts {}, requests {}, responses {} ({} busy/cancelled, {} malformed refused)",
            t.hosts, t.requests, t.responses, t.refused, t.malformed_refused
        );
        let _ = writeln!(
            out,
            "  notifications {}, acks {}, deferred {} ({} found retired), quota stalls {}",
            t.notifications, t.acks, t.deferred, t.deferred_stale, t.quota_stalls
        );
        let _ = writeln!(
            out,
            "  frames {} ({} dropped by rate limits), pended port saves {}, guest crashes {}",
            t.frames, t.frames_dropped, t.pended_port_saves, t.crashes
        );
        if !t.faults_injected.is_empty() {
            let faults: Vec<String> = t
                .faults_injected
                .iter()
                .map(|(k, v)| format!("{k} x{v}"))
                .collect();
            let _ = writeln!(out, "  faults injected: {}", faults.join(", "));
        }
        let _ = writeln!(out);
        let _ = writeln!(out, "invariants");
        for inv in &self.invariants {
            let verdict = if inv.violations.is_empty() {
                "ok  "
            } else {
                "FAIL"
            };
            let _ = writeln!(out, "  [{verdict}] {} ({} checks)", inv.name, inv.checks);
            for v in inv.violations.iter().take(10) {
                let _ = writeln!(out, "         {v}");
            }
            if inv.violations.len() > 10 {
                let _ = writeln!(out, "         ... and {} more", inv.violations.len() - 10);
            }
        }
        let _ = writeln!(out);
        if self.passed() {
            let _ = writeln!(
                out,
                "verdict: all {} invariants hold",
                self.invariants.len()
            );
        } else {
            let _ = writeln!(out, "verdict: {} violations", self.violations);
        }
        out
    }
}
