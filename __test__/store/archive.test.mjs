// archive(predicate, segment?), listArchiveSegments(), loadArchive(segment).
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Store, isReference } from "../support/impl.mjs";
import { setup, readManifest, readSnapshot, listDir, readOps, sleep, ISO_RE } from "../support/helpers.mjs";

async function readSegment(dir, rel) {
  const text = await readFile(join(dir, rel), "utf8");
  return { text, json: JSON.parse(text) };
}

test("archive moves matching records into archive/archive-<segment>.json and checkpoints", async (t) => {
  const c = await setup(t);
  const s = await c.open();
  await s.set("a", { status: "done", n: 1 });
  await s.set("b", { status: "open", n: 2 });
  await s.set("c", { status: "done", n: 3 });
  const m0 = (await readManifest(c.dir)).json;
  await sleep(3);
  const seen = [];
  const n = await s.archive((v, id) => {
    seen.push(id);
    return v.status === "done";
  }, "2024-Q1");
  assert.equal(n, 2);
  assert.deepEqual(seen, ["a", "b", "c"], "predicate gets (value, id) for every record");
  assert.deepEqual(s.entries(), [["b", { status: "open", n: 2 }]]);
  assert.deepEqual(s.listArchiveSegments(), ["archive/archive-2024-Q1.json"]);
  assert.deepEqual(s.stats(), { activeRecords: 1, opsCount: 0, archiveSegments: 1 });

  const seg = await readSegment(c.dir, "archive/archive-2024-Q1.json");
  assert.deepEqual(Object.keys(seg.json), ["version", "period", "timestamp", "records"]);
  assert.equal(seg.text, JSON.stringify(seg.json, null, 2), "pretty-printed, 2 spaces, no trailing newline");
  assert.equal(seg.json.version, 1);
  assert.equal(seg.json.period, "2024-Q1");
  assert.match(seg.json.timestamp, ISO_RE);
  assert.deepEqual(seg.json.records, { a: { status: "done", n: 1 }, c: { status: "done", n: 3 } });

  const m1 = (await readManifest(c.dir)).json;
  assert.notEqual(m1.currentSnapshot, m0.currentSnapshot, "archive checkpoints");
  assert.deepEqual(m1.archiveSegments, ["archive/archive-2024-Q1.json"]);
  assert.equal(m1.stats.activeRecords, 1);
  assert.equal(m1.stats.archivedRecords, 2);
  assert.equal(m1.stats.opsCount, 0);
  assert.deepEqual((await readSnapshot(c.dir)).ids, ["b"]);
  assert.equal((await readOps(c.dir)).text, "");
});

test("loadArchive returns a Map of the archived records; the segment name can be partial", async (t) => {
  const c = await setup(t);
  const s = await c.open();
  await s.set("x", { v: 1 });
  await s.set("y", { v: 2 });
  await s.archive((v) => v.v === 1, "2023-Q4");
  const m = await s.loadArchive("2023-Q4");
  assert.ok(m instanceof Map);
  assert.deepEqual([...m], [["x", { v: 1 }]]);
  // loading does not bring records back into the live set
  assert.equal(s.has("x"), false);
  // falls back to a substring match on the segment path
  assert.deepEqual([...(await s.loadArchive("2023"))], [["x", { v: 1 }]]);
  assert.deepEqual([...(await s.loadArchive("archive-2023-Q4.json"))], [["x", { v: 1 }]]);
});

test("loadArchive of an unknown segment rejects with \"Archive segment 'x' not found\"", async (t) => {
  const c = await setup(t);
  const s = await c.open();
  await assert.rejects(async () => s.loadArchive("1999-Q1"), { message: "Archive segment '1999-Q1' not found" });
  await s.set("a", { v: 1 });
  await s.archive(() => true, "2024-Q2");
  await assert.rejects(async () => s.loadArchive("2024-Q3"), { message: "Archive segment '2024-Q3' not found" });
});

test("archiving into an existing segment merges; a new segment is appended to the list", async (t) => {
  const c = await setup(t);
  const s = await c.open();
  for (const id of ["a", "b", "c", "d"]) await s.set(id, { id });
  assert.equal(await s.archive((v, id) => id === "a", "P1"), 1);
  assert.equal(await s.archive((v, id) => id === "b", "P2"), 1);
  assert.equal(await s.archive((v, id) => id === "c", "P1"), 1);
  assert.deepEqual(s.listArchiveSegments(), ["archive/archive-P1.json", "archive/archive-P2.json"]);
  const p1 = await readSegment(c.dir, "archive/archive-P1.json");
  assert.deepEqual(p1.json.records, { a: { id: "a" }, c: { id: "c" } });
  assert.deepEqual(Object.keys(p1.json.records), ["a", "c"], "existing records first, then the new ones");
  assert.deepEqual([...(await s.loadArchive("P1"))], [
    ["a", { id: "a" }],
    ["c", { id: "c" }],
  ]);
  const m = (await readManifest(c.dir)).json;
  assert.deepEqual(m.archiveSegments, ["archive/archive-P1.json", "archive/archive-P2.json"]);
  assert.equal(m.stats.archivedRecords, 3);
  assert.deepEqual(s.entries(), [["d", { id: "d" }]]);
  assert.deepEqual(await listDir(c.dir, "archive"), ["archive-P1.json", "archive-P2.json"]);
});

test("archive records keep JavaScript object key order (integer-like ids first)", async (t) => {
  const c = await setup(t);
  const s = await c.open();
  for (const id of ["b", "10", "a", "2"]) await s.set(id, { id });
  await s.archive(() => true, "ord");
  const seg = await readSegment(c.dir, "archive/archive-ord.json");
  assert.deepEqual(Object.keys(seg.json.records), ["2", "10", "b", "a"]);
  assert.ok(seg.text.indexOf('"2": {') < seg.text.indexOf('"10": {'));
  assert.ok(seg.text.indexOf('"10": {') < seg.text.indexOf('"b": {'));
  assert.deepEqual([...(await s.loadArchive("ord"))].map(([id]) => id), ["2", "10", "b", "a"]);
});

test("archive with no matching record returns 0 and writes nothing", async (t) => {
  const c = await setup(t);
  const s = await c.open({ checkpointOnClose: false });
  await s.set("a", { v: 1 });
  const m0 = (await readManifest(c.dir)).text;
  assert.equal(await s.archive(() => false, "P"), 0);
  assert.equal((await readManifest(c.dir)).text, m0);
  assert.deepEqual(await listDir(c.dir, "archive"), []);
  assert.deepEqual(s.listArchiveSegments(), []);
  assert.equal(s.stats().opsCount, 1);
});

test("archive without a segment uses the current quarter, YYYY-Qn", async (t) => {
  const c = await setup(t);
  const s = await c.open();
  await s.set("a", { v: 1 });
  const now = new Date();
  const period = `${now.getFullYear()}-Q${Math.ceil((now.getMonth() + 1) / 3)}`;
  assert.equal(await s.archive(() => true), 1);
  assert.deepEqual(s.listArchiveSegments(), [`archive/archive-${period}.json`]);
  assert.equal((await readSegment(c.dir, `archive/archive-${period}.json`)).json.period, period);
  assert.deepEqual([...(await s.loadArchive(period))], [["a", { v: 1 }]]);
});

test("archive segments and counts survive reopen and later checkpoints", async (t) => {
  const c = await setup(t);
  let s = await c.open();
  await s.set("a", { v: 1 });
  await s.set("b", { v: 2 });
  await s.archive((v) => v.v === 1, "old");
  await s.set("c", { v: 3 });
  await s.close();
  const m = (await readManifest(c.dir)).json;
  assert.deepEqual(m.archiveSegments, ["archive/archive-old.json"]);
  assert.equal(m.stats.archivedRecords, 1);
  assert.equal(m.stats.activeRecords, 2);
  s = await c.open();
  assert.deepEqual(s.listArchiveSegments(), ["archive/archive-old.json"]);
  assert.equal(s.stats().archiveSegments, 1);
  assert.deepEqual([...(await s.loadArchive("old"))], [["a", { v: 1 }]]);
  await s.compact();
  assert.equal((await readManifest(c.dir)).json.stats.archivedRecords, 1);
  await s.archive((v) => v.v === 2, "old");
  assert.equal((await readManifest(c.dir)).json.stats.archivedRecords, 2);
});

test("listArchiveSegments returns a copy", async (t) => {
  const c = await setup(t);
  const s = await c.open();
  await s.set("a", { v: 1 });
  await s.archive(() => true, "P");
  s.listArchiveSegments().push("junk");
  assert.deepEqual(s.listArchiveSegments(), ["archive/archive-P.json"]);
});

test("readOnly stores can list and load archives", async (t) => {
  const c = await setup(t);
  const w = await c.open();
  await w.set("a", { v: 1 });
  await w.archive(() => true, "P");
  await w.close();
  const r = await c.open({ readOnly: true });
  assert.deepEqual(r.listArchiveSegments(), ["archive/archive-P.json"]);
  assert.deepEqual([...(await r.loadArchive("P"))], [["a", { v: 1 }]]);
});

test("a hand-written archive segment listed in the manifest loads", async (t) => {
  const c = await setup(t);
  let s = await c.open();
  await s.close();
  const { json } = await readManifest(c.dir);
  json.archiveSegments = ["archive/archive-hand.json"];
  json.stats.archivedRecords = 2;
  await writeFile(join(c.dir, "manifest.json"), JSON.stringify(json, null, 2));
  await writeFile(
    join(c.dir, "archive", "archive-hand.json"),
    JSON.stringify({ version: 1, period: "hand", timestamp: "2024-01-01T00:00:00.000Z", records: { p: { v: 1 }, q: { v: 2 } } }, null, 2),
  );
  s = await c.open();
  assert.deepEqual(s.listArchiveSegments(), ["archive/archive-hand.json"]);
  assert.deepEqual([...(await s.loadArchive("hand"))], [
    ["p", { v: 1 }],
    ["q", { v: 2 }],
  ]);
  await s.set("z", { v: 0 });
  await s.archive((v, id) => id === "z", "hand");
  assert.deepEqual(Object.keys((await readSegment(c.dir, "archive/archive-hand.json")).json.records), ["p", "q", "z"]);
  assert.equal((await readManifest(c.dir)).json.stats.archivedRecords, 3);
});

