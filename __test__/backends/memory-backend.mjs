// An in-memory StorageBackend written in plain JavaScript, with FsBackend's semantics (file names,
// file contents, malformed op lines skipped, last-line truncation, lock messages). Files live in a
// Map<relativePath, string> (blobs: Buffer) that several MemoryBackend instances can share, so a
// second Store "reopens" the data the first one wrote.
//
// Test hooks:
//   backend.calls           [{ method, args }] of every call, in order
//   backend.failNext(method, error, times = 1)
//                           the next `times` calls of `method` reject with `error` (the same
//                           object) before doing anything
//   backend.hook(method, fn) fn(...args) runs (and is awaited) at the start of each call
//
// memoryBackendFactory(files?) returns a function that creates MemoryBackend instances over one
// shared file Map, for suites that want to run against a non-filesystem backend.
import { join } from "node:path";

function enoent(rel, syscall = "open") {
  const err = new Error(`ENOENT: no such file or directory, ${syscall} '${rel}'`);
  err.code = "ENOENT";
  err.errno = -2;
  err.syscall = syscall;
  err.path = rel;
  return err;
}

function pidAlive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

const nonEmptyString = (v) => typeof v === "string" && v.length > 0;
const nonNegInt = (v) => typeof v === "number" && Number.isInteger(v) && v >= 0;

/** Same acceptance as the reference's validateOp (messages are not needed here). */
function isValidOp(o) {
  if (typeof o !== "object" || o === null || Array.isArray(o)) return false;
  if (!nonEmptyString(o.ts) || (o.op !== "set" && o.op !== "delete") || !nonEmptyString(o.id)) return false;
  if (!("prev" in o)) return false;
  if (o.prev !== null && (typeof o.prev !== "object" || Array.isArray(o.prev))) return false;
  if (o.op === "set" && (!("data" in o) || o.data === null)) return false;
  if (o.op === "delete" && (o.prev === null || "data" in o)) return false;
  if ("encoding" in o && o.encoding !== "full" && o.encoding !== "delta") return false;
  if ("agent" in o && !nonEmptyString(o.agent)) return false;
  if ("clock" in o && !nonNegInt(o.clock)) return false;
  return true;
}

function parseSnapshotText(text) {
  const nl = text.indexOf("\n");
  const first = nl === -1 ? text : text.slice(0, nl);
  let head;
  try {
    head = JSON.parse(first);
  } catch {
    head = JSON.parse(text); // pretty-printed legacy snapshot
  }
  if ("records" in head) {
    if (typeof head.records !== "object" || head.records === null || Array.isArray(head.records)) {
      throw new Error("Invalid snapshot: records must be an object");
    }
    return { records: new Map(Object.entries(head.records)), version: head.version };
  }
  const records = new Map();
  for (const line of text.split("\n").slice(1)) {
    const l = line.trim();
    if (!l) continue;
    const entry = JSON.parse(l);
    records.set(entry.id, entry.data);
  }
  return { records, version: head.version };
}

/** Per shared file Map: last time-derived name ms and the manifest write counter. */
const volumes = new WeakMap();
function volume(files) {
  let v = volumes.get(files);
  if (!v) {
    v = { lastMs: 0, manifestWrites: 0 };
    volumes.set(files, v);
  }
  return v;
}

export class MemoryBackend {
  /** @param {Map<string, string | Buffer>} files shared file store (relative path → content) */
  constructor(files = new Map()) {
    this.files = files;
    this.dir = "";
    this.readOnly = false;
    this.calls = [];
    this.failures = new Map();
    this.hooks = new Map();
  }

  failNext(method, error, times = 1) {
    this.failures.set(method, { error, times });
  }

  hook(method, fn) {
    this.hooks.set(method, fn);
  }

  /** Calls of one method, as arrays of arguments. */
  callsOf(method) {
    return this.calls.filter((c) => c.method === method).map((c) => c.args);
  }

  async #enter(method, args) {
    this.calls.push({ method, args });
    const hook = this.hooks.get(method);
    if (hook) await hook(...args);
    const f = this.failures.get(method);
    if (f && f.times > 0) {
      f.times--;
      if (f.times === 0) this.failures.delete(method);
      throw f.error;
    }
  }

  /** A unique, increasing millisecond stamp for time-derived file names. */
  #stamp() {
    const v = volume(this.files);
    v.lastMs = Math.max(Date.now(), v.lastMs + 1);
    return v.lastMs;
  }

  #text(rel) {
    const content = this.files.get(rel);
    if (content === undefined) throw enoent(rel);
    return typeof content === "string" ? content : content.toString("utf8");
  }

  // -- lifecycle --

  async initialize(dir, opts) {
    await this.#enter("initialize", [dir, opts]);
    this.dir = dir;
    this.readOnly = Boolean(opts && opts.readOnly);
  }

  async shutdown() {
    await this.#enter("shutdown", []);
  }

  // -- manifest --

  async readManifest() {
    await this.#enter("readManifest", []);
    const text = this.files.get("manifest.json");
    if (text === undefined) return null;
    const m = JSON.parse(text);
    if (typeof m !== "object" || m === null || !nonEmptyString(m.currentSnapshot) || !nonEmptyString(m.activeOps)) {
      throw new Error("Invalid manifest");
    }
    return m;
  }

  async writeManifest(manifest) {
    await this.#enter("writeManifest", [manifest]);
    this.files.set("manifest.json", JSON.stringify(manifest, null, 2));
    volume(this.files).manifestWrites++;
  }

  async getManifestVersion() {
    await this.#enter("getManifestVersion", []);
    if (!this.files.has("manifest.json")) return null;
    return String(volume(this.files).manifestWrites);
  }

  // -- snapshots --

  async writeSnapshot(records, version) {
    await this.#enter("writeSnapshot", [records, version]);
    let text = JSON.stringify({ version, timestamp: new Date().toISOString() }) + "\n";
    for (const [id, data] of records) text += JSON.stringify({ id, data }) + "\n";
    const rel = `snapshots/snap-${this.#stamp()}.jsonl`;
    this.files.set(rel, text);
    return rel;
  }

  async loadSnapshot(relativePath) {
    await this.#enter("loadSnapshot", [relativePath]);
    return parseSnapshotText(this.#text(relativePath));
  }

  // -- op log --

  async appendOps(relativePath, ops) {
    await this.#enter("appendOps", [relativePath, ops]);
    const text = ops.map((op) => JSON.stringify(op)).join("\n") + "\n";
    this.files.set(relativePath, (this.files.get(relativePath) ?? "") + text);
  }

  async readOps(relativePath) {
    await this.#enter("readOps", [relativePath]);
    const text = this.files.get(relativePath);
    if (text === undefined) return [];
    const ops = [];
    let skipped = 0;
    for (const line of String(text).split("\n")) {
      if (!line.trim()) continue;
      let op;
      try {
        op = JSON.parse(line);
      } catch {
        skipped++;
        continue;
      }
      if (isValidOp(op)) ops.push(op);
      else skipped++;
    }
    if (skipped > 0) console.error(`opslog: skipped ${skipped} malformed line(s) in ${relativePath}`);
    return ops;
  }

  async truncateLastOp(relativePath) {
    await this.#enter("truncateLastOp", [relativePath]);
    const text = this.files.get(relativePath);
    if (text === undefined || text.length === 0) return false;
    const cut = text.lastIndexOf("\n", text.length - 2);
    this.files.set(relativePath, cut === -1 ? "" : text.slice(0, cut + 1));
    return true;
  }

  async createOpsFile() {
    await this.#enter("createOpsFile", []);
    const rel = `ops/ops-${this.#stamp()}.jsonl`;
    this.files.set(rel, "");
    return rel;
  }

  async createAgentOpsFile(agentId) {
    await this.#enter("createAgentOpsFile", [agentId]);
    const rel = `ops/agent-${agentId}-${this.#stamp()}.jsonl`;
    this.files.set(rel, "");
    return rel;
  }

  async listOpsFiles() {
    await this.#enter("listOpsFiles", []);
    return [...this.files.keys()].filter((k) => /^ops\/[^/]+\.jsonl$/.test(k));
  }

  // -- archive --

  async writeArchiveSegment(period, records) {
    await this.#enter("writeArchiveSegment", [period, records]);
    const rel = `archive/archive-${period}.json`;
    const existing = this.files.has(rel) ? JSON.parse(this.#text(rel)).records : {};
    const segment = {
      version: 1,
      period,
      timestamp: new Date().toISOString(),
      records: { ...existing, ...Object.fromEntries(records) },
    };
    this.files.set(rel, JSON.stringify(segment, null, 2));
    return rel;
  }

  async loadArchiveSegment(relativePath) {
    await this.#enter("loadArchiveSegment", [relativePath]);
    const seg = JSON.parse(this.#text(relativePath));
    return new Map(Object.entries(seg.records));
  }

  async listArchiveSegments() {
    await this.#enter("listArchiveSegments", []);
    return [...this.files.keys()].filter((k) => /^archive\/archive-[^/]*\.json$/.test(k));
  }

  // -- locks --

  async acquireLock() {
    await this.#enter("acquireLock", []);
    const held = this.files.get(".lock");
    if (held !== undefined) {
      const pid = parseInt(String(held), 10);
      if (!Number.isNaN(pid) && pidAlive(pid)) {
        throw new Error(`Store is locked by process ${pid}. If this is stale, delete ${join(this.dir, ".lock")}`);
      }
    }
    this.files.set(".lock", String(process.pid));
    return { kind: "memory-lock", file: ".lock" };
  }

  async releaseLock(handle) {
    await this.#enter("releaseLock", [handle]);
    this.files.delete(handle.file);
  }

  async acquireCompactionLock() {
    await this.#enter("acquireCompactionLock", []);
    if (this.files.has(".compact-lock")) throw new Error("Compaction lock held by another agent");
    this.files.set(".compact-lock", String(process.pid));
    return { kind: "memory-lock", file: ".compact-lock" };
  }

  async releaseCompactionLock(handle) {
    await this.#enter("releaseCompactionLock", [handle]);
    this.files.delete(handle.file);
  }

  // -- blobs --

  async writeBlob(relativePath, content) {
    await this.#enter("writeBlob", [relativePath, content]);
    this.files.set(relativePath, Buffer.from(content));
  }

  async readBlob(relativePath) {
    await this.#enter("readBlob", [relativePath]);
    const c = this.files.get(relativePath);
    if (c === undefined) throw enoent(relativePath);
    return Buffer.from(c);
  }

  async readBlobRange(relativePath, offset, length) {
    await this.#enter("readBlobRange", [relativePath, offset, length]);
    if (offset < 0 || length < 0) throw new Error("readBlobRange: offset and length must be non-negative");
    if (length === 0) return Buffer.alloc(0);
    const c = this.files.get(relativePath);
    if (c === undefined) throw enoent(relativePath);
    return Buffer.from(Buffer.from(c).subarray(offset, offset + length));
  }

  async listBlobs(prefix) {
    await this.#enter("listBlobs", [prefix]);
    const p = prefix.endsWith("/") ? prefix : prefix + "/";
    const names = new Set();
    for (const k of this.files.keys()) if (k.startsWith(p)) names.add(k.slice(p.length).split("/")[0]);
    return [...names];
  }

  async deleteBlob(relativePath) {
    await this.#enter("deleteBlob", [relativePath]);
    this.files.delete(relativePath);
  }

  async deleteBlobDir(prefix) {
    await this.#enter("deleteBlobDir", [prefix]);
    const p = prefix.endsWith("/") ? prefix : prefix + "/";
    for (const k of [...this.files.keys()]) if (k.startsWith(p)) this.files.delete(k);
  }
}

/** The 26 StorageBackend methods. */
export const BACKEND_METHODS = [
  "initialize",
  "shutdown",
  "readManifest",
  "writeManifest",
  "writeSnapshot",
  "loadSnapshot",
  "appendOps",
  "readOps",
  "truncateLastOp",
  "createOpsFile",
  "writeArchiveSegment",
  "loadArchiveSegment",
  "listArchiveSegments",
  "acquireLock",
  "releaseLock",
  "createAgentOpsFile",
  "listOpsFiles",
  "acquireCompactionLock",
  "releaseCompactionLock",
  "getManifestVersion",
  "writeBlob",
  "readBlob",
  "readBlobRange",
  "listBlobs",
  "deleteBlob",
  "deleteBlobDir",
];

/**
 * A factory of MemoryBackend instances over one shared file Map: pass `{ backend: factory() }` to
 * each Store.open to run a suite against a non-filesystem backend. `factory.files` is the Map.
 */
export function memoryBackendFactory(files = new Map()) {
  const factory = () => new MemoryBackend(files);
  factory.files = files;
  return factory;
}
