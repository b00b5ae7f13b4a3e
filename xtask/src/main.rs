//! `cargo xtask`: ferry's project commands.
//!
//! Only `help` exists so far. The commands the later issues add (`sim`, `build-sys`,
//! `check-sys`, `package`, `inspect`, `fuzz`, `bench`) will share one style of options and
//! output.

use std::process::ExitCode;

const HELP: &str = "\
cargo xtask <command>

commands:
  help    print this list

Planned (not built yet): sim, build-sys, check-sys, package, inspect, fuzz, bench.
";

fn main() -> ExitCode {
    let command = std::env::args().nth(1);
    match command.as_deref() {
        None | Some("help" | "-h" | "--help") => {
            print!("{HELP}");
            ExitCode::SUCCESS
        }
        Some(other) => {
            eprintln!("xtask: unknown command `{other}`\n\n{HELP}");
            ExitCode::from(2)
        }
    }
}
