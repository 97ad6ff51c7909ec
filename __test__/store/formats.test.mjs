// Byte-level formats: op lines (key order, delta rule), snapshot lines, manifest, and exact
// preservation of JSON.stringify text (numbers, unicode, lone surrogates) through reopen and
// checkpoints.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { Store, isReference } from "../support/impl.mjs";
import { setup, readOps, readSnapshot, readManifest, sleep, ISO_RE, MANIFEST_KEYS, STATS_KEYS } from "../support/helpers.mjs";

/** The line we expect for an op, rebuilt in the on-disk key order from the parsed line. */
function canonical(o) {
  const x = { ts: o.ts, op: o.op, id: o.id, prev: o.prev };
  if ("data" in o) x.data = o.data;
  if ("encoding" in o) x.encoding = o.encoding;
  return JSON.stringify(x);
}

/** Set old then new on a fresh store; return the second op line (raw text and parsed). */
async function updateLine(t, oldRec, newRec) {
  const c = await setup(t);
  const s = await c.open();
  await s.set("r", oldRec);
  await s.set("r", newRec);
  const { lines, ops } = await readOps(c.dir);
  assert.equal(lines.length, 2);
  return { line: lines[1], op: ops[1], s, c };
}

test("op lines: keys ts, op, id, prev, data (set) / ts, op, id, prev (delete); encoding last", async (t) => {
  const c = await setup(t);
  const s = await c.open();
  const long = "l".repeat(60);
  await s.set("a", { name: "A", body: long, status: "x" });
  await s.set("a", { name: "A", body: long, status: "z", extra: 1 }); // delta
  await s.set("a", { other: true }); // full prev
  await s.delete("a");
  const { lines, ops, text } = await readOps(c.dir);
  assert.ok(text.endsWith("\n"));
  assert.equal(text, lines.join("\n") + "\n");
  assert.deepEqual(Object.keys(ops[0]), ["ts", "op", "id", "prev", "data"]);
  assert.deepEqual(Object.keys(ops[1]), ["ts", "op", "id", "prev", "data", "encoding"]);
  assert.deepEqual(Object.keys(ops[2]), ["ts", "op", "id", "prev", "data"]);
  assert.deepEqual(Object.keys(ops[3]), ["ts", "op", "id", "prev"]);
  for (const [i, o] of ops.entries()) {
    assert.match(o.ts, ISO_RE);
    assert.equal(lines[i], canonical(o));
  }
  assert.equal(lines[0].slice(lines[0].indexOf(',"op"')), `,"op":"set","id":"a","prev":null,"data":{"name":"A","body":"${long}","status":"x"}}`);
  assert.equal(lines[1].slice(lines[1].indexOf(',"op"')), `,"op":"set","id":"a","prev":{"$set":{"status":"x"},"$unset":["extra"]},"data":{"name":"A","body":"${long}","status":"z","extra":1},"encoding":"delta"}`);
  assert.equal(lines[2].slice(lines[2].indexOf(',"op"')), `,"op":"set","id":"a","prev":{"name":"A","body":"${long}","status":"z","extra":1},"data":{"other":true}}`);
  assert.equal(lines[3].slice(lines[3].indexOf(',"op"')), `,"op":"delete","id":"a","prev":{"other":true}}`);
  // ts is a real, current timestamp in UTC
  const age = Date.now() - Date.parse(ops[0].ts);
  assert.ok(age >= 0 && age < 60000, `ts ${ops[0].ts}`);
  assert.ok(ops[0].ts <= ops[1].ts && ops[1].ts <= ops[2].ts && ops[2].ts <= ops[3].ts);
});

// --- the delta rule ---

test("delta: the SPEC's example pair is NOT delta-encoded (the delta is not shorter)", async (t) => {
  // {"$set":{"status":"x"},"$unset":["extra"]} (42) vs {"name":"A","status":"x"} (25)
  const { op } = await updateLine(t, { name: "A", status: "x" }, { name: "A", status: "z", extra: 1 });
  assert.deepEqual(op.prev, { name: "A", status: "x" });
  assert.equal("encoding" in op, false);
});

test("delta: changed and added keys", async (t) => {
  const desc = "d".repeat(50);
  const { line, op } = await updateLine(t, { name: "A", status: "x", description: desc }, { name: "A", status: "z", description: desc, extra: 1 });
  assert.equal(op.encoding, "delta");
  assert.ok(line.includes(`"prev":{"$set":{"status":"x"},"$unset":["extra"]},"data":{"name":"A","status":"z","description":"${desc}","extra":1},"encoding":"delta"}`));
});

test("delta: removed keys go to $set with their old value; only-removal omits $unset", async (t) => {
  const big = "b".repeat(50);
  const { op, line } = await updateLine(t, { a: 1, gone: { deep: [1, 2] }, big }, { a: 1, big });
  assert.equal(op.encoding, "delta");
  assert.ok(line.includes(`"prev":{"$set":{"gone":{"deep":[1,2]}}},"data"`));
});

test("delta: only-additions omit $set; $unset follows the new record's key order", async (t) => {
  const big = "c".repeat(50);
  const { op, line } = await updateLine(t, { big }, { zeta: 1, big, alpha: 2, mid: 3 });
  assert.equal(op.encoding, "delta");
  assert.ok(line.includes(`"prev":{"$unset":["zeta","alpha","mid"]},"data"`));
});

test("delta: $set follows the old record's key order, whole values for nested changes", async (t) => {
  const big = "e".repeat(80);
  const { line } = await updateLine(t, { z: { n: [1, { m: 1 }] }, big, a: "old-a", k: 1 }, { k: 1, a: "new-a", big, z: { n: [1, { m: 2 }] } });
  assert.ok(line.includes(`"prev":{"$set":{"z":{"n":[1,{"m":1}]},"a":"old-a"}},"data"`));
});

test("delta: an identical record (or one with only key order changed) gives a full prev", async (t) => {
  const big = "f".repeat(80);
  const r1 = await updateLine(t, { a: 1, big }, { a: 1, big });
  assert.deepEqual(r1.op.prev, { a: 1, big });
  assert.equal("encoding" in r1.op, false);
  const r2 = await updateLine(t, { a: 1, big, b: 2 }, { b: 2, big, a: 1 });
  assert.equal(JSON.stringify(r2.op.prev), JSON.stringify({ a: 1, big, b: 2 }));
  assert.equal("encoding" in r2.op, false);
});

test("delta: values are compared by their JSON text (0 vs -0 same, '1' vs 1 differ, undefined vs null differ)", async (t) => {
  const big = "g".repeat(80);
  const r1 = await updateLine(t, { n: 0, big }, { n: -0, big });
  assert.equal("encoding" in r1.op, false, "-0 stringifies as 0: no change");
  const r2 = await updateLine(t, { n: 1, big }, { n: "1", big });
  assert.equal(r2.op.encoding, "delta");
  assert.ok(r2.line.includes(`"prev":{"$set":{"n":1}},"data":{"n":"1","big":"${big}"}`));
  const r3 = await updateLine(t, { n: null, big }, { big, n: undefined });
  assert.equal(r3.op.encoding, "delta", "undefined is dropped by JSON: the key counts as present-but-different");
  assert.ok(r3.line.includes(`"prev":{"$set":{"n":null}},"data":{"big":"${big}"}`));
});

test("delta: a delta exactly as long as the full record is not used (strictly shorter only)", async (t) => {
  // {"$set":{"k":"old"}} and {"k":"old","pad":""} are both 20 characters
  const { op } = await updateLine(t, { k: "old", pad: "" }, { k: "new", pad: "" });
  assert.deepEqual(op.prev, { k: "old", pad: "" });
  assert.equal("encoding" in op, false);
  const { op: op2 } = await updateLine(t, { k: "old", pad: "p" }, { k: "new", pad: "p" });
  assert.equal(op2.encoding, "delta", "one character longer record: the delta wins");
});

test("delta: lengths are UTF-16 code units, not bytes or code points", async (t) => {
  // old {"e":"€€€€€€€€€€"} is 18 units (38 bytes); the delta {"$unset":["abcdefgh"]} is 23: full prev
  const r1 = await updateLine(t, { e: "€".repeat(10) }, { e: "€".repeat(10), abcdefgh: 1 });
  assert.equal("encoding" in r1.op, false);
  assert.deepEqual(r1.op.prev, { e: "€".repeat(10) });
  // old {"e":"🎉🎉🎉🎉🎉🎉"} is 20 units (14 code points); the delta {"$unset":["abcd"]} is 19: delta
  const r2 = await updateLine(t, { e: "🎉".repeat(6) }, { e: "🎉".repeat(6), abcd: 1 });
  assert.equal(r2.op.encoding, "delta");
  assert.deepEqual(r2.op.prev, { $unset: ["abcd"] });
});

test("delta ops replay correctly after reopen (data is the new record)", async (t) => {
  const big = "h".repeat(80);
  const { s, c } = await updateLine(t, { a: 1, big }, { a: 2, big, extra: true });
  await s.close();
  const r = await c.open({ readOnly: true });
  assert.deepEqual(r.get("r"), { a: 2, big, extra: true });
});

// --- manifest ---

test("manifest.json is JSON.stringify(manifest, null, 2) with the documented key order", async (t) => {
  const c = await setup(t);
  const s = await c.open();
  await s.set("a", { v: 1 });
  await s.set("b", { v: 2 });
  await s.archive((v, id) => id === "a", "2022-Q2");
  const { text, json } = await readManifest(c.dir);
  assert.deepEqual(Object.keys(json), MANIFEST_KEYS);
  assert.deepEqual(Object.keys(json.stats), STATS_KEYS);
  const expected =
    "{\n" +
    `  "version": 1,\n` +
    `  "currentSnapshot": "${json.currentSnapshot}",\n` +
    `  "activeOps": "${json.activeOps}",\n` +
    `  "archiveSegments": [\n` +
    `    "archive/archive-2022-Q2.json"\n` +
    `  ],\n` +
    `  "stats": {\n` +
    `    "activeRecords": 1,\n` +
    `    "archivedRecords": 1,\n` +
    `    "opsCount": 0,\n` +
    `    "created": "${json.stats.created}",\n` +
    `    "lastCheckpoint": "${json.stats.lastCheckpoint}"\n` +
    `  }\n` +
    "}";
  assert.equal(text, expected);
  assert.match(json.currentSnapshot, /^snapshots\/snap-\d+\.jsonl$/);
  assert.match(json.activeOps, /^ops\/ops-\d+\.jsonl$/);
  const fresh = (await readManifest(c.dir)).json;
  assert.ok(!("activeAgentOps" in fresh), "no activeAgentOps in single-writer mode");
  // an empty archiveSegments list prints as []
  const c2 = await setup(t);
  await c2.open();
  assert.ok((await readManifest(c2.dir)).text.includes(`  "archiveSegments": [],\n`));
});

test("file names carry a millisecond timestamp", async (t) => {
  const c = await setup(t);
  const before = Date.now();
  const s = await c.open();
  await s.set("a", { v: 1 });
  await sleep(3);
  await s.compact();
  const after = Date.now();
  const { json } = await readManifest(c.dir);
  const snapMs = Number(/snap-(\d+)\.jsonl$/.exec(json.currentSnapshot)[1]);
  const opsMs = Number(/ops-(\d+)\.jsonl$/.exec(json.activeOps)[1]);
  for (const ms of [snapMs, opsMs]) assert.ok(ms >= before && ms <= after, `${ms} not in [${before}, ${after}]`);
  for (const f of await readdir(join(c.dir, "snapshots"))) assert.match(f, /^snap-\d+\.jsonl$/);
  for (const f of await readdir(join(c.dir, "ops"))) assert.match(f, /^ops-\d+\.jsonl$/);
});

// --- exact text preservation ---

const CONTROL = Array.from({ length: 32 }, (_, i) => String.fromCharCode(i)).join("");

const TRICKY = {
  big: 1e21,
  bigNeg: -1e21,
  negZero: -0,
  half: 1.5,
  tenth: 0.1,
  sum: 0.1 + 0.2,
  tiny: 1e-7,
  denorm: 5e-324,
  max: Number.MAX_VALUE,
  unsafe: 2 ** 53 + 2,
  bigInt: 123456789012345680000,
  neg: -42,
  ls: "\u2028",
  ps: "\u2029 para",
  emoji: "🎉👩‍👩‍👧 flags 🇫🇷",
  cjk: "日本語テキスト",
  accents: "é è ê ë ñ ü ø å",
  combining: "e\u0301",
  rtl: "مرحبا",
  control: CONTROL,
  quotes: "\"'\\/`",
  del: "\u007f\u0080\u009f",
  bom: "\ufeff",
  nonchar: "\uffff",
  lone: "\ud800",
  loneLow: "\udc00 tail",
  reversed: "\udc00\ud800",
  nested: { arr: [1e21, -0, "\u2028", "\ud83d"], "key\u2028with\ud800": true },
};

const TRICKY_IDS = ["\ud800", "\ud801", "\udc00", "\ufffd", "\u2028", "🎉", "é", "e\u0301", "\u0000nul", "tab\t"];

test("records keep their exact JSON.stringify text through op file, reopen, and checkpoints", async (t) => {
  const c = await setup(t);
  let s = await c.open({ checkpointOnClose: false });
  await s.set("tricky", TRICKY);
  for (const [i, id] of TRICKY_IDS.entries()) await s.set(id, { i, id });
  assert.equal(s.get("tricky"), TRICKY);

  // op file: exactly JSON.stringify
  const { lines, buf } = await readOps(c.dir);
  const first = JSON.parse(lines[0]);
  assert.equal(lines[0], JSON.stringify({ ts: first.ts, op: "set", id: "tricky", prev: null, data: TRICKY }));
  assert.ok(buf.includes(Buffer.from("1e+21")), "1e21 is written as 1e+21");
  assert.ok(buf.includes(Buffer.from('"negZero":0,')), "-0 is written as 0");
  assert.ok(buf.includes(Buffer.from("\u2028", "utf8")), "U+2028 is written raw (3 bytes)");
  assert.ok(buf.includes(Buffer.from('"lone":"\\ud800"')), "a lone surrogate is written as a \\u escape");
  assert.ok(buf.includes(Buffer.from('"control":"\\u0000\\u0001')));
  for (const [i, id] of TRICKY_IDS.entries()) {
    const o = JSON.parse(lines[i + 1]);
    assert.equal(lines[i + 1], JSON.stringify({ ts: o.ts, op: "set", id, prev: null, data: { i, id } }));
  }
  await s.close();

  // reopen by replay: values equal (with -0 read back as 0), distinct lone-surrogate ids
  s = await c.open();
  const expectedTricky = JSON.parse(JSON.stringify(TRICKY));
  assert.deepEqual(s.get("tricky"), expectedTricky);
  assert.ok(Object.is(s.get("tricky").negZero, 0));
  assert.equal(s.get("tricky").lone, "\ud800");
  assert.equal(s.get("tricky").reversed, "\udc00\ud800");
  assert.equal(s.get("tricky").nested.arr[3], "\ud83d");
  assert.equal(s.count(), 1 + TRICKY_IDS.length);
  for (const [i, id] of TRICKY_IDS.entries()) {
    assert.ok(s.has(id), `has ${JSON.stringify(id)}`);
    assert.deepEqual(s.get(id), { i, id });
  }
  assert.equal(s.has("\udbff"), false);
  assert.deepEqual(
    s.entries().map(([id]) => id),
    ["tricky", ...TRICKY_IDS],
  );

  // checkpoint: snapshot lines are exactly JSON.stringify({id, data})
  await s.compact();
  const snap1 = await readSnapshot(c.dir);
  assert.equal(snap1.lines[1], JSON.stringify({ id: "tricky", data: TRICKY }));
  for (const [i, id] of TRICKY_IDS.entries()) assert.equal(snap1.lines[i + 2], JSON.stringify({ id, data: { i, id } }));
  await s.close();

  // load from the snapshot and checkpoint again: record lines byte-identical
  await sleep(3);
  s = await c.open();
  assert.deepEqual(s.get("tricky"), expectedTricky);
  assert.ok(s.has("\ud800") && s.has("\ud801") && s.has("\udc00"));
  await s.set("touch", { v: 1 });
  await s.delete("touch");
  await s.compact();
  const snap2 = await readSnapshot(c.dir);
  assert.notEqual(snap2.rel, snap1.rel);
  const body = (b) => b.subarray(b.indexOf(10) + 1);
  assert.deepEqual(body(snap2.buf), body(snap1.buf));

  // updates and deletes addressed by lone-surrogate ids
  await s.set("\ud800", { changed: true });
  await s.delete("\udc00");
  assert.deepEqual(s.get("\ud800"), { changed: true });
  assert.deepEqual(s.get("\ud801"), { i: 1, id: "\ud801" });
  await s.close();
  s = await c.open({ readOnly: true });
  assert.deepEqual(s.get("\ud800"), { changed: true });
  assert.equal(s.has("\udc00"), false);
  assert.ok(s.has("\ufffd"));
});

test("prev values keep their exact text too (full and delta)", async (t) => {
  const c = await setup(t);
  const s = await c.open();
  await s.set("a", TRICKY);
  await s.set("a", { ...TRICKY, half: 2.5 }); // delta: {"$set":{"half":1.5}}
  await s.set("a", { other: "\ud800" }); // full prev
  await s.delete("a");
  const { lines, ops } = await readOps(c.dir);
  assert.equal(ops[1].encoding, "delta");
  assert.equal(lines[1], canonical({ ts: ops[1].ts, op: "set", id: "a", prev: { $set: { half: 1.5 } }, data: { ...TRICKY, half: 2.5 }, encoding: "delta" }));
  assert.equal(lines[2], JSON.stringify({ ts: ops[2].ts, op: "set", id: "a", prev: { ...TRICKY, half: 2.5 }, data: { other: "\ud800" } }));
  assert.equal(lines[3], JSON.stringify({ ts: ops[3].ts, op: "delete", id: "a", prev: { other: "\ud800" } }));
  // undo through them
  await s.undo();
  await s.undo();
  await s.undo();
  assert.equal(JSON.stringify(s.get("a")), JSON.stringify(TRICKY));
});

test("JSON.stringify semantics for non-JSON values nested in a record", async (t) => {
  const c = await setup(t);
  let s = await c.open();
  const rec = {
    when: new Date(Date.UTC(2020, 0, 2, 3, 4, 5, 6)),
    missing: undefined,
    nan: NaN,
    inf: Infinity,
    ninf: -Infinity,
    arr: [undefined, NaN, 1],
    custom: { toJSON: () => ({ replaced: true }) },
    keep: "yes",
  };
  await s.set("r", rec);
  assert.equal(s.get("r"), rec);
  const { lines, ops } = await readOps(c.dir);
  assert.equal(
    lines[0],
    `{"ts":"${ops[0].ts}","op":"set","id":"r","prev":null,"data":{"when":"2020-01-02T03:04:05.006Z","nan":null,"inf":null,"ninf":null,"arr":[null,null,1],"custom":{"replaced":true},"keep":"yes"}}`,
  );
  await s.close();
  s = await c.open({ readOnly: true });
  assert.deepEqual(s.get("r"), { when: "2020-01-02T03:04:05.006Z", nan: null, inf: null, ninf: null, arr: [null, null, 1], custom: { replaced: true }, keep: "yes" });
});

test("integer-like keys inside records follow JavaScript object order", async (t) => {
  const c = await setup(t);
  let s = await c.open();
  const rec = { b: 1, 10: "ten", a: 2, 2: "two", "-1": "neg", "01": "lead" };
  await s.set("r", rec);
  const { lines } = await readOps(c.dir);
  assert.ok(lines[0].includes(`"data":{"2":"two","10":"ten","b":1,"a":2,"-1":"neg","01":"lead"}`), lines[0]);
  await s.close();
  s = await c.open();
  assert.equal(JSON.stringify(s.get("r")), `{"2":"two","10":"ten","b":1,"a":2,"-1":"neg","01":"lead"}`);
});

