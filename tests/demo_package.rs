//! The README's run command (`cargo run -p omni-demo`) builds what the demo needs and nothing
//! that only the library's tests, benches or fuzzing use: the demo is a package of its own,
//! not an example of `omni` (an example builds its package's dev-dependencies).

use std::process::Command;

/// What `cargo run -p omni-demo` (with `features`) builds: the package's normal and build
/// dependencies, each crate once.
fn built_for_the_demo(features: &[&str]) -> Vec<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "tree",
            "-p",
            "omni-demo",
            "-e",
            "normal,build",
            "--prefix",
            "none",
        ])
        .args(features.iter().flat_map(|f| ["--features", f]))
        .output()
        .expect("cargo tree runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut crates: Vec<String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_owned)
        .collect();
    crates.sort();
    crates.dedup();
    crates
}

const ONLY_FOR_TESTS: [&str; 6] = [
    "criterion",
    "proptest",
    "trybuild",
    "insta",
    "rcgen",
    "libfuzzer-sys",
];

#[test]
fn the_demo_builds_no_test_or_bench_dependency() {
    for features in [&[][..], &["redis"][..], &["redis", "tls"][..]] {
        let crates = built_for_the_demo(features);
        for name in ONLY_FOR_TESTS {
            assert!(
                !crates.iter().any(|c| c == name),
                "{features:?}: the demo builds {name}"
            );
        }
        // The library with its test and bench dependencies is about 230 crates; the demo,
        // about half that (120 as it comes, 158 with Redis, when this was written).
        let most = if features.contains(&"tls") { 210 } else { 170 };
        assert!(crates.len() < most, "{features:?}: {} crates", crates.len());
        assert!(crates.iter().any(|c| c == "omni"), "{crates:?}");
    }
}
