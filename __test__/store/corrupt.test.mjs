// Corrupt files in the data directory: a manifest that is not JSON or fails validation, a missing
// or truncated snapshot, garbage in an op file, a .lock with junk in it. Each must give either a
// rejection whose message names the file, or a documented recovery with every valid record still
// there; never a crash, never silent loss of valid data, and a refused open changes no file.
//
// Each scenario builds a small store by hand (snapshot a, b, c; ops: create d, update a), corrupts
// one file, and opens it read-only and writable. The same scenario is run against the reference
// (@backloghq/opslog 0.8.1, in this process) and its outcome printed as a diagnostic, to compare.
//
// The second part covers SPEC 7.6 inside batch(): the cases validation.test.mjs does not
// (toJSON that gives a non-object, boxed primitives, symbols, a bad call caught inside the batch
// function, the buffered write modes, multi-writer).
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFile, writeFile, unlink, mkdir, readdir, utimes, stat } from "node:fs/promises";
import { join, relative } from "node:path";
import * as reference from "@backloghq/opslog";
import { Store, isReference } from "../support/impl.mjs";
import {
  setup,
  writeStoreDir,
  jsonlSnapshot,
  opLine,
  deadPid,
  runNode,
  IMPL_URL,
  readOps,
  readManifest,
  refDefect,
  withTestBackend,
  viaJsBackend,
  assertTypeError,
} from "../support/helpers.mjs";

// With a JavaScript StorageBackend the backend itself reads and parses the files (and takes the
// lock): these scenarios are about the engine's own file handling.
const filesSkip = viaJsBackend ? "a JavaScript backend parses the files itself" : false;
// Most of these describe where we do better than the reference (a message naming the file, no
// data read from outside the directory, no lock left behind by a refused open): skipped when
// OPSLOG_IMPL=reference, unless OPSLOG_UNSKIP_DEFECTS=1 (they fail there). Scenarios marked
// `refOk` hold for the reference too.
const oursOnly =
  isReference && !process.env.OPSLOG_UNSKIP_DEFECTS ? "the reference gives an unclear error or loses data here (its outcome is printed when running ours)" : false;

// --- the store every scenario starts from -------------------------------------------------------

const SNAP = "snapshots/snap-1000.jsonl";
const OPS = "ops/ops-1000.jsonl";
const BASE_SNAPSHOT = [
  ["a", { v: 1 }],
  ["b", { v: 2 }],
  ["c", { v: 3 }],
];
const BASE_OPS = [
  opLine({ ts: "2024-01-01T00:00:01.000Z", id: "d", data: { v: 4 } }),
  opLine({ ts: "2024-01-01T00:00:02.000Z", id: "a", prev: { v: 1 }, data: { v: 10 } }),
];
/** The state of the intact base store. */
const FULL = { a: { v: 10 }, b: { v: 2 }, c: { v: 3 }, d: { v: 4 } };
/** The state from the snapshot alone. */
const SNAPSHOT_ONLY = { a: { v: 1 }, b: { v: 2 }, c: { v: 3 } };

async function base(dir) {
  await writeStoreDir(dir, {
    snapshot: jsonlSnapshot(BASE_SNAPSHOT),
    ops: BASE_OPS,
    manifest: {
      stats: {
        activeRecords: 3,
        archivedRecords: 0,
        opsCount: 2,
        created: "2024-01-01T00:00:00.000Z",
        lastCheckpoint: "2024-01-01T00:00:00.000Z",
      },
    },
  });
}

const at = (dir, rel) => join(dir, rel);
async function editManifest(dir, fn) {
  const m = JSON.parse(await readFile(at(dir, "manifest.json"), "utf8"));
  fn(m);
  await writeFile(at(dir, "manifest.json"), JSON.stringify(m, null, 2));
}
async function editLines(dir, rel, fn) {
  const lines = (await readFile(at(dir, rel), "utf8")).split("\n");
  fn(lines);
  await writeFile(at(dir, rel), lines.join("\n"));
}
async function setLock(dir, content) {
  await writeFile(at(dir, ".lock"), content);
  // An empty lock file younger than a second counts as one being written by its owner; age it.
  const old = new Date(Date.now() - 60_000);
  await utimes(at(dir, ".lock"), old, old);
}

/** Every file under `dir` (relative path -> bytes as hex), `.lock` included. */
async function dirBytes(dir) {
  const out = {};
  async function walk(d) {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) {
        out[relative(dir, p) + "/"] = "dir";
        await walk(p);
      } else out[relative(dir, p)] = (await readFile(p)).toString("hex");
    }
  }
  await walk(dir);
  return out;
}

const asObject = (entries) => Object.fromEntries(entries);

async function rejection(promise) {
  try {
    await promise;
  } catch (e) {
    return e;
  }
  return null;
}

// --- the reference, for comparison ------------------------------------------------------------

/** What the reference does with the scenario: read-only open, then writable open + set + reopen. */
async function referenceOutcome(sc, dir) {
  const parts = [];
  const describe = (e) => `rejects ${e?.constructor?.name}: ${String(e?.message).replaceAll(dir, "<dir>").slice(0, 160)}`;
  const summary = (entries) => {
    const o = asObject(entries);
    const lost = Object.keys(sc.valid ?? FULL).filter((k) => JSON.stringify(o[k]) !== JSON.stringify((sc.valid ?? FULL)[k]));
    return `opens with ${entries.length} records${lost.length ? ` (valid records missing or wrong: ${lost.join(",")})` : " (all valid data)"}`;
  };
  const r = new reference.Store();
  try {
    await r.open(dir, { readOnly: true, ...sc.opts });
    parts.push(`readOnly ${summary(r.entries())}`);
    await r.close();
  } catch (e) {
    parts.push(`readOnly ${describe(e)}`);
  }
  const w = new reference.Store();
  try {
    await w.open(dir, { checkpointOnClose: false, ...sc.opts });
    parts.push(`writable ${summary(w.entries())}`);
    await w.close();
  } catch (e) {
    parts.push(`writable ${describe(e)}`);
  }
  return parts.join("; ");
}

// --- the scenarios ----------------------------------------------------------------------------
//
// expect: { reject: [substrings the message must contain] }
//      or { entries: {...} }  the open succeeds and shows exactly these records (readOnly and
//                             writable); then a write, close and reopen keep them all
// warn: a substring that stderr must contain (checked in a child process, read-only open)
// todo: why ours fails it (a known shortfall, see the report)

const sc = (group, name, build, expect, more = {}) => ({ group, name, build, expect, ...more });
const MANIFEST = "manifest.json";

const SCENARIOS = [
  // manifest.json
  sc("manifest", "empty file", async (d) => writeFile(at(d, MANIFEST), ""), { reject: [MANIFEST] }),
  sc("manifest", "not JSON", async (d) => writeFile(at(d, MANIFEST), "{not json"), { reject: [MANIFEST] }),
  sc(
    "manifest",
    "truncated JSON (a torn write)",
    async (d) => writeFile(at(d, MANIFEST), (await readFile(at(d, MANIFEST), "utf8")).slice(0, 60)),
    { reject: [MANIFEST] },
  ),
  sc("manifest", "a JSON array", async (d) => writeFile(at(d, MANIFEST), "[]"), { reject: [MANIFEST] }),
  sc("manifest", "JSON null", async (d) => writeFile(at(d, MANIFEST), "null"), { reject: [MANIFEST] }),
  sc("manifest", "a byte-order mark before the JSON", async (d) => writeFile(at(d, MANIFEST), "\ufeff" + (await readFile(at(d, MANIFEST), "utf8"))), {
    reject: [MANIFEST],
  }),
  ...[
    ["missing version", (m) => delete m.version],
    ["missing currentSnapshot", (m) => delete m.currentSnapshot],
    ["missing activeOps", (m) => delete m.activeOps],
    ["missing archiveSegments", (m) => delete m.archiveSegments],
    ["missing stats", (m) => delete m.stats],
    ["missing stats.created", (m) => delete m.stats.created],
    ['version "1" (a string)', (m) => (m.version = "1")],
    ["version 0", (m) => (m.version = 0)],
    ["currentSnapshot a number", (m) => (m.currentSnapshot = 5)],
    ["activeOps a number", (m) => (m.activeOps = 5)],
    ["archiveSegments a string", (m) => (m.archiveSegments = "x")],
    ["archiveSegments [5]", (m) => (m.archiveSegments = [5])],
    ["stats a string", (m) => (m.stats = "x")],
    ['stats.activeRecords "x"', (m) => (m.stats.activeRecords = "x")],
    ["stats.opsCount -1", (m) => (m.stats.opsCount = -1)],
  ].map(([name, fn]) => sc("manifest", name, (d) => editManifest(d, fn), { reject: [MANIFEST] })),
  // Paths that leave the directory: the manifest is the corrupt file.
  ...[
    ['currentSnapshot "../x.jsonl"', (m) => (m.currentSnapshot = "../x.jsonl"), "../x.jsonl"],
    ['currentSnapshot "snapshots/../../x.jsonl"', (m) => (m.currentSnapshot = "snapshots/../../x.jsonl"), "snapshots/../../x.jsonl"],
    ["currentSnapshot an absolute path", (m) => (m.currentSnapshot = "/etc/hostname"), "/etc/hostname"],
    ['activeOps "../ops-x.jsonl"', (m) => (m.activeOps = "../ops-x.jsonl"), "../ops-x.jsonl"],
  ].map(([name, fn, path]) =>
    sc("manifest", `path outside the directory: ${name}`, (d) => editManifest(d, fn), { reject: [MANIFEST, path] })
  ),
  sc(
    "manifest",
    'path outside the directory: activeAgentOps {x: "../agent-x.jsonl"} (multi-writer open)',
    (d) => editManifest(d, (m) => (m.activeAgentOps = { x: "../agent-x.jsonl" })),
    { reject: [MANIFEST, "../agent-x.jsonl"] },
    { opts: { agentId: "me" } },
  ),
  sc(
    "manifest",
    "names a snapshot that does not exist",
    (d) => editManifest(d, (m) => (m.currentSnapshot = "snapshots/snap-2000.jsonl")),
    { reject: ["snapshots/snap-2000.jsonl"] },
  ),
  sc(
    "manifest",
    "is a directory",
    async (d) => {
      await unlink(at(d, MANIFEST));
      await mkdir(at(d, MANIFEST));
    },
    { reject: [MANIFEST] },
  ),

  // the snapshot
  sc("snapshot", "missing", (d) => unlink(at(d, SNAP)), { reject: [SNAP] }),
  sc("snapshot", "empty file", (d) => writeFile(at(d, SNAP), ""), { reject: [SNAP] }),
  sc(
    "snapshot",
    "truncated mid-line (last record cut)",
    async (d) => {
      const t = await readFile(at(d, SNAP), "utf8");
      await writeFile(at(d, SNAP), t.slice(0, t.length - 8));
    },
    { reject: [SNAP] },
  ),
  sc("snapshot", "truncated inside the header line", (d) => writeFile(at(d, SNAP), '{"version":1,"timest'), { reject: [SNAP] }),
  sc("snapshot", "a garbage line between records", (d) => editLines(d, SNAP, (l) => l.splice(2, 0, "garbage!!")), { reject: [SNAP] }),
  sc("snapshot", "a record line whose id is not a string", (d) => editLines(d, SNAP, (l) => l.splice(2, 0, '{"id":5,"data":{"v":5}}')), {
    reject: [SNAP],
  }),
  sc("snapshot", "a record line without data", (d) => editLines(d, SNAP, (l) => l.splice(2, 0, '{"id":"q"}')), { reject: [SNAP] }),
  sc("snapshot", "header line is not JSON", (d) => editLines(d, SNAP, (l) => (l[0] = "xyz")), { reject: [SNAP] }),
  sc("snapshot", "header line is a JSON array", (d) => editLines(d, SNAP, (l) => (l[0] = "[1,2]")), { reject: [SNAP] }),
  sc("snapshot", "header line is a number", (d) => editLines(d, SNAP, (l) => (l[0] = "42")), { reject: [SNAP] }),
  sc(
    "snapshot",
    "legacy one-object form, truncated",
    (d) => writeFile(at(d, SNAP), '{"version":1,"timestamp":"2024-01-01T00:00:00.000Z","records":{"a":{"v":1},"b":{"v'),
    { reject: [SNAP] },
  ),
  // A header of another shape still reads (documented: a header whose version is not a number
  // reads as version 1).
  sc("snapshot", 'header {"hello":1} (no version)', (d) => editLines(d, SNAP, (l) => (l[0] = '{"hello":1}')), { entries: FULL }),
  // The header line is gone: the first line is a record. Taking it for the header drops record a
  // without a word; it must be read as a record or refused.
  sc(
    "snapshot",
    "header line missing (first line is a record)",
    async (d) => {
      await writeStoreDir(d, { snapshot: jsonlSnapshot([["first", { v: 0 }], ...BASE_SNAPSHOT]).split("\n").slice(1).join("\n"), ops: BASE_OPS });
    },
    { entriesOrReject: { entries: { first: { v: 0 }, ...FULL }, reject: [SNAP] } },
    { valid: { first: { v: 0 }, ...FULL } },
  ),
  sc(
    "snapshot",
    "is a directory",
    async (d) => {
      await unlink(at(d, SNAP));
      await mkdir(at(d, SNAP));
    },
    { reject: [SNAP] },
  ),

  // the op file
  sc("op file", "a garbage line between ops (skipped with a warning)", (d) => editLines(d, OPS, (l) => l.splice(1, 0, "garbage!!")), { entries: FULL }, {
    warn: `skipped 1 malformed line(s) in`,
    warnFile: OPS,
    refOk: true,
  }),
  sc(
    "op file",
    "a line of binary garbage between ops (skipped with a warning)",
    async (d) => {
      const lines = BASE_OPS.map((l) => Buffer.from(l + "\n"));
      await writeFile(at(d, OPS), Buffer.concat([lines[0], Buffer.from([0xff, 0xfe, 0x00, 0x80, 0x0a]), lines[1]]));
    },
    { entries: FULL },
    { warn: "skipped 1 malformed line(s) in", warnFile: OPS, refOk: true },
  ),
  sc(
    "op file",
    "a torn last line (recovery: ignored)",
    async (d) => writeFile(at(d, OPS), (await readFile(at(d, OPS), "utf8")) + opLine({ id: "e", data: { v: 5, pad: "x".repeat(50) } }).slice(0, 40)),
    { entries: FULL },
    { refOk: true },
  ),
  sc(
    "op file",
    "NUL bytes after the last op (a torn, preallocated tail)",
    async (d) => writeFile(at(d, OPS), Buffer.concat([await readFile(at(d, OPS)), Buffer.alloc(64)])),
    { entries: FULL },
    { refOk: true },
  ),
  // A missing op file reads as empty (the reference does the same; a JavaScript backend may
  // create op files lazily): the snapshot's state, and writes go on.
  sc("op file", "missing (recovery: the snapshot's state)", (d) => unlink(at(d, OPS)), { entries: SNAPSHOT_ONLY }, { valid: SNAPSHOT_ONLY, refOk: true }),
  sc(
    "op file",
    "non-UTF-8 bytes inside a string of an op line",
    async (d) => {
      const bad = Buffer.concat([
        Buffer.from('{"ts":"2024-01-01T00:00:03.000Z","op":"set","id":"e","prev":null,"data":{"t":"'),
        Buffer.from([0xff, 0xfe]),
        Buffer.from('"}}\n'),
      ]);
      const after = Buffer.from(opLine({ ts: "2024-01-01T00:00:04.000Z", id: "f", data: { v: 6 } }) + "\n");
      await writeFile(at(d, OPS), Buffer.concat([await readFile(at(d, OPS)), bad, after]));
    },
    // e's bytes are not text: it may be skipped or kept with U+FFFD; everything else is there.
    { entriesAtLeast: { ...FULL, f: { v: 6 } } },
    { valid: { ...FULL, f: { v: 6 } }, refOk: true },
  ),
  sc(
    "op file",
    "is a directory",
    async (d) => {
      await unlink(at(d, OPS));
      await mkdir(at(d, OPS));
    },
    { reject: [OPS] },
  ),

  // the .lock
  sc("lock", "junk text (stale: taken)", (d) => setLock(d, "not a pid at all"), { entries: FULL }, { lockTaken: true, refOk: true }),
  sc("lock", "empty (stale: taken)", (d) => setLock(d, ""), { entries: FULL }, { lockTaken: true, refOk: true }),
  sc("lock", "a dead process's pid (stale: taken)", (d) => setLock(d, String(deadPid())), { entries: FULL }, { lockTaken: true, refOk: true }),
  sc("lock", 'pid "0" (no such writer: taken)', (d) => setLock(d, "0"), { entries: FULL }, { lockTaken: true }),
  sc("lock", 'pid "-1" (no such writer: taken)', (d) => setLock(d, "-1"), { entries: FULL }, { lockTaken: true }),
  sc(
    "lock",
    "binary junk, not UTF-8 (stale like text junk: taken)",
    (d) => setLock(d, Buffer.from([0xff, 0xfe, 0x00, 0x80, 0x31])),
    { entries: FULL },
    { lockTaken: true, refOk: true },
  ),
  sc(
    "lock",
    "a live process's pid (our parent): writers refused, readers fine",
    (d) => setLock(d, String(process.ppid)),
    { writableReject: [".lock", `process ${process.ppid}`], entries: FULL },
    { refOk: true },
  ),
  sc(
    "lock",
    "is a directory",
    (d) => mkdir(at(d, ".lock")),
    { writableReject: [".lock"], entries: FULL },
    { refSkip: "the reference's open never returns (it loops on the directory)" },
  ),
];

// --- running a scenario -------------------------------------------------------------------------

function assertNames(err, files, what) {
  assert.ok(err instanceof Error, `${what}: expected a rejection with an Error, got ${err === null ? "success" : String(err)}`);
  for (const f of files) assert.ok(err.message.includes(f), `${what}: the message names ${f}: ${JSON.stringify(err.message)}`);
}

function assertEntries(entries, s, what) {
  const got = asObject(entries);
  if (s.expect.entriesAtLeast) {
    for (const [k, v] of Object.entries(s.expect.entriesAtLeast)) assert.deepEqual(got[k], v, `${what}: valid record ${k}`);
  } else {
    assert.deepEqual(got, s.expect.entries ?? s.expect.entriesOrReject.entries, what);
  }
}

async function runScenario(t, s) {
  const c = await setup(t);
  await base(c.dir);
  await s.build(c.dir);
  const before = await dirBytes(c.dir);
  const { expect } = s;

  // readOnly
  if (expect.reject) {
    const err = await rejection(c.store().open(c.dir, withTestBackend({ readOnly: true, ...s.opts })));
    assertNames(err, expect.reject, "readOnly open");
  } else {
    let r;
    try {
      r = await c.open({ readOnly: true, ...s.opts });
    } catch (err) {
      if (!expect.entriesOrReject) throw err;
      assertNames(err, expect.entriesOrReject.reject, "readOnly open");
    }
    if (r) {
      assertEntries(r.entries(), s, "readOnly open");
      await r.close();
    }
  }
  assert.deepEqual(await dirBytes(c.dir), before, "a read-only open changes no file");

  // writable
  const reject = expect.reject ?? expect.writableReject;
  if (reject) {
    const err = await rejection(c.store().open(c.dir, withTestBackend({ ...s.opts })));
    assertNames(err, reject, "writable open");
    assert.deepEqual(await dirBytes(c.dir), before, "a refused open changes no file");
    return;
  }
  let w;
  try {
    w = await c.open({ ...s.opts });
  } catch (err) {
    if (!expect.entriesOrReject) throw err;
    assertNames(err, expect.entriesOrReject.reject, "writable open");
    assert.deepEqual(await dirBytes(c.dir), before, "a refused open changes no file");
    return;
  }
  assertEntries(w.entries(), s, "writable open");
  if (s.lockTaken) assert.equal(await readFile(at(c.dir, ".lock"), "utf8"), String(process.pid), "the stale lock was taken over");
  const expected = asObject(w.entries());
  await w.set("new", { v: 99 });
  await w.close();
  const r2 = await c.open({ readOnly: true, ...s.opts });
  assert.deepEqual(asObject(r2.entries()), { ...expected, new: { v: 99 } }, "after a write, close and reopen every record is there");
  await r2.close();
}

for (const s of SCENARIOS) {
  const skip = filesSkip || (isReference && s.refSkip ? `reference: ${s.refSkip}` : false) || (!s.refOk && oursOnly);
  test(`corrupt ${s.group}: ${s.name}`, { skip, todo: s.todo }, async (t) => {
    try {
      await runScenario(t, s);
    } finally {
      if (!isReference && !s.refSkip) {
        const c = await setup(t);
        await base(c.dir);
        await s.build(c.dir);
        t.diagnostic(`reference: ${await referenceOutcome(s, c.dir)}`);
      } else if (s.refSkip) t.diagnostic(`reference: not run (${s.refSkip})`);
    }
  });
}

// --- warnings on stderr (native code writes them: checked in a child process) ------------------

function openInChild(dir, opts) {
  const code = `
    import { Store } from ${JSON.stringify(IMPL_URL)};
    import { withTestBackend } from ${JSON.stringify(new URL("../support/helpers.mjs", import.meta.url).href)};
    const s = new Store();
    await s.open(${JSON.stringify(dir)}, withTestBackend(${JSON.stringify(opts)}));
    process.stdout.write(JSON.stringify(s.entries()));
    await s.close();
  `;
  const res = runNode(code);
  assert.equal(res.status, 0, `the child exits normally: ${res.stderr}`);
  return { entries: JSON.parse(res.stdout), stderr: res.stderr };
}

for (const s of SCENARIOS.filter((x) => x.warn)) {
  test(`corrupt ${s.group}: ${s.name}: stderr warns, naming the file`, { skip: filesSkip }, async (t) => {
    const c = await setup(t);
    await base(c.dir);
    await s.build(c.dir);
    const got = openInChild(c.dir, { readOnly: true });
    assertEntries(got.entries, s, "readOnly open in a child");
    assert.ok(got.stderr.includes(`${s.warn} ${join(c.dir, s.warnFile)}`), got.stderr);
  });
}

// Recoveries that keep every valid record: whatever was in the missing or damaged part is gone,
// so a warning naming the file (or a refusal) is expected. The last item says what a silent
// recovery would hide (the reference opens all of these without a word).
const SILENT = [
  [
    "op file missing: the ops it held are gone",
    (d) => unlink(at(d, OPS)),
    OPS,
    "a manifest naming a missing op file opens with the snapshot's state without a word",
  ],
  [
    "op file with non-UTF-8 bytes in a line",
    async (d) => {
      const bad = Buffer.concat([
        Buffer.from('{"ts":"2024-01-01T00:00:03.000Z","op":"set","id":"e","prev":null,"data":{"t":"'),
        Buffer.from([0xff, 0xfe]),
        Buffer.from('"}}\n'),
      ]);
      await writeFile(at(d, OPS), Buffer.concat([await readFile(at(d, OPS)), bad]));
    },
    OPS,
    "the line is loaded with U+FFFD in place of the bytes, without a word (the reference does the same)",
  ],
  [
    "snapshot with non-UTF-8 bytes in a record",
    async (d) => {
      const bad = Buffer.concat([Buffer.from('{"id":"z","data":{"t":"'), Buffer.from([0xff, 0xfe]), Buffer.from('"}}\n')]);
      await writeFile(at(d, SNAP), Buffer.concat([await readFile(at(d, SNAP)), bad]));
    },
    SNAP,
    "the record is loaded with U+FFFD in place of the bytes, without a word (the reference does the same)",
  ],
  [
    "snapshot truncated at a line boundary (the manifest says 3 records, the file holds 2)",
    (d) => editLines(d, SNAP, (l) => l.splice(3, 1)),
    SNAP,
    "record c is gone without a word, though manifest.stats.activeRecords says 3 (the reference does the same)",
  ],
  [
    "snapshot holding only its header (the manifest says 3 records)",
    (d) => writeFile(at(d, SNAP), '{"version":1,"timestamp":"2024-01-01T00:00:00.000Z"}\n'),
    SNAP,
    "every snapshot record is gone without a word, though manifest.stats.activeRecords says 3",
  ],
];

for (const [name, build, file, risk] of SILENT) {
  test(`corrupt ${name}: refused or warned about, naming the file`, { skip: filesSkip || oursOnly }, async (t) => {
    const c = await setup(t);
    await base(c.dir);
    await build(c.dir);
    const code = `
      import { Store } from ${JSON.stringify(IMPL_URL)};
      const s = new Store();
      try {
        await s.open(${JSON.stringify(c.dir)}, { readOnly: true });
        process.stdout.write(JSON.stringify({ entries: s.entries() }));
      } catch (e) {
        process.stdout.write(JSON.stringify({ error: e.message }));
      }
    `;
    const res = runNode(code);
    assert.equal(res.status, 0, `no crash: ${res.stderr}`);
    const out = JSON.parse(res.stdout);
    if (out.error !== undefined) assert.ok(out.error.includes(file), `the rejection names ${file}: ${out.error}`);
    else assert.ok(res.stderr.includes(file), `${risk}: opened (${out.entries.length} records) without a warning naming ${file}; stderr: ${JSON.stringify(res.stderr)}`);
  });
}

// --- scenarios that need more than an open ----------------------------------------------------

test("corrupt op file: a torn last line is cut on a writable open and the next write starts on a clean line", { skip: filesSkip || oursOnly }, async (t) => {
  const c = await setup(t);
  await base(c.dir);
  const intact = await readFile(at(c.dir, OPS), "utf8");
  await writeFile(at(c.dir, OPS), intact + opLine({ id: "e", data: { v: 5 } }).slice(0, 30));
  const s = await c.open({ checkpointOnClose: false });
  await s.set("f", { v: 6 });
  await s.close();
  const { lines, ops } = await readOps(c.dir, OPS);
  assert.ok(ops.every((o) => o !== null), `every line of the op file parses: ${JSON.stringify(lines)}`);
  assert.deepEqual(
    ops.map((o) => o.id),
    ["d", "a", "f"],
  );
  const r = await c.open({ readOnly: true });
  assert.deepEqual(asObject(r.entries()), { ...FULL, f: { v: 6 } });
});

test("corrupt op file: garbage in the middle survives a writable session; the valid ops on both sides stay", { skip: filesSkip }, async (t) => {
  const c = await setup(t);
  await base(c.dir);
  await editLines(c.dir, OPS, (l) => l.splice(1, 0, "garbage!!"));
  const s = await c.open({ checkpointOnClose: false });
  assert.deepEqual(asObject(s.entries()), FULL);
  await s.set("e", { v: 5 });
  assert.equal(await s.undo(), true, "undo takes back our own op, not the garbage or an op before it");
  await s.set("f", { v: 6 });
  await s.close();
  const r = await c.open({ readOnly: true });
  assert.deepEqual(asObject(r.entries()), { ...FULL, f: { v: 6 } });
});

test("corrupt manifest: an archive segment path outside the directory is never read", { skip: filesSkip || oursOnly }, async (t) => {
  const c = await setup(t);
  await base(c.dir);
  // A segment outside the store directory (in the test dir's parent would leave the sandbox: use a
  // sibling sub directory of our own temp dir).
  const store = c.sub("store");
  await base(store);
  await mkdir(c.sub("outside"));
  await writeFile(c.sub("outside/archive-evil.json"), JSON.stringify({ version: 1, period: "evil", timestamp: "x", records: { evil: { v: 1 } } }));
  await editManifest(store, (m) => (m.archiveSegments = ["../outside/archive-evil.json"]));
  let r;
  try {
    r = await c.open({ readOnly: true }, store);
  } catch (err) {
    assertNames(err, [MANIFEST], "readOnly open");
    return;
  }
  assert.deepEqual(asObject(r.entries()), FULL);
  const err = await rejection(r.loadArchive("evil"));
  assert.ok(err instanceof Error, "loading the segment is refused (the reference reads the file outside the directory)");
});

test("corrupt archive segment: loadArchive names the file", { skip: filesSkip || oursOnly }, async (t) => {
  const c = await setup(t);
  await base(c.dir);
  await writeFile(at(c.dir, "archive/archive-P.json"), "garbage{");
  await editManifest(c.dir, (m) => (m.archiveSegments = ["archive/archive-P.json"]));
  const r = await c.open({ readOnly: true });
  assert.deepEqual(asObject(r.entries()), FULL);
  assertNames(await rejection(r.loadArchive("P")), ["archive/archive-P.json"], "loadArchive");
});

test("a missing archive segment: loadArchive names the file", { skip: filesSkip }, async (t) => {
  const c = await setup(t);
  await base(c.dir);
  await editManifest(c.dir, (m) => (m.archiveSegments = ["archive/archive-P.json"]));
  const r = await c.open({ readOnly: true });
  assertNames(await rejection(r.loadArchive("P")), ["archive/archive-P.json"], "loadArchive");
});

// manifest.json gone while snapshots/ and ops/ hold data (deleted by hand, lost in a copy): a
// writable open takes the directory for a new store and shows it empty; the data is still on disk
// but no longer reachable, and the next checkpoints bury it.
test(
  "manifest.json missing while snapshots/ and ops/ hold data: a writable open does not silently start an empty store",
  { skip: filesSkip || oursOnly },
  async (t) => {
    const c = await setup(t);
    await base(c.dir);
    await unlink(at(c.dir, MANIFEST));
    let s;
    try {
      s = await c.open({});
    } catch (err) {
      assertNames(err, [MANIFEST], "writable open");
      return;
    }
    assert.deepEqual(asObject(s.entries()), FULL, "opened: then with the data of the newest snapshot and its ops");
  },
);

test("a fresh empty .lock (its owner is between creating it and writing its pid) is waited for, then taken", { skip: filesSkip }, async (t) => {
  const c = await setup(t);
  await base(c.dir);
  await writeFile(at(c.dir, ".lock"), "");
  const start = Date.now();
  const s = await c.open({});
  assert.deepEqual(asObject(s.entries()), FULL);
  assert.equal(await readFile(at(c.dir, ".lock"), "utf8"), String(process.pid));
  t.diagnostic(`taken after ${Date.now() - start} ms`);
});

test("a refused writable open (lock held by a live process) leaves the lock and every file as they were", { skip: filesSkip }, async (t) => {
  const c = await setup(t);
  await base(c.dir);
  await setLock(c.dir, String(process.ppid));
  const before = await dirBytes(c.dir);
  const lockStat = await stat(at(c.dir, ".lock"));
  for (const opts of [{}, { skipLoad: true }, { writeMode: "group" }]) {
    const err = await rejection(c.store().open(c.dir, withTestBackend(opts)));
    assertNames(err, [".lock", String(process.ppid)], `open ${JSON.stringify(opts)}`);
  }
  assert.deepEqual(await dirBytes(c.dir), before);
  assert.equal((await stat(at(c.dir, ".lock"))).mtimeMs, lockStat.mtimeMs);
});

// --- SPEC 7.6 inside batch(): the cases validation.test.mjs does not cover ---------------

const skip76 = refDefect(6);

const revokedProxy = () => {
  const p = Proxy.revocable({}, {});
  p.revoke();
  return p.proxy;
};

// [label, call(store)]: each must throw a TypeError at the call.
const MORE_BAD_CALLS = [
  ["set with a toJSON giving a number", (s) => s.set("a", { toJSON: () => 5 }), /object/i],
  ["set with a toJSON giving undefined", (s) => s.set("a", { toJSON: () => undefined }), /object|undefined/i],
  ["set with a toJSON giving null", (s) => s.set("a", { toJSON: () => null }), /object|null/i],
  ["set with a toJSON giving an array", (s) => s.set("a", { toJSON: () => [1] }), /object|array/i],
  ["set with a toJSON that throws", (s) => s.set("a", { toJSON: () => { throw new Error("boom"); } }), /boom/],
  ["set with a getter that throws a RangeError", (s) => s.set("a", { get x() { throw new RangeError("getter"); } }), /getter/],
  ["set with a toJSON giving an object holding a BigInt", (s) => s.set("a", { toJSON: () => ({ n: 1n }) }), /bigint/i],
  ["set with a Date (serializes to a string)", (s) => s.set("a", new Date(0)), /object/i],
  ['set with new String("x")', (s) => s.set("a", new String("x")), /object/i],
  ["set with new Number(5)", (s) => s.set("a", new Number(5)), /object/i],
  ["set with new Boolean(true)", (s) => s.set("a", new Boolean(true)), /object/i],
  ["set with a Symbol value", (s) => s.set("a", Symbol("v")), /object|symbol/i],
  ["set with a revoked Proxy", (s) => s.set("a", revokedProxy()), null],
  ["set with a Symbol id", (s) => s.set(Symbol("x"), {}), /id/i],
  ['set with a String-object id new String("a")', (s) => s.set(new String("a"), {}), /id/i],
  ["set with id 0", (s) => s.set(0, {}), /id/i],
  ["delete(null)", (s) => s.delete(null), /id/i],
  ["delete({})", (s) => s.delete({}), /id/i],
  ["delete(Symbol())", (s) => s.delete(Symbol("x")), /id/i],
  ['delete(new String("keep"))', (s) => s.delete(new String("keep")), /id/i],
];

/** The op file this store appends to (its own agent file in multi-writer mode). */
async function ownOps(dir, agentId) {
  const { json } = await readManifest(dir);
  return readOps(dir, (agentId && json.activeAgentOps?.[agentId]) || json.activeOps);
}

/** A store with two records written, plus a function asserting nothing changed since. */
async function prepared(t, opts = {}) {
  const c = await setup(t);
  const s = await c.open({ checkpointOnClose: false, ...opts });
  await s.set("keep", { v: 1 });
  await s.set("a", { v: "original" });
  await s.flush();
  const opsFile = () => ownOps(c.dir, opts.agentId);
  // Order aside: see the iteration-order test below.
  const snapshot = async () => ({
    entries: asObject(s.entries()),
    opsCount: s.stats().opsCount,
    getOps: JSON.stringify(s.getOps()),
    file: (await opsFile()).text,
    manifest: (await readManifest(c.dir)).text,
  });
  const before = await snapshot();
  return {
    c,
    s,
    async assertUnchanged(what) {
      await s.flush();
      assert.deepEqual(await snapshot(), before, `${what}: nothing changed`);
    },
  };
}

for (const [label, call, re] of MORE_BAD_CALLS) {
  test(`SPEC 7.6: ${label} is refused with a TypeError, alone and inside batch, and changes nothing`, { skip: skip76 }, async (t) => {
    const { s, assertUnchanged } = await prepared(t);
    await assert.rejects(async () => call(s), assertTypeError(re));
    await assertUnchanged("alone");
    let inside;
    await assert.rejects(
      async () =>
        s.batch(() => {
          s.set("new-in-batch", { v: 1 });
          s.delete("keep");
          s.set("a", { v: "changed" });
          try {
            call(s);
          } catch (e) {
            inside = e;
            throw e;
          }
        }),
      assertTypeError(re),
    );
    assert.ok(inside instanceof TypeError, "the bad call throws inside the batch function");
    await assertUnchanged("inside batch");
  });
}

for (const mode of ["immediate", "group", "async", "multi-writer"]) {
  const opts = mode === "multi-writer" ? { agentId: "A" } : { writeMode: mode };
  test(`SPEC 7.6 (${mode}): a bad call caught inside the batch function changes nothing; the rest of the batch commits`, { skip: skip76 }, async (t) => {
    const { c, s } = await prepared(t, opts);
    const caught = [];
    await s.batch(() => {
      s.set("x", { v: 1 });
      try {
        s.set("y", 5);
      } catch (e) {
        caught.push(e);
      }
      s.delete("a");
      try {
        s.delete("");
      } catch (e) {
        caught.push(e);
      }
      try {
        s.set("keep", { toJSON: () => "nope" });
      } catch (e) {
        caught.push(e);
      }
      s.set("z", { v: 2 });
    });
    assert.equal(caught.length, 3);
    for (const e of caught) assert.ok(e instanceof TypeError, String(e));
    await s.flush();
    assert.deepEqual(asObject(s.entries()), { keep: { v: 1 }, x: { v: 1 }, z: { v: 2 } });
    const { ops } = await ownOps(c.dir, opts.agentId);
    assert.deepEqual(
      ops.map((o) => `${o.op}:${o.id}`),
      ["set:keep", "set:a", "set:x", "delete:a", "set:z"],
    );
    if (mode === "multi-writer") {
      assert.deepEqual(
        ops.map((o) => o.clock),
        [1, 2, 3, 4, 5],
        "refused calls take no clock tick",
      );
    }
    await s.close();
    const r = await c.open({ readOnly: true });
    assert.deepEqual(asObject(r.entries()), { keep: { v: 1 }, x: { v: 1 }, z: { v: 2 } });
  });

  test(`SPEC 7.6 (${mode}): a refused batch leaves earlier buffered writes and the undo order intact`, { skip: skip76 }, async (t) => {
    const { c, s } = await prepared(t, opts);
    const p1 = s.set("b1", { v: 1 }); // possibly still buffered when the batch runs
    await assert.rejects(
      async () =>
        s.batch(() => {
          s.set("w", { v: 1 });
          s.delete("b1");
          s.set("", { v: 1 });
        }),
      assertTypeError(/id/),
    );
    await p1;
    const p2 = s.set("b2", { v: 2 });
    await p2;
    await s.flush();
    assert.deepEqual(asObject(s.entries()), { keep: { v: 1 }, a: { v: "original" }, b1: { v: 1 }, b2: { v: 2 } });
    assert.equal(await s.undo(), true);
    assert.equal(s.has("b2"), false, "undo takes back b2");
    assert.equal(await s.undo(), true);
    assert.equal(s.has("b1"), false, "then b1");
    await s.flush();
    const { ops } = await ownOps(c.dir, opts.agentId);
    assert.deepEqual(
      ops.map((o) => `${o.op}:${o.id}`),
      ["set:keep", "set:a"],
    );
    await s.close();
    const r = await c.open({ readOnly: true });
    assert.deepEqual(asObject(r.entries()), { keep: { v: 1 }, a: { v: "original" } });
  });
}

// A batch rolled back puts a record it deleted back at the end of the iteration order (the
// reference does the same when the batch function throws). For a refused call, which is to change
// nothing, entries() then lists the records in another order than before, and the next checkpoint
// writes the snapshot in that order.
test(
  "SPEC 7.6: a batch refused because of a bad call keeps the records in their iteration order",
  { skip: skip76 },
  async (t) => {
    const { s } = await prepared(t);
    const before = s.entries().map(([id]) => id);
    await assert.rejects(
      async () =>
        s.batch(() => {
          s.delete("keep");
          s.set("", {});
        }),
      TypeError,
    );
    assert.deepEqual(
      s.entries().map(([id]) => id),
      before,
    );
  },
);

test("SPEC 7.6: a batch whose first call is bad does no I/O at all", { skip: skip76 }, async (t) => {
  const { s, assertUnchanged } = await prepared(t);
  await assert.rejects(async () => s.batch(() => s.set("a", [1])), assertTypeError(/array|object/i));
  await assertUnchanged("batch");
  await assert.rejects(async () => s.batch(() => s.delete(undefined)), assertTypeError(/id/i));
  await assertUnchanged("batch");
});
