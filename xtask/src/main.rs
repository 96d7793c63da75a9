//! Project automation, run as `cargo xtask <task>` (the alias is in `.cargo/config.toml`).
//!
//! `cargo xtask test` is the one command that tests everything. A test that needs an outside
//! tool gets a provisioning step here, one function per tool, called from [`test()`] before
//! `cargo test`, so that a clean clone needs nothing installed by hand.

mod browser;
mod fuzz;
mod redis;
mod ts;

use std::ffi::OsString;
use std::process::{Command, ExitCode};

const USAGE: &str = "\
usage: cargo xtask <task> [args...]

tasks:
  test [args...]   start a redis-server (installing it when missing), run
                   `cargo test --workspace --all-features [args...]`, then the Redis tests
                   (the Redis Cluster ones too, when redis-cli is on the PATH) and the
                   browser tests
  ts [--check] [--strict]
                   write the chat demo's TypeScript declarations (--check: fail if stale;
                   --strict: fail if a field type is declared as unknown)
  fuzz [--seconds N] [target...] [-- libfuzzer-args...]
                   run the fuzz targets of fuzz/ (client_frame, server_frame, token; default all)
                   for N seconds each (default 20) with `cargo +nightly fuzz`, installing
                   cargo-fuzz when missing; fails on a crash, prints executions per target
  fuzz-seeds [--check]
                   write the fuzz seed corpus from docs/PROTOCOL.md's examples and signed
                   tokens (--check: fail if stale)
  help             print this message";

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let task = args.next();
    let rest: Vec<OsString> = args.collect();
    match task.as_ref().and_then(|t| t.to_str()) {
        Some("test") => test(rest),
        Some("ts") => ts::run(rest),
        Some("fuzz") => fuzz::run(rest),
        Some("fuzz-seeds") => fuzz::seeds::run(rest),
        Some("help" | "-h" | "--help") => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        Some(other) => usage_error(&format!("unknown task `{other}`")),
        None if task.is_some() => usage_error("the task name is not UTF-8"),
        None => usage_error("no task given"),
    }
}

fn usage_error(problem: &str) -> ExitCode {
    eprintln!("xtask: {problem}\n\n{USAGE}");
    ExitCode::from(2)
}

/// Tests the whole workspace with every feature; `args` go to `cargo test` (filters, `--`, …).
/// The Redis tests are `#[ignore]`d in a plain `cargo test`; here they run against a real
/// redis-server that this task starts and stops.
fn test(args: Vec<OsString>) -> ExitCode {
    let server = match redis::Server::start() {
        Ok(server) => server,
        Err(problem) => {
            eprintln!("xtask: cannot start redis-server: {problem}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(problem) = browser::provision() {
        eprintln!("xtask: cannot provision the browser tests: {problem}");
        return ExitCode::FAILURE;
    }

    let mut all = cargo();
    all.args(["test", "--workspace", "--all-features"])
        .args(&args)
        .env(redis::URL_VAR, server.url());
    let status = run(all);
    if status != ExitCode::SUCCESS {
        return status;
    }

    let mut with_redis = cargo();
    with_redis.args([
        "test",
        "--all-features",
        "--test",
        "redis",
        "--test",
        "redis_metrics",
        "--test",
        "evolution",
        "--test",
        "session_store",
    ]);
    // The cluster tests start their own redis-server processes and make them a cluster with
    // redis-cli (Debian's redis-server brings it along).
    if redis::which("redis-cli") {
        with_redis
            .args(["--test", "redis_cluster", "--test", "soak"])
            .env(redis::CLUSTER_VAR, "1");
    } else {
        eprintln!("xtask: redis-cli is not on the PATH: the Redis Cluster tests are skipped");
    }
    with_redis
        .args(["--", "--ignored"])
        .env(redis::URL_VAR, server.url());
    let status = run(with_redis);
    if status != ExitCode::SUCCESS {
        return status;
    }
    browser::test()
}

/// The cargo that runs this task (`$CARGO`), so the toolchain pinned in `rust-toolchain.toml`
/// is used throughout.
fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

/// Runs `cmd` with this process's stdin, stdout and stderr, after printing it, and exits with
/// its status.
fn run(mut cmd: Command) -> ExitCode {
    let line = std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|part| part.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ");
    eprintln!("xtask: running `{line}`");
    match cmd.status() {
        // An exit status that does not fit (or a death by signal) still has to read as failure.
        Ok(status) => match status.code() {
            Some(0) => ExitCode::SUCCESS,
            Some(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
            None => ExitCode::FAILURE,
        },
        Err(err) => {
            eprintln!("xtask: cannot run `{line}`: {err}");
            ExitCode::FAILURE
        }
    }
}
