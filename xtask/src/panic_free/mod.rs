//! `cargo xtask check-panic-free [--canary]`: shows that no panic path survives in the
//! optimised `ferry.sys`.
//!
//! The method is a link check. The driver's `panic-check` feature swaps the panic handler for
//! one that calls `ferry_panic_path_survives_optimisation`, a symbol nothing defines, and the
//! image is built as `build-sys --release` builds it (LTO, one codegen unit, `panic =
//! "abort"`), into its own target directory. lld-link reports an undefined symbol for every
//! reference left in its input, even in code it would later discard (`/OPT:REF` does not hide
//! it; `build_sys` met the same behaviour with `fma`), so:
//!
//! - the link succeeds iff LLVM removed the handler, i.e. nothing reachable from the image's
//!   roots (the exported `DriverEntry`, and through it every callback it registers) calls
//!   `core::panicking::*`: no panic path survives;
//! - the link fails naming the symbol iff at least one does.
//!
//! `--canary` builds the negative control (`panic-canary`: one slice index with an unknown
//! bound, kept by `#[used]`) and succeeds only if the check then reports a surviving path, so
//! a check that cannot fail is caught. `docs/reliability.md` says what this proves and what
//! it does not.

mod callgraph;

use std::fmt::Write as _;

use callgraph::PanicSite;

use crate::build_sys;
use crate::workspace;

/// The symbol the checking panic handler calls (`crates/driver/src/image.rs`).
const MARKER: &str = "ferry_panic_path_survives_optimisation";

/// Options of `check-panic-free`.
#[derive(clap::Args)]
pub struct Args {
    /// Build the negative control (a deliberate panic path) and require the check to fail.
    #[arg(long)]
    canary: bool,
    /// Accept panic sites in functions whose name starts with this (repeatable). The link
    /// then fails as it must, and the verdict rests on the call-graph walk: every site it
    /// finds must be allowed.
    #[arg(long, value_name = "FUNCTION_PREFIX")]
    allow: Vec<String>,
}

/// What one checking build showed.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    /// The image linked: no panic path survives.
    NoPanicPath,
    /// The link failed on the marker: a panic path survives. The lines of the linker's
    /// message that name where the reference comes from.
    PanicPath(Vec<String>),
}

/// Runs `check-panic-free`.
pub fn run(args: &Args) -> Result<(), String> {
    let features: &[&str] = if args.canary {
        &["panic-canary"]
    } else {
        &["panic-check"]
    };
    let target_dir = workspace::root().join("target").join("windows-panic-check");
    // `--emit=asm` keeps the post-LTO assembly next to the image, to explain a failure.
    let outcome = build_sys::build(
        build_sys::toolchain::Toolchain::for_this_host(true),
        true,
        features,
        &["--emit=asm,link"],
        &target_dir,
        false,
    );
    let asm_path = build_sys::output_dir(&target_dir, true)
        .join("deps")
        .join("ferry_driver.s");
    let verdict = match outcome {
        Ok(_) => Verdict::NoPanicPath,
        Err(failure) => match classify(&failure.stderr) {
            Some(verdict) => verdict,
            None => {
                return Err(format!(
                    "{} for a reason other than the panic marker:\n{}",
                    failure.message,
                    tail(&failure.stderr, 40)
                ));
            }
        },
    };
    let Verdict::PanicPath(link_lines) = verdict else {
        if args.canary {
            return Err(
                "the image with a deliberate panic path linked: the check cannot \
                        fail, so it proves nothing"
                    .into(),
            );
        }
        println!(
            "check-panic-free: the optimised image links with a panic handler that calls an \
             undefined symbol: no panic path survives optimisation"
        );
        return Ok(());
    };
    let asm = std::fs::read_to_string(&asm_path).map_err(|e| {
        format!(
            "a panic path survives ({}), and there is no assembly at {} to say where: {e}",
            link_lines.join(" "),
            workspace::display(&asm_path)
        )
    })?;
    let sites = callgraph::CallGraph::parse(&asm).panic_sites();
    println!("check-panic-free: the link failed on the marker: a panic path survives");
    println!("{}", link_lines.join("\n"));
    println!(
        "panic sites (functions outside core calling into core's panicking code), from {}:",
        workspace::display(&asm_path)
    );
    println!("{}", describe(&sites));
    if sites.is_empty() {
        return Err("the call graph shows no panic site, so the failure is unexplained".into());
    }
    if args.canary {
        return if sites.iter().any(|s| s.function.contains("panic_canary")) {
            println!(
                "check-panic-free --canary: the deliberate panic path was found, as it should be"
            );
            Ok(())
        } else {
            Err("the link failed but the call graph did not find the deliberate panic".into())
        };
    }
    let unexpected: Vec<&PanicSite> = sites
        .iter()
        .filter(|s| {
            !args
                .allow
                .iter()
                .any(|a| s.function.starts_with(a.as_str()))
        })
        .collect();
    if unexpected.is_empty() {
        println!(
            "check-panic-free: every panic site is on the allow list ({}); the call-graph walk \
             found no other",
            args.allow.join(", ")
        );
        Ok(())
    } else {
        Err(format!(
            "{} panic site(s) not on the allow list: {}",
            unexpected.len(),
            unexpected
                .iter()
                .map(|s| s.function.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))
    }
}

/// The sites, one block each: the function, the `core` calls with their source lines, and a
/// path from an export.
fn describe(sites: &[PanicSite]) -> String {
    let mut out = String::new();
    for site in sites {
        let _ = write!(out, "  {}", site.function);
        for (callee, at) in &site.calls {
            let _ = write!(
                out,
                "\n      calls {callee} at {}",
                at.as_deref().unwrap_or("?")
            );
        }
        match &site.reached_from_export {
            Some(path) => {
                let _ = write!(out, "\n      reached: {}", path.join(" -> "));
            }
            None => out.push_str("\n      reached: not from an export (kept by #[used]?)"),
        }
        out.push('\n');
    }
    out
}

/// The verdict a failed build's stderr holds: a panic path if the linker named the marker,
/// `None` if the build failed for another reason.
fn classify(stderr: &str) -> Option<Verdict> {
    let undefined = stderr
        .lines()
        .any(|line| line.contains("undefined symbol") && line.contains(MARKER));
    if !undefined {
        return None;
    }
    let lines = stderr
        .lines()
        .filter(|line| line.contains(MARKER) || line.contains(">>> referenced by"))
        .map(|line| line.trim().to_string())
        .collect();
    Some(Verdict::PanicPath(lines))
}

/// The last `count` lines of `text`.
fn tail(text: &str, count: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(count)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::{Verdict, classify};

    #[test]
    fn an_undefined_marker_is_a_panic_path_with_its_references() {
        let stderr = "error: linking with `lld-link-22` failed\n  = note: lld-link: error: \
                      undefined symbol: ferry_panic_path_survives_optimisation\n          \
                      >>> referenced by ferry_driver.abc-cgu.0.rcgu.o:(rust_begin_unwind)\n\
                      error: aborting due to 1 previous error\n";
        assert_eq!(
            classify(stderr),
            Some(Verdict::PanicPath(vec![
                "= note: lld-link: error: undefined symbol: \
                 ferry_panic_path_survives_optimisation"
                    .into(),
                ">>> referenced by ferry_driver.abc-cgu.0.rcgu.o:(rust_begin_unwind)".into(),
            ]))
        );
    }

    #[test]
    fn other_failures_are_not_verdicts() {
        assert_eq!(classify("error[E0425]: cannot find value `x`"), None);
        assert_eq!(classify("lld-link: error: undefined symbol: fma"), None);
        assert_eq!(classify(""), None);
    }
}
