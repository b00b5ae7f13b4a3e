//! `cargo xtask inspect` as a command: exit status and `--json` output.

use std::path::PathBuf;
use std::process::{Command, Output};

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../crates/core/tests/golden/v1.0")
}

fn golden_blobs() -> Vec<PathBuf> {
    let mut blobs: Vec<PathBuf> = std::fs::read_dir(golden_dir())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "bin"))
        .collect();
    blobs.sort();
    assert_eq!(blobs.len(), 3, "one golden blob per kind");
    blobs
}

fn inspect(args: &[&str], blobs: &[PathBuf]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xtask"))
        .arg("inspect")
        .args(args)
        .args(blobs)
        .output()
        .unwrap()
}

/// A damaged copy of the first golden blob in a temporary file, removed on drop.
struct Damaged(PathBuf);

impl Damaged {
    fn new(edit: impl Fn(&mut Vec<u8>)) -> Self {
        let mut blob = std::fs::read(&golden_blobs()[0]).unwrap();
        edit(&mut blob);
        let path = std::env::temp_dir().join(format!(
            "ferry-inspect-cli-{}-{}.bin",
            std::process::id(),
            blob.len()
        ));
        std::fs::write(&path, blob).unwrap();
        Self(path)
    }
}

impl Drop for Damaged {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn golden_blobs_exit_zero_and_json_parses() {
    let output = inspect(&["--json"], &golden_blobs());
    assert!(output.status.success(), "{output:?}");
    let reports: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let reports = reports.as_array().unwrap();
    assert_eq!(reports.len(), 3);
    assert!(
        reports
            .iter()
            .all(|r| r["accepted"] == true && r["checksum"]["verdict"] == "ok")
    );
}

#[test]
fn one_rejected_blob_fails_the_command_and_names_the_offset() {
    let truncated = Damaged::new(|blob| blob.truncate(blob.len() - 1));
    let mut blobs = golden_blobs();
    blobs.push(truncated.0.clone());

    let output = inspect(&[], &blobs);
    assert!(!output.status.success());
    let text = String::from_utf8(output.stdout).unwrap();
    assert_eq!(text.matches("verdict   accepted").count(), 3, "{text}");
    assert!(text.contains("REJECTED: LengthMismatch"), "{text}");
    assert!(text.contains("at byte offset 12"), "{text}");
    assert!(String::from_utf8_lossy(&output.stderr).contains("1 of 4 blobs rejected"));

    let output = inspect(&["--json"], &blobs);
    assert!(!output.status.success());
    let reports: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(reports[3]["rejection"]["offset"], 12);
    assert_eq!(
        reports[3]["rejection"]["status"]["name"],
        "STATUS_DATA_ERROR"
    );
}

#[test]
fn a_missing_file_is_an_error_not_a_report() {
    let output = inspect(&[], &[golden_dir().join("no-such-blob.bin")]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("cannot read"));
}
