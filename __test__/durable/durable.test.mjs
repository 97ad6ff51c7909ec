// The `durable` option (opslog-native only): writes resolve once fsynced, and concurrent writes
// share one fsync. The fsync calls are observed by wrapping the native binding's methods.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { Store } from "../../index.mjs";
import { setup } from "../support/helpers.mjs";
import { MemoryBackend } from "../backends/memory-backend.mjs";

const { NativeStore } = createRequire(import.meta.url)("../../lib/native.js");

/**
 * Counts appends and fsyncs: `durableUpTo` is the number of appends (set/delete/batch/undo
 * calls on the engine) that a completed fsync covers.
 */
function spyOnSyncs(t) {
  const spy = { appends: 0, syncs: 0, durableUpTo: 0 };
  const originals = {};
  for (const name of ["set", "delete", "batchCommit", "undo"]) {
    originals[name] = NativeStore.prototype[name];
    NativeStore.prototype[name] = function (...args) {
      const r = originals[name].apply(this, args);
      spy.appends++;
      return r;
    };
  }
  originals.syncOps = NativeStore.prototype.syncOps;
  NativeStore.prototype.syncOps = function () {
    const covered = spy.appends;
    spy.syncs++;
    return originals.syncOps.call(this).then((v) => {
      spy.durableUpTo = Math.max(spy.durableUpTo, covered);
      return v;
    });
  };
  t.after(() => Object.assign(NativeStore.prototype, originals));
  return spy;
}

test("durable must be a boolean", async (t) => {
  const c = await setup(t);
  for (const bad of [1, "yes", null, {}]) {
    await assert.rejects(new Store().open(c.dir, { durable: bad }), {
      name: "TypeError",
      message: /option durable must be a boolean/,
    });
  }
});

test("durable immediate writes resolve after an fsync that covers them; reopen has them all", async (t) => {
  const spy = spyOnSyncs(t);
  const c = await setup(t);
  const s = await c.open({ durable: true, checkpointThreshold: 30 });
  for (let i = 0; i < 50; i++) {
    await s.set(`k${i}`, { i });
    assert.ok(spy.durableUpTo >= spy.appends, `set ${i} resolved before its fsync`);
  }
  await s.delete("k0");
  assert.ok(spy.durableUpTo >= spy.appends, "delete resolved before its fsync");
  await s.batch(() => {
    s.set("b1", { v: 1 });
    s.set("b2", { v: 2 });
  });
  assert.ok(spy.durableUpTo >= spy.appends, "batch resolved before its fsync");
  assert.equal(await s.undo(), true);
  assert.ok(spy.durableUpTo >= spy.appends, "undo resolved before its fsync");
  await s.close();
  const r = await c.open({ readOnly: true });
  assert.equal(r.count(), 50);
  assert.equal(r.has("k0"), false);
  assert.equal(r.has("b1"), true);
  assert.equal(r.has("b2"), false, "undo takes back the batch's last op");
});

test("many writes in flight share fsyncs (group commit), each resolving only once covered", async (t) => {
  const spy = spyOnSyncs(t);
  const c = await setup(t);
  const s = await c.open({ durable: true, checkpointThreshold: 100000 });
  const n = 500;
  const checks = [];
  for (let i = 0; i < n; i++) {
    const p = s.set(`k${i}`, { i });
    const mine = spy.appends; // this write's append has happened (or is queued behind others)
    checks.push(p.then(() => assert.ok(spy.durableUpTo >= Math.min(mine, i + 1), `write ${i} resolved before an fsync covered it`)));
  }
  await Promise.all(checks);
  assert.equal(spy.appends, n);
  assert.ok(spy.syncs < n / 5, `expected shared fsyncs, got ${spy.syncs} for ${n} writes`);
  await s.close();
  const r = await c.open({ readOnly: true });
  assert.equal(r.count(), n);
});

test("a write that triggers a checkpoint, and writes across op files, are covered", async (t) => {
  const spy = spyOnSyncs(t);
  const c = await setup(t);
  const s = await c.open({ durable: true, checkpointThreshold: 5 });
  await Promise.all(Array.from({ length: 40 }, (_, i) => s.set(`k${i}`, { i })));
  assert.ok(spy.durableUpTo >= 40);
  await s.close();
  const r = await c.open({ readOnly: true });
  assert.equal(r.count(), 40);
});

for (const writeMode of ["group", "async"]) {
  test(`durable ${writeMode} mode: flush() resolves after the buffered writes are fsynced`, async (t) => {
    const spy = spyOnSyncs(t);
    const c = await setup(t);
    const s = await c.open({ durable: true, writeMode, groupCommitMs: 10000 });
    for (let i = 0; i < 20; i++) await s.set(`k${i}`, { i });
    const before = spy.syncs;
    await s.flush();
    assert.ok(spy.syncs > before, "flush fsynced");
    await s.close();
    const r = await c.open({ readOnly: true });
    assert.equal(r.count(), 20);
  });
}

test("without durable, writes do not fsync", async (t) => {
  const spy = spyOnSyncs(t);
  const c = await setup(t);
  const s = await c.open({});
  for (let i = 0; i < 20; i++) await s.set(`k${i}`, { i });
  await s.close();
  assert.equal(spy.syncs, 0);
});

test("durable with a JavaScript backend leaves durability to the backend", async (t) => {
  const spy = spyOnSyncs(t);
  const backend = new MemoryBackend();
  const s = new Store();
  await s.open("mem", { durable: true, backend });
  await s.set("a", { v: 1 });
  await s.close();
  assert.equal(spy.syncs, 0);
});

test("durable multi-writer agents fsync their own op files", async (t) => {
  const spy = spyOnSyncs(t);
  const c = await setup(t);
  const a = await c.open({ durable: true, agentId: "a", checkpointOnClose: false });
  const b = await c.open({ durable: true, agentId: "b", checkpointOnClose: false });
  await Promise.all([a.set("x", { v: 1 }), b.set("y", { v: 2 }), a.set("z", { v: 3 })]);
  assert.ok(spy.durableUpTo >= 3);
  await a.close();
  await b.close();
  const files = await readdir(join(c.dir, "ops"));
  assert.equal(files.filter((f) => f.startsWith("agent-")).length, 2);
});
