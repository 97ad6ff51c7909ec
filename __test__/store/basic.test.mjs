// CRUD, reads, call order, and the "not open" / "not found" errors (sync vs async).
import { test } from "node:test";
import assert from "node:assert/strict";
import { Store, isReference } from "../support/impl.mjs";
import { setup, readOps, readManifest, ISO_RE } from "../support/helpers.mjs";

const NOT_OPEN = "Store is not open. Call open() first.";

test("fresh store: empty reads and the files a fresh open creates", async (t) => {
  const c = await setup(t);
  const s = await c.open();
  assert.equal(s.get("nope"), undefined);
  assert.equal(s.has("nope"), false);
  assert.deepEqual(s.all(), []);
  assert.deepEqual(s.entries(), []);
  assert.deepEqual(s.filter(() => true), []);
  assert.equal(s.count(), 0);
  assert.deepEqual(s.stats(), { activeRecords: 0, opsCount: 0, archiveSegments: 0 });
  assert.deepEqual(s.getOps(), []);
  assert.deepEqual(s.getHistory("x"), []);
  assert.deepEqual(s.listArchiveSegments(), []);
  const { json } = await readManifest(c.dir);
  assert.match(json.currentSnapshot, /^snapshots\/snap-\d+\.jsonl$/);
  assert.match(json.activeOps, /^ops\/ops-\d+\.jsonl$/);
  const ops = await readOps(c.dir);
  assert.equal(ops.text, "");
});

test("set / get / has / delete", async (t) => {
  const c = await setup(t);
  const s = await c.open();
  const rec = { name: "A", status: "active" };
  const r = await s.set("a", rec);
  assert.equal(r, undefined);
  assert.equal(s.get("a"), rec, "get returns the very object that was set");
  assert.equal(s.has("a"), true);
  await s.set("a", { name: "A", status: "done" });
  assert.deepEqual(s.get("a"), { name: "A", status: "done" });
  assert.equal(s.count(), 1);
  const d = await s.delete("a");
  assert.equal(d, undefined);
  assert.equal(s.has("a"), false);
  assert.equal(s.get("a"), undefined);
  assert.equal(s.count(), 0);
  assert.equal(s.stats().opsCount, 3);
});

test("set and delete return promises; reads are plain values", async (t) => {
  const c = await setup(t);
  const s = await c.open();
  const p = s.set("a", { v: 1 });
  assert.ok(p instanceof Promise);
  await p;
  const q = s.delete("a");
  assert.ok(q instanceof Promise);
  await q;
});

test("all / entries / filter / count keep insertion order; predicate gets (value, id)", async (t) => {
  const c = await setup(t);
  const s = await c.open();
  await s.set("b", { n: 2 });
  await s.set("a", { n: 1 });
  await s.set("c", { n: 3 });
  await s.set("b", { n: 20 }); // update keeps position
  await s.delete("a");
  await s.set("a", { n: 10 }); // re-create goes to the end
  assert.deepEqual(s.entries(), [
    ["b", { n: 20 }],
    ["c", { n: 3 }],
    ["a", { n: 10 }],
  ]);
  assert.deepEqual(s.all(), [{ n: 20 }, { n: 3 }, { n: 10 }]);
  const seen = [];
  const big = s.filter((v, id) => {
    seen.push(id);
    return v.n >= 10;
  });
  assert.deepEqual(seen, ["b", "c", "a"]);
  assert.deepEqual(big, [{ n: 20 }, { n: 10 }]);
  assert.equal(s.count((v) => v.n < 10), 1);
  assert.equal(s.count((v, id) => id === "a"), 1);
  assert.equal(s.count(), 3);
});

test("ids are arbitrary non-empty strings (spaces, slashes, unicode, numeric-looking)", async (t) => {
  const c = await setup(t);
  let s = await c.open();
  const ids = ["with space", "a/b\\c", "é", "日本", "🎉", "10", "2", "1", "__proto__", "constructor", "a\nb", "x".repeat(300)];
  for (const [i, id] of ids.entries()) await s.set(id, { i });
  assert.deepEqual(s.entries().map(([id]) => id), ids);
  await s.close();
  s = await c.open();
  assert.deepEqual(s.entries().map(([id]) => id), ids, "a Map keeps insertion order, even for numeric-looking ids");
  for (const [i, id] of ids.entries()) assert.deepEqual(s.get(id), { i });
});

test("mutations run in call order when not awaited one by one", async (t) => {
  const c = await setup(t);
  const s = await c.open({ checkpointOnClose: false });
  const ps = [
    s.set("a", { v: 1 }),
    s.set("b", { v: 1 }),
    s.set("a", { v: 2 }),
    s.delete("b"),
    s.set("c", { v: 1 }),
    s.set("b", { v: 3 }),
  ];
  await Promise.all(ps);
  assert.deepEqual(s.entries(), [
    ["a", { v: 2 }],
    ["c", { v: 1 }],
    ["b", { v: 3 }],
  ]);
  const { ops } = await readOps(c.dir);
  assert.deepEqual(
    ops.map((o) => [o.op, o.id]),
    [
      ["set", "a"],
      ["set", "b"],
      ["set", "a"],
      ["delete", "b"],
      ["set", "c"],
      ["set", "b"],
    ],
  );
});

test("delete of a missing record rejects with \"Record 'x' not found\" and changes nothing", async (t) => {
  const c = await setup(t);
  const s = await c.open();
  await s.set("a", { v: 1 });
  const before = (await readOps(c.dir)).text;
  let p;
  assert.doesNotThrow(() => {
    p = s.delete("x");
  }, "not-found is an async failure, not a sync throw");
  await assert.rejects(p, { message: "Record 'x' not found" });
  assert.deepEqual(s.entries(), [["a", { v: 1 }]]);
  assert.equal(s.stats().opsCount, 1);
  assert.equal((await readOps(c.dir)).text, before);
  // the store still works after the failure
  await s.set("b", { v: 2 });
  assert.equal(s.count(), 2);
});

test("a rejected delete does not block later mutations queued behind it", async (t) => {
  const c = await setup(t);
  const s = await c.open();
  const p1 = s.delete("missing");
  const p2 = s.set("a", { v: 1 });
  await assert.rejects(p1, { message: "Record 'missing' not found" });
  await p2;
  assert.deepEqual(s.get("a"), { v: 1 });
});

test("before open: reads and set/delete throw synchronously; getManifest is null", async (t) => {
  const c = await setup(t);
  const s = c.store();
  assert.equal(s.getManifest(), null);
  assert.throws(() => s.get("a"), { message: NOT_OPEN });
  assert.throws(() => s.has("a"), { message: NOT_OPEN });
  assert.throws(() => s.all(), { message: NOT_OPEN });
  assert.throws(() => s.entries(), { message: NOT_OPEN });
  assert.throws(() => s.filter(() => true), { message: NOT_OPEN });
  assert.throws(() => s.count(), { message: NOT_OPEN });
  assert.throws(() => s.stats(), { message: NOT_OPEN });
  assert.throws(() => s.getOps(), { message: NOT_OPEN });
  assert.throws(() => s.getHistory("a"), { message: NOT_OPEN });
  assert.throws(() => s.listArchiveSegments(), { message: NOT_OPEN });
  assert.throws(() => s.set("a", { v: 1 }), { message: NOT_OPEN });
  assert.throws(() => s.delete("a"), { message: NOT_OPEN });
  assert.throws(() => s.watch(() => {}), { message: NOT_OPEN });
  // These are async in the reference (the error becomes a rejection); a sync throw is also fine.
  await assert.rejects(async () => s.batch(() => {}), { message: NOT_OPEN });
  await assert.rejects(async () => s.undo(), { message: NOT_OPEN });
  await assert.rejects(async () => s.compact(), { message: NOT_OPEN });
  await assert.rejects(async () => s.archive(() => true), { message: NOT_OPEN });
  await assert.rejects(async () => s.loadArchive("2024-Q1"), { message: NOT_OPEN });
  await assert.rejects(async () => s.tail(), { message: NOT_OPEN });
  await assert.rejects(async () => s.refresh(), { message: NOT_OPEN });
  await assert.rejects(async () => s.close(), { message: NOT_OPEN });
});

test("after close: the store is not open any more", async (t) => {
  const c = await setup(t);
  const s = await c.open();
  await s.set("a", { v: 1 });
  await s.close();
  assert.throws(() => s.get("a"), { message: NOT_OPEN });
  assert.throws(() => s.set("a", { v: 2 }), { message: NOT_OPEN });
  await assert.rejects(async () => s.close(), { message: NOT_OPEN });
});

test("a Store instance can be opened again after close", async (t) => {
  const c = await setup(t);
  const s = await c.open();
  await s.set("a", { v: 1 });
  await s.close();
  await s.open(c.dir);
  assert.deepEqual(s.get("a"), { v: 1 });
  await s.set("b", { v: 2 });
  assert.equal(s.count(), 2);
});

test("getHistory and getOps describe the ops since the last checkpoint", async (t) => {
  const c = await setup(t);
  const s = await c.open();
  const t0 = new Date().toISOString();
  await s.set("a", { v: 1 });
  await new Promise((r) => setTimeout(r, 5));
  await s.set("b", { v: 1 });
  await new Promise((r) => setTimeout(r, 5));
  const mid = s.getOps()[1].ts;
  await s.set("a", { v: 2 });
  await new Promise((r) => setTimeout(r, 5));
  await s.delete("b");
  const ops = s.getOps();
  assert.equal(ops.length, 4);
  for (const o of ops) assert.match(o.ts, ISO_RE);
  assert.ok(ops[0].ts >= t0);
  assert.deepEqual(
    ops.map(({ ts, ...rest }) => rest),
    [
      { op: "set", id: "a", prev: null, data: { v: 1 } },
      { op: "set", id: "b", prev: null, data: { v: 1 } },
      { op: "set", id: "a", prev: { v: 1 }, data: { v: 2 } },
      { op: "delete", id: "b", prev: { v: 1 } },
    ],
  );
  assert.equal("data" in ops[3], false, "a delete op has no data key");
  assert.deepEqual(
    s.getHistory("a").map((o) => o.data),
    [{ v: 1 }, { v: 2 }],
  );
  assert.deepEqual(
    s.getHistory("b").map((o) => o.op),
    ["set", "delete"],
  );
  // since is exclusive: ops with ts > since
  assert.deepEqual(
    s.getOps(mid).map((o) => [o.op, o.id]),
    [
      ["set", "a"],
      ["delete", "b"],
    ],
  );
  assert.deepEqual(s.getOps("9999-01-01T00:00:00.000Z"), []);
  // getOps returns a copy
  s.getOps().length = 0;
  assert.equal(s.getOps().length, 4);
});

test("stats() counts records and ops since the last checkpoint", async (t) => {
  const c = await setup(t);
  const s = await c.open();
  await s.set("a", { v: 1 });
  await s.set("b", { v: 1 });
  await s.delete("a");
  assert.deepEqual(s.stats(), { activeRecords: 1, opsCount: 3, archiveSegments: 0 });
  await s.compact();
  assert.deepEqual(s.stats(), { activeRecords: 1, opsCount: 0, archiveSegments: 0 });
});

test("records of any JSON-object shape round-trip through a reopen", async (t) => {
  const c = await setup(t);
  let s = await c.open();
  const rec = {
    str: "s",
    num: 42,
    neg: -7.25,
    t: true,
    f: false,
    nil: null,
    arr: [1, "two", null, { three: 3 }, [4]],
    nested: { deep: { deeper: { deepest: "yes" } } },
    empty: {},
    emptyArr: [],
  };
  await s.set("r", rec);
  await s.set("e", {});
  await s.close();
  s = await c.open();
  assert.deepEqual(s.get("r"), rec);
  assert.deepEqual(s.get("e"), {});
  assert.equal(JSON.stringify(s.get("r")), JSON.stringify(rec), "key order survives");
});

test("getManifest() reflects the manifest file after open", async (t) => {
  const c = await setup(t);
  const s = await c.open();
  const m = s.getManifest();
  const { json } = await readManifest(c.dir);
  assert.deepEqual(Object.keys(m), ["currentSnapshot", "activeOps", "archiveSegments", "stats"]);
  assert.equal(m.currentSnapshot, json.currentSnapshot);
  assert.equal(m.activeOps, json.activeOps);
  assert.deepEqual(m.archiveSegments, []);
  assert.deepEqual(m.stats, json.stats);
});
