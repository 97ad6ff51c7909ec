// Crash safety: a writer process (./writer-child.mjs) is killed with SIGKILL at random moments, the
// store is reopened, and what it holds is checked against what the writer saw acknowledged.
//
// Per write mode (immediate, group, async, and multi-writer with 3 agent processes) CRASH_TRIALS
// trials (default 5; a full run uses 50 or more). Each trial:
//   1. starts the writer(s) on a fresh directory, or on the previous trial's directory (so crashes
//      accumulate across reopens, and the next writer starts with the crashed one's op log);
//   2. kills it: at a random moment before or during open, 20-400 ms into its work, or "armed":
//      the child's own killer thread fires a random fraction of the way into the nth checkpoint,
//      batch, undo, compact, close, reopen or flush (multi-writer: one agent is killed like that and
//      the others keep writing for 20-200 ms more, or all are killed at once or one by one);
//   3. sometimes appends a torn line (a random byte prefix of an op line, cut inside multi-byte
//      UTF-8 too) to the op file, as a crash in the middle of an append would leave it;
//   4. checks:
//      - the store opens without error (read-only and writable, same state both ways);
//      - its state is one the writer could have left: `immediate` and multi-writer: every step whose
//        promise resolved, plus or minus the one step in flight at the kill; `group`/`async`: the
//        state after some prefix of the steps that contains every step before the last resolved
//        flush() (or compact/close/checkpointing write); undo and delete modelled, the in-flight
//        undo may or may not have happened (multi-writer: per agent, on the agent's own keys);
//      - every record holds a value some writer attempted (nothing that was never written, no
//        torn line's record);
//      - the next write and the next undo are right: set + undo, set + reopen (the set is there),
//        undo (it is gone), reopen (still gone); sometimes one more undo after reopen takes back
//        the crashed writer's last logged op.
// The child checks the store's in-memory view against its model after every step, too.
//
// CRASH_TRIALS=<n> trials per mode, CRASH_MODES=immediate,group,async,multi, CRASH_SEED=<n> the
// seed of the random choices (timing still varies), CRASH_SUMMARY=<file> writes the summary JSON.
// Every run prints a summary (trials, where the kills landed, failures) as test diagnostics.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import fs from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Store } from "../support/impl.mjs";
import { beside, sleep } from "../support/helpers.mjs";
import { mulberry32 } from "../support/random.mjs";

const TRIALS = Number(process.env.CRASH_TRIALS ?? 5);
const MODES = (process.env.CRASH_MODES ?? "immediate,group,async,multi").split(",");
const SEED = process.env.CRASH_SEED !== undefined ? Number(process.env.CRASH_SEED) : Math.floor(Math.random() * 1e9);
const CHILD = beside(import.meta.url, "writer-child.mjs");
const AGENTS = ["alpha", "beta", "gamma"];
const CHAIN_MAX = 6;


// --- child processes ------------------------------------------------------------------------

function startChild(cfg) {
  const child = spawn(process.execPath, [CHILD, JSON.stringify(cfg)], { stdio: ["ignore", "pipe", "pipe"] });
  const h = { cfg, child, ready: false, exited: false, code: null, signal: null, stderr: "", killedBy: null };
  let out = "";
  child.stderr.setEncoding("utf8").on("data", (d) => (h.stderr += d));
  h.exitP = new Promise((res) =>
    child.on("close", (code, signal) => {
      h.exited = true;
      h.code = code;
      h.signal = signal;
      res();
    }),
  );
  h.readyP = new Promise((res) => {
    child.stdout.setEncoding("utf8").on("data", (d) => {
      out += d;
      if (!h.ready && out.includes("ready\n")) {
        h.ready = true;
        h.readyAt = Date.now();
        res(true);
      }
    });
    h.exitP.then(() => res(false));
  });
  h.kill = (by) => {
    if (h.exited || h.killedBy) return;
    h.killedBy = by;
    child.kill("SIGKILL");
  };
  return h;
}

/** Waits `ms` or until the child exits. */
async function pause(h, ms) {
  let timer;
  await Promise.race([new Promise((res) => (timer = setTimeout(res, ms))), h.exitP]);
  clearTimeout(timer);
}

async function readyOrTimeout(hs) {
  let timer;
  const ok = await Promise.race([
    Promise.all(hs.map((h) => h.readyP)),
    new Promise((res) => (timer = setTimeout(() => res("timeout"), 30_000))),
  ]);
  clearTimeout(timer);
  if (ok === "timeout") for (const h of hs) h.kill("timeout");
  return ok !== "timeout";
}

// --- the journal and the model --------------------------------------------------------------

function readJournal(path) {
  let text = "";
  try {
    text = fs.readFileSync(path, "utf8");
  } catch {
    // the child died before it opened its journal
  }
  const lines = text.split("\n");
  const tail = lines.pop(); // "" after the last newline, or a journal line cut by the kill
  const steps = [];
  const j = { steps, armed: null, kill: null, fail: null, end: false, tornJournal: tail !== "" };
  for (const line of lines) {
    const e = JSON.parse(line);
    if (e.t === "i") steps.push({ n: e.n, k: e.k, ph: e.ph, pcp: !!e.pcp, eff: e.eff, ack: null });
    else if (e.t === "a") steps[e.n - 1].ack = e;
    else if (e.t === "armed") j.armed = e;
    else if (e.t === "kill") j.kill = e;
    else if (e.t === "fail") j.fail = e;
    else if (e.t === "end") j.end = true;
  }
  steps.forEach((s, i) => assert.equal(s.n, i + 1, `journal ${path}: steps in order`));
  j.inflight = steps.length > 0 && steps.at(-1).ack === null ? steps.at(-1) : null;
  const unacked = steps.filter((s) => s.ack === null);
  assert.ok(unacked.length <= (j.inflight ? 1 : 0), `journal ${path}: only the last step may be unacknowledged`);
  return j;
}

const text = (v) => (v === null ? null : JSON.stringify(v));
const show = (t) => (t === undefined || t === null ? "absent" : t.length > 140 ? t.slice(0, 140) + "..." : t);

/**
 * Whether `actual` (id -> JSON text) is a state the writer could have left: the state after step j
 * for some j from the last durable acknowledged step on (with the in-flight step's effect as one
 * more candidate). Returns { match, minK, last, diag }.
 */
function evaluate(initial, steps, actual, everyAckDurable) {
  let minK = 0;
  steps.forEach((s, i) => {
    if (s.ack && (everyAckDurable || s.ack.d)) minK = i + 1;
  });
  const cur = new Map(initial);
  const diff = new Set();
  const mark = (id) => (cur.get(id) === actual.get(id) ? diff.delete(id) : diff.add(id));
  for (const id of new Set([...cur.keys(), ...actual.keys()])) mark(id);
  const apply = (eff) => {
    for (const [id, v] of eff) {
      if (v === null) cur.delete(id);
      else cur.set(id, text(v));
      mark(id);
    }
  };
  const snapshotDiff = () => [...diff].slice(0, 12).map((id) => `${id}: store ${show(actual.get(id))}, model ${show(cur.get(id))}`);
  let match = null;
  let atMin = minK === 0 ? snapshotDiff() : null;
  if (minK === 0 && diff.size === 0) match = 0;
  for (let j = 1; j <= steps.length && match === null; j++) {
    const s = steps[j - 1];
    if (s.ack) {
      if (s.k !== "undo" || s.ack.ok) apply(s.eff);
      if (j === minK) atMin = snapshotDiff();
      if (j >= minK && diff.size === 0) match = j;
    } else {
      apply(s.eff);
      if (diff.size === 0) match = `${j} (in flight)`;
    }
  }
  const diag =
    match === null
      ? `no state between step ${minK} (last durable acknowledgement) and step ${steps.length} matches.\n` +
        `    at step ${minK}:\n      ${(atMin ?? []).join("\n      ")}\n    at the end:\n      ${snapshotDiff().join("\n      ")}`
      : null;
  return { match, minK, diag };
}

const stateOf = (s) => new Map(s.entries().map(([id, v]) => [id, JSON.stringify(v)]));
const restrict = (m, pred) => new Map([...m].filter(([id]) => pred(id)));
function mapDiff(a, b) {
  const out = [];
  for (const id of new Set([...a.keys(), ...b.keys()])) if (a.get(id) !== b.get(id)) out.push(`${id}: ${show(a.get(id))} vs ${show(b.get(id))}`);
  return out.slice(0, 10);
}

// --- torn lines -----------------------------------------------------------------------------

function readManifest(dir) {
  try {
    return JSON.parse(fs.readFileSync(join(dir, "manifest.json"), "utf8"));
  } catch {
    return null;
  }
}

/** Op files the manifest names whose last line has no newline (a crash tore an append). */
function naturalTorn(dir, manifest) {
  const files = [manifest.activeOps, ...Object.values(manifest.activeAgentOps ?? {})];
  return files.filter((rel) => {
    try {
      const b = fs.readFileSync(join(dir, rel));
      return b.length > 0 && b[b.length - 1] !== 0x0a;
    } catch {
      return false;
    }
  });
}

/** Appends a random byte prefix of an op line (never valid JSON) to the op file `rel`. */
function tearLine(dir, rel, rnd, agent) {
  const b = fs.readFileSync(join(dir, rel));
  if (b.length > 0 && b[b.length - 1] !== 0x0a) return false; // already torn
  const op = { ts: new Date().toISOString(), op: "set", id: `torn-${Math.floor(rnd() * 1e6)}`, prev: null, data: { w: "torn", s: 0, txt: "é✓ torn ✓é" } };
  if (agent) Object.assign(op, { agent, clock: 1e6 });
  const line = Buffer.from(JSON.stringify(op));
  fs.appendFileSync(join(dir, rel), line.subarray(0, 1 + Math.floor(rnd() * (line.length - 2))));
  return true;
}

// --- the check after a kill -----------------------------------------------------------------

async function openStore(dir, opts) {
  const s = new Store();
  await s.open(dir, opts);
  return s;
}

async function closeQuietly(s) {
  try {
    await s?.close();
  } catch {
    // already closed
  }
}

/**
 * Opens the store read-only and writable, checks the state with `judge(state) -> problems[]`,
 * then the next write and the next undo, across reopens. Returns { problems, state } (the state
 * the directory is left in).
 */
async function checkStore({ dir, multi, mode, judge, probe, rnd, attempted }) {
  const problems = [];
  const base = { checkpointThreshold: 1e9, checkpointOnClose: false, ...(multi ? { agentId: "checker" } : { writeMode: mode }) };
  let roState = null;
  if (readManifest(dir)) {
    let ro;
    try {
      ro = await openStore(dir, { readOnly: true, ...(multi ? { agentId: "checker" } : {}) });
      roState = stateOf(ro);
    } catch (e) {
      problems.push(`read-only open failed: ${e.message}`);
    } finally {
      await closeQuietly(ro);
    }
  }
  let s;
  try {
    s = await openStore(dir, base);
  } catch (e) {
    problems.push(`open failed: ${e.stack}`);
    return { problems, state: null };
  }
  let stage = "after open";
  let extraUndo = false;
  try {
    let S = stateOf(s);
    if (roState && mapDiff(roState, S).length) problems.push(`read-only and writable opens differ: ${mapDiff(roState, S).join("; ")}`);
    problems.push(...judge(S));
    for (const [id, t] of S) {
      const v = JSON.parse(t);
      if (attempted.get(`${v.w}:${v.s}`) !== t) problems.push(`${id} holds ${show(t)}, which no writer ever wrote`);
    }
    if (problems.length) return { problems, state: null };
    const expect = (want, where) => {
      const d = mapDiff(stateOf(s), want);
      if (d.length) throw new Error(`${where}: ${d.join("; ")}`);
    };
    // the next write and the next undo, in this session
    stage = "set + undo";
    const p1 = { w: "probe", s: probe, id: `${probe}-1` };
    const id1 = multi ? `checker.p${probe}-1` : `probe-${probe}-1`;
    await s.set(id1, p1);
    expect(new Map([...S, [id1, text(p1)]]), "after the first set");
    const u1 = await s.undo();
    if (u1 !== true) throw new Error(`undo of the first set resolved ${u1}`);
    expect(S, "after undo of the first set");
    stage = "set + reopen";
    const id2 = multi ? `checker.p${probe}-2` : `probe-${probe}-2`;
    const p2 = { w: "probe", s: probe, id: `${probe}-2` };
    await s.set(id2, p2);
    await s.flush();
    await s.close();
    s = await openStore(dir, base);
    expect(new Map([...S, [id2, text(p2)]]), "after reopen, the second set");
    stage = "undo after reopen";
    const u2 = await s.undo();
    if (u2 !== true) throw new Error(`undo of the second set after reopen resolved ${u2}`);
    expect(S, "after undo of the second set");
    await s.flush();
    await s.close();
    stage = "reopen after undo";
    const keepLog = rnd() < 0.5; // keep the op log (no checkpoint on close) for the next writer
    s = await openStore(dir, { ...base, checkpointOnClose: !keepLog });
    expect(S, "after reopen, the undone set");
    if (!multi && rnd() < 0.35) {
      // One more undo: takes back the last op left by the crashed writer, if the log has one.
      stage = "undo of the crashed writer's last op";
      const ops = s.getOps();
      const last = ops.at(-1);
      const u3 = await s.undo();
      if (u3 !== (last !== undefined)) throw new Error(`undo resolved ${u3} with ${ops.length} logged ops`);
      if (last) {
        if (S.get(last.id) !== (last.op === "set" ? text(last.data) : undefined)) {
          throw new Error(`the last logged op (${last.op} ${last.id}) is not what the store holds (${show(S.get(last.id))})`);
        }
        let prev = null;
        if (last.prev !== null) {
          const lib = (await import("../support/impl.mjs")).default;
          prev = text(last.encoding === "delta" ? lib.applyDelta(last.data, last.prev) : last.prev);
          const v = JSON.parse(prev);
          if (attempted.get(`${v.w}:${v.s}`) !== prev) throw new Error(`undo restored ${show(prev)}, which no writer ever wrote`);
        }
        S = new Map(S);
        if (prev === null) S.delete(last.id);
        else S.set(last.id, prev);
        expect(S, "after undo of the crashed writer's last op");
        await s.close();
        s = await openStore(dir, { readOnly: true });
        expect(S, "after reopen, that undo");
      }
      extraUndo = true;
    }
    await s.close();
    s = null;
    return { problems, state: S, extraUndo };
  } catch (e) {
    problems.push(`${stage}: ${e.stack}`);
    return { problems, state: null };
  } finally {
    await closeQuietly(s);
  }
}

// --- summary --------------------------------------------------------------------------------

function newSummary(mode) {
  return {
    mode,
    trials: 0,
    processesKilled: 0,
    reusedDir: 0,
    tornInjected: 0,
    tornFound: 0,
    tornJournal: 0,
    killedBy: {},
    landedIn: {},
    armed: {},
    steps: 0,
    acked: 0,
    matchedInFlight: 0,
    killLagUs: [],
    extraUndo: 0,
    failures: [],
    seconds: 0,
  };
}
const bump = (o, k, by = 1) => (o[k] = (o[k] ?? 0) + by);
const median = (a) => (a.length ? [...a].sort((x, y) => x - y)[a.length >> 1] : NaN);

/** Where one process's kill landed, from its journal. */
function tally(sum, h, j) {
  sum.steps += j.steps.length;
  sum.acked += j.steps.filter((s) => s.ack).length;
  if (j.tornJournal) sum.tornJournal++;
  if (!h.signal) {
    bump(sum.killedBy, h.code === 0 ? "none (ran to the end)" : `none (exited ${h.code})`);
    return;
  }
  sum.processesKilled++;
  const by = j.armed ? "armed" : (h.killedBy ?? "?");
  bump(sum.killedBy, by);
  let where;
  if (j.steps.length === 0) where = "startup (before open)";
  else if (!j.inflight) where = "between steps";
  else {
    where = j.inflight.k === "batch" && j.inflight.ph === "checkpoint" ? "checkpoint (batch)" : j.inflight.ph;
    // an armed kill that came after the call resolved, before the acknowledgement was journaled
    if (j.kill?.opDone && j.armed?.n === j.inflight.n) where = `just after ${where}`;
  }
  bump(sum.landedIn, where);
  if (j.armed) {
    const a = (sum.armed[j.armed.ph] ??= { armed: 0, inside: 0, justAfter: 0 });
    a.armed++;
    if (j.kill && j.inflight?.n === j.armed.n) {
      if (j.kill.opDone) a.justAfter++;
      else a.inside++;
    }
    if (j.kill) sum.killLagUs.push(Number(BigInt(j.kill.at) - BigInt(j.armed.at)) / 1000 - j.armed.delayUs);
  }
}

function report(t, sum) {
  const lines = [
    `crash ${sum.mode}: ${sum.trials} trials, ${sum.processesKilled} processes killed, ${sum.failures.length} failures, ${sum.seconds.toFixed(1)} s`,
    `  killed by: ${JSON.stringify(sum.killedBy)}`,
    `  kill landed in (the step in flight): ${JSON.stringify(sum.landedIn)}`,
    `  armed kills (phase: inside the call / just after it, before its acknowledgement / armed): ${Object.entries(sum.armed).map(([k, v]) => `${k} ${v.inside}/${v.justAfter}/${v.armed}`).join(", ")}`,
    `  armed kill lateness (kill sent minus planned moment): median ${median(sum.killLagUs).toFixed(0)} µs`,
    `  steps ${sum.steps} (${sum.acked} acknowledged); in-flight step found applied ${sum.matchedInFlight}x; dirs reused ${sum.reusedDir}; torn lines injected ${sum.tornInjected}, found after a kill ${sum.tornFound}; extra undo after reopen ${sum.extraUndo}`,
  ];
  for (const l of lines) t.diagnostic(l);
  for (const f of sum.failures) t.diagnostic(`  FAILURE ${f}`);
}

const summaries = [];
/** CRASH_SUMMARY=<file>: the summaries so far, rewritten after every mode. */
function saveSummaries() {
  if (process.env.CRASH_SUMMARY) {
    fs.writeFileSync(process.env.CRASH_SUMMARY, JSON.stringify({ seed: SEED, trials: TRIALS, node: process.version, summaries }, null, 2));
  }
}

// --- one trial ------------------------------------------------------------------------------

const PHASES = {
  immediate: ["checkpoint", "checkpoint", "batch", "batch", "undo", "undo", "compact", "write", "close", "open"],
  group: ["checkpoint", "checkpoint", "batch", "batch", "undo", "undo", "compact", "flush", "close", "open"],
  async: ["checkpoint", "batch", "batch", "undo", "undo", "compact", "flush", "flush", "close", "open"],
  multi: ["compact", "compact", "batch", "batch", "undo", "undo", "write", "refresh", "close", "open"],
};

async function trial(mode, i, rnd, chain, sum) {
  const multi = mode === "multi";
  const pickOf = (a) => a[Math.floor(rnd() * a.length)];
  const between = (a, b) => a + Math.floor(rnd() * (b - a + 1));
  const { root, dir } = chain;
  const expectedFile = join(root, `expected-${i}.json`);
  fs.writeFileSync(expectedFile, JSON.stringify([...chain.state].map(([id, t]) => [id, JSON.parse(t)])));
  const names = multi ? AGENTS : [undefined];
  const cfgs = names.map((agent, a) => ({
    dir,
    journal: join(root, `journal-${i}${agent ? "-" + agent : ""}.jsonl`),
    mode: multi ? "immediate" : mode,
    threshold: multi ? between(8, 40) : between(20, 50),
    groupSize: between(5, 50),
    groupMs: between(5, 100),
    ...(agent ? { agent } : {}),
    tag: `${i}${agent ? agent[0] : ""}`,
    seed: Math.floor(rnd() * 2 ** 32) + a,
    maxMs: 4000,
    expected: expectedFile,
  }));

  // How the kill comes.
  const r = rnd();
  let plan;
  if (r < 0.1) plan = "early";
  else if (r < 0.45) plan = multi ? pickOf(["all", "stagger", "one-timer"]) : "timer";
  else {
    plan = "armed";
    cfgs[0].arm = { phase: pickOf(PHASES[mode]), nth: between(1, 3) };
  }
  const hs = cfgs.map(startChild);
  const killAll = (by) => {
    for (const h of [...hs].sort(() => rnd() - 0.5)) h.kill(by);
  };
  if (plan === "early") {
    await sleep(between(0, multi ? 250 : 150));
    killAll("early");
  } else if (await readyOrTimeout(hs)) {
    if (plan === "timer" || plan === "all") {
      await pause(hs[0], between(20, 400));
      killAll("timer");
    } else if (plan === "stagger") {
      await Promise.all(hs.map(async (h) => {
        await pause(h, between(20, 500));
        h.kill("timer");
      }));
    } else {
      // armed (fallback: a timer) or one-timer: the first process dies, the others go on a while
      await pause(hs[0], plan === "armed" ? 1500 : between(20, 300));
      hs[0].kill(plan === "armed" ? "fallback timer" : "timer");
      await hs[0].exitP;
      if (multi) {
        await sleep(between(20, 200));
        killAll("timer");
      }
    }
  }
  await Promise.all(hs.map((h) => h.exitP));

  // What happened.
  const problems = [];
  let journals;
  try {
    journals = hs.map((h) => readJournal(h.cfg.journal));
  } catch (e) {
    return { problems: [`bad journal: ${e.message}`], plan, cfgs };
  }
  hs.forEach((h, a) => {
    const j = journals[a];
    tally(sum, h, j);
    if (j.fail || (h.code !== 0 && h.code !== null) || (h.signal && h.signal !== "SIGKILL")) {
      problems.push(`${h.cfg.agent ?? "writer"} exited ${h.code ?? h.signal}${j.fail ? ` (self-check at step ${j.fail.n}: ${j.fail.msg})` : ""}\n${h.stderr}`);
    }
    for (const s of j.steps) for (const [, v] of s.eff) if (v !== null) chain.attempted.set(`${v.w}:${v.s}`, text(v));
  });

  const manifest = readManifest(dir);
  if (manifest) {
    // torn by a kill (not a line this harness appended whose agent has not reopened its file yet)
    const torn = naturalTorn(dir, manifest).filter((rel) => !chain.injected.has(rel));
    sum.tornFound += torn.length;
    if (rnd() < 0.35) {
      // multi-writer: a writer agent's file (the agent cuts the torn line when it reopens it)
      const files = multi ? Object.entries(manifest.activeAgentOps ?? {}).filter(([a]) => AGENTS.includes(a)) : [[undefined, manifest.activeOps]];
      const [agent, rel] = pickOf(files.length ? files : [[undefined, manifest.activeOps]]);
      if (rel && tearLine(dir, rel, rnd, agent)) {
        sum.tornInjected++;
        chain.injected.add(rel);
      }
    }
  }

  const judge = (S) => {
    const out = [];
    hs.forEach((h, a) => {
      const agent = h.cfg.agent;
      const mine = agent ? (id) => id.startsWith(agent + ".") : () => true;
      const ev = evaluate(restrict(chain.state, mine), journals[a].steps, restrict(S, mine), mode === "immediate" || multi);
      if (ev.match === null) out.push(`${agent ?? "writer"}: ${ev.diag}`);
      else if (typeof ev.match === "string") sum.matchedInFlight++;
    });
    if (multi) {
      for (const id of S.keys()) if (!AGENTS.some((a) => id.startsWith(a + "."))) out.push(`unexpected record ${id}: ${show(S.get(id))}`);
    }
    return out;
  };
  if (problems.length === 0) {
    const res = await checkStore({ dir, multi, mode, judge, probe: i, rnd, attempted: chain.attempted });
    problems.push(...res.problems);
    if (res.extraUndo) sum.extraUndo++;
    if (res.state) chain.state = res.state;
  }
  return { problems, plan, cfgs };
}

// --- the tests ------------------------------------------------------------------------------

test("the crash checker accepts exactly the states a writer could have left", () => {
  const v = (id, s) => ({ w: "t", s, id });
  const st = (...kv) => new Map(kv.map(([id, s]) => [id, text(v(id, s))]));
  const step = (k, eff, ack) => ({ k, eff: eff.map(([id, s]) => [id, s === null ? null : v(id, s)]), ack });
  const ok = (initial, steps, actual, all) => evaluate(initial, steps, actual, all).match !== null;

  // immediate: every acknowledged step, the in-flight one optional
  let steps = [step("set", [["a", 1]], {}), step("set", [["b", 2]], {}), step("set", [["a", 3]], null)];
  assert.ok(ok(new Map(), steps, st(["a", 1], ["b", 2]), true));
  assert.ok(ok(new Map(), steps, st(["a", 3], ["b", 2]), true));
  assert.ok(!ok(new Map(), steps, st(["a", 1]), true), "an acknowledged write is missing");
  assert.ok(!ok(new Map(), steps, st(["a", 1], ["b", 2], ["c", 9]), true), "a record nobody wrote");
  assert.ok(!ok(new Map(), steps, st(["a", 9], ["b", 2]), true), "a value nobody wrote");
  assert.ok(!ok(st(["z", 0]), steps, st(["a", 1], ["b", 2]), true), "the initial state is lost");
  // a batch is all or nothing
  steps = [step("batch", [["a", 1], ["b", 2], ["a", null]], null)];
  assert.ok(ok(new Map(), steps, st(["b", 2]), true));
  assert.ok(ok(new Map(), steps, new Map(), true));
  assert.ok(!ok(new Map(), steps, st(["a", 1]), true), "half a batch");
  // undo: acknowledged (applied, or resolved false), in flight (either way)
  steps = [step("set", [["a", 1]], {}), step("set", [["a", 2]], {}), step("undo", [["a", 1]], { ok: 1 })];
  assert.ok(ok(new Map(), steps, st(["a", 1]), true));
  assert.ok(!ok(new Map(), steps, st(["a", 2]), true), "an acknowledged undo was lost");
  steps[2].ack = { ok: 0 };
  assert.ok(ok(new Map(), steps, st(["a", 2]), true));
  assert.ok(!ok(new Map(), steps, st(["a", 1]), true));
  steps[2].ack = null;
  assert.ok(ok(new Map(), steps, st(["a", 1]), true) && ok(new Map(), steps, st(["a", 2]), true));
  // group/async: any prefix from the last durable acknowledgement on, nothing that is not a prefix
  steps = [step("set", [["a", 1]], {}), step("flush", [], { d: 1 }), step("set", [["b", 2]], {}), step("set", [["c", 3]], {}), step("set", [["d", 4]], null)];
  for (const good of [st(["a", 1]), st(["a", 1], ["b", 2]), st(["a", 1], ["b", 2], ["c", 3]), st(["a", 1], ["b", 2], ["c", 3], ["d", 4])]) {
    assert.ok(ok(new Map(), steps, good, false));
  }
  assert.ok(!ok(new Map(), steps, new Map(), false), "a write before the last flush is missing");
  assert.ok(!ok(new Map(), steps, st(["a", 1], ["c", 3]), false), "not a prefix");
  assert.ok(!ok(new Map(), steps, st(["a", 1]), true), "immediate: acknowledged writes are missing");
});

MODES.forEach((mode, m) => {
  const title = mode === "multi" ? "multi-writer (3 agent processes)" : `writeMode ${mode}`;
  test(`crash safety, ${title}: ${TRIALS} SIGKILL trials (seed ${SEED + m})`, { timeout: 60_000 + TRIALS * 20_000 }, async (t) => {
    const rnd = mulberry32(SEED + m);
    const sum = newSummary(mode);
    summaries.push(sum);
    const started = Date.now();
    let chain = null;
    const newChain = async () => {
      const root = await mkdtemp(join(tmpdir(), `opslog-crash-${mode}-`));
      return { root, dir: join(root, "store"), state: new Map(), attempted: new Map(), injected: new Set(), length: 0 };
    };
    try {
      for (let i = 0; i < TRIALS; i++) {
        if (chain && (chain.length >= CHAIN_MAX || rnd() < 0.5)) {
          await rm(chain.root, { recursive: true, force: true });
          chain = null;
        }
        if (chain) sum.reusedDir++;
        chain ??= await newChain();
        chain.length++;
        sum.trials++;
        const { problems, plan, cfgs } = await trial(mode, i, rnd, chain, sum);
        if (problems.length) {
          sum.failures.push(
            `trial ${i} (plan ${plan}${cfgs[0].arm ? ` ${JSON.stringify(cfgs[0].arm)}` : ""}, thresholds ${cfgs.map((c) => c.threshold)}, dir kept: ${chain.dir}):\n    ${problems.join("\n    ")}`,
          );
          chain = null; // keep the directory for a look; the next trial starts afresh
        }
      }
      if (chain) await rm(chain.root, { recursive: true, force: true });
    } finally {
      sum.seconds = (Date.now() - started) / 1000;
      report(t, sum);
      saveSummaries();
    }
    assert.deepEqual(sum.failures, [], `seed ${SEED + m}`);
    assert.ok(sum.processesKilled > 0, "some kills happened");
  });
});
