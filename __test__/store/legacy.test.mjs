// Reading hand-written / older data directories: the two legacy snapshot forms, odd JSONL, and
// op files with malformed lines (skipped with a warning on stderr).
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { Store, isReference } from "../support/impl.mjs";
import { setup, readSnapshot, readOps, writeStoreDir, jsonlSnapshot, opLine, runNode, IMPL_URL, collect } from "../support/helpers.mjs";

const RECORDS = {
  b: { name: "B", tags: ["x", "y"], n: 2 },
  a: { name: "A", nested: { deep: true }, n: 1 },
  "10": { name: "ten" },
  "2": { name: "two" },
};
// JS object key order: integer-like keys ascending first, then the rest in insertion order.
const JS_ORDER = ["2", "10", "b", "a"];

const legacyObj = (records = RECORDS, version = 1) => ({ version, timestamp: "2023-06-01T12:00:00.000Z", records });

for (const [form, text] of [
  ["one-line", JSON.stringify(legacyObj())],
  ["one-line with trailing newline", JSON.stringify(legacyObj()) + "\n"],
  ["pretty-printed", JSON.stringify(legacyObj(), null, 2)],
  ["pretty-printed with trailing newline", JSON.stringify(legacyObj(), null, 2) + "\n"],
]) {
  test(`legacy ${form} snapshot: opens, streams, and the next checkpoint writes JSONL`, async (t) => {
    const c = await setup(t);
    await writeStoreDir(c.dir, { snapshot: text, snapName: "snap-legacy.json" });
    const s = await c.open();
    assert.deepEqual(
      s.entries().map(([id]) => id),
      JS_ORDER,
    );
    for (const [id, rec] of Object.entries(RECORDS)) assert.deepEqual(s.get(id), rec);
    assert.equal(s.stats().opsCount, 0);
    assert.deepEqual(await collect(s.streamSnapshot()), JS_ORDER.map((id) => [id, RECORDS[id]]));
    await s.set("c", { name: "C" });
    await s.close();
    const snap = await readSnapshot(c.dir);
    assert.match(snap.rel, /^snapshots\/snap-\d+\.jsonl$/);
    assert.deepEqual(Object.keys(snap.header), ["version", "timestamp"]);
    assert.equal(snap.header.version, 1);
    assert.deepEqual(snap.lines.slice(1), [...JS_ORDER, "c"].map((id) => JSON.stringify({ id, data: id === "c" ? { name: "C" } : RECORDS[id] })));
    const r = await c.open({ readOnly: true });
    assert.deepEqual(
      r.entries().map(([id]) => id),
      [...JS_ORDER, "c"],
    );
  });
}

test("legacy snapshot plus an op file: ops are replayed on top", async (t) => {
  const c = await setup(t);
  await writeStoreDir(c.dir, {
    snapshot: JSON.stringify(legacyObj(), null, 2),
    ops: [
      opLine({ ts: "2023-06-01T12:00:01.000Z", id: "a", prev: RECORDS.a, data: { name: "A2" } }),
      opLine({ ts: "2023-06-01T12:00:02.000Z", op: "delete", id: "b", prev: RECORDS.b }),
      opLine({ ts: "2023-06-01T12:00:03.000Z", id: "new", data: { v: 1 } }),
    ],
  });
  const s = await c.open({ readOnly: true });
  assert.deepEqual(s.entries(), [
    ["2", { name: "two" }],
    ["10", { name: "ten" }],
    ["a", { name: "A2" }],
    ["new", { v: 1 }],
  ]);
  assert.equal(s.stats().opsCount, 3);
});

test("legacy snapshot with no records", async (t) => {
  const c = await setup(t);
  await writeStoreDir(c.dir, { snapshot: JSON.stringify(legacyObj({}), null, 2) });
  const s = await c.open();
  assert.equal(s.count(), 0);
  assert.deepEqual(await collect(s.streamSnapshot()), []);
  await s.set("a", { v: 1 });
  await s.close();
  assert.deepEqual((await readSnapshot(c.dir)).ids, ["a"]);
});

test("hand-written JSON is normalised to JSON.stringify text at the next checkpoint", async (t) => {
  const c = await setup(t);
  const snapshot =
    "{\n" +
    '  "version": 1,\n' +
    '  "timestamp": "2023-06-01T12:00:00.000Z",\n' +
    '  "records": {\n' +
    '    "n": { "int": 1.0, "exp": 1E3, "neg": -0.50, "big": 1e21, "small": 1e-7, "esc": "\\u00e9\\/\\t", "arr": [ 1 , 2 ] }\n' +
    "  }\n" +
    "}\n";
  await writeStoreDir(c.dir, {
    snapshot,
    ops: ['{ "ts" : "2023-06-01T12:00:01.000Z", "op": "set", "id": "o", "prev": null, "data": { "x": 2.50, "s": "\\u0041" } }'],
  });
  const s = await c.open();
  assert.deepEqual(s.get("n"), { int: 1, exp: 1000, neg: -0.5, big: 1e21, small: 1e-7, esc: "é/\t", arr: [1, 2] });
  assert.deepEqual(s.get("o"), { x: 2.5, s: "A" });
  await s.compact();
  const snap = await readSnapshot(c.dir);
  assert.deepEqual(snap.lines.slice(1), [
    '{"id":"n","data":{"int":1,"exp":1000,"neg":-0.5,"big":1e+21,"small":1e-7,"esc":"é/\\t","arr":[1,2]}}',
    '{"id":"o","data":{"x":2.5,"s":"A"}}',
  ]);
});

test("JSONL snapshot with blank lines and CRLF line endings loads", async (t) => {
  const c = await setup(t);
  const snapshot = '{"version":1,"timestamp":"2023-06-01T12:00:00.000Z"}\r\n{"id":"a","data":{"v":1}}\r\n\r\n{"id":"b","data":{"v":2}}\r\n\n';
  await writeStoreDir(c.dir, { snapshot });
  const s = await c.open({ readOnly: true });
  assert.deepEqual(s.entries(), [
    ["a", { v: 1 }],
    ["b", { v: 2 }],
  ]);
  assert.deepEqual(await collect(s.streamSnapshot()), s.entries());
});

test("a JSONL snapshot's header version drives migration; its records keep file order", async (t) => {
  const c = await setup(t);
  await writeStoreDir(c.dir, {
    snapshot: jsonlSnapshot(
      [
        ["z", { v: 1 }],
        ["10", { v: 2 }],
        ["2", { v: 3 }],
      ],
      1,
    ),
  });
  const s = await c.open({ readOnly: true, version: 2, migrate: (r, from) => ({ ...r, from }) });
  assert.deepEqual(s.entries(), [
    ["z", { v: 1, from: 1 }],
    ["10", { v: 2, from: 1 }],
    ["2", { v: 3, from: 1 }],
  ]);
});

// --- malformed op lines: skipped, with a warning on stderr ---
// The warning may come from native code, so it is captured from a child process.

function openInChild(dir, opts = {}) {
  const code = `
    import { Store } from ${JSON.stringify(IMPL_URL)};
    const s = new Store();
    await s.open(${JSON.stringify(dir)}, ${JSON.stringify(opts)});
    process.stdout.write(JSON.stringify({ entries: s.entries(), ops: s.stats().opsCount }));
    await s.close();
  `;
  const res = runNode(code);
  assert.equal(res.status, 0, `child failed: ${res.stderr}`);
  return { ...JSON.parse(res.stdout), stderr: res.stderr };
}

test("malformed op lines are skipped with 'opslog: skipped N malformed line(s) in <file>' on stderr", async (t) => {
  const c = await setup(t);
  await writeStoreDir(c.dir, {
    snapshot: jsonlSnapshot([["s", { v: 0 }]]),
    ops: [
      opLine({ ts: "2024-01-01T00:00:01.000Z", id: "a", data: { v: 1 } }),
      "this is not json",
      opLine({ ts: "2024-01-01T00:00:02.000Z", id: "b", data: { v: 2 } }),
      '{"ts":"2024-01-01T00:00:03.000Z","op":"upsert","id":"c","prev":null,"data":{"v":3}}',
      opLine({ ts: "2024-01-01T00:00:04.000Z", id: "a", prev: { v: 1 }, data: { v: 4 } }),
    ],
  });
  const got = openInChild(c.dir, { readOnly: true });
  assert.deepEqual(got.entries, [
    ["s", { v: 0 }],
    ["a", { v: 4 }],
    ["b", { v: 2 }],
  ]);
  assert.equal(got.ops, 3);
  assert.ok(got.stderr.includes("skipped 2 malformed line(s)"), got.stderr);
  assert.ok(got.stderr.includes(`opslog: skipped 2 malformed line(s) in ${join(c.dir, "ops", "ops-1000.jsonl")}`), got.stderr);
});

test("every kind of invalid op line is skipped and counted", async (t) => {
  const c = await setup(t);
  const ts = "2024-01-01T00:00:01.000Z";
  const bad = [
    "{",
    "[]",
    "null",
    '"string"',
    "42",
    '{"op":"set","id":"x","prev":null,"data":{}}', // no ts
    '{"ts":"","op":"set","id":"x","prev":null,"data":{}}', // empty ts
    `{"ts":"${ts}","op":"set","id":"","prev":null,"data":{}}`, // empty id
    `{"ts":"${ts}","op":"set","id":5,"prev":null,"data":{}}`, // id not a string
    `{"ts":"${ts}","op":"set","id":"x","data":{}}`, // no prev
    `{"ts":"${ts}","op":"set","id":"x","prev":[1],"data":{}}`, // prev array
    `{"ts":"${ts}","op":"set","id":"x","prev":null}`, // set without data
    `{"ts":"${ts}","op":"set","id":"x","prev":null,"data":null}`, // set with null data
    `{"ts":"${ts}","op":"delete","id":"x","prev":null}`, // delete without prev
    `{"ts":"${ts}","op":"delete","id":"x","prev":{"v":1},"data":{}}`, // delete with data
    `{"ts":"${ts}","op":"set","id":"x","prev":null,"data":{},"encoding":"zip"}`, // bad encoding
    `{"ts":"${ts}","op":"set","id":"x","prev":null,"data":{},"clock":-1}`, // bad clock
    `{"ts":"${ts}","op":"set","id":"x","prev":null,"data":{},"agent":""}`, // bad agent
  ];
  await writeStoreDir(c.dir, {
    snapshot: jsonlSnapshot([]),
    ops: [opLine({ id: "ok1", data: { v: 1 } }), ...bad, opLine({ id: "ok2", data: { v: 2 }, encoding: undefined }), `{"ts":"${ts}","op":"set","id":"ok3","prev":null,"data":{"v":3},"encoding":"full"}`],
  });
  const got = openInChild(c.dir, { readOnly: true });
  assert.deepEqual(
    got.entries.map(([id]) => id),
    ["ok1", "ok2", "ok3"],
  );
  assert.ok(got.stderr.includes(`opslog: skipped ${bad.length} malformed line(s) in ${join(c.dir, "ops", "ops-1000.jsonl")}`), got.stderr);
});

test("blank lines are not malformed: no warning", async (t) => {
  const c = await setup(t);
  await writeStoreDir(c.dir, {
    snapshot: jsonlSnapshot([]),
    ops: "\n" + opLine({ id: "a", data: { v: 1 } }) + "\n\n\n" + opLine({ id: "b", data: { v: 2 } }) + "\n\n",
  });
  const got = openInChild(c.dir, { readOnly: true });
  assert.deepEqual(
    got.entries.map(([id]) => id),
    ["a", "b"],
  );
  assert.equal(got.ops, 2);
  assert.ok(!got.stderr.includes("malformed"), got.stderr);
});

test("a torn last line (crash mid-append) is skipped and the rest loads", async (t) => {
  const c = await setup(t);
  const full = opLine({ ts: "2024-01-01T00:00:02.000Z", id: "b", data: { v: 2, long: "x".repeat(100) } });
  await writeStoreDir(c.dir, {
    snapshot: jsonlSnapshot([]),
    ops: opLine({ id: "a", data: { v: 1 } }) + "\n" + full.slice(0, 60),
  });
  const got = openInChild(c.dir, { readOnly: true });
  assert.deepEqual(got.entries, [["a", { v: 1 }]]);
  assert.ok(got.stderr.includes(`opslog: skipped 1 malformed line(s) in ${join(c.dir, "ops", "ops-1000.jsonl")}`), got.stderr);
});

test("a writable open over malformed lines keeps the file as is and appends after it", async (t) => {
  const c = await setup(t);
  await writeStoreDir(c.dir, {
    snapshot: jsonlSnapshot([]),
    ops: [opLine({ id: "a", data: { v: 1 } }), "garbage"],
  });
  const code = `
    import { Store } from ${JSON.stringify(IMPL_URL)};
    const s = new Store();
    await s.open(${JSON.stringify(c.dir)}, { checkpointOnClose: false });
    await s.set("b", { v: 2 });
    await s.close();
  `;
  const res = runNode(code);
  assert.equal(res.status, 0, res.stderr);
  assert.ok(res.stderr.includes("skipped 1 malformed line(s)"), res.stderr);
  const { lines } = await readOps(c.dir);
  assert.equal(lines.length, 3);
  assert.equal(lines[1], "garbage");
  assert.equal(JSON.parse(lines[2]).id, "b");
  const s = await c.open({ readOnly: true });
  assert.deepEqual(
    s.entries().map(([id]) => id),
    ["a", "b"],
  );
});

