//! `cargo xtask bench`: ferry-core's benchmarks against their baselines, in one table.
//!
//! Runs the criterion benches of `crates/core/benches` (`packet`, `classify`, `codec`,
//! `migration`) and the end-to-end migration on the simulated host
//! (`crates/platform-mock/benches/migration.rs`), reads criterion's estimates back, and prints every figure as a ratio measured
//! in the same run (ferry against the hand-written handler, postcard and `memcpy`) next to its
//! goal. It also runs the `instructions` bench binary under `valgrind --tool=callgrind` at two
//! iteration counts and divides the difference: instructions per operation, independent of
//! machine load (`--profile` adds the functions they go to). `--instructions` runs only that
//! part; `--quick` runs everything with short criterion measurements.
//! With `--out <dir>` it writes the figures (`results.tsv`) and the SVG plots there.
//!
//! Nothing here asserts on time: a goal missed is reported, not an error.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

mod plot;

use crate::workspace;
use plot::Series;

/// Benchmarks of ferry-core against hand-written, postcard and memcpy baselines.
#[derive(clap::Args)]
pub struct Args {
    /// A short run of everything (about two minutes on an idle two-core machine): timing
    /// ratios and instruction counts in one table.
    #[arg(long)]
    pub quick: bool,
    /// Only the instruction counts (callgrind) of the packet path and classify, no timing.
    #[arg(long)]
    pub instructions: bool,
    /// Also print the functions each counted operation spends its instructions in.
    #[arg(long)]
    pub profile: bool,
    /// Write `results.tsv` and the SVG plots into this directory.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

/// The criterion benches, in the order they run.
const BENCHES: [&str; 4] = ["packet", "classify", "codec", "migration"];

/// Request sizes of the packet bench (whole message bytes).
const PACKET_SIZES: [u32; 3] = [64, 1024, 8192];
/// Transaction counts of the codec bench.
const TRANSACTION_COUNTS: [u32; 3] = [256, 1024, 4096];
/// Flows per port of the codec bench (256 ports).
const FLOW_COUNTS: [u32; 3] = [64, 256, 1024];

/// Callgrind iteration counts: the per-operation figure is the difference divided by
/// `LONG - SHORT`, which cancels start-up and fixture building.
const SHORT: u64 = 2_000;
const LONG: u64 = 22_000;

/// The workloads counted under callgrind.
const COUNTED: [&str; 9] = [
    "packet-ferry-64",
    "packet-minimal-64",
    "packet-ferry-1024",
    "packet-minimal-1024",
    "packet-ferry-8192",
    "packet-minimal-8192",
    "classify-hit",
    "classify-miss",
    "classify-evict",
];

/// Runs the command.
///
/// # Errors
///
/// A bench failed to build or run, or its results could not be read.
pub fn run(args: &Args) -> Result<(), String> {
    let mut figures = Figures::default();
    if !args.instructions || args.quick {
        run_criterion(args.quick, &mut figures)?;
    }
    count_instructions(args.profile, &mut figures)?;
    print!("{}", figures.table());
    if let Some(dir) = &args.out {
        figures.write(dir)?;
    }
    Ok(())
}

/// Everything measured, by name.
#[derive(Default)]
struct Figures {
    /// Median nanoseconds per iteration, by criterion id (`group/function/value`).
    times: BTreeMap<String, f64>,
    /// Instructions per operation, by workload.
    instructions: BTreeMap<String, f64>,
    /// Of those, instructions in `memcpy`/`memmove` (the payload copy).
    copy_instructions: BTreeMap<String, f64>,
    /// Sizes the benches reported (`bytes_per_transaction`, ...), by name.
    sizes: BTreeMap<String, f64>,
    /// Bytes of ferry's blobs per codec case (`transactions/4096`, `ports/1024`).
    codec_bytes: BTreeMap<String, f64>,
}

fn run_criterion(quick: bool, figures: &mut Figures) -> Result<(), String> {
    let root = workspace::root();
    let mut command = Command::new(env!("CARGO"));
    command
        .current_dir(&root)
        .args(["bench", "-p", "ferry-core"]);
    for bench in BENCHES {
        command.args(["--bench", bench]);
    }
    command.arg("--");
    if quick {
        command.args([
            "--warm-up-time",
            "0.2",
            "--measurement-time",
            "0.5",
            "--sample-size",
            "10",
        ]);
    }
    println!(
        "running the criterion benches{}",
        if quick { " (quick)" } else { "" }
    );
    let output = command
        .output()
        .map_err(|error| format!("cannot run cargo bench: {error}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(format!(
            "cargo bench failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    for line in stdout.lines() {
        read_size_line(line, figures);
    }
    run_simulated_migration(&root, quick, figures)?;
    let criterion = root.join("target").join("criterion");
    read_estimates(&criterion, &criterion, &mut figures.times)?;
    Ok(())
}

/// The end-to-end migration on the simulated host (`crates/platform-mock/benches`), with the
/// same criterion settings; `--quick` also shrinks its set (`FERRY_BENCH_QUICK`).
fn run_simulated_migration(root: &Path, quick: bool, figures: &mut Figures) -> Result<(), String> {
    let mut command = Command::new(env!("CARGO"));
    command.current_dir(root).args([
        "bench",
        "-p",
        "ferry-platform-mock",
        "--bench",
        "migration",
        "--",
    ]);
    if quick {
        command.env("FERRY_BENCH_QUICK", "1").args([
            "--warm-up-time",
            "0.2",
            "--measurement-time",
            "0.5",
            "--sample-size",
            "10",
        ]);
    }
    let output = command
        .output()
        .map_err(|error| format!("cannot run cargo bench: {error}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(format!(
            "cargo bench -p ferry-platform-mock failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    for line in stdout.lines() {
        read_size_line(line, figures);
    }
    Ok(())
}

/// Picks the sizes the benches print (`migration: N B in total; X B per transaction; Y B per
/// flow ...`, `transactions/4096: ferry N B, ...`, `ports/1024: 256 ports, ferry N B, ...`).
fn read_size_line(line: &str, figures: &mut Figures) {
    let number_before = |text: &str, unit: &str| -> Option<f64> {
        let end = text.find(unit)?;
        text.get(..end)?
            .split_whitespace()
            .last()?
            .trim_start_matches(';')
            .parse()
            .ok()
    };
    if let Some(rest) = line.strip_prefix("sim_migration: ") {
        for (unit, name) in [
            (" B in total", "sim_migration_bytes"),
            (" B per transaction", "sim_bytes_per_transaction"),
            (
                " B of KMCL stream per transaction",
                "sim_kmcl_bytes_per_transaction",
            ),
            (" B per flow", "sim_bytes_per_flow"),
        ] {
            if let Some(value) = number_before(rest, unit) {
                figures.sizes.insert(name.to_owned(), value);
            }
        }
    } else if let Some(rest) = line.strip_prefix("migration: ") {
        for (unit, name) in [
            (" B in total", "migration_bytes"),
            (" B per transaction", "bytes_per_transaction"),
            (" B per flow", "bytes_per_flow"),
        ] {
            if let Some(value) = number_before(rest, unit) {
                figures.sizes.insert(name.to_owned(), value);
            }
        }
    } else if let Some((case, rest)) = line.split_once(": ")
        && (case.starts_with("transactions/") || case.starts_with("ports/"))
        && let Some(at) = rest.find("ferry ")
        && let Some(value) = rest.get(at + "ferry ".len()..).and_then(|r| {
            r.split_whitespace()
                .next()
                .and_then(|n| n.parse::<f64>().ok())
        })
    {
        figures.codec_bytes.insert(case.to_owned(), value);
    }
}

/// Walks criterion's output for `new/estimates.json` files and records each median.
fn read_estimates(base: &Path, dir: &Path, into: &mut BTreeMap<String, f64>) -> Result<(), String> {
    let entries = std::fs::read_dir(dir)
        .map_err(|error| format!("cannot read {}: {error}", dir.display()))?;
    for entry in entries.flatten() {
        let path = entry.path();
        if !path.is_dir() {
            continue;
        }
        let estimates = path.join("new").join("estimates.json");
        if estimates.is_file() {
            let text = std::fs::read_to_string(&estimates)
                .map_err(|error| format!("cannot read {}: {error}", estimates.display()))?;
            let id = path
                .strip_prefix(base)
                .map_err(|_| "criterion path outside its directory".to_owned())?
                .to_string_lossy()
                .replace('\\', "/");
            if let Some(median) = json_point_estimate(&text, "median") {
                into.insert(id, median);
            }
        } else if path.file_name().is_some_and(|name| name != "report") {
            read_estimates(base, &path, into)?;
        }
    }
    Ok(())
}

/// The `point_estimate` of the statistic `name` in criterion's `estimates.json`.
fn json_point_estimate(json: &str, name: &str) -> Option<f64> {
    let start = json.find(&format!("\"{name}\""))?;
    let rest = json.get(start..)?;
    let key = "\"point_estimate\":";
    let at = rest.find(key)? + key.len();
    let number: String = rest
        .get(at..)?
        .chars()
        .skip_while(|c| c.is_whitespace())
        .take_while(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '-' | '+'))
        .collect();
    number.parse().ok()
}

/// Builds the `instructions` bench binary and returns its path.
fn instructions_binary() -> Result<PathBuf, String> {
    let output = Command::new(env!("CARGO"))
        .current_dir(workspace::root())
        .args([
            "bench",
            "-p",
            "ferry-core",
            "--bench",
            "instructions",
            "--no-run",
            "--message-format=json",
        ])
        .output()
        .map_err(|error| format!("cannot run cargo: {error}"))?;
    if !output.status.success() {
        return Err(format!(
            "building the instructions bench failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    stdout
        .lines()
        .filter(|line| line.contains("\"name\":\"instructions\""))
        .find_map(|line| {
            let key = "\"executable\":\"";
            let at = line.find(key)? + key.len();
            let end = line.get(at..)?.find('"')?;
            line.get(at..at + end).map(PathBuf::from)
        })
        .ok_or_else(|| "cargo did not report the instructions executable".to_owned())
}

fn count_instructions(profile: bool, figures: &mut Figures) -> Result<(), String> {
    if Command::new("valgrind").arg("--version").output().is_err() {
        println!("valgrind not found (apt-get install valgrind): no instruction counts");
        return Ok(());
    }
    let binary = instructions_binary()?;
    let scratch = workspace::root().join("target").join("callgrind");
    std::fs::create_dir_all(&scratch)
        .map_err(|error| format!("cannot create {}: {error}", scratch.display()))?;
    println!("counting instructions under callgrind ({SHORT} and {LONG} iterations)");
    for workload in COUNTED {
        let short = callgrind(&binary, &scratch, workload, SHORT)?;
        let long = callgrind(&binary, &scratch, workload, LONG)?;
        let per_op = |a: f64, b: f64| (b - a) / (LONG - SHORT) as f64;
        let total = per_op(short.total, long.total);
        let mut per_function: Vec<(String, f64)> = long
            .functions
            .iter()
            .map(|(name, &cost)| {
                let before = short.functions.get(name).copied().unwrap_or(0.0);
                (name.clone(), per_op(before, cost))
            })
            .filter(|(_, cost)| *cost >= 0.5)
            .collect();
        per_function.sort_by(|a, b| b.1.total_cmp(&a.1));
        let copy: f64 = per_function
            .iter()
            .filter(|(name, _)| name.contains("memcpy") || name.contains("memmove"))
            .map(|(_, cost)| cost)
            .sum();
        figures.instructions.insert(workload.to_owned(), total);
        figures.copy_instructions.insert(workload.to_owned(), copy);
        if profile {
            println!("{workload}: {total:.0} instructions per operation");
            for (name, cost) in per_function.iter().take(10) {
                println!("  {cost:6.1}  {name}");
            }
        }
    }
    Ok(())
}

/// One callgrind run: total instructions and self cost per function.
struct CallgrindRun {
    total: f64,
    functions: BTreeMap<String, f64>,
}

fn callgrind(
    binary: &Path,
    scratch: &Path,
    workload: &str,
    iterations: u64,
) -> Result<CallgrindRun, String> {
    let out = scratch.join(format!("{workload}.{iterations}.out"));
    let run = Command::new("valgrind")
        .arg("--tool=callgrind")
        .arg(format!("--callgrind-out-file={}", out.display()))
        .arg(binary)
        .arg(workload)
        .arg(iterations.to_string())
        .output()
        .map_err(|error| format!("cannot run valgrind: {error}"))?;
    if !run.status.success() {
        return Err(format!(
            "{workload} failed under callgrind:\n{}{}",
            String::from_utf8_lossy(&run.stdout),
            String::from_utf8_lossy(&run.stderr)
        ));
    }
    let annotate = Command::new("callgrind_annotate")
        .arg("--threshold=100")
        .arg("--auto=no")
        .arg(&out)
        .output()
        .map_err(|error| format!("cannot run callgrind_annotate: {error}"))?;
    let text = String::from_utf8_lossy(&annotate.stdout);
    let mut total = None;
    let mut functions = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim_start();
        let Some((count, rest)) = line.split_once(' ') else {
            continue;
        };
        let Ok(count) = count.replace(',', "").parse::<f64>() else {
            continue;
        };
        let name = rest.split_once("%)").map_or(rest, |(_, name)| name).trim();
        if name == "PROGRAM TOTALS" {
            total = Some(count);
        } else if !name.is_empty() {
            // Strip the object file, keep `file:function`.
            let name = name.split(" [").next().unwrap_or(name);
            *functions.entry(shorten(name)).or_insert(0.0) += count;
        }
    }
    let total = total.ok_or_else(|| format!("no totals in callgrind output for {workload}"))?;
    Ok(CallgrindRun { total, functions })
}

/// The function of a `file:function` entry: callgrind splits a function's cost by the source
/// file of each inlined line, which the profile sums back.
fn shorten(name: &str) -> String {
    name.split_once(':')
        .map_or(name, |(_, function)| function)
        .to_owned()
}

/// One row of the table.
struct Row {
    figure: String,
    value: String,
    goal: String,
    verdict: &'static str,
}

impl Row {
    fn new(figure: String, value: Option<f64>, unit: &str, goal: Goal) -> Self {
        let (value_text, verdict) = match value {
            None => ("not measured".to_owned(), ""),
            Some(value) => (
                format!("{}{unit}", format_value(value)),
                match goal {
                    Goal::AtMost(limit) if value <= limit => "met",
                    Goal::AtLeast(limit) if value >= limit => "met",
                    Goal::AtMost(_) | Goal::AtLeast(_) => "MISSED",
                    Goal::None => "",
                },
            ),
        };
        let goal = match goal {
            Goal::AtMost(limit) => format!("≤ {}{unit}", format_value(limit)),
            Goal::AtLeast(limit) => format!("≥ {}{unit}", format_value(limit)),
            Goal::None => "—".to_owned(),
        };
        Self {
            figure,
            value: value_text,
            goal,
            verdict,
        }
    }
}

#[derive(Clone, Copy)]
enum Goal {
    AtMost(f64),
    AtLeast(f64),
    None,
}

fn format_value(value: f64) -> String {
    if value >= 100.0 {
        format!("{value:.0}")
    } else if value >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    }
}

impl Figures {
    fn time(&self, id: &str) -> Option<f64> {
        self.times.get(id).copied()
    }

    /// `time(numerator) / time(denominator)`.
    fn ratio(&self, numerator: &str, denominator: &str) -> Option<f64> {
        Some(self.time(numerator)? / self.time(denominator)?)
    }

    fn rows(&self) -> Vec<Row> {
        let mut rows = Vec::new();
        for size in PACKET_SIZES {
            rows.push(Row::new(
                format!("packet {size} B: ferry time / minimal handler time"),
                self.ratio(
                    &format!("packet/ferry/{size}"),
                    &format!("packet/minimal/{size}"),
                ),
                "×",
                Goal::AtMost(1.15),
            ));
        }
        for size in PACKET_SIZES {
            rows.push(Row::new(
                format!("packet {size} B: ferry ns per request (minimal: {})", {
                    self.time(&format!("packet/minimal/{size}"))
                        .map_or("—".to_owned(), |t| format!("{t:.1} ns"))
                }),
                self.time(&format!("packet/ferry/{size}")),
                " ns",
                Goal::None,
            ));
        }
        let ferry64 = self.instructions.get("packet-ferry-64").copied();
        let copy64 = self.copy_instructions.get("packet-ferry-64").copied();
        rows.push(Row::new(
            format!(
                "packet 64 B: instructions per request excl. payload copy (copy: {}, total: {})",
                copy64.map_or("—".to_owned(), |c| format!("{c:.0}")),
                ferry64.map_or("—".to_owned(), |c| format!("{c:.0}")),
            ),
            ferry64.zip(copy64).map(|(total, copy)| total - copy),
            "",
            Goal::AtMost(250.0),
        ));
        for size in PACKET_SIZES {
            let ferry = self
                .instructions
                .get(&format!("packet-ferry-{size}"))
                .copied();
            let minimal = self
                .instructions
                .get(&format!("packet-minimal-{size}"))
                .copied();
            rows.push(Row::new(
                format!(
                    "packet {size} B: instructions, ferry (minimal handler: {})",
                    minimal.map_or("—".to_owned(), |c| format!("{c:.0}"))
                ),
                ferry,
                "",
                Goal::None,
            ));
        }
        rows.push(Row::new(
            "packet path: heap allocations per request".to_owned(),
            ferry64.map(|_| 0.0),
            "",
            Goal::AtMost(0.0),
        ));
        rows.push(Row::new(
            "classify hit: instructions per frame".to_owned(),
            self.instructions.get("classify-hit").copied(),
            "",
            Goal::AtMost(100.0),
        ));
        for case in ["miss", "evict"] {
            rows.push(Row::new(
                format!("classify {case}: instructions per frame"),
                self.instructions.get(&format!("classify-{case}")).copied(),
                "",
                Goal::None,
            ));
        }
        for case in ["hit", "miss", "evict"] {
            rows.push(Row::new(
                format!("classify {case}: ns per frame"),
                self.time(&format!("classify/{case}")),
                " ns",
                Goal::None,
            ));
        }
        for (set, value, label) in [
            ("transactions", 4096, "4,096 transactions"),
            ("ports", 1024, "256 ports × 1,024 flows"),
        ] {
            for direction in ["encode", "decode"] {
                let id = |who: &str| format!("{set}_{direction}/{who}/{value}");
                rows.push(Row::new(
                    format!("{label}, {direction}: ferry throughput / postcard"),
                    self.ratio(&id("postcard"), &id("ferry")),
                    "×",
                    Goal::AtLeast(4.0),
                ));
                rows.push(Row::new(
                    format!("{label}, {direction}: ferry throughput / memcpy"),
                    self.ratio(&id("memcpy"), &id("ferry")),
                    "×",
                    Goal::AtLeast(0.25),
                ));
            }
        }
        for engine in ["hardware", "software"] {
            let id = |who: &str| format!("checksum/{who}/16777216");
            rows.push(Row::new(
                format!("CRC-32C over 16 MiB, {engine} engine: throughput / memcpy"),
                self.ratio(&id("memcpy"), &id(engine)),
                "×",
                Goal::None,
            ));
        }
        rows.push(Row::new(
            "migration (core level): save + copy + restore time / memcpy".to_owned(),
            self.ratio("migration/ferry", "migration/memcpy"),
            "×",
            Goal::AtMost(8.0),
        ));
        rows.push(Row::new(
            "migration (simulated host, 256 channels × 16 in flight): save + transfer + restore \
             time / memcpy"
                .to_owned(),
            self.ratio("sim_migration/ferry", "sim_migration/memcpy"),
            "×",
            Goal::AtMost(8.0),
        ));
        rows.push(Row::new(
            "migration (simulated host, all 4,096 in flight on one channel): time / memcpy"
                .to_owned(),
            self.ratio("sim_migration/ferry_one_channel", "sim_migration/memcpy"),
            "×",
            Goal::None,
        ));
        for (name, label) in [
            ("bytes_per_transaction", "saved bytes per transaction"),
            ("bytes_per_flow", "saved bytes per flow (port blob / flows)"),
            (
                "sim_kmcl_bytes_per_transaction",
                "simulated host: KMCL stream bytes per transaction (its state + ferry's blob)",
            ),
            ("sim_bytes_per_flow", "simulated host: saved bytes per flow"),
        ] {
            rows.push(Row::new(
                label.to_owned(),
                self.sizes.get(name).copied(),
                " B",
                Goal::None,
            ));
        }
        rows
    }

    fn table(&self) -> String {
        let rows = self.rows();
        let width = rows
            .iter()
            .map(|r| r.figure.chars().count())
            .max()
            .unwrap_or(0);
        let mut out = String::new();
        let _ = writeln!(
            out,
            "\n{:width$}  {:>12}  {:>10}  result",
            "figure", "value", "goal"
        );
        for row in rows {
            let _ = writeln!(
                out,
                "{:width$}  {:>12}  {:>10}  {}",
                row.figure, row.value, row.goal, row.verdict
            );
        }
        out
    }

    fn write(&self, dir: &Path) -> Result<(), String> {
        std::fs::create_dir_all(dir)
            .map_err(|error| format!("cannot create {}: {error}", dir.display()))?;
        let mut tsv = String::from("# kind\tname\tvalue\n");
        for (kind, map) in [
            ("median_ns", &self.times),
            ("instructions", &self.instructions),
            ("copy_instructions", &self.copy_instructions),
            ("bytes", &self.sizes),
            ("codec_bytes", &self.codec_bytes),
        ] {
            for (name, value) in map {
                let _ = writeln!(tsv, "{kind}\t{name}\t{value}");
            }
        }
        let _ = writeln!(tsv, "# table");
        for row in self.rows() {
            let _ = writeln!(
                tsv,
                "row\t{}\t{}\t{}\t{}",
                row.figure, row.value, row.goal, row.verdict
            );
        }
        write_file(&dir.join("results.tsv"), &tsv)?;
        write_file(&dir.join("codec-throughput.svg"), &self.codec_plot())?;
        write_file(&dir.join("packet-cost.svg"), &self.packet_plot())?;
        println!(
            "wrote results.tsv, codec-throughput.svg, packet-cost.svg to {}",
            dir.display()
        );
        Ok(())
    }

    /// Throughput (MB/s of ferry's saved bytes) against the saved set's size.
    fn codec_plot(&self) -> String {
        let mut series = Vec::new();
        for (set, values, prefix) in [
            ("transactions", &TRANSACTION_COUNTS, "transactions"),
            ("ports", &FLOW_COUNTS, "ports"),
        ] {
            for (direction, who, color, dashed) in [
                ("encode", "ferry", "#1f77b4", false),
                ("decode", "ferry", "#1f77b4", true),
                ("encode", "postcard", "#d62728", false),
                ("decode", "postcard", "#d62728", true),
                ("encode", "memcpy", "#2ca02c", false),
            ] {
                let points: Vec<(f64, f64)> = values
                    .iter()
                    .filter_map(|value| {
                        let bytes = self.codec_bytes.get(&format!("{prefix}/{value}"))?;
                        let ns = self.time(&format!("{set}_{direction}/{who}/{value}"))?;
                        Some((*bytes, bytes / ns * 1e3))
                    })
                    .collect();
                let name = if who == "memcpy" {
                    format!("{set}: memcpy")
                } else {
                    format!("{set}: {who} {direction}")
                };
                let marker = if set == "ports" { "square" } else { "circle" };
                series.push(Series {
                    name,
                    color,
                    dashed,
                    marker,
                    points,
                });
            }
        }
        plot::line_chart(
            "Saved-state codec throughput (checksum included)",
            "saved bytes per run (ferry's blobs)",
            "MB/s of ferry-sized data",
            &series,
        )
    }

    /// Nanoseconds per packet against the request size.
    fn packet_plot(&self) -> String {
        let series: Vec<Series> = [("ferry", "#1f77b4"), ("minimal", "#2ca02c")]
            .into_iter()
            .map(|(who, color)| Series {
                name: format!("{who} (ns per request)"),
                color,
                dashed: false,
                marker: "circle",
                points: PACKET_SIZES
                    .iter()
                    .filter_map(|size| {
                        let ns = self.time(&format!("packet/{who}/{size}"))?;
                        Some((f64::from(*size), ns))
                    })
                    .collect(),
            })
            .collect();
        plot::line_chart(
            "Cost per packet (ping request through the packet path)",
            "request size (bytes)",
            "ns per request",
            &series,
        )
    }
}

fn write_file(path: &Path, contents: &str) -> Result<(), String> {
    std::fs::write(path, contents)
        .map_err(|error| format!("cannot write {}: {error}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_median_not_the_mean() {
        let json = r#"{"mean":{"confidence_interval":{"confidence_level":0.95,"lower_bound":1.0,"upper_bound":3.0},"point_estimate":2.5,"standard_error":0.1},"median":{"confidence_interval":{"confidence_level":0.95,"lower_bound":1.0,"upper_bound":2.0},"point_estimate":1.75e1,"standard_error":0.1}}"#;
        assert_eq!(json_point_estimate(json, "median"), Some(17.5));
        assert_eq!(json_point_estimate(json, "mean"), Some(2.5));
        assert_eq!(json_point_estimate(json, "slope"), None);
    }

    #[test]
    fn reads_the_sizes_the_benches_print() {
        let mut figures = Figures::default();
        read_size_line(
            "migration: 17000000 B in total; 58.0 B per transaction; 62.31 B per flow (x)",
            &mut figures,
        );
        read_size_line(
            "ports/1024: 256 ports, ferry 16400000 B, postcard 9 B",
            &mut figures,
        );
        read_size_line(
            "transactions/256: ferry 14848 B, postcard 4000 B",
            &mut figures,
        );
        assert_eq!(figures.sizes.get("bytes_per_transaction"), Some(&58.0));
        assert_eq!(figures.sizes.get("bytes_per_flow"), Some(&62.31));
        assert_eq!(figures.sizes.get("migration_bytes"), Some(&17_000_000.0));
        read_size_line(
            "sim_migration: 17021984 B in total; 58.0 B per transaction; 166.0 B of KMCL stream \
             per transaction; 62.34 B per flow (port blobs, headers and counters included)",
            &mut figures,
        );
        assert_eq!(figures.sizes.get("sim_bytes_per_transaction"), Some(&58.0));
        assert_eq!(
            figures.sizes.get("sim_kmcl_bytes_per_transaction"),
            Some(&166.0)
        );
        assert_eq!(figures.sizes.get("sim_bytes_per_flow"), Some(&62.34));
        assert_eq!(figures.sizes.get("migration_bytes"), Some(&17_000_000.0));
        assert_eq!(figures.codec_bytes.get("ports/1024"), Some(&16_400_000.0));
        assert_eq!(figures.codec_bytes.get("transactions/256"), Some(&14_848.0));
    }

    #[test]
    fn goals_decide_the_verdict() {
        assert_eq!(
            Row::new("a".into(), Some(1.2), "×", Goal::AtMost(1.15)).verdict,
            "MISSED"
        );
        assert_eq!(
            Row::new("a".into(), Some(1.1), "×", Goal::AtMost(1.15)).verdict,
            "met"
        );
        assert_eq!(
            Row::new("a".into(), Some(0.2), "×", Goal::AtLeast(0.25)).verdict,
            "MISSED"
        );
        assert_eq!(
            Row::new("a".into(), None, "×", Goal::AtLeast(0.25)).verdict,
            ""
        );
    }

    #[test]
    fn costs_are_summed_per_function() {
        assert_eq!(
            shorten(
                "/a/b/crates/core/src/port/flow.rs:ferry_core::port::flow::FlowTable<_>::touch"
            ),
            "ferry_core::port::flow::FlowTable<_>::touch"
        );
        assert_eq!(shorten("??? no file"), "??? no file");
    }
}
