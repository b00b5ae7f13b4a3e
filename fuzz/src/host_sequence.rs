//! The input of `host_sequence`: a [`Setup`] and up to [`MAX_ACTIONS`] [`Action`]s, decoded
//! from the fuzz input with `arbitrary` (the derives of `ferry-platform-mock`'s `arbitrary`
//! feature).

use arbitrary::{Arbitrary, Unstructured};
use ferry_platform_mock::world::steps::{Action, Setup};

/// Longest action sequence one input runs (longer inputs are cut): keeps one execution short
/// enough for libFuzzer to try many.
pub const MAX_ACTIONS: usize = 64;

/// The setup and actions `data` stands for (missing bytes read as zeros, as `arbitrary` does).
#[must_use]
pub fn decode(data: &[u8]) -> (Setup, Vec<Action>) {
    let mut input = Unstructured::new(data);
    let setup = Setup::arbitrary(&mut input).unwrap_or_default();
    let mut actions = Vec::new();
    while !input.is_empty() && actions.len() < MAX_ACTIONS {
        match Action::arbitrary(&mut input) {
            Ok(action) => actions.push(action),
            Err(_) => break,
        }
    }
    (setup, actions)
}

/// A name for the kind of `action` (its variant).
#[must_use]
pub fn kind(action: &Action) -> &'static str {
    match action {
        Action::Request { .. } => "request",
        Action::Malformed { .. } => "malformed",
        Action::Oversized { .. } => "oversized",
        Action::Flood { .. } => "flood",
        Action::Pump { .. } => "pump",
        Action::Raise { .. } => "raise",
        Action::Acks { .. } => "acks",
        Action::Advance { .. } => "advance",
        Action::Pause { .. } => "pause",
        Action::Start { .. } => "start",
        Action::Crash { .. } => "crash",
        Action::Close { .. } => "close",
        Action::Open { .. } => "open",
        Action::RefuseNextOpen { .. } => "refuse-next-open",
        Action::Classify { .. } => "classify",
        Action::ReplugNic { .. } => "replug-nic",
        Action::CreateStrayPort { .. } => "create-stray-port",
        Action::DeleteStrayPort { .. } => "delete-stray-port",
        Action::PortSaveRestore { .. } => "port-save-restore",
        Action::ReapOverdueSaves { .. } => "reap-overdue-saves",
        Action::Migrate { .. } => "migrate",
        Action::SaveRestoreLocal { .. } => "save-restore-local",
        Action::Settle => "settle",
    }
}
