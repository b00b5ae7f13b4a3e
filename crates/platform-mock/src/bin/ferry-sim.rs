//! `ferry-sim`: runs ferry on simulated Hyper-V hosts — traffic, suspends, live migrations,
//! faults — and checks that nothing is lost, duplicated or corrupted on the way.
//!
//! `ferry-sim` alone runs a representative default scenario and prints its report;
//! `--campaign N` runs seeds 0..N with random scenarios and faults.

// A std program: the kernel stack limits behind the workspace lint do not apply.
#![allow(clippy::large_stack_frames)]

use std::io::Write as _;
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use ferry_platform_mock::faults::FaultSet;
use ferry_platform_mock::world::{ScenarioConfig, run_scenario};

/// Simulated Hyper-V hosts running ferry: live migration with invariants checked.
#[derive(Parser, Debug)]
#[command(
    name = "ferry-sim",
    version,
    about = "Simulated Hyper-V hosts running ferry: traffic, suspends, live migrations and faults, with invariants checked"
)]
struct Cli {
    /// Seed of the scenario (same seed, same run). The default seed's run has deferred
    /// packets retired at every migration's suspend.
    #[arg(long, default_value_t = 9)]
    seed: u64,
    /// Number of VMs.
    #[arg(long, default_value_t = 3)]
    vms: u32,
    /// Switch ports (NICs) per VM.
    #[arg(long, default_value_t = 2)]
    ports: u32,
    /// Flows per port.
    #[arg(long, default_value_t = 16)]
    flows: u32,
    /// Guest requests to send (roughly).
    #[arg(long, default_value_t = 400)]
    packets: u64,
    /// Live migrations (a VM save/restore on the same host and a suspend always run too).
    #[arg(long, default_value_t = 2)]
    migrations: u32,
    /// Faults to inject: a comma-separated list, `all` or `none`. Known: malformed, oversized,
    /// flood, crash, refuse-open, late-ack, no-ack, short-buffer, save-packet-fail,
    /// port-save-fail, port-save-hang, truncate, bit-flip, foreign.
    #[arg(long, default_value = "none")]
    faults: FaultSet,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// Print the event log before the report.
    #[arg(long)]
    trace: bool,
    /// Leave out real (wall-clock) durations, so the same seed prints byte-identical output.
    #[arg(long)]
    deterministic: bool,
    /// Run seeds 0..N with random scenarios and faults; exit non-zero on any violation.
    #[arg(long, value_name = "N")]
    campaign: Option<u64>,
}

fn campaign(count: u64, json: bool) -> ExitCode {
    let started = Instant::now();
    let bar = indicatif::ProgressBar::new(count);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} seeds  {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let mut failures = Vec::new();
    let mut total_violations = 0u64;
    for seed in 0..count {
        let config = ScenarioConfig::random(seed, 100);
        let (report, _) = run_scenario(config.clone(), true);
        if !report.passed() {
            total_violations += report.violations;
            failures.push((config, report));
            bar.set_message(format!("{} failing", failures.len()));
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    if json {
        let seeds: Vec<serde_json::Value> = failures
            .iter()
            .map(|(c, r)| serde_json::json!({"seed": c.seed, "replay": c.replay_command(), "violations": r.violations}))
            .collect();
        let value =
            serde_json::json!({"seeds": count, "violations": total_violations, "failing": seeds});
        println!(
            "{}",
            serde_json::to_string_pretty(&value).unwrap_or_default()
        );
    } else {
        for (config, report) in &failures {
            println!("seed {}: {} violations", config.seed, report.violations);
            for inv in report
                .invariants
                .iter()
                .filter(|i| !i.violations.is_empty())
            {
                println!(
                    "  {}: {}",
                    inv.name,
                    inv.violations.first().map_or("", String::as_str)
                );
            }
            println!("  replay: {}", config.replay_command());
        }
        println!("campaign: {count} seeds, {total_violations} violations ({seconds:.1} s)");
    }
    if failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(count) = cli.campaign {
        return campaign(count, cli.json);
    }
    let config = ScenarioConfig {
        seed: cli.seed,
        vms: cli.vms,
        ports: cli.ports,
        flows: cli.flows.min(1000),
        packets: cli.packets,
        migrations: cli.migrations,
        faults: cli.faults,
        trace: cli.trace,
    };
    if let Err(problem) = config.validate() {
        eprintln!("ferry-sim: {problem}");
        return ExitCode::from(2);
    }
    let (report, trace) = run_scenario(config, cli.deterministic);
    let mut stdout = std::io::stdout().lock();
    if cli.trace {
        for line in &trace {
            let _ = writeln!(stdout, "{line}");
        }
        let _ = writeln!(stdout);
    }
    if cli.json {
        let _ = writeln!(
            stdout,
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        );
    } else {
        let _ = write!(stdout, "{}", report.render());
    }
    if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
