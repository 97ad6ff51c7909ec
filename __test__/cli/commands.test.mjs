// The operator CLI (bin/opslog-native.js), run as a child process on stores written by ours and
// by the reference: outputs, exit codes, and that the read-only commands change no byte.
import { test, describe } from "node:test";
import assert from "node:assert/strict";
import { appendFile, chmod, readFile, rm, writeFile, mkdir, stat, readdir } from "node:fs/promises";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { spawn } from "node:child_process";
import { IMPLS, BIN, cli, hashDir, writeSingle, writeMulti, stateOf, parseJsonl } from "./lib.mjs";
import { tempDir } from "../support/helpers.mjs";

const ours = IMPLS.ours;
const progress = await import("../../lib/cli/progress.js");

async function readManifest(dir) {
  return JSON.parse(await readFile(join(dir, "manifest.json"), "utf8"));
}

/** Runs the read-only commands on `dir`, checking that every file is byte-identical after. */
async function readOnlyRuns(dir, runs) {
  const before = await hashDir(dir);
  const results = [];
  for (const args of runs) results.push(await cli(args));
  assert.deepEqual(await hashDir(dir), before, `files changed by ${runs.map((a) => a[0]).join(", ")}`);
  return results;
}

const INSPECT_KEYS = [
  "manifest", "snapshot", "ops", "archive", "multiWriter", "agents", "lock", "compactLock", "unreferenced", "totalBytes",
];

for (const [name, mod] of Object.entries(IMPLS)) {
  describe(`a single-writer store written by ${name}`, () => {
    test("inspect, verify and export report it and change nothing", async (t) => {
      const dir = await tempDir(t);
      await writeSingle(mod, dir);
      const state = await stateOf(mod, dir);
      const manifest = await readManifest(dir);
      const [inspectText, inspectJson, verifyText, verifyJson, jsonl, json, withArchive] = await readOnlyRuns(dir, [
        ["inspect", dir],
        ["inspect", dir, "--json"],
        ["verify", dir],
        ["verify", "--json", dir],
        ["export", dir],
        ["export", dir, "--format", "json"],
        ["export", dir, "--archive"],
      ]);
      for (const r of [inspectText, inspectJson, verifyText, verifyJson, jsonl, json, withArchive]) {
        assert.equal(r.code, 0, r.stderr);
        assert.equal(r.stderr, "", "no progress bar when stderr is not a terminal");
      }

      const info = JSON.parse(inspectJson.stdout);
      assert.deepEqual(Object.keys(info), INSPECT_KEYS);
      assert.equal(info.snapshot.path, manifest.currentSnapshot);
      assert.equal(info.snapshot.bytes, (await stat(join(dir, manifest.currentSnapshot))).size);
      assert.equal(info.snapshot.records, manifest.stats.activeRecords);
      assert.equal(info.snapshot.format, "jsonl");
      assert.equal(info.ops.path, manifest.activeOps);
      assert.equal(info.ops.ops, 6, "r1, r4 twice, r5 and the batch of two since the last checkpoint");
      assert.equal(info.ops.torn, false);
      assert.equal(info.archive.length, 1);
      assert.equal(info.archive[0].records, 4);
      assert.equal(info.multiWriter, false);
      assert.deepEqual(info.agents, []);
      assert.equal(info.lock, null);
      const files = [...(await readdir(join(dir, "snapshots"))).map((f) => `snapshots/${f}`), ...(await readdir(join(dir, "ops"))).map((f) => `ops/${f}`)];
      const named = new Set([manifest.currentSnapshot, manifest.activeOps]);
      assert.deepEqual(info.unreferenced.map((f) => f.path).sort(), files.filter((f) => !named.has(f)).sort());
      assert.match(inspectText.stdout, new RegExp(`snapshot +${manifest.currentSnapshot.replace(".", "\\.")} .* ${manifest.stats.activeRecords} records`));
      assert.match(inspectText.stdout, /op file +ops\/\S+ +\S+ B +6 ops/);
      assert.match(inspectText.stdout, /^lock +none$/m);

      assert.match(verifyText.stdout, /^ok: 4 files, 11 records, 6 ops checked, no problems\n$/);
      assert.deepEqual(JSON.parse(verifyJson.stdout), {
        status: "clean", problems: [], warnings: [], files: 4, records: 11, ops: 6,
      });

      const exported = parseJsonl(jsonl.stdout);
      assert.deepEqual(exported.map((r) => [r.id, r.data]), state, "the store's state, in its order");
      assert.deepEqual(JSON.parse(json.stdout), exported);
      assert.ok(jsonl.stdout.includes('"n":1e+21') && jsonl.stdout.includes("\u2028"), "record text byte for byte");
      const archived = parseJsonl(withArchive.stdout).slice(exported.length);
      const segment = manifest.archiveSegments[0];
      const s = new mod.Store();
      await s.open(dir, { readOnly: true });
      const fromArchive = [...(await s.loadArchive(segment.replace(/^archive\/archive-|\.json$/g, "")))];
      await s.close();
      assert.deepEqual(archived, fromArchive.map(([id, data]) => ({ id, data, segment })));
    });

    test("compact checkpoints through the lock protocol and keeps the state", async (t) => {
      const dir = await tempDir(t);
      await writeSingle(mod, dir);
      const state = await stateOf(mod, dir);
      const r = await cli(["compact", dir]);
      assert.equal(r.code, 0, r.stderr);
      const manifest = await readManifest(dir);
      assert.match(r.stdout, new RegExp(`^compacted .*: 10 records, 6 ops folded into ${manifest.currentSnapshot}`));
      assert.equal((await stat(join(dir, manifest.activeOps))).size, 0);
      assert.equal(existsSync(join(dir, ".lock")), false, "the lock is released");
      for (const impl of Object.values(IMPLS)) assert.deepEqual(await stateOf(impl, dir), state);
      assert.equal((await cli(["verify", dir])).code, 0);
    });
  });

  describe(`a multi-writer store written by ${name}`, () => {
    test("inspect lists the agents; verify, export and compact agree with the agents' state", async (t) => {
      const dir = await tempDir(t);
      const agents = await writeMulti(mod, dir);
      let closed = false;
      t.after(async () => {
        if (!closed) for (const a of agents) await a.close();
      });
      const [inspect, verify, exported] = await readOnlyRuns(dir, [
        ["inspect", dir, "--json"],
        ["verify", dir, "--json"],
        ["export", dir],
      ]);
      const info = JSON.parse(inspect.stdout);
      assert.equal(info.multiWriter, true);
      const byAgent = Object.fromEntries(info.agents.map((a) => [a.agent, a]));
      assert.deepEqual([byAgent.alpha.ops.ops, byAgent.alpha.ops.highestClock], [3, 4]);
      assert.deepEqual([byAgent.beta.ops.ops, byAgent.beta.ops.highestClock], [2, 2]);
      // Our agents keep their op file open; the reference's open it per append only.
      assert.equal(byAgent.alpha.live, name === "ours");
      assert.equal(JSON.parse(verify.stdout).status, "clean", verify.stdout);
      const expected = [["x", { v: 2 }], ["z", { v: 3 }]];
      assert.deepEqual(parseJsonl(exported.stdout).map((r) => [r.id, r.data]), expected);

      for (const a of agents) await a.close();
      closed = true;
      const after = JSON.parse((await cli(["inspect", dir, "--json"])).stdout);
      assert.ok(after.agents.every((a) => a.live === false), "no process holds their files now");
      // The reference's agents compact on close with a stale view and lose writes (the defect
      // SPEC 7.4 fixes): what compact must keep is the state as the agents left it.
      const settled = await stateOf(ours, dir, { agentId: "check", readOnly: true });
      if (name === "ours") assert.deepEqual(settled, expected);
      const compacted = await cli(["compact", dir]);
      assert.equal(compacted.code, 0, compacted.stderr);
      for (const impl of Object.values(IMPLS)) {
        assert.deepEqual(await stateOf(impl, dir, { agentId: "check", readOnly: true }), settled);
      }
      assert.equal((await cli(["verify", dir])).code, 0);
    });
  });
}

describe("verify on damaged stores", () => {
  /** A store of ours with a snapshot of three records and two ops, closed without checkpoint. */
  async function damaged(t, mod = ours) {
    const dir = await tempDir(t);
    const s = new mod.Store();
    await s.open(dir, { checkpointOnClose: false });
    for (const id of ["a", "b", "c"]) await s.set(id, { id });
    await s.compact();
    await s.set("d", { n: 1 });
    await s.set("a", { n: 2 });
    await s.close();
    return { dir, manifest: await readManifest(dir) };
  }

  async function verifyDamage(dir) {
    const [text, json] = await readOnlyRuns(dir, [["verify", dir], ["verify", dir, "--json"]]);
    assert.equal(json.code, text.code);
    return { text, json: JSON.parse(json.stdout), code: text.code };
  }

  for (const [name, mod] of Object.entries(IMPLS)) {
    test(`a torn last op line (${name})`, async (t) => {
      const { dir, manifest } = await damaged(t, mod);
      await appendFile(join(dir, manifest.activeOps), '{"ts":"2026-01-01T00:00:00.000Z","op":"se');
      const { text, json, code } = await verifyDamage(dir);
      assert.equal(code, 1);
      assert.equal(json.status, "problems");
      assert.equal(json.problems.length, 1);
      assert.deepEqual([json.problems[0].file, json.problems[0].line], [manifest.activeOps, 3]);
      assert.match(json.problems[0].message, /^torn last line/);
      assert.match(text.stdout, new RegExp(`^${manifest.activeOps}:3: torn last line`, "m"));
      assert.match(text.stdout, /^1 problem \(/m);
    });

    test(`bad JSON in an op line and in a snapshot line (${name})`, async (t) => {
      const { dir, manifest } = await damaged(t, mod);
      const ops = join(dir, manifest.activeOps);
      const lines = (await readFile(ops, "utf8")).split("\n");
      await writeFile(ops, [lines[0], "{not json", lines[1], ""].join("\n"));
      const snap = join(dir, manifest.currentSnapshot);
      const snapLines = (await readFile(snap, "utf8")).split("\n");
      snapLines[2] = snapLines[2].slice(0, -3);
      await writeFile(snap, snapLines.join("\n"));
      const { json, code } = await verifyDamage(dir);
      assert.equal(code, 1);
      const at = json.problems.map((p) => [p.file, p.line]);
      assert.deepEqual(at, [[manifest.currentSnapshot, 3], [manifest.currentSnapshot, null], [manifest.activeOps, 2]]);
      assert.match(json.problems[1].message, /holds 2 record\(s\), the manifest's stats say 3/);
    });
  }

  test("a duplicate id in the snapshot", async (t) => {
    const { dir, manifest } = await damaged(t);
    const snap = join(dir, manifest.currentSnapshot);
    const lines = (await readFile(snap, "utf8")).split("\n");
    await writeFile(snap, [...lines.slice(0, 4), lines[1].replace('"a"', '"\\u0061"'), ""].join("\n"));
    const { json, code } = await verifyDamage(dir);
    assert.equal(code, 1);
    assert.deepEqual(json.problems, [
      { file: manifest.currentSnapshot, line: 5, message: 'duplicate record id "a" (first at line 2)' },
    ]);
  });

  test("a missing snapshot", async (t) => {
    const { dir, manifest } = await damaged(t);
    await rm(join(dir, manifest.currentSnapshot));
    const { json, code } = await verifyDamage(dir);
    assert.equal(code, 1);
    assert.equal(json.problems[0].file, manifest.currentSnapshot);
    assert.match(json.problems[0].message, /^missing/);
    const exported = await cli(["export", dir]);
    assert.equal(exported.code, 1);
    assert.match(exported.stderr, /Snapshot file not found/);
  });

  test("a manifest pointing outside the directory, and one that is not JSON", async (t) => {
    const { dir, manifest } = await damaged(t);
    const text = await readFile(join(dir, "manifest.json"), "utf8");
    await writeFile(join(dir, "manifest.json"), text.replace(manifest.currentSnapshot, "../../etc/passwd"));
    let { json, code } = await verifyDamage(dir);
    assert.equal(code, 1);
    assert.equal(json.problems[0].file, "manifest.json");
    assert.match(json.problems[0].message, /outside the store directory/);
    await writeFile(join(dir, "manifest.json"), "{\"version\": 1,");
    ({ json, code } = await verifyDamage(dir));
    assert.equal(code, 1);
    assert.match(json.problems[0].message, /^Invalid manifest JSON/);
    const inspected = await cli(["inspect", dir]);
    assert.equal(inspected.code, 2);
    assert.match(inspected.stderr, /Invalid manifest JSON/);
  });

  test("an invalid archive segment", async (t) => {
    const dir = await tempDir(t);
    const s = new ours.Store();
    await s.open(dir);
    await s.set("a", { old: true });
    await s.archive(() => true, "2020-Q1");
    await s.close();
    await writeFile(join(dir, "archive/archive-2020-Q1.json"), '{"version":1}');
    const { json, code } = await verifyDamage(dir);
    assert.equal(code, 1);
    assert.equal(json.problems[0].file, "archive/archive-2020-Q1.json");
  });

  test("exit code 2 when there is no store to read", async (t) => {
    const dir = await tempDir(t);
    for (const target of [dir, join(dir, "missing")]) {
      const r = await cli(["verify", target, "--json"]);
      assert.equal(r.code, 2);
      assert.equal(JSON.parse(r.stdout).status, "unreadable");
    }
    for (const cmd of ["inspect", "export", "compact", "tail"]) {
      const r = await cli([cmd, dir]);
      assert.equal(r.code, 2, `${cmd}: ${r.stderr}`);
      assert.match(r.stderr, /cannot read the store: .* is not an opslog store: it has no manifest\.json/);
    }
    assert.deepEqual(await readdir(dir), [], "compact created no store");
  });

  test("exit code 2 when the manifest cannot be read as a file", async (t) => {
    const { dir } = await damaged(t);
    await rm(join(dir, "manifest.json"));
    await mkdir(join(dir, "manifest.json"));
    const r = await cli(["verify", dir, "--json"]);
    assert.equal(r.code, 2);
    const v = JSON.parse(r.stdout);
    assert.equal(v.status, "unreadable");
    assert.match(v.problems[0].message, /^cannot be read: /);
  });

  test("exit code 2 when a file cannot be read", { skip: process.getuid?.() === 0 && "root reads any file" }, async (t) => {
    const { dir, manifest } = await damaged(t);
    const snap = join(dir, manifest.currentSnapshot);
    await chmod(snap, 0o000);
    t.after(() => chmod(snap, 0o644));
    const r = await cli(["verify", dir, "--json"]);
    assert.equal(r.code, 2);
    assert.match(JSON.parse(r.stdout).problems[0].message, /EACCES/);
  });
});

test("export --out writes the file only when complete, and never into a damaged store", async (t) => {
  const dir = await tempDir(t);
  const out = join(await tempDir(t), "state.json");
  await writeSingle(ours, dir);
  const r = await cli(["export", dir, "--format", "json", "--out", out]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, "");
  assert.deepEqual(JSON.parse(await readFile(out, "utf8")).map((x) => [x.id, x.data]), await stateOf(ours, dir));
  const manifest = await readManifest(dir);
  const snap = join(dir, manifest.currentSnapshot);
  await writeFile(snap, `${await readFile(snap, "utf8")}{broken\n`);
  const before = await readFile(out, "utf8");
  const failed = await cli(["export", dir, "--format", "json", "--out", out]);
  assert.equal(failed.code, 1);
  assert.match(failed.stderr, /^opslog-native export: Corrupt snapshot .*: line \d+/);
  assert.equal(await readFile(out, "utf8"), before, "the previous file is left as it was");
  assert.deepEqual((await readdir(join(out, ".."))).sort(), ["state.json"], "no temporary file left");
});

for (const [name, mod] of Object.entries(IMPLS)) {
  test(`compact refuses while a writer of ${name} holds the lock, and changes nothing`, async (t) => {
    const dir = await tempDir(t);
    const s = new mod.Store();
    await s.open(dir);
    await s.set("a", { n: 1 });
    let r;
    try {
      const before = await hashDir(dir);
      r = await cli(["compact", dir]);
      assert.deepEqual(await hashDir(dir), before);
    } finally {
      await s.close();
    }
    assert.equal(r.code, 1);
    assert.equal(
      r.stderr,
      `opslog-native compact: the store is in use: process ${process.pid} holds its lock (${dir}/.lock). ` +
        "Stop that process and run compact again; nothing was changed.\n",
    );
  });
}

for (const [name, mod] of Object.entries(IMPLS)) {
  test(`tail prints each op a writer of ${name} appends, across checkpoints, and stops on SIGINT`, async (t) => {
    const dir = await tempDir(t);
    const w = new mod.Store();
    await w.open(dir, { checkpointThreshold: 3 });
    t.after(() => w.close().catch(() => {}));
    await w.set("k0", { i: 0 });
    const child = spawn(process.execPath, [BIN, "tail", dir, "--interval", "20", "--from-start"], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    const out = [];
    const err = [];
    child.stdout.on("data", (b) => out.push(b));
    child.stderr.on("data", (b) => err.push(b));
    const exited = new Promise((resolve) => child.on("close", (code, signal) => resolve({ code, signal })));
    const lines = () => Buffer.concat(out).toString("utf8").split("\n").filter(Boolean);
    const waitFor = async (n) => {
      const deadline = Date.now() + 20000;
      while (lines().length < n) {
        if (Date.now() > deadline) throw new Error(`tail printed ${lines().length} of ${n} ops: ${Buffer.concat(err)}`);
        await new Promise((r) => setTimeout(r, 10));
      }
    };
    // One op at a time, so each poll sees at most one checkpoint and every op comes through as written.
    await waitFor(1);
    for (let i = 1; i < 8; i++) {
      await w.set(`k${i}`, { i });
      await waitFor(i + 1);
    }
    await w.delete("k0");
    await waitFor(9);
    child.kill("SIGINT");
    assert.deepEqual(await exited, { code: 0, signal: null });
    const ops = lines().map((l) => JSON.parse(l));
    assert.deepEqual(
      ops.map((o) => [o.op, o.id, o.data]),
      [...Array.from({ length: 8 }, (_, i) => ["set", `k${i}`, { i }]), ["delete", "k0", undefined]],
    );
    assert.equal(Buffer.concat(err).toString(), "");
    assert.equal(existsSync(join(dir, ".lock")), true, "the writer's lock is still its own");
  });
}

test("tail changes nothing in the stores it follows, multi-writer ones included", async (t) => {
  for (const [name, mod] of Object.entries(IMPLS)) {
    const dir = await tempDir(t);
    const agents = await writeMulti(mod, dir);
    const before = await hashDir(dir);
    const child = spawn(process.execPath, [BIN, "tail", dir, "--interval", "20", "--from-start"], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    const out = [];
    child.stdout.on("data", (b) => out.push(b));
    const exited = new Promise((resolve) => child.on("close", (code) => resolve(code)));
    const deadline = Date.now() + 20000;
    // All five ops of the two agents since the (only) checkpoint.
    while (Buffer.concat(out).toString().split("\n").filter(Boolean).length < 5) {
      assert.ok(Date.now() < deadline, `${name}: tail printed ${Buffer.concat(out)}`);
      await new Promise((r) => setTimeout(r, 10));
    }
    child.kill("SIGTERM");
    assert.equal(await exited, 0);
    assert.deepEqual(await hashDir(dir), before, name);
    const ops = Buffer.concat(out).toString().split("\n").filter(Boolean).map((l) => JSON.parse(l));
    assert.deepEqual(ops.map((o) => [o.agent, o.clock]).sort(), [["alpha", 1], ["alpha", 3], ["alpha", 4], ["beta", 1], ["beta", 2]].sort());
    for (const a of agents) await a.close();
  }
});

describe("the command line", () => {
  test("--help for the tool and every command", async () => {
    const top = await cli(["--help"]);
    assert.equal(top.code, 0);
    assert.match(top.stdout, /^Usage: opslog-native <command> <dir>/);
    for (const cmd of ["inspect", "verify", "export", "compact", "tail"]) {
      assert.match(top.stdout, new RegExp(`^  ${cmd} `, "m"));
      for (const args of [[cmd, "--help"], [cmd, "-h"], ["help", cmd]]) {
        const r = await cli(args);
        assert.equal(r.code, 0, args.join(" "));
        assert.match(r.stdout, new RegExp(`^Usage: opslog-native ${cmd} <dir>`));
        assert.match(r.stdout, /Exit codes: /);
      }
    }
  });

  test("usage errors say what is wrong on stderr and exit with 2", async () => {
    const cases = [
      [[], /missing a command/],
      [["frobnicate", "x"], /unknown command 'frobnicate'/],
      [["--bogus"], /unknown option '--bogus'/],
      [["verify", "--bogus", "x"], /Unknown option '--bogus'/],
      [["verify"], /missing the store directory/],
      [["verify", "a", "b"], /unexpected argument 'b'/],
      [["export", "x", "--format", "xml"], /--format must be jsonl or json, not 'xml'/],
      [["export", "x", "--format"], /argument missing/],
      [["tail", "x", "--interval", "soon"], /--interval must be a whole number/],
      [["inspect", "x", "--archive"], /Unknown option '--archive'/],
    ];
    for (const [args, message] of cases) {
      const r = await cli(args);
      assert.equal(r.code, 2, args.join(" "));
      assert.equal(r.stdout, "");
      assert.match(r.stderr, message, args.join(" "));
      assert.match(r.stderr, /Run 'opslog-native (\w+ )?--help' for usage\.\n$/);
    }
  });

  test("package.json publishes the bin", async () => {
    const pkg = JSON.parse(await readFile(join(BIN, "..", "..", "package.json"), "utf8"));
    assert.deepEqual(pkg.bin, { "opslog-native": "bin/opslog-native.js" });
    assert.ok(pkg.files.includes("bin/"));
    assert.match(await readFile(BIN, "utf8"), /^#!\/usr\/bin\/env node\n/);
  });
});

test("the progress bar draws on a terminal only, and clears itself", async () => {
  const written = [];
  const tty = { isTTY: true, write: (s) => written.push(s) };
  const stop = progress.startProgress("verifying", () => [512, 2048], "bytes", { stream: tty, delayMs: 0 });
  const deadline = Date.now() + 10000;
  while (written.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  stop();
  assert.match(written[0], /^\rverifying \[#{8}-{22}\]  25% 512 B \/ 2\.0 KB \d+\.\ds\x1b\[K$/);
  assert.equal(written.at(-1), "\r\x1b[K");
  const pipe = { isTTY: false, write: () => assert.fail("wrote to a pipe") };
  progress.startProgress("verifying", () => [1, 2], "bytes", { stream: pipe, delayMs: 0 })();
  assert.equal(progress.formatBytes(1536), "1.5 KB");
});
