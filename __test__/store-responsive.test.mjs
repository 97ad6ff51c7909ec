// SPEC 7.9: checkpoints run off the JavaScript thread, so the event loop stays responsive while a
// large store is being written. The reference serialises the whole snapshot synchronously (about
// 0.8 s without a single timer tick for the store below, on the development machine).
import { test } from "node:test";
import assert from "node:assert/strict";
import { Store, isReference } from "./impl.mjs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { setup, writeStoreDir, readManifest, refDefect, viaJsBackend } from "./helpers.mjs";

const N = 200_000;
const MAX_GAP_MS = 200;

async function bigStore(dir) {
  const pad = "x".repeat(400);
  const parts = [JSON.stringify({ version: 1, timestamp: "2024-01-01T00:00:00.000Z" })];
  for (let i = 0; i < N; i++) {
    parts.push(`{"id":"rec-${i}","data":{"name":"record ${i}","n":${i},"pad":"${pad}","tags":["a","b"],"nested":{"x":${i * 1.5},"y":"é"}}}`);
  }
  await writeStoreDir(dir, { snapshot: parts.join("\n") + "\n" });
}

/** Run `fn` while a 1 ms interval measures the longest gap between ticks. */
async function maxGapDuring(fn) {
  let last = performance.now();
  let max = 0;
  const iv = setInterval(() => {
    const now = performance.now();
    max = Math.max(max, now - last);
    last = now;
  }, 1);
  try {
    await new Promise((r) => setTimeout(r, 20)); // let the interval start ticking
    last = performance.now();
    max = 0;
    await fn();
  } finally {
    clearInterval(iv);
  }
  return max;
}

async function snapshotSummary(dir) {
  const { json } = await readManifest(dir);
  const text = await readFile(join(dir, json.currentSnapshot), "utf8");
  const lines = text.split("\n");
  return { lines: lines.length - 2, last: lines.at(-2), text, activeRecords: json.stats.activeRecords };
}

test(`the event loop keeps ticking while a ${N}-record store checkpoints: compact() and close() (SPEC 7.9)`, { skip: refDefect(9) || (viaJsBackend && "a JavaScript StorageBackend writes the snapshot on the JavaScript thread"), timeout: 120000 }, async (t) => {
  const c = await setup(t);
  await bigStore(c.dir);
  const s = await c.open();
  assert.equal(s.count(), N);

  await s.set("extra", { v: 1 });
  const gapCompact = await maxGapDuring(() => s.compact());
  let snap = await snapshotSummary(c.dir);
  assert.equal(snap.lines, N + 1, "the checkpoint is complete");
  assert.equal(snap.activeRecords, N + 1);
  assert.equal(snap.last, '{"id":"extra","data":{"v":1}}');

  await s.set("extra2", { v: 2 });
  const gapClose = await maxGapDuring(() => s.close());
  snap = await snapshotSummary(c.dir);
  assert.equal(snap.lines, N + 2, "close checkpointed");
  assert.equal(snap.last, '{"id":"extra2","data":{"v":2}}');
  assert.ok(snap.text.includes('\n{"id":"rec-123456","data":{"name":"record 123456","n":123456,'));

  t.diagnostic(`longest stall: compact ${gapCompact.toFixed(1)} ms, close ${gapClose.toFixed(1)} ms`);
  assert.ok(gapCompact < MAX_GAP_MS, `longest event-loop stall during compact: ${gapCompact.toFixed(1)} ms`);
  assert.ok(gapClose < MAX_GAP_MS, `longest event-loop stall during close: ${gapClose.toFixed(1)} ms`);
});
