// `export` of a million-record store streams: the process's resident set grows by less than
// 64 MB while it writes the ~70 MB of output to a pipe, and the output is the store's state.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createWriteStream } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { once } from "node:events";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { beside, tempDir } from "../support/helpers.mjs";

const RECORDS = Number(process.env.CLI_EXPORT_RECORDS ?? 1_000_000);
const LIMIT = 64 * 1024 * 1024;
const ts = "2026-01-01T00:00:00.000Z";
const id = (i) => `r${String(i).padStart(7, "0")}`;
const record = (i) => ({ i, name: `record ${i}`, tags: ["a", "b"], ok: i % 2 === 0 });

/** Writes the store's files directly (as the store would): a big snapshot and a few ops. */
async function writeStore(dir) {
  await mkdir(join(dir, "snapshots"));
  await mkdir(join(dir, "ops"));
  const out = createWriteStream(join(dir, "snapshots/snap-1.jsonl"));
  out.write(`${JSON.stringify({ version: 1, timestamp: ts })}\n`);
  let chunk = "";
  for (let i = 0; i < RECORDS; i++) {
    chunk += `${JSON.stringify({ id: id(i), data: record(i) })}\n`;
    if (chunk.length > 1 << 20) {
      if (!out.write(chunk)) await once(out, "drain");
      chunk = "";
    }
  }
  out.end(chunk);
  await once(out, "finish");
  const ops = [];
  for (let i = 0; i < 1000; i++) {
    const n = i * 997;
    ops.push({ ts, op: "set", id: id(n), prev: record(n), data: { changed: n } });
    ops.push({ ts, op: "delete", id: id(n + 1), prev: record(n + 1) });
    ops.push({ ts, op: "set", id: `new-${i}`, prev: null, data: { fresh: i } });
  }
  await writeFile(join(dir, "ops/ops-1.jsonl"), ops.map((o) => `${JSON.stringify(o)}\n`).join(""));
  const stats = { activeRecords: RECORDS, archivedRecords: 0, opsCount: 0, created: ts, lastCheckpoint: ts };
  const manifest = { version: 1, currentSnapshot: "snapshots/snap-1.jsonl", activeOps: "ops/ops-1.jsonl", archiveSegments: [], stats };
  await writeFile(join(dir, "manifest.json"), JSON.stringify(manifest, null, 2));
}

test(`export of ${RECORDS.toLocaleString("en-US")} records grows RSS by less than 64 MB`, { timeout: 300_000 }, async (t) => {
  const dir = await tempDir(t, "opslog-cli-large-");
  await writeStore(dir);
  // To stdout, read here as it comes: the pipe's backpressure is what bounds the child.
  const child = spawn(process.execPath, [beside(import.meta.url, "rss-child.mjs"), "export", dir], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  const err = [];
  child.stderr.on("data", (b) => err.push(b));
  const closed = once(child, "close");

  // The output is the state: changed records in place, deleted ones gone, new ones at the end.
  let n = 0;
  let firstNew = -1;
  const lines = createInterface({ input: child.stdout, crlfDelay: Infinity });
  for await (const line of lines) {
    const { id: rid, data } = JSON.parse(line);
    if (rid === id(997 * 5)) assert.deepEqual(data, { changed: 997 * 5 });
    if (rid === id(0)) assert.equal(n, 0);
    assert.notEqual(rid, id(997 * 5 + 1), "deleted");
    if (rid.startsWith("new-") && firstNew < 0) firstNew = n;
    n++;
  }
  const [code] = await closed;
  const stderr = Buffer.concat(err).toString("utf8");
  assert.equal(code, 0, stderr);
  const { code: exit, start, peak } = JSON.parse(stderr.trim().split("\n").at(-1));
  assert.equal(exit, 0, stderr);
  const growth = peak - start;
  t.diagnostic(`rss at start ${(start / 2 ** 20).toFixed(1)} MB, peak ${(peak / 2 ** 20).toFixed(1)} MB, growth ${(growth / 2 ** 20).toFixed(1)} MB`);
  assert.ok(growth < LIMIT, `RSS grew by ${(growth / 2 ** 20).toFixed(1)} MB`);
  assert.equal(n, RECORDS);
  assert.equal(firstNew, RECORDS - 1000, "the created records come last");
});
