// Shared helpers of the benchmark: loading an implementation, the record shape, fixtures,
// memory and event-loop measurements.
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { createRequire } from "node:module";

export const BENCH_DIR = path.dirname(fileURLToPath(import.meta.url));
export const ROOT = path.join(BENCH_DIR, "..");
export const IMPLS = ["reference", "ours"];

/**
 * The Store class of an implementation. `ours` is `../index.mjs`, or the private copy of the
 * package the orchestrator made for this run (OPSLOG_BENCH_OURS), so a concurrent rebuild of the
 * addon in the working tree cannot change what is measured halfway through.
 */
export async function loadStore(impl) {
  if (impl === "ours") {
    const entry = process.env.OPSLOG_BENCH_OURS
      ? path.join(process.env.OPSLOG_BENCH_OURS, "index.mjs")
      : path.join(ROOT, "index.mjs");
    return (await import(pathToFileURL(entry).href)).Store;
  }
  if (impl === "reference") {
    const require = createRequire(path.join(ROOT, "package.json"));
    const pkgJson = require.resolve("@backloghq/opslog/package.json");
    const main = path.join(path.dirname(pkgJson), "dist", "index.js");
    return (await import(pathToFileURL(main).href)).Store;
  }
  throw new Error(`unknown implementation '${impl}' (expected ours or reference)`);
}

const STATUSES = ["active", "done", "blocked"];

/** The record shape of the issue: `{name, status, value, tags: ["a","b"], note: 40 chars}`. */
export function makeRecord(i) {
  return {
    name: `name-${i}`,
    status: STATUSES[i % 3],
    value: i,
    tags: ["a", "b"],
    note: `note ${i} `.padEnd(40, "."),
  };
}

export const recordId = (i) => `id-${String(i).padStart(7, "0")}`;

/** Scales a full-size count, keeping at least `min`. */
export const scaled = (n, scale, min = 1) => Math.max(min, Math.round(n * scale));

// --- memory ---

export async function settle() {
  if (typeof globalThis.gc !== "function") throw new Error("run with node --expose-gc");
  globalThis.gc();
  await new Promise(setImmediate);
  globalThis.gc();
}

export const MB = 1024 * 1024;
export const rssMB = () => process.memoryUsage.rss() / MB;

/** Peak RSS since the last `resetPeakRss()` (VmHWM), in MB; null where /proc is unavailable. */
export function peakRssMB() {
  try {
    const m = fs.readFileSync("/proc/self/status", "utf8").match(/VmHWM:\s+(\d+) kB/);
    return m ? Number(m[1]) / 1024 : null;
  } catch {
    return null;
  }
}

export function resetPeakRss() {
  try {
    fs.writeFileSync("/proc/self/clear_refs", "5");
    return true;
  } catch {
    return false;
  }
}

/**
 * Runs an operation while a 1 ms interval timer watches the event loop; the longest stall is the
 * longest gap between its ticks, minus the interval. The timer starts 20 ms before the operation.
 * (monitorEventLoopDelay, tried as a cross-check, reported a maximum of about 70 ms during the
 * reference's compact, while this timer did not tick for over a second; it is not used.)
 */
export async function watchLoop(operation) {
  let last = performance.now();
  let longest = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    if (now - last > longest) longest = now - last;
    last = now;
  }, 1);
  await new Promise((resolve) => setTimeout(resolve, 20));
  longest = 0;
  try {
    const t0 = performance.now();
    const result = await operation();
    const now = performance.now();
    if (now - last > longest) longest = now - last;
    return { result, ms: now - t0, stallMs: Math.max(0, longest - 1) };
  } finally {
    clearInterval(timer);
  }
}

// --- fixtures ---

/** Removes every file of a store directory that its manifest does not reference. */
export function pruneToManifest(dir) {
  const manifest = JSON.parse(fs.readFileSync(path.join(dir, "manifest.json"), "utf8"));
  const keep = new Set(["manifest.json", manifest.currentSnapshot, manifest.activeOps,
    ...Object.values(manifest.activeAgentOps ?? {}), ...(manifest.archiveSegments ?? [])]);
  for (const sub of ["snapshots", "ops", "archive"]) {
    const d = path.join(dir, sub);
    if (!fs.existsSync(d)) continue;
    for (const f of fs.readdirSync(d)) if (!keep.has(`${sub}/${f}`)) fs.rmSync(path.join(d, f), { force: true });
  }
  for (const f of [".lock", ".compact-lock", "manifest.json.tmp"]) fs.rmSync(path.join(dir, f), { force: true });
}

export const FIXTURES = {
  // 1,000,000 records in the snapshot, an empty op file (open, RSS, compact, streamSnapshot).
  "records-1m": { records: 1_000_000, ops: 0 },
  // 100,000 records in the snapshot (filter/get).
  "records-100k": { records: 100_000, ops: 0 },
  // An empty snapshot and 100,000 ops in the active op file (getWalOps).
  "wal-100k": { records: 0, ops: 100_000 },
};

/** Creates a fixture store in `dir` with the given implementation (not timed). */
export async function createFixture(Store, name, scale, dir) {
  const spec = FIXTURES[name];
  if (!spec) throw new Error(`unknown fixture ${name}`);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  const records = spec.records ? scaled(spec.records, scale, 100) : 0;
  const ops = spec.ops ? scaled(spec.ops, scale, 100) : 0;
  const chunk = 10_000;
  const store = new Store();
  if (records) {
    // Written as batches with checkpoints off, then one checkpoint on close.
    await store.open(dir, { checkpointThreshold: 1e12 });
    for (let start = 0; start < records; start += chunk) {
      const end = Math.min(records, start + chunk);
      await store.batch(() => {
        for (let i = start; i < end; i++) store.set(recordId(i), makeRecord(i));
      });
    }
    await store.close();
  } else {
    // Ops only: the op file is left as it is (no checkpoint on close).
    await store.open(dir, { checkpointThreshold: 1e12, checkpointOnClose: false });
    for (let start = 0; start < ops; start += chunk) {
      const end = Math.min(ops, start + chunk);
      await store.batch(() => {
        for (let i = start; i < end; i++) store.set(recordId(i), makeRecord(i));
      });
    }
    await store.close();
  }
  pruneToManifest(dir);
  return { records, ops };
}

/** Copies a fixture store to a fresh directory. */
export function copyStore(from, to) {
  fs.rmSync(to, { recursive: true, force: true });
  fs.cpSync(from, to, { recursive: true });
}
