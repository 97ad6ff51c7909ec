// State survives close/reopen, via the snapshot (checkpoint on close) and via op replay.
import { test } from "node:test";
import assert from "node:assert/strict";
import { access, readFile, unlink } from "node:fs/promises";
import { join } from "node:path";
import { Store, isReference } from "../support/impl.mjs";
import { setup, readOps, readManifest, readSnapshot, listDir, writeStoreDir, jsonlSnapshot, opLine, sleep } from "../support/helpers.mjs";

test("open creates the directory tree, including missing parents", async (t) => {
  const c = await setup(t);
  const dir = join(c.dir, "a", "b", "c");
  const s = await c.open(undefined, dir);
  await s.set("x", { v: 1 });
  assert.deepEqual(await listDir(dir, ""), [".lock", "archive", "manifest.json", "ops", "snapshots"]);
  assert.equal((await listDir(dir, "snapshots")).length, 1);
  assert.equal((await listDir(dir, "ops")).length, 1);
  assert.deepEqual(await listDir(dir, "archive"), []);
});

test("state survives close and reopen (checkpoint on close)", async (t) => {
  const c = await setup(t);
  let s = await c.open();
  await s.set("a", { name: "A" });
  await s.set("b", { name: "B" });
  await s.set("c", { name: "C" });
  await s.set("a", { name: "A2" });
  await s.delete("b");
  await s.close();
  const snap = await readSnapshot(c.dir);
  assert.deepEqual(snap.ids, ["a", "c"]);
  assert.equal((await readOps(c.dir)).text, "", "a fresh empty op file after the close checkpoint");
  s = await c.open();
  assert.deepEqual(s.entries(), [
    ["a", { name: "A2" }],
    ["c", { name: "C" }],
  ]);
  assert.equal(s.stats().opsCount, 0);
  assert.deepEqual(s.getOps(), []);
});

test("state survives reopen by op replay when checkpointOnClose is false", async (t) => {
  const c = await setup(t);
  let s = await c.open({ checkpointOnClose: false });
  const snapBefore = (await readManifest(c.dir)).json.currentSnapshot;
  await s.set("a", { n: 1 });
  await s.set("b", { n: 2 });
  await s.set("a", { n: 3 });
  await s.delete("b");
  await s.set("c", { n: 4 });
  await s.close();
  assert.equal((await readManifest(c.dir)).json.currentSnapshot, snapBefore, "no checkpoint on close");
  assert.equal((await readOps(c.dir)).lines.length, 5);
  s = await c.open({ checkpointOnClose: false });
  assert.deepEqual(s.entries(), [
    ["a", { n: 3 }],
    ["c", { n: 4 }],
  ]);
  assert.equal(s.stats().opsCount, 5, "ops since the last checkpoint are loaded from the op file");
  assert.deepEqual(
    s.getHistory("a").map((o) => [o.op, o.data]),
    [
      ["set", { n: 1 }],
      ["set", { n: 3 }],
    ],
  );
  assert.deepEqual(
    s.getOps().map((o) => o.id),
    ["a", "b", "a", "b", "c"],
  );
  // keep appending to the same op file in the next session
  await s.set("d", { n: 5 });
  assert.equal((await readOps(c.dir)).lines.length, 6);
});

test("several sessions in a row accumulate state", async (t) => {
  const c = await setup(t);
  for (let session = 0; session < 4; session++) {
    const s = await c.open({ checkpointOnClose: session % 2 === 0 });
    assert.equal(s.count(), session * 2);
    await s.set(`s${session}-a`, { session });
    await s.set(`s${session}-b`, { session });
    await s.close();
  }
  const s = await c.open({ readOnly: true });
  assert.deepEqual(
    s.entries().map(([id]) => id),
    ["s0-a", "s0-b", "s1-a", "s1-b", "s2-a", "s2-b", "s3-a", "s3-b"],
  );
});

test("close without any op since the last checkpoint writes nothing", async (t) => {
  const c = await setup(t);
  let s = await c.open();
  await s.set("a", { v: 1 });
  await s.close();
  const m1 = (await readManifest(c.dir)).text;
  const snaps1 = await listDir(c.dir, "snapshots");
  const ops1 = await listDir(c.dir, "ops");
  await sleep(3);
  s = await c.open();
  assert.deepEqual(s.get("a"), { v: 1 });
  await s.close();
  assert.equal((await readManifest(c.dir)).text, m1);
  assert.deepEqual(await listDir(c.dir, "snapshots"), snaps1);
  assert.deepEqual(await listDir(c.dir, "ops"), ops1);
});

test("get returns the stored object until reload, then an equal fresh object", async (t) => {
  const c = await setup(t);
  let s = await c.open();
  const rec = { nested: { list: [1, 2] } };
  await s.set("a", rec);
  assert.equal(s.get("a"), rec);
  assert.equal(s.all()[0], rec);
  assert.equal(s.entries()[0][1], rec);
  assert.equal(s.filter(() => true)[0], rec);
  await s.close();
  s = await c.open();
  assert.notEqual(s.get("a"), rec);
  assert.deepEqual(s.get("a"), rec);
  assert.equal(s.get("a"), s.get("a"), "repeated gets return the same object");
});

test("no temporary files are left behind", async (t) => {
  const c = await setup(t);
  const s = await c.open({ checkpointThreshold: 3 });
  for (let i = 0; i < 10; i++) await s.set(`k${i}`, { i });
  await s.compact();
  await s.archive((v) => v.i < 2, "2020-Q1");
  await s.close();
  for (const sub of ["", "snapshots", "ops", "archive"]) {
    for (const f of await listDir(c.dir, sub)) assert.ok(!f.endsWith(".tmp"), `${sub}/${f}`);
  }
});

test("a manifest pointing to a missing snapshot fails to open with a clear message", async (t) => {
  const c = await setup(t);
  await writeStoreDir(c.dir, { snapshot: jsonlSnapshot([["a", { v: 1 }]]) });
  await unlink(join(c.dir, "snapshots", "snap-1000.jsonl"));
  const s = c.store();
  await assert.rejects(s.open(c.dir), {
    message: "Snapshot file not found: snapshots/snap-1000.jsonl. The data directory may be corrupted.",
  });
});

test("a manifest pointing to a missing op file opens with the snapshot state", async (t) => {
  const c = await setup(t);
  await writeStoreDir(c.dir, { snapshot: jsonlSnapshot([["a", { v: 1 }]]) });
  await unlink(join(c.dir, "ops", "ops-1000.jsonl"));
  const s = await c.open({ readOnly: true });
  assert.deepEqual(s.entries(), [["a", { v: 1 }]]);
  assert.equal(s.stats().opsCount, 0);
});

test("an invalid manifest fails to open with the validator's message", async (t) => {
  const c = await setup(t);
  // The reference's message, to which ours appends the file it concerns.
  const msg = (text) => new RegExp(`^${text}${isReference ? "" : ` \\(${c.dir}/manifest\\.json\\)`}$`);
  await writeStoreDir(c.dir, { snapshot: jsonlSnapshot([]), manifest: { version: 0 } });
  await assert.rejects(c.store().open(c.dir, { readOnly: true }), {
    message: msg("Invalid manifest: version must be a positive finite integer"),
  });
  await writeStoreDir(c.dir, { snapshot: jsonlSnapshot([]), manifest: { archiveSegments: "nope" } });
  await assert.rejects(c.store().open(c.dir, { readOnly: true }), {
    message: msg("Invalid manifest: archiveSegments must be an array"),
  });
  await writeStoreDir(c.dir, { snapshot: jsonlSnapshot([]), manifest: { currentSnapshot: "" } });
  await assert.rejects(c.store().open(c.dir, { readOnly: true }), {
    message: msg("Invalid manifest: missing currentSnapshot"),
  });
});

test("a hand-written directory (snapshot + ops) opens with snapshot then ops applied in order", async (t) => {
  const c = await setup(t);
  await writeStoreDir(c.dir, {
    snapshot: jsonlSnapshot([
      ["a", { v: 1 }],
      ["b", { v: 2 }],
    ]),
    ops: [
      opLine({ ts: "2024-01-01T00:00:01.000Z", id: "c", data: { v: 3 } }),
      opLine({ ts: "2024-01-01T00:00:02.000Z", id: "a", prev: { v: 1 }, data: { v: 10 } }),
      opLine({ ts: "2024-01-01T00:00:03.000Z", op: "delete", id: "b", prev: { v: 2 } }),
      opLine({ ts: "2024-01-01T00:00:04.000Z", id: "b", data: { v: 20 } }),
    ],
  });
  const s = await c.open({ checkpointOnClose: false });
  assert.deepEqual(s.entries(), [
    ["a", { v: 10 }],
    ["c", { v: 3 }],
    ["b", { v: 20 }],
  ]);
  assert.equal(s.stats().opsCount, 4);
  assert.deepEqual(s.getOps()[1], { ts: "2024-01-01T00:00:02.000Z", op: "set", id: "a", prev: { v: 1 }, data: { v: 10 } });
  // our appends go to the same op file, after the existing lines
  const before = await readFile(join(c.dir, "ops", "ops-1000.jsonl"), "utf8");
  await s.set("d", { v: 4 });
  const after = await readFile(join(c.dir, "ops", "ops-1000.jsonl"), "utf8");
  assert.ok(after.startsWith(before));
  assert.equal(JSON.parse(after.slice(before.length)).id, "d");
});

test("an op file without a trailing newline is still read completely", async (t) => {
  const c = await setup(t);
  await writeStoreDir(c.dir, {
    snapshot: jsonlSnapshot([]),
    ops: opLine({ id: "a", data: { v: 1 } }) + "\n" + opLine({ id: "b", data: { v: 2 } }),
  });
  const s = await c.open({ readOnly: true });
  assert.deepEqual(s.entries(), [
    ["a", { v: 1 }],
    ["b", { v: 2 }],
  ]);
});

test("a store written by one Store instance is readable by another in the same process", async (t) => {
  const c = await setup(t);
  const w = await c.open({ checkpointOnClose: false });
  await w.set("a", { v: 1 });
  const r = await c.open({ readOnly: true });
  assert.deepEqual(r.get("a"), { v: 1 });
  await access(join(c.dir, ".lock"));
});
