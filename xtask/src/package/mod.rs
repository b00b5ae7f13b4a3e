//! `cargo xtask package [--release] [--out DIR] [--verify]`: the driver package, on Linux as
//! far as Linux can go.
//!
//! 1. Builds `ferry.sys` with `build-sys` (cargo rebuilds nothing when it is up to date).
//! 2. Stamps `crates/driver/ferry.inx` into `ferry.inf`: `DriverVer` from the workspace
//!    version and today's UTC date (`SOURCE_DATE_EPOCH` overrides the date), `$ARCH$` =
//!    amd64 — what `stampinf` does on Windows.
//! 3. Makes (once) a self-signed test certificate and signs the image with `osslsigncode`.
//! 4. Writes the package (default `target/ferry/package/`): `ferry.sys` (signed),
//!    `ferry.inf`, `ferry-test.cer` (the certificate, PEM; the key stays in
//!    `target/ferry/test-signing/`) and `README.txt`.
//!
//! **No catalog.** The INF names `ferry.cat`, but it is not produced here: a catalog is
//! made by `inf2cat` and signed by `signtool`, Windows-only tools of the WDK with no Linux
//! equivalent (the catalog format hashes files as Windows' CryptCAT API does). Test-signing
//! mode loads the embedded-signed `ferry.sys` without it; installing through the INF
//! (right-click Install, `InstallHinfSection`) needs it (see `docs/windows.md`).
//!
//! `--verify` then re-checks the package (`--verify --no-build` checks an existing one): `check-sys`'s PE checks on the signed image, the
//! signature against the test certificate (`osslsigncode verify -CAfile`), and the INF
//! (parses; WFP callout class; the service is a demand-start kernel driver depending on BFE;
//! every file it copies is in the package).

mod inf;
mod sign;

use std::path::{Path, PathBuf};

use crate::{build_sys, check_sys, workspace};

use inf::{Date, Inf};

/// Options of `package`.
#[derive(clap::Args)]
pub struct Args {
    /// Package the optimised image (build-sys --release).
    #[arg(long)]
    release: bool,
    /// The package directory (default: target/ferry/package).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// After packaging, verify the package: PE checks, signature, INF.
    #[arg(long)]
    verify: bool,
    /// With --verify: only verify the package already in the output directory (no build,
    /// no signing), for example a copy received from elsewhere.
    #[arg(long, requires = "verify")]
    no_build: bool,
}

/// The package's files.
const IMAGE: &str = "ferry.sys";
const INF: &str = "ferry.inf";
const CERTIFICATE: &str = "ferry-test.cer";
const README: &str = "README.txt";
/// Named by the INF, not produced on Linux.
const CATALOG: &str = "ferry.cat";

/// Why there is no catalog, printed and written into the package's README.
const NO_CATALOG: &str = "ferry.cat (named by ferry.inf) is NOT produced on Linux: a catalog is \
made by inf2cat and signed by signtool, Windows-only WDK tools with no Linux equivalent. \
Test-signing mode loads the embedded-signed ferry.sys without it; to install through the INF, \
run inf2cat and signtool on Windows (docs/windows.md).";

/// Runs `package`.
pub fn run(args: &Args) -> Result<(), String> {
    sign::check_tools()?;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| workspace::output_dir().join("package"));
    if args.no_build {
        return verify(&out);
    }
    build_sys::run(&build_sys::Args::new(args.release))?;
    std::fs::create_dir_all(&out)
        .map_err(|e| format!("cannot create {}: {e}", workspace::display(&out)))?;

    let inf_text = stamped_inf()?;
    write(&out.join(INF), inf_text.as_bytes())?;

    let (key, cert) = sign::test_certificate()?;
    sign::sign(&workspace::sys_image(), &out.join(IMAGE), &key, &cert)?;
    std::fs::copy(&cert, out.join(CERTIFICATE))
        .map_err(|e| format!("cannot copy the certificate: {e}"))?;
    write(&out.join(README), readme().as_bytes())?;
    // A catalog left from elsewhere would not match this package.
    let _ = std::fs::remove_file(out.join(CATALOG));

    println!("package: {}", workspace::display(&out));
    for name in [IMAGE, INF, CERTIFICATE, README] {
        let size = std::fs::metadata(out.join(name)).map_or(0, |m| m.len());
        println!("  {name:<16} {size:>8} bytes");
    }
    println!("package: {NO_CATALOG}");
    if args.verify {
        verify(&out)?;
    }
    Ok(())
}

/// The INF template stamped with the workspace version and today's date.
fn stamped_inf() -> Result<String, String> {
    let template_path = workspace::root().join(inf::TEMPLATE);
    let template = std::fs::read_to_string(&template_path)
        .map_err(|e| format!("cannot read {}: {e}", inf::TEMPLATE))?;
    // xtask's version is the workspace's (`version.workspace = true`).
    let version = inf::driver_version(env!("CARGO_PKG_VERSION"))?;
    let seconds = match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(value) => value
            .parse::<i64>()
            .map_err(|_| format!("SOURCE_DATE_EPOCH={value} is not a number of seconds"))?,
        Err(_) => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX)),
    };
    inf::stamp(&template, &version, Date::from_unix_seconds(seconds))
}

/// Re-checks the package in `dir`.
fn verify(dir: &Path) -> Result<(), String> {
    let mut failures = Vec::new();
    println!("package --verify: {}", workspace::display(dir));

    let image_path = dir.join(IMAGE);
    match std::fs::read(&image_path) {
        Ok(image) => match check_sys::check_image(&image) {
            Ok(checks) => {
                for check in checks.iter().filter(|c| !c.passed) {
                    failures.push(format!("PE {}: {}", check.name, check.detail));
                }
                println!(
                    "  {}  PE checks ({} of {} passed)",
                    mark(checks.iter().all(|c| c.passed)),
                    checks.iter().filter(|c| c.passed).count(),
                    checks.len()
                );
            }
            Err(e) => failures.push(format!("{IMAGE}: {e}")),
        },
        Err(e) => failures.push(format!("cannot read {IMAGE}: {e}")),
    }

    match sign::verify(&image_path, &dir.join(CERTIFICATE)) {
        Ok(_) => println!("  {}  signature verifies against {CERTIFICATE}", mark(true)),
        Err(e) => {
            println!("  {}  signature", mark(false));
            failures.push(e);
        }
    }

    match std::fs::read_to_string(dir.join(INF)).map_err(|e| e.to_string()) {
        Ok(text) => match Inf::parse(&text) {
            Ok(parsed) => {
                let problems = inf::check(&parsed, |name| dir.join(name).is_file());
                println!(
                    "  {}  {INF} parses; class, service and files checked{}",
                    mark(problems.is_empty()),
                    parsed
                        .value("Version", "DriverVer")
                        .map(|v| format!(" (DriverVer {v})"))
                        .unwrap_or_default()
                );
                failures.extend(problems.into_iter().map(|p| format!("{INF}: {p}")));
            }
            Err(e) => failures.push(format!("{INF} does not parse: {e}")),
        },
        Err(e) => failures.push(format!("cannot read {INF}: {e}")),
    }
    println!("  n/a   {CATALOG}: not produced on Linux (see above)");

    if failures.is_empty() {
        println!("package --verify: the package is complete and consistent");
        Ok(())
    } else {
        Err(format!("verification failed:\n  {}", failures.join("\n  ")))
    }
}

fn mark(passed: bool) -> &'static str {
    if passed { "ok  " } else { "FAIL" }
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), String> {
    std::fs::write(path, bytes)
        .map_err(|e| format!("cannot write {}: {e}", workspace::display(path)))
}

fn readme() -> String {
    format!(
        "ferry driver package (test-signed; not for release)\n\
         \n\
         {IMAGE}           the driver, Authenticode-signed with the test certificate\n\
         {INF}           installs ferry as a demand-start kernel service (WFP callout class)\n\
         {CERTIFICATE}      the test certificate (PEM); import it into the Root and\n\
         \x20                   TrustedPublisher stores of a machine in test-signing mode\n\
         \n\
         {NO_CATALOG}\n\
         \n\
         Installing, test-signing mode and debugging: docs/windows.md in the ferry repository.\n"
    )
}
