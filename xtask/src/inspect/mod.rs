//! `cargo xtask inspect <blob>... [--json]`: decodes ferry saved-state blobs, the tool a
//! support engineer runs on a blob captured from a failed migration.
//!
//! For each file it prints the envelope (format version, kind, flags, payload length), the
//! checksum verdict, every field with its name, value and meaning (from
//! `docs/saved-state/<kind>.md`), and the verdict of the kind's own restore checks in
//! ferry-core — the same code the driver runs, so "accepted" here means the driver would
//! decode it. A rejected blob gets the typed error, the `NTSTATUS` the restore callback would
//! return and the byte offset where decoding stopped. The command fails if any blob is
//! rejected.
//!
//! The port kind is checked against a flow table of [`REFERENCE_FLOW_CAPACITY`] flows (the
//! reference configuration); the identity, which needs a destination port, is not judged.

mod catalog;
mod report;
mod value;

use std::io::Write as _;
use std::path::PathBuf;

pub use report::{Report, inspect};

/// Options of `inspect`.
#[derive(clap::Args)]
pub struct Args {
    /// Saved-state blobs to decode (for example crates/core/tests/golden/v1.0/*.bin).
    #[arg(required = true)]
    blobs: Vec<PathBuf>,
    /// Print one JSON array (one object per blob) instead of text.
    #[arg(long)]
    json: bool,
}

/// The flow-table capacity a port blob is checked against: the reference configuration's
/// (`docs/saved-state/port-runtime-state.md`, "Capacity").
pub const REFERENCE_FLOW_CAPACITY: usize = 1024;

/// Runs `inspect`.
pub fn run(args: &Args) -> Result<(), String> {
    let mut reports = Vec::with_capacity(args.blobs.len());
    for path in &args.blobs {
        let shown = crate::workspace::display(path);
        let blob = std::fs::read(path).map_err(|e| format!("cannot read {shown}: {e}"))?;
        reports.push(inspect(&shown, &blob));
    }
    let text = if args.json {
        let all: Vec<_> = reports.iter().map(Report::to_json).collect();
        serde_json::to_string_pretty(&all).map_err(|e| e.to_string())? + "\n"
    } else {
        reports.iter().map(Report::to_text).collect()
    };
    // A closed pipe (`| head`) is the reader's choice, not an error worth a panic.
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        Err(e) => return Err(format!("cannot write the report: {e}")),
    }
    let rejected = reports.iter().filter(|r| !r.accepted()).count();
    if rejected == 0 {
        Ok(())
    } else {
        Err(format!("{rejected} of {} blobs rejected", reports.len()))
    }
}

#[cfg(test)]
mod tests;
