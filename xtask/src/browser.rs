//! Provisioning shared with the browser tests: Debian packages through apt.

use std::process::{Command, ExitCode};
use std::sync::Once;

/// Makes sure what the browser tests need is installed. (The browser tests are not written
/// yet; this installs nothing.)
pub fn provision() -> Result<(), String> {
    Ok(())
}

/// Runs the browser tests. (None exist yet.)
pub fn test() -> ExitCode {
    ExitCode::SUCCESS
}

/// `apt-get install -y` of `packages`, after one `apt-get update` per run.
pub fn apt_install(packages: &[&str]) -> Result<(), String> {
    static UPDATE: Once = Once::new();
    let mut updated = Ok(());
    UPDATE.call_once(|| updated = apt(&["update"]));
    updated?;
    let mut args = vec!["install", "-y", "--no-install-recommends"];
    args.extend_from_slice(packages);
    apt(&args)
}

fn apt(args: &[&str]) -> Result<(), String> {
    let status = Command::new("apt-get")
        .args(args)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()
        .map_err(|e| format!("cannot run apt-get: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("apt-get {} failed: {status}", args.join(" ")))
    }
}
