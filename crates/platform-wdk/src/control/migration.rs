//! `IOCTL_FERRY_SAVE_CHANNEL` and `IOCTL_FERRY_RESTORE_CHANNEL`: a channel's state leaves the
//! source host in chunks the caller carries (on Hyper-V, the VM worker process, which drives
//! VM save and live migration) and enters a channel on the destination in the same chunks.
//!
//! **The saved state** is ferry's session blob (kind 3: `FerryService::save_session`) followed
//! by KMCL's stream (`VmbChannelSaveBegin` runs SavePacket for each packet in flight, then
//! `VmbChannelSaveContinue` hands the stream out piece by piece). The first chunk carries the
//! whole session blob and as much of KMCL's stream as fits.
//!
//! **Save, call by call** (the output starts with a [`SaveHeader`]):
//!
//! * The channel must be paused (`Opened` or `Suspended`: `IOCTL_FERRY_PAUSE_CHANNEL` first)
//!   and not being restored; otherwise `STATUS_INVALID_DEVICE_STATE`.
//! * An output shorter than the header: `STATUS_BUFFER_TOO_SMALL`, nothing written, nothing
//!   changed.
//! * An output too short for the next indivisible piece (the session blob with the header, or
//!   KMCL's `*BytesRequired`): only the header, with `required` set and `data_len` 0,
//!   `STATUS_BUFFER_OVERFLOW`; nothing consumed. Call again with `required` bytes.
//! * Otherwise a chunk: `STATUS_BUFFER_OVERFLOW` (Win32 `ERROR_MORE_DATA`; the I/O manager
//!   still copies the bytes) while more follow, `STATUS_SUCCESS` with `SAVE_FLAG_LAST` on the
//!   last (`VmbChannelSaveEnd` has then run). `Information` = header + `data_len`.
//! * A KMCL failure ends the save (`VmbChannelSaveEnd`) and returns KMCL's status; the next
//!   call starts over. `IOCTL_FERRY_RESUME_CHANNEL` and `IOCTL_FERRY_CLOSE_CHANNEL` end an
//!   unfinished save.
//!
//! **Restore, chunk by chunk**, on a channel offered with `OFFER_FLAG_START_PAUSED` (so no
//! traffic runs before the state is in): the first chunk must carry the session blob
//! (`RESTORE_FLAG_SESSION`, validated whole before anything changes — a refused blob leaves the
//! channel as it was, and the caller may try again); every chunk's KMCL bytes go to
//! `VmbChannelRestoreFromBuffer` (which runs RestorePacket per saved packet); the chunk with
//! `RESTORE_FLAG_LAST` records `Restored` in core (the channel is then open and paused, ready
//! for `IOCTL_FERRY_RESUME_CHANNEL`). A KMCL failure, or a last chunk after which KMCL still
//! asks for more (`STATUS_DATA_ERROR`: the stream was truncated), leaves the channel
//! unrestorable: close it. A second restore of a restored channel is refused.

use ferry_core::channel::state::Operation;
use ferry_core::status::NtStatus;

use super::registry::{Entry, Owner};
use super::request::{
    ChannelInput, RestoreInput, SAVE_FLAG_LAST, SAVE_FLAG_SESSION, SAVE_HEADER_LEN, SaveHeader,
};
use super::{Completion, ControlDevice, ControlError};
use crate::host::FerryHost;
use crate::host::channel::{SaveChunk, SaveChunkError};

/// Where a channel's save is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SaveProgress {
    /// No save running (none yet, or the last one finished or failed).
    Idle,
    /// `VmbChannelSaveBegin` ran and the session blob was handed out; KMCL's stream is being
    /// handed out; `VmbChannelSaveEnd` is owed.
    Streaming,
}

/// Where a channel's restore is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RestoreProgress {
    /// No chunk accepted yet.
    NotStarted,
    /// The session blob is in; KMCL's stream is arriving.
    Streaming {
        /// Whether any KMCL bytes were fed.
        fed: bool,
        /// Whether KMCL's last answer was `STATUS_MORE_PROCESSING_REQUIRED`.
        kmcl_wants_more: bool,
    },
    /// The last chunk was accepted and `Restored` recorded.
    Done,
    /// KMCL or core refused a chunk: the channel cannot be restored; close it.
    Failed,
}

impl RestoreProgress {
    /// Whether a restore began and did not finish (streaming, or failed).
    #[must_use]
    pub const fn in_progress(self) -> bool {
        matches!(self, Self::Streaming { .. } | Self::Failed)
    }
}

/// `n` as a header field (every length here is bounded by an output length the I/O manager
/// passed as a `ULONG`).
fn field(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Writes `header` and answers: `STATUS_SUCCESS` for the last chunk, `STATUS_BUFFER_OVERFLOW`
/// otherwise.
fn answer(header: &SaveHeader, output: &mut [u8]) -> Result<Completion, ControlError> {
    header.encode(output).ok_or(ControlError::OutputTooSmall {
        needed: SAVE_HEADER_LEN,
    })?;
    let data = usize::try_from(header.data_len).unwrap_or(usize::MAX);
    let status = if header.flags & SAVE_FLAG_LAST != 0 {
        NtStatus::SUCCESS
    } else {
        NtStatus::BUFFER_OVERFLOW
    };
    Ok(Completion {
        status,
        information: SAVE_HEADER_LEN.saturating_add(data),
    })
}

impl<H: FerryHost, const N: usize> ControlDevice<H, N> {
    /// `IOCTL_FERRY_SAVE_CHANNEL` (see the module docs).
    pub(super) fn save(
        &self,
        caller: Owner,
        input: ChannelInput,
        output: &mut [u8],
    ) -> Result<Completion, ControlError> {
        if output.len() < SAVE_HEADER_LEN {
            return Err(ControlError::OutputTooSmall {
                needed: SAVE_HEADER_LEN,
            });
        }
        let mut checked = self.check_out(caller, input)?;
        let entry = checked.entry()?;
        let (_, data) =
            output
                .split_at_mut_checked(SAVE_HEADER_LEN)
                .ok_or(ControlError::OutputTooSmall {
                    needed: SAVE_HEADER_LEN,
                })?;
        let session_len = match entry.save {
            SaveProgress::Streaming => 0,
            SaveProgress::Idle => match Self::begin_save(entry, data)? {
                Some(session_len) => session_len,
                None => {
                    let needed = SAVE_HEADER_LEN.saturating_add(entry.channel.saved_session_len());
                    let header = SaveHeader {
                        required: field(needed),
                        ..SaveHeader::default()
                    };
                    return answer(&header, output);
                }
            },
        };
        let header = Self::continue_save(entry, data, session_len)?;
        answer(&header, output)
    }

    /// Checks the channel can be saved, runs `VmbChannelSaveBegin` and writes the session
    /// blob at the start of `data`; returns its length, or `None` (nothing done) if `data`
    /// cannot hold it.
    fn begin_save(
        entry: &mut Entry<H::Kernel>,
        data: &mut [u8],
    ) -> Result<Option<usize>, ControlError> {
        if entry.restore.in_progress() {
            return Err(ControlError::WrongState("a restore is in progress"));
        }
        if !entry
            .channel
            .channel()
            .state()
            .permits(Operation::SavePacket)
        {
            return Err(ControlError::WrongState(
                "a save needs a paused channel (Opened or Suspended)",
            ));
        }
        let session_len = entry.channel.saved_session_len();
        let Some(session_out) = data.get_mut(..session_len) else {
            return Ok(None);
        };
        entry
            .channel
            .save_begin::<H>()
            .map_err(ControlError::Failed)?;
        match entry.channel.save_session(session_out) {
            Ok(written) => {
                entry.save = SaveProgress::Streaming;
                Ok(Some(written))
            }
            Err(status) => {
                entry.channel.save_end::<H>();
                Err(ControlError::Failed(status))
            }
        }
    }

    /// Fills `data` after its first `session_len` bytes with KMCL's stream; ends the save on
    /// its last piece or on a failure.
    fn continue_save(
        entry: &mut Entry<H::Kernel>,
        data: &mut [u8],
        session_len: usize,
    ) -> Result<SaveHeader, ControlError> {
        let session_flags = if session_len > 0 {
            SAVE_FLAG_SESSION
        } else {
            0
        };
        let session_only = SaveHeader {
            flags: session_flags,
            session_len: field(session_len),
            data_len: field(session_len),
            required: 0,
        };
        let rest = data.get_mut(session_len..).unwrap_or(&mut []);
        if rest.is_empty() && session_len > 0 {
            return Ok(session_only);
        }
        // An empty `rest` (an output of exactly the header) still goes to KMCL, whose
        // `STATUS_BUFFER_TOO_SMALL` then tells the caller the size to ask for.
        match entry.channel.save_continue::<H>(rest) {
            Ok(SaveChunk::More(n)) => Ok(SaveHeader {
                data_len: field(session_len.saturating_add(field_len(n))),
                ..session_only
            }),
            Ok(SaveChunk::Last(n)) => {
                entry.channel.save_end::<H>();
                entry.save = SaveProgress::Idle;
                Ok(SaveHeader {
                    flags: session_flags | SAVE_FLAG_LAST,
                    data_len: field(session_len.saturating_add(field_len(n))),
                    ..session_only
                })
            }
            // The session blob already makes a chunk; KMCL's piece waits for the next call.
            Err(SaveChunkError::TooSmall { .. }) if session_len > 0 => Ok(session_only),
            Err(SaveChunkError::TooSmall { required }) => Ok(SaveHeader {
                required: field(SAVE_HEADER_LEN).saturating_add(required),
                ..SaveHeader::default()
            }),
            Err(SaveChunkError::Failed(status)) => {
                entry.channel.save_end::<H>();
                entry.save = SaveProgress::Idle;
                Err(ControlError::Failed(status))
            }
        }
    }

    /// `IOCTL_FERRY_RESTORE_CHANNEL` (see the module docs).
    pub(super) fn restore(
        &self,
        caller: Owner,
        input: &RestoreInput<'_>,
    ) -> Result<Completion, ControlError> {
        let mut checked = self.check_out(
            caller,
            ChannelInput {
                channel_id: input.channel_id,
            },
        )?;
        let entry = checked.entry()?;
        if entry.save != SaveProgress::Idle {
            return Err(ControlError::WrongState("a save is in progress"));
        }
        let (mut fed, mut kmcl_wants_more) = match (entry.restore, input.session) {
            (RestoreProgress::Done, _) => {
                return Err(ControlError::WrongState("the channel is restored already"));
            }
            (RestoreProgress::Failed, _) => {
                return Err(ControlError::WrongState(
                    "a restore failed on this channel: close it",
                ));
            }
            (RestoreProgress::NotStarted, None) => {
                return Err(ControlError::WrongState(
                    "the first chunk must carry the session blob",
                ));
            }
            (RestoreProgress::Streaming { .. }, Some(_)) => {
                return Err(ControlError::WrongState(
                    "only the first chunk carries the session blob",
                ));
            }
            (RestoreProgress::NotStarted, Some(_)) => (false, false),
            (
                RestoreProgress::Streaming {
                    fed,
                    kmcl_wants_more,
                },
                None,
            ) => (fed, kmcl_wants_more),
        };
        if !entry
            .channel
            .channel()
            .state()
            .permits(Operation::RestorePacket)
        {
            return Err(ControlError::WrongState(
                "a restore needs a channel that carries no traffic yet (offer it paused)",
            ));
        }
        if let Some(session) = input.session {
            // Validated whole first: a refused blob changes nothing.
            entry
                .channel
                .restore_session(session)
                .map_err(ControlError::Failed)?;
        }
        entry.restore = RestoreProgress::Streaming {
            fed,
            kmcl_wants_more,
        };
        if !input.kmcl.is_empty() {
            match entry.channel.restore_chunk::<H>(input.kmcl) {
                Ok(more) => {
                    fed = true;
                    kmcl_wants_more = more;
                    entry.restore = RestoreProgress::Streaming {
                        fed,
                        kmcl_wants_more,
                    };
                }
                Err(status) => {
                    entry.restore = RestoreProgress::Failed;
                    return Err(ControlError::Failed(status));
                }
            }
        }
        if input.last {
            if fed && kmcl_wants_more {
                entry.restore = RestoreProgress::Failed;
                return Err(ControlError::RestoreTruncated);
            }
            if let Err(error) = entry.channel.restored() {
                entry.restore = RestoreProgress::Failed;
                return Err(ControlError::Channel(error));
            }
            entry.restore = RestoreProgress::Done;
        }
        Ok(Completion::success(0))
    }
}

/// KMCL's `u32` byte count as a length.
fn field_len(n: u32) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}
