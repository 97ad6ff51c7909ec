// Checkpoints: checkpointThreshold, compact(), close(), and what the manifest/snapshot look like.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFile, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Store, isReference } from "../support/impl.mjs";
import { setup, readOps, readOpsIfExists, readManifest, readSnapshot, sleep, checkpointed, runNode, IMPL_URL, ISO_RE, MANIFEST_KEYS, STATS_KEYS, refDefect, viaJsBackend } from "../support/helpers.mjs";

test("reaching checkpointThreshold checkpoints: new snapshot, new empty op file, manifest updated", async (t) => {
  const c = await setup(t);
  const s = await c.open({ checkpointThreshold: 3, checkpointOnClose: false });
  const m0 = (await readManifest(c.dir)).json;
  await sleep(3);
  await s.set("a", { v: 1 });
  await s.set("b", { v: 2 });
  assert.equal(s.stats().opsCount, 2);
  assert.equal((await readManifest(c.dir)).json.currentSnapshot, m0.currentSnapshot);
  await s.set("a", { v: 3 }); // third op: checkpoint
  assert.equal(s.stats().opsCount, 0);
  assert.deepEqual(s.getOps(), []);
  assert.deepEqual(s.getHistory("a"), []);
  await checkpointed(s);
  const { json: m1, text } = await readManifest(c.dir);
  assert.notEqual(m1.currentSnapshot, m0.currentSnapshot);
  assert.notEqual(m1.activeOps, m0.activeOps);
  assert.match(m1.currentSnapshot, /^snapshots\/snap-\d+\.jsonl$/);
  assert.match(m1.activeOps, /^ops\/ops-\d+\.jsonl$/);
  assert.deepEqual(Object.keys(m1), MANIFEST_KEYS);
  assert.deepEqual(Object.keys(m1.stats), STATS_KEYS);
  assert.equal(text, JSON.stringify(m1, null, 2));
  assert.deepEqual(m1.archiveSegments, []);
  assert.equal(m1.version, 1);
  assert.equal(m1.stats.activeRecords, 2);
  assert.equal(m1.stats.archivedRecords, 0);
  assert.equal(m1.stats.opsCount, 0);
  assert.equal(m1.stats.created, m0.stats.created, "created is kept");
  assert.match(m1.stats.lastCheckpoint, ISO_RE);
  assert.ok(m1.stats.lastCheckpoint >= m0.stats.lastCheckpoint);
  const snap = await readSnapshot(c.dir);
  assert.deepEqual(snap.records, [
    { id: "a", data: { v: 3 } },
    { id: "b", data: { v: 2 } },
  ]);
  assert.equal((await readOps(c.dir)).text, "");
  // the old op file, if still there (SPEC 7.8 lets us delete it), holds the three ops untouched
  const old = await readOpsIfExists(c.dir, m0.activeOps);
  if (old) {
    assert.deepEqual(
      old.ops.map((o) => o.id),
      ["a", "b", "a"],
    );
  }
  // subsequent writes go to the new op file
  await s.set("c", { v: 4 });
  assert.deepEqual(
    (await readOps(c.dir)).ops.map((o) => o.id),
    ["c"],
  );
});

test("writes made while a checkpoint is written are in the new op file, and survive reopen", async (t) => {
  const c = await setup(t);
  let s = await c.open({ checkpointThreshold: 3, checkpointOnClose: false });
  await s.set("a", { v: 1 });
  await s.set("b", { v: 1 });
  // The third write checkpoints; the calls made before it resolves run while ours writes the
  // snapshot (the reference runs them after its checkpoint): either way they follow it.
  const writes = [s.set("c", { v: 1 }), s.set("d", { v: 1 }), s.set("b", { v: 2 })];
  const undo = s.undo(); // waits for the checkpoint, then takes back the last write
  await Promise.all(writes);
  assert.equal(await undo, true);
  assert.deepEqual(s.getOps().map((o) => [o.op, o.id]), [["set", "d"]]);
  const entries = [["a", { v: 1 }], ["b", { v: 1 }], ["c", { v: 1 }], ["d", { v: 1 }]];
  assert.deepEqual(s.entries(), entries);
  await checkpointed(s);
  assert.deepEqual((await readSnapshot(c.dir)).records, [
    { id: "a", data: { v: 1 } },
    { id: "b", data: { v: 1 } },
    { id: "c", data: { v: 1 } },
  ]);
  assert.deepEqual((await readOps(c.dir)).ops, s.getOps());
  await s.close();
  s = await c.open({ checkpointOnClose: false });
  assert.deepEqual(s.entries(), entries);
  assert.deepEqual(s.getOps().map((o) => [o.op, o.id]), [["set", "d"]]);
});

test("writes that make checkpoints due one after another each show the checkpoint at once; the files settle at the last", async (t) => {
  const c = await setup(t);
  const s = await c.open({ checkpointThreshold: 3, checkpointOnClose: false });
  // In ours the 6th and 9th come due while the 3rd's checkpoint is still written (its fsyncs
  // take far longer than these writes).
  for (let i = 1; i <= 10; i++) {
    await s.set(`k${i}`, { i });
    assert.equal(s.stats().opsCount, i % 3, `after write ${i}`);
  }
  assert.deepEqual(s.getOps().map((o) => o.id), ["k10"]);
  await checkpointed(s);
  assert.deepEqual((await readSnapshot(c.dir)).ids, ["k1", "k2", "k3", "k4", "k5", "k6", "k7", "k8", "k9"]);
  assert.deepEqual((await readOps(c.dir)).ops.map((o) => o.id), ["k10"]);
  assert.equal((await readManifest(c.dir)).json.stats.activeRecords, 9);
  assert.equal(await s.undo(), true);
  assert.equal(await s.undo(), false, "the ops before the last cut are checkpointed");
  assert.equal(s.count(), 9);
});

test(
  "a checkpoint that fails in the background loses nothing and is retried by the next write that finds one due",
  // The reference's (and a JavaScript backend's) write waits for its checkpoint and rejects.
  { skip: isReference || viaJsBackend ? "ours, native filesystem: checkpoints in the background" : false },
  async (t) => {
    const c = await setup(t);
    const s = await c.open({ checkpointThreshold: 2, checkpointOnClose: false });
    const snapshots = join(c.dir, "snapshots");
    await rename(snapshots, `${snapshots}-away`);
    await writeFile(snapshots, "not a directory: the snapshot cannot be written");
    const printed = [];
    const consoleError = console.error;
    console.error = (msg) => printed.push(String(msg));
    try {
      await s.set("a", { v: 1 });
      await s.set("b", { v: 1 }); // due: resolves, and the checkpoint fails in the background
      await checkpointed(s);
    } finally {
      console.error = consoleError;
    }
    assert.equal(printed.length, 1);
    assert.match(printed[0], /^opslog: checkpoint failed \(retried after the next write\): /);
    assert.deepEqual(s.getOps().map((o) => o.id), ["a", "b"], "the ops are in the log again");
    await rm(snapshots);
    await rename(`${snapshots}-away`, snapshots);
    await s.set("c", { v: 1 }); // due again (3 ops): retried
    await checkpointed(s);
    assert.equal(s.stats().opsCount, 0);
    assert.deepEqual((await readSnapshot(c.dir)).ids, ["a", "b", "c"]);
    await s.close();
    const r = await c.open({ readOnly: true });
    assert.deepEqual(r.entries(), [["a", { v: 1 }], ["b", { v: 1 }], ["c", { v: 1 }]]);
  },
);

test("writes acknowledged around a checkpoint survive the writer being killed at any moment", async (t) => {
  const c = await setup(t);
  for (let trial = 0; trial < 16; trial++) {
    const dir = join(c.dir, `t${trial}`);
    // The 10th write starts a checkpoint; every 10th after it comes due while one may still be
    // written. Pauses let the checkpoints get more or less far, and a SIGKILL comes right after
    // the last acknowledgement.
    const code = `
      import { Store } from ${JSON.stringify(IMPL_URL)};
      import fs from "node:fs";
      const s = new Store();
      await s.open(${JSON.stringify(dir)}, { checkpointThreshold: 10, checkpointOnClose: false });
      const write = async (i) => {
        await s.set("k" + i, { i });
        fs.writeSync(1, i + "\\n");
      };
      for (let i = 0; i < 20; i++) await write(i);
      for (let i = 20; i < 20 + ${trial % 4} * 8; i++) {
        await write(i);
        if (Math.random() < ${trial / 32}) await new Promise((r) => setTimeout(r, Math.random() * 3));
      }
      process.kill(process.pid, "SIGKILL");
    `;
    const res = runNode(code);
    assert.equal(res.signal, "SIGKILL", res.stderr);
    const acked = res.stdout.trim().split("\n").map(Number);
    const s = await c.open({ readOnly: true }, dir);
    assert.deepEqual(
      s.entries(),
      acked.map((i) => [`k${i}`, { i }]),
      `trial ${trial}: the store holds exactly the acknowledged writes`,
    );
  }
});

test("default checkpointThreshold is 100", async (t) => {
  const c = await setup(t);
  const s = await c.open({ checkpointOnClose: false });
  for (let i = 0; i < 99; i++) await s.set(`k${i}`, { i });
  assert.equal(s.stats().opsCount, 99);
  await s.set("k99", { i: 99 });
  assert.equal(s.stats().opsCount, 0);
  await checkpointed(s);
  assert.equal((await readSnapshot(c.dir)).records.length, 100);
});

test("ops loaded from the op file count towards the threshold", async (t) => {
  const c = await setup(t);
  let s = await c.open({ checkpointThreshold: 5, checkpointOnClose: false });
  for (let i = 0; i < 3; i++) await s.set(`k${i}`, { i });
  await s.close();
  s = await c.open({ checkpointThreshold: 5, checkpointOnClose: false });
  assert.equal(s.stats().opsCount, 3);
  await s.set("x", { v: 1 });
  assert.equal(s.stats().opsCount, 4);
  await s.set("y", { v: 1 });
  assert.equal(s.stats().opsCount, 0);
  await checkpointed(s);
  assert.deepEqual((await readSnapshot(c.dir)).ids, ["k0", "k1", "k2", "x", "y"]);
});

test("a batch that crosses the threshold is written whole, then checkpointed", async (t) => {
  const c = await setup(t);
  const s = await c.open({ checkpointThreshold: 4, checkpointOnClose: false });
  const m0 = (await readManifest(c.dir)).json;
  await sleep(3);
  await s.set("a", { v: 0 });
  await s.batch(() => {
    for (let i = 1; i <= 5; i++) s.set(`b${i}`, { v: i });
  });
  assert.equal(s.stats().opsCount, 0);
  await checkpointed(s);
  const old = await readOpsIfExists(c.dir, m0.activeOps);
  if (old) assert.equal(old.lines.length, 6, "all batch ops are in the old op file");
  assert.deepEqual((await readSnapshot(c.dir)).ids, ["a", "b1", "b2", "b3", "b4", "b5"]);
});

test("compact() checkpoints even with no pending ops and keeps state", async (t) => {
  const c = await setup(t);
  const s = await c.open();
  await s.set("a", { v: 1 });
  await s.compact();
  const m1 = (await readManifest(c.dir)).json;
  assert.equal(m1.stats.activeRecords, 1);
  await sleep(3);
  const r = await s.compact();
  assert.equal(r, undefined);
  const m2 = (await readManifest(c.dir)).json;
  assert.notEqual(m2.currentSnapshot, m1.currentSnapshot);
  assert.deepEqual((await readSnapshot(c.dir)).records, [{ id: "a", data: { v: 1 } }]);
  assert.deepEqual(s.entries(), [["a", { v: 1 }]]);
});

test("close() checkpoints when there are ops; checkpointOnClose:false leaves them in the op file", async (t) => {
  const c = await setup(t);
  let s = await c.open();
  const m0 = (await readManifest(c.dir)).json;
  await sleep(3);
  await s.set("a", { v: 1 });
  await s.close();
  const m1 = (await readManifest(c.dir)).json;
  assert.notEqual(m1.currentSnapshot, m0.currentSnapshot);
  assert.equal(m1.stats.activeRecords, 1);
  assert.deepEqual((await readSnapshot(c.dir)).records, [{ id: "a", data: { v: 1 } }]);

  s = await c.open({ checkpointOnClose: false });
  await s.set("b", { v: 2 });
  await s.close();
  const m2 = (await readManifest(c.dir)).json;
  assert.deepEqual(m2, m1, "manifest untouched");
  assert.deepEqual(
    (await readOps(c.dir)).ops.map((o) => o.id),
    ["b"],
  );
});

test("snapshot file: header line then one line per record, every line ends in \\n", async (t) => {
  const c = await setup(t);
  const s = await c.open({ version: 3 });
  await s.set("x", { a: 1 });
  await s.set("y", { b: [1, 2] });
  await s.compact();
  const snap = await readSnapshot(c.dir);
  assert.ok(snap.text.endsWith("\n"));
  assert.equal(snap.lines.length, 3);
  assert.deepEqual(Object.keys(snap.header), ["version", "timestamp"]);
  assert.equal(snap.header.version, 3);
  assert.match(snap.header.timestamp, ISO_RE);
  assert.equal(snap.lines[0], JSON.stringify({ version: 3, timestamp: snap.header.timestamp }));
  assert.equal(snap.lines[1], '{"id":"x","data":{"a":1}}');
  assert.equal(snap.lines[2], '{"id":"y","data":{"b":[1,2]}}');
  assert.equal(snap.text, snap.lines.join("\n") + "\n");
});

test("an empty store's snapshot is just the header line", async (t) => {
  const c = await setup(t);
  await c.open();
  const snap = await readSnapshot(c.dir);
  assert.equal(snap.lines.length, 1);
  assert.equal(snap.text, snap.lines[0] + "\n");
  assert.deepEqual(Object.keys(snap.header), ["version", "timestamp"]);
});

test("fresh store manifest: version 1, both timestamps equal, zero stats", async (t) => {
  const c = await setup(t);
  await c.open({ version: 4 });
  const { json, text } = await readManifest(c.dir);
  assert.equal(text, JSON.stringify(json, null, 2), "no trailing newline, 2-space indent");
  assert.deepEqual(Object.keys(json), MANIFEST_KEYS);
  assert.deepEqual(Object.keys(json.stats), STATS_KEYS);
  assert.equal(json.version, 1, "a fresh manifest says version 1 whatever the store version");
  assert.equal((await readSnapshot(c.dir)).header.version, 4, "the snapshot carries the store version");
  assert.deepEqual(json.archiveSegments, []);
  assert.equal(json.stats.activeRecords, 0);
  assert.equal(json.stats.archivedRecords, 0);
  assert.equal(json.stats.opsCount, 0);
  assert.match(json.stats.created, ISO_RE);
  assert.equal(json.stats.lastCheckpoint, json.stats.created);
});

test("after a checkpoint the manifest carries the store version", async (t) => {
  const c = await setup(t);
  const s = await c.open({ version: 4 });
  await s.set("a", { v: 1 });
  await s.compact();
  assert.equal((await readManifest(c.dir)).json.version, 4);
});

test("snapshots are immutable: a checkpoint never rewrites the previous snapshot", async (t) => {
  const c = await setup(t);
  const s = await c.open({ checkpointThreshold: 2 });
  await s.set("a", { v: 1 });
  await s.set("b", { v: 1 });
  await checkpointed(s);
  const first = await readSnapshot(c.dir);
  await sleep(3);
  await s.set("c", { v: 1 });
  await s.set("d", { v: 1 });
  await checkpointed(s);
  const second = await readSnapshot(c.dir);
  assert.notEqual(second.rel, first.rel);
  try {
    const again = await readFile(join(c.dir, first.rel));
    assert.deepEqual(again, first.buf);
  } catch (e) {
    // SPEC 7.8 allows deleting superseded snapshots; it must never be rewritten in place.
    assert.equal(e.code, "ENOENT");
  }
  assert.deepEqual(second.ids, ["a", "b", "c", "d"]);
});

test("getManifest() follows checkpoints (SPEC 7.2)", { skip: refDefect(2) }, async (t) => {
  const c = await setup(t);
  const s = await c.open({ checkpointThreshold: 2 });
  const m0 = s.getManifest();
  await sleep(3);
  await s.set("a", { v: 1 });
  await s.compact();
  const m1 = s.getManifest();
  const file1 = (await readManifest(c.dir)).json;
  assert.notEqual(m1.currentSnapshot, m0.currentSnapshot);
  assert.equal(m1.currentSnapshot, file1.currentSnapshot);
  assert.equal(m1.activeOps, file1.activeOps);
  assert.deepEqual(m1.stats, file1.stats);
  assert.equal(m1.stats.activeRecords, 1);
  // also after an automatic (threshold) checkpoint
  await sleep(3);
  await s.set("b", { v: 1 });
  await s.set("c", { v: 1 });
  await checkpointed(s);
  const m2 = s.getManifest();
  const file2 = (await readManifest(c.dir)).json;
  assert.equal(m2.currentSnapshot, file2.currentSnapshot);
  assert.notEqual(m2.currentSnapshot, m1.currentSnapshot);
  assert.equal(m2.stats.activeRecords, 3);
  // and after archive
  await sleep(3);
  await s.archive((v, id) => id === "a", "2020-Q1");
  const m3 = s.getManifest();
  assert.deepEqual(m3.archiveSegments, ["archive/archive-2020-Q1.json"]);
  assert.equal(m3.stats.archivedRecords, 1);
  const file3 = (await readManifest(c.dir)).json;
  assert.deepEqual(m3, {
    currentSnapshot: file3.currentSnapshot,
    activeOps: file3.activeOps,
    archiveSegments: file3.archiveSegments,
    stats: file3.stats,
  });
});
