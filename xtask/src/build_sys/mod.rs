//! `cargo xtask build-sys [--release] [--clippy] [--no-wdk-sys]`: builds `ferry.sys`.
//!
//! On Linux with Debian's `rustc-web` and `lld-link-22` (installed with apt when missing), on
//! Windows with the rustup toolchain (never run here): see [`toolchain`]. Either way the
//! driver's cdylib is built for `x86_64-pc-windows-msvc` with `-Zbuild-std` (core and alloc
//! rebuilt with the image's profile, `RUSTC_BOOTSTRAP=1`) and linked as a native driver.
//! Imports need no import library (`raw-dylib`).
//!
//! Profiles (root `Cargo.toml`): `sys` (`--release`: `panic = "abort"`, LTO, one codegen
//! unit) and `sys-dev` (`panic = "abort"`). Cargo's output goes to `target/windows/`; the image
//! is copied to `target/ferry/ferry.sys` (with its `.pdb`, when the linker wrote one).

pub mod toolchain;

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::workspace;
use toolchain::Toolchain;

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
    /// On Windows, build without the `wdk-sys` feature even when the WDK is installed.
    #[arg(long)]
    no_wdk_sys: bool,
}

impl Args {
    /// Options for another command that needs the image (`package`).
    pub fn new(release: bool) -> Self {
        Self {
            release,
            clippy: false,
            no_wdk_sys: false,
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

/// For `sys-dev` only: unoptimised, the rebuilt `compiler_builtins` keeps calls to `fma` and
/// `fmaf` (which on MSVC targets come from the CRT, absent from a driver) in code that lld-link
/// rejects as undefined before discarding it as unused. Optimised, the calls are gone. Given
/// on the command line rather than in `Cargo.toml` because there every other cargo run would
/// warn that no package `compiler_builtins` exists.
const SYS_DEV_BUILTINS_CONFIG: &str = "profile.sys-dev.package.compiler_builtins.opt-level=3";

/// Runs `build-sys`.
pub fn run(args: &Args) -> Result<(), String> {
    let toolchain = Toolchain::for_this_host(!args.no_wdk_sys);
    toolchain.ensure_installed(args.clippy)?;
    let target_dir = workspace::windows_target_dir();
    if args.clippy {
        clippy_windows_target(toolchain, &workspace::root(), &target_dir)?;
    }
    let built = build(
        toolchain,
        args.release,
        &[IMAGE_FEATURE],
        &[],
        &target_dir,
        true,
    )
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
    toolchain: Toolchain,
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
    toolchain.ensure_installed(false).map_err(failure)?;
    let version = toolchain
        .command("rustc")
        .arg("-V")
        .output()
        .map_err(|e| failure(format!("cannot run rustc: {e}")))?;
    println!(
        "build-sys: toolchain {} ({})",
        String::from_utf8_lossy(&version.stdout).trim(),
        toolchain.describe()
    );
    let features: Vec<&str> = features
        .iter()
        .chain(toolchain.extra_features())
        .copied()
        .collect();
    println!(
        "build-sys: profile {}, target {TARGET}, features {}",
        profile_name(release),
        features.join(",")
    );

    let mut cargo = toolchain.command("cargo");
    cargo
        .current_dir(workspace::root())
        .args(cargo_rustc_args(release, &features, target_dir, rustc_args));
    let (status, stderr) = if show_output {
        let status = cargo
            .status()
            .map_err(|e| failure(format!("cannot run cargo: {e}")))?;
        (status, String::new())
    } else {
        let output = cargo
            .output()
            .map_err(|e| failure(format!("cannot run cargo: {e}")))?;
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

/// The arguments of the `cargo rustc` that builds and links the image.
fn cargo_rustc_args(
    release: bool,
    features: &[&str],
    target_dir: &Path,
    rustc_args: &[&str],
) -> Vec<OsString> {
    let mut args: Vec<OsString> = [
        "rustc",
        "-p",
        DRIVER_PACKAGE,
        "--lib",
        "--crate-type",
        "cdylib",
        "--profile",
        profile_name(release),
        "--target",
        TARGET,
        "--features",
    ]
    .map(OsString::from)
    .into();
    args.push(features.join(",").into());
    if !release {
        args.extend(["--config", SYS_DEV_BUILTINS_CONFIG].map(OsString::from));
    }
    args.push("--target-dir".into());
    args.push(target_dir.into());
    args.extend(
        [
            "-Zbuild-std=core,alloc",
            "-Zbuild-std-features=compiler-builtins-mem",
            "--",
        ]
        .map(OsString::from),
    );
    args.extend(
        LINK_ARGS
            .iter()
            .map(|flag| format!("-Clink-arg={flag}").into()),
    );
    args.extend(rustc_args.iter().map(OsString::from));
    args
}

/// The cargo profile: `sys` (`release`) or `sys-dev`.
fn profile_name(release: bool) -> &'static str {
    if release { "sys" } else { "sys-dev" }
}

/// Where the build of profile `sys` (`release`) or `sys-dev` leaves the driver's outputs.
pub fn output_dir(target_dir: &Path, release: bool) -> PathBuf {
    target_dir.join(TARGET).join(profile_name(release))
}

/// `cargo clippy` for the Windows target over the image's crates, with the kernel-image
/// feature on and warnings denied (the workspace lints apply, as on the host).
fn clippy_windows_target(
    toolchain: Toolchain,
    root: &Path,
    target_dir: &Path,
) -> Result<(), String> {
    println!("build-sys: clippy for {TARGET} ({})", toolchain.describe());
    let status = toolchain
        .command("cargo")
        .current_dir(root)
        .args(["clippy", "-p", DRIVER_PACKAGE])
        .args(["-p", "ferry-platform-wdk", "-p", "ferry-core"])
        .args(["--features", &format!("{DRIVER_PACKAGE}/{IMAGE_FEATURE}")])
        .args(["--target", TARGET])
        .arg("--target-dir")
        .arg(target_dir)
        .args(["-Zbuild-std=core,alloc", "--", "-D", "warnings"])
        .status()
        .map_err(|e| format!("cannot run cargo clippy: {e}"))?;
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

#[cfg(test)]
mod tests {
    use super::{LINK_ARGS, cargo_rustc_args};
    use std::path::Path;

    fn args(release: bool) -> Vec<String> {
        cargo_rustc_args(
            release,
            &["kernel-image", "wdk-sys"],
            Path::new("target/windows"),
            &["--emit=asm"],
        )
        .into_iter()
        .map(|arg| arg.into_string().unwrap())
        .collect()
    }

    #[test]
    fn the_image_is_the_drivers_cdylib_linked_as_a_native_driver() {
        let release = args(true);
        let after = |flag: &str| {
            let at = release.iter().position(|a| a == flag).unwrap();
            release[at + 1].clone()
        };
        assert_eq!(after("-p"), "ferry-driver");
        assert_eq!(after("--crate-type"), "cdylib");
        assert_eq!(after("--profile"), "sys");
        assert_eq!(after("--target"), "x86_64-pc-windows-msvc");
        assert_eq!(after("--features"), "kernel-image,wdk-sys");
        assert_eq!(after("--target-dir"), "target/windows");
        assert!(release.contains(&"-Zbuild-std=core,alloc".to_owned()));
        // Everything after `--` goes to rustc for the driver crate only: the link flags,
        // then the caller's.
        let rustc = &release[release.iter().position(|a| a == "--").unwrap() + 1..];
        assert_eq!(rustc.len(), LINK_ARGS.len() + 1);
        assert!(rustc.contains(&"-Clink-arg=/DRIVER".to_owned()));
        assert!(rustc.contains(&"-Clink-arg=/ENTRY:DriverEntry".to_owned()));
        assert_eq!(rustc.last().unwrap(), "--emit=asm");
        assert!(
            !release
                .iter()
                .any(|a| a.contains("compiler_builtins.opt-level"))
        );
    }

    #[test]
    fn the_unoptimised_image_optimises_the_rebuilt_compiler_builtins() {
        let dev = args(false);
        assert!(dev.contains(&"sys-dev".to_owned()));
        let at = dev.iter().position(|a| a == "--config").unwrap();
        assert!(dev[at + 1].contains("compiler_builtins.opt-level=3"));
        assert!(at < dev.iter().position(|a| a == "--").unwrap());
    }
}
