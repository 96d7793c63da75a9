//! `cargo xtask ts`: writes the chat demo's TypeScript declarations, generated from its
//! protocol enums, to `examples/chat/static/protocol.d.ts` (the chat) and `counter.d.ts`
//! (the counter module); `--check` fails when a checked-in file differs from what its enum
//! generates now.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Where each protocol's declarations are checked in, from the workspace root, with the
/// `chat_ts` argument that prints them.
const OUTPUTS: [(&str, &str); 2] = [
    ("examples/chat/static/protocol.d.ts", "chat"),
    ("examples/chat/static/counter.d.ts", "counter"),
];

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

/// Fails when checked-in declarations are not what their protocol enum generates.
pub fn check_fresh() -> Result<(), String> {
    for (output, protocol) in OUTPUTS {
        let generated = generate(protocol)?;
        let current = std::fs::read_to_string(root().join(output)).unwrap_or_default();
        if current != generated {
            return Err(format!(
                "{output} is stale: regenerate it with `cargo xtask ts` and commit the result"
            ));
        }
        eprintln!("xtask: {output} is up to date");
    }
    Ok(())
}

fn write() -> Result<(), String> {
    for (output, protocol) in OUTPUTS {
        let generated = generate(protocol)?;
        let path = root().join(output);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        std::fs::write(&path, generated).map_err(|e| format!("{}: {e}", path.display()))?;
        eprintln!("xtask: wrote {output}");
    }
    Ok(())
}

/// One protocol's declarations, as printed by the `chat_ts` example.
fn generate(protocol: &str) -> Result<String, String> {
    let mut cargo = crate::cargo();
    cargo
        .args(["run", "--quiet", "--example", "chat_ts", "--", protocol])
        .current_dir(root());
    eprintln!("xtask: running `cargo run --quiet --example chat_ts -- {protocol}`");
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
