// Machinery for the differential test (see store.test.mjs).
//
// A seeded generator produces a sequence of Store calls; the same sequence runs against two
// implementations ("ref" = @backloghq/opslog@0.8.1, "ours" = ../../index.mjs), each in its own temp
// directory, and after every step the observable state is compared: in-memory reads, call results,
// and the bytes of every file reachable from manifest.json (timestamps and time-derived file names
// normalised, see normalizeDir below).

import { mkdtemp, open as openFile, readFile, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { inspect } from "node:util";
import { mulberry32 } from "../support/random.mjs";
import { collect } from "../support/helpers.mjs";
import { referenceSnapshotStream } from "./reference-deviations.mjs";

// ---------------------------------------------------------------------------------------------
// Deterministic PRNG (mulberry32)
// ---------------------------------------------------------------------------------------------

export class Rng {
  #next;
  constructor(seed) {
    this.#next = mulberry32(seed);
  }
  next() {
    return this.#next();
  }
  int(n) {
    return Math.floor(this.next() * n);
  }
  range(lo, hi) {
    return lo + this.int(hi - lo + 1);
  }
  chance(p) {
    return this.next() < p;
  }
  pick(arr) {
    return arr[this.int(arr.length)];
  }
  weighted(table) {
    let total = 0;
    for (const [w] of table) total += w;
    let x = this.next() * total;
    for (const [w, v] of table) {
      if ((x -= w) < 0) return v;
    }
    return table[table.length - 1][1];
  }
  shuffle(arr) {
    const a = [...arr];
    for (let i = a.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      [a[i], a[j]] = [a[j], a[i]];
    }
    return a;
  }
}

// ---------------------------------------------------------------------------------------------
// Value / record / id generators
// ---------------------------------------------------------------------------------------------

// Strings whose JSON text is easy to get wrong outside of JavaScript's JSON.stringify.
const SPECIAL_STRINGS = [
  "",
  "plain",
  "line\u2028sep\u2029para",
  "emoji 😀👍🏽🇫🇷 \u{1F600}",
  'quote " inside',
  "back\\slash \\n not a newline \\",
  "ctl \u0000\u0001\u0007\b\t\n\u000b\f\r\u001b\u001f\u007f\u0080\u0085\u00a0",
  "lone \ud800 high",
  "lone \udfff low",
  "\udc00\ud800 reversed pair",
  "ends with high \ud83d",
  "ünïcödé ñ 中文 العربية",
  "</script><!-- & < >",
  "tab\tand\r\nCRLF",
  '{"json":"inside"}',
  " leading and trailing ",
  "\ufeffBOM",
  "\u{10FFFF}max",
  "x".repeat(300), // makes records big enough that deltas win
];

const SPECIAL_NUMBERS = [
  0, -0, 1, -1, 1.5, -1.5, 0.1 + 0.2, 1e21, -1e21, 1e20, 123e19, 1e-7, 1e-6, 0.000001234, 123e-20,
  5e-324, Number.MAX_VALUE, Number.MIN_VALUE, Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER + 2,
  -(2 ** 31), 2 ** 32, 1 / 3, 2 / 3, 100, 4.35, 1.7976931348623157e308, 123456789.123456789, 9.95,
  0.5e-323,
];

// Keys: ordinary ones, integer-like ones (JS orders them first inside objects), keys inherited from
// Object.prototype (the reference's createDelta uses `in`, which sees them), odd characters.
// "__proto__" is deliberately absent (see the report / README notes in store.test.mjs).
const KEYS = [
  "name", "status", "n", "count", "tags", "meta", "note", "x", "y", "z", "a", "b", "c",
  "1", "2", "10", "0", "4294967294", "4294967295",
  "constructor", "toString", "valueOf", "hasOwnProperty",
  "ünï", "😀", "k e y", 'q"k', "b\\k", "\u2028", "", "\ud800", "a_rather_long_key_name_for_delta_sizing",
];

// Ids: plain, integer-like (ordering inside archive segments), Object.prototype names, odd text.
const SPECIAL_IDS = [
  "a", "b", "0", "1", "2", "10", "42", "4294967294", "4294967295", "007", "-1", "1.5",
  "constructor", "toString", "__proto__", "hasOwnProperty", "ü-😀", "with space", 'quo"te',
  "back\\slash", "\u2028", "\ud800", "Ω",
];

const CHARS = [
  ..."abcdefghijklmnopqrstuvwxyzABCXYZ0123456789 _-./:",
  '"', "\\", "\n", "\t", "\r", "\b", "\f", "\u0000", "\u0001", "\u001f", "\u007f", "\u2028", "\u2029",
  "é", "ß", "中", "😀", "👍🏽", "\ud800", "\udc00", "\u00a0", "\ufeff", "<", ">", "&", "'",
];

function randomString(rng) {
  const len = rng.chance(0.1) ? rng.range(30, 120) : rng.range(0, 12);
  let s = "";
  for (let i = 0; i < len; i++) s += rng.pick(CHARS);
  return s;
}

function randomNumber(rng) {
  switch (rng.int(5)) {
    case 0:
      return rng.pick(SPECIAL_NUMBERS);
    case 1:
      return rng.range(-1000, 1000);
    case 2:
      return (rng.next() - 0.5) * 10 ** rng.range(-12, 25);
    case 3:
      return rng.range(0, 100000) / rng.pick([10, 100, 1000, 3, 7]);
    default:
      return rng.int(10);
  }
}

export function genValue(rng, depth, opts) {
  const r = rng.next();
  if (r < 0.27) return rng.chance(0.45) ? rng.pick(SPECIAL_STRINGS) : randomString(rng);
  if (r < 0.52) return randomNumber(rng);
  if (r < 0.58) return rng.chance(0.5);
  if (r < 0.62) return null;
  if (r < 0.63 && opts.nonFinite) return rng.pick([NaN, Infinity, -Infinity]); // JSON: null
  if (depth <= 0 || r < 0.70) return rng.chance(0.5) ? rng.pick(SPECIAL_STRINGS) : randomNumber(rng);
  if (r < 0.85) {
    const n = rng.chance(0.2) ? 0 : rng.range(1, 4);
    const arr = [];
    for (let i = 0; i < n; i++) arr.push(genValue(rng, depth - 1, opts));
    return arr;
  }
  return genObject(rng, depth - 1, rng.chance(0.15) ? 0 : rng.range(1, 4), opts);
}

function genObject(rng, depth, nKeys, opts) {
  const obj = {};
  for (let i = 0; i < nKeys; i++) obj[rng.pick(KEYS)] = genValue(rng, depth, opts);
  return obj;
}

export function genRecord(rng, opts) {
  const rec = {};
  if (rng.chance(0.85)) rec.name = rng.chance(0.5) ? `item ${rng.int(1000)}` : randomString(rng);
  const n = rng.range(0, 6);
  for (let i = 0; i < n; i++) rec[rng.pick(KEYS)] = genValue(rng, 2, opts);
  if (rng.chance(0.3)) rec.body = "lorem ipsum ".repeat(rng.range(5, 40)); // big: delta wins
  return rec;
}

const clone = (v) => structuredClone(v); // keeps -0, NaN, lone surrogates and key order

// A new record derived from `old`, so that the delta encoding is exercised in every direction:
// changed / added / removed keys, key-order-only changes, no change at all, full replacement.
export function mutateRecord(rng, old, opts) {
  const keys = Object.keys(old);
  const kind = rng.weighted([
    [6, "change"], [4, "add"], [4, "remove"], [4, "mixed"], [2, "reorder"], [2, "same"],
    [2, "replace"], [3, "nested"], [1, "nestedReorder"], [2, "grow"], [1, "shrink"], [1, "inherited"],
  ]);
  const out = {};
  const copyAll = () => {
    for (const k of keys) out[k] = clone(old[k]);
  };
  const freshKey = () => {
    for (let i = 0; i < 10; i++) {
      const k = rng.pick(KEYS);
      if (!Object.hasOwn(old, k) && !Object.hasOwn(out, k)) return k;
    }
    return `k${rng.int(1e6)}`;
  };
  switch (kind) {
    case "change": {
      copyAll();
      const n = Math.min(keys.length, rng.range(1, 2));
      for (let i = 0; i < n; i++) out[rng.pick(keys)] = genValue(rng, 2, opts);
      if (keys.length === 0) out[freshKey()] = genValue(rng, 1, opts);
      break;
    }
    case "add":
      copyAll();
      for (let i = rng.range(1, 2); i > 0; i--) out[freshKey()] = genValue(rng, 2, opts);
      break;
    case "remove": {
      const drop = new Set(rng.shuffle(keys).slice(0, rng.range(1, 2)));
      for (const k of keys) if (!drop.has(k)) out[k] = clone(old[k]);
      break;
    }
    case "mixed": {
      const drop = new Set(rng.shuffle(keys).slice(0, 1));
      for (const k of keys) {
        if (drop.has(k)) continue;
        out[k] = rng.chance(0.3) ? genValue(rng, 2, opts) : clone(old[k]);
      }
      out[freshKey()] = genValue(rng, 1, opts);
      break;
    }
    case "reorder":
      for (const k of rng.shuffle(keys)) out[k] = clone(old[k]);
      break;
    case "same":
      copyAll();
      break;
    case "replace":
      return genRecord(rng, opts);
    case "nested": {
      copyAll();
      const k = keys.find((key) => old[key] !== null && typeof old[key] === "object") ?? freshKey();
      const v = out[k];
      if (Array.isArray(v)) {
        if (v.length && rng.chance(0.5)) v.pop();
        else v.push(genValue(rng, 1, opts));
      } else if (v !== null && typeof v === "object") {
        v[rng.pick(KEYS)] = genValue(rng, 1, opts);
      } else {
        out[k] = { inner: genValue(rng, 1, opts), list: [1, "two", [3]] };
      }
      break;
    }
    case "nestedReorder": {
      // Same values, nested keys in another order: JSON text differs, so the key counts as changed.
      copyAll();
      const k = keys.find((key) => old[key] && typeof old[key] === "object" && !Array.isArray(old[key]));
      if (k) {
        const inner = {};
        for (const ik of Object.keys(old[k]).reverse()) inner[ik] = clone(old[k][ik]);
        out[k] = inner;
      } else {
        out.meta = { p: 1, q: 2 };
      }
      break;
    }
    case "grow":
      copyAll();
      out[freshKey()] = "grown ".repeat(rng.range(10, 60));
      break;
    case "shrink": {
      // Mostly removes: full prev tends to be smaller than the delta.
      const keep = rng.pick(keys);
      if (keep !== undefined) out[keep] = clone(old[keep]);
      break;
    }
    case "inherited": {
      // Adding a key that Object.prototype also has: the reference's `key in oldRecord` is true,
      // so the key is NOT listed in $unset.
      copyAll();
      out[rng.pick(["constructor", "toString", "valueOf", "hasOwnProperty"])] = genValue(rng, 1, opts);
      break;
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Step generation
// ---------------------------------------------------------------------------------------------

function strHash(s) {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
  return h >>> 0;
}

// Archive predicates are described by data (so a step can be printed and replayed) and turned into
// a pure function here; both implementations get the same function.
export function makePredicate(desc) {
  switch (desc.type) {
    case "mod":
      return (_r, id) => strHash(id) % desc.m === desc.k;
    case "has":
      return (r) => r !== null && typeof r === "object" && Object.hasOwn(r, desc.key);
    case "none":
      return () => false;
    case "all":
      return () => true;
    default:
      throw new Error(`unknown predicate ${desc.type}`);
  }
}

function newId(rng, gen, live) {
  if (gen.archivedIds.size && rng.chance(0.25)) {
    const cands = [...gen.archivedIds].filter((id) => !live.has(id));
    if (cands.length) return rng.pick(cands); // re-created, re-archived later: segment merge
  }
  if (rng.chance(0.35)) {
    const id = rng.pick(SPECIAL_IDS);
    if (!live.has(id)) return id;
  }
  return `r${gen.counter++}`;
}

function missingId(rng, live) {
  for (let i = 0; i < 5; i++) {
    const id = rng.pick(SPECIAL_IDS);
    if (!live.has(id)) return id;
  }
  return "definitely-missing";
}

// `view` is a Map id -> record of the current state (taken from one side; both are compared equal).
export function genStep(rng, view, gen, opts) {
  const ids = [...view.keys()];
  const live = new Set(ids);
  const big = ids.length > 35;
  const kind = rng.weighted([
    [big ? 4 : 14, "setNew"],
    [ids.length ? 30 : 0, "setExisting"],
    [ids.length ? (big ? 16 : 7) : 0, "delete"],
    [2, "deleteMissing"],
    [8, "batch"],
    [10, "undo"],
    [2, "compact"],
    [ids.length ? 3 : 0, "archive"],
    [opts.allowReopen === false ? 0 : 2.5, "reopen"],
    [opts.mode !== "immediate" ? 3 : 0, "flush"],
  ]);
  switch (kind) {
    case "setNew":
      return { kind: "set", id: newId(rng, gen, live), value: genRecord(rng, opts) };
    case "setExisting": {
      const id = rng.pick(ids);
      return { kind: "set", id, value: mutateRecord(rng, view.get(id), opts) };
    }
    case "delete":
      return { kind: "delete", id: rng.pick(ids) };
    case "deleteMissing":
      return { kind: "delete", id: missingId(rng, live) };
    case "batch": {
      const overlay = new Map(view);
      const ops = [];
      const n = rng.chance(0.08) ? 0 : rng.range(1, 5);
      for (let i = 0; i < n; i++) {
        const oids = [...overlay.keys()];
        const sub = rng.weighted([[4, "new"], [oids.length ? 6 : 0, "update"], [oids.length ? 3 : 0, "delete"]]);
        if (sub === "new") {
          const id = newId(rng, gen, new Set(oids));
          const value = genRecord(rng, opts);
          overlay.set(id, value);
          ops.push({ kind: "set", id, value });
        } else if (sub === "update") {
          const id = rng.pick(oids);
          const value = mutateRecord(rng, overlay.get(id), opts);
          overlay.set(id, value);
          ops.push({ kind: "set", id, value });
        } else {
          const id = rng.pick(oids);
          overlay.delete(id);
          ops.push({ kind: "delete", id });
        }
      }
      // Failure inside the batch: everything already applied in it must be rolled back.
      const fail = rng.weighted([[85, null], [8, "throw"], [7, "deleteMissing"]]);
      if (fail === "throw") ops.push({ kind: "throw" });
      if (fail === "deleteMissing") {
        ops.splice(rng.int(ops.length + 1), 0, { kind: "delete", id: missingId(rng, new Set(overlay.keys())) });
      }
      return { kind: "batch", ops };
    }
    case "undo":
      return { kind: "undo", times: rng.chance(0.2) ? rng.range(2, 4) : 1 };
    case "compact":
      return { kind: "compact" };
    case "archive": {
      const period = rng.chance(0.7) ? "2026-Q1" : "2025-Q4";
      const pred = rng.weighted([
        [5, { type: "mod", m: rng.range(3, 6), k: rng.int(3) }],
        [3, { type: "has", key: rng.pick(["tags", "meta", "n", "1", "constructor", "body"]) }],
        [1, { type: "none" }],
        [0.3, { type: "all" }],
      ]);
      return { kind: "archive", period, pred };
    }
    case "reopen":
      return { kind: "reopen" };
    case "flush":
      return { kind: "flush" };
  }
  throw new Error(`unreachable ${kind}`);
}

export function describeStep(step) {
  return inspect(step, { depth: 8, compact: true, breakLength: Infinity, maxStringLength: 80, maxArrayLength: 20 });
}

// ---------------------------------------------------------------------------------------------
// The reference, with its undo truncation fixed
// ---------------------------------------------------------------------------------------------
//
// Reference defect (not listed in SPEC 7, contradicts SPEC 4 "removes exactly that op"): its
// truncateLastOp decodes the last 4 KiB of the op file as UTF-8 and uses the *UTF-16 index* of the
// previous newline as a *byte offset*. When the lines before the undone op contain non-ASCII text
// (é, 😀, U+2028, ... which JSON.stringify leaves unescaped), it truncates too early: the previous
// op loses its tail and its newline, the next append is glued onto it, and on reload both ops are
// skipped as malformed (data loss). It also skips a newline that sits exactly at a 4 KiB chunk
// boundary. The differential test runs the reference with a backend whose truncateLastOp removes
// exactly the last line (byte-correct), which is what SPEC 4 asks of ours. DIFF_RAW_REF=1 turns
// the fix off (and then any undo after non-ASCII text makes the comparison fail).

export function referenceWithUndoFix(refModule) {
  class UndoFixedFsBackend extends refModule.FsBackend {
    async truncateLastOp(relativePath) {
      let fh;
      try {
        fh = await openFile(join(this.dir, relativePath), "r+");
      } catch {
        return false;
      }
      try {
        const buf = await fh.readFile();
        if (buf.length === 0) return false;
        const nl = buf.lastIndexOf(0x0a, buf.length - 2);
        await fh.truncate(nl === -1 ? 0 : nl + 1);
        return true;
      } finally {
        await fh.close();
      }
    }
  }
  class Store extends refModule.Store {
    open(dir, options) {
      return super.open(dir, { backend: new UndoFixedFsBackend(), ...options });
    }
  }
  return { ...refModule, Store };
}

// ---------------------------------------------------------------------------------------------
// Sides: one Store implementation working on one directory
// ---------------------------------------------------------------------------------------------

export class Side {
  constructor(label, impl, dir, options) {
    this.label = label;
    this.impl = impl;
    this.dir = dir;
    this.options = options;
    this.store = null;
    // id -> object last passed to set() in this session: get(id) must return that very object
    this.lastSet = new Map();
    this.created = null; // manifest.stats.created, must never change for a directory
  }
  async open() {
    this.store = new this.impl.Store();
    this.lastSet.clear();
    await this.store.open(this.dir, { ...this.options });
  }
  async close() {
    await this.store.close();
    this.store = null;
    this.lastSet.clear();
  }
}

const errText = (e) => (e instanceof Error ? `${e.constructor.name}: ${e.message}` : `thrown ${inspect(e)}`);

// Runs one step on one side; returns a JSON-comparable outcome.
export async function applyStep(side, step, mode) {
  const s = side.store;
  try {
    switch (step.kind) {
      case "set": {
        const v = clone(step.value);
        const r = await s.set(step.id, v);
        side.lastSet.set(step.id, v);
        return { ok: r };
      }
      case "delete": {
        const r = await s.delete(step.id);
        side.lastSet.delete(step.id);
        return { ok: r };
      }
      case "batch": {
        // Reference defect (SPEC 7.3): in group/async mode its batch appends straight to the file
        // while older ops may still sit in the buffer, so the log is written out of order. We flush
        // first so both implementations are compared on the behaviour they must share.
        if (mode !== "immediate") await s.flush();
        const pending = [];
        try {
          const r = await s.batch(() => {
            for (const o of step.ops) {
              if (o.kind === "set") {
                const v = clone(o.value);
                s.set(o.id, v);
                pending.push([o.id, v]);
              } else if (o.kind === "delete") {
                s.delete(o.id);
                pending.push([o.id, undefined]);
              } else {
                throw new Error("batch aborted by the test");
              }
            }
          });
          for (const [id, v] of pending) v === undefined ? side.lastSet.delete(id) : side.lastSet.set(id, v);
          return { ok: r };
        } catch (e) {
          side.lastSet.clear();
          throw e;
        }
      }
      case "undo": {
        // Reference defect (SPEC 7.3): undo truncates the file's last line even when the op being
        // undone is still in the group buffer. Flush first (see batch).
        if (mode !== "immediate") await s.flush();
        side.lastSet.clear();
        const out = [];
        for (let i = 0; i < step.times; i++) out.push(await s.undo());
        return { ok: out };
      }
      case "compact":
        return { ok: await s.compact() };
      case "archive":
        side.lastSet.clear();
        return { ok: await s.archive(makePredicate(step.pred), step.period) };
      case "flush":
        return { ok: await s.flush() };
      default:
        throw new Error(`applyStep: unexpected ${step.kind}`);
    }
  } catch (e) {
    return { error: errText(e) };
  }
}

// ---------------------------------------------------------------------------------------------
// Comparison helpers
// ---------------------------------------------------------------------------------------------

export const ISO_RE = /\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z/g;
const ISO_EXACT = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;
const normTs = (text) => text.replace(ISO_RE, "<TS>");

export class Mismatch extends Error {}

function firstDiff(a, b) {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  const lineNo = a.slice(0, i).split("\n").length;
  const ctx = (s) => JSON.stringify(s.slice(Math.max(0, i - 60), i + 60));
  return `first difference at char ${i} (line ${lineNo}):\n    ref : ${ctx(a)}\n    ours: ${ctx(b)}`;
}

export function sameText(what, a, b) {
  if (a !== b) throw new Mismatch(`${what} differs; ${firstDiff(a, b)}`);
}

function sameJson(what, a, b) {
  sameText(what, JSON.stringify(a), JSON.stringify(b));
}

// JSON text of an op with its timestamp checked and replaced.
function normOp(op, label) {
  if (typeof op.ts !== "string" || !ISO_EXACT.test(op.ts)) {
    throw new Mismatch(`${label}: op ts is not an ISO timestamp: ${inspect(op.ts)}`);
  }
  return JSON.stringify({ ...op, ts: "<TS>" });
}

// Deep equality that also tells -0 from 0 and NaN from null (opt-in, DIFF_STRICT=1).
function strictEqual(a, b) {
  if (typeof a === "number" && typeof b === "number") return Object.is(a, b);
  if (a === null || b === null || typeof a !== "object" || typeof b !== "object") return Object.is(a, b);
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.length !== kb.length || ka.some((k, i) => k !== kb[i])) return false;
  return ka.every((k) => strictEqual(a[k], b[k]));
}

// In-memory reads compared after every step.
export function compareMemory(A, B, { strict = false, historyIds = [] } = {}) {
  const a = A.store;
  const b = B.store;
  const ea = a.entries();
  const eb = b.entries();
  sameJson("entries()", ea, eb);
  if (strict && !strictEqual(ea, eb)) throw new Mismatch("entries() differ under Object.is (-0 / NaN)");
  sameJson("all()", a.all(), b.all());
  sameJson("count()", a.count(), b.count());
  sameJson("stats()", a.stats(), b.stats());
  sameJson("listArchiveSegments()", a.listArchiveSegments(), b.listArchiveSegments());
  sameText(
    "getOps()",
    a.getOps().map((o) => normOp(o, A.label)).join("\n"),
    b.getOps().map((o) => normOp(o, B.label)).join("\n"),
  );
  for (const id of historyIds) {
    sameText(
      `getHistory(${JSON.stringify(id)})`,
      a.getHistory(id).map((o) => normOp(o, A.label)).join("\n"),
      b.getHistory(id).map((o) => normOp(o, B.label)).join("\n"),
    );
    sameJson(`get(${JSON.stringify(id)})`, a.get(id) ?? "<undefined>", b.get(id) ?? "<undefined>");
    sameJson(`has(${JSON.stringify(id)})`, a.has(id), b.has(id));
  }
  for (const side of [A, B]) {
    for (const [id, obj] of side.lastSet) {
      if (side.store.get(id) !== obj) {
        throw new Mismatch(`${side.label}: get(${JSON.stringify(id)}) is not the object passed to set()`);
      }
    }
  }
}

// Results that need I/O (archive segments via loadArchive).
export async function compareArchives(A, B) {
  for (const seg of A.store.listArchiveSegments()) {
    const period = seg.replace(/^archive\/archive-/, "").replace(/\.json$/, "");
    const la = await A.store.loadArchive(period);
    const lb = await B.store.loadArchive(period);
    sameJson(`loadArchive(${period})`, [...la], [...lb]);
  }
}

// Checks that only make sense right after open(): the manifest as read, the snapshot stream, the WAL.
export async function compareAfterOpen(A, B) {
  const man = (side) => {
    const m = side.store.getManifest();
    if (!m) throw new Mismatch(`${side.label}: getManifest() is null after open`);
    return normTs(
      JSON.stringify({ ...m, currentSnapshot: roleName(m.currentSnapshot, SNAP_RE, side), activeOps: roleName(m.activeOps, OPS_RE, side) }),
    );
  };
  sameText("getManifest() after open", man(A), man(B));
  // Either side may be the reference (they swap directories in the cross-open phase).
  const snapshotItems = async (side) => {
    const read = async () => ({ items: await collect(side.store.streamSnapshot()) });
    const isRef = side.impl === side.refImpl;
    return (isRef ? await referenceSnapshotStream(side.dir, side.store.getManifest().currentSnapshot, read) : await read()).items;
  };
  sameJson("streamSnapshot() after open", await snapshotItems(A), await snapshotItems(B));
  const wa = (await collect(A.store.getWalOps())).map((o) => normOp(o, A.label));
  const wb = (await collect(B.store.getWalOps())).map((o) => normOp(o, B.label));
  sameText("getWalOps() after open", wa.join("\n"), wb.join("\n"));
}

// In immediate mode (or after a flush) the active op file holds exactly getOps(), one JSON line each.
export async function checkOpsFileMatchesMemory(side) {
  const m = JSON.parse(await readFile(join(side.dir, "manifest.json"), "utf8"));
  const text = await readFile(join(side.dir, m.activeOps), "utf8");
  const ops = side.store.getOps();
  const expect = ops.map((o) => JSON.stringify(o) + "\n").join("");
  sameText(`${side.label}: active op file vs getOps()`, text, expect);
}

// ---------------------------------------------------------------------------------------------
// Directory comparison
// ---------------------------------------------------------------------------------------------
//
// Only files reachable from manifest.json are compared (the reference keeps superseded snapshots and
// op files, ours may delete them, SPEC 7.8). Time-derived names are replaced by their role:
// manifest.currentSnapshot -> "snapshots/snap-<CURRENT>.jsonl", manifest.activeOps ->
// "ops/ops-<ACTIVE>.jsonl" (the two implementations create files at different milliseconds, so
// ordering or matching by name is meaningless; the role is what counts). Every ISO-8601 timestamp
// with milliseconds is replaced by "<TS>" in every file. Archive segment names are not time-derived
// and are compared as they are.

const SNAP_RE = /^snapshots\/snap-\d+\.jsonl$/;
const OPS_RE = /^ops\/ops-\d+\.jsonl$/;
const ALLOWED_FILE = [/^manifest\.json$/, /^\.lock$/, /^snapshots\/snap-\d+\.jsonl$/, /^ops\/ops-\d+\.jsonl$/, /^archive\/archive-.+\.json$/];

function roleName(path, re, side) {
  if (typeof path !== "string" || !re.test(path)) {
    throw new Mismatch(`${side.label}: manifest path ${inspect(path)} does not match ${re}`);
  }
  return re === SNAP_RE ? "snapshots/snap-<CURRENT>.jsonl" : "ops/ops-<ACTIVE>.jsonl";
}

/** The files and folders under `dir` (relative paths); a missing `dir` throws, or is empty with `missingIsEmpty`. */
export async function listTree(dir, { missingIsEmpty = false } = {}, rel = "") {
  const out = { files: [], dirs: [] };
  let ents;
  try {
    ents = await readdir(join(dir, rel), { withFileTypes: true });
  } catch (e) {
    if (missingIsEmpty && e.code === "ENOENT" && rel === "") return out;
    throw e;
  }
  for (const ent of ents) {
    const p = rel ? `${rel}/${ent.name}` : ent.name;
    if (ent.isDirectory()) {
      out.dirs.push(p);
      const sub = await listTree(dir, {}, p);
      out.files.push(...sub.files);
      out.dirs.push(...sub.dirs);
    } else {
      out.files.push(p);
    }
  }
  return out;
}

async function normalizeDir(side) {
  const tree = await listTree(side.dir);
  for (const f of tree.files) {
    if (!ALLOWED_FILE.some((re) => re.test(f))) throw new Mismatch(`${side.label}: unexpected file ${f} in ${side.dir}`);
  }
  const manifestText = await readFile(join(side.dir, "manifest.json"), "utf8");
  let m;
  try {
    m = JSON.parse(manifestText);
  } catch (e) {
    throw new Mismatch(`${side.label}: manifest.json is not JSON: ${e.message}`);
  }
  const created = m?.stats?.created;
  if (side.created === null) side.created = created;
  else if (created !== side.created) {
    throw new Mismatch(`${side.label}: manifest stats.created changed from ${side.created} to ${created}`);
  }
  const snapRole = roleName(m.currentSnapshot, SNAP_RE, side);
  const opsRole = roleName(m.activeOps, OPS_RE, side);
  let normManifest = manifestText
    .split(JSON.stringify(m.currentSnapshot)).join(JSON.stringify(snapRole))
    .split(JSON.stringify(m.activeOps)).join(JSON.stringify(opsRole));
  const files = new Map([["manifest.json", normTs(normManifest)]]);
  const reach = [[snapRole, m.currentSnapshot], [opsRole, m.activeOps], ...m.archiveSegments.map((s) => [s, s])];
  for (const [role, path] of reach) {
    let text;
    try {
      text = await readFile(join(side.dir, path), "utf8");
    } catch (e) {
      throw new Mismatch(`${side.label}: ${path} (reachable from manifest.json) cannot be read: ${e.code ?? e.message}`);
    }
    files.set(role, normTs(text));
  }
  return { files, dirs: tree.dirs.sort(), lock: tree.files.includes(".lock") };
}

export async function compareDirs(A, B) {
  const na = await normalizeDir(A);
  const nb = await normalizeDir(B);
  sameJson("directory set", na.dirs, nb.dirs);
  sameJson(".lock present", na.lock, nb.lock);
  sameJson("reachable files", [...na.files.keys()], [...nb.files.keys()]);
  for (const [role, text] of na.files) sameText(`file ${role}`, text, nb.files.get(role));
}

// ---------------------------------------------------------------------------------------------
// A whole scenario
// ---------------------------------------------------------------------------------------------

/** A fresh temp dir `opslog-<kind>-<tag>-*` (removed by the caller, kept after a mismatch). */
export async function makeTempDir(tag, kind = "diff") {
  return mkdtemp(join(tmpdir(), `opslog-${kind}-${tag}-`));
}

export async function removeDir(dir) {
  await rm(dir, { recursive: true, force: true });
}

/**
 * cfg: { name, seed, steps, crossSteps, options (Store options), strict, nonFinite }
 * impls: { ref, ours, oursLabel }
 * Returns { dirs } on success; throws an Error whose message carries seed/config/step and the
 * recent step history on the first mismatch.
 */
export async function runScenario(cfg, impls) {
  const rng = new Rng(cfg.seed);
  const mode = cfg.options.writeMode ?? "immediate";
  const genOpts = { mode, nonFinite: cfg.nonFinite ?? true };
  const gen = { counter: 0, archivedIds: new Set() };
  const dirA = await makeTempDir(`${cfg.name}-ref`);
  const dirB = await makeTempDir(`${cfg.name}-ours`);
  const A = new Side("ref", impls.ref, dirA, cfg.options);
  const B = new Side(impls.oursLabel ?? "ours", impls.ours, dirB, cfg.options);
  A.refImpl = B.refImpl = impls.ref; // which side runs the reference changes at cross-open
  const history = [];
  let phase = "open";
  let stepNo = -1;

  const fileCheckEvery = mode === "immediate" ? 1 : 8;
  const memOpts = { strict: cfg.strict ?? false };

  const checkFiles = async () => {
    // Also in immediate mode: a checkpoint a write started may still be finishing (ours runs it
    // in the background, see checkpointed() in ../support/helpers.mjs), and sync() waits for it.
    await A.store.sync();
    await B.store.sync();
    await checkOpsFileMatchesMemory(A);
    await checkOpsFileMatchesMemory(B);
    await compareDirs(A, B);
  };

  const reopenBoth = async () => {
    await A.close();
    await B.close();
    await compareDirs(A, B); // closed state: .lock gone, checkpoint-on-close done (or not) alike
    await A.open();
    await B.open();
    await compareAfterOpen(A, B);
    compareMemory(A, B, memOpts);
    await compareArchives(A, B);
  };

  const runSteps = async (n, label) => {
    for (let i = 0; i < n; i++) {
      stepNo = i;
      phase = label;
      const view = new Map(A.store.entries());
      const step = genStep(rng, view, gen, genOpts);
      history.push(`[${label} #${i}] ${describeStep(step)}`);
      if (step.kind === "reopen") {
        await reopenBoth();
        continue;
      }
      const ra = await applyStep(A, step, mode);
      const rb = await applyStep(B, step, mode);
      sameJson(`result of ${step.kind}`, ra, rb);
      if (step.kind === "archive") {
        for (const id of view.keys()) if (!A.store.has(id)) gen.archivedIds.add(id);
      }
      const historyIds = step.kind === "set" || step.kind === "delete" ? [step.id] : [];
      compareMemory(A, B, { ...memOpts, historyIds });
      if (step.kind === "archive" || i % 10 === 0) await compareArchives(A, B);
      if (i % fileCheckEvery === 0 || step.kind === "archive" || step.kind === "compact") await checkFiles();
    }
  };

  try {
    await A.open();
    await B.open();
    await compareAfterOpen(A, B);
    await compareDirs(A, B);

    await runSteps(cfg.steps, "main");

    // Final state, then close both and compare the directories at rest.
    phase = "final-close";
    if (mode !== "immediate") await checkFiles();
    await compareDirs(A, B);
    await A.close();
    await B.close();
    await compareDirs(A, B);

    // Cross-open: each implementation continues the directory written by the other.
    phase = "cross-open";
    A.impl = impls.ours;
    A.label = `${B.label} on ref's dir`;
    B.impl = impls.ref;
    B.label = `ref on ${impls.oursLabel ?? "ours"}'s dir`;
    await A.open();
    await B.open();
    await compareAfterOpen(A, B);
    compareMemory(A, B, memOpts);
    await compareArchives(A, B);
    await runSteps(cfg.crossSteps ?? 25, "cross");
    phase = "cross-close";
    await A.close();
    await B.close();
    await compareDirs(A, B);

    // And back: each directory reopened by the implementation that wrote it first.
    phase = "back-open";
    [A.impl, B.impl] = [impls.ref, impls.ours];
    A.label = "ref";
    B.label = impls.oursLabel ?? "ours";
    await A.open();
    await B.open();
    await compareAfterOpen(A, B);
    compareMemory(A, B, memOpts);
    await compareArchives(A, B);
    await A.close();
    await B.close();
    await compareDirs(A, B);
  } catch (e) {
    const where = `config=${cfg.name} seed=${cfg.seed} (0x${(cfg.seed >>> 0).toString(16)}) phase=${phase} step=${stepNo}`;
    const recent = history.slice(-15).join("\n  ");
    const env = ["DIFF_SELF", "DIFF_RAW_REF", "DIFF_STRICT"].filter((k) => process.env[k]).map((k) => `${k}=${process.env[k]} `).join("");
    const repro = `${env}DIFF_CONFIG=${cfg.name} DIFF_SEED=${cfg.seed} DIFF_STEPS=${cfg.steps} node --test __test__/differential/store.test.mjs`;
    const err = new Error(
      `${where}\n${e instanceof Mismatch ? "" : "unexpected exception: "}${e.stack ?? e}\n` +
        `dirs kept: ref=${dirA} ours=${dirB}\nrepro: ${repro}\nlast steps:\n  ${recent}`,
    );
    for (const side of [A, B]) {
      try {
        if (side.store) await side.store.close();
      } catch {
        /* already broken */
      }
    }
    throw err;
  }
  await removeDir(dirA);
  await removeDir(dirB);
  return { steps: history.length };
}
