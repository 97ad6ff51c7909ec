// Mutations run one at a time in call order, including a checkpoint a queued write triggers.
import { test } from "node:test";
import assert from "node:assert/strict";
import { setup } from "../support/helpers.mjs";

test("a write queued behind another mutation can trigger a checkpoint without stalling", async (t) => {
  const c = await setup(t);
  const s = await c.open({ checkpointThreshold: 2 });
  const pending = [s.compact(), s.set("a", { n: 1 }), s.set("b", { n: 2 }), s.set("c", { n: 3 })];
  const timeout = new Promise((_, reject) => setTimeout(() => reject(new Error("mutations stalled")), 5000).unref());
  await Promise.race([Promise.all(pending), timeout]);
  assert.equal(s.stats().opsCount, 1, "the 2nd queued write checkpointed");
  assert.deepEqual(s.entries(), [["a", { n: 1 }], ["b", { n: 2 }], ["c", { n: 3 }]]);
  await s.close();
  const r = await c.open({ readOnly: true });
  assert.deepEqual(r.entries(), [["a", { n: 1 }], ["b", { n: 2 }], ["c", { n: 3 }]]);
});

test("mutations issued without awaiting are logged in call order", async (t) => {
  const c = await setup(t);
  const s = await c.open();
  const results = await Promise.allSettled([
    s.set("x", { v: 1 }),
    s.set("x", { v: 2 }),
    s.delete("x"),
    s.delete("x"),
    s.set("y", { v: 3 }),
  ]);
  assert.deepEqual(results.map((r) => r.status), ["fulfilled", "fulfilled", "fulfilled", "rejected", "fulfilled"]);
  assert.equal(results[3].reason.message, "Record 'x' not found");
  assert.deepEqual(s.getOps().map((op) => `${op.op} ${op.id}`), ["set x", "set x", "delete x", "set y"]);
  assert.deepEqual(s.entries(), [["y", { v: 3 }]]);
});
