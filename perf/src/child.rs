//! Child processes with a deadline on everything: a hung server or client costs a timeout,
//! never the whole run.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

/// A child whose stdout is read line by line on a thread of its own, so every read can time
/// out. Closing its stdin is how it is told to stop.
pub struct Child {
    process: std::process::Child,
    lines: Receiver<String>,
    what: String,
}

impl Child {
    /// Runs `prefix... <this binary> args...`; `prefix` is e.g. `taskset -c 0` or valgrind.
    pub fn spawn(prefix: &[String], args: &[String]) -> Child {
        let exe = std::env::current_exe().expect("the path of this binary");
        let mut words: Vec<String> = prefix.to_vec();
        words.push(exe.display().to_string());
        words.extend(args.iter().cloned());
        Child::program(&words, &[])
    }

    /// Runs another program, `words[0]`, with `env` added to this process's environment.
    pub fn program(words: &[String], env: &[(&str, &str)]) -> Child {
        let what = words.join(" ");
        let mut process = Command::new(&words[0])
            .args(&words[1..])
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
        let stdout = process.stdout.take().unwrap();
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Child {
            process,
            lines,
            what,
        }
    }

    /// Writes one line to the child's stdin.
    pub fn send(&mut self, line: &str) {
        let stdin = self.process.stdin.as_mut().expect("stdin is open");
        writeln!(stdin, "{line}")
            .and_then(|()| stdin.flush())
            .unwrap_or_else(|e| panic!("{}: cannot write to it: {e}", self.what));
    }

    /// Writes one line to the child's stdin; `false` if the child is gone.
    pub fn try_send(&mut self, line: &str) -> bool {
        let Some(stdin) = self.process.stdin.as_mut() else {
            return false;
        };
        writeln!(stdin, "{line}")
            .and_then(|()| stdin.flush())
            .is_ok()
    }

    pub fn pid(&self) -> u32 {
        self.process.id()
    }

    /// The next line of output, or a panic naming the child after `timeout`.
    pub fn line(&mut self, timeout: Duration) -> String {
        match self.lines.recv_timeout(timeout) {
            Ok(line) => line,
            Err(RecvTimeoutError::Timeout) => {
                self.kill();
                panic!("{}: no output within {timeout:?}", self.what)
            }
            Err(RecvTimeoutError::Disconnected) => {
                let status = self.process.wait();
                panic!("{}: exited early ({status:?})", self.what)
            }
        }
    }

    /// The next line, or `None` after `timeout` or once the child's output has ended: for a
    /// driver that reports what it has rather than give up.
    pub fn try_line(&mut self, timeout: Duration) -> Option<String> {
        self.lines.recv_timeout(timeout).ok()
    }

    /// The lines already printed and not yet read, without waiting.
    pub fn ready_lines(&mut self) -> Vec<String> {
        self.lines.try_iter().collect()
    }

    /// Whether the process is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.process.try_wait(), Ok(None))
    }

    /// The next line, which must start with `prefix`; returns the rest.
    pub fn expect(&mut self, prefix: &str, timeout: Duration) -> String {
        let line = self.line(timeout);
        match line.strip_prefix(prefix) {
            Some(rest) => rest.trim().to_string(),
            None => panic!("{}: expected `{prefix}…`, got `{line}`", self.what),
        }
    }

    /// Closes stdin and waits up to `timeout` for a clean exit; kills the child after that.
    pub fn finish(mut self, timeout: Duration) -> ExitStatus {
        drop(self.process.stdin.take());
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.process.try_wait().expect("waitpid") {
                return status;
            }
            if Instant::now() > deadline {
                eprintln!("{}: still running after {timeout:?}, killed", self.what);
                self.kill();
                return self.process.wait().expect("waitpid");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL, and the process is reaped.
    pub fn kill(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        // Only reached with the child still running when a panic unwinds past it.
        if let Ok(None) = self.process.try_wait() {
            self.kill();
        }
    }
}

/// Waits for stdin to reach its end (the driver dropped its end of the pipe), on a thread
/// that blocks on it, so a server stops without a signal and callgrind can write its profile.
pub fn stdin_closed() -> tokio::sync::oneshot::Receiver<()> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink());
        let _ = tx.send(());
    });
    rx
}

/// Lines on stdin, for servers that take commands from the driver; ends with stdin.
pub fn stdin_lines() -> tokio::sync::mpsc::UnboundedReceiver<String> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

/// The process's resident set in bytes, from `/proc/PID/statm`.
pub fn rss_bytes(pid: u32) -> u64 {
    let statm = std::fs::read_to_string(format!("/proc/{pid}/statm")).unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

/// The last commit that touched omni's own sources (this harness's commits do not count).
pub fn omni_commit() -> String {
    let args = [
        "log",
        "-1",
        "--format=%h",
        "--",
        "../src",
        "../omni-runtime",
        "../omni-macros",
    ];
    command_output("git", &args).unwrap_or_else(|| "?".into())
}

pub fn today() -> String {
    command_output("date", &["+%Y-%m-%d"]).unwrap_or_else(|| "?".into())
}

fn command_output(program: &str, args: &[&str]) -> Option<String> {
    let output = Command::new(program).args(args).output().ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_string())
}
