// One writer of crash.test.mjs: a child process that opens a store and does a seeded random mix of
// set (new ids and overwrites), delete, batch, undo, flush, compact and close+reopen, one at a
// time (each awaited), until it is killed with SIGKILL (or, if nobody kills it, for cfg.maxMs).
//
// Usage: node writer-child.mjs '<json config>'
//   config: { dir, journal, mode, threshold, groupSize, groupMs, agent?, tag, seed, maxMs,
//             expected, arm?: { phase, nth } }
//
// The journal: every step is reported with fs.writeSync on the journal file (which survives a
// SIGKILL of this process: the bytes are in the kernel once writeSync returns):
//   {t:"i", n, k, ph, eff, pcp?}   intent, written just before the call. `eff` is the step's effect
//                                  if it happens: [[id, record | null], ...] in order (null: the
//                                  record is gone); for an undo, what the model expects it to
//                                  restore. `ph` is the phase the self-kill can aim at (write,
//                                  checkpoint (a write predicted to trigger one), batch, undo,
//                                  flush, compact, close, open, refresh), `pcp` that prediction.
//   {t:"a", n, ok?, cp?, d?}       acknowledgement, after the promise resolved and the model and
//                                  the store's view agreed. `ok`: undo's result; `cp`: a checkpoint
//                                  happened; `d`: everything before is now in the files (flush,
//                                  compact, close, a write that checkpointed).
//   {t:"armed", n, ph, delayUs, estUs, at}   the self-kill was armed for step n (at: hrtime ns).
//   {t:"done", at, us}             the armed step's call resolved (the kill is still to come).
//   {t:"kill", opDone, at}         written by the killer thread just before it sends SIGKILL.
//   {t:"fail", n, msg}             the store's view disagreed with the model (exit code 3).
// Records are {w, s, id, n, txt[, extra]}: `w` is the writer's tag, `s` its sequence number, so a
// record identifies the one attempt that wrote it.
//
// `cfg.arm`: a worker thread spins and sends this process SIGKILL at a random moment into the
// `nth` step of phase `arm.phase`: within 1.3x the duration measured for that phase so far
// (checkpoints, compactions, close, open, refresh), or within the first 30 µs (the synchronous
// writes, batches, undos and flushes, whose append or truncate is a single system call). On a busy
// machine the kill comes later than planned; the step is still unacknowledged when it lands.
// Multi-writer (`agent`): the agent writes only its own keys (`<agent>.*`); `mode` is immediate.
import fs from "node:fs";
import { Worker } from "node:worker_threads";
import { Store } from "../support/impl.mjs";
import lib from "../support/impl.mjs";
import { mulberry32 } from "../support/random.mjs";

const { applyDelta } = lib;
const cfg = JSON.parse(process.argv[2]);
const multi = cfg.agent !== undefined;
const J = fs.openSync(cfg.journal, "a");
const log = (o) => fs.writeSync(J, JSON.stringify(o) + "\n");

const rnd = mulberry32(cfg.seed);
const int = (n) => Math.floor(rnd() * n);
const pick = (a) => a[int(a.length)];
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const now = () => process.hrtime.bigint();

// --- the self-kill thread -------------------------------------------------------------------
// ctl[0]: 1 = fire, ctl[1]: delay in ns, ctl[2]: 1 = stop, ctl[3]: 1 = the armed step's call has
// resolved. The worker spins (no allocation in the loop), so it sees the arming at once and
// measures the delay on its own clock; just before the kill it journals whether the call had
// resolved ({t:"kill", opDone}). After the armed call resolves, the main thread blocks until the
// kill comes, so a late kill (a busy machine) still lands before the step's acknowledgement.
const ctl = new Int32Array(new SharedArrayBuffer(16));
let killer = null;
if (cfg.arm) {
  killer = new Worker(
    `const { workerData } = require("node:worker_threads");
     const fs = require("node:fs");
     const ctl = new Int32Array(workerData.buf);
     for (;;) {
       if (Atomics.load(ctl, 0) === 1) {
         const at = performance.now() + Atomics.load(ctl, 1) / 1e6;
         while (performance.now() < at) {}
         fs.writeSync(workerData.fd, JSON.stringify({ t: "kill", opDone: Atomics.load(ctl, 3), at: String(process.hrtime.bigint()) }) + "\\n");
         process.kill(process.pid, "SIGKILL");
       }
       if (Atomics.load(ctl, 2) === 1) break;
     }`,
    { eval: true, workerData: { buf: ctl.buffer, fd: J } },
  );
  await new Promise((r) => killer.once("online", r));
}
/** Measured duration (µs, moving average) of each phase in this process. */
const est = new Map();
const DEFAULT_US = { checkpoint: 1500, compact: 1500, close: 2000, open: 3000, refresh: 200 };
const SYNC_PHASES = new Set(["write", "batch", "undo", "flush"]);
let armCount = 0;

// --- the model ------------------------------------------------------------------------------
const keyName = (s) => (multi ? `${cfg.agent}.${s}` : s);
const pool = Array.from({ length: 24 }, (_, i) => keyName(`k${i}`));
const mine = (id) => !multi || id.startsWith(cfg.agent + ".");
/** The acknowledged state of this writer's keys: id -> record. */
const model = new Map();
/** The ops undo can still take back, oldest first: {id, prev (record | undefined)}. */
let stack = [];
let seq = 0;
let n = 0;
const txtFor = (id) => "é✓ " + id + " ".padEnd(id.length % 11, "·");

function value(id) {
  seq++;
  const v = { w: cfg.tag, s: seq, id, n: seq % 7, txt: txtFor(id) };
  if (rnd() < 0.3) v.extra = "x\u00e9".repeat(1 + (seq % 3));
  return v;
}

function fail(msg) {
  log({ t: "fail", n, msg });
  process.stderr.write(`crash-child ${cfg.agent ?? ""} step ${n}: ${msg}\n`);
  process.exit(3);
}

const show = (v) => (v === undefined ? "absent" : JSON.stringify(v));
function checkKeys(s, ids, where) {
  for (const id of ids) {
    const got = s.get(id);
    const want = model.get(id);
    if (JSON.stringify(got) !== JSON.stringify(want)) fail(`${where}: ${id} reads ${show(got)}, model ${show(want)}`);
  }
}
function checkAll(s, where) {
  let count = 0;
  for (const [id] of s.entries()) if (mine(id)) count++;
  if (count !== model.size) fail(`${where}: ${count} records, model ${model.size}`);
  checkKeys(s, model.keys(), where);
}

/** The undo stack the store holds after open: this writer's ops since the last checkpoint. */
function seedStack(s) {
  stack = [];
  for (const op of s.getOps()) {
    if (multi && op.agent !== cfg.agent) continue;
    let prev;
    if (op.prev !== null) prev = op.encoding === "delta" ? applyDelta(op.data, op.prev) : op.prev;
    stack.push({ id: op.id, prev });
  }
  if (!multi && stack.length !== s.stats().opsCount) fail(`seeded ${stack.length} ops, opsCount ${s.stats().opsCount}`);
}

const openOpts = {
  writeMode: cfg.mode,
  checkpointThreshold: cfg.threshold,
  groupCommitSize: cfg.groupSize,
  groupCommitMs: cfg.groupMs,
  ...(multi ? { agentId: cfg.agent } : {}),
};

/** Runs one journaled step. `call` does the store call; `after(result)` updates the model. */
async function step(k, ph, eff, call, after, extra = {}) {
  n++;
  log({ t: "i", n, k, ph, eff, ...extra });
  if (cfg.arm && cfg.arm.phase === ph && ++armCount === cfg.arm.nth) {
    // Writes, batches, undo and flush run synchronously on this thread (an append or a truncate of
    // a few µs inside a call whose promise takes longer to settle): aim at the first 30 µs.
    const estUs = SYNC_PHASES.has(ph) ? 30 : (est.get(ph) ?? DEFAULT_US[ph]);
    const delayUs = rnd() * (SYNC_PHASES.has(ph) ? 1 : 1.3) * estUs;
    log({ t: "armed", n, ph, delayUs: Math.round(delayUs), estUs: Math.round(estUs), at: String(now()) });
    Atomics.store(ctl, 1, Math.round(delayUs * 1000));
    Atomics.store(ctl, 0, 1);
  }
  const armed = Atomics.load(ctl, 0) === 1;
  const t0 = now();
  const result = await call();
  const us = Number(now() - t0) / 1000;
  if (armed) {
    Atomics.store(ctl, 3, 1);
    log({ t: "done", at: String(now()), us });
    Atomics.wait(ctl, 2, 0, 2000); // the kill comes (the stop flag never does)
  }
  est.set(ph, est.has(ph) ? est.get(ph) * 0.7 + us * 0.3 : us);
  const ack = (await after(result)) ?? {};
  log({ t: "a", n, ...ack });
}

function applyEff(eff) {
  for (const [id, v] of eff) {
    if (v === null) model.delete(id);
    else model.set(id, v);
  }
}

/** After a write in single-writer mode: the op count tells whether a checkpoint cleared the log. */
function afterWriteCount(s) {
  if (multi) return {};
  const c = s.stats().opsCount;
  if (c === stack.length) return {};
  if (c === 0) {
    stack = [];
    return { cp: 1, d: 1 };
  }
  fail(`opsCount ${c}, model ${stack.length}`);
}

const willCheckpoint = (kind, nOps) =>
  !multi && (cfg.mode !== "async" || kind === "batch") && stack.length + nOps >= cfg.threshold;

// --- main -----------------------------------------------------------------------------------
process.on("unhandledRejection", (e) => fail(`unhandled rejection: ${e?.stack ?? e}`));

let s = new Store();
try {
  await step("open", "open", [], () => s.open(cfg.dir, openOpts), () => {
    for (const [id, v] of JSON.parse(fs.readFileSync(cfg.expected, "utf8"))) if (mine(id)) model.set(id, v);
    checkAll(s, "open (the state the last check left)");
    seedStack(s);
  });
  fs.writeSync(1, "ready\n");
  const deadline = Date.now() + cfg.maxMs;
  while (Date.now() < deadline) {
    const r = rnd();
    if (r < 0.42) {
      // set: mostly pool keys (creates after deletes, and overwrites), some brand-new ids
      const id = r < 0.36 ? pick(pool) : keyName(`n${cfg.tag}-${seq + 1}`);
      const v = value(id);
      const pcp = willCheckpoint("set", 1);
      await step("set", pcp ? "checkpoint" : "write", [[id, v]], () => s.set(id, v), () => {
        stack.push({ id, prev: model.get(id) });
        model.set(id, v);
        checkKeys(s, [id], "set");
        return afterWriteCount(s);
      }, pcp ? { pcp: 1 } : {});
    } else if (r < 0.54) {
      const present = [...model.keys()];
      if (present.length === 0) continue;
      const id = pick(present);
      const pcp = willCheckpoint("delete", 1);
      await step("delete", pcp ? "checkpoint" : "write", [[id, null]], () => s.delete(id), () => {
        stack.push({ id, prev: model.get(id) });
        model.delete(id);
        checkKeys(s, [id], "delete");
        return afterWriteCount(s);
      }, pcp ? { pcp: 1 } : {});
    } else if (r < 0.66) {
      // batch: 2-6 sets and deletes, one append
      const cur = new Map(model);
      const ops = [];
      const pushes = [];
      for (let i = 2 + int(5); i > 0; i--) {
        const present = [...cur.keys()];
        if (present.length > 0 && rnd() < 0.3) {
          const id = pick(present);
          pushes.push({ id, prev: cur.get(id) });
          cur.delete(id);
          ops.push([id, null]);
        } else {
          const id = rnd() < 0.85 ? pick(pool) : keyName(`n${cfg.tag}-${seq + 1}`);
          const v = value(id);
          pushes.push({ id, prev: cur.get(id) });
          cur.set(id, v);
          ops.push([id, v]);
        }
      }
      const pcp = willCheckpoint("batch", ops.length);
      await step("batch", pcp ? "checkpoint" : "batch", ops, () =>
        s.batch(() => {
          for (const [id, v] of ops) v === null ? s.delete(id) : s.set(id, v);
        }), () => {
        stack.push(...pushes);
        applyEff(ops);
        checkKeys(s, ops.map(([id]) => id), "batch");
        return afterWriteCount(s);
      }, pcp ? { pcp: 1 } : {});
    } else if (r < 0.78) {
      const top = stack.at(-1);
      const eff = top ? [[top.id, top.prev ?? null]] : [];
      await step("undo", "undo", eff, () => s.undo(), (ok) => {
        if (!multi && ok !== (top !== undefined)) fail(`undo resolved ${ok} with ${stack.length} ops in the model`);
        if (ok) {
          if (!top) fail("undo took back an op the model does not know");
          stack.pop();
          applyEff(eff);
          checkKeys(s, [top.id], "undo");
        } else {
          stack = []; // multi-writer: a compaction folded this agent's ops into the snapshot
        }
        if (!multi && s.stats().opsCount !== stack.length) fail(`after undo opsCount ${s.stats().opsCount}, model ${stack.length}`);
        return { ok: ok ? 1 : 0 };
      });
    } else if (r < 0.85) {
      await step("flush", "flush", [], () => s.flush(), () => ({ d: 1 }));
    } else if (r < 0.88) {
      await step("compact", "compact", [], () => s.compact(), () => {
        // multi-writer: the compaction is skipped when another agent holds .compact-lock, so
        // whether this agent's ops were folded shows at the next undo
        if (!multi) afterWriteCount(s);
        return { d: 1, cp: 1 };
      });
    } else if (r < 0.895) {
      await step("close", "close", [], () => s.close(), () => ({ d: 1 }));
      s = new Store();
      await step("open", "open", [], () => s.open(cfg.dir, openOpts), () => {
        checkAll(s, "reopen");
        seedStack(s);
      });
    } else if (r < 0.93 && multi) {
      await step("refresh", "refresh", [], () => s.refresh(), () => checkKeys(s, pool, "refresh"));
    } else if (rnd() < 0.3) {
      await sleep(1 + int(2)); // lets group/async mode's timer flush
    } else {
      await new Promise(setImmediate);
    }
    if (n % 64 === 0) checkAll(s, "periodic");
  }
  await step("close", "close", [], () => s.close(), () => ({ d: 1 }));
} catch (e) {
  fail(`step threw: ${e?.stack ?? e}`);
}
log({ t: "end", n });
Atomics.store(ctl, 2, 1);
if (killer) await killer.terminate();
