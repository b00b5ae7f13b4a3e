//! `cargo xtask fuzz <target> [--time S]`: runs one cargo-fuzz target of `fuzz/` for a bounded
//! time, the way `docs/reliability.md` records its campaigns.
//!
//! It runs `cargo +nightly fuzz run -s none -a <target> -- -max_total_time=S
//! -print_final_stats=1` from the repository root: the nightly toolchain (libFuzzer's
//! instrumentation needs it), no sanitizer, debug assertions and overflow checks on. The
//! corpus grows in `fuzz/corpus/<target>/` (only `seed-*` files are committed) and a crash
//! lands in `fuzz/artifacts/<target>/`.

use std::path::Path;
use std::process::Command;

use crate::workspace;

/// Options of `fuzz`.
#[derive(clap::Args)]
pub struct Args {
    /// The fuzz target (one of the `[[bin]]` names in `fuzz/Cargo.toml`).
    target: String,
    /// How long to fuzz, in seconds.
    #[arg(long, default_value_t = 60)]
    time: u32,
}

/// Runs the target; a crash (or a missing toolchain or runner) fails the command.
pub fn run(args: &Args) -> Result<(), String> {
    let fuzz_dir = workspace::root().join("fuzz");
    let targets = targets(&fuzz_dir)?;
    if !targets.contains(&args.target) {
        return Err(format!(
            "no fuzz target `{}`; the targets are: {}",
            args.target,
            targets.join(", ")
        ));
    }
    let installed = nightly_cargo()
        .args(["fuzz", "--version"])
        .output()
        .is_ok_and(|output| output.status.success());
    if !installed {
        return Err(
            "`cargo +nightly fuzz` is not available: it needs the nightly toolchain \
                    and `cargo install cargo-fuzz --locked`"
                .to_string(),
        );
    }
    let status = nightly_cargo()
        .current_dir(workspace::root())
        .args(["fuzz", "run", "-s", "none", "-a", &args.target, "--"])
        .arg(format!("-max_total_time={}", args.time))
        .arg("-print_final_stats=1")
        .status()
        .map_err(|error| format!("could not start cargo: {error}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "{} failed ({status}); the input is in {}",
            args.target,
            workspace::display(&fuzz_dir.join("artifacts").join(&args.target))
        ))
    }
}

/// `cargo +nightly`, free of the pinned toolchain this xtask runs under.
fn nightly_cargo() -> Command {
    let mut command = Command::new("cargo");
    command.arg("+nightly").env_remove("RUSTUP_TOOLCHAIN");
    command
}

/// The fuzz targets: the `[[bin]]` names of `fuzz/Cargo.toml`.
fn targets(fuzz_dir: &Path) -> Result<Vec<String>, String> {
    let manifest = fuzz_dir.join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest)
        .map_err(|error| format!("cannot read {}: {error}", workspace::display(&manifest)))?;
    Ok(bin_names(&text))
}

/// The `name` of every `[[bin]]` table in a Cargo manifest.
fn bin_names(manifest: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut in_bin = false;
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            in_bin = line == "[[bin]]";
        } else if in_bin
            && let Some(value) = line.strip_prefix("name").map(str::trim_start)
            && let Some(value) = value.strip_prefix('=')
        {
            names.push(value.trim().trim_matches('"').to_string());
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::{bin_names, targets};
    use crate::workspace;

    #[test]
    fn bin_names_come_from_bin_tables_only() {
        let manifest = "[package]\nname = \"ferry-fuzz\"\n\n[[bin]]\nname = \"a\"\npath = \"x\"\n\
                        [dependencies]\nname = \"not-a-bin\"\n[[bin]]\nname=\"b\"\n";
        assert_eq!(bin_names(manifest), ["a", "b"]);
    }

    #[test]
    fn every_fuzz_target_file_is_a_listed_target_and_back() {
        let fuzz_dir = workspace::root().join("fuzz");
        let mut listed = targets(&fuzz_dir).unwrap();
        let mut files: Vec<String> = std::fs::read_dir(fuzz_dir.join("fuzz_targets"))
            .unwrap()
            .map(|entry| {
                let path = entry.unwrap().path();
                path.file_stem().unwrap().to_string_lossy().into_owned()
            })
            .collect();
        listed.sort();
        files.sort();
        assert_eq!(listed, files);
        assert!(listed.contains(&"service_packet".to_string()));
    }
}
