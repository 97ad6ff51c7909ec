// undo(): reverses the last op, removes exactly its line from the op file.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Store, isReference } from "../support/impl.mjs";
import { setup, readOps } from "../support/helpers.mjs";

test("undo of a create removes the record and the op line", async (t) => {
  const c = await setup(t);
  const s = await c.open({ checkpointOnClose: false });
  await s.set("keep", { v: 0 });
  const before = (await readOps(c.dir)).buf;
  await s.set("a", { v: 1 });
  const r = s.undo();
  assert.ok(r instanceof Promise);
  assert.equal(await r, true);
  assert.equal(s.has("a"), false);
  assert.deepEqual((await readOps(c.dir)).buf, before, "op file is byte-identical to before the op");
  assert.equal(s.stats().opsCount, 1);
  assert.deepEqual(s.getHistory("a"), []);
});

test("undo of a full-prev update restores the previous record", async (t) => {
  const c = await setup(t);
  const s = await c.open({ checkpointOnClose: false });
  await s.set("a", { v: 1 });
  const before = (await readOps(c.dir)).buf;
  await s.set("a", { w: 2 });
  assert.equal((await readOps(c.dir)).ops[1].encoding, undefined);
  assert.equal(await s.undo(), true);
  assert.deepEqual(s.get("a"), { v: 1 });
  assert.deepEqual((await readOps(c.dir)).buf, before);
});

test("undo of a delta-encoded update restores the previous record", async (t) => {
  const c = await setup(t);
  const s = await c.open({ checkpointOnClose: false });
  const big = "x".repeat(100);
  await s.set("a", { name: "A", body: big, status: "open", gone: 1 });
  const before = (await readOps(c.dir)).buf;
  await s.set("a", { name: "A", body: big, status: "closed", added: true });
  const last = (await readOps(c.dir)).ops.at(-1);
  assert.equal(last.encoding, "delta");
  assert.deepEqual(last.prev, { $set: { status: "open", gone: 1 }, $unset: ["added"] });
  assert.equal(await s.undo(), true);
  assert.deepEqual(s.get("a"), { name: "A", body: big, status: "open", gone: 1 });
  assert.deepEqual((await readOps(c.dir)).buf, before);
});

test("undo of a delta update rebuilds the record as {...current, ...$set} minus $unset (key order)", async (t) => {
  const c = await setup(t);
  const s = await c.open({ checkpointOnClose: false });
  const big = "y".repeat(100);
  await s.set("a", { first: 1, removed: "r", body: big, last: 2 });
  await s.set("a", { first: 1, body: big, last: 3 });
  assert.equal((await readOps(c.dir)).ops.at(-1).encoding, "delta");
  await s.undo();
  // "removed" comes back at the end: keys already present keep their place, re-added ones follow.
  assert.equal(JSON.stringify(s.get("a")), JSON.stringify({ first: 1, body: big, last: 2, removed: "r" }));
  await s.compact();
  await s.close();
  const r = await c.open({ readOnly: true });
  assert.equal(JSON.stringify(r.get("a")), JSON.stringify({ first: 1, body: big, last: 2, removed: "r" }));
});

test("undo of a delete brings the record back", async (t) => {
  const c = await setup(t);
  const s = await c.open({ checkpointOnClose: false });
  await s.set("a", { v: 1, nested: { deep: [1, 2] } });
  await s.set("b", { v: 2 });
  await s.delete("a");
  assert.equal(await s.undo(), true);
  assert.deepEqual(s.get("a"), { v: 1, nested: { deep: [1, 2] } });
  assert.equal(s.count(), 2);
  assert.deepEqual(
    (await readOps(c.dir)).ops.map((o) => o.id),
    ["a", "b"],
  );
});

test("an undone delete re-enters the iteration order at the end (and the next snapshot keeps that)", async (t) => {
  const c = await setup(t);
  const s = await c.open({ checkpointOnClose: false });
  await s.set("a", { v: 1 });
  await s.set("b", { v: 2 });
  await s.set("c", { v: 3 });
  await s.delete("a");
  await s.undo();
  assert.deepEqual(
    s.entries().map(([id]) => id),
    ["b", "c", "a"],
  );
  await s.compact();
  await s.close();
  const r = await c.open({ readOnly: true });
  assert.deepEqual(
    r.entries().map(([id]) => id),
    ["b", "c", "a"],
  );
});

test("undo with nothing to undo resolves false and writes nothing", async (t) => {
  const c = await setup(t);
  const s = await c.open();
  assert.equal(await s.undo(), false);
  await s.set("a", { v: 1 });
  await s.compact();
  assert.equal(await s.undo(), false, "ops before the last checkpoint cannot be undone");
  assert.deepEqual(s.get("a"), { v: 1 });
  assert.equal((await readOps(c.dir)).text, "");
});

test("multiple undos walk back through the log, then false", async (t) => {
  const c = await setup(t);
  const s = await c.open({ checkpointOnClose: false });
  const snaps = [];
  const files = [];
  const step = async (fn) => {
    snaps.push(JSON.stringify(s.entries()));
    files.push((await readOps(c.dir)).text);
    await fn();
  };
  await step(() => s.set("a", { v: 1 }));
  await step(() => s.set("b", { v: 1 }));
  await step(() => s.set("a", { v: 2 }));
  await step(() => s.delete("b"));
  await step(() => s.batch(() => {
    s.set("c", { v: 1 });
    s.set("a", { v: 3 });
  }));
  // the batch is two ops: two undos to get back before it
  assert.equal(await s.undo(), true);
  assert.deepEqual(s.get("a"), { v: 2 });
  assert.equal(s.has("c"), true);
  assert.equal(await s.undo(), true);
  assert.equal(JSON.stringify(s.entries()), snaps[4]);
  assert.equal((await readOps(c.dir)).text, files[4]);
  for (let i = 3; i >= 0; i--) {
    assert.equal(await s.undo(), true);
    assert.equal(JSON.stringify(s.entries()), snaps[i], `after undo back to step ${i}`);
    assert.equal((await readOps(c.dir)).text, files[i]);
  }
  assert.equal(await s.undo(), false);
  assert.equal(s.count(), 0);
});

test("undo works on ops loaded from disk after a reopen", async (t) => {
  const c = await setup(t);
  let s = await c.open({ checkpointOnClose: false });
  const big = "z".repeat(80);
  await s.set("a", { v: 1, big });
  await s.set("a", { v: 2, big }); // delta
  await s.set("b", { v: 1 });
  await s.delete("b");
  await s.close();
  s = await c.open({ checkpointOnClose: false });
  assert.equal(await s.undo(), true);
  assert.deepEqual(s.get("b"), { v: 1 });
  assert.equal(await s.undo(), true);
  assert.equal(s.has("b"), false);
  assert.equal(await s.undo(), true);
  assert.deepEqual(s.get("a"), { v: 1, big });
  await s.close();
  s = await c.open({ checkpointOnClose: false });
  assert.deepEqual(s.entries(), [["a", { v: 1, big }]]);
  assert.equal(s.stats().opsCount, 1);
});

test("undo removes exactly one line even when the op is larger than 4 KB", async (t) => {
  const c = await setup(t);
  const s = await c.open({ checkpointOnClose: false });
  await s.set("small", { v: 1 });
  await s.set("big1", { blob: "a".repeat(9000) });
  const before = (await readOps(c.dir)).buf;
  await s.set("big2", { blob: "x".repeat(10000) });
  await s.set("big2", { blob: "y".repeat(20000) });
  assert.equal(await s.undo(), true);
  assert.deepEqual(s.get("big2"), { blob: "x".repeat(10000) });
  assert.equal(await s.undo(), true);
  assert.deepEqual((await readOps(c.dir)).buf, before);
  assert.equal(await s.undo(), true);
  assert.deepEqual(
    (await readOps(c.dir)).ops.map((o) => o.id),
    ["small"],
  );
  assert.equal(await s.undo(), true);
  assert.equal((await readOps(c.dir)).text, "");
});

// The reference's truncateLastOp finds the previous newline with a UTF-16 index into the decoded
// tail and truncates at that index as a byte offset: any multi-byte character before it makes
// undo cut into the previous line (the op file is corrupted). Not listed in SPEC 7, but SPEC 4
// says undo "removes exactly that op from the log".
const multibyteSkip = isReference && !process.env.OPSLOG_UNSKIP_DEFECTS && "reference defect (not in SPEC 7): undo truncates at a UTF-16 index used as a byte offset";

test("undo removes exactly one line when ops contain multi-byte text", { skip: multibyteSkip }, async (t) => {
  const c = await setup(t);
  const s = await c.open({ checkpointOnClose: false });
  await s.set("a", { s: "éé" });
  const one = (await readOps(c.dir)).buf;
  await s.set("b", { v: 1 });
  assert.equal(await s.undo(), true);
  assert.deepEqual((await readOps(c.dir)).buf, one);
  await s.set("big1", { blob: "é🎉".repeat(3000) }); // ~21 KB line, several 4 KB chunks
  const before = (await readOps(c.dir)).buf;
  await s.set("big2", { blob: "x".repeat(10000), tail: "日本語" });
  await s.set("big2", { blob: "ü".repeat(5000) });
  assert.equal(await s.undo(), true);
  assert.equal(await s.undo(), true);
  assert.deepEqual((await readOps(c.dir)).buf, before);
  assert.equal(await s.undo(), true);
  assert.deepEqual((await readOps(c.dir)).buf, one);
  await s.close();
  const r = await c.open({ readOnly: true });
  assert.deepEqual(r.entries(), [["a", { s: "éé" }]]);
});

test("writes after an undo append right after the remaining ops", async (t) => {
  const c = await setup(t);
  const s = await c.open({ checkpointOnClose: false });
  await s.set("a", { v: 1 });
  await s.set("b", { v: 1 });
  await s.undo();
  await s.set("c", { v: 1 });
  const { ops, text } = await readOps(c.dir);
  assert.deepEqual(
    ops.map((o) => o.id),
    ["a", "c"],
  );
  assert.equal(text.split("\n").length, 3);
  await s.close();
  const r = await c.open({ readOnly: true });
  assert.deepEqual(
    r.entries().map(([id]) => id),
    ["a", "c"],
  );
});

test("undo is serialized with other mutations in call order", async (t) => {
  const c = await setup(t);
  const s = await c.open({ checkpointOnClose: false });
  const ps = [s.set("a", { v: 1 }), s.set("b", { v: 1 }), s.undo(), s.set("c", { v: 1 }), s.undo(), s.undo()];
  const results = await Promise.all(ps);
  assert.deepEqual(results, [undefined, undefined, true, undefined, true, true]);
  assert.equal(s.count(), 0);
  assert.equal((await readOps(c.dir)).text, "");
});
