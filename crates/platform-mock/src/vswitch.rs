//! The simulated Hyper-V extensible switch as the WFP vSwitch extension presents it to a
//! callout (`wfp-vswitch.md` §1, §4): port create/delete events, frames to classify, and the
//! runtime-state save (`OID_SWITCH_NIC_SAVE`, which the callout may pend and finish through
//! `FwpsvSwitchNotifyComplete0`) and restore (`OID_SWITCH_NIC_RESTORE`, on the destination,
//! under the destination's port id).
//!
//! Like [`crate::kmcl`], the engine is a set of plain functions on a host-wide [`VSwitch`] that
//! call the callout through [`VSwitchCallout`] with no borrow held.
//!
//! Buffer ownership of a saved blob is undocumented (`wfp-vswitch.md` §4.3). The simulated
//! switch takes the blob the callout returns (by move, no copy); for a pended save the callout
//! hands the blob over with [`VSwitch::write_runtime_state`] before completing. The switch
//! keeps a finished request only until its result is collected ([`VSwitch::save_progress`]
//! moves the blob out and forgets the request), a newer save of the same port replaces it, or,
//! for an abandoned request, its late completion arrives: what it holds across repeated
//! migrations stays bounded ([`VSwitch::retained`]).

use std::cell::RefCell;
use std::collections::BTreeMap;

use ferry_core::platform::Ticks;
use ferry_core::port::{FrameInfo, PortIdentity, SwitchPortId, Verdict};
use ferry_core::status::NtStatus;

use crate::clock::EventLog;

/// The completion context of a pended runtime-state save. Neither `Copy` nor `Clone`.
#[derive(Debug, PartialEq, Eq)]
pub struct PortSaveCompletion {
    oid: u64,
}

impl PortSaveCompletion {
    /// The save request this completes (for [`VSwitch::write_runtime_state`]).
    #[must_use]
    pub const fn oid(&self) -> u64 {
        self.oid
    }
}

/// What a callout's runtime-state save callback returned.
#[derive(Debug, PartialEq, Eq)]
pub enum SaveReturn {
    /// `STATUS_SUCCESS` with the blob.
    Saved(Vec<u8>),
    /// `STATUS_PENDING`: the callout keeps the completion and finishes later.
    Pending,
    /// A failure status.
    Failed(NtStatus),
}

/// The callout's side of the vSwitch event dispatch table.
pub trait VSwitchCallout {
    /// `FWPS_VSWITCH_EVENT_PORT_CREATE` (the NIC connected to it carries `identity`).
    fn port_create(&self, port: SwitchPortId, identity: PortIdentity) -> NtStatus;
    /// `FWPS_VSWITCH_EVENT_PORT_DELETE`.
    fn port_delete(&self, port: SwitchPortId);
    /// The classify path for one frame.
    fn classify(&self, port: SwitchPortId, frame: &FrameInfo) -> Verdict;
    /// `FWPS_VSWITCH_EVENT_RUNTIME_STATE_SAVE`.
    fn runtime_state_save(&self, port: SwitchPortId, completion: PortSaveCompletion) -> SaveReturn;
    /// `FWPS_VSWITCH_EVENT_RUNTIME_STATE_RESTORE` (the blob is the switch's, valid for the
    /// call).
    fn runtime_state_restore(&self, port: SwitchPortId, blob: &[u8]) -> NtStatus;
}

/// Where a save request stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SaveProgress {
    /// Pended and not finished.
    Pending {
        /// Ticks since the callout pended it.
        outstanding: u64,
    },
    /// Finished with a blob, handed over (the switch no longer holds it).
    Saved(Vec<u8>),
    /// Finished with a failure.
    Failed(NtStatus),
}

/// What a switch holds of save requests (see [`VSwitch::retained`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SaveRetention {
    /// Requests held: pended ones, and finished ones not collected yet.
    pub requests: usize,
    /// Bytes of the blobs those requests hold.
    pub blob_bytes: usize,
}

struct SaveRequest {
    port: SwitchPortId,
    started: Ticks,
    blob: Option<Vec<u8>>,
    status: Option<NtStatus>,
    abandoned: bool,
}

/// Counters of one switch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VSwitchStats {
    /// Frames classified.
    pub frames: u64,
    /// Runtime-state saves requested.
    pub saves: u64,
    /// Of those, pended by the callout.
    pub pended: u64,
    /// Pended saves the switch gave up on (never completed in time).
    pub abandoned: u64,
    /// Completions that arrived after the switch gave up.
    pub late_completions: u64,
    /// Restores requested.
    pub restores: u64,
    /// Finished results nobody collected, dropped when the port was saved again.
    pub uncollected_replaced: u64,
}

#[derive(Default)]
struct VSwitchState {
    ports: BTreeMap<SwitchPortId, PortIdentity>,
    next_port: u32,
    next_oid: u64,
    saves: BTreeMap<u64, SaveRequest>,
    stats: VSwitchStats,
    violations: Vec<String>,
}

/// One host's extensible switch with the WFP extension bound.
pub struct VSwitch {
    state: RefCell<VSwitchState>,
    log: RefCell<Option<(EventLog, String)>>,
}

impl VSwitch {
    /// A switch whose port ids start after `first_port` (hosts number their ports differently,
    /// which is why a restored port gets a new id).
    #[must_use]
    pub fn new(first_port: u32) -> Self {
        Self {
            state: RefCell::new(VSwitchState {
                next_port: first_port,
                ..VSwitchState::default()
            }),
            log: RefCell::new(None),
        }
    }

    /// Findings of contract breaches (a completion for an unknown save, a second completion);
    /// the list is emptied.
    pub fn take_violations(&self) -> Vec<String> {
        std::mem::take(&mut self.state.borrow_mut().violations)
    }

    fn note(&self, text: impl FnOnce() -> String) {
        if let Some((log, host)) = self.log.borrow().as_ref() {
            log.record(|| format!("{host}: vswitch: {}", text()));
        }
    }

    /// Records the switch's events in `log`, prefixed with `host`.
    pub fn set_event_log(&self, log: EventLog, host: &str) {
        *self.log.borrow_mut() = Some((log, host.to_string()));
    }

    /// Counters.
    #[must_use]
    pub fn stats(&self) -> VSwitchStats {
        self.state.borrow().stats
    }

    /// Live ports and the NICs connected to them.
    #[must_use]
    pub fn ports(&self) -> Vec<(SwitchPortId, PortIdentity)> {
        self.state
            .borrow()
            .ports
            .iter()
            .map(|(p, i)| (*p, *i))
            .collect()
    }

    /// Creates a port for the NIC `identity` and tells the callout.
    ///
    /// # Errors
    ///
    /// The callout's failure status (the port is removed again).
    pub fn create_port(
        &self,
        identity: PortIdentity,
        callout: &dyn VSwitchCallout,
    ) -> Result<SwitchPortId, NtStatus> {
        let port = {
            let mut state = self.state.borrow_mut();
            state.next_port += 1;
            let port = SwitchPortId(state.next_port);
            state.ports.insert(port, identity);
            port
        };
        let status = callout.port_create(port, identity);
        self.note(|| format!("PORT_CREATE port {} -> {status}", port.0));
        if !status.is_success() {
            self.state.borrow_mut().ports.remove(&port);
            return Err(status);
        }
        Ok(port)
    }

    /// Deletes a port; `PORT_DELETE` is signalled after the port is gone (`wfp-vswitch.md`
    /// §4.1).
    pub fn delete_port(&self, port: SwitchPortId, callout: &dyn VSwitchCallout) {
        let existed = self.state.borrow_mut().ports.remove(&port).is_some();
        if existed {
            self.note(|| format!("PORT_DELETE port {}", port.0));
            callout.port_delete(port);
        }
    }

    /// Sends one frame through the classify path of `port`.
    pub fn classify(
        &self,
        port: SwitchPortId,
        frame: &FrameInfo,
        callout: &dyn VSwitchCallout,
    ) -> Option<Verdict> {
        {
            let mut state = self.state.borrow_mut();
            if !state.ports.contains_key(&port) {
                return None;
            }
            state.stats.frames += 1;
        }
        Some(callout.classify(port, frame))
    }

    /// `OID_SWITCH_NIC_SAVE` for `port`: asks the callout for its runtime state. Returns the
    /// request's id; poll it with [`VSwitch::save_progress`].
    pub fn request_save(
        &self,
        port: SwitchPortId,
        now: Ticks,
        callout: &dyn VSwitchCallout,
    ) -> u64 {
        let oid = {
            let mut state = self.state.borrow_mut();
            // A newer save of the port supersedes a finished result nobody collected (a
            // migration that was given up); a pended request stays until it completes.
            let before = state.saves.len();
            state
                .saves
                .retain(|_, request| request.port != port || request.status.is_none());
            let replaced = (before - state.saves.len()) as u64;
            state.stats.uncollected_replaced += replaced;
            state.next_oid += 1;
            state.stats.saves += 1;
            let oid = state.next_oid;
            state.saves.insert(
                oid,
                SaveRequest {
                    port,
                    started: now,
                    blob: None,
                    status: None,
                    abandoned: false,
                },
            );
            oid
        };
        let answer = callout.runtime_state_save(port, PortSaveCompletion { oid });
        self.note(|| {
            let what = match &answer {
                SaveReturn::Saved(blob) => format!("{} bytes", blob.len()),
                SaveReturn::Pending => "STATUS_PENDING".to_string(),
                SaveReturn::Failed(status) => status.to_string(),
            };
            format!(
                "RUNTIME_STATE_SAVE port {} (request {oid}) -> {what}",
                port.0
            )
        });
        let mut state = self.state.borrow_mut();
        let already = state.saves.get(&oid).and_then(|r| r.status);
        match answer {
            SaveReturn::Pending => state.stats.pended += 1,
            SaveReturn::Saved(blob) => {
                if already.is_some() {
                    state
                        .violations
                        .push(format!("save {oid}: completed and returned a result too"));
                }
                if let Some(request) = state.saves.get_mut(&oid) {
                    request.blob = Some(blob);
                    request.status = Some(NtStatus::SUCCESS);
                }
            }
            SaveReturn::Failed(status) => {
                if let Some(request) = state.saves.get_mut(&oid) {
                    request.status = Some(status);
                }
            }
        }
        oid
    }

    /// Where save request `oid` stands at `now`. A finished request's result is handed over
    /// once — the blob moved out, not copied — and the request forgotten: asked again, the
    /// switch answers `None`, as for an unknown request.
    #[must_use]
    pub fn save_progress(&self, oid: u64, now: Ticks) -> Option<SaveProgress> {
        let mut state = self.state.borrow_mut();
        let request = state.saves.get(&oid)?;
        let Some(status) = request.status else {
            return Some(SaveProgress::Pending {
                outstanding: now.saturating_since(request.started),
            });
        };
        let request = state.saves.remove(&oid)?;
        Some(match request.blob {
            Some(blob) if status.is_success() => SaveProgress::Saved(blob),
            None if status.is_success() => SaveProgress::Failed(NtStatus::DATA_ERROR),
            _ => SaveProgress::Failed(status),
        })
    }

    /// What the switch holds of save requests: bounded by the ports with a save in progress
    /// or finished and not collected, whatever number of migrations came before.
    #[must_use]
    pub fn retained(&self) -> SaveRetention {
        let state = self.state.borrow();
        SaveRetention {
            requests: state.saves.len(),
            blob_bytes: state
                .saves
                .values()
                .filter_map(|request| request.blob.as_ref())
                .map(Vec::len)
                .sum(),
        }
    }

    /// Gives up on a pended save (the save OID times out): a completion arriving later is
    /// counted, not applied.
    pub fn abandon_save(&self, oid: u64) {
        let mut state = self.state.borrow_mut();
        if let Some(request) = state.saves.get_mut(&oid)
            && request.status.is_none()
        {
            request.abandoned = true;
            state.stats.abandoned += 1;
        }
    }

    /// The callout's out-pointers for a pended save: the blob to hand back with the
    /// completion.
    pub fn write_runtime_state(&self, oid: u64, blob: Vec<u8>) {
        if let Some(request) = self.state.borrow_mut().saves.get_mut(&oid) {
            request.blob = Some(blob);
        }
    }

    /// `FwpsvSwitchNotifyComplete0`.
    pub fn notify_complete(&self, completion: PortSaveCompletion, status: NtStatus) {
        self.note(|| {
            format!(
                "FwpsvSwitchNotifyComplete0(request {}, {status})",
                completion.oid
            )
        });
        let mut state = self.state.borrow_mut();
        let oid = completion.oid;
        let Some(request) = state.saves.get_mut(&oid) else {
            // Requests are numbered from 1 and forgotten once finished and collected (or
            // replaced, or completed late): a number already issued is a second completion.
            let problem = if (1..=state.next_oid).contains(&oid) {
                format!("save {oid} completed twice (its result was already collected)")
            } else {
                format!("NotifyComplete for unknown save {oid}")
            };
            state.violations.push(problem);
            return;
        };
        let port = request.port.0;
        let problem = if status == NtStatus::PENDING {
            Some(format!(
                "save {oid} (port {port}) completed with STATUS_PENDING"
            ))
        } else if request.status.is_some() {
            Some(format!("save {oid} (port {port}) completed twice"))
        } else {
            request.status = Some(status);
            None
        };
        let late = problem.is_none() && request.abandoned;
        if let Some(problem) = problem {
            state.violations.push(problem);
        }
        if late {
            // Nobody waits for an abandoned request's result: forget it and its blob.
            state.saves.remove(&oid);
            state.stats.late_completions += 1;
        }
    }

    /// `OID_SWITCH_NIC_RESTORE` onto `port` (on the destination: the NIC's new port).
    pub fn restore(
        &self,
        port: SwitchPortId,
        blob: &[u8],
        callout: &dyn VSwitchCallout,
    ) -> NtStatus {
        {
            let mut state = self.state.borrow_mut();
            if !state.ports.contains_key(&port) {
                return NtStatus::NOT_FOUND;
            }
            state.stats.restores += 1;
        }
        let status = callout.runtime_state_restore(port, blob);
        self.note(|| {
            format!(
                "RUNTIME_STATE_RESTORE port {} ({} bytes) -> {status}",
                port.0,
                blob.len()
            )
        });
        status
    }

    /// Pended saves neither completed nor abandoned.
    #[must_use]
    pub fn pending_saves(&self) -> usize {
        self.state
            .borrow()
            .saves
            .values()
            .filter(|r| r.status.is_none() && !r.abandoned)
            .count()
    }
}
