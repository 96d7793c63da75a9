// omni.js's MessagePack codec on its own, in node: every form at its boundaries, JSON's view of
// values (toJSON, skipped properties, cycles), what a decoder must refuse, and the bytes the
// server's own encoder (rmp-serde) writes, from `cargo run --example msgpack_vectors`.

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { test } from "node:test";

import { decodeMsgpack, encodeMsgpack } from "../../omni-runtime/js/omni.js";

const VECTORS_BIN =
  process.env.OMNI_MSGPACK_VECTORS_BIN ??
  fileURLToPath(new URL("../../target/debug/examples/msgpack_vectors", import.meta.url));

const hex = (bytes) => Buffer.from(bytes).toString("hex");
const fromHex = (text) => new Uint8Array(Buffer.from(text.replace(/\s+/g, ""), "hex"));
/** The first `n` bytes `value` encodes to, as hex. */
const head = (value, n) => hex(encodeMsgpack(value).subarray(0, n));

test("integers take their smallest form", () => {
  const cases = [
    [0, "00"],
    [127, "7f"],
    [128, "cc80"],
    [255, "ccff"],
    [256, "cd0100"],
    [65_535, "cdffff"],
    [65_536, "ce00010000"],
    [2 ** 32 - 1, "ceffffffff"],
    [2 ** 32, "cf0000000100000000"],
    [Number.MAX_SAFE_INTEGER, "cf001fffffffffffff"],
    [-1, "ff"],
    [-32, "e0"],
    [-33, "d0df"],
    [-128, "d080"],
    [-129, "d1ff7f"],
    [-32_768, "d18000"],
    [-32_769, "d2ffff7fff"],
    [-(2 ** 31), "d280000000"],
    [-(2 ** 31) - 1, "d3ffffffff7fffffff"],
    [Number.MIN_SAFE_INTEGER, "d3ffe0000000000001"],
    // JSON writes -0 as 0.
    [-0, "00"],
  ];
  for (const [n, expected] of cases) {
    assert.equal(hex(encodeMsgpack(n)), expected, `${n}`);
    assert.equal(decodeMsgpack(fromHex(expected)), n === 0 ? 0 : n, expected);
  }
});

test("other Numbers are float64", () => {
  assert.equal(hex(encodeMsgpack(0.5)), "cb3fe0000000000000");
  assert.equal(hex(encodeMsgpack(2 ** 53)), "cb4340000000000000", "past the safe range");
  assert.equal(hex(encodeMsgpack(-1.5e300)).slice(0, 2), "cb");
  assert.ok(Number.isNaN(decodeMsgpack(encodeMsgpack(NaN))));
  assert.equal(decodeMsgpack(encodeMsgpack(-Infinity)), -Infinity);
  assert.equal(decodeMsgpack(fromHex("ca3fc00000")), 1.5, "float32");
  assert.equal(decodeMsgpack(fromHex("cabe800000")), -0.25, "float32");
});

test("integers the encoder never writes decode too", () => {
  assert.equal(decodeMsgpack(fromHex("cc05")), 5, "uint8 of a fixint");
  assert.equal(decodeMsgpack(fromHex("d005")), 5, "int8, positive");
  assert.equal(decodeMsgpack(fromHex("d1ffff")), -1);
  assert.equal(decodeMsgpack(fromHex("d2fffffffe")), -2);
  assert.equal(decodeMsgpack(fromHex("d3fffffffffffffffd")), -3);
  assert.equal(decodeMsgpack(fromHex("d30000000000000007")), 7);
  // Past 2^53, the Number JSON.parse gives for the same digits.
  assert.equal(decodeMsgpack(fromHex("cfffffffffffffffff")), JSON.parse("18446744073709551615"));
  assert.equal(decodeMsgpack(fromHex("d38000000000000000")), JSON.parse("-9223372036854775808"));
  assert.equal(decodeMsgpack(fromHex("cf0020000000000001")), JSON.parse("9007199254740993"));
});

test("strings: fixstr, str8, str16, str32 at their boundaries, and UTF-8", () => {
  const cases = [
    [0, "a0"],
    [31, "bf"],
    [32, "d920"],
    [255, "d9ff"],
    [256, "da0100"],
    [65_535, "daffff"],
    [65_536, "db00010000"],
  ];
  for (const [len, header] of cases) {
    const text = "y".repeat(len);
    const bytes = encodeMsgpack(text);
    assert.equal(hex(bytes.subarray(0, header.length / 2)), header, `length ${len}`);
    assert.equal(bytes.length, header.length / 2 + len);
    assert.equal(decodeMsgpack(bytes), text);
  }
  const text = "é€😀\u{feff}";
  assert.equal(hex(encodeMsgpack(text)), "ac" + hex(new TextEncoder().encode(text)));
  assert.equal(decodeMsgpack(encodeMsgpack(text)), text);
  assert.equal(decodeMsgpack(encodeMsgpack("ü".repeat(100))), "ü".repeat(100));
  assert.equal(decodeMsgpack(fromHex("d903616263")), "abc", "str8 of a short string");
});

test("bytes: bin8, bin16, bin32, from any view, decoded as a Uint8Array of its own", () => {
  const cases = [
    [0, "c400"],
    [255, "c4ff"],
    [256, "c50100"],
    [65_535, "c5ffff"],
    [65_536, "c600010000"],
  ];
  for (const [len, header] of cases) {
    const data = Uint8Array.from({ length: len }, (_, i) => (i * 13) % 256);
    const bytes = encodeMsgpack(data);
    assert.equal(hex(bytes.subarray(0, header.length / 2)), header, `length ${len}`);
    const back = decodeMsgpack(bytes);
    assert.ok(back instanceof Uint8Array);
    assert.deepEqual([...back], [...data]);
  }
  const buffer = new Uint8Array([9, 1, 2, 3, 9]).buffer;
  assert.equal(hex(encodeMsgpack(buffer)), "c4050901020309", "ArrayBuffer");
  assert.equal(hex(encodeMsgpack(new Uint8Array(buffer, 1, 3))), "c403010203", "a view's own bytes only");
  assert.equal(hex(encodeMsgpack(new DataView(buffer, 3, 2))), "c4020309", "DataView");
  assert.equal(hex(encodeMsgpack(new Uint16Array([0x0102]))).slice(0, 4), "c402", "other typed arrays");
  assert.equal(hex(encodeMsgpack(Buffer.from([7]))), "c40107", "node's Buffer is bytes, not its toJSON");
  // A copy: keeping it does not keep (or alias) the frame it came in.
  const frame = fromHex("c403010203");
  const back = decodeMsgpack(frame);
  frame[2] = 0xff;
  assert.deepEqual([...back], [1, 2, 3]);
  assert.equal(back.buffer.byteLength, 3);
});

test("arrays and maps: fix, 16 and 32 bits", () => {
  for (const [len, header] of [
    [0, "90"],
    [15, "9f"],
    [16, "dc0010"],
    [65_535, "dcffff"],
    [65_536, "dd00010000"],
  ]) {
    const list = Array.from({ length: len }, (_, i) => i % 100);
    const bytes = encodeMsgpack(list);
    assert.equal(hex(bytes.subarray(0, header.length / 2)), header, `array of ${len}`);
    assert.deepEqual(decodeMsgpack(bytes), list);
  }
  for (const [len, header] of [
    [0, "80"],
    [15, "8f"],
    [16, "de0010"],
    [65_535, "deffff"],
    [65_536, "df00010000"],
  ]) {
    const map = Object.fromEntries(Array.from({ length: len }, (_, i) => [`k${i}`, i % 3]));
    const bytes = encodeMsgpack(map);
    assert.equal(hex(bytes.subarray(0, header.length / 2)), header, `map of ${len}`);
    assert.deepEqual(decodeMsgpack(bytes), map);
  }
});

test("round trips", () => {
  const values = [
    null,
    true,
    false,
    "",
    { type: "msg", payload: { kind: "Send", data: { id: "m1", text: "hi ✓", sent_at: 1_763_791_200_123 } }, ref: 7 },
    { type: "ack", ref: 0 },
    [[], {}, [[[1]]], { a: { b: { c: [null, -1.25, "x"] } } }],
    { bytes: new Uint8Array([0, 255]), nested: [new Uint8Array(300)] },
    { seq: 1_763_791_200_000_017, negative: -1_763_791_200_000_017 },
  ];
  for (const value of values) assert.deepEqual(decodeMsgpack(encodeMsgpack(value)), value);
});

test("values as JSON sees them", () => {
  const date = new Date(Date.UTC(2025, 0, 2, 3, 4, 5));
  const seen = decodeMsgpack(
    encodeMsgpack({
      kept: 1,
      gone: undefined,
      fn() {},
      sym: Symbol("s"),
      when: date,
      list: [undefined, () => {}, 2],
      custom: { toJSON: (key) => `custom under ${key}` },
      skipped: { toJSON: () => undefined },
    }),
  );
  assert.deepEqual(seen, {
    kept: 1,
    when: date.toJSON(),
    list: [null, null, 2],
    custom: "custom under custom",
  });
  assert.deepEqual(Object.keys(seen), ["kept", "when", "list", "custom"], "in order, as JSON");
  assert.equal(decodeMsgpack(encodeMsgpack(undefined)), null);
  assert.equal(hex(encodeMsgpack({ a: undefined })), "80");
  const cyclic = { a: [] };
  cyclic.a.push(cyclic);
  assert.throws(() => encodeMsgpack(cyclic), TypeError);
  assert.throws(() => encodeMsgpack({ n: 1n }), TypeError);
  // The same object twice, not nested in itself, is no cycle.
  const twice = { x: 1 };
  assert.deepEqual(decodeMsgpack(encodeMsgpack([twice, twice])), [twice, twice]);
});

test("map keys: integers read as strings, __proto__ as data", () => {
  // {1: "a", -2: "b", 300: "c"}, as rmp-serde writes a HashMap<i32, String>.
  const decoded = decodeMsgpack(fromHex("83 01 a161 fe a162 cd012c a163"));
  assert.deepEqual(decoded, { 1: "a", "-2": "b", 300: "c" });
  assert.deepEqual(Object.keys(decoded).sort(), ["-2", "1", "300"]);
  const proto = decodeMsgpack(encodeMsgpack(JSON.parse('{"__proto__": {"polluted": true}}')));
  assert.equal(Object.getPrototypeOf(proto), Object.prototype);
  assert.deepEqual(Object.keys(proto), ["__proto__"]);
  assert.equal({}.polluted, undefined);
  assert.throws(() => decodeMsgpack(fromHex("81 c0 01")), SyntaxError, "nil key");
  assert.throws(() => decodeMsgpack(fromHex("81 cb3ff0000000000000 01")), SyntaxError, "float key");
  assert.throws(() => decodeMsgpack(fromHex("81 9101 01")), SyntaxError, "array key");
});

test("what the decoder refuses", () => {
  const refused = {
    "ext 8": "c70101ff",
    "fixext 1": "d40100",
    "fixext 16": "d801" + "00".repeat(16),
    "ext 32": "c9000000010100",
    "the unused byte 0xc1": "c1",
    "nothing": "",
    "a truncated uint32": "ce0001",
    "a truncated string": "a3ab",
    "a map missing its last value": "82a161 01 a162",
    "a forged array length": "ddffffffff",
    "a forged map length": "dfffffffff01",
    "trailing bytes": "0102",
    "a string that is not UTF-8": "a2c328",
    "a long string that is not UTF-8": "d920" + "61".repeat(31) + "ff",
  };
  for (const [what, bytes] of Object.entries(refused)) {
    assert.throws(() => decodeMsgpack(fromHex(bytes)), SyntaxError, what);
  }
  assert.throws(() => decodeMsgpack("not bytes"), TypeError);
  // Views and ArrayBuffers are read where they point.
  const buffer = fromHex("ff 2a ff").buffer;
  assert.equal(decodeMsgpack(new Uint8Array(buffer, 1, 1)), 42);
  assert.equal(decodeMsgpack(new DataView(buffer, 1, 1)), 42);
  assert.equal(decodeMsgpack(fromHex("2a").buffer), 42);
});

/** The decoded value as JSON has it: bytes as base64. */
function asJson(value) {
  if (value instanceof Uint8Array) return Buffer.from(value).toString("base64");
  if (Array.isArray(value)) return value.map(asJson);
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, asJson(v)]));
  }
  return value;
}

test("the server's encoder: frames and payloads decode as their JSON form", { timeout: 120_000 }, async (t) => {
  assert.ok(
    existsSync(VECTORS_BIN),
    `${VECTORS_BIN} is missing: build it with \`cargo build --example msgpack_vectors\``,
  );
  const { stdout } = await promisify(execFile)(VECTORS_BIN, { maxBuffer: 64 * 1024 * 1024 });
  const vectors = JSON.parse(stdout);
  assert.ok(vectors.length > 60, `${vectors.length} vectors`);
  for (const { name, msgpack, json, same, repacks } of vectors) {
    await t.test(name, () => {
      const bytes = fromHex(msgpack);
      const decoded = decodeMsgpack(bytes);
      const parsed = JSON.parse(json);
      assert.deepEqual(asJson(decoded), parsed);
      if (same) assert.equal(hex(encodeMsgpack(parsed)), msgpack, "written from the JSON value");
      if (repacks) assert.equal(hex(encodeMsgpack(decoded)), msgpack, "written from the decoded value");
    });
  }
  const everything = decodeMsgpack(fromHex(vectors.find((v) => v.name.startsWith("newtype variant")).msgpack));
  assert.deepEqual([...everything.payload.data.data], [0, 1, 2, 254, 255], "a Bytes field is a Uint8Array");
  assert.deepEqual(everything.payload.data.by_number, { 1: "one", 300: "many" });
  assert.equal(everything.payload.data.missing, null);
  assert.equal(everything.payload.data.half, 1.5);
  const welcome = decodeMsgpack(fromHex(vectors.find((v) => v.name === "welcome").msgpack));
  assert.equal(welcome.codec, "msgpack");
});
