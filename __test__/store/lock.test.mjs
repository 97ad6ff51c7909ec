// The single-writer lock: <dir>/.lock holding the writer's pid.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFile, writeFile, unlink } from "node:fs/promises";
import { spawn } from "node:child_process";
import { join } from "node:path";
import { Store, isReference } from "../support/impl.mjs";
import { setup, deadPid, IMPL_URL, nodeArgv, exists } from "../support/helpers.mjs";

const lockedMessage = (pid, dir) => `Store is locked by process ${pid}. If this is stale, delete ${join(dir, ".lock")}`;

test(".lock holds our pid while open and is removed on close", async (t) => {
  const c = await setup(t);
  const s = await c.open();
  assert.equal(await readFile(join(c.dir, ".lock"), "utf8"), String(process.pid));
  await s.close();
  assert.equal(await exists(join(c.dir, ".lock")), false);
});

test("a second writer in the same process is refused with the locked error", async (t) => {
  const c = await setup(t);
  const s1 = await c.open();
  await s1.set("a", { v: 1 });
  const s2 = c.store();
  await assert.rejects(s2.open(c.dir), { message: lockedMessage(process.pid, c.dir) });
  // the first writer is unaffected and still holds the lock
  assert.equal(await readFile(join(c.dir, ".lock"), "utf8"), String(process.pid));
  await s1.set("b", { v: 2 });
  assert.equal(s1.count(), 2);
  await s1.close();
  // once released, another writer can open
  const s3 = await c.open();
  assert.equal(s3.count(), 2);
});

test("a lock held by another live process refuses writers but not readers", async (t) => {
  const c = await setup(t);
  let s = await c.open();
  await s.set("a", { v: 1 });
  await s.close();
  const other = process.ppid; // alive: our parent
  await writeFile(join(c.dir, ".lock"), String(other));
  await assert.rejects(c.store().open(c.dir), { message: lockedMessage(other, c.dir) });
  await assert.rejects(c.store().open(c.dir, { skipLoad: true }), { message: lockedMessage(other, c.dir) });
  const r = await c.open({ readOnly: true });
  assert.deepEqual(r.get("a"), { v: 1 });
  await r.close();
  assert.equal(await readFile(join(c.dir, ".lock"), "utf8"), String(other), "a refused open leaves the lock alone");
  await unlink(join(c.dir, ".lock"));
  s = await c.open();
  assert.deepEqual(s.get("a"), { v: 1 });
});

test("a stale lock (dead pid) is removed and taken", async (t) => {
  const c = await setup(t);
  let s = await c.open();
  await s.set("a", { v: 1 });
  await s.close();
  const dead = deadPid();
  await writeFile(join(c.dir, ".lock"), String(dead));
  s = await c.open();
  assert.equal(await readFile(join(c.dir, ".lock"), "utf8"), String(process.pid));
  assert.deepEqual(s.get("a"), { v: 1 });
  await s.set("b", { v: 2 });
  await s.close();
  assert.equal(await exists(join(c.dir, ".lock")), false);
});

test("a lock file with garbage in it is treated as stale", async (t) => {
  const c = await setup(t);
  let s = await c.open();
  await s.close();
  await writeFile(join(c.dir, ".lock"), "not-a-pid");
  s = await c.open();
  assert.equal(await readFile(join(c.dir, ".lock"), "utf8"), String(process.pid));
});

test("a stale lock on a fresh directory is taken too", async (t) => {
  const c = await setup(t);
  await writeFile(join(c.dir, ".lock"), String(deadPid()));
  const s = await c.open();
  await s.set("a", { v: 1 });
  assert.equal(await readFile(join(c.dir, ".lock"), "utf8"), String(process.pid));
});

test("readOnly takes no lock and ignores an existing one", async (t) => {
  const c = await setup(t);
  const w = await c.open();
  await w.set("a", { v: 1 });
  await w.close();
  const r = await c.open({ readOnly: true });
  assert.equal(await exists(join(c.dir, ".lock")), false);
  await r.close();
  await writeFile(join(c.dir, ".lock"), String(process.pid));
  const r2 = await c.open({ readOnly: true });
  assert.deepEqual(r2.get("a"), { v: 1 });
  await r2.close();
  assert.equal(await readFile(join(c.dir, ".lock"), "utf8"), String(process.pid), "readOnly close leaves the lock alone");
});

test("close() copes with a lock file that disappeared", async (t) => {
  const c = await setup(t);
  const s = await c.open();
  await s.set("a", { v: 1 });
  await unlink(join(c.dir, ".lock"));
  await s.close();
  const r = await c.open({ readOnly: true });
  assert.deepEqual(r.get("a"), { v: 1 });
});

test("another process holding the lock excludes us; when it dies, its lock is stale", async (t) => {
  const c = await setup(t);
  const code = `
    import { Store } from ${JSON.stringify(IMPL_URL)};
    const s = new Store();
    await s.open(${JSON.stringify(c.dir)});
    await s.set("child", { pid: process.pid });
    process.stdout.write("ready\\n");
    setInterval(() => {}, 1000);
  `;
  const [cmd, ...args] = nodeArgv("--input-type=module", "-e", code);
  const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"] });
  t.after(() => {
    try {
      child.kill("SIGKILL");
    } catch {}
  });
  let stderr = "";
  child.stderr.setEncoding("utf8").on("data", (d) => (stderr += d));
  await new Promise((resolve, reject) => {
    let out = "";
    child.stdout.setEncoding("utf8").on("data", (d) => {
      out += d;
      if (out.includes("ready")) resolve();
    });
    child.on("exit", (code) => reject(new Error(`child exited ${code}: ${stderr}`)));
  });
  assert.equal(await readFile(join(c.dir, ".lock"), "utf8"), String(child.pid));
  await assert.rejects(c.store().open(c.dir), { message: lockedMessage(child.pid, c.dir) });
  const r = await c.open({ readOnly: true });
  assert.deepEqual(r.get("child"), { pid: child.pid });
  await r.close();
  // kill -9: no cleanup, the lock file stays behind with a dead pid
  const exited = new Promise((resolve) => child.on("exit", resolve));
  child.kill("SIGKILL");
  await exited;
  assert.equal(await readFile(join(c.dir, ".lock"), "utf8"), String(child.pid));
  const s = await c.open();
  assert.equal(await readFile(join(c.dir, ".lock"), "utf8"), String(process.pid));
  assert.deepEqual(s.get("child"), { pid: child.pid }, "the child's acknowledged write survived its death");
});

