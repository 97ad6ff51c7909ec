// `async` mode hands each group of sets to the engine, which applies them on a thread of its own
// (native filesystem): every later call must still see them all, in call order, and a write that
// fails there must be reported, not lost.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { isReference } from "../support/impl.mjs";
import { setup, readOps, IMPL_URL, viaJsBackend, nodeArgv } from "../support/helpers.mjs";

test("async: every call after a run of sets sees all of them, in call order", async (t) => {
  const c = await setup(t);
  const s = await c.open({ writeMode: "async", groupCommitSize: 7, groupCommitMs: 60000 });
  const expected = new Map();
  for (let round = 0; round < 120; round++) {
    for (let k = 0; k < 5; k++) {
      const id = `k${(round + k) % 30}`;
      await s.set(id, { round, k });
      expected.set(id, { round, k });
    }
  }
  // No await between the last set and these: the engine may still be applying the last groups.
  const ops = s.getOps();
  assert.equal(ops.length, 600);
  assert.deepEqual(ops.slice(-2).map((o) => o.data), [{ round: 119, k: 3 }, { round: 119, k: 4 }]);
  assert.deepEqual(s.getHistory("k5").length, 20);
  await s.delete("k0");
  expected.delete("k0");
  assert.equal(await s.undo(), true);
  expected.set("k0", s.get("k0"));
  await s.set("k1", { last: true });
  expected.set("k1", { last: true });
  await s.close();
  const lines = (await readOps(c.dir)).ops;
  assert.ok(lines.length === 0 || lines.length === 601, "the ops, or a checkpoint of them on close");
  const r = await c.open({ readOnly: true });
  assert.deepEqual(new Map(r.entries()), expected);
});

test(
  "async: a write that fails on the engine's thread is reported by a later call, and every set stays applied",
  // The file size limit (ulimit -f) makes appends past 16 KiB fail with EFBIG, in a child process.
  { skip: isReference || viaJsBackend || process.platform === "win32" ? "ours, native filesystem, a POSIX shell" : false },
  async (t) => {
    const c = await setup(t);
    const code = `
      const { Store } = await import(${JSON.stringify(IMPL_URL)});
      const s = new Store();
      await s.open(${JSON.stringify(c.dir)}, { writeMode: "async", groupCommitSize: 10, groupCommitMs: 60000, checkpointOnClose: false });
      const errors = [];
      for (let i = 0; i < 400; i++) {
        try { await s.set("k" + i, { i, pad: "x".repeat(100) }); } catch (e) { errors.push(e.message); }
      }
      try { await s.flush(); } catch (e) { errors.push(e.message); }
      console.log(JSON.stringify({ errors, ops: s.getOps().length, view: s.count(), last: s.get("k399") }));
    `;
    const child = spawnSync("bash", ["-c", `trap '' XFSZ; ulimit -f 16; exec ${nodeArgv().map((a) => JSON.stringify(a)).join(" ")} --input-type=module -e "$CODE"`], {
      encoding: "utf8",
      timeout: 20000,
      env: { ...process.env, CODE: code },
    });
    assert.equal(child.status, 0, child.stderr);
    const out = JSON.parse(child.stdout.trim().split("\n").pop());
    assert.ok(out.errors.length >= 1, "the failure is reported");
    for (const message of out.errors) assert.match(message, /too large/i);
    assert.equal(out.ops, 400, "every set is in the engine's op list");
    assert.equal(out.view, 400);
    assert.deepEqual(out.last, { i: 399, pad: "x".repeat(100) });
  },
);
