//! A protocol whose field types have no `TS` impl: it travels (the `main` of the trybuild pass
//! case, run here too), its TypeScript declares those types as `unknown` and says so, and the
//! declarations type-check under `tsc --strict`.

use std::path::Path;
use std::process::Command;

// The schema knows these field types by name only, and says so with a warning.
#[allow(dead_code, deprecated)]
mod foreign {
    include!("ui/pass/foreign_types.rs");

    pub fn run() {
        main();
    }
}

use foreign::Inventory;

#[test]
fn foreign_field_types_round_trip() {
    foreign::run();
}

#[test]
fn foreign_field_types_are_declared_unknown_and_reported() {
    // ts-rs declares `IpAddr` itself (as `string`); the rest have no `TS` impl.
    let generated = omni::typescript::generate::<Inventory>();
    assert_eq!(
        generated.unknown,
        [
            "Duration",
            "Item",
            "Option<Item>",
            "Vec<Item>",
            "serde_json::Value"
        ]
    );
    let module = &generated.module;
    assert!(
        module.contains(
            "// Declared as `unknown` (no `TS` impl): `Duration`, `Item`, `Option<Item>`, \
             `Vec<Item>`, `serde_json::Value`.\n"
        ),
        "{module}"
    );
    assert!(
        module.contains(
            r#"export type InventoryFromClient = { "kind": "Add", "data": unknown } | { "kind": "Ping", "data": { from: string, after: unknown, } };"#
        ),
        "{module}"
    );
    assert!(
        module.contains(r#"{ "kind": "Noted", "data": { id: number, note: unknown, } }"#),
        "{module}"
    );
}

/// `tsc --strict` over the declarations and a module using them, with the compiler `npm ci`
/// installs in `browser/` (`cargo xtask test` runs it first). Skipped, saying so, where it is
/// not installed, except in CI (`CI=true`), where a missing compiler fails the test: there a
/// skip would pass without checking anything.
#[test]
fn foreign_field_types_typecheck_strict() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let tsc = root.join("browser/node_modules/.bin/tsc");
    if !tsc.exists() {
        let missing = format!(
            "{} is missing; run `npm ci` in browser/ (`cargo xtask test` does)",
            tsc.display()
        );
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true, and {missing}"
        );
        eprintln!("skipped: {missing}");
        return;
    }
    let dir = std::env::temp_dir().join(format!("omni-foreign-types-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("inventory.ts"),
        omni::typescript::declarations::<Inventory>(),
    )
    .unwrap();
    // `unknown` fields accept any value and must be narrowed before use.
    std::fs::write(
        dir.join("use.ts"),
        r#"import type { InventoryFromClient, InventoryFromServer } from "./inventory";
export const add: InventoryFromClient = { kind: "Add", data: { id: 7, name: "lamp" } };
export function describe(msg: InventoryFromServer): string {
  switch (msg.kind) {
    case "Changed": return JSON.stringify(msg.data);
    case "Listed": return Array.isArray(msg.data[0]) ? "list" : "other";
    case "Noted": return String(msg.data.id);
  }
}
"#,
    )
    .unwrap();
    // The options of `browser/typecheck/tsconfig.json`, which the chat page is checked with.
    std::fs::write(
        dir.join("tsconfig.json"),
        r#"{
  "compilerOptions": {
    "target": "ES2022",
    "module": "ES2022",
    "moduleResolution": "Bundler",
    "lib": ["ES2022"],
    "strict": true,
    "noEmit": true,
    "noUnusedLocals": true,
    "exactOptionalPropertyTypes": true,
    "types": []
  },
  "files": ["inventory.ts", "use.ts"]
}
"#,
    )
    .unwrap();
    let output = Command::new(&tsc).arg("-p").arg(&dir).output().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        output.status.success(),
        "tsc --strict failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
