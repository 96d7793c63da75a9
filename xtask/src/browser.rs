//! The browser tests: the chat demo driven in a headless Chromium (Debian's `chromium`) by
//! Playwright (`playwright-core` from npm, so no browser download), from `browser/`. What is
//! on the PATH is used; what is missing is installed with apt-get when this runs as root, and
//! named (with the command that installs it) when it does not.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::Once;

use crate::ts;

/// The programs the browser tests run, each with the Debian package it comes in.
const PROGRAMS: [(&str, &str); 3] = [("chromium", "chromium"), ("node", "nodejs"), ("npm", "npm")];

/// Makes sure what the browser tests need is installed: Chromium, node and npm, and
/// `browser/`'s npm packages (from its lock file).
pub fn provision() -> Result<(), String> {
    let dir = browser_dir();
    let missing: Vec<&str> = PROGRAMS
        .iter()
        .filter(|(program, _)| !crate::redis::which(program))
        .map(|(_, package)| *package)
        .collect();
    let npm = format!("`npm ci` in {}", dir.display());
    install_missing(&missing, "the browser tests", Some(&npm))?;
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
        .env("OMNI_CHROMIUM", chromium());
    crate::run(node)
}

/// Where Playwright finds the browser (it is told, not left to download one): the
/// `chromium` on the PATH.
fn chromium() -> PathBuf {
    crate::redis::locate("chromium").unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"))
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

/// Installs the Debian `packages` (those whose programs are not on the PATH) with apt-get when
/// this runs as root. Otherwise apt-get could only fail, after a screen of its own errors:
/// the error says what to install instead. `after` is what xtask then does itself (as the
/// user), named so that nothing it runs comes as a surprise.
pub fn install_missing(
    packages: &[&str],
    for_what: &str,
    after: Option<&str>,
) -> Result<(), String> {
    install_with(
        packages,
        for_what,
        after,
        is_root() && crate::redis::which("apt-get"),
        apt_install,
    )
}

/// [`install_missing`] with who runs it and how packages are installed given.
fn install_with(
    packages: &[&str],
    for_what: &str,
    after: Option<&str>,
    can_install: bool,
    install: impl FnOnce(&[&str]) -> Result<(), String>,
) -> Result<(), String> {
    if packages.is_empty() {
        return Ok(());
    }
    if can_install {
        eprintln!(
            "xtask: installing {} for {for_what} with apt-get",
            packages.join(" ")
        );
        return install(packages);
    }
    let after = after
        .map(|then| format!(", then {then}"))
        .unwrap_or_default();
    Err(format!(
        "{for_what} need programs that are not on the PATH, and xtask installs them only as \
         root, with apt-get: run `sudo apt-get install --no-install-recommends {}`{after}, or \
         put the same programs on the PATH",
        packages.join(" ")
    ))
}

/// Whether this process runs as root (its effective user id is 0), from `/proc`: the one
/// case where apt-get can install anything.
fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|status| {
        status
            .lines()
            .find_map(|line| line.strip_prefix("Uid:"))
            .and_then(|ids| ids.split_whitespace().nth(1))
            == Some("0")
    })
}

/// `apt-get install -y` of `packages`, after one `apt-get update` per run.
fn apt_install(packages: &[&str]) -> Result<(), String> {
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

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use super::*;

    /// What [`install_with`] does: its result, and the packages it asked to install.
    fn outcome(packages: &[&str], can_install: bool) -> (Result<(), String>, Vec<String>) {
        let installed = RefCell::new(Vec::new());
        let result = install_with(
            packages,
            "the browser tests",
            Some("`npm ci` in browser/"),
            can_install,
            |p| {
                installed
                    .borrow_mut()
                    .extend(p.iter().map(|p| p.to_string()));
                Ok(())
            },
        );
        (result, installed.into_inner())
    }

    #[test]
    fn a_user_who_cannot_install_is_told_what_to_install_and_nothing_runs() {
        let (result, installed) = outcome(&["chromium", "nodejs", "npm"], false);
        assert!(
            installed.is_empty(),
            "apt-get ran without root: {installed:?}"
        );
        let problem = result.unwrap_err();
        assert!(
            problem.contains("apt-get install --no-install-recommends chromium nodejs npm")
                && problem.contains("`npm ci` in browser/"),
            "{problem}"
        );
        assert_eq!(problem.lines().count(), 1, "one sentence: {problem}");
    }

    #[test]
    fn root_installs_what_is_missing_and_nothing_is_installed_when_all_is_there() {
        let (result, installed) = outcome(&["chromium"], true);
        assert_eq!((result, installed), (Ok(()), vec!["chromium".to_owned()]));
        for can_install in [true, false] {
            let (result, installed) = outcome(&[], can_install);
            assert_eq!((result, installed), (Ok(()), Vec::<String>::new()));
        }
    }
}
