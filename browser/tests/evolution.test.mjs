// A page built against build 1 of the `evo` protocol (its generated SCHEMA) keeps working
// against a server of build 2 (which added messages and an optional field), hearing build 2's
// new message as `unknown`; against build 3 (which removed a message build 1 sends) it enters
// the `incompatible` state, naming the change, and stops. The builds are separate binaries:
// examples/evolution_v1, _v2, _v3.

import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import { once } from "node:events";
import { after, before, test } from "node:test";

import { launchBrowser } from "./support.mjs";

const example = (version) => new URL(`../../target/debug/examples/evolution_v${version}`, import.meta.url).pathname;

/** Starts build `version`'s server; resolves with its base URL and the child. */
function evoServer(version) {
  return new Promise((resolve, reject) => {
    const child = spawn(example(version), ["server"], { stdio: ["ignore", "pipe", "ignore"], env: { ...process.env, RUST_LOG: "warn" } });
    let output = "";
    child.stdout.on("data", (chunk) => {
      output += chunk;
      const found = output.match(/listening on (\S+)/);
      if (found) resolve({ url: `http://${found[1]}`, child });
    });
    child.once("error", reject);
    child.once("exit", (code) => reject(new Error(`build ${version} exited with ${code}: ${output}`)));
  });
}

let browser;
const servers = [];
before(async () => {
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
  for (const { child } of servers) {
    if (child.exitCode === null) {
      child.kill("SIGKILL");
      await once(child, "exit");
    }
  }
});

test("a page built against build 1 talks to build 2 and is told it is incompatible by build 3", { timeout: 60_000 }, async () => {
  // The page's build: build 1's schema module, as `omni::typescript::schema_module` writes it.
  const schemaModule = execFileSync(example(1), ["schema-js"], { encoding: "utf8" });
  const v2 = await evoServer(2);
  servers.push(v2);
  const v3 = await evoServer(3);
  servers.push(v3);

  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${v2.url}/`);
  const run = await page.evaluate(async ({ schemaModule, v3 }) => {
    const { connect } = await import("/omni/omni.js");
    const blob = URL.createObjectURL(new Blob([schemaModule], { type: "text/javascript" }));
    const { SCHEMA } = await import(blob);

    const within = (promise, what) =>
      Promise.race([promise, new Promise((_, reject) => setTimeout(() => reject(new Error(`${what}: nothing within 15 s`)), 15_000))]);

    // Build 2's server: every message of build 1 is served; build 2's cheer is unknown here.
    const client = connect("/omni", { schema: SCHEMA, storage: null });
    const messages = [];
    const unknown = [];
    const states = [];
    client.on("message", (payload) => messages.push(payload.kind));
    client.on("unknown", (payload) => unknown.push(payload.kind));
    client.on("state", (state) => states.push(state.state));
    const heard = new Promise((resolve) => {
      const check = () => messages.length >= 2 && unknown.length >= 1 && resolve();
      client.on("message", check);
      client.on("unknown", check);
    });
    const posted = await within(client.acked(client.send({ kind: "Post", data: { text: "from a v1 page" } })).then(() => "ok", (e) => e.code), "post");
    const pinged = await within(client.acked(client.send({ kind: "Ping" })).then(() => "ok", (e) => e.code), "ping");
    await within(heard, "messages");
    client.close();

    // Build 3's server no longer serves build 1: the page is told why, and stops.
    const old = connect(`${v3}/omni`, { schema: SCHEMA, storage: null });
    const refused = await within(
      new Promise((resolve) => old.on("state", (state) => state.state === "incompatible" && resolve(state))),
      "incompatible",
    );
    const later = [];
    old.on("state", (state) => later.push(state.state));
    await new Promise((resolve) => setTimeout(resolve, 1500));
    return { posted, pinged, messages: messages.sort(), unknown, states, refused, later };
  }, { schemaModule, v3: v3.url });

  assert.equal(run.posted, "ok");
  assert.equal(run.pinged, "ok");
  assert.deepEqual(run.messages, ["Pong", "Posted"], JSON.stringify(run));
  assert.deepEqual(run.unknown, ["Cheered"], "build 2's new message is unknown to a build 1 page");
  assert.ok(!run.states.includes("error") && !run.states.includes("incompatible"), JSON.stringify(run.states));
  assert.equal(run.refused.state, "incompatible");
  assert.match(run.refused.reason, /removed #\[client\] variant Ping/);
  assert.deepEqual(run.later.filter((s) => s === "connecting" || s === "reconnecting"), [], "it does not retry");
  await context.close();
});
