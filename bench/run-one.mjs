// One measurement in a fresh process, so RSS and heap are independent of every other one:
//
//   node --expose-gc bench/run-one.mjs <ours|reference> <scenario> <scale> [--dir DIR] [--fixture DIR] [--profile FILE]
//   node --expose-gc bench/run-one.mjs <ours|reference> fixture:<name> <scale> --dir DIR
//
// The store directory is DIR (default: a new directory under /tmp, removed afterwards). A
// scenario that starts from a fixture copies it from --fixture, or creates it with the same
// implementation when none is given; either way outside the timed part. The result is printed
// as one line, `RESULT {json}`, on stdout. `--profile FILE` writes a CPU profile of the timed
// part (not for multi, whose work is in the agents).
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fork } from "node:child_process";
import {
  BENCH_DIR, loadStore, makeRecord, recordId, scaled, settle, rssMB, peakRssMB, resetPeakRss,
  watchLoop, createFixture, copyStore, FIXTURES,
} from "./common.mjs";
import { byKey } from "./scenarios.mjs";

const [impl, scenario, scaleArg, ...rest] = process.argv.slice(2);
const opt = (name) => {
  const i = rest.indexOf(name);
  return i === -1 ? undefined : rest[i + 1];
};
const scale = Number(scaleArg ?? 1);
if (!impl || !scenario || !(scale > 0)) {
  console.error("usage: node --expose-gc bench/run-one.mjs <ours|reference> <scenario|fixture:NAME> <scale> [--dir DIR] [--fixture DIR]");
  process.exit(2);
}

const Store = await loadStore(impl);
const ownDir = !opt("--dir");
const dir = opt("--dir") ?? fs.mkdtempSync(path.join(os.tmpdir(), `opslog-bench-${impl}-`));

/**
 * With `--profile FILE`, a V8 CPU profile of the timed part only (setup excluded) is written to
 * FILE (.cpuprofile, for bench/profile.mjs or Chrome DevTools).
 */
const profile = await (async () => {
  const file = opt("--profile");
  if (!file) return { start: async () => {}, stop: async () => {} };
  const { Session } = await import("node:inspector");
  const session = new Session();
  session.connect();
  const post = (method, params) =>
    new Promise((resolve, reject) => session.post(method, params, (err, r) => (err ? reject(err) : resolve(r))));
  await post("Profiler.enable");
  await post("Profiler.setSamplingInterval", { interval: 200 });
  return {
    start: () => post("Profiler.start"),
    async stop() {
      const { profile: p } = await post("Profiler.stop");
      fs.writeFileSync(file, JSON.stringify(p));
    },
  };
})();

function report(figures, details = {}) {
  process.stdout.write(`RESULT ${JSON.stringify({ impl, scenario, scale, figures, details })}\n`);
}

/** The fixture a scenario starts from, in `dir`. */
async function prepare(name) {
  const from = opt("--fixture");
  if (from) copyStore(from, dir);
  else await createFixture(Store, name, scale, dir);
}

/**
 * OPSLOG_BENCH_OPTIONS (JSON) adds store options to the timed scenarios' open, e.g.
 * '{"durable":true}'. For diagnosis only: the recorded benchmark uses each scenario's options.
 */
const extraOptions = JSON.parse(process.env.OPSLOG_BENCH_OPTIONS ?? "{}");
/** The scenario's own options (the raw path's `checkpointThreshold`), then OPSLOG_BENCH_OPTIONS. */
const scenarioOptions = { ...byKey.get(scenario)?.options, ...extraOptions };
const withExtra = (o) => ({ ...o, ...scenarioOptions });

const records = (n) => Array.from({ length: n }, (_, i) => makeRecord(i));

async function sequentialSets(writeMode, size) {
  const n = scaled(size, scale, 10);
  const recs = records(n);
  const ids = recs.map((_, i) => recordId(i));
  const store = new Store();
  await store.open(dir, withExtra({ writeMode }));
  await settle();
  await profile.start();
  const t0 = performance.now();
  for (let i = 0; i < n; i++) await store.set(ids[i], recs[i]);
  if (writeMode !== "immediate") await store.flush();
  const ms = performance.now() - t0;
  await profile.stop();
  await store.close();
  report({ opsPerSec: (n * 1000) / ms }, { n, ms, writeMode });
}

async function batches(key) {
  const count = scaled(byKey.get(key).size / 1000, scale, 1);
  const n = count * 1000;
  const recs = records(n);
  const ids = recs.map((_, i) => recordId(i));
  const store = new Store();
  await store.open(dir, withExtra({}));
  await settle();
  await profile.start();
  const t0 = performance.now();
  for (let b = 0; b < count; b++) {
    await store.batch(() => {
      for (let i = b * 1000; i < (b + 1) * 1000; i++) store.set(ids[i], recs[i]);
    });
  }
  const ms = performance.now() - t0;
  await profile.stop();
  await store.close();
  report({ opsPerSec: (n * 1000) / ms }, { n, batches: count, ms });
}

/**
 * The reference's own group-commit check: `n` sequential sets in `immediate` on a new store,
 * then `n` in `group` (and a flush) on another, in this one process; figure: immediate's time
 * over group's.
 */
async function groupVsImmediate(key) {
  const n = scaled(byKey.get(key).size, scale, 10);
  const recs = records(n);
  const ids = recs.map((_, i) => recordId(i));
  const ms = {};
  for (const writeMode of ["immediate", "group"]) {
    const sub = path.join(dir, writeMode);
    fs.mkdirSync(sub, { recursive: true });
    const store = new Store();
    await store.open(sub, withExtra({ writeMode }));
    const t0 = performance.now();
    for (let i = 0; i < n; i++) await store.set(ids[i], recs[i]);
    if (writeMode === "group") await store.flush();
    ms[writeMode] = performance.now() - t0;
    await store.close();
  }
  report({ speedup: ms.immediate / ms.group }, { n, immediateMs: ms.immediate, groupMs: ms.group });
}

/**
 * 3 agent processes open the store one after the other (not timed), then all start on a signal;
 * the figure is the total over the wall time from the signal to the last agent's last write.
 */
async function multi(key) {
  const agents = 3;
  const n = scaled(byKey.get(key).size, scale, 10);
  // The store exists before the agents start (a single-writer open and close: no ops).
  const init = new Store();
  await init.open(dir);
  await init.close();
  const children = [];
  // Agents open one after the other (registration is not timed), then all start together.
  for (let a = 0; a < agents; a++) {
    const child = fork(path.join(BENCH_DIR, "agent.mjs"), [impl, dir, `agent${a}`, String(n), JSON.stringify(scenarioOptions)], {
      stdio: ["ignore", "inherit", "inherit", "ipc"],
    });
    await new Promise((resolve, reject) => {
      child.once("message", (m) => (m === "ready" ? resolve() : reject(new Error(`agent: ${JSON.stringify(m)}`))));
      child.once("exit", (code) => reject(new Error(`agent ${a} exited with ${code} before it was ready`)));
    });
    children.push(child);
  }
  const done = children.map(
    (child) => new Promise((resolve, reject) => {
      child.once("message", (m) => (m?.done ? resolve(m) : reject(new Error(`agent: ${JSON.stringify(m)}`))));
    }),
  );
  const t0 = performance.now();
  for (const child of children) child.send("go");
  const results = await Promise.all(done);
  const ms = performance.now() - t0;
  for (const child of children) {
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.send("close");
    await exited;
  }
  report({ opsPerSec: (agents * n * 1000) / ms }, { agents, perAgent: n, ms, agentMs: results.map((r) => r.ms) });
}

const run = {
  "set-immediate": () => sequentialSets("immediate", byKey.get("set-immediate").size),
  "set-group": () => sequentialSets("group", byKey.get("set-group").size),
  "set-async": () => sequentialSets("async", byKey.get("set-async").size),
  "raw-set-immediate": () => sequentialSets("immediate", byKey.get("raw-set-immediate").size),
  "raw-set-group": () => sequentialSets("group", byKey.get("raw-set-group").size),
  "raw-set-async": () => sequentialSets("async", byKey.get("raw-set-async").size),
  batch: () => batches("batch"),
  "raw-batch": () => batches("raw-batch"),
  multi: () => multi("multi"),
  "raw-multi": () => multi("raw-multi"),
  "group-vs-immediate": () => groupVsImmediate("group-vs-immediate"),
  "raw-group-vs-immediate": () => groupVsImmediate("raw-group-vs-immediate"),

  async open() {
    await prepare("records-1m");
    await settle();
    const rssBefore = rssMB();
    const store = new Store();
    await profile.start();
    const { ms, stallMs } = await watchLoop(() => store.open(dir, withExtra({})));
    await profile.stop();
    const n = store.count();
    await settle();
    const mem = process.memoryUsage();
    const scanStart = performance.now();
    const scanned = store.all().length;
    const scanMs = performance.now() - scanStart;
    // RSS once the view is whole: ours builds the Map of what all() decoded in the background,
    // and any read finishes it (not timed).
    store.has(recordId(0));
    await settle();
    report(
      { ms, rssMB: mem.rss / 2 ** 20, scanMs, openAllMs: ms + scanMs, rssScanMB: rssMB() },
      { n, scanned, rssBeforeOpenMB: rssBefore, heapUsedMB: mem.heapUsed / 2 ** 20, externalMB: mem.external / 2 ** 20, openStallMs: stallMs },
    );
    await store.close();
  },

  async compact() {
    await prepare("records-1m");
    const store = new Store();
    await store.open(dir, withExtra({}));
    const n = store.count();
    await settle();
    await profile.start();
    const { ms, stallMs } = await watchLoop(() => store.compact());
    await profile.stop();
    report({ ms, stallMs }, { n });
    await store.close();
  },

  async stream() {
    await prepare("records-1m");
    const store = new Store();
    await store.open(dir, { checkpointOnClose: false });
    await settle();
    const base = rssMB();
    const peakReset = resetPeakRss();
    let sampled = base;
    let n = 0;
    let check = 0;
    await profile.start();
    const t0 = performance.now();
    for await (const [id, rec] of store.streamSnapshot()) {
      n++;
      check += id.length + rec.value;
      if ((n & 4095) === 0) sampled = Math.max(sampled, rssMB());
    }
    const ms = performance.now() - t0;
    await profile.stop();
    const peak = Math.max(sampled, rssMB(), peakReset ? peakRssMB() : 0);
    report({ ms, growthMB: peak - base }, { n, baseMB: base, peakMB: peak, peakFrom: peakReset ? "VmHWM" : "samples", check });
    await store.close();
  },

  async walops() {
    await prepare("wal-100k");
    const store = new Store();
    await store.open(dir, { checkpointThreshold: 1e12, checkpointOnClose: false });
    await settle();
    const base = rssMB();
    const peakReset = resetPeakRss();
    let sampled = base;
    let n = 0;
    await profile.start();
    const t0 = performance.now();
    for await (const op of store.getWalOps()) {
      n++;
      if (op.op !== "set") throw new Error("unexpected op");
      if ((n & 4095) === 0) sampled = Math.max(sampled, rssMB());
    }
    const ms = performance.now() - t0;
    await profile.stop();
    const peak = Math.max(sampled, rssMB(), peakReset ? peakRssMB() : 0);
    report({ ms, growthMB: peak - base }, { n, baseMB: base, peakMB: peak, peakFrom: peakReset ? "VmHWM" : "samples" });
    await store.close();
  },

  async read() {
    await prepare("records-100k");
    const store = new Store();
    await store.open(dir, { checkpointOnClose: false });
    const size = store.count();
    const gets = scaled(100_000, scale, 100);
    // A fixed pseudo-random order of existing ids.
    const ids = new Array(gets);
    let x = 12345;
    for (let i = 0; i < gets; i++) {
      x = (x * 1103515245 + 12345) & 0x7fffffff;
      ids[i] = recordId(x % size);
    }
    const predicates = [
      (r) => r.status === "active",
      (r) => r.value % 10 === 0,
      (r) => r.tags.includes("b") && r.value > size / 2,
      (r) => r.name.endsWith("7"),
      (r) => r.note.length > 40,
    ];
    await settle();
    await profile.start();
    const t0 = performance.now();
    let matched = 0;
    for (let k = 0; k < 10; k++) matched += store.filter(predicates[k % predicates.length]).length;
    const t1 = performance.now();
    let sum = 0;
    for (let i = 0; i < gets; i++) sum += store.get(ids[i]).value;
    const t2 = performance.now();
    await profile.stop();
    report({ ms: t2 - t0 }, { records: size, gets, filterMs: t1 - t0, getMs: t2 - t1, matched, sum });
    await store.close();
  },

};

try {
  if (scenario.startsWith("fixture:")) {
    const name = scenario.slice("fixture:".length);
    if (!FIXTURES[name]) throw new Error(`unknown fixture ${name}`);
    const t0 = performance.now();
    const made = await createFixture(Store, name, scale, dir);
    report({ ms: performance.now() - t0 }, made);
  } else {
    if (!run[scenario]) throw new Error(`unknown scenario ${scenario} (one of: ${Object.keys(run).join(", ")})`);
    await run[scenario]();
  }
} finally {
  if (ownDir) fs.rmSync(dir, { recursive: true, force: true });
}
