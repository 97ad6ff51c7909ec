// Multi-writer agents come and go (README "Agent lifecycle"): an agent registers when it first
// writes to a store, holds .agent-<id>.lock while open, and is retired by a compaction once it
// is closed (or dead) and every op of its is in the snapshot; it may come back and loses nothing.
// Also: a second open of one agent id is refused, and a read-only open without agentId sees every
// agent's writes. The scale run (200 agents over time) is in scale.test.mjs.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import * as reference from "@backloghq/opslog";
import { isReference } from "../support/impl.mjs";
import { setup, exists, readManifest, readOps, refDefect, IMPL_URL } from "../support/helpers.mjs";

// Everything here is about our agents' locks and retirement, which the reference does not have.
const ours = isReference ? "retirement and agent locks are ours (the reference drops every other agent at a compaction)" : false;

const registered = async (dir) => Object.keys((await readManifest(dir)).json.activeAgentOps ?? {}).sort();
const opsFiles = async (dir) => (await readdir(join(dir, "ops"))).sort();
const clocksOf = ({ ops }) => ops.map((op) => op.clock);
const state = (s) => Object.fromEntries(s.entries().sort(([a], [b]) => (a < b ? -1 : 1)));

test("a closed agent whose ops a compaction folded is retired: registration, clock entry, op and lock file go", { skip: ours }, async (t) => {
  const { dir, open } = await setup(t);
  const a = await open({ agentId: "A" });
  const b = await open({ agentId: "B", checkpointOnClose: false });
  await a.set("a1", { v: 1 });
  await b.set("b1", { v: 1 });
  await b.set("shared", { by: "B" });
  const bFile = (await readManifest(dir)).json.activeAgentOps.B;
  assert.ok(await exists(join(dir, ".agent-B.lock")), "an open agent holds its lock file");
  await b.close();
  assert.deepEqual(await registered(dir), ["A", "B"], "closing alone retires nothing");
  await a.compact();
  const { json } = await readManifest(dir);
  assert.deepEqual(Object.keys(json.activeAgentOps), ["A"]);
  assert.deepEqual(Object.keys(json.agentClocks), ["A"]);
  assert.equal(json.snapshotClock, 2, "the highest clock the snapshot holds (A and B both started at 0)");
  assert.equal(await exists(join(dir, bFile)), false, "B's op file is deleted");
  assert.equal(await exists(join(dir, ".agent-B.lock")), false, "and its lock file");
  assert.deepEqual(state(a), { a1: { v: 1 }, b1: { v: 1 }, shared: { by: "B" } });

  // B comes back: registers again, its clock continues above everything it wrote before.
  const b2 = await open({ agentId: "B" });
  assert.deepEqual(b2.get("b1"), { v: 1 });
  await b2.set("shared", { by: "B again" });
  assert.deepEqual(await registered(dir), ["A", "B"]);
  const ops = await readOps(dir, (await readManifest(dir)).json.activeAgentOps.B);
  assert.deepEqual(clocksOf(ops), [3]);
  await a.refresh();
  assert.deepEqual(a.get("shared"), { by: "B again" });
  await a.close();
  await b2.close();
  const r = await open({ readOnly: true });
  assert.deepEqual(state(r), { a1: { v: 1 }, b1: { v: 1 }, shared: { by: "B again" } });
});

test("manifest tracks only the compacting agent after a compaction once the others closed", async (t) => {
  // The reference's own test of this name expects exactly the compacting agent in activeAgentOps.
  const { dir, open } = await setup(t);
  const a = await open({ agentId: "agent-A" });
  const b = await open({ agentId: "agent-B" });
  await a.set("x", { v: 1 });
  await b.set("y", { v: 2 });
  await b.close();
  await a.refresh();
  await a.compact();
  assert.deepEqual(Object.keys((await readManifest(dir)).json.activeAgentOps), ["agent-A"]);
  assert.deepEqual(a.get("y"), { v: 2 });
});

test("a live agent keeps its registration; it is retired once it closes", { skip: ours }, async (t) => {
  const { dir, open } = await setup(t);
  const a = await open({ agentId: "A" });
  const b = await open({ agentId: "B", checkpointOnClose: false });
  await b.set("b1", { v: 1 });
  await a.compact();
  assert.deepEqual(await registered(dir), ["A", "B"], "B is open: it stays");
  await b.set("b2", { v: 2 }); // appended to its registered file, after the compaction
  await a.compact();
  assert.deepEqual(await registered(dir), ["A", "B"]);
  await b.close();
  await a.compact();
  assert.deepEqual(await registered(dir), ["A"]);
  assert.ok((await opsFiles(dir)).every((f) => f.startsWith("agent-A")), `only A's files in ops/: ${await opsFiles(dir)}`);
  await a.close();
  const r = await open({ readOnly: true });
  assert.deepEqual(state(r), { b1: { v: 1 }, b2: { v: 2 } });
});

test("an agent that wrote after the compaction read its file is not retired (nothing unfolded is dropped)", { skip: ours }, async (t) => {
  // B opens, writes and closes between two compactions; the next compaction folds and retires it.
  const { dir, open } = await setup(t);
  const a = await open({ agentId: "A" });
  for (let round = 0; round < 5; round++) {
    const b = await open({ agentId: "B", checkpointOnClose: false });
    await b.set(`b${round}`, { round });
    await b.close();
    await a.compact();
    assert.deepEqual(await registered(dir), ["A"]);
  }
  await a.close();
  const r = await open({ readOnly: true });
  assert.deepEqual(Object.keys(state(r)), ["b0", "b1", "b2", "b3", "b4"]);
});

test("a second open of one agentId is refused, naming the agent; after close it opens", { skip: ours }, async (t) => {
  const { dir, open, store } = await setup(t);
  const a = await open({ agentId: "worker-1" });
  await a.set("k", { v: 1 });
  const before = await readManifest(dir);
  await assert.rejects(store().open(dir, { agentId: "worker-1" }), (e) => {
    assert.match(e.message, /^Agent 'worker-1' is already open in process \d+ \(.*\/\.agent-worker-1\.lock\): two writers on one agent's op file would interleave their clocks/);
    return true;
  });
  assert.equal((await readManifest(dir)).text, before.text, "the refused open changed nothing");
  // A read-only open of the same agent takes no lock.
  const reader = await open({ agentId: "worker-1", readOnly: true });
  assert.deepEqual(reader.get("k"), { v: 1 });
  await a.close();
  const again = await open({ agentId: "worker-1" });
  assert.deepEqual(again.get("k"), { v: 1 });
});

/** A child process holding agent `agent` open: writes `n` sets, prints one line per acknowledged set, then waits. */
function holder(dir, agent, n, extra = "") {
  const code = `
    const { Store } = await import(${JSON.stringify(IMPL_URL)});
    const s = new Store();
    await s.open(${JSON.stringify(dir)}, { agentId: ${JSON.stringify(agent)} });
    for (let i = 0; i < ${n}; i++) {
      await s.set("${agent}-" + i, { i });
      process.stdout.write(JSON.stringify(["${agent}-" + i, { i }]) + "\\n");
    }
    ${extra}
    process.stdout.write("ready\\n");
    // Holds the store (a store that is garbage collected releases its agent's lock).
    setInterval(() => s, 1000);
  `;
  const child = spawn(process.execPath, ["--input-type=module", "-e", code], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  child.stdout.setEncoding("utf8").on("data", (d) => (out += d));
  child.stderr.setEncoding("utf8").on("data", (d) => (err += d));
  const exited = new Promise((resolve) => child.on("close", resolve));
  const ready = new Promise((resolve, reject) => {
    child.stdout.on("data", () => out.includes("ready\n") && resolve());
    child.on("close", (code) => reject(new Error(`holder exited ${code}: ${err}`)));
  });
  return { child, ready, exited, output: () => out };
}

test("another process's open agent refuses a second open; once that process is killed, the agent opens and keeps its writes", { skip: ours, timeout: 60_000 }, async (t) => {
  const { dir, open, store } = await setup(t);
  await (await open({ agentId: "init" })).close();
  const h = holder(dir, "solo", 5);
  t.after(() => h.child.kill("SIGKILL"));
  await h.ready;
  await assert.rejects(store().open(dir, { agentId: "solo" }), (e) => {
    assert.match(e.message, new RegExp(`^Agent 'solo' is already open in process ${h.child.pid} `));
    return true;
  });
  h.child.kill("SIGKILL");
  await h.exited;
  const acked = h.output().split("\n").filter((l) => l.startsWith("[")).map((l) => JSON.parse(l));
  assert.equal(acked.length, 5);
  const s = await open({ agentId: "solo" });
  for (const [k, v] of acked) assert.deepEqual(s.get(k), v);
  await s.set("after", { v: 1 });
  const ops = await readOps(dir, (await readManifest(dir)).json.activeAgentOps.solo);
  assert.deepEqual(clocksOf(ops), [1, 2, 3, 4, 5, 6], "one file, one clock sequence");
});

test("an agent killed with SIGKILL and never reopened: its acknowledged ops survive and a compaction retires it", { skip: ours, timeout: 60_000 }, async (t) => {
  const { dir, open } = await setup(t);
  const a = await open({ agentId: "A" });
  const h = holder(dir, "doomed", 20);
  t.after(() => h.child.kill("SIGKILL"));
  await h.ready;
  await a.compact();
  assert.deepEqual(await registered(dir), ["A", "doomed"], "alive: kept");
  h.child.kill("SIGKILL");
  await h.exited;
  const acked = h.output().split("\n").filter((l) => l.startsWith("[")).map((l) => JSON.parse(l));
  assert.equal(acked.length, 20);
  await a.compact();
  assert.deepEqual(await registered(dir), ["A"], "dead, and its ops folded: retired");
  assert.ok((await opsFiles(dir)).every((f) => f.startsWith("agent-A")), `ops/: ${await opsFiles(dir)}`);
  await a.close();
  const r = await open({ readOnly: true });
  for (const [k, v] of acked) assert.deepEqual(r.get(k), v);
});

test("a read-only open without agentId merges every agent's unfolded ops, as an agent does", { skip: refDefect(4) }, async (t) => {
  const { dir, open } = await setup(t);
  const agents = [];
  for (const id of ["p", "q", "r"]) agents.push(await open({ agentId: id, checkpointOnClose: false }));
  for (let i = 0; i < 30; i++) await agents[i % 3].set(`own-${i % 3}-${i}`, { i });
  for (let i = 0; i < 9; i++) await agents[i % 3].set("shared", { i });
  await agents[0].compact(); // folds all so far; q and r stay open, registered
  for (let i = 0; i < 9; i++) await agents[(i + 1) % 3].set(`late-${i}`, { i });
  await agents[1].close(); // q closes, not compacting
  const reader = await open({ readOnly: true });
  const agentView = await open({ agentId: "check", readOnly: true });
  assert.equal(reader.entries().length, 30 + 1 + 9);
  assert.deepEqual(state(reader), state(agentView));
  assert.deepEqual(reader.get("shared"), { i: 8 });
  const wal = [];
  for await (const op of reader.getWalOps()) wal.push(op);
  const agentWal = [];
  for await (const op of agentView.getWalOps()) agentWal.push(op);
  assert.deepEqual(wal, agentWal);
  assert.deepEqual(wal.map((op) => op.id).sort(), [...Array(9).keys()].map((i) => `late-${i}`), "getWalOps: the unfolded ops");
  const order = (x, y) => x.clock - y.clock || x.agent.localeCompare(y.agent);
  assert.deepEqual(wal, [...wal].sort(order), "in (clock, agent) order");

  // refresh / tail / watch follow agents that write, close and compact meanwhile.
  const seen = [];
  reader.watch((ops) => seen.push(...ops.map((o) => o.id)), 20);
  await agents[2].set("after-1", { v: 1 });
  await agents[2].close(); // r compacts on close, retiring q
  await agents[0].set("after-2", { v: 2 });
  const tailed = await reader.tail();
  // Each new op is handed out once, by whichever of watch's polls and this tail saw it first.
  assert.ok([...seen, ...tailed.map((op) => op.id)].includes("after-2"));
  await reader.refresh();
  const fresh = await open({ agentId: "check2", readOnly: true });
  assert.deepEqual(state(reader), state(fresh));
  assert.deepEqual(reader.get("after-1"), { v: 1 });
  reader.unwatch();
});

test("a read-only follower of a single-writer store follows agents that start writing it", { skip: refDefect(4) }, async (t) => {
  const { dir, open } = await setup(t);
  const w = await open({});
  await w.set("single", { v: 1 });
  await w.close();
  const reader = await open({ readOnly: true });
  const a = await open({ agentId: "A", checkpointOnClose: false });
  const b = await open({ agentId: "B", checkpointOnClose: false });
  await a.set("a", { v: 1 });
  await b.set("b", { v: 1 });
  await reader.refresh();
  assert.deepEqual(state(reader), { a: { v: 1 }, b: { v: 1 }, single: { v: 1 } });
});

test("interop: a reference agent reads what ours left after a retirement, and ours reads what a reference agent wrote", { skip: ours }, async (t) => {
  const { dir, open } = await setup(t);
  const a = await open({ agentId: "A" });
  const b = await open({ agentId: "B" });
  await a.set("shared", { by: "A" });
  await b.set("shared", { by: "B" });
  await b.set("b", { v: 1 });
  await b.close(); // compacts; A stays registered (live)
  await a.set("a", { v: 1 });
  await a.compact(); // retires B
  assert.deepEqual(await registered(dir), ["A"]);
  await a.close();
  const expected = { a: { v: 1 }, b: { v: 1 }, shared: { by: "B" } };

  const ref = new reference.Store();
  await ref.open(dir, { agentId: "R", checkpointOnClose: false });
  assert.deepEqual(state(ref), expected);
  await ref.set("r", { v: 1 });
  await ref.set("shared", { by: "R" });
  await ref.close();
  assert.deepEqual(await registered(dir), ["A", "R"]);

  // Ours reads it, and a compaction of ours keeps the reference agent (it has no lock file: it
  // could be open) but retires A.
  const c = await open({ agentId: "C" });
  assert.deepEqual(state(c), { ...expected, r: { v: 1 }, shared: { by: "R" } });
  await c.compact();
  assert.deepEqual(await registered(dir), ["C", "R"]);
  await c.set("c", { v: 1 });
  await c.close();

  // The reference reads that too, compacts (dropping every other agent, as it does), and ours follows.
  const ref2 = new reference.Store();
  await ref2.open(dir, { agentId: "R2" });
  assert.deepEqual(state(ref2), { ...expected, r: { v: 1 }, shared: { by: "R" }, c: { v: 1 } });
  await ref2.set("r2", { v: 1 });
  await ref2.close();
  const d = await open({ agentId: "D" });
  assert.deepEqual(state(d), { ...expected, r: { v: 1 }, shared: { by: "R" }, c: { v: 1 }, r2: { v: 1 } });
  await d.set("shared", { by: "D" });
  await d.close();
  const r = await open({ readOnly: true });
  assert.deepEqual(r.get("shared"), { by: "D" });
});

test("a refused open of a bad agent id creates no lock file", { skip: ours }, async (t) => {
  const { dir, open, store } = await setup(t);
  await (await open({ agentId: "ok" })).close();
  await assert.rejects(store().open(dir, { agentId: "../x" }));
  await assert.rejects(store().open(dir, { agentId: "a/b" }), /agentId must be usable in a file name/);
  assert.deepEqual((await readdir(dir)).filter((f) => f.endsWith(".lock")), [".agent-ok.lock"]);
  assert.ok((await opsFiles(dir)).every((f) => f.endsWith(".jsonl")), "ops/ holds op files only");
  const text = await readFile(join(dir, ".agent-ok.lock"), "utf8");
  assert.equal(text, String(process.pid), "the lock file names the last holder's pid");
});
