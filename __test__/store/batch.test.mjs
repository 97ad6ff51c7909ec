// batch(fn): synchronous body, one append, all-or-nothing.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Store, isReference } from "../support/impl.mjs";
import { setup, readOps, readManifest } from "../support/helpers.mjs";

test("batch applies every op and appends them all, in order", async (t) => {
  const c = await setup(t);
  const s = await c.open({ checkpointOnClose: false });
  await s.set("pre", { v: 0 });
  const p = s.batch(() => {
    s.set("a", { v: 1 });
    s.set("b", { v: 2 });
    s.set("a", { v: 3 });
    s.delete("pre");
  });
  assert.ok(p instanceof Promise);
  assert.equal(await p, undefined);
  assert.deepEqual(s.entries(), [
    ["a", { v: 3 }],
    ["b", { v: 2 }],
  ]);
  assert.equal(s.stats().opsCount, 5);
  const { ops } = await readOps(c.dir);
  assert.deepEqual(
    ops.map(({ ts, ...o }) => o),
    [
      { op: "set", id: "pre", prev: null, data: { v: 0 } },
      { op: "set", id: "a", prev: null, data: { v: 1 } },
      { op: "set", id: "b", prev: null, data: { v: 2 } },
      { op: "set", id: "a", prev: { v: 1 }, data: { v: 3 } },
      { op: "delete", id: "pre", prev: { v: 0 } },
    ],
  );
  await s.close();
  const r = await c.open({ readOnly: true });
  assert.deepEqual(r.entries(), [
    ["a", { v: 3 }],
    ["b", { v: 2 }],
  ]);
});

test("inside the batch function, reads see each change at once", async (t) => {
  const c = await setup(t);
  const s = await c.open();
  await s.set("x", { v: 0 });
  const seen = [];
  await s.batch(() => {
    s.set("a", { v: 1 });
    seen.push(s.get("a"), s.has("a"), s.count());
    s.delete("x");
    seen.push(s.has("x"), s.count());
  });
  assert.deepEqual(seen, [{ v: 1 }, true, 2, false, 1]);
});

test("a throwing batch rolls every change back, writes nothing, and rethrows the same error", async (t) => {
  const c = await setup(t);
  const s = await c.open({ checkpointOnClose: false });
  const orig = { name: "orig", extra: "x".repeat(50) };
  await s.set("u", orig);
  await s.set("d", { v: "to-delete" });
  await s.set("k", { v: "kept" });
  const before = { file: (await readOps(c.dir)).text, manifest: (await readManifest(c.dir)).text, entries: JSON.stringify(s.entries()) };
  const boom = new Error("boom");
  await assert.rejects(
    s.batch(() => {
      s.set("n", { v: "new" });
      s.set("u", { name: "changed", extra: "x".repeat(50) }); // delta-encoded update
      s.set("u", { name: "changed again" }); // full update
      s.delete("d");
      s.set("d", { v: "recreated" });
      s.set("n", { v: "new2" });
      throw boom;
    }),
    (e) => e === boom,
  );
  const byId = (entries) => JSON.stringify(Object.fromEntries([...entries].sort(([a], [b]) => (a < b ? -1 : 1))));
  assert.equal(byId(s.entries()), byId(JSON.parse(before.entries)));
  assert.equal(JSON.stringify(s.get("u")), JSON.stringify(orig), "key order of the restored record");
  assert.equal(s.stats().opsCount, 3);
  assert.equal((await readOps(c.dir)).text, before.file);
  assert.equal((await readManifest(c.dir)).text, before.manifest);
  await s.close();
  const r = await c.open({ readOnly: true });
  assert.equal(JSON.stringify(r.entries()), before.entries);
});

test("rollback re-inserts a record deleted in the batch at the end of the iteration order", async (t) => {
  // Map semantics of the reference: the rollback of a delete is a fresh insertion, so the
  // in-memory order (and so the next snapshot) differs from the order a reload would give.
  const c = await setup(t);
  const s = await c.open({ checkpointOnClose: false });
  await s.set("a", { v: 1 });
  await s.set("b", { v: 2 });
  await s.set("c", { v: 3 });
  await assert.rejects(
    s.batch(() => {
      s.delete("a");
      throw new Error("x");
    }),
    { message: "x" },
  );
  assert.deepEqual(
    s.entries().map(([id]) => id),
    ["b", "c", "a"],
  );
  await s.compact();
  const r = await c.open({ readOnly: true });
  assert.deepEqual(
    r.entries().map(([id]) => id),
    ["b", "c", "a"],
  );
});

test("delete of a missing record inside a batch throws at the call and rolls the batch back", async (t) => {
  const c = await setup(t);
  const s = await c.open();
  await s.set("a", { v: 1 });
  const before = (await readOps(c.dir)).text;
  let thrown;
  await assert.rejects(
    s.batch(() => {
      s.set("b", { v: 2 });
      try {
        s.delete("ghost");
      } catch (e) {
        thrown = e;
        throw e;
      }
    }),
    { message: "Record 'ghost' not found" },
  );
  assert.equal(thrown?.message, "Record 'ghost' not found");
  assert.deepEqual(s.entries(), [["a", { v: 1 }]]);
  assert.equal((await readOps(c.dir)).text, before);
});

test("an empty batch does no I/O and resolves", async (t) => {
  const c = await setup(t);
  const s = await c.open({ checkpointThreshold: 1 });
  const before = { file: (await readOps(c.dir)).text, manifest: (await readManifest(c.dir)).text };
  assert.equal(await s.batch(() => {}), undefined);
  assert.equal(await s.batch(() => s.count()), undefined);
  assert.equal((await readOps(c.dir)).text, before.file);
  assert.equal((await readManifest(c.dir)).text, before.manifest, "no checkpoint either");
  assert.equal(s.stats().opsCount, 0);
});

test("a batch that only reads after a failed set still leaves the store usable", async (t) => {
  const c = await setup(t);
  const s = await c.open();
  await assert.rejects(
    s.batch(() => {
      throw new RangeError("nope");
    }),
    RangeError,
  );
  await s.set("a", { v: 1 });
  await s.batch(() => s.set("b", { v: 2 }));
  assert.equal(s.count(), 2);
});

test("batches and plain mutations keep call order", async (t) => {
  const c = await setup(t);
  const s = await c.open({ checkpointOnClose: false });
  const p1 = s.set("a", { v: 1 });
  const p2 = s.batch(() => {
    s.set("b", { v: 1 });
    s.set("a", { v: 2 });
  });
  const p3 = s.set("c", { v: 1 });
  const p4 = s.batch(() => s.delete("b"));
  await Promise.all([p1, p2, p3, p4]);
  assert.deepEqual(
    (await readOps(c.dir)).ops.map((o) => `${o.op}:${o.id}`),
    ["set:a", "set:b", "set:a", "set:c", "delete:b"],
  );
  assert.deepEqual(s.entries(), [
    ["a", { v: 2 }],
    ["c", { v: 1 }],
  ]);
});

test("a large batch is one consistent append", async (t) => {
  const c = await setup(t);
  const s = await c.open({ checkpointThreshold: 100000, checkpointOnClose: false });
  await s.batch(() => {
    for (let i = 0; i < 5000; i++) s.set(`k${i}`, { i, s: "v".repeat(i % 50) });
  });
  assert.equal(s.count(), 5000);
  const { lines, text } = await readOps(c.dir);
  assert.equal(lines.length, 5000);
  assert.ok(text.endsWith("\n"));
  await s.close();
  const r = await c.open({ readOnly: true });
  assert.equal(r.count(), 5000);
  assert.deepEqual(r.get("k4999"), { i: 4999, s: "v".repeat(49) });
});

test("undo after a batch undoes only the batch's last op", async (t) => {
  const c = await setup(t);
  const s = await c.open();
  await s.batch(() => {
    s.set("a", { v: 1 });
    s.set("b", { v: 1 });
    s.set("c", { v: 1 });
  });
  assert.equal(await s.undo(), true);
  assert.deepEqual(
    s.entries().map(([id]) => id),
    ["a", "b"],
  );
  assert.deepEqual(
    (await readOps(c.dir)).ops.map((o) => o.id),
    ["a", "b"],
  );
});
