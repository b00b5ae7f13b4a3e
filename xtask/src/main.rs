//! `cargo xtask`: ferry's project commands.
//!
//! One subcommand per job, each in its own module with an `Args` struct (clap derive) and a
//! `run(&Args) -> Result<(), String>`: `Ok` exits 0, `Err` prints `xtask <command>: <message>`
//! and exits 1. `cargo xtask help` lists the commands.

// The workspace flags stack frames over 2 KiB because kernel stacks are 12-24 KiB; xtask is a
// host program with megabytes of stack, where the lint is noise.
#![allow(clippy::large_stack_frames)]

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod bench;
mod build_sys;
mod check_sys;
mod fuzz;
mod inspect;
mod package;
mod panic_free;
mod sim;
mod workspace;

/// ferry's project commands.
#[derive(Parser)]
#[command(name = "cargo xtask", bin_name = "cargo xtask")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Benchmarks of ferry-core against hand-written, postcard and memcpy baselines.
    Bench(bench::Args),
    /// Build ferry.sys for x86_64-pc-windows-msvc with Debian's rustc-web and lld.
    BuildSys(build_sys::Args),
    /// Check a built ferry.sys: PE32+ AMD64, NATIVE, entry, relocations, checksum, imports.
    CheckSys(check_sys::Args),
    /// Show that no panic path survives in the optimised ferry.sys (a link check).
    CheckPanicFree(panic_free::Args),
    /// Run ferry-sim (simulated Hyper-V hosts, live migration, invariants) in release mode.
    Sim(sim::Args),
    /// Lay out the driver package: ferry.sys (test-signed), ferry.inf, test certificate.
    Package(package::Args),
    /// Decode saved-state blobs: every field, format version, checksum; errors with offsets.
    Inspect(inspect::Args),
    /// Run one cargo-fuzz target of fuzz/ for a bounded time (needs nightly and cargo-fuzz).
    Fuzz(fuzz::Args),
}

impl Command {
    fn name(&self) -> &'static str {
        match self {
            Self::Bench(_) => "bench",
            Self::BuildSys(_) => "build-sys",
            Self::CheckSys(_) => "check-sys",
            Self::CheckPanicFree(_) => "check-panic-free",
            Self::Sim(_) => "sim",
            Self::Package(_) => "package",
            Self::Inspect(_) => "inspect",
            Self::Fuzz(_) => "fuzz",
        }
    }

    fn run(&self) -> Result<(), String> {
        match self {
            Self::Bench(args) => bench::run(args),
            Self::BuildSys(args) => build_sys::run(args),
            Self::CheckSys(args) => check_sys::run(args),
            Self::CheckPanicFree(args) => panic_free::run(args),
            Self::Sim(args) => sim::run(args),
            Self::Package(args) => package::run(args),
            Self::Inspect(args) => inspect::run(args),
            Self::Fuzz(args) => fuzz::run(args),
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command.run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask {}: {message}", cli.command.name());
            ExitCode::FAILURE
        }
    }
}
