//! `cargo xtask build-sys [--release] [--clippy]`: builds `ferry.sys` on Linux.
//!
//! The route is the one verified in `shared/reference/windows-build-on-linux.md`: the rustup
//! toolchains carry no Windows standard library and no `rust-src`, so the build uses Debian's
//! `rustc-web`/`cargo-web` with the matching `rust-web-src`, builds `core`/`alloc` for
//! `x86_64-pc-windows-msvc` with `-Zbuild-std` (allowed by `RUSTC_BOOTSTRAP=1`), and links with
//! `lld-link-22` as a native driver. Imports need no import library (`raw-dylib`). Missing
//! Debian packages are installed with apt when running as root (a fresh machine); otherwise
//! the command prints the apt command to run.
//!
//! Profiles (root `Cargo.toml`): `sys` (`--release`: `panic = "abort"`, LTO, one codegen
//! unit) and `sys-dev` (`panic = "abort"`). Cargo's output goes to `target/windows/`; the image
//! is copied to `target/ferry/ferry.sys` (with its `.pdb`, when the linker wrote one).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::workspace;

/// Options of `build-sys`.
#[derive(clap::Args)]
pub struct Args {
    /// Optimised image (profile `sys`: LTO, one codegen unit) instead of `sys-dev`.
    #[arg(long)]
    release: bool,
    /// First run clippy (warnings denied) over the driver, platform-wdk and core for the
    /// Windows target, with Debian's `rust-web-clippy`: the `cfg(target_os = "windows")` code
    /// is linted nowhere else.
    #[arg(long)]
    clippy: bool,
}

impl Args {
    /// Options for another command that needs the image (`package`).
    pub fn new(release: bool) -> Self {
        Self {
            release,
            clippy: false,
        }
    }
}

/// The Windows target the image is built for.
const TARGET: &str = "x86_64-pc-windows-msvc";
/// The driver package and the feature that adds the image-only items.
const DRIVER_PACKAGE: &str = "ferry-driver";
const IMAGE_FEATURE: &str = "kernel-image";
/// The file rustc writes for the driver's cdylib.
const CDYLIB_NAME: &str = "ferry_driver.dll";
/// Debian's linker.
const LLD_LINK: &str = "lld-link-22";

/// Flags for every crate of the Windows target (the driver, its dependencies and the rebuilt
/// `core`): link with lld-link, no dynamic CRT, and warnings as errors, because the
/// Windows-only code (`cfg(target_os = "windows")`) is compiled nowhere else: the host's
/// `cargo clippy` never sees it. (Cargo caps lints of the standard library's crates.)
const TARGET_RUSTFLAGS: &str =
    "-C linker-flavor=lld-link -C target-feature=+crt-static -D warnings";

/// Flags for the final link only: a native kernel driver (`/DRIVER`, subsystem NATIVE 10.0)
/// entered at `DriverEntry`, no default libraries (no CRT, no WDK libs), and `/RELEASE` so the
/// linker writes the PE checksum, which the loader checks for boot drivers and signing tools
/// expect.
const LINK_ARGS: [&str; 5] = [
    "/DRIVER",
    "/SUBSYSTEM:NATIVE,10.0",
    "/ENTRY:DriverEntry",
    "/NODEFAULTLIB",
    "/RELEASE",
];

/// What the Debian packages provide, and which package provides it.
const REQUIRED: [(&str, &str); 3] = [
    ("/usr/bin/rustc", "rustc-web"),
    ("/usr/bin/cargo", "cargo-web"),
    ("/usr/bin/lld-link-22", "lld-22"),
];
/// `rust-web-src` puts the standard library's sources here (under rustc's sysroot, `/usr`).
const RUST_SRC_LOCK: &str = "/usr/lib/rustlib/src/rust/library/Cargo.lock";

/// What `--clippy` needs besides [`REQUIRED`].
const CLIPPY_DRIVER: (&str, &str) = ("/usr/bin/clippy-driver", "rust-web-clippy");

/// The apt command that installs everything `build-sys` needs.
const APT_INSTALL: &str = "apt-get update && apt-get install -y --no-install-recommends \
     rustc-web cargo-web rust-web-src lld-22 rust-web-clippy";

/// For `sys-dev` only: unoptimised, the rebuilt `compiler_builtins` keeps calls to `fma` and
/// `fmaf` (which on MSVC targets come from the CRT, absent from a driver) in code that lld-link
/// rejects as undefined before discarding it as unused. Optimised, the calls are gone. Given
/// on the command line rather than in `Cargo.toml` because there every other cargo run would
/// warn that no package `compiler_builtins` exists.
const SYS_DEV_BUILTINS_CONFIG: &str = "profile.sys-dev.package.compiler_builtins.opt-level=3";

/// Environment variables that would make the Debian cargo use another toolchain or other
/// flags than the ones set here (rustup's and the outer cargo's).
const SCRUBBED_ENV: [&str; 9] = [
    "RUSTUP_TOOLCHAIN",
    "RUSTC_WRAPPER",
    "RUSTC_WORKSPACE_WRAPPER",
    "RUSTFLAGS",
    "CARGO_ENCODED_RUSTFLAGS",
    "CARGO_BUILD_RUSTFLAGS",
    "CARGO_BUILD_TARGET",
    "CARGO_TARGET_DIR",
    "CARGO_BUILD_TARGET_DIR",
];

/// Runs `build-sys`.
pub fn run(args: &Args) -> Result<(), String> {
    check_prerequisites(args.clippy)?;
    let target_dir = workspace::windows_target_dir();
    if args.clippy {
        clippy_windows_target(&workspace::root(), &target_dir)?;
    }
    let built = build(args.release, &[IMAGE_FEATURE], &[], &target_dir, true)
        .map_err(|failure| failure.message)?;
    let image = workspace::sys_image();
    copy_artifact(&built, &image)?;
    let pdb = built.with_extension("pdb");
    if pdb.is_file() {
        copy_artifact(&pdb, &image.with_extension("pdb"))?;
    }
    let size = std::fs::metadata(&image).map_or(0, |m| m.len());
    println!(
        "build-sys: wrote {} ({size} bytes)",
        workspace::display(&image)
    );
    Ok(())
}

/// A failed Windows-target build.
pub struct BuildFailure {
    /// What failed.
    pub message: String,
    /// What cargo printed on stderr (empty when it was not captured).
    pub stderr: String,
}

/// Builds the driver's cdylib for the Windows target with `features` (and `rustc_args` for
/// the driver crate) into `target_dir` and returns the path of the linked image.
/// `show_output`: cargo's progress goes to the terminal; otherwise its stderr is captured and
/// handed back on failure.
///
/// # Errors
///
/// A missing toolchain, or the build (compile or link) failed.
pub fn build(
    release: bool,
    features: &[&str],
    rustc_args: &[&str],
    target_dir: &Path,
    show_output: bool,
) -> Result<PathBuf, BuildFailure> {
    let failure = |message: String| BuildFailure {
        message,
        stderr: String::new(),
    };
    check_prerequisites(false).map_err(failure)?;
    // A custom profile's output directory has the profile's name.
    let profile = if release { "sys" } else { "sys-dev" };
    let root = workspace::root();

    let version = toolchain_command("/usr/bin/rustc")
        .arg("-V")
        .output()
        .map_err(|e| failure(format!("cannot run /usr/bin/rustc: {e}")))?;
    println!(
        "build-sys: toolchain {} (Debian rustc-web, /usr/bin)",
        String::from_utf8_lossy(&version.stdout).trim()
    );
    println!(
        "build-sys: profile {profile}, target {TARGET}, features {}",
        features.join(",")
    );

    let mut cargo = toolchain_command("/usr/bin/cargo");
    cargo
        .current_dir(&root)
        .args([
            "rustc",
            "-p",
            DRIVER_PACKAGE,
            "--lib",
            "--crate-type",
            "cdylib",
        ])
        .args(["--profile", profile, "--target", TARGET])
        .arg("--features")
        .arg(features.join(","));
    if !release {
        cargo.args(["--config", SYS_DEV_BUILTINS_CONFIG]);
    }
    cargo
        .arg("--target-dir")
        .arg(target_dir)
        .args([
            "-Zbuild-std=core,alloc",
            "-Zbuild-std-features=compiler-builtins-mem",
        ])
        .arg("--")
        .args(LINK_ARGS.iter().map(|flag| format!("-Clink-arg={flag}")))
        .args(rustc_args);
    let (status, stderr) = if show_output {
        let status = cargo
            .status()
            .map_err(|e| failure(format!("cannot run /usr/bin/cargo: {e}")))?;
        (status, String::new())
    } else {
        let output = cargo
            .output()
            .map_err(|e| failure(format!("cannot run /usr/bin/cargo: {e}")))?;
        (
            output.status,
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    if !status.success() {
        return Err(BuildFailure {
            message: format!("the Windows-target build failed ({status})"),
            stderr,
        });
    }
    Ok(output_dir(target_dir, release).join(CDYLIB_NAME))
}

/// Where the build of profile `sys` (`release`) or `sys-dev` leaves the driver's outputs.
pub fn output_dir(target_dir: &Path, release: bool) -> PathBuf {
    let profile = if release { "sys" } else { "sys-dev" };
    target_dir.join(TARGET).join(profile)
}

/// `cargo clippy` for the Windows target over the image's crates, with the kernel-image
/// feature on and warnings denied (the workspace lints apply, as on the host).
fn clippy_windows_target(root: &Path, target_dir: &Path) -> Result<(), String> {
    println!("build-sys: clippy for {TARGET} (Debian rust-web-clippy)");
    let status = toolchain_command("/usr/bin/cargo")
        .current_dir(root)
        .args(["clippy", "-p", DRIVER_PACKAGE])
        .args(["-p", "ferry-platform-wdk", "-p", "ferry-core"])
        .args(["--features", &format!("{DRIVER_PACKAGE}/{IMAGE_FEATURE}")])
        .args(["--target", TARGET])
        .arg("--target-dir")
        .arg(target_dir)
        .args(["-Zbuild-std=core,alloc", "--", "-D", "warnings"])
        .status()
        .map_err(|e| format!("cannot run /usr/bin/cargo clippy: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("clippy for {TARGET} found problems ({status})"))
    }
}

/// Copies one build artifact to ferry's output directory, creating the directory.
fn copy_artifact(from: &Path, to: &Path) -> Result<(), String> {
    if let Some(dir) = to.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", workspace::display(dir)))?;
    }
    std::fs::copy(from, to).map(drop).map_err(|e| {
        format!(
            "cannot copy {} to {}: {e}",
            workspace::display(from),
            workspace::display(to)
        )
    })
}

/// A command for the Debian toolchain: `/usr/bin` first on `PATH` (so `/usr/bin/cargo` runs
/// `/usr/bin/rustc`, not a rustup proxy), `RUSTC_BOOTSTRAP=1` for `-Zbuild-std`, lld-link as
/// the Windows linker, and nothing inherited that would override those.
fn toolchain_command(program: &str) -> Command {
    let mut command = Command::new(program);
    for name in SCRUBBED_ENV {
        command.env_remove(name);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut paths = vec![PathBuf::from("/usr/bin")];
    paths.extend(std::env::split_paths(&path));
    let joined = std::env::join_paths(paths).unwrap_or(path);
    command
        .env("PATH", joined)
        .env("RUSTC", "/usr/bin/rustc")
        .env("RUSTC_BOOTSTRAP", "1")
        .env("CARGO_TARGET_X86_64_PC_WINDOWS_MSVC_LINKER", LLD_LINK)
        .env(
            "CARGO_TARGET_X86_64_PC_WINDOWS_MSVC_RUSTFLAGS",
            TARGET_RUSTFLAGS,
        );
    command
}

/// Installs the missing Debian packages with apt when running as root (a fresh CI machine or
/// container), and fails with the apt command to run otherwise or when apt fails.
fn check_prerequisites(clippy: bool) -> Result<(), String> {
    let missing = missing_files(|path| Path::new(path).exists(), clippy);
    if missing.is_empty() {
        return Ok(());
    }
    let packages = packages_of(&missing);
    let listed = || {
        missing
            .iter()
            .map(|(path, package)| format!("{path} (package {package})"))
            .collect::<Vec<_>>()
            .join("\n  ")
    };
    if !running_as_root() {
        return Err(format!(
            "the Debian toolchain is not installed; missing:\n  {}\ninstall it (as root) with:\n  {APT_INSTALL}",
            listed()
        ));
    }
    println!(
        "build-sys: installing {} with apt-get (Debian's toolchain for the Windows target)",
        packages.join(" ")
    );
    apt_get(&["update", "-qq"])?;
    let mut install = vec!["install", "-y", "-qq", "--no-install-recommends"];
    install.extend(packages.iter().map(String::as_str));
    apt_get(&install)?;
    let still_missing = missing_files(|path| Path::new(path).exists(), clippy);
    if still_missing.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "apt-get installed {} but these are still missing: {still_missing:?}",
            packages.join(" ")
        ))
    }
}

/// Runs `apt-get` non-interactively.
fn apt_get(args: &[&str]) -> Result<(), String> {
    let status = Command::new("apt-get")
        .args(args)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()
        .map_err(|e| format!("cannot run apt-get: {e}; install by hand with:\n  {APT_INSTALL}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "apt-get {} failed ({status}); install by hand with:\n  {APT_INSTALL}",
            args.join(" ")
        ))
    }
}

/// Whether this process runs as root (`id -u` prints 0), the only case in which `build-sys`
/// installs packages itself.
fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| out.status.success() && out.stdout.trim_ascii() == b"0")
}

/// The required files that `exists` does not find, each with the package that provides it
/// (with `clippy`, also clippy's driver).
fn missing_files(exists: impl Fn(&str) -> bool, clippy: bool) -> Vec<(&'static str, &'static str)> {
    REQUIRED
        .iter()
        .chain([&(RUST_SRC_LOCK, "rust-web-src")])
        .chain(clippy.then_some(&CLIPPY_DRIVER))
        .filter(|(path, _)| !exists(path))
        .copied()
        .collect()
}

/// The packages that provide `missing`, each once, in order.
fn packages_of(missing: &[(&str, &'static str)]) -> Vec<String> {
    let mut packages: Vec<String> = Vec::new();
    for (_, package) in missing {
        if !packages.iter().any(|known| known == package) {
            packages.push((*package).to_owned());
        }
    }
    packages
}

#[cfg(test)]
mod tests {
    use super::{APT_INSTALL, missing_files, packages_of};

    #[test]
    fn nothing_is_missing_when_every_file_exists() {
        assert!(missing_files(|_| true, true).is_empty());
    }

    #[test]
    fn each_missing_file_names_its_package_and_the_apt_command_installs_it() {
        let present = |path: &str| path.ends_with("rustc") || path.ends_with("cargo");
        let missing = missing_files(present, false);
        assert_eq!(missing.len(), 2, "{missing:?}");
        assert_eq!(missing[0], ("/usr/bin/lld-link-22", "lld-22"));
        assert_eq!(missing[1].1, "rust-web-src");
        let with_clippy = missing_files(present, true);
        assert_eq!(with_clippy.len(), 3, "{with_clippy:?}");
        assert_eq!(with_clippy[2].1, "rust-web-clippy");
        assert_eq!(
            packages_of(&with_clippy),
            ["lld-22", "rust-web-src", "rust-web-clippy"]
        );
        // Two files of one package install it once.
        assert_eq!(packages_of(&[("a", "p"), ("b", "p")]), ["p"]);
        for package in [
            "rustc-web",
            "cargo-web",
            "rust-web-src",
            "lld-22",
            "rust-web-clippy",
        ] {
            assert!(APT_INSTALL.contains(package), "{package}");
        }
    }
}
