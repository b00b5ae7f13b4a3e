//! vSwitch runtime-state saves answered with `STATUS_PENDING` and finished later.
//!
//! A save callback may return `STATUS_PENDING` and finish through
//! `FwpsvSwitchNotifyComplete0(completionContext, status, ..)` (`wfp-vswitch.md` §1.5, §4.1).
//! Until then the completion context ([`Platform::PortSaveCompletion`]) must be kept, exactly
//! once, somewhere it cannot be lost: this bounded list. Every entry leaves it by one of
//!
//! - [`PendingSaves::finish`]: the port's blob is produced and the completion handed back with
//!   the status to report;
//! - [`PendingSaves::delete_port`]: the port went away; the completion comes back to be
//!   completed with [`SAVE_CANCELLED_STATUS`];
//! - [`PendingSaves::take_overdue`]: a save outstanding longer than the caller's timeout (one
//!   that would otherwise never finish) comes back to be failed.
//!
//! The list never calls the platform: it hands completions back and the caller passes them to
//! [`Platform::complete_port_save`] after every lock is released.
//!
//! [`Platform::PortSaveCompletion`]: crate::platform::Platform::PortSaveCompletion
//! [`Platform::complete_port_save`]: crate::platform::Platform::complete_port_save

use super::PortError;
use super::table::PortTable;
use super::types::SwitchPortId;
use crate::lock::{Mutex, RawLock};
use crate::platform::Ticks;
use crate::status::NtStatus;

/// The status a pending save is completed with when its port is deleted first.
pub const SAVE_CANCELLED_STATUS: NtStatus = NtStatus::CANCELLED;

/// One save awaiting completion.
#[derive(Debug, PartialEq, Eq)]
pub struct PendingSave<C> {
    /// The port whose state is being saved.
    pub port: SwitchPortId,
    /// The platform's completion context, to be completed exactly once.
    pub completion: C,
    /// When the save callback returned `STATUS_PENDING`.
    pub started: Ticks,
}

/// Why [`PendingSaves::begin`] refused a save.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PendingSaveError {
    /// Every slot of the list holds a pending save; save synchronously or fail the callback.
    Full,
    /// A save for this port is pending already (the switch never interleaves saves of one NIC,
    /// so this is a caller bug or a hostile sequence).
    AlreadyPending(SwitchPortId),
}

/// A refused [`PendingSaves::begin`]: the completion comes back so it is not lost.
#[derive(Debug, PartialEq, Eq)]
pub struct Refused<C> {
    /// The completion context the caller passed in.
    pub completion: C,
    /// Why it was refused.
    pub error: PendingSaveError,
}

/// A finished pending save: complete `completion` with `status`.
#[derive(Debug, PartialEq, Eq)]
#[must_use = "the completion must be passed to Platform::complete_port_save"]
pub struct FinishedSave<C> {
    /// The completion context to hand to `Platform::complete_port_save`.
    pub completion: C,
    /// `STATUS_SUCCESS` if the blob was written, otherwise the failure's status.
    pub status: NtStatus,
    /// The blob's length in the output buffer, or why it could not be produced.
    pub result: Result<usize, PortError>,
}

/// What [`PendingSaves::delete_port`] did.
#[derive(Debug, PartialEq, Eq)]
#[must_use = "a cancelled save must be passed to Platform::complete_port_save"]
pub struct PortDeletion<C> {
    /// Whether the port table had the port.
    pub deleted: Result<(), PortError>,
    /// The completion of the save that was pending for the port, to be completed with
    /// [`SAVE_CANCELLED_STATUS`].
    pub cancelled_save: Option<C>,
}

/// A save outstanding for longer than a timeout.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct OverdueSave {
    /// The port whose save has not finished.
    pub port: SwitchPortId,
    /// Ticks since it started.
    pub outstanding: u64,
}

/// Up to `N` pending saves, each holding a platform completion of type `C`.
pub struct PendingSaves<L: RawLock, C, const N: usize> {
    entries: Mutex<L, [Option<PendingSave<C>>; N]>,
}

impl<L: RawLock, C, const N: usize> PendingSaves<L, C, N> {
    /// An empty list.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            entries: Mutex::new([const { None }; N]),
        }
    }

    /// Records that the save of `port` returned `STATUS_PENDING` at `now`.
    ///
    /// # Errors
    ///
    /// The completion comes back inside [`Refused`] when the list is full or `port` has a save
    /// pending already.
    pub fn begin(&self, port: SwitchPortId, completion: C, now: Ticks) -> Result<(), Refused<C>> {
        let mut entries = self.entries.lock();
        if entries.iter().flatten().any(|save| save.port == port) {
            return Err(Refused {
                completion,
                error: PendingSaveError::AlreadyPending(port),
            });
        }
        match entries.iter_mut().find(|entry| entry.is_none()) {
            Some(free) => {
                *free = Some(PendingSave {
                    port,
                    completion,
                    started: now,
                });
                Ok(())
            }
            None => Err(Refused {
                completion,
                error: PendingSaveError::Full,
            }),
        }
    }

    /// Whether a save of `port` is pending.
    #[must_use]
    pub fn is_pending(&self, port: SwitchPortId) -> bool {
        self.entries
            .lock()
            .iter()
            .flatten()
            .any(|save| save.port == port)
    }

    /// Number of pending saves.
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.lock().iter().flatten().count()
    }

    /// Whether no save is pending.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Removes the pending save of `port`, if any, and returns it.
    pub fn take(&self, port: SwitchPortId) -> Option<PendingSave<C>> {
        self.entries
            .lock()
            .iter_mut()
            .find(|entry| entry.as_ref().is_some_and(|save| save.port == port))
            .and_then(Option::take)
    }

    /// Finishes the pending save of `port`: writes its blob (as of `now`) into `out` and hands
    /// the completion back with the status to report. `None` if no save of `port` is pending.
    ///
    /// The entry leaves the list whether or not the blob could be written; on failure the
    /// status says why (for example `STATUS_BUFFER_TOO_SMALL`; size the buffer with
    /// [`PortTable::saved_len`] first).
    pub fn finish<const PORTS: usize, const FLOWS: usize>(
        &self,
        table: &PortTable<L, PORTS, FLOWS>,
        port: SwitchPortId,
        now: Ticks,
        out: &mut [u8],
    ) -> Option<FinishedSave<C>> {
        let save = self.take(port)?;
        let result = table.save_port(port, now, out);
        let status = match &result {
            Ok(_) => NtStatus::SUCCESS,
            Err(error) => error.status(),
        };
        Some(FinishedSave {
            completion: save.completion,
            status,
            result,
        })
    }

    /// Deletes `port` from `table` and takes its pending save, if any, so that the caller
    /// completes it with [`SAVE_CANCELLED_STATUS`] instead of losing it. This, not
    /// [`PortTable::delete_port`] alone, is what a port-delete event should call.
    pub fn delete_port<const PORTS: usize, const FLOWS: usize>(
        &self,
        table: &PortTable<L, PORTS, FLOWS>,
        port: SwitchPortId,
    ) -> PortDeletion<C> {
        let deleted = table.delete_port(port);
        let cancelled_save = self.take(port).map(|save| save.completion);
        PortDeletion {
            deleted,
            cancelled_save,
        }
    }

    /// The save outstanding longest, if it has been outstanding for more than `timeout` ticks
    /// at `now`. A report only: the save stays pending.
    #[must_use]
    pub fn oldest_overdue(&self, now: Ticks, timeout: u64) -> Option<OverdueSave> {
        self.entries
            .lock()
            .iter()
            .flatten()
            .map(|save| OverdueSave {
                port: save.port,
                outstanding: now.saturating_since(save.started),
            })
            .filter(|overdue| overdue.outstanding > timeout)
            .max_by_key(|overdue| overdue.outstanding)
    }

    /// Removes and returns the save outstanding longest if it has been outstanding for more
    /// than `timeout` ticks at `now`, so the caller can fail it (call repeatedly to drain).
    pub fn take_overdue(&self, now: Ticks, timeout: u64) -> Option<PendingSave<C>> {
        let mut entries = self.entries.lock();
        let oldest = entries
            .iter_mut()
            .filter(|entry| {
                entry
                    .as_ref()
                    .is_some_and(|save| now.saturating_since(save.started) > timeout)
            })
            .max_by_key(|entry| {
                entry
                    .as_ref()
                    .map_or(0, |save| now.saturating_since(save.started))
            })?;
        oldest.take()
    }
}

impl<L: RawLock, C, const N: usize> Default for PendingSaves<L, C, N> {
    fn default() -> Self {
        Self::new()
    }
}
