// omni.js, the entry point, against omni.d.ts, in node. `tsc -p typecheck` holds each function
// to its declaration as the module defining it types it (typecheck/declarations.ts), but it
// cannot see omni.js itself: TypeScript reads omni.d.ts in its place. So here: omni.js exports
// exactly the values omni.d.ts declares, as TypeScript reads them, each the very function the
// type-check held to its declaration.

import assert from "node:assert/strict";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import ts from "typescript";

import * as client from "../../omni-runtime/js/client.js";
import * as dialer from "../../omni-runtime/js/dialer.js";
import * as msgpack from "../../omni-runtime/js/msgpack.js";
import * as mux from "../../omni-runtime/js/multiplex.js";
import * as omni from "../../omni-runtime/js/omni.js";

const DECLARATIONS = fileURLToPath(new URL("../../omni-runtime/js/omni.d.ts", import.meta.url));

/** The names omni.d.ts exports as values (its functions; the rest are types). */
function declaredValues() {
  const program = ts.createProgram([DECLARATIONS], { noLib: true, types: [] });
  const checker = program.getTypeChecker();
  const file = program.getSourceFile(DECLARATIONS);
  assert.ok(file, `TypeScript did not read ${DECLARATIONS}`);
  const module = checker.getSymbolAtLocation(file);
  assert.ok(module, "omni.d.ts is not a module");
  return checker
    .getExportsOfModule(module)
    .filter((symbol) => symbol.flags & ts.SymbolFlags.Value)
    .map((symbol) => symbol.name)
    .sort();
}

test("omni.js exports what omni.d.ts declares, and nothing else", () => {
  const declared = declaredValues();
  assert.ok(declared.includes("connect"), `read from omni.d.ts: ${declared}`);
  assert.deepEqual(Object.keys(omni).sort(), declared);
});

test("each is the function of the module typecheck/declarations.ts checks it from", () => {
  const checked = {
    backoffDelay: dialer.backoffDelay,
    connect: client.connect,
    decodeMsgpack: msgpack.decodeMsgpack,
    encodeMsgpack: msgpack.encodeMsgpack,
    mux: mux.mux,
  };
  assert.deepEqual(Object.keys(omni).sort(), Object.keys(checked).sort());
  for (const [name, fn] of Object.entries(checked)) {
    assert.equal(typeof fn, "function", name);
    assert.equal(omni[name], fn, `omni.js's ${name} is not ${name} of its module`);
  }
});
