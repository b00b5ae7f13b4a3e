//! Which compiler builds `ferry.sys`, and how `build-sys` makes sure it is there.
//!
//! - **Linux** ([`Toolchain::Debian`], the route verified in
//!   `shared/reference/windows-build-on-linux.md` and run by CI): rustup's toolchains carry no
//!   Windows standard library and no `rust-src`, so the build uses Debian's `rustc-web` /
//!   `cargo-web` with the matching `rust-web-src` and links with `lld-link-22`. Missing
//!   packages are installed with apt when running as root (a fresh machine); otherwise the
//!   error names the apt command.
//! - **Windows** ([`Toolchain::Native`], written from the toolchain's documentation and never
//!   run: there is no Windows machine here): the rustup toolchain of `rust-toolchain.toml`
//!   with its `rust-src` component, linking with the MSVC linker that rustc finds itself;
//!   with the WDK installed, the driver's `wdk-sys` feature is turned on, so its compile-time
//!   checks of ferry's declarations against the WDK's run (`docs/windows.md`).
//!
//! Both build with `RUSTC_BOOTSTRAP=1` for `-Zbuild-std`, and with the same target flags.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The environment variable that holds the target's flags (the host crates, build scripts and
/// proc macros, keep theirs).
const TARGET_RUSTFLAGS_VAR: &str = "CARGO_TARGET_X86_64_PC_WINDOWS_MSVC_RUSTFLAGS";

/// Flags for every crate of the Windows target (the driver, its dependencies and the rebuilt
/// `core`): no dynamic CRT, and warnings as errors, because the Windows-only code
/// (`cfg(target_os = "windows")`) is compiled nowhere else: the host's `cargo clippy` never
/// sees it. (Cargo caps lints of the standard library's crates.)
const TARGET_RUSTFLAGS: &str = "-C target-feature=+crt-static -D warnings";

/// Debian's linker.
const LLD_LINK: &str = "lld-link-22";

/// What the Debian packages provide, and which package provides it.
const REQUIRED: [(&str, &str); 3] = [
    ("/usr/bin/rustc", "rustc-web"),
    ("/usr/bin/cargo", "cargo-web"),
    ("/usr/bin/lld-link-22", "lld-22"),
];
/// `rust-web-src` puts the standard library's sources here (under rustc's sysroot, `/usr`).
const RUST_SRC_LOCK: &str = "/usr/lib/rustlib/src/rust/library/Cargo.lock";
/// Where `rust-src` puts the standard library's lock file, under any sysroot.
const SYSROOT_SRC_LOCK: [&str; 5] = ["lib", "rustlib", "src", "rust", "library/Cargo.lock"];

/// What `--clippy` needs besides [`REQUIRED`].
const CLIPPY_DRIVER: (&str, &str) = ("/usr/bin/clippy-driver", "rust-web-clippy");

/// The apt command that installs everything `build-sys` needs.
pub const APT_INSTALL: &str = "apt-get update && apt-get install -y --no-install-recommends \
     rustc-web cargo-web rust-web-src lld-22 rust-web-clippy";

/// Environment variables that would make the build use another toolchain or other flags than
/// the ones set here (rustup's and the outer cargo's). The native toolchain keeps
/// `RUSTUP_TOOLCHAIN`: there rustup's toolchain is the one wanted.
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

/// The compiler that builds the image on this host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Toolchain {
    /// Debian's `rustc-web` and `lld-link-22` (Linux).
    Debian,
    /// rustup's toolchain and the MSVC linker (Windows); `wdk`: the WDK is installed.
    Native {
        /// Whether the WDK was found, which turns on the `wdk-sys` feature.
        wdk: bool,
    },
}

impl Toolchain {
    /// The toolchain for the host `build-sys` runs on; `use_wdk: false` ignores an installed
    /// WDK (`--no-wdk-sys`).
    pub fn for_this_host(use_wdk: bool) -> Self {
        if cfg!(windows) {
            Self::Native {
                wdk: use_wdk && wdk_installed(),
            }
        } else {
            Self::Debian
        }
    }

    /// Features of the driver this toolchain adds to the ones asked for.
    pub fn extra_features(self) -> &'static [&'static str] {
        match self {
            Self::Native { wdk: true } => &["wdk-sys"],
            Self::Native { wdk: false } | Self::Debian => &[],
        }
    }

    /// What the log calls this toolchain.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Debian => "Debian rustc-web, /usr/bin",
            Self::Native { wdk: true } => "rustup, MSVC linker, WDK found (wdk-sys on)",
            Self::Native { wdk: false } => "rustup, MSVC linker, no WDK (wdk-sys off)",
        }
    }

    /// Makes sure the toolchain is installed (with `clippy`: its clippy too), installing
    /// Debian's packages when it can.
    ///
    /// # Errors
    ///
    /// What is missing and the command that installs it.
    pub fn ensure_installed(self, clippy: bool) -> Result<(), String> {
        match self {
            Self::Debian => ensure_debian_packages(clippy),
            Self::Native { .. } => ensure_rust_src(),
        }
    }

    /// A command running `tool` (`cargo` or `rustc`) of this toolchain, with the environment
    /// the Windows-target build needs.
    pub fn command(self, tool: &str) -> Command {
        let program = match self {
            Self::Debian => PathBuf::from("/usr/bin").join(tool),
            Self::Native { .. } => PathBuf::from(tool),
        };
        let mut command = Command::new(program);
        for (name, value) in self.environment(std::env::var_os("PATH").unwrap_or_default()) {
            match value {
                Some(value) => command.env(name, value),
                None => command.env_remove(name),
            };
        }
        command
    }

    /// The environment changes of [`command`](Self::command), given the current `PATH`:
    /// `None` removes a variable.
    fn environment(self, path: OsString) -> Vec<(&'static str, Option<OsString>)> {
        let scrubbed = SCRUBBED_ENV
            .iter()
            .filter(|name| self == Self::Debian || **name != "RUSTUP_TOOLCHAIN")
            .map(|name| (*name, None));
        let mut environment: Vec<_> = scrubbed.collect();
        environment.push(("RUSTC_BOOTSTRAP", Some("1".into())));
        match self {
            Self::Debian => {
                // `/usr/bin` first, so `/usr/bin/cargo` runs `/usr/bin/rustc`, not a rustup
                // proxy; lld-link as the linker, told so by its flavour.
                let mut paths = vec![PathBuf::from("/usr/bin")];
                paths.extend(std::env::split_paths(&path));
                let joined = std::env::join_paths(paths).unwrap_or(path);
                environment.push(("PATH", Some(joined)));
                environment.push(("RUSTC", Some("/usr/bin/rustc".into())));
                environment.push((
                    "CARGO_TARGET_X86_64_PC_WINDOWS_MSVC_LINKER",
                    Some(LLD_LINK.into()),
                ));
                environment.push((
                    TARGET_RUSTFLAGS_VAR,
                    Some(format!("-C linker-flavor=lld-link {TARGET_RUSTFLAGS}").into()),
                ));
            }
            Self::Native { .. } => {
                // rustc finds the MSVC linker itself (Visual Studio Build Tools).
                environment.push((TARGET_RUSTFLAGS_VAR, Some(TARGET_RUSTFLAGS.into())));
            }
        }
        environment
    }
}

/// Whether the WDK is installed: the variable its build environments set, or the kernel-mode
/// headers under the default Windows Kits directory.
fn wdk_installed() -> bool {
    if std::env::var_os("WDKContentRoot").is_some() {
        return true;
    }
    let includes = Path::new(r"C:\Program Files (x86)\Windows Kits\10\Include");
    std::fs::read_dir(includes).is_ok_and(|versions| {
        versions
            .flatten()
            .any(|version| version.path().join("km").is_dir())
    })
}

/// The native toolchain needs `rust-src` for `-Zbuild-std`.
fn ensure_rust_src() -> Result<(), String> {
    let sysroot = Command::new("rustc")
        .args(["--print", "sysroot"])
        .output()
        .map_err(|e| format!("cannot run rustc: {e}"))?;
    let sysroot = PathBuf::from(String::from_utf8_lossy(&sysroot.stdout).trim());
    let lock = SYSROOT_SRC_LOCK
        .iter()
        .fold(sysroot, |path, part| path.join(part));
    if lock.is_file() {
        Ok(())
    } else {
        Err(
            "the standard library's sources are missing: run `rustup component add rust-src`"
                .into(),
        )
    }
}

/// Installs the missing Debian packages with apt when running as root (a fresh CI machine or
/// container), and fails with the apt command to run otherwise or when apt fails.
fn ensure_debian_packages(clippy: bool) -> Result<(), String> {
    let missing = missing_files(|path| Path::new(path).exists(), clippy);
    if missing.is_empty() {
        return Ok(());
    }
    let packages = packages_of(&missing);
    if !running_as_root() {
        let listed: Vec<String> = missing
            .iter()
            .map(|(path, package)| format!("{path} (package {package})"))
            .collect();
        return Err(format!(
            "the Debian toolchain is not installed; missing:\n  {}\ninstall it (as root) with:\n  {APT_INSTALL}",
            listed.join("\n  ")
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
    use super::{APT_INSTALL, TARGET_RUSTFLAGS_VAR, Toolchain, missing_files, packages_of};
    use std::ffi::OsString;

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

    fn value(
        environment: &[(&'static str, Option<OsString>)],
        name: &str,
    ) -> Option<Option<String>> {
        environment
            .iter()
            .rev()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_ref().map(|v| v.to_string_lossy().into_owned()))
    }

    #[test]
    fn debian_runs_its_own_rustc_with_lld_link_and_drops_rustups_choice() {
        let environment = Toolchain::Debian.environment("/home/u/.cargo/bin".into());
        assert_eq!(
            value(&environment, "PATH"),
            Some(Some("/usr/bin:/home/u/.cargo/bin".into()))
        );
        assert_eq!(value(&environment, "RUSTUP_TOOLCHAIN"), Some(None));
        assert_eq!(value(&environment, "RUSTFLAGS"), Some(None));
        assert_eq!(
            value(&environment, "RUSTC"),
            Some(Some("/usr/bin/rustc".into()))
        );
        let flags = value(&environment, TARGET_RUSTFLAGS_VAR).flatten().unwrap();
        assert!(flags.starts_with("-C linker-flavor=lld-link"), "{flags}");
        assert!(flags.contains("+crt-static") && flags.contains("-D warnings"));
        assert_eq!(
            value(&environment, "RUSTC_BOOTSTRAP"),
            Some(Some("1".into()))
        );
        assert!(Toolchain::Debian.extra_features().is_empty());
    }

    #[test]
    fn native_keeps_rustups_toolchain_and_the_default_linker() {
        for wdk in [false, true] {
            let toolchain = Toolchain::Native { wdk };
            let environment = toolchain.environment("C:\\bin".into());
            assert_eq!(value(&environment, "RUSTUP_TOOLCHAIN"), None, "kept");
            assert_eq!(value(&environment, "RUSTFLAGS"), Some(None));
            assert_eq!(value(&environment, "PATH"), None, "unchanged");
            assert_eq!(value(&environment, "RUSTC"), None);
            assert_eq!(
                value(&environment, "CARGO_TARGET_X86_64_PC_WINDOWS_MSVC_LINKER"),
                None
            );
            let flags = value(&environment, TARGET_RUSTFLAGS_VAR).flatten().unwrap();
            assert!(!flags.contains("linker-flavor"), "{flags}");
            assert!(flags.contains("+crt-static") && flags.contains("-D warnings"));
            assert_eq!(
                value(&environment, "RUSTC_BOOTSTRAP"),
                Some(Some("1".into()))
            );
            assert_eq!(toolchain.extra_features() == ["wdk-sys"], wdk);
        }
    }

    #[test]
    fn linux_builds_with_debian() {
        if cfg!(target_os = "linux") {
            assert_eq!(Toolchain::for_this_host(true), Toolchain::Debian);
        }
    }
}
