// Failures of the operating system: errors shaped as Node's own fs errors (`code`, `errno`,
// `syscall`, `path`, message), and a store that survives a full disk (each write that cannot be
// made rejects and changes nothing; once there is room again everything works without a
// reopen, nothing acknowledged is lost, no partial file is left behind).
//
// The full disk is a small tmpfs (mounting needs root: these tests skip, naming why, where it is
// not permitted); permission errors run a child process as another user (`setpriv`), a
// read-only file system is a read-only bind mount. The differential tests compare our
// `code`/`errno`/`syscall` with the reference's for the same failure.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { constants, tmpdir } from "node:os";
import { join } from "node:path";
import { getSystemErrorMap } from "node:util";
import { Store, isReference } from "../support/impl.mjs";
import { beside, testBackend, viaJsBackend, withTestBackend, nodeArgv } from "../support/helpers.mjs";

const PAD = "x".repeat(400);
const NOBODY = 65534;

function run(cmd, args) {
  return spawnSync(cmd, args, { encoding: "utf8" });
}

/** Why tmpfs and bind mounts cannot be used here, or false when they can. */
const mountSkip = (() => {
  if (process.platform !== "linux") return "needs Linux (tmpfs and bind mounts)";
  const probe = mkdtempSync(join(tmpdir(), "opslog-mount-probe-"));
  try {
    const r = run("mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", probe]);
    if (r.error || r.status !== 0) return `mounting a tmpfs is not permitted here (needs root): ${(r.error?.message ?? r.stderr).trim()}`;
    run("umount", [probe]);
    return false;
  } finally {
    rmSync(probe, { recursive: true, force: true });
  }
})();

/** Why another user's process cannot be started, or false. */
const otherUserSkip = (() => {
  if (process.platform !== "linux" || process.getuid?.() !== 0) return "needs root to run a child as another user";
  const r = run("setpriv", ["--reuid", String(NOBODY), "--regid", String(NOBODY), "--clear-groups", "true"]);
  if (r.error || r.status !== 0) return `setpriv cannot switch users here: ${(r.error?.message ?? r.stderr).trim()}`;
  return false;
})();

/** The child-process and differential tests do not depend on the backend: they run once. */
const onceSkip = testBackend !== "default" ? `runs once, with the default backend (this run: ${testBackend})` : false;

/**
 * A directory on a tmpfs of `size` for one test. Stores opened with `open` are closed at the
 * end (after giving the tmpfs room, so their close can succeed) and the tmpfs unmounted.
 */
function tmpfs(t, size = "1m") {
  const mnt = mkdtempSync(join(tmpdir(), "opslog-tmpfs-"));
  const r = run("mount", ["-t", "tmpfs", "-o", `size=${size}`, "tmpfs", mnt]);
  if (r.status !== 0) throw new Error(`mount tmpfs on ${mnt}: ${r.stderr}`);
  const stores = [];
  t.after(async () => {
    try {
      run("mount", ["-o", "remount,size=64m", mnt]);
      for (const s of stores) await s.close().catch(() => {});
    } finally {
      if (run("umount", [mnt]).status !== 0) run("umount", ["-l", mnt]);
      rmSync(mnt, { recursive: true, force: true });
    }
  });
  return {
    dir: join(mnt, "store"),
    grow() {
      const g = run("mount", ["-o", "remount,size=64m", mnt]);
      assert.equal(g.status, 0, `remount: ${g.stderr}`);
    },
    async open(opts, StoreClass = Store, { backend = true } = {}) {
      const s = new StoreClass();
      await s.open(join(mnt, "store"), backend ? withTestBackend(opts) : opts);
      stores.push(s);
      return s;
    },
  };
}

/** Every file under `dir`, relative, sorted. */
function filesUnder(dir) {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath ?? e.path, e.name).slice(dir.length + 1))
    .sort();
}

const tmpFiles = (dir) => filesUnder(dir).filter((f) => f.endsWith(".tmp"));

/**
 * `e` is shaped as Node's fs errors are: an Error with `errno` (negative), `code`, `syscall`,
 * `path` (a JavaScript backend's own error may lack it: it passes through as it is) and the
 * message `CODE: <libuv text>, syscall '<path>'`.
 */
function assertNodeError(e, code, syscall) {
  assert.ok(e instanceof Error, `not an Error: ${e}`);
  assert.equal(e.code, code, `code of: ${e.message}`);
  assert.equal(e.errno, -constants.errno[code]);
  if (syscall) assert.equal(e.syscall, syscall, `syscall of: ${e.message}`);
  assert.equal(typeof e.syscall, "string");
  const text = getSystemErrorMap().get(e.errno)[1];
  let message = `${code}: ${text}, ${e.syscall}`;
  if (e.path !== undefined) message += ` '${e.path}'`;
  if (e.dest !== undefined) message += ` -> '${e.dest}'`;
  assert.equal(e.message, message);
  if (!viaJsBackend && !isReference) assert.equal(typeof e.path, "string", "our own errors name the file");
}

/**
 * Sets records until the disk is full. In group mode the set that fills the buffer writes it;
 * in async mode a flush every 25 sets does. Returns the acknowledged records (every set that
 * resolved), the first rejection and the id of the set that was refused (if a set was).
 */
async function fill(store, mode) {
  const acked = new Map();
  for (let i = 0; i < 50000; i++) {
    const id = `r${i}`;
    const rec = { i, pad: PAD };
    try {
      await store.set(id, rec);
    } catch (e) {
      return { acked, error: e, refused: id };
    }
    acked.set(id, rec);
    if (mode === "async" && i % 25 === 24) {
      try {
        await store.flush();
      } catch (e) {
        return { acked, error: e, refused: null };
      }
    }
  }
  throw new Error("the disk never filled");
}

function assertHolds(store, acked) {
  for (const [id, rec] of acked) assert.deepEqual(store.get(id), rec, `record ${id}`);
}

for (const mode of ["immediate", "group", "async"]) {
  test(`${mode} mode: a full disk rejects with ENOSPC, changes nothing, and the store carries on once there is room`, { skip: mountSkip }, async (t) => {
    const fs = tmpfs(t);
    const store = await fs.open({ writeMode: mode, groupCommitSize: 20 });
    const { acked, error, refused } = await fill(store, mode);
    assertNodeError(error, "ENOSPC", "write");
    assert.ok(acked.size > 100, `only ${acked.size} writes fitted`);
    assertHolds(store, acked);
    // immediate and group: the refused set is not in the view (in group mode the sets before it
    // were acknowledged: they stay buffered and are written once there is room). async: a set
    // that reports an earlier failed write of the store's thread was queued before it failed, so
    // it stays applied and buffered too. Through a JavaScript backend every set is written in
    // its own turn: the refused one is not applied.
    const kept = refused !== null && mode === "async" && !viaJsBackend;
    if (refused) assert.equal(store.has(refused), kept, `the refused set of ${refused}`);
    assert.equal(store.count(), acked.size + (kept ? 1 : 0));

    fs.grow();
    await store.flush();
    await store.set("after", { ok: true });
    await store.compact();
    await store.set("after-compact", { ok: true });
    await store.close();
    assert.deepEqual(tmpFiles(fs.dir), []);

    const again = await fs.open({});
    assertHolds(again, acked);
    assert.deepEqual(again.get("after"), { ok: true });
    assert.deepEqual(again.get("after-compact"), { ok: true });
    if (refused) assert.equal(again.has(refused), kept);
    assert.equal(again.count(), acked.size + 2 + (kept ? 1 : 0));
  });
}

test("batch: on a full disk the whole batch is refused with ENOSPC and the view is unchanged; it goes through once there is room", { skip: mountSkip }, async (t) => {
  const fs = tmpfs(t);
  // No checkpoint may free space meanwhile (a failed one removes what it wrote): the disk stays full.
  const store = await fs.open({ checkpointThreshold: 1e9 });
  const { acked, error } = await fill(store, "immediate");
  assertNodeError(error, "ENOSPC", "write");
  const before = new Map(store.entries());
  const batch = () =>
    store.batch(() => {
      for (let j = 0; j < 10; j++) store.set(`b${j}`, { j, pad: PAD });
      store.set("r0", { changed: true });
      store.delete("r1");
    });
  await assert.rejects(batch(), (e) => (assertNodeError(e, "ENOSPC", "write"), true));
  assert.deepEqual(new Map(store.entries()), before);
  assert.equal(store.has("b0"), false);

  fs.grow();
  await batch();
  assert.equal(store.has("r1"), false);
  await store.close();
  const again = await fs.open({});
  acked.delete("r1");
  acked.set("r0", { changed: true });
  assertHolds(again, acked);
  for (let j = 0; j < 10; j++) assert.deepEqual(again.get(`b${j}`), { j, pad: PAD });
  assert.equal(again.count(), acked.size + 10);
});

test("checkpoint and close on a full disk: ENOSPC, no partial files, the lock stays held; once there is room close() succeeds and releases it", { skip: mountSkip }, async (t) => {
  const fs = tmpfs(t);
  const store = await fs.open({ checkpointThreshold: 1e9 });
  const { acked } = await fill(store, "immediate");
  const files = filesUnder(fs.dir);
  await assert.rejects(store.compact(), (e) => (assertNodeError(e, "ENOSPC"), true));
  // A JavaScript backend writes its files its own way; ours leave nothing of a failed checkpoint.
  if (!viaJsBackend) assert.deepEqual(filesUnder(fs.dir), files);
  for (let i = 0; i < 2; i++) {
    await assert.rejects(store.close(), (e) => (assertNodeError(e, "ENOSPC"), true));
    if (!viaJsBackend) assert.deepEqual(filesUnder(fs.dir), files);
  }
  // Still open, and still this process's store.
  assertHolds(store, acked);
  const second = new Store();
  await assert.rejects(second.open(fs.dir, withTestBackend({})), { message: new RegExp(`^Store is locked by process ${process.pid}\\b`) });

  fs.grow();
  await store.close();
  assert.deepEqual(tmpFiles(fs.dir), []);
  const again = await fs.open({});
  assertHolds(again, acked);
  assert.equal(again.count(), acked.size);
  assert.equal(again.getManifest().stats.activeRecords, acked.size, "close() checkpointed");
});

test("a checkpoint a write starts on a full disk loses nothing and is done once there is room", { skip: mountSkip }, async (t) => {
  const fs = tmpfs(t);
  const store = await fs.open({ checkpointThreshold: 50 });
  const { acked } = await fill(store, "immediate");
  fs.grow();
  for (let i = 0; i < 60; i++) await store.set(`later${i}`, { i });
  await store.flush();
  // The later writes made a checkpoint due, and it was written.
  assert.ok(store.stats().opsCount < 60, `opsCount ${store.stats().opsCount}`);
  await store.close();
  assert.deepEqual(tmpFiles(fs.dir), []);
  const again = await fs.open({});
  assertHolds(again, acked);
  assert.equal(again.count(), acked.size + 60);
});

// --- permission denied, read-only file system (default backend only) ---

/** What the tests compare of an error (io-errors-child.mjs describes its errors the same way). */
function describe(e) {
  return { isError: e instanceof Error, message: e.message, errno: e.errno, code: e.code, syscall: e.syscall, path: e.path };
}

/**
 * A fresh directory under the system temp dir that `nobody` may enter (not write), removed at
 * the end after running `cleanups` (unmounts) in reverse order.
 */
function sharedTemp(t, cleanups = []) {
  const base = mkdtempSync(join(tmpdir(), "opslog-perm-"));
  chmodSync(base, 0o755);
  t.after(() => {
    try {
      for (const f of cleanups.reverse()) f();
    } finally {
      rmSync(base, { recursive: true, force: true });
    }
  });
  return base;
}

/**
 * Runs io-errors-child.mjs as `nobody` with `mod`'s Store: `root-owned/` (holding a store root
 * made) may not be written; `own/` is nobody's. Returns the child's one JSON line of results.
 */
async function asNobody(t, impl) {
  const base = sharedTemp(t);
  const mod = impl === "ref" ? ref : ours;
  mkdirSync(join(base, "root-owned"), { mode: 0o755 });
  const s = new mod.Store();
  await s.open(join(base, "root-owned", "store"));
  await s.set("x", { v: 1 });
  await s.close();
  mkdirSync(join(base, "own"));
  chownSync(join(base, "own"), NOBODY, NOBODY);
  const r = spawnSync(
    "setpriv",
    ["--reuid", String(NOBODY), "--regid", String(NOBODY), "--clear-groups", ...nodeArgv(beside(import.meta.url, "io-errors-child.mjs"), impl, base)],
    { encoding: "utf8", timeout: 60000 },
  );
  assert.equal(r.status, 0, `child (${impl}) exited ${r.status ?? r.signal}\n${r.stderr}`);
  return { base, r: JSON.parse(r.stdout) };
}

/**
 * A store on a read-only bind mount: a writable open, a readOnly one, and a writable one after
 * remounting it read-write. The bind mount is undone at the end.
 */
async function readOnlyMount(t, mod) {
  const cleanups = [];
  const base = sharedTemp(t, cleanups);
  const src = join(base, "src");
  const ro = join(base, "ro");
  mkdirSync(ro);
  const s = new mod.Store();
  await s.open(join(src, "store"));
  for (let i = 0; i < 10; i++) await s.set(`k${i}`, { i });
  await s.close();
  const m = run("mount", ["--bind", "-o", "ro", src, ro]);
  assert.equal(m.status, 0, `bind mount: ${m.stderr}`);
  cleanups.push(() => {
    if (run("umount", [ro]).status !== 0) run("umount", ["-l", ro]);
  });
  const dir = join(ro, "store");
  const writable = await new mod.Store().open(dir).then(() => null, (e) => e);
  assert.ok(writable, "a writable open of a read-only mount resolved");
  const reader = new mod.Store();
  await reader.open(dir, { readOnly: true });
  const readOnlyCount = reader.count();
  await reader.close();
  const rw = run("mount", ["-o", "remount,rw,bind", ro]);
  assert.equal(rw.status, 0, `remount rw: ${rw.stderr}`);
  const w = new mod.Store();
  await w.open(dir);
  await w.set("again", { ok: true });
  await w.close();
  const last = new mod.Store();
  await last.open(dir, { readOnly: true });
  const writableAgainCount = last.count();
  await last.close();
  return { base, writable: describe(writable), after: { readOnlyCount, writableAgainCount } };
}

/** A described error is Node's shape. */
function assertShape(d, { code, syscall, path }) {
  assert.equal(d.isError, true);
  assert.equal(d.code, code, d.message);
  assert.equal(d.errno, -constants.errno[code]);
  assert.equal(d.syscall, syscall);
  if (path !== undefined) assert.equal(d.path, path);
  assert.equal(d.message, `${code}: ${getSystemErrorMap().get(d.errno)[1]}, ${d.syscall}${d.path === undefined ? "" : ` '${d.path}'`}`);
}

const ref = await import("@backloghq/opslog");
const ours = await import("../../index.mjs");
const pick = (d) => ({ code: d.code, errno: d.errno, syscall: d.syscall });

test("EACCES: opening where the user may not write rejects with Node's error; a checkpoint refused by permissions loses nothing and is done once allowed", { skip: otherUserSkip || onceSkip || (isReference && "tests ours") }, async (t) => {
  const { base, r } = await asNobody(t, "ours");
  assertShape(r.newDir, { code: "EACCES", syscall: "mkdir", path: join(base, "root-owned", "new") });
  assertShape(r.existing, { code: "EACCES", syscall: "open", path: join(base, "root-owned", "store", ".lock") });
  assertShape(r.compact, { code: "EACCES", syscall: "open" });
  assert.match(r.compact.path, new RegExp(`^${join(base, "own", "snapshots", "snap-")}\\d+\\.jsonl\\.tmp$`));
  assert.deepEqual(r.after, { setAfterRefusal: true, count: 21, tmp: [] });
});

test("EROFS: a writable open on a read-only file system rejects with Node's error; readOnly opens it, and it is writable once remounted", { skip: mountSkip || onceSkip || (isReference && "tests ours") }, async (t) => {
  const { base, writable, after } = await readOnlyMount(t, ours);
  assertShape(writable, { code: "EROFS", syscall: "open", path: join(base, "ro", "store", ".lock") });
  assert.deepEqual(after, { readOnlyCount: 10, writableAgainCount: 11 });
});

// --- differential: the same failure, ours and the reference's code/errno/syscall ---

test("differential ENOSPC: a write on a full disk fails with the reference's code, errno and syscall", { skip: mountSkip || onceSkip }, async (t) => {
  const got = {};
  for (const [name, mod] of [["ref", ref], ["ours", ours]]) {
    const fs = tmpfs(t);
    const store = await fs.open({}, mod.Store, { backend: false });
    got[name] = pick((await fill(store, "immediate")).error);
  }
  assert.deepEqual(got.ours, got.ref);
  assert.deepEqual(got.ours, { code: "ENOSPC", errno: -constants.errno.ENOSPC, syscall: "write" });
});

test("differential ENOENT: loading an archive segment whose file is gone fails as the reference's does", { skip: onceSkip }, async (t) => {
  const base = mkdtempSync(join(tmpdir(), "opslog-enoent-"));
  t.after(() => rmSync(base, { recursive: true, force: true }));
  const got = {};
  for (const [name, mod] of [["ref", ref], ["ours", ours]]) {
    const dir = join(base, name);
    const s = new mod.Store();
    await s.open(dir);
    await s.set("a", { v: 1 });
    await s.archive(() => true, "2020-Q1");
    rmSync(join(dir, "archive", "archive-2020-Q1.json"));
    const e = await s.loadArchive("2020-Q1").then(() => null, (err) => err);
    await s.close();
    assert.ok(e, `${name}: loadArchive resolved`);
    got[name] = { ...describe(e), path: e.path.slice(dir.length), message: e.message.replace(dir, "<dir>") };
  }
  assert.deepEqual(got.ours, got.ref);
  assert.equal(got.ours.code, "ENOENT");
});

// A checkpoint refused by permissions is not compared: the reference reports it as the ENOENT of
// renaming a temporary file it never managed to create (ours: the EACCES of creating it).
test("differential EACCES: the same refusals fail with the reference's code, errno, syscall and path", { skip: otherUserSkip || onceSkip }, async (t) => {
  const got = {};
  for (const impl of ["ref", "ours"]) {
    const { base, r } = await asNobody(t, impl);
    got[impl] = { after: r.after };
    for (const k of ["newDir", "existing"]) {
      got[impl][k] = { ...pick(r[k]), path: r[k].path?.slice(base.length).replace(/snap-\d+/, "snap-<ms>") };
    }
  }
  assert.deepEqual(got.ours, got.ref);
});

test("differential EROFS: a writable open on a read-only file system fails with the reference's code, errno, syscall and path", { skip: mountSkip || onceSkip }, async (t) => {
  const got = {};
  for (const [name, mod] of [["ref", ref], ["ours", ours]]) {
    const { base, writable, after } = await readOnlyMount(t, mod);
    got[name] = { ...pick(writable), path: writable.path.slice(base.length), after };
  }
  assert.deepEqual(got.ours, got.ref);
});

test("a JavaScript backend's own error passes through unchanged", { skip: onceSkip || (isReference && "tests ours") }, async (t) => {
  const base = mkdtempSync(join(tmpdir(), "opslog-jsbackend-"));
  t.after(() => rmSync(base, { recursive: true, force: true }));
  const { JsFsBackend } = await import("../backends/js-fs-backend.mjs");
  const backend = new JsFsBackend();
  // Looks like what the engine's own errors carry: left alone all the same.
  const failure = Object.assign(new Error("backend says no"), { code: "GenericFailure", cause: new Error('opslog:os-error {"errno":-28}') });
  backend.appendOps = async () => {
    throw failure;
  };
  const s = new Store();
  await s.open(join(base, "s"), { backend });
  await assert.rejects(s.set("a", { v: 1 }), (e) => e === failure && e.code === "GenericFailure");
  assert.equal(s.has("a"), false);
  await s.close();
});
