//! `cargo xtask ts`: writes the chat demo's TypeScript declarations, generated from its
//! protocol enum, to `examples/chat/static/protocol.d.ts`; `--check` fails when the
//! checked-in file differs from what the enum generates now.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Where the declarations are checked in, from the workspace root.
const OUTPUT: &str = "examples/chat/static/protocol.d.ts";

/// The workspace root (xtask lives one level below it).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask is inside the workspace")
        .to_path_buf()
}

/// Runs the task: `args` is empty (write the file) or `--check`.
pub fn run(args: Vec<OsString>) -> ExitCode {
    let check = match args.iter().map(|a| a.to_str()).collect::<Vec<_>>()[..] {
        [] => false,
        [Some("--check")] => true,
        _ => {
            eprintln!("xtask: usage: cargo xtask ts [--check]");
            return ExitCode::from(2);
        }
    };
    let result = if check { check_fresh() } else { write() };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(problem) => {
            eprintln!("xtask: {problem}");
            ExitCode::FAILURE
        }
    }
}

/// Fails when the checked-in declarations are not what the protocol enum generates.
pub fn check_fresh() -> Result<(), String> {
    let generated = generate()?;
    let path = root().join(OUTPUT);
    let current = std::fs::read_to_string(&path).unwrap_or_default();
    if current == generated {
        eprintln!("xtask: {OUTPUT} is up to date");
        Ok(())
    } else {
        Err(format!(
            "{OUTPUT} is stale: regenerate it with `cargo xtask ts` and commit the result"
        ))
    }
}

fn write() -> Result<(), String> {
    let generated = generate()?;
    let path = root().join(OUTPUT);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    std::fs::write(&path, generated).map_err(|e| format!("{}: {e}", path.display()))?;
    eprintln!("xtask: wrote {OUTPUT}");
    Ok(())
}

/// The declarations, as printed by the `chat_ts` example.
fn generate() -> Result<String, String> {
    let mut cargo = crate::cargo();
    cargo
        .args(["run", "--quiet", "--example", "chat_ts"])
        .current_dir(root());
    eprintln!("xtask: running `cargo run --quiet --example chat_ts`");
    let output = cargo
        .output()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "the chat_ts example failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    String::from_utf8(output.stdout).map_err(|_| "the declarations are not UTF-8".into())
}
