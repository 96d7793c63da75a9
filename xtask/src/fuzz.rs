//! `cargo xtask fuzz`: runs the libFuzzer targets of `fuzz/` for a bounded time each, on the
//! nightly toolchain (cargo-fuzz needs it), installing `cargo-fuzz` when it is missing.
//!
//! Each target starts from its committed seeds (`fuzz/corpus/<target>/`, read only) and a
//! working corpus under `fuzz/target/corpus/<target>/` that libFuzzer grows, so a run never
//! adds files to the tree. A crash fails the task; its input is in `fuzz/artifacts/<target>/`.

pub mod seeds;

use std::ffi::OsString;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, ExitCode, Stdio};

use crate::ts::root;

/// Every target in `fuzz/Cargo.toml`, in the order they run.
pub const TARGETS: [&str; 3] = ["client_frame", "server_frame", "token"];

/// Seconds per target when `--seconds` is not given: enough to replay the seeds and explore a
/// little, short enough to run before every push.
const DEFAULT_SECONDS: u64 = 20;

/// Options for `cargo fuzz` that the build and every run share, so the runs reuse the build.
/// Debug assertions also turn on overflow checks in the code under test.
const BUILD_FLAGS: [&str; 2] = ["--release", "--debug-assertions"];

const USAGE: &str = "usage: cargo xtask fuzz [--seconds N] [target...] [-- libfuzzer-args...]";

/// What libFuzzer reported for one target.
struct Outcome {
    target: &'static str,
    executions: Option<u64>,
    per_second: Option<u64>,
    /// Where libFuzzer wrote the input that failed, if one did.
    artifact: Option<String>,
    passed: bool,
}

/// Runs the task with its arguments (everything after `fuzz`).
pub fn run(args: Vec<OsString>) -> ExitCode {
    let (seconds, targets, extra) = match parse(args) {
        Ok(parsed) => parsed,
        Err(problem) => {
            eprintln!("xtask: {problem}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    if let Err(problem) = install_cargo_fuzz() {
        eprintln!("xtask: {problem}");
        return ExitCode::FAILURE;
    }
    match seeds::check_fresh() {
        Ok(()) => {}
        // Stale seeds still fuzz; a doc edit should not fail CI here, only ask for a refresh.
        Err(problem) => eprintln!("xtask: warning: {problem}"),
    }

    // Built before any run, so a build failure is not taken for a crash. `cargo fuzz build`
    // takes one target at a time; the dependencies are built with the first.
    for target in &targets {
        let mut build = nightly_fuzz();
        build.arg("build").args(BUILD_FLAGS).arg(target);
        let status = crate::run(build);
        if status != ExitCode::SUCCESS {
            return status;
        }
    }

    let outcomes: Vec<Outcome> = targets
        .iter()
        .map(|target| fuzz(target, seconds, &extra))
        .collect();

    eprintln!("\nxtask: fuzzing summary ({seconds} s per target)");
    eprintln!(
        "{:<14} {:>14} {:>10}  result",
        "target", "executions", "exec/s"
    );
    let show = |n: Option<u64>| n.map_or_else(|| "?".to_owned(), |n| n.to_string());
    for outcome in &outcomes {
        let result = match (&outcome.artifact, outcome.passed) {
            (_, true) => "ok".to_owned(),
            (Some(artifact), false) => format!("FAILED: {artifact}"),
            (None, false) => "FAILED (see the output above)".to_owned(),
        };
        eprintln!(
            "{:<14} {:>14} {:>10}  {result}",
            outcome.target,
            show(outcome.executions),
            show(outcome.per_second),
        );
    }
    if outcomes.iter().all(|o| o.passed) {
        ExitCode::SUCCESS
    } else {
        eprintln!(
            "xtask: replay a failure with `cargo +nightly fuzz run -a <target> <artifact>`; \
             fuzz/README.md says how to keep it as a regression test"
        );
        ExitCode::FAILURE
    }
}

/// `[--seconds N] [target...] [-- libfuzzer-args...]`; no target means all of them.
fn parse(args: Vec<OsString>) -> Result<(u64, Vec<&'static str>, Vec<OsString>), String> {
    let mut seconds = DEFAULT_SECONDS;
    let mut targets = Vec::new();
    let mut args = args.into_iter();
    let mut extra = Vec::new();
    while let Some(arg) = args.next() {
        match arg.to_str() {
            Some("--") => {
                extra.extend(args.by_ref());
            }
            Some("--seconds") => {
                let value = args.next().ok_or("--seconds needs a number")?;
                seconds = value
                    .to_str()
                    .and_then(|v| v.parse().ok())
                    .ok_or_else(|| format!("--seconds {value:?} is not a whole number"))?;
            }
            Some(name) => match TARGETS.iter().find(|t| **t == name) {
                Some(target) => targets.push(*target),
                None => {
                    return Err(format!(
                        "unknown target `{name}`; the targets are {}",
                        TARGETS.join(", ")
                    ));
                }
            },
            None => return Err(format!("{arg:?} is not UTF-8")),
        }
    }
    if targets.is_empty() {
        targets = TARGETS.to_vec();
    }
    Ok((seconds, targets, extra))
}

/// `cargo +nightly fuzz`, run from the repository root. Through rustup's `cargo` on `PATH`, not
/// `$CARGO`: that is the pinned stable toolchain's own binary, which knows no `+nightly`.
fn nightly_fuzz() -> Command {
    let mut cargo = Command::new("cargo");
    cargo.args(["+nightly", "fuzz"]).current_dir(root());
    // Set by the `cargo run` that started xtask; left in place it would pin cargo-fuzz's inner
    // builds to the stable toolchain.
    cargo.env_remove("RUSTUP_TOOLCHAIN").env_remove("CARGO");
    cargo
}

/// Installs `cargo-fuzz` unless `cargo fuzz` already runs.
fn install_cargo_fuzz() -> Result<(), String> {
    let present = Command::new("cargo")
        .args(["fuzz", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if present {
        return Ok(());
    }
    let mut install = crate::cargo();
    install.args(["install", "cargo-fuzz", "--locked"]);
    if crate::run(install) == ExitCode::SUCCESS {
        Ok(())
    } else {
        Err("`cargo install cargo-fuzz --locked` failed".into())
    }
}

/// Fuzzes `target` for `seconds`, echoing libFuzzer's output and reading its final stats.
fn fuzz(target: &'static str, seconds: u64, extra: &[OsString]) -> Outcome {
    let work = Path::new("fuzz/target/corpus").join(target);
    let seeds = Path::new("fuzz/corpus").join(target);
    let mut outcome = Outcome {
        target,
        executions: None,
        per_second: None,
        artifact: None,
        passed: false,
    };
    if let Err(err) = std::fs::create_dir_all(root().join(&work)) {
        eprintln!("xtask: cannot create {}: {err}", work.display());
        return outcome;
    }

    let mut cmd = nightly_fuzz();
    // libFuzzer writes new inputs to the first corpus directory only.
    cmd.arg("run")
        .args(BUILD_FLAGS)
        .arg(target)
        .arg(&work)
        .arg(&seeds)
        .arg("--")
        .arg(format!("-max_total_time={seconds}"))
        .arg("-print_final_stats=1")
        .args(extra)
        .stderr(Stdio::piped());
    eprintln!("xtask: fuzzing `{target}` for {seconds} s");
    let mut child = match cmd.spawn() {
        Ok(child) => child,
        Err(err) => {
            eprintln!("xtask: cannot run cargo fuzz: {err}");
            return outcome;
        }
    };
    if let Some(stderr) = child.stderr.take() {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("{line}");
            read_stat(&line, &mut outcome);
        }
    }
    outcome.passed = child.wait().is_ok_and(|status| status.success());
    outcome
}

/// Picks what the summary needs out of one line of libFuzzer's output.
fn read_stat(line: &str, outcome: &mut Outcome) {
    let number = |value: &str| value.trim().parse().ok();
    if let Some(value) = line.strip_prefix("stat::number_of_executed_units:") {
        outcome.executions = number(value);
    } else if let Some(value) = line.strip_prefix("stat::average_exec_per_sec:") {
        outcome.per_second = number(value);
    } else if let Some((_, path)) = line.split_once("Test unit written to ") {
        outcome.artifact = Some(path.trim().to_owned());
    }
}
