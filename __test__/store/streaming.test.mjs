// streamSnapshot() and getWalOps(since?): async generators over the current files.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { open as fsOpen } from "node:fs/promises";
import { join } from "node:path";
import { Store, isReference } from "../support/impl.mjs";
import { setup, readOps, writeStoreDir, jsonlSnapshot, opLine, sleep, refDefect, viaJsBackend, nodeArgv, collect } from "../support/helpers.mjs";

test("streamSnapshot and getWalOps return async generators", async (t) => {
  const c = await setup(t);
  const s = await c.open();
  for (const gen of [s.streamSnapshot(), s.getWalOps(), s.getWalOps("2020-01-01T00:00:00.000Z")]) {
    assert.equal(typeof gen[Symbol.asyncIterator], "function");
    assert.equal(gen[Symbol.asyncIterator](), gen);
    assert.equal(typeof gen.next, "function");
    assert.equal(typeof gen.return, "function");
    assert.equal(typeof gen.throw, "function");
    const p = gen.next();
    assert.ok(p instanceof Promise);
    assert.deepEqual(await p, { value: undefined, done: true });
  }
});

test("streamSnapshot yields [id, record] pairs of the snapshot in file order", async (t) => {
  const c = await setup(t);
  let s = await c.open();
  await s.set("b", { n: 2 });
  await s.set("a", { n: 1, nested: { x: [1] } });
  await s.set("10", { n: 10 });
  await s.set("2", { n: 20 });
  await s.close();
  s = await c.open();
  const gen = s.streamSnapshot();
  const first = await gen.next();
  assert.equal(first.done, false);
  assert.deepEqual(first.value, ["b", { n: 2 }]);
  const rest = await collect(gen);
  assert.deepEqual(rest, [
    ["a", { n: 1, nested: { x: [1] } }],
    ["10", { n: 10 }],
    ["2", { n: 20 }],
  ]);
});

test("streamSnapshot covers the snapshot only, not the ops since", async (t) => {
  const c = await setup(t);
  let s = await c.open();
  await s.set("a", { v: 1 });
  await s.close();
  s = await c.open();
  await s.set("b", { v: 2 });
  await s.set("a", { v: 10 });
  assert.deepEqual(await collect(s.streamSnapshot()), [["a", { v: 1 }]]);
  assert.deepEqual(
    (await collect(s.getWalOps())).map((o) => [o.id, o.data]),
    [
      ["b", { v: 2 }],
      ["a", { v: 10 }],
    ],
  );
});

test("getWalOps yields the current op file's ops; since is exclusive", async (t) => {
  const c = await setup(t);
  let s = await c.open({ checkpointOnClose: false });
  await s.set("a", { v: 1 });
  await sleep(4);
  await s.set("b", { v: 1 });
  await sleep(4);
  await s.set("a", { v: 2 });
  await sleep(4);
  await s.delete("b");
  const all = await collect(s.getWalOps());
  assert.deepEqual(all, s.getOps());
  assert.deepEqual(all, (await readOps(c.dir)).ops);
  assert.deepEqual(
    all.map(({ ts, ...o }) => o),
    [
      { op: "set", id: "a", prev: null, data: { v: 1 } },
      { op: "set", id: "b", prev: null, data: { v: 1 } },
      { op: "set", id: "a", prev: { v: 1 }, data: { v: 2 } },
      { op: "delete", id: "b", prev: { v: 1 } },
    ],
  );
  const since = all[1].ts;
  assert.deepEqual(
    (await collect(s.getWalOps(since))).map((o) => `${o.op}:${o.id}`),
    ["set:a", "delete:b"],
  );
  assert.deepEqual(await collect(s.getWalOps(all[3].ts)), []);
  assert.deepEqual((await collect(s.getWalOps(""))).length, 4, "an empty since means no filter");
  await s.close();
  s = await c.open({ readOnly: true });
  assert.deepEqual(await collect(s.getWalOps()), all);
});

test("getWalOps reflects undo", async (t) => {
  const c = await setup(t);
  const s = await c.open();
  await s.set("a", { v: 1 });
  await s.set("b", { v: 1 });
  await s.undo();
  assert.deepEqual(
    (await collect(s.getWalOps())).map((o) => o.id),
    ["a"],
  );
});

test("getWalOps skips malformed lines like the loader does", async (t) => {
  const c = await setup(t);
  await writeStoreDir(c.dir, {
    snapshot: jsonlSnapshot([]),
    ops: [opLine({ id: "a", data: { v: 1 } }), "not json", '{"ts":"x","op":"nope","id":"q","prev":null}', opLine({ ts: "2024-01-01T00:00:02.000Z", id: "b", data: { v: 2 } })],
  });
  const s = await c.open({ readOnly: true });
  assert.deepEqual(
    (await collect(s.getWalOps())).map((o) => o.id),
    ["a", "b"],
  );
});

test("getWalOps yields each op line as JSON.parse gives it, whatever its form and id", async (t) => {
  // Covers how op batches carry ops (the usual forms as values, built in JavaScript; any other
  // form whole) and ids (apart or in the JSON), over more ops than one batch holds.
  const forms = ["id-0000000", "é", "😀x", "\ud800", "a\"b\\c", "long-".repeat(5)];
  const lines = [];
  for (let i = 0; i < 5000; i++) {
    const id = `${forms[i % forms.length]}#${i}`;
    const ts = `2024-01-01T00:00:${String(i % 60).padStart(2, "0")}.${String(i % 1000).padStart(3, "0")}Z`;
    switch (i % 7) {
      case 0: lines.push(opLine({ ts, op: "delete", id, prev: { i } })); break;
      case 1: lines.push(JSON.stringify({ op: "set", ts, id, prev: null, data: { i } })); break;
      case 2: lines.push(JSON.stringify({ ts, op: "set", id, prev: null, data: { i }, agent: "x", clock: i })); break;
      case 3: lines.push(opLine({ ts, id, prev: { i: i - 1 }, data: { i: -0, s: "\u0041" }, encoding: "delta" })); break;
      case 4: lines.push(`{"ts":"${ts}","op":"set","id":${JSON.stringify(id)},"prev":null,"data":{"i":${i}},"extra":[1]}`); break;
      // (-0 only where the engine reads the file: a JavaScript backend hands ops over as
      // JSON.stringify text, which writes -0 as 0.)
      case 5: lines.push(`{"ts":"${ts}","op":"set","id":${JSON.stringify(id)},"prev":null,"data":{"i":${i}.0,"n":${viaJsBackend ? 0 : "-0"}}}`); break;
      default: lines.push(opLine({ ts, id, data: { i, nested: { a: [id] } } }));
    }
  }
  const c = await setup(t);
  await writeStoreDir(c.dir, { snapshot: jsonlSnapshot([]), ops: lines });
  const s = await c.open({ readOnly: true });
  assert.deepEqual(await collect(s.getWalOps()), lines.map((l) => JSON.parse(l)));
});

/** Op lines whose records cover every way an ops batch carries a record (engine::batch::Shapes). */
function recordLines() {
  const raw = [
    // Short strings (apart from the JSON) and their edges: UTF-16 lengths 0, 1, 2, 10 and 11,
    // non-ASCII and astral characters, escapes, a lone surrogate.
    `{"s":"","t":"é","u":"😀","v":"0123456789","w":"01234567890","x":"${"😀".repeat(5)}","y":"${"😀".repeat(6)}"}`,
    `{"s":"a\\"b","t":"\\n","u":"\\ud800","v":"\\u0041","w":"é\\u00e9"}`,
    // Keys: __proto__ (a property, as JSON.parse makes it), duplicates (the last value wins, at
    // the first one's place), array indices (ordered first), escapes, non-ASCII.
    `{"__proto__":{"x":1},"a":1}`,
    `{"a":1,"b":2,"a":3}`,
    `{"b":1,"2":2,"1":3,"a":4}`,
    `{"a\\u0062":1,"c":2}`,
    `{"é":1,"😀":"k"}`,
    // Whitespace, nesting, every kind of value, no keys, many keys.
    `{ "a" : 1 , "b":[ 1 ] }`,
    `{"o":{"p":{"q":[1,{"r":"s"}]}},"n":null,"t":true,"f":false,"x":1.5,"e":1e21,"m":-2}`,
    `{}`,
    JSON.stringify(Object.fromEntries(Array.from({ length: 40 }, (_, k) => [`k${k}`, k]))),
    JSON.stringify(Object.fromEntries(Array.from({ length: 32 }, (_, k) => [`k${k}`, "v"]))),
    `[1,2]`,
    `"text"`,
    `7`,
  ];
  const objects = raw.filter((r) => r.startsWith("{"));
  const lines = [];
  let ts = "2024-01-01T00:00:00.000Z";
  for (let i = 0; i < 3000; i++) {
    if (i % 5 === 0) ts = `2024-01-01T00:00:${String((i / 5) % 60).padStart(2, "0")}.${String(i % 1000).padStart(3, "0")}Z`;
    const id = JSON.stringify(`id-${i}`);
    // One shape for most records (its builder gets compiled), and more shapes than one batch
    // takes, some rare (their builders stay templates).
    const data =
      i % 3 === 0
        ? raw[i % raw.length]
        : i % 3 === 1
          ? JSON.stringify({ name: `name-${i}`, status: ["active", "done"][i % 2], value: i, tags: ["a"], note: "n".repeat(40) })
          : JSON.stringify({ [`k${i % 41}`]: i, same: "short" });
    // (A prev is an object or null, and not null for a delete.)
    const prev = objects[(i * 7) % objects.length];
    lines.push(
      i % 9 === 0
        ? `{"ts":"${ts}","op":"delete","id":${id},"prev":${prev}}`
        : `{"ts":"${ts}","op":"set","id":${id},"prev":${i % 4 === 0 ? "null" : prev},"data":${data}}`,
    );
  }
  return lines;
}

/** `actual` equals `expected` with its keys in the same order, at every level. */
function sameOps(actual, expected) {
  assert.deepEqual(actual, expected);
  for (let i = 0; i < expected.length; i++) assert.equal(JSON.stringify(actual[i]), JSON.stringify(expected[i]), `op ${i}`);
}

test("getWalOps builds each record as JSON.parse would, keys in the same order, whatever its shape", async (t) => {
  const lines = recordLines();
  const c = await setup(t);
  await writeStoreDir(c.dir, { snapshot: jsonlSnapshot([]), ops: lines });
  const s = await c.open({ readOnly: true });
  const expected = lines.map((l) => JSON.parse(l));
  sameOps(await collect(s.getWalOps()), expected);
  sameOps(await collect(s.getWalOps()), expected); // now with the builders compiled
});

test("getWalOps builds records where code generation from strings is disallowed", async (t) => {
  const lines = recordLines();
  const c = await setup(t);
  await writeStoreDir(c.dir, { snapshot: jsonlSnapshot([]), ops: lines });
  const code = `
    import { Store } from ${JSON.stringify(new URL("../support/impl.mjs", import.meta.url).href)};
    const s = new Store();
    await s.open(${JSON.stringify(c.dir)}, { readOnly: true });
    const ops = [];
    for (let round = 0; round < 2; round++) for await (const op of s.getWalOps()) ops.push(op);
    process.stdout.write(JSON.stringify(ops));
  `;
  const [cmd, ...args] = nodeArgv("--disallow-code-generation-from-strings", "--input-type=module", "-e", code);
  const child = spawn(cmd, args, {
    stdio: ["ignore", "pipe", "inherit"],
  });
  let out = "";
  child.stdout.setEncoding("utf8").on("data", (d) => (out += d));
  const status = await new Promise((resolve) => child.on("close", resolve));
  assert.equal(status, 0);
  assert.equal(out, JSON.stringify([...lines, ...lines].map((l) => JSON.parse(l))));
});

// A writer's own getWalOps in immediate mode is served from its op list, which mirrors the file;
// in every state it must be exactly what reading the file gives (the other modes read the file).
test("getWalOps is what the op file holds, in every write mode, across writes, batches, undo, a checkpoint and since", async (t) => {
  for (const writeMode of ["immediate", "group", "async"]) {
    const c = await setup(t);
    const s = await c.open({ writeMode, checkpointThreshold: 1e9, checkpointOnClose: false });
    const fromFile = async (since) => {
      await s.flush();
      const { ops } = await readOps(c.dir, s.getManifest().activeOps);
      return ops.filter((o) => o !== null && (since === undefined || o.ts > since));
    };
    const same = async (label, since) => {
      await s.flush();
      assert.deepEqual(await collect(s.getWalOps(since)), await fromFile(since), `${writeMode}: ${label}`);
    };
    await same("empty");
    await s.set("a", { v: 1 });
    await s.set("b", { v: "é ✓" });
    await s.set("a", { v: 2, long: "x".repeat(200) });
    await same("after sets");
    await s.batch(() => {
      s.set("c", { v: 3 });
      s.delete("b");
    });
    await s.delete("a");
    await same("after a batch and a delete");
    await s.undo();
    await same("after undo");
    const since = (await fromFile())[1].ts;
    await same("since the second op", since);
    await s.compact();
    await same("after a checkpoint");
    await s.set("d", { v: 4 });
    await same("after a write into the new file");
    await s.close();
  }
});

test("breaking out of a stream early is fine; the store keeps working", async (t) => {
  const c = await setup(t);
  let s = await c.open();
  for (let i = 0; i < 50; i++) await s.set(`k${i}`, { i });
  await s.close();
  s = await c.open({ checkpointOnClose: false });
  for (let i = 0; i < 5; i++) await s.set(`w${i}`, { i });
  let n = 0;
  for await (const [id] of s.streamSnapshot()) {
    assert.equal(id, "k0");
    n++;
    break;
  }
  for await (const op of s.getWalOps()) {
    assert.equal(op.id, "w0");
    n++;
    break;
  }
  assert.equal(n, 2);
  const gen = s.streamSnapshot();
  await gen.next();
  assert.deepEqual(await gen.return("x"), { value: "x", done: true });
  assert.deepEqual(await gen.next(), { value: undefined, done: true });
  await s.set("after", { ok: true });
  await s.close();
});

test("two streams can be consumed interleaved", async (t) => {
  const c = await setup(t);
  let s = await c.open();
  for (let i = 0; i < 20; i++) await s.set(`k${i}`, { i });
  await s.close();
  s = await c.open();
  const g1 = s.streamSnapshot();
  const g2 = s.streamSnapshot();
  for (let i = 0; i < 20; i++) {
    assert.deepEqual((await g1.next()).value, [`k${i}`, { i }]);
    assert.deepEqual((await g2.next()).value, [`k${i}`, { i }]);
  }
  assert.equal((await g1.next()).done, true);
  assert.equal((await g2.next()).done, true);
});

test("a large snapshot streams completely and in order", async (t) => {
  const c = await setup(t);
  const N = 20000;
  const entries = [];
  for (let i = 0; i < N; i++) entries.push([`id-${i}`, { i, s: "é".repeat(i % 7) }]);
  await writeStoreDir(c.dir, { snapshot: jsonlSnapshot(entries) });
  const s = await c.open({ skipLoad: true });
  let i = 0;
  for await (const [id, rec] of s.streamSnapshot()) {
    assert.equal(id, `id-${i}`);
    assert.equal(rec.i, i);
    i++;
  }
  assert.equal(i, N);
});

test("ids of every form stream, and open into the store, exactly as written", async (t) => {
  // Covers how stream batches carry ids (plain ones apart from the JSON, escaped ones in it):
  // escapes interleaved with plain ids, non-ASCII and astral characters, lone surrogates, ids
  // long enough to be sliced strings, and more records than one batch holds.
  const forms = ["id-0000000", "é", "😀x", "\ud800", "a\"b\\c", "line\nbreak", "long-".repeat(5), "ü".repeat(12), "\u2028"];
  const entries = [];
  for (let i = 0; i < 5000; i++) entries.push([`${forms[i % forms.length]}#${i}`, { i }]);
  const c = await setup(t);
  await writeStoreDir(c.dir, { snapshot: jsonlSnapshot(entries) });
  const s = await c.open();
  assert.deepEqual(await collect(s.streamSnapshot()), entries);
  assert.deepEqual(s.entries(), entries);
});

test("streaming before open: the first next() rejects with the not-open error", async (t) => {
  const c = await setup(t);
  const s = c.store();
  const g = s.streamSnapshot();
  await assert.rejects(g.next(), { message: "Store is not open. Call open() first." });
  const w = s.getWalOps();
  await assert.rejects(w.next(), { message: "Store is not open. Call open() first." });
});

// --- SPEC 7.2: follow checkpoints ---

test("streamSnapshot after compact streams the new snapshot (SPEC 7.2)", { skip: refDefect(2) }, async (t) => {
  const c = await setup(t);
  const s = await c.open();
  await s.set("a", { v: 1 });
  await s.set("b", { v: 2 });
  await sleep(3);
  await s.compact();
  assert.deepEqual(await collect(s.streamSnapshot()), [
    ["a", { v: 1 }],
    ["b", { v: 2 }],
  ]);
  await s.set("c", { v: 3 });
  await s.delete("a");
  await sleep(3);
  await s.compact();
  assert.deepEqual(await collect(s.streamSnapshot()), [
    ["b", { v: 2 }],
    ["c", { v: 3 }],
  ]);
});

test("getWalOps after a checkpoint yields only the ops since it (SPEC 7.2)", { skip: refDefect(2) }, async (t) => {
  const c = await setup(t);
  const s = await c.open({ checkpointThreshold: 3 });
  await s.set("a", { v: 1 });
  await sleep(3);
  await s.compact();
  assert.deepEqual(await collect(s.getWalOps()), []);
  await s.set("b", { v: 1 });
  assert.deepEqual(
    (await collect(s.getWalOps())).map((o) => o.id),
    ["b"],
  );
  await s.set("c", { v: 1 });
  await sleep(3);
  await s.set("d", { v: 1 }); // third op: automatic checkpoint
  assert.equal(s.stats().opsCount, 0);
  await s.set("e", { v: 1 });
  assert.deepEqual(
    (await collect(s.getWalOps())).map((o) => o.id),
    ["e"],
  );
  assert.deepEqual(
    (await collect(s.streamSnapshot())).map(([id]) => id),
    ["a", "b", "c", "d"],
  );
});

// --- SPEC 7.1: bounded memory ---
//
// The observable: files larger than a JavaScript string can hold (V8's limit is ~512 MiB). The
// reference reads the whole file into one string before yielding anything, so it fails (snapshot)
// or silently yields nothing (op file); a streaming reader yields the first items at once. The
// files are sparse (a few valid lines, then 600 MiB of holes with a newline every MiB) so they
// cost no disk space, and skipLoad keeps open() from reading them. Only the first items are
// consumed, then the generator is closed.

const HUGE = 600 * 1024 * 1024;

async function makeHuge(path, head) {
  const fh = await fsOpen(path, "w");
  try {
    await fh.write(head, 0);
    await fh.truncate(HUGE);
    for (let off = 1 << 20; off < HUGE; off += 1 << 20) await fh.write("\n", off);
  } finally {
    await fh.close();
  }
}

const noStreamingBackend = viaJsBackend && "a JavaScript StorageBackend can only load whole files";
test("streamSnapshot streams a snapshot bigger than the largest JS string (SPEC 7.1)", { skip: refDefect(1) || noStreamingBackend }, async (t) => {
  const c = await setup(t);
  await writeStoreDir(c.dir, { snapshot: "" });
  await makeHuge(join(c.dir, "snapshots", "snap-1000.jsonl"), jsonlSnapshot([
    ["first", { n: 1 }],
    ["second", { n: 2 }],
  ]));
  const s = await c.open({ skipLoad: true });
  const gen = s.streamSnapshot();
  const rss = process.memoryUsage().rss;
  assert.deepEqual(await gen.next(), { value: ["first", { n: 1 }], done: false });
  assert.deepEqual(await gen.next(), { value: ["second", { n: 2 }], done: false });
  const grown = process.memoryUsage().rss - rss;
  await gen.return();
  // The first records come from the file's head, not from a copy of the whole file.
  assert.ok(grown < 64 * 2 ** 20, `the first two records took ${(grown / 2 ** 20).toFixed(1)} MB`);
});

test("getWalOps streams an op file bigger than the largest JS string (SPEC 7.1)", { skip: refDefect(1) || noStreamingBackend }, async (t) => {
  const c = await setup(t);
  await writeStoreDir(c.dir, { snapshot: jsonlSnapshot([]) });
  const head =
    opLine({ ts: "2024-01-01T00:00:01.000Z", id: "w1", data: { n: 1 } }) + "\n" + opLine({ ts: "2024-01-01T00:00:02.000Z", id: "w2", data: { n: 2 } }) + "\n";
  await makeHuge(join(c.dir, "ops", "ops-1000.jsonl"), head);
  const s = await c.open({ skipLoad: true });
  const gen = s.getWalOps();
  assert.deepEqual(await gen.next(), {
    value: { ts: "2024-01-01T00:00:01.000Z", op: "set", id: "w1", prev: null, data: { n: 1 } },
    done: false,
  });
  assert.equal((await gen.next()).value.id, "w2");
  await gen.return();
  // the since filter streams too
  const gen2 = s.getWalOps("2024-01-01T00:00:01.000Z");
  assert.equal((await gen2.next()).value.id, "w2");
  await gen2.return();
});

