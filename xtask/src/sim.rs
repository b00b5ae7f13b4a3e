//! `cargo xtask sim [ferry-sim arguments]`: runs `ferry-sim` (the simulated Hyper-V hosts,
//! live migration and invariants of `crates/platform-mock`) in release mode.
//!
//! Everything after `sim` goes to `ferry-sim` unchanged: `cargo xtask sim --campaign 1000`,
//! `cargo xtask sim --seed 7 --faults all --trace`. `ferry-sim --help` lists the options.

use std::process::Command;

use crate::workspace;

/// Options of `sim`: all passed through to `ferry-sim`.
#[derive(clap::Args)]
pub struct Args {
    /// Arguments for ferry-sim (see `cargo xtask sim --help` after `--`, or `ferry-sim --help`).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<String>,
}

/// Builds and runs ferry-sim in release mode; a scenario with violations fails the command.
pub fn run(args: &Args) -> Result<(), String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let status = Command::new(cargo)
        .current_dir(workspace::root())
        .args([
            "run",
            "--quiet",
            "--release",
            "-p",
            "ferry-platform-mock",
            "--bin",
            "ferry-sim",
            "--",
        ])
        .args(&args.args)
        .status()
        .map_err(|error| format!("could not start cargo: {error}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("ferry-sim exited with {status}"))
    }
}
