// readOnly, skipLoad, version + migrate.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { Store, isReference } from "../support/impl.mjs";
import { setup, readOps, readManifest, readSnapshot, listDir, writeStoreDir, opLine, sleep, exists } from "../support/helpers.mjs";

const READ_ONLY = "Store is read-only. Cannot perform mutations.";
const NO_STORE = "Cannot open in readOnly mode: no existing store found";

// --- readOnly ---

test("readOnly on a missing directory rejects and creates nothing", async (t) => {
  const c = await setup(t);
  const dir = c.sub("does-not-exist");
  await assert.rejects(c.store().open(dir, { readOnly: true }), { message: NO_STORE });
  assert.equal(await exists(dir), false);
});

test("readOnly on an empty directory rejects and creates nothing", async (t) => {
  const c = await setup(t);
  const dir = c.sub("empty");
  await mkdir(dir);
  await assert.rejects(c.store().open(dir, { readOnly: true }), { message: NO_STORE });
  assert.deepEqual(await listDir(dir, ""), []);
});

test("readOnly loads snapshot + ops, takes no lock, and every mutation throws", async (t) => {
  const c = await setup(t);
  const w = await c.open({ checkpointOnClose: false });
  await w.set("a", { v: 1 });
  await w.compact();
  await w.set("b", { v: 2 });
  await w.set("a", { v: 3 });
  await w.close();
  const files = {
    root: await listDir(c.dir, ""),
    snaps: await listDir(c.dir, "snapshots"),
    ops: await listDir(c.dir, "ops"),
    manifest: (await readManifest(c.dir)).text,
    opsText: (await readOps(c.dir)).text,
  };

  const r = await c.open({ readOnly: true });
  assert.equal(await exists(join(c.dir, ".lock")), false, "readOnly takes no lock");
  assert.deepEqual(r.entries(), [
    ["a", { v: 3 }],
    ["b", { v: 2 }],
  ]);
  assert.equal(r.stats().opsCount, 2);
  assert.equal(r.getHistory("a").length, 1);

  assert.throws(() => r.set("x", { v: 1 }), { message: READ_ONLY });
  assert.throws(() => r.delete("a"), { message: READ_ONLY });
  assert.throws(() => r.delete("missing"), { message: READ_ONLY });
  // async in the reference; a sync throw is also accepted
  await assert.rejects(async () => r.batch(() => {}), { message: READ_ONLY });
  await assert.rejects(async () => r.undo(), { message: READ_ONLY });
  await assert.rejects(async () => r.compact(), { message: READ_ONLY });
  await assert.rejects(async () => r.archive(() => true), { message: READ_ONLY });
  assert.equal(r.count(), 2);

  // close does not checkpoint, and nothing was written at any point
  await r.close();
  assert.deepEqual(await listDir(c.dir, ""), files.root);
  assert.deepEqual(await listDir(c.dir, "snapshots"), files.snaps);
  assert.deepEqual(await listDir(c.dir, "ops"), files.ops);
  assert.equal((await readManifest(c.dir)).text, files.manifest);
  assert.equal((await readOps(c.dir)).text, files.opsText);
});

test("readOnly opens while a writer holds the lock; several readers at once", async (t) => {
  const c = await setup(t);
  const w = await c.open();
  await w.set("a", { v: 1 });
  const r1 = await c.open({ readOnly: true });
  const r2 = await c.open({ readOnly: true });
  assert.deepEqual(r1.get("a"), { v: 1 });
  assert.deepEqual(r2.get("a"), { v: 1 });
  await r1.close();
  await r2.close();
  // the writer's lock is untouched by the readers
  await assert.rejects(c.store().open(c.dir), { message: new RegExp(`^Store is locked by process ${process.pid}\\.`) });
  await w.set("b", { v: 2 });
});

test("readOnly readers do not interfere with a later writer open", async (t) => {
  const c = await setup(t);
  let w = await c.open();
  await w.set("a", { v: 1 });
  await w.close();
  const r = await c.open({ readOnly: true });
  w = await c.open();
  await w.set("b", { v: 2 });
  assert.deepEqual(r.entries(), [["a", { v: 1 }]]);
});

// --- skipLoad ---

test("skipLoad: nothing loaded, writes append to the current op file, no checkpoint on close", async (t) => {
  const c = await setup(t);
  let s = await c.open({ checkpointOnClose: false });
  await s.set("a", { v: 1 });
  await s.compact();
  await s.set("b", { v: 2 });
  await s.close();
  const m0 = (await readManifest(c.dir)).text;
  const ops0 = (await readOps(c.dir)).text;

  s = await c.open({ skipLoad: true });
  assert.equal(await exists(join(c.dir, ".lock")), true, "skipLoad takes the lock");
  assert.equal(s.count(), 0);
  assert.equal(s.get("a"), undefined);
  assert.deepEqual(s.entries(), []);
  assert.equal(s.stats().opsCount, 0);
  await s.set("c", { v: 3 });
  assert.deepEqual(s.entries(), [["c", { v: 3 }]]);
  assert.equal(s.stats().opsCount, 1);
  const ops1 = await readOps(c.dir);
  assert.ok(ops1.text.startsWith(ops0));
  assert.deepEqual(
    ops1.ops.map((o) => o.id),
    ["b", "c"],
  );
  assert.equal(ops1.ops[1].prev, null, "nothing loaded, so this is a create");
  await s.close();
  assert.equal((await readManifest(c.dir)).text, m0, "no checkpoint on close by default");
  assert.equal(await exists(join(c.dir, ".lock")), false);

  s = await c.open({ readOnly: true });
  assert.deepEqual(s.entries(), [
    ["a", { v: 1 }],
    ["b", { v: 2 }],
    ["c", { v: 3 }],
  ]);
});

test("skipLoad: compact() refuses with a message naming skipLoad", async (t) => {
  const c = await setup(t);
  let s = await c.open();
  await s.set("a", { v: 1 });
  await s.close();
  s = await c.open({ skipLoad: true });
  await assert.rejects(async () => s.compact(), {
    message: "Cannot compact in skipLoad mode — in-memory Map is incomplete",
  });
  await s.set("b", { v: 2 });
  await s.close();
  const r = await c.open({ readOnly: true });
  assert.deepEqual(
    r.entries().map(([id]) => id),
    ["a", "b"],
  );
});

// The reference still auto-checkpoints in skipLoad mode when checkpointThreshold is reached, and
// that snapshot holds only the records written in this session: every record that was not loaded
// is lost. Not listed in SPEC 7, but SPEC 4 says skipLoad "writes append".
test(
  "skipLoad: reaching checkpointThreshold does not checkpoint the incomplete view",
  { skip: isReference && !process.env.OPSLOG_UNSKIP_DEFECTS && "reference defect (not in SPEC 7): skipLoad auto-checkpoint drops unloaded records" },
  async (t) => {
    const c = await setup(t);
    let s = await c.open();
    for (let i = 0; i < 5; i++) await s.set(`old${i}`, { i });
    await s.close();
    s = await c.open({ skipLoad: true, checkpointThreshold: 3 });
    for (let i = 0; i < 5; i++) await s.set(`new${i}`, { i });
    await s.close();
    const r = await c.open({ readOnly: true });
    assert.equal(r.count(), 10);
    assert.deepEqual(r.get("old0"), { i: 0 });
  },
);

test("skipLoad: writes below the threshold never touch the snapshot", async (t) => {
  const c = await setup(t);
  let s = await c.open();
  for (let i = 0; i < 5; i++) await s.set(`old${i}`, { i });
  await s.close();
  const snap = (await readSnapshot(c.dir)).text;
  s = await c.open({ skipLoad: true, checkpointThreshold: 1000 });
  for (let i = 0; i < 5; i++) await s.set(`new${i}`, { i });
  await s.close();
  assert.equal((await readSnapshot(c.dir)).text, snap);
  const r = await c.open({ readOnly: true });
  assert.equal(r.count(), 10);
});

test("skipLoad on a fresh directory initialises a store", async (t) => {
  const c = await setup(t);
  const s = await c.open({ skipLoad: true });
  await s.set("a", { v: 1 });
  await s.close();
  const r = await c.open({ readOnly: true });
  assert.deepEqual(r.entries(), [["a", { v: 1 }]]);
});

test("skipLoad + readOnly: empty view, no lock, mutations throw", async (t) => {
  const c = await setup(t);
  let s = await c.open();
  await s.set("a", { v: 1 });
  await s.close();
  s = await c.open({ skipLoad: true, readOnly: true });
  assert.equal(s.count(), 0);
  assert.equal(await exists(join(c.dir, ".lock")), false);
  assert.throws(() => s.set("x", { v: 1 }), { message: READ_ONLY });
});

// --- version + migrate ---

test("migrate runs on records of an older stored version; the next checkpoint persists them", async (t) => {
  const c = await setup(t);
  let s = await c.open({ version: 1 });
  await s.set("a", { name: "A" });
  await s.set("b", { name: "B" });
  await s.close();
  assert.equal((await readSnapshot(c.dir)).header.version, 1);

  const calls = [];
  s = await c.open({
    version: 2,
    migrate: (record, fromVersion) => {
      calls.push([JSON.stringify(record), fromVersion]);
      return { ...record, migrated: fromVersion };
    },
  });
  assert.deepEqual(calls, [
    ['{"name":"A"}', 1],
    ['{"name":"B"}', 1],
  ]);
  assert.deepEqual(s.entries(), [
    ["a", { name: "A", migrated: 1 }],
    ["b", { name: "B", migrated: 1 }],
  ]);
  // migration alone writes nothing
  assert.equal((await readSnapshot(c.dir)).header.version, 1);
  await sleep(3);
  await s.compact();
  const snap = await readSnapshot(c.dir);
  assert.equal(snap.header.version, 2);
  assert.deepEqual(snap.records, [
    { id: "a", data: { name: "A", migrated: 1 } },
    { id: "b", data: { name: "B", migrated: 1 } },
  ]);
  assert.equal((await readManifest(c.dir)).json.version, 2);
  await s.close();

  let called = 0;
  s = await c.open({
    version: 2,
    migrate: (r) => {
      called++;
      return r;
    },
  });
  assert.equal(called, 0, "no migration once the stored version is current");
  assert.deepEqual(s.get("a"), { name: "A", migrated: 1 });
});

test("migrate applies to snapshot records only; ops replayed after it are taken as written", async (t) => {
  const c = await setup(t);
  let s = await c.open({ version: 1, checkpointOnClose: false });
  await s.set("snap", { v: 1 });
  await s.compact();
  await s.set("op", { v: 1 });
  await s.close();
  s = await c.open({ version: 2, checkpointOnClose: false, migrate: (r) => ({ ...r, m: true }) });
  assert.deepEqual(s.get("snap"), { v: 1, m: true });
  assert.deepEqual(s.get("op"), { v: 1 });
});

test("migration happens in memory only when the store is not checkpointed (readOnly)", async (t) => {
  const c = await setup(t);
  let s = await c.open({ version: 1 });
  await s.set("a", { v: 1 });
  await s.close();
  const snapText = (await readSnapshot(c.dir)).text;
  s = await c.open({ version: 3, readOnly: true, migrate: (r, from) => ({ ...r, from }) });
  assert.deepEqual(s.get("a"), { v: 1, from: 1 });
  await s.close();
  assert.equal((await readSnapshot(c.dir)).text, snapText);
});

test("a newer stored version is kept as is (no migrate, checkpoints keep the stored version)", async (t) => {
  const c = await setup(t);
  let s = await c.open({ version: 5 });
  await s.set("a", { v: 1 });
  await s.close();
  let called = 0;
  s = await c.open({
    version: 2,
    migrate: (r) => {
      called++;
      return r;
    },
  });
  assert.equal(called, 0);
  await s.set("b", { v: 1 });
  await s.compact();
  assert.equal((await readSnapshot(c.dir)).header.version, 5);
  assert.equal((await readManifest(c.dir)).json.version, 5);
});

test("migrate sees legacy-snapshot records and their version", async (t) => {
  const c = await setup(t);
  await writeStoreDir(c.dir, {
    snapshot: JSON.stringify({ version: 1, timestamp: "2024-01-01T00:00:00.000Z", records: { x: { n: 1 } } }),
    ops: [opLine({ id: "y", data: { n: 2 } })],
  });
  const seen = [];
  const s = await c.open({ version: 2, migrate: (r, v) => (seen.push(v), { ...r, v2: true }) });
  assert.deepEqual(seen, [1]);
  assert.deepEqual(s.entries(), [
    ["x", { n: 1, v2: true }],
    ["y", { n: 2 }],
  ]);
});
