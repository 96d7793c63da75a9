//! `cargo xtask ts`: writes the chat demo's TypeScript declarations, generated from its
//! protocol enums, to `examples/chat/static/protocol.d.ts` (the chat) and `counter.d.ts`
//! (the counter module); `--check` fails when a checked-in file differs from what its enum
//! generates now.
//!
//! A field type without a `TS` impl is declared as `unknown`, and the module's header lists
//! such types; both modes warn about them, and `--strict` makes them an error.

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

/// The header line `omni::typescript` writes above a module whose declarations fell back to
/// `unknown` (`omni_runtime::typescript::UNKNOWN_HEADER`; xtask does not depend on omni).
const UNKNOWN_HEADER: &str = "// Declared as `unknown` (no `TS` impl):";

/// Runs the task: `args` is empty (write the file), `--check`, `--strict`, or both.
pub fn run(args: Vec<OsString>) -> ExitCode {
    let (mut check, mut strict) = (false, false);
    for arg in &args {
        match arg.to_str() {
            Some("--check") => check = true,
            Some("--strict") => strict = true,
            _ => {
                eprintln!("xtask: usage: cargo xtask ts [--check] [--strict]");
                return ExitCode::from(2);
            }
        }
    }
    let result = generate_all().and_then(|modules| {
        if check {
            compare(&modules)?;
        } else {
            write(&modules)?;
        }
        unknown_types(&modules, strict)
    });
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
    compare(&generate_all()?)
}

/// Every output path with the module its protocol generates now.
fn generate_all() -> Result<Vec<(&'static str, String)>, String> {
    OUTPUTS
        .iter()
        .map(|(output, protocol)| Ok((*output, generate(protocol)?)))
        .collect()
}

fn compare(modules: &[(&str, String)]) -> Result<(), String> {
    for (output, generated) in modules {
        let current = std::fs::read_to_string(root().join(output)).unwrap_or_default();
        if current != *generated {
            return Err(format!(
                "{output} is stale: regenerate it with `cargo xtask ts` and commit the result"
            ));
        }
        eprintln!("xtask: {output} is up to date");
    }
    Ok(())
}

/// Warns about the field types declared as `unknown` in the generated modules; with `strict`,
/// fails instead.
fn unknown_types(modules: &[(&str, String)], strict: bool) -> Result<(), String> {
    let mut found = false;
    for (output, generated) in modules {
        let Some(listed) = generated
            .lines()
            .find_map(|line| line.strip_prefix(UNKNOWN_HEADER))
        else {
            continue;
        };
        found = true;
        eprintln!(
            "xtask: {}: {output} declares these field types as `unknown`, having no `TS` impl:\
             {}; put `#[omni::wire]` or `#[derive(omni::TS)]` on them to type them",
            if strict { "error" } else { "warning" },
            listed.trim_end_matches('.')
        );
    }
    if found && strict {
        return Err("--strict: some field types have no TypeScript declaration".into());
    }
    Ok(())
}

fn write(modules: &[(&str, String)]) -> Result<(), String> {
    for (output, generated) in modules {
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

#[cfg(test)]
mod tests {
    use super::{UNKNOWN_HEADER, unknown_types};

    #[test]
    fn unknown_types_warn_and_fail_only_when_strict() {
        let typed = (
            "typed.d.ts",
            "// Generated by omni.\n\nexport type A = string;\n".into(),
        );
        let untyped = (
            "untyped.d.ts",
            format!(
                "// Generated by omni.\n{UNKNOWN_HEADER} `Item`.\n\nexport type B = unknown;\n"
            ),
        );
        assert_eq!(unknown_types(std::slice::from_ref(&typed), true), Ok(()));
        assert_eq!(
            unknown_types(&[typed.clone(), untyped.clone()], false),
            Ok(())
        );
        assert!(unknown_types(&[typed, untyped], true).is_err());
    }

    /// The header xtask looks for is the one omni writes.
    #[test]
    fn header_matches_the_runtime() {
        let runtime = std::fs::read_to_string(super::root().join("omni-runtime/src/typescript.rs"))
            .expect("the runtime's typescript module");
        assert!(runtime.contains(&format!("UNKNOWN_HEADER: &str = {UNKNOWN_HEADER:?};")));
    }
}
