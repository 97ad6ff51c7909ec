// Round trips to a StorageBackend (issue 21): the same workload through ours and through the
// reference, each on its own in-memory backend that records every call, and per method ours must
// make no more calls than the reference. A remote backend (S3) pays a request or more per call.
// Counts are deterministic: no timing is asserted.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as ours from "../../index.mjs";
import * as reference from "@backloghq/opslog";
import { MemoryBackend } from "./memory-backend.mjs";

/** Calls per method over every backend a workload used. */
function countCalls(backends) {
  const counts = {};
  for (const b of backends) for (const { method } of b.calls) counts[method] = (counts[method] ?? 0) + 1;
  return counts;
}

/** Runs `workload(impl, files)` for both implementations; returns their call counts. */
async function both(workload) {
  const run = async (impl) => countCalls(await workload(impl, new Map()));
  return { ours: await run(ours), ref: await run(reference) };
}

function assertNoMore({ ours: o, ref: r }) {
  for (const method of new Set([...Object.keys(o), ...Object.keys(r)])) {
    assert.ok((o[method] ?? 0) <= (r[method] ?? 0), `${method}: ours ${o[method] ?? 0}, reference ${r[method] ?? 0} (ours ${JSON.stringify(o)}, reference ${JSON.stringify(r)})`);
  }
}

async function opened(impl, files, opts, Backend = MemoryBackend) {
  const backend = new Backend(files);
  const store = new impl.Store();
  await store.open("/opslog-calls", { backend, ...opts });
  return { store, backend };
}

test("single writer: sets, deletes, a batch, undo, compact, close, reopen", async () => {
  const counts = await both(async (impl, files) => {
    const { store, backend } = await opened(impl, files, {});
    for (let i = 0; i < 250; i++) await store.set(`k${i % 40}`, { i });
    await store.delete("k1");
    await store.batch(() => {
      store.set("b1", { a: 1 });
      store.set("b2", { a: 2 });
    });
    await store.undo();
    await store.compact();
    await store.close();
    const again = await opened(impl, files, {});
    assert.equal(again.store.get("k2").i, 242);
    await again.store.close();
    return [backend, again.backend];
  });
  assert.equal(counts.ours.appendOps, 252);
  assertNoMore(counts);
});

for (const writeMode of ["group", "async"]) {
  test(`${writeMode} mode: one appendOps per flush`, async () => {
    const counts = await both(async (impl, files) => {
      // Flushes by size only: with the 100 ms default a loaded machine flushes by time as well.
      const { store, backend } = await opened(impl, files, { writeMode, checkpointThreshold: 1000, groupCommitMs: 600_000 });
      for (let i = 0; i < 230; i++) await store.set(`k${i % 40}`, { i });
      await store.flush();
      await store.close();
      return [backend];
    });
    // 230 sets in groups of 50 (the default groupCommitSize): four full groups and the rest.
    assert.equal(counts.ours.appendOps, 5);
    assertNoMore(counts);
  });
}

test("batches and the checkpoint they trigger", async () => {
  const counts = await both(async (impl, files) => {
    const { store, backend } = await opened(impl, files, { checkpointThreshold: 30 });
    for (let b = 0; b < 10; b++) {
      await store.batch(() => {
        for (let i = 0; i < 7; i++) store.set(`b${b}-${i}`, { b, i });
      });
    }
    await store.close();
    return [backend];
  });
  assert.equal(counts.ours.appendOps, 10);
  assertNoMore(counts);
});

// Multi-writer: a refresh asks the backend for the manifest's version and reads the manifest and
// the snapshot only when they changed (keeping the snapshot it loaded), never its own op file;
// a compaction reads no snapshot it holds; close compacts only when this agent's own ops are in no
// snapshot yet. The compaction lock is the exception: the reference takes it only to compact and
// edits the manifest without it to create a store or register an agent (it can lose a
// registration that way); ours takes it for every manifest edit, and fewer compactions do not make
// up for the three edits here.
const LOCK = ["acquireCompactionLock", "releaseCompactionLock"];
const multi = async (impl, files) => {
  const agents = [];
  for (let a = 0; a < 3; a++) agents.push(await opened(impl, files, { agentId: `agent-${a}`, checkpointThreshold: 100000 }));
  for (let i = 0; i < 90; i++) {
    for (const [a, { store }] of agents.entries()) {
      await store.set(`k${i % 10}`, { i });
      // Deletes and sets again move ids to the end of the iteration order.
      if (i % 4 === a && store.has(`k${(i + 3) % 10}`)) await store.delete(`k${(i + 3) % 10}`);
    }
    if (i % 15 === 14) {
      for (const { store } of agents) await store.refresh();
      if (impl === ours) {
        // Each agent's view, built from what it kept, is what a whole load of the store gives.
        const reader = new ours.Store();
        await reader.open("/opslog-calls", { backend: new MemoryBackend(files), readOnly: true });
        for (const { store } of agents) assert.deepEqual(store.entries(), reader.entries(), `after the refresh at ${i}`);
        await reader.close();
      }
    }
    if (i === 60) await agents[0].store.compact();
  }
  for (const { store } of agents) await store.close();
  return agents.map((a) => a.backend);
};
test("multi-writer: refresh and compaction", async (t) => {
  const counts = await both(multi);
  const { ours: o, ref: r } = counts;
  t.diagnostic(`calls: ${JSON.stringify(counts)}`);
  const drop = (c) => Object.fromEntries(Object.entries(c).filter(([m]) => !LOCK.includes(m)));
  assertNoMore({ ours: drop(o), ref: drop(r) });
  for (const method of ["readManifest", "loadSnapshot", "readOps", "writeManifest"]) {
    assert.ok(o[method] < r[method], `${method}: ours ${o[method]}, reference ${r[method]}`);
  }
  // The lock is taken for the creation, the two registrations and each compaction (a snapshot
  // written but the creation's), and for nothing else (not by a close with nothing to fold).
  assert.equal(o.acquireCompactionLock, 3 + (o.writeSnapshot - 1));
  assert.equal(o.releaseCompactionLock, o.acquireCompactionLock);
  assert.ok(o.writeSnapshot - 1 < r.acquireCompactionLock, "fewer compactions than the reference");
});

test("follower tail()", async (t) => {
  const counts = await both(async (impl, files) => {
    const writer = await opened(impl, files, { checkpointThreshold: 100000 });
    await writer.store.set("a", { v: 0 });
    const follower = await opened(impl, files, { readOnly: true });
    for (let i = 0; i < 50; i++) {
      await writer.store.set(`k${i}`, { i });
      if (i % 5 === 4) await follower.store.tail();
    }
    assert.equal(follower.store.get("k49").i, 49);
    await follower.store.close();
    await writer.store.close();
    return [follower.backend];
  });
  t.diagnostic(`calls: ${JSON.stringify(counts)}`);
  assertNoMore(counts);
  // Each tail() found new ops in the file it follows: no manifest read, no version asked.
  assert.equal(counts.ours.readManifest, 1);
  assert.equal(counts.ours.getManifestVersion ?? 0, 0);
});

// Versions cross to the engine as they are: a string (an S3 ETag) or a number.
class NumberVersions extends MemoryBackend {
  async getManifestVersion() {
    const version = await super.getManifestVersion();
    return version === null ? null : Number(version);
  }
}

for (const [kind, Backend] of [["string", MemoryBackend], ["number", NumberVersions]]) {
  test(`follower tail() across the writer's checkpoints, through a backend with ${kind} manifest versions`, async () => {
    const files = new Map();
    const writer = await opened(ours, files, { checkpointThreshold: 7 });
    await writer.store.set("a", { v: 0 });
    const follower = await opened(ours, files, { readOnly: true }, Backend);
    const seen = [];
    for (let i = 0; i < 40; i++) {
      await writer.store.set(`k${i % 9}`, { i });
      if (i % 3 === 2) seen.push(...(await follower.store.tail()).map((op) => op.id));
    }
    seen.push(...(await follower.store.tail()).map((op) => op.id));
    assert.deepEqual(follower.store.entries(), writer.store.entries());
    assert.ok(seen.includes("k3"));
    // Nothing new: the version is asked, the manifest is not read again.
    const reads = follower.backend.callsOf("readManifest").length;
    assert.deepEqual(await follower.store.tail(), []);
    assert.deepEqual(await follower.store.tail(), []);
    assert.equal(follower.backend.callsOf("readManifest").length, reads);
    assert.equal(typeof (await follower.backend.getManifestVersion()), kind);
    await follower.store.close();
    await writer.store.close();
  });
}

// A multi-writer refresh after CONSOLIDATE_APPENDS (64) appends or more moves the agent to a
// fresh op file holding its ops that no snapshot holds in one append, so that a backend storing
// each append as an object (opslog-s3) gives the other agents one object to download instead of
// one per append. Fewer appends (the workload above: about 19 per agent between refreshes) move
// nothing.
test("multi-writer: a refresh after 64 appends moves the agent to one append of its ops", async () => {
  const files = new Map();
  const open = (agentId) => opened(ours, files, { agentId, checkpointThreshold: 100000 });
  const [a, b, c] = [await open("a"), await open("b"), await open("c")];
  const fileOf = (agent) => JSON.parse(files.get("manifest.json")).activeAgentOps[agent];
  const fresh = async () => {
    const reader = await opened(ours, files, { readOnly: true });
    const entries = reader.store.entries();
    await reader.store.close();
    return entries;
  };
  for (let i = 0; i < 63; i++) await a.store.set(`a${i % 50}`, { i });
  await b.store.set("shared", { by: "b" });
  const first = fileOf("a");
  await a.store.refresh();
  assert.equal(fileOf("a"), first, "63 appends: no move");

  for (let i = 0; i < 70; i++) await a.store.set(`a${i % 50}`, { i, round: 2 });
  await a.store.set("shared", { by: "a" });
  await b.store.refresh(); // b reads a's file before the move, c after it
  const calls = a.backend.calls.length;
  await a.store.refresh();
  const moved = fileOf("a");
  assert.notEqual(moved, first);
  const made = a.backend.calls.slice(calls).map((x) => x.method);
  assert.deepEqual(made.filter((m) => m === "appendOps" || m === "writeManifest"), ["appendOps", "writeManifest"]);
  // The one append holds every op of a's (no snapshot holds any): 63 + 71.
  assert.deepEqual(a.backend.callsOf("appendOps").at(-1)[0], moved);
  assert.equal(a.backend.callsOf("appendOps").at(-1)[1].length, 134);
  assert.ok(files.has(first), "the old file stays for readers still on the manifest before");

  const readsBefore = c.backend.callsOf("readOps").length;
  await c.store.refresh();
  const read = c.backend.callsOf("readOps").slice(readsBefore).map(([rel]) => rel);
  assert.ok(read.includes(moved) && !read.includes(first), `c read ${read}`);
  assert.deepEqual(c.store.get("shared"), { by: "a" });
  assert.deepEqual(c.store.entries(), await fresh());
  await b.store.refresh();
  assert.deepEqual(b.store.entries(), await fresh());

  // Undo takes back a's last op from the new file; writes go on there.
  await a.store.set("late", { v: 1 });
  assert.equal(await a.store.undo(), true);
  assert.equal(a.store.has("late"), false);
  await a.store.set("later", { v: 2 });
  assert.equal(a.backend.callsOf("appendOps").at(-1)[0], moved);

  // A move that fails to publish the manifest: the refresh resolves, the old file stays
  // registered with every op, and the next refresh moves.
  const bFirst = fileOf("b");
  for (let i = 0; i < 64; i++) await b.store.set(`b${i}`, { i });
  b.backend.failNext("writeManifest", new Error("manifest write refused"));
  await b.store.refresh();
  assert.equal(fileOf("b"), bFirst);
  assert.deepEqual(b.store.entries(), await fresh());
  assert.equal(b.store.get("b63").i, 63);
  await b.store.set("b64", { i: 64 });
  assert.equal(b.backend.callsOf("appendOps").at(-1)[0], bFirst);
  await b.store.refresh();
  assert.notEqual(fileOf("b"), bFirst);

  // A compaction moves its agent to an empty file: the refresh after it has nothing to move.
  for (let i = 0; i < 70; i++) await c.store.set(`c${i % 5}`, { i });
  await c.store.compact();
  const compacted = fileOf("c");
  const appends = c.backend.callsOf("appendOps").length;
  await c.store.refresh();
  assert.equal(fileOf("c"), compacted);
  assert.equal(c.backend.callsOf("appendOps").length, appends);

  const expected = await fresh();
  assert.equal(expected.length, 50 + 1 + 65 + 1 + 5);
  // The reference reads the moved files as ours does. (Before any compaction: it replays every
  // op of the registered files over the snapshot, also those a snapshot holds, by agentClocks.)
  const ref = await opened(reference, files, { agentId: "r", readOnly: true });
  assert.deepEqual(Object.fromEntries(ref.store.entries()), Object.fromEntries(expected));
  await ref.store.close();
  for (const { store } of [a, b, c]) await store.close();
  // Reopened, every write is there.
  const again = await open("a");
  assert.deepEqual(again.store.entries(), expected);
  await again.store.close();
});
