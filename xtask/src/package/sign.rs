//! Test signing on Linux: a self-signed code-signing certificate made with `openssl`, and
//! Authenticode signing and verification of the image with `osslsigncode` (the Linux route
//! to a test-signed driver; `docs/windows.md` has the Windows one). A test certificate is
//! only trusted by a machine in test-signing mode that imported it: it is not a release
//! signature.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::workspace;

/// The tools, each with the Debian package that provides it.
const TOOLS: [(&str, &str); 2] = [("openssl", "openssl"), ("osslsigncode", "osslsigncode")];

/// The subject of the generated certificate.
const SUBJECT: &str = "/O=ferry project/CN=ferry test signing (not for release)";

/// Where the test key and certificate live, outside the package: the private key must never
/// ship. Kept across runs so a test machine that trusts the certificate keeps trusting new
/// packages.
pub fn signing_dir() -> PathBuf {
    workspace::output_dir().join("test-signing")
}

/// Fails with the apt command when a tool is missing.
pub fn check_tools() -> Result<(), String> {
    let missing: Vec<&str> = TOOLS
        .iter()
        .filter(|(tool, _)| Command::new(tool).arg("--version").output().is_err())
        .map(|(_, package)| *package)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(format!(
        "missing signing tools; install them (as root) with:\n  apt-get install -y --no-install-recommends {}",
        missing.join(" ")
    ))
}

/// The test key and certificate (PEM), made on first use.
pub fn test_certificate() -> Result<(PathBuf, PathBuf), String> {
    let dir = signing_dir();
    let key = dir.join("ferry-test.key.pem");
    let cert = dir.join("ferry-test.cert.pem");
    if key.exists() && cert.exists() {
        return Ok((key, cert));
    }
    std::fs::create_dir_all(&dir)
        .map_err(|e| format!("cannot create {}: {e}", workspace::display(&dir)))?;
    println!(
        "package: generating a test certificate in {}",
        workspace::display(&dir)
    );
    run(Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:3072", "-sha256", "-nodes"])
        .args(["-days", "3650", "-subj", SUBJECT])
        .args(["-addext", "extendedKeyUsage=codeSigning"])
        .args(["-addext", "keyUsage=critical,digitalSignature"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert))?;
    Ok((key, cert))
}

/// Signs `unsigned` into `signed` (SHA-256 Authenticode, no timestamp: offline, and a test
/// signature needs none).
pub fn sign(unsigned: &Path, signed: &Path, key: &Path, cert: &Path) -> Result<(), String> {
    // osslsigncode refuses to write over an existing output.
    if signed.exists() {
        std::fs::remove_file(signed)
            .map_err(|e| format!("cannot replace {}: {e}", workspace::display(signed)))?;
    }
    run(Command::new("osslsigncode")
        .args(["sign", "-h", "sha256", "-n", "ferry"])
        .arg("-certs")
        .arg(cert)
        .arg("-key")
        .arg(key)
        .arg("-in")
        .arg(unsigned)
        .arg("-out")
        .arg(signed))
}

/// Verifies the Authenticode signature of `image` against `cert` as the only trusted root.
pub fn verify(image: &Path, cert: &Path) -> Result<String, String> {
    let output = Command::new("osslsigncode")
        .arg("verify")
        .arg("-CAfile")
        .arg(cert)
        .arg("-in")
        .arg(image)
        .output()
        .map_err(|e| format!("cannot run osslsigncode: {e}"))?;
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    if output.status.success() {
        Ok(text)
    } else {
        Err(format!("osslsigncode verify failed:\n{text}"))
    }
}

fn run(command: &mut Command) -> Result<(), String> {
    let program = command.get_program().to_string_lossy().into_owned();
    let output = command
        .output()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{program} failed ({}):\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}
