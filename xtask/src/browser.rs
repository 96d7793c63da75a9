//! The browser tests: the chat demo driven in a headless Chromium (Debian's `chromium`) by
//! Playwright (`playwright-core` from npm, so no browser download), from `browser/`.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::Once;

use crate::ts;

/// Where Playwright finds the browser (it is told, not left to download one).
const CHROMIUM: &str = "/usr/bin/chromium";

/// Makes sure what the browser tests need is installed: Chromium, and `browser/`'s npm
/// packages (from its lock file).
pub fn provision() -> Result<(), String> {
    if !Path::new(CHROMIUM).exists() {
        apt_install(&["chromium"])?;
    }
    let dir = browser_dir();
    if !dir.join("node_modules").exists() {
        let install = if dir.join("package-lock.json").exists() {
            "ci"
        } else {
            "install"
        };
        let mut npm = Command::new("npm");
        npm.args([install, "--no-audit", "--no-fund"])
            .current_dir(&dir);
        if crate::run(npm) != ExitCode::SUCCESS {
            return Err(format!("npm {install} failed in {}", dir.display()));
        }
    }
    Ok(())
}

/// Builds the chat demo and the MessagePack vectors program, checks the checked-in
/// TypeScript declarations are fresh and type-check with `omni.d.ts`, then runs the browser
/// tests with node's test runner.
pub fn test() -> ExitCode {
    let mut build = crate::cargo();
    build
        .args(["build", "--example", "chat", "--example", "chat_ts"])
        .args(["--example", "msgpack_vectors"])
        .current_dir(ts::root());
    let status = crate::run(build);
    if status != ExitCode::SUCCESS {
        return status;
    }
    if let Err(problem) = ts::check_fresh() {
        eprintln!("xtask: {problem}");
        return ExitCode::FAILURE;
    }

    let dir = browser_dir();
    let mut tsc = Command::new("npx");
    tsc.args([
        "--no-install",
        "tsc",
        "--noEmit",
        "--strict",
        "-p",
        "typecheck",
    ])
    .current_dir(&dir);
    let status = crate::run(tsc);
    if status != ExitCode::SUCCESS {
        return status;
    }

    let tests = match test_files(&dir.join("tests")) {
        Ok(tests) => tests,
        Err(problem) => {
            eprintln!("xtask: {problem}");
            return ExitCode::FAILURE;
        }
    };
    let mut node = Command::new("node");
    node.arg("--test")
        .args(&tests)
        .current_dir(&dir)
        .env("OMNI_CHAT_BIN", example("chat"))
        .env("OMNI_MSGPACK_VECTORS_BIN", example("msgpack_vectors"))
        .env("OMNI_CHROMIUM", CHROMIUM);
    crate::run(node)
}

fn browser_dir() -> PathBuf {
    ts::root().join("browser")
}

/// The example `name` that `cargo build --example {name}` made: the chat demo, and the
/// program that prints the MessagePack vectors omni.js's codec is tested against.
fn example(name: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target"));
    ts::root().join(target).join("debug/examples").join(name)
}

/// `browser/tests/*.test.mjs`, in name order (node 20's runner takes files, not globs).
fn test_files(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| {
            path.file_name()
                .and_then(OsStr::to_str)
                .is_some_and(|name| name.ends_with(".test.mjs"))
        })
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(format!("no *.test.mjs files in {}", dir.display()));
    }
    Ok(files)
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
