//! Compile-time behaviour of `#[omni::protocol]`: what must compile, and the exact errors for
//! each kind of misuse. The `.stderr` files are made by the toolchain pinned in
//! `rust-toolchain.toml`; regenerate them with `TRYBUILD=overwrite cargo test --test ui`.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/pass/*.rs");
    t.compile_fail("tests/ui/fail/*.rs");
}
