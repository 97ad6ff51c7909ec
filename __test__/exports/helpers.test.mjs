// The helper values exported next to Store (SPEC section 2): the module's export list (ESM and
// CJS), LamportClock, the delta functions, the four validators, streamSnapshotFile and the
// acquireLock/releaseLock pair. Messages and shapes are the reference's.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { readFile, writeFile, mkdir } from "node:fs/promises";
import { join } from "node:path";
import impl, { isReference } from "../support/impl.mjs";
import { deadPid, exists, tempDir, drain } from "../support/helpers.mjs";

const {
  LamportClock,
  createDelta,
  applyDelta,
  isDeltaSmaller,
  validateOp,
  validateManifest,
  validateSnapshot,
  validateArchiveSegment,
  streamSnapshotFile,
  acquireLock,
  releaseLock,
} = impl;

const EXPORTED_VALUES = [
  "Store",
  "FsBackend",
  "LamportClock",
  "createDelta",
  "applyDelta",
  "isDeltaSmaller",
  "streamSnapshotFile",
  "acquireLock",
  "releaseLock",
  "validateOp",
  "validateManifest",
  "validateSnapshot",
  "validateArchiveSegment",
].sort();

// ---------------------------------------------------------------------------------------------
// export list
// ---------------------------------------------------------------------------------------------

test("ESM: the module exports exactly the value names of SPEC section 2", async () => {
  const m = isReference ? await import("@backloghq/opslog") : await import("../../index.mjs");
  // A `default` export is an addition a consumer of the reference can never rely on; ignore it.
  const names = Object.keys(m)
    .filter((k) => k !== "default")
    .sort();
  assert.deepEqual(names, EXPORTED_VALUES);
  for (const name of EXPORTED_VALUES) assert.equal(typeof m[name], "function", name);
  // impl.mjs hands out the same values
  for (const name of EXPORTED_VALUES) assert.equal(impl[name], m[name], name);
});

test("CJS: require() gives exactly the value names of SPEC section 2", () => {
  const require = createRequire(import.meta.url);
  const m = isReference ? require("@backloghq/opslog") : require("../../index.js");
  const names = Object.keys(m)
    .filter((k) => k !== "__esModule" && k !== "default")
    .sort();
  assert.deepEqual(names, EXPORTED_VALUES);
  for (const name of EXPORTED_VALUES) assert.equal(typeof m[name], "function", name);
});

test("ESM and CJS hand out the same Store and FsBackend classes", async () => {
  const require = createRequire(import.meta.url);
  const cjs = isReference ? require("@backloghq/opslog") : require("../../index.js");
  const esm = isReference ? await import("@backloghq/opslog") : await import("../../index.mjs");
  for (const name of EXPORTED_VALUES) assert.equal(cjs[name], esm[name], name);
});

// ---------------------------------------------------------------------------------------------
// LamportClock
// ---------------------------------------------------------------------------------------------

test("LamportClock: starts at 0 by default, or at the given initial value", () => {
  assert.equal(new LamportClock().current, 0);
  assert.equal(new LamportClock(0).current, 0);
  assert.equal(new LamportClock(41).current, 41);
});

test("LamportClock: tick() increments and returns the new value", () => {
  const c = new LamportClock();
  assert.equal(c.tick(), 1);
  assert.equal(c.tick(), 2);
  assert.equal(c.current, 2);
  const d = new LamportClock(10);
  assert.equal(d.tick(), 11);
  assert.equal(d.current, 11);
});

test("LamportClock: merge(received) = max(current, received) + 1", () => {
  const c = new LamportClock(5);
  assert.equal(c.merge(10), 11); // remote ahead
  assert.equal(c.current, 11);
  assert.equal(c.merge(3), 12); // remote behind: still increments
  assert.equal(c.merge(12), 13); // equal
  assert.equal(c.tick(), 14);
  assert.equal(c.current, 14);
});

test("LamportClock: current is a getter that does not advance the clock", () => {
  const c = new LamportClock(7);
  assert.equal(c.current, 7);
  assert.equal(c.current, 7);
  const desc = Object.getOwnPropertyDescriptor(LamportClock.prototype, "current");
  assert.ok(desc, "current is defined on the prototype");
  assert.equal(typeof desc.get, "function");
  assert.ok(c instanceof LamportClock);
  // independent instances
  const a = new LamportClock();
  const b = new LamportClock();
  a.tick();
  assert.equal(a.current, 1);
  assert.equal(b.current, 0);
});

// ---------------------------------------------------------------------------------------------
// createDelta / applyDelta / isDeltaSmaller
// ---------------------------------------------------------------------------------------------

test("createDelta: null old record (a create) gives null", () => {
  assert.equal(createDelta(null, { a: 1 }), null);
});

test("createDelta: no change gives null (equality by JSON text)", () => {
  assert.equal(createDelta({ a: 1, b: "x" }, { a: 1, b: "x" }), null);
  assert.equal(createDelta({}, {}), null);
  // different objects with the same JSON text
  assert.equal(createDelta({ o: { x: 1, y: [1, 2] } }, { o: { x: 1, y: [1, 2] } }), null);
  // top-level key order does not matter, only the per-key JSON text
  assert.equal(createDelta({ a: 1, b: 2 }, { b: 2, a: 1 }), null);
});

test("createDelta: $set holds old values of changed and removed keys, $unset the added keys", () => {
  const old = { a: 1, b: 2, c: 3, e: "same" };
  const neu = { e: "same", d: 4, b: 5, a: 1, f: null };
  const patch = createDelta(old, neu);
  assert.deepEqual(patch, { $set: { b: 2, c: 3 }, $unset: ["d", "f"] });
  // key order: $set first, then $unset; $set in the old record's key order, $unset in the new's
  assert.deepEqual(Object.keys(patch), ["$set", "$unset"]);
  assert.deepEqual(Object.keys(patch.$set), ["b", "c"]);
  assert.equal(JSON.stringify(patch), '{"$set":{"b":2,"c":3},"$unset":["d","f"]}');
});

test("createDelta: empty parts are omitted", () => {
  const onlySet = createDelta({ a: 1, b: 2 }, { a: 9 });
  assert.deepEqual(onlySet, { $set: { a: 1, b: 2 } });
  assert.deepEqual(Object.keys(onlySet), ["$set"]);
  const onlyUnset = createDelta({ a: 1 }, { a: 1, z: 2, y: 3 });
  assert.deepEqual(onlyUnset, { $unset: ["z", "y"] });
  assert.deepEqual(Object.keys(onlyUnset), ["$unset"]);
});

test("createDelta: nested values compare by JSON text (nested key order matters)", () => {
  const old = { o: { x: 1, y: 2 }, arr: [1, 2], s: "t" };
  const neu = { o: { y: 2, x: 1 }, arr: [1, 2], s: "t" };
  assert.deepEqual(createDelta(old, neu), { $set: { o: { x: 1, y: 2 } } });
  assert.deepEqual(createDelta({ arr: [1, 2] }, { arr: [2, 1] }), { $set: { arr: [1, 2] } });
  // null vs missing, 1 vs "1"
  assert.deepEqual(createDelta({ a: null }, {}), { $set: { a: null } });
  assert.deepEqual(createDelta({ a: 1 }, { a: "1" }), { $set: { a: 1 } });
  // old values are carried whole (nested objects, arrays, strings with non-ASCII text)
  const big = { deep: { list: [{ k: "é\u2028😀" }] } };
  assert.deepEqual(createDelta({ v: big }, { v: 0 }), { $set: { v: big } });
});

test("createDelta: keys present on Object.prototype count as present (reference `in` semantics)", () => {
  // "constructor" in {} is true, so adding such a key is not listed in $unset
  assert.equal(createDelta({ a: 1 }, { a: 1, constructor: 2 }), null);
  assert.deepEqual(createDelta({ a: 1 }, { a: 1, constructor: 2, b: 3 }), { $unset: ["b"] });
});

test("applyDelta: $set assigns, $unset deletes, input is not mutated", () => {
  const rec = { a: 1, b: 2, d: 4 };
  const out = applyDelta(rec, { $set: { b: 9, c: 3 }, $unset: ["d"] });
  assert.deepEqual(out, { a: 1, b: 9, c: 3 });
  // existing keys keep their position, new keys are appended
  assert.deepEqual(Object.keys(out), ["a", "b", "c"]);
  assert.deepEqual(rec, { a: 1, b: 2, d: 4 });
  assert.notEqual(out, rec);
});

test("applyDelta: empty patch gives an equal copy; $unset runs after $set", () => {
  const rec = { a: 1, o: { x: 1 } };
  const copy = applyDelta(rec, {});
  assert.deepEqual(copy, rec);
  assert.notEqual(copy, rec);
  assert.deepEqual(applyDelta({ a: 1 }, { $set: { x: 1 }, $unset: ["x"] }), { a: 1 });
  assert.deepEqual(applyDelta({ a: 1 }, { $unset: ["missing"] }), { a: 1 });
});

test("applyDelta(new, createDelta(old, new)) restores old", () => {
  const cases = [
    [{ name: "A", status: "x", extra: 1 }, { name: "A", status: "z" }],
    [{ a: 1 }, { a: 1, b: [1, 2, 3], c: { d: null } }],
    [{ a: 1, b: { c: 2 } }, { b: { c: 3 } }],
    [{ t: "é😀" }, { t: "e", u: true }],
  ];
  for (const [old, neu] of cases) {
    const patch = createDelta(old, neu);
    assert.ok(patch);
    assert.deepEqual(applyDelta(neu, patch), old);
  }
});

test("isDeltaSmaller: null patch or null record is false", () => {
  assert.equal(isDeltaSmaller(null, { a: 1 }), false);
  assert.equal(isDeltaSmaller({ $set: { a: 1 } }, null), false);
  assert.equal(isDeltaSmaller(null, null), false);
});

test("isDeltaSmaller: strictly shorter JSON text", () => {
  const patch = { $unset: ["a"] }; // {"$unset":["a"]} = 16
  assert.equal(JSON.stringify(patch).length, 16);
  const rec = (n) => ({ x: "a".repeat(n) }); // {"x":"…"} = 8 + n
  assert.equal(isDeltaSmaller(patch, rec(9)), true); // 16 < 17
  assert.equal(isDeltaSmaller(patch, rec(8)), false); // 16 == 16
  assert.equal(isDeltaSmaller(patch, rec(7)), false); // 16 > 15
  // the SPEC's example
  const old = { name: "A", status: "x", extra: 1 };
  const d = createDelta(old, { name: "A", status: "z" });
  assert.equal(isDeltaSmaller(d, old), true);
});

test("isDeltaSmaller: lengths are UTF-16 code units of the JSON text, not bytes or code points", () => {
  const rec = (n) => ({ x: "a".repeat(n) }); // 8 + n units, all ASCII
  // "€" is 1 UTF-16 unit but 3 UTF-8 bytes: 27 units, 47 bytes
  const euro = { $set: { k: "€".repeat(10) } };
  assert.equal(JSON.stringify(euro).length, 27);
  assert.equal(isDeltaSmaller(euro, rec(22)), true); // 27 < 30 (bytes would say 47, false)
  assert.equal(isDeltaSmaller(euro, rec(19)), false); // 27 == 27
  // "😀" is 2 UTF-16 units but 1 code point: 27 units, 22 code points
  const emoji = { $set: { k: "😀".repeat(5) } };
  assert.equal(JSON.stringify(emoji).length, 27);
  assert.equal(isDeltaSmaller(emoji, rec(17)), false); // 27 > 25 (code points would say 22, true)
  assert.equal(isDeltaSmaller(emoji, rec(20)), true); // 27 < 28
  // the record side is measured the same way
  const emojiRec = { x: "😀".repeat(5) }; // 8 + 10 = 18 units
  assert.equal(isDeltaSmaller({ $unset: ["a"] }, emojiRec), true); // 16 < 18 (code points: 13)
  assert.equal(isDeltaSmaller({ $unset: ["abc"] }, emojiRec), false); // 18 == 18
});

test("isDeltaSmaller: escapes count as JSON.stringify writes them", () => {
  // "\u0001" is written as the 6 characters \u0001, "\n" as 2, "\u2028" as 1 (not escaped)
  const ctl = { $set: { k: "\u0001\u0001" } }; // {"$set":{"k":"\u0001\u0001"}} = 14 + 12 + 3 = 29
  assert.equal(JSON.stringify(ctl).length, 29);
  assert.equal(isDeltaSmaller(ctl, { x: "a".repeat(22) }), true); // 29 < 30
  assert.equal(isDeltaSmaller(ctl, { x: "a".repeat(21) }), false); // 29 == 29
  const ls = { $set: { k: "\u2028\u2028\u2028" } }; // 14 + 3 + 3 = 20
  assert.equal(JSON.stringify(ls).length, 20);
  assert.equal(isDeltaSmaller(ls, { x: "a".repeat(13) }), true); // 20 < 21
  assert.equal(isDeltaSmaller(ls, { x: "a".repeat(12) }), false);
  const nl = { x: "\n\n\n\n" }; // {"x":"\n\n\n\n"} = 8 + 8 = 16
  assert.equal(JSON.stringify(nl).length, 16);
  assert.equal(isDeltaSmaller({ $unset: ["a"] }, nl), false); // 16 == 16
  assert.equal(isDeltaSmaller({ $unset: [""] }, nl), true); // 15 < 16
});

// ---------------------------------------------------------------------------------------------
// validators
// ---------------------------------------------------------------------------------------------

const validOp = () => ({ ts: "2024-01-01T00:00:00.000Z", op: "set", id: "a", prev: null, data: { v: 1 } });
const validDeleteOp = () => ({ ts: "2024-01-01T00:00:00.000Z", op: "delete", id: "a", prev: { v: 1 } });
const validStats = () => ({
  activeRecords: 0,
  archivedRecords: 0,
  opsCount: 0,
  created: "2024-01-01T00:00:00.000Z",
  lastCheckpoint: "2024-01-01T00:00:00.000Z",
});
const validManifest = () => ({
  version: 1,
  currentSnapshot: "snapshots/snap-1.jsonl",
  activeOps: "ops/ops-1.jsonl",
  archiveSegments: [],
  stats: validStats(),
});
const validSnapshot = () => ({ version: 1, timestamp: "2024-01-01T00:00:00.000Z", records: {} });
const validSegment = () => ({ version: 1, period: "2024-Q1", timestamp: "2024-01-01T00:00:00.000Z", records: {} });

/** Asserts validate(value) throws an Error with exactly `message`. */
function rejectsWith(validate, value, message, label) {
  assert.throws(
    () => validate(value),
    (err) => {
      assert.ok(err instanceof Error, `${label}: an Error`);
      assert.equal(err.message, message, label);
      return true;
    },
    label,
  );
}

function withOut(obj, key) {
  const o = { ...obj };
  delete o[key];
  return o;
}

test("validators return the very object they were given when it is valid", () => {
  const cases = [
    [validateOp, validOp()],
    [validateOp, validDeleteOp()],
    [validateOp, { ...validOp(), prev: { a: 1 }, encoding: "delta", agent: "x", clock: 0 }],
    [validateOp, { ...validOp(), encoding: "full", clock: 12 }],
    [validateManifest, validManifest()],
    [validateManifest, { ...validManifest(), archiveSegments: ["archive/archive-2024-Q1.json"], activeAgentOps: { a: "ops/agent-a-1.jsonl" } }],
    [validateManifest, { ...validManifest(), activeAgentOps: {} }],
    [validateSnapshot, validSnapshot()],
    [validateSnapshot, { ...validSnapshot(), records: { a: { v: 1 } }, extra: true }],
    [validateArchiveSegment, validSegment()],
    [validateArchiveSegment, { ...validSegment(), records: { a: { v: 1 } } }],
  ];
  for (const [validate, value] of cases) {
    const before = JSON.stringify(value);
    assert.equal(validate(value), value, `${validate.name}(${before})`);
    assert.equal(JSON.stringify(value), before, "not modified");
  }
});

test("validators: non-objects are refused with '<kind>: not an object'", () => {
  const table = [
    [validateOp, "Invalid operation: not an object"],
    [validateManifest, "Invalid manifest: not an object"],
    [validateSnapshot, "Invalid snapshot: not an object"],
    [validateArchiveSegment, "Invalid archive segment: not an object"],
  ];
  for (const [validate, message] of table) {
    for (const value of [null, undefined, [], [1], "x", 5, true]) {
      rejectsWith(validate, value, message, `${validate.name}(${JSON.stringify(value)})`);
    }
  }
});

test("validateOp: every check and its message", () => {
  const base = validOp();
  const del = validDeleteOp();
  const table = [
    // ts
    [withOut(base, "ts"), "Invalid operation: ts must be a non-empty string"],
    [{ ...base, ts: "" }, "Invalid operation: ts must be a non-empty string"],
    [{ ...base, ts: 5 }, "Invalid operation: ts must be a non-empty string"],
    [{ ...base, ts: null }, "Invalid operation: ts must be a non-empty string"],
    // op
    [{ ...base, op: "put" }, 'Invalid operation: op must be "set" or "delete", got "put"'],
    [{ ...base, op: "SET" }, 'Invalid operation: op must be "set" or "delete", got "SET"'],
    [{ ...base, op: "" }, 'Invalid operation: op must be "set" or "delete", got ""'],
    [withOut(base, "op"), 'Invalid operation: op must be "set" or "delete", got "undefined"'],
    [{ ...base, op: 5 }, 'Invalid operation: op must be "set" or "delete", got "5"'],
    [{ ...base, op: null }, 'Invalid operation: op must be "set" or "delete", got "null"'],
    // id
    [withOut(base, "id"), "Invalid operation: id must be a non-empty string"],
    [{ ...base, id: "" }, "Invalid operation: id must be a non-empty string"],
    [{ ...base, id: 7 }, "Invalid operation: id must be a non-empty string"],
    // prev
    [withOut(base, "prev"), "Invalid operation: missing prev"],
    [{ ...base, prev: 5 }, "Invalid operation: prev must be an object or null"],
    [{ ...base, prev: "x" }, "Invalid operation: prev must be an object or null"],
    [{ ...base, prev: [] }, "Invalid operation: prev must be an object or null"],
    [{ ...base, prev: true }, "Invalid operation: prev must be an object or null"],
    // set data
    [withOut(base, "data"), "Invalid operation: set op must have non-null data"],
    [{ ...base, data: null }, "Invalid operation: set op must have non-null data"],
    // delete
    [{ ...del, prev: null }, "Invalid operation: delete op must have non-null prev"],
    [{ ...del, data: { v: 1 } }, "Invalid operation: delete op must not have data field"],
    [{ ...del, data: null }, "Invalid operation: delete op must not have data field"],
    // encoding
    [{ ...base, encoding: "gzip" }, 'Invalid operation: encoding must be "full" or "delta", got "gzip"'],
    [{ ...base, encoding: "" }, 'Invalid operation: encoding must be "full" or "delta", got ""'],
    [{ ...base, encoding: null }, 'Invalid operation: encoding must be "full" or "delta", got "null"'],
    [{ ...base, encoding: 1 }, 'Invalid operation: encoding must be "full" or "delta", got "1"'],
    // agent
    [{ ...base, agent: "" }, "Invalid operation: agent must be a non-empty string"],
    [{ ...base, agent: 5 }, "Invalid operation: agent must be a non-empty string"],
    [{ ...base, agent: null }, "Invalid operation: agent must be a non-empty string"],
    // clock
    [{ ...base, clock: -1 }, "Invalid operation: clock must be a non-negative integer"],
    [{ ...base, clock: 1.5 }, "Invalid operation: clock must be a non-negative integer"],
    [{ ...base, clock: "3" }, "Invalid operation: clock must be a non-negative integer"],
    [{ ...base, clock: NaN }, "Invalid operation: clock must be a non-negative integer"],
    [{ ...base, clock: Infinity }, "Invalid operation: clock must be a non-negative integer"],
    [{ ...base, clock: null }, "Invalid operation: clock must be a non-negative integer"],
  ];
  for (const [value, message] of table) rejectsWith(validateOp, value, message, JSON.stringify(value));
});

test("validateOp: checks run in order (ts, op, id, prev, data, delete rules, encoding, agent, clock)", () => {
  rejectsWith(validateOp, { op: "x", id: "" }, "Invalid operation: ts must be a non-empty string", "ts first");
  rejectsWith(validateOp, { ts: "t", op: "x", id: "" }, 'Invalid operation: op must be "set" or "delete", got "x"', "op before id");
  rejectsWith(validateOp, { ts: "t", op: "set", id: "", prev: 5 }, "Invalid operation: id must be a non-empty string", "id before prev");
  rejectsWith(validateOp, { ts: "t", op: "set", id: "a", prev: 5 }, "Invalid operation: prev must be an object or null", "prev before data");
  rejectsWith(validateOp, { ts: "t", op: "set", id: "a", prev: null, encoding: "x" }, "Invalid operation: set op must have non-null data", "data before encoding");
  rejectsWith(validateOp, { ts: "t", op: "delete", id: "a", prev: null, data: 1 }, "Invalid operation: delete op must have non-null prev", "delete prev before data");
  rejectsWith(validateOp, { ...validOp(), encoding: "x", agent: "" }, 'Invalid operation: encoding must be "full" or "delta", got "x"', "encoding before agent");
  rejectsWith(validateOp, { ...validOp(), agent: "", clock: -1 }, "Invalid operation: agent must be a non-empty string", "agent before clock");
});

test("validateOp: only the listed checks apply (data shape, prev shape, extra keys are not checked)", () => {
  for (const value of [
    { ...validOp(), data: 5 },
    { ...validOp(), data: "x" },
    { ...validOp(), data: [1] },
    { ...validOp(), prev: {} },
    { ...validOp(), ts: "not a date" },
    { ...validOp(), extra: 1 },
    { ...validDeleteOp(), encoding: "delta" },
    { ...validOp(), clock: 0 },
    { ...validOp(), clock: Number.MAX_SAFE_INTEGER },
  ]) {
    assert.equal(validateOp(value), value, JSON.stringify(value));
  }
});

// Ours validates the value's JSON, where an undefined property is absent (README: differences).
// Data read from storage, which the validators exist for, never holds undefined.
test("validateOp: a key present with the value undefined counts as present", { skip: !isReference && "documented difference: validators see values as JSON does" }, () => {
  // the reference tests presence with `in`, so these differ from the key being absent
  rejectsWith(validateOp, { ...validOp(), prev: undefined }, "Invalid operation: prev must be an object or null", "prev: undefined");
  rejectsWith(validateOp, { ...validDeleteOp(), data: undefined }, "Invalid operation: delete op must not have data field", "delete data: undefined");
  rejectsWith(validateOp, { ...validOp(), encoding: undefined }, 'Invalid operation: encoding must be "full" or "delta", got "undefined"', "encoding: undefined");
  rejectsWith(validateOp, { ...validOp(), agent: undefined }, "Invalid operation: agent must be a non-empty string", "agent: undefined");
  rejectsWith(validateOp, { ...validOp(), clock: undefined }, "Invalid operation: clock must be a non-negative integer", "clock: undefined");
  // a set whose data key is present but undefined passes (only null is refused)
  const op = { ...validOp(), data: undefined };
  assert.equal(validateOp(op), op);
  // activeAgentOps: undefined is allowed explicitly
  const m = { ...validManifest(), activeAgentOps: undefined };
  assert.equal(validateManifest(m), m);
});

test("validateManifest: every check and its message", () => {
  const base = validManifest();
  const stats = (patch) => ({ ...base, stats: { ...validStats(), ...patch } });
  const statsWithout = (key) => ({ ...base, stats: withOut(validStats(), key) });
  const version = "Invalid manifest: version must be a positive finite integer";
  const table = [
    [withOut(base, "version"), version],
    [{ ...base, version: 0 }, version],
    [{ ...base, version: -1 }, version],
    [{ ...base, version: 1.5 }, version],
    [{ ...base, version: "1" }, version],
    [{ ...base, version: Infinity }, version],
    [{ ...base, version: NaN }, version],
    [withOut(base, "currentSnapshot"), "Invalid manifest: missing currentSnapshot"],
    [{ ...base, currentSnapshot: "" }, "Invalid manifest: missing currentSnapshot"],
    [{ ...base, currentSnapshot: 5 }, "Invalid manifest: missing currentSnapshot"],
    [withOut(base, "activeOps"), "Invalid manifest: missing activeOps"],
    [{ ...base, activeOps: "" }, "Invalid manifest: missing activeOps"],
    [{ ...base, activeOps: null }, "Invalid manifest: missing activeOps"],
    [withOut(base, "archiveSegments"), "Invalid manifest: archiveSegments must be an array"],
    [{ ...base, archiveSegments: "x" }, "Invalid manifest: archiveSegments must be an array"],
    [{ ...base, archiveSegments: {} }, "Invalid manifest: archiveSegments must be an array"],
    [{ ...base, archiveSegments: null }, "Invalid manifest: archiveSegments must be an array"],
    [{ ...base, archiveSegments: [""] }, "Invalid manifest: archiveSegments entries must be non-empty strings"],
    [{ ...base, archiveSegments: ["archive/a.json", 5] }, "Invalid manifest: archiveSegments entries must be non-empty strings"],
    [{ ...base, archiveSegments: [null] }, "Invalid manifest: archiveSegments entries must be non-empty strings"],
    [withOut(base, "stats"), "Invalid manifest: missing stats"],
    [{ ...base, stats: null }, "Invalid manifest: missing stats"],
    [{ ...base, stats: [] }, "Invalid manifest: missing stats"],
    [{ ...base, stats: "x" }, "Invalid manifest: missing stats"],
  ];
  for (const key of ["activeRecords", "archivedRecords", "opsCount"]) {
    const msg = `Invalid manifest: stats.${key} must be a non-negative integer`;
    table.push([statsWithout(key), msg]);
    for (const bad of [-1, 1.5, "1", Infinity, null]) table.push([stats({ [key]: bad }), msg]);
  }
  for (const key of ["created", "lastCheckpoint"]) {
    const msg = `Invalid manifest: stats.${key} must be a non-empty string`;
    table.push([statsWithout(key), msg], [stats({ [key]: "" }), msg], [stats({ [key]: 0 }), msg]);
  }
  table.push(
    [{ ...base, activeAgentOps: null }, "Invalid manifest: activeAgentOps must be an object"],
    [{ ...base, activeAgentOps: [] }, "Invalid manifest: activeAgentOps must be an object"],
    [{ ...base, activeAgentOps: "x" }, "Invalid manifest: activeAgentOps must be an object"],
    [{ ...base, activeAgentOps: { a: "" } }, "Invalid manifest: activeAgentOps values must be non-empty strings"],
    [{ ...base, activeAgentOps: { a: "ops/agent-a.jsonl", b: 5 } }, "Invalid manifest: activeAgentOps values must be non-empty strings"],
  );
  for (const [value, message] of table) rejectsWith(validateManifest, value, message, JSON.stringify(value));
});

test("validateManifest: checks run in order; stats fields in declaration order", () => {
  rejectsWith(validateManifest, { version: 0, currentSnapshot: "" }, "Invalid manifest: version must be a positive finite integer", "version first");
  rejectsWith(validateManifest, { version: 1, currentSnapshot: "", activeOps: "" }, "Invalid manifest: missing currentSnapshot", "snapshot before ops");
  rejectsWith(validateManifest, { ...validManifest(), archiveSegments: [""], stats: null }, "Invalid manifest: archiveSegments entries must be non-empty strings", "segments before stats");
  rejectsWith(
    validateManifest,
    { ...validManifest(), stats: { ...validStats(), opsCount: -1, activeRecords: -1 } },
    "Invalid manifest: stats.activeRecords must be a non-negative integer",
    "activeRecords first",
  );
  rejectsWith(
    validateManifest,
    { ...validManifest(), stats: { ...validStats(), lastCheckpoint: "", created: "" } },
    "Invalid manifest: stats.created must be a non-empty string",
    "created before lastCheckpoint",
  );
  rejectsWith(
    validateManifest,
    { ...validManifest(), stats: { ...validStats(), created: "" }, activeAgentOps: null },
    "Invalid manifest: stats.created must be a non-empty string",
    "stats before activeAgentOps",
  );
});

test("validateSnapshot: every check and its message", () => {
  const base = validSnapshot();
  const version = "Invalid snapshot: version must be a positive finite integer";
  const table = [
    [withOut(base, "version"), version],
    [{ ...base, version: 0 }, version],
    [{ ...base, version: 2.5 }, version],
    [{ ...base, version: "1" }, version],
    [{ ...base, version: -Infinity }, version],
    [withOut(base, "timestamp"), "Invalid snapshot: timestamp must be a non-empty string"],
    [{ ...base, timestamp: "" }, "Invalid snapshot: timestamp must be a non-empty string"],
    [{ ...base, timestamp: 0 }, "Invalid snapshot: timestamp must be a non-empty string"],
    [withOut(base, "records"), "Invalid snapshot: records must be an object"],
    [{ ...base, records: null }, "Invalid snapshot: records must be an object"],
    [{ ...base, records: [] }, "Invalid snapshot: records must be an object"],
    [{ ...base, records: "x" }, "Invalid snapshot: records must be an object"],
    // order
    [{ version: 0, timestamp: "" }, version],
    [{ version: 1, timestamp: "", records: null }, "Invalid snapshot: timestamp must be a non-empty string"],
  ];
  for (const [value, message] of table) rejectsWith(validateSnapshot, value, message, JSON.stringify(value));
});

test("validateArchiveSegment: every check and its message", () => {
  const base = validSegment();
  const version = "Invalid archive segment: version must be a positive finite integer";
  const table = [
    [withOut(base, "version"), version],
    [{ ...base, version: 0 }, version],
    [{ ...base, version: 1.1 }, version],
    [{ ...base, version: "1" }, version],
    [withOut(base, "period"), "Invalid archive segment: period must be a non-empty string"],
    [{ ...base, period: "" }, "Invalid archive segment: period must be a non-empty string"],
    [{ ...base, period: 2024 }, "Invalid archive segment: period must be a non-empty string"],
    [withOut(base, "timestamp"), "Invalid archive segment: timestamp must be a non-empty string"],
    [{ ...base, timestamp: "" }, "Invalid archive segment: timestamp must be a non-empty string"],
    [withOut(base, "records"), "Invalid archive segment: records must be an object"],
    [{ ...base, records: null }, "Invalid archive segment: records must be an object"],
    [{ ...base, records: [] }, "Invalid archive segment: records must be an object"],
    [{ ...base, records: 1 }, "Invalid archive segment: records must be an object"],
    // order
    [{ version: 1, period: "", timestamp: "" }, "Invalid archive segment: period must be a non-empty string"],
    [{ version: 1, period: "p", timestamp: "", records: null }, "Invalid archive segment: timestamp must be a non-empty string"],
  ];
  for (const [value, message] of table) rejectsWith(validateArchiveSegment, value, message, JSON.stringify(value));
});

// ---------------------------------------------------------------------------------------------
// streamSnapshotFile
// ---------------------------------------------------------------------------------------------

const RECORDS = [
  ["b", { name: "B", n: 1 }],
  ["a", { name: "A", tags: ["x", "y"], nested: { k: null } }],
  ["é😀", { text: "\u2028 é 😀", big: 1e21, neg: -1.5 }],
];

function jsonl(entries, version = 1) {
  let s = JSON.stringify({ version, timestamp: "2024-01-01T00:00:00.000Z" }) + "\n";
  for (const [id, data] of entries) s += JSON.stringify({ id, data }) + "\n";
  return s;
}

test("streamSnapshotFile: JSONL yields [id, record] in file order and returns {version}", async (t) => {
  const dir = await tempDir(t);
  await mkdir(join(dir, "snapshots"));
  await writeFile(join(dir, "snapshots", "snap-1.jsonl"), jsonl(RECORDS, 3));
  const gen = streamSnapshotFile(dir, "snapshots/snap-1.jsonl");
  assert.equal(typeof gen[Symbol.asyncIterator], "function");
  const { items, value } = await drain(gen);
  assert.deepEqual(items, RECORDS);
  assert.deepEqual(value, { version: 3 });
  // for await gives the same items
  const seen = [];
  for await (const entry of streamSnapshotFile(dir, "snapshots/snap-1.jsonl")) seen.push(entry);
  assert.deepEqual(seen, RECORDS);
  for (const entry of seen) assert.ok(Array.isArray(entry) && entry.length === 2);
});

test("streamSnapshotFile: header-only JSONL yields nothing; blank lines are ignored", async (t) => {
  const dir = await tempDir(t);
  await writeFile(join(dir, "empty.jsonl"), jsonl([], 2));
  assert.deepEqual(await drain(streamSnapshotFile(dir, "empty.jsonl")), { items: [], value: { version: 2 } });
  const text = jsonl(RECORDS.slice(0, 2)).replace("\n", "\n\n") + "\n";
  await writeFile(join(dir, "blank.jsonl"), text);
  assert.deepEqual(await drain(streamSnapshotFile(dir, "blank.jsonl")), { items: RECORDS.slice(0, 2), value: { version: 1 } });
});

test("streamSnapshotFile: legacy single-line JSON snapshot", async (t) => {
  const dir = await tempDir(t);
  const snap = { version: 4, timestamp: "2024-01-01T00:00:00.000Z", records: Object.fromEntries(RECORDS) };
  await writeFile(join(dir, "legacy.json"), JSON.stringify(snap));
  assert.deepEqual(await drain(streamSnapshotFile(dir, "legacy.json")), { items: RECORDS, value: { version: 4 } });
  // with a trailing newline too
  await writeFile(join(dir, "legacy-nl.json"), JSON.stringify(snap) + "\n");
  assert.deepEqual(await drain(streamSnapshotFile(dir, "legacy-nl.json")), { items: RECORDS, value: { version: 4 } });
});

test("streamSnapshotFile: legacy pretty-printed JSON snapshot", async (t) => {
  const dir = await tempDir(t);
  const snap = { version: 2, timestamp: "2024-01-01T00:00:00.000Z", records: Object.fromEntries(RECORDS) };
  await writeFile(join(dir, "pretty.json"), JSON.stringify(snap, null, 2));
  assert.deepEqual(await drain(streamSnapshotFile(dir, "pretty.json")), { items: RECORDS, value: { version: 2 } });
});

test("streamSnapshotFile: an invalid legacy snapshot rejects with the validator's message", async (t) => {
  const dir = await tempDir(t);
  await writeFile(join(dir, "bad.json"), JSON.stringify({ version: 1, timestamp: "t", records: [] }));
  await assert.rejects(drain(streamSnapshotFile(dir, "bad.json")), { message: /^Invalid snapshot: records must be an object/ });
  await writeFile(join(dir, "bad2.json"), JSON.stringify({ version: 0, timestamp: "t", records: {} }, null, 2));
  await assert.rejects(drain(streamSnapshotFile(dir, "bad2.json")), { message: /^Invalid snapshot: version must be a positive finite integer/ });
});

test("streamSnapshotFile: a missing file rejects with code ENOENT", async (t) => {
  const dir = await tempDir(t);
  const gen = streamSnapshotFile(dir, "snapshots/nope.jsonl");
  await assert.rejects(gen.next(), (err) => {
    assert.equal(err.code, "ENOENT");
    return true;
  });
});

test("streamSnapshotFile: reads a snapshot written by a Store", async (t) => {
  const dir = await tempDir(t);
  const s = new impl.Store();
  await s.open(dir);
  for (const [id, rec] of RECORDS) await s.set(id, rec);
  await s.close(); // checkpoints
  const rel = JSON.parse(await readFile(join(dir, "manifest.json"), "utf8")).currentSnapshot;
  const { items, value } = await drain(streamSnapshotFile(dir, rel));
  assert.deepEqual(items, RECORDS);
  assert.deepEqual(value, { version: 1 });
});

// ---------------------------------------------------------------------------------------------
// acquireLock / releaseLock
// ---------------------------------------------------------------------------------------------

test("acquireLock creates .lock with our pid; releaseLock removes it", async (t) => {
  const dir = await tempDir(t);
  const handle = await acquireLock(dir);
  assert.ok(handle);
  assert.equal(await readFile(join(dir, ".lock"), "utf8"), String(process.pid));
  await releaseLock(dir, handle);
  assert.equal(await exists(join(dir, ".lock")), false);
  // and it can be taken again
  const again = await acquireLock(dir);
  assert.equal(await readFile(join(dir, ".lock"), "utf8"), String(process.pid));
  await releaseLock(dir, again);
  assert.equal(await exists(join(dir, ".lock")), false);
});

test("a second acquireLock in the same process is refused with the locked message", async (t) => {
  const dir = await tempDir(t);
  const handle = await acquireLock(dir);
  try {
    await assert.rejects(acquireLock(dir), {
      message: `Store is locked by process ${process.pid}. If this is stale, delete ${join(dir, ".lock")}`,
    });
    // the holder keeps the lock
    assert.equal(await readFile(join(dir, ".lock"), "utf8"), String(process.pid));
  } finally {
    await releaseLock(dir, handle);
  }
});

test("acquireLock refuses a lock held by another live process (pid in the message)", async (t) => {
  const dir = await tempDir(t);
  const pid = process.ppid; // alive, and ours to signal
  await writeFile(join(dir, ".lock"), String(pid));
  await assert.rejects(acquireLock(dir), {
    message: `Store is locked by process ${pid}. If this is stale, delete ${join(dir, ".lock")}`,
  });
  assert.equal(await readFile(join(dir, ".lock"), "utf8"), String(pid));
});

test("acquireLock takes a stale lock whose pid is dead", async (t) => {
  const dir = await tempDir(t);
  await writeFile(join(dir, ".lock"), String(deadPid()));
  const handle = await acquireLock(dir);
  assert.equal(await readFile(join(dir, ".lock"), "utf8"), String(process.pid));
  await releaseLock(dir, handle);
  assert.equal(await exists(join(dir, ".lock")), false);
});

test("acquireLock takes a lock file that holds no pid", async (t) => {
  const dir = await tempDir(t);
  await writeFile(join(dir, ".lock"), "garbage");
  const handle = await acquireLock(dir);
  assert.equal(await readFile(join(dir, ".lock"), "utf8"), String(process.pid));
  await releaseLock(dir, handle);
});

test("a lock taken with acquireLock keeps a Store out, and releaseLock lets it in", async (t) => {
  const dir = await tempDir(t);
  const handle = await acquireLock(dir);
  const s = new impl.Store();
  await assert.rejects(s.open(dir), { message: `Store is locked by process ${process.pid}. If this is stale, delete ${join(dir, ".lock")}` });
  await releaseLock(dir, handle);
  const s2 = new impl.Store();
  await s2.open(dir);
  await s2.set("a", { v: 1 });
  // and the other way round: an open Store keeps acquireLock out
  await assert.rejects(acquireLock(dir), { message: /^Store is locked by process / });
  await s2.close();
});
