//! Where things are in the repository.

use std::path::{Path, PathBuf};

/// The repository root (the directory holding the workspace `Cargo.toml`).
pub fn root() -> PathBuf {
    // xtask's manifest is `<root>/xtask/Cargo.toml`.
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// The separate target directory for Windows-target builds, so that the Debian toolchain's
/// artifacts never mix with the rustup toolchain's in `target/`.
pub fn windows_target_dir() -> PathBuf {
    root().join("target").join("windows")
}

/// Where ferry's finished artifacts go: the image (and its `.pdb` when the linker writes one),
/// the package and the test-signing material. Intermediate build output stays in
/// [`windows_target_dir`].
pub fn output_dir() -> PathBuf {
    root().join("target").join("ferry")
}

/// Where `build-sys` leaves the image and `check-sys` looks for it by default.
pub fn sys_image() -> PathBuf {
    output_dir().join("ferry.sys")
}

/// `path` relative to the repository root when it is inside it, for shorter messages.
pub fn display(path: &Path) -> String {
    let root = root();
    path.strip_prefix(&root)
        .unwrap_or(path)
        .display()
        .to_string()
}
