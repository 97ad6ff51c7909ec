// The tests' shared helpers (every folder of __test__ uses them). Public API only: everything here
// either drives a Store through ./impl.mjs or reads/writes the data directory as plain files.
import { mkdtemp, rm, readFile, writeFile, mkdir, readdir, access } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { spawnSync } from "node:child_process";
import assert from "node:assert/strict";
import { fileURLToPath, pathToFileURL } from "node:url";
import { Store } from "./impl.mjs";

const SUPPORT = dirname(fileURLToPath(import.meta.url));
/** The repository root. */
export const ROOT = join(SUPPORT, "..", "..");
export const IMPL_URL = pathToFileURL(join(SUPPORT, "impl.mjs")).href;

/** The path of `name` in the folder of the module at `url` (pass `import.meta.url`): a test's child script. */
export const beside = (url, name) => fileURLToPath(new URL(name, url));

/** `Date.prototype.toISOString` shape: UTC with milliseconds. */
export const ISO_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Waits for the checkpoint a write started to be in the files. The write that reaches
 * checkpointThreshold resolves once its op is logged (getOps() and stats() already show the
 * checkpoint) and ours finishes the checkpoint in the background; sync() waits for it (flush()
 * does not). The reference's write waits for its checkpoint (and its sync() has nothing to do then).
 */
export const checkpointed = (store) => store.sync();

/**
 * OPSLOG_TEST_BACKEND runs the Store suites through a backend: "fs" passes `new FsBackend()`,
 * "js" a StorageBackend written in JavaScript (every I/O through the engine's JS adapter).
 */
export const testBackend = process.env.OPSLOG_TEST_BACKEND ?? "default";
const { FsBackend } = (await import("./impl.mjs")).default;
const { JsFsBackend } = await import("../backends/js-fs-backend.mjs");

/** A JavaScript backend has no streaming reads and runs its own I/O on the JavaScript thread. */
export const viaJsBackend = testBackend === "js";

export function withTestBackend(opts) {
  if (testBackend === "default" || (opts && "backend" in opts)) return opts;
  const backend = testBackend === "js" ? new JsFsBackend() : new FsBackend();
  return { ...opts, backend };
}

/** A new Store on `dir`, opened with `opts` through the selected test backend. */
export async function openStore(dir, opts) {
  const s = new Store();
  await s.open(dir, withTestBackend(opts));
  return s;
}

/** A fresh temp dir, removed when test `t` ends. */
export async function tempDir(t, prefix = "opslog-test-") {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/**
 * The list of Stores a test opens: when test `t` ends they are closed, the last first (errors
 * ignored), and then `cleanup` runs.
 */
export function trackStores(t, cleanup) {
  const stores = [];
  t.after(async () => {
    for (const s of stores.reverse()) {
      try {
        await s.close();
      } catch {
        // already closed / never opened
      }
    }
    await cleanup?.();
  });
  return stores;
}

/**
 * Fresh temp dir for one test, plus tracked Store instances. Everything opened through the
 * returned context is closed (errors ignored) and the dir removed when the test ends.
 */
export async function setup(t) {
  const dir = await mkdtemp(join(tmpdir(), "opslog-test-"));
  const stores = trackStores(t, () => rm(dir, { recursive: true, force: true }));
  return {
    dir,
    /** new Store, tracked, opened on `d` (default: the test dir). */
    async open(opts, d = dir) {
      const s = new Store();
      stores.push(s);
      await s.open(d, withTestBackend(opts));
      return s;
    },
    /** new Store, tracked, not opened. */
    store() {
      const s = new Store();
      stores.push(s);
      return s;
    },
    /** a sub directory path (not created). */
    sub(name) {
      return join(dir, name);
    },
  };
}

/** Whether a path exists. */
export async function exists(p) {
  try {
    await access(p);
    return true;
  } catch {
    return false;
  }
}

/** Everything an async iterable yields, in an array. */
export async function collect(iter) {
  const out = [];
  for await (const x of iter) out.push(x);
  return out;
}

/** Drains the generator with next(), returning the yielded values and the final return value. */
export async function drain(gen) {
  const items = [];
  for (;;) {
    const r = await gen.next();
    if (r.done) return { items, value: r.value };
    items.push(r.value);
  }
}

/** An assert.throws/rejects check: the error is a TypeError (and its message matches `re`, if given). */
export function assertTypeError(re) {
  return (err) => {
    assert.ok(err instanceof TypeError, `expected TypeError, got ${err?.constructor?.name}: ${err?.message}`);
    if (re) assert.match(err.message, re);
    return true;
  };
}

export async function readManifest(dir) {
  const text = await readFile(join(dir, "manifest.json"), "utf8");
  return { text, json: JSON.parse(text) };
}

function splitLines(text) {
  return text.split("\n").filter((l) => l.length > 0);
}

/** The op file named by the manifest (or `rel`). */
export async function readOps(dir, rel) {
  if (!rel) rel = (await readManifest(dir)).json.activeOps;
  const buf = await readFile(join(dir, rel));
  const text = buf.toString("utf8");
  const lines = splitLines(text);
  const ops = lines.map((l) => {
    try {
      return JSON.parse(l);
    } catch {
      return null; // malformed line
    }
  });
  return { rel, buf, text, lines, ops };
}

/** The JSONL snapshot named by the manifest (or `rel`). */
export async function readSnapshot(dir, rel) {
  if (!rel) rel = (await readManifest(dir)).json.currentSnapshot;
  const buf = await readFile(join(dir, rel));
  const text = buf.toString("utf8");
  const lines = splitLines(text);
  const header = JSON.parse(lines[0]);
  const records = lines.slice(1).map((l) => JSON.parse(l));
  return { rel, buf, text, lines, header, records, ids: records.map((r) => r.id) };
}

export async function listDir(dir, sub) {
  try {
    return (await readdir(join(dir, sub))).sort();
  } catch {
    return [];
  }
}

export const MANIFEST_KEYS = ["version", "currentSnapshot", "activeOps", "archiveSegments", "stats"];
export const STATS_KEYS = ["activeRecords", "archivedRecords", "opsCount", "created", "lastCheckpoint"];

/**
 * Write a data directory by hand: `snapshot` is the raw snapshot file text, `ops` an array of op
 * lines (strings, written as-is each followed by "\n") or a raw string.
 */
export async function writeStoreDir(dir, { snapshot, ops = [], manifest = {}, snapName = "snap-1000.jsonl", opsName = "ops-1000.jsonl" }) {
  await mkdir(join(dir, "snapshots"), { recursive: true });
  await mkdir(join(dir, "ops"), { recursive: true });
  await mkdir(join(dir, "archive"), { recursive: true });
  await writeFile(join(dir, "snapshots", snapName), snapshot);
  const opsText = typeof ops === "string" ? ops : ops.map((l) => l + "\n").join("");
  await writeFile(join(dir, "ops", opsName), opsText);
  const m = {
    version: 1,
    currentSnapshot: `snapshots/${snapName}`,
    activeOps: `ops/${opsName}`,
    archiveSegments: [],
    stats: {
      activeRecords: 0,
      archivedRecords: 0,
      opsCount: 0,
      created: "2024-01-01T00:00:00.000Z",
      lastCheckpoint: "2024-01-01T00:00:00.000Z",
    },
    ...manifest,
  };
  await writeFile(join(dir, "manifest.json"), JSON.stringify(m, null, 2));
  return m;
}

/** JSONL snapshot text from [id, record] pairs. */
export function jsonlSnapshot(entries, version = 1, timestamp = "2024-01-01T00:00:00.000Z") {
  let s = JSON.stringify({ version, timestamp }) + "\n";
  for (const [id, data] of entries) s += JSON.stringify({ id, data }) + "\n";
  return s;
}

/** One op line, keys in the on-disk order. */
export function opLine({ ts = "2024-01-01T00:00:01.000Z", op = "set", id, prev = null, data, encoding }) {
  const o = { ts, op, id, prev };
  if (op === "set") o.data = data;
  if (encoding) o.encoding = encoding;
  return JSON.stringify(o);
}

/**
 * Poll `fn` until it returns truthy or `ms` elapse; returns the last value. For things that must
 * happen: the limit only ends a hung test, so it is far above any wait on a loaded machine.
 */
export async function waitFor(fn, ms = 30000, every = 10) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v || Date.now() > end) return v;
    await sleep(every);
  }
}

function isAlive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return e.code === "EPERM";
  }
}

/** A pid that belongs to no live process. */
export function deadPid() {
  for (let pid = 999999; pid > 900000; pid--) if (!isAlive(pid)) return pid;
  throw new Error("no dead pid found");
}

/**
 * The argv that starts a child Node process with `args`: this Node itself or, when
 * OPSLOG_TEST_NODE_PREFIX (a JSON array) names an emulator, this Node under it. `npm run
 * test:arm64` runs the tests in an arm64 Node under qemu, which the kernel cannot start directly.
 */
export function nodeArgv(...args) {
  const prefix = process.env.OPSLOG_TEST_NODE_PREFIX ? JSON.parse(process.env.OPSLOG_TEST_NODE_PREFIX) : [];
  return [...prefix, process.execPath, ...args];
}

/**
 * Run an ES module snippet in a child node process with the same implementation selection
 * (OPSLOG_IMPL is inherited). The snippet can `import` from IMPL_URL. Returns spawnSync's result.
 */
export function runNode(code, { timeout = 20000, env = {} } = {}) {
  const [cmd, ...args] = nodeArgv("--input-type=module", "-e", code);
  return spawnSync(cmd, args, {
    encoding: "utf8",
    timeout,
    env: { ...process.env, ...env },
  });
}

/**
 * Skip reason for a test of one of SPEC section 7's deliberate fixes: such a test describes where
 * we differ from the reference, so it is skipped when OPSLOG_IMPL=reference. Set
 * OPSLOG_UNSKIP_DEFECTS=1 as well to run them against the reference anyway (they must fail there).
 */
export function refDefect(n) {
  return process.env.OPSLOG_IMPL === "reference" && !process.env.OPSLOG_UNSKIP_DEFECTS
    ? `reference defect (SPEC 7.${n})`
    : false;
}

/** readOps, or null when the file does not exist (superseded files may be deleted, SPEC 7.8). */
export async function readOpsIfExists(dir, rel) {
  try {
    return await readOps(dir, rel);
  } catch (e) {
    if (e.code === "ENOENT") return null;
    throw e;
  }
}
