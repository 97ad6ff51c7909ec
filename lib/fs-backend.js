"use strict";
// FsBackend: the filesystem StorageBackend, callable directly (blob files beside the log, ...).
// A Store given an FsBackend uses the native engine on the same directory.
const path = require("node:path");
const { NativeFsBackend } = require("./native");
const { call } = require("./errors");

/** `[id, record, ...]` JSON text of a Map's entries. */
function itemsText(records) {
  const parts = [];
  for (const [id, record] of records) parts.push(JSON.stringify(id), JSON.stringify(record));
  return `[${parts.join(",")}]`;
}

function itemsMap(items) {
  const map = new Map();
  for (let i = 0; i < items.length; i += 2) map.set(items[i], items[i + 1]);
  return map;
}

class FsLockHandle {}

class FsBackend {
  #native = new NativeFsBackend();

  /** The directory given to `initialize` (used by Store to run its engine there). */
  get _opslogDir() {
    return this.#native.dir;
  }

  async initialize(dir, opts) {
    await call(this.#native.initialize(path.join(String(dir)), Boolean(opts?.readOnly)));
  }

  async shutdown() {
    await call(this.#native.shutdown());
  }

  async readManifest() {
    const text = await call(this.#native.readManifest());
    return text === null ? null : JSON.parse(text);
  }

  async writeManifest(manifest) {
    await call(this.#native.writeManifest(JSON.stringify(manifest, null, 2)));
  }

  async writeSnapshot(records, version) {
    return call(this.#native.writeSnapshot(itemsText(records), version));
  }

  async loadSnapshot(relativePath) {
    const { version, items } = await call(this.#native.loadSnapshot(String(relativePath)));
    return { records: itemsMap(JSON.parse(items)), version };
  }

  async appendOps(relativePath, ops) {
    const lines = `${ops.map((op) => JSON.stringify(op)).join("\n")}\n`;
    await call(this.#native.appendOps(String(relativePath), lines));
  }

  async readOps(relativePath) {
    return JSON.parse(await call(this.#native.readOps(String(relativePath))));
  }

  async truncateLastOp(relativePath) {
    return call(this.#native.truncateLastOp(String(relativePath)));
  }

  async createOpsFile() {
    return call(this.#native.createOpsFile());
  }

  async writeArchiveSegment(period, records) {
    return call(this.#native.writeArchiveSegment(String(period), itemsText(records)));
  }

  async loadArchiveSegment(relativePath) {
    return itemsMap(JSON.parse(await call(this.#native.loadArchiveSegment(String(relativePath)))));
  }

  async listArchiveSegments() {
    return call(this.#native.listArchiveSegments());
  }

  async acquireLock() {
    await call(this.#native.acquireLock());
    return new FsLockHandle();
  }

  async releaseLock(_handle) {
    await call(this.#native.releaseLock());
  }

  async createAgentOpsFile(agentId) {
    return call(this.#native.createAgentOpsFile(String(agentId)));
  }

  async listOpsFiles() {
    return call(this.#native.listOpsFiles());
  }

  async acquireCompactionLock() {
    await call(this.#native.acquireCompactionLock());
    return new FsLockHandle();
  }

  async releaseCompactionLock(_handle) {
    await call(this.#native.releaseCompactionLock());
  }

  async getManifestVersion() {
    return call(this.#native.getManifestVersion());
  }

  async writeBlob(relativePath, content) {
    await call(this.#native.writeBlob(String(relativePath), Buffer.isBuffer(content) ? content : Buffer.from(content)));
  }

  async readBlob(relativePath) {
    return call(this.#native.readBlob(String(relativePath)));
  }

  async readBlobRange(relativePath, offset, length) {
    if (offset < 0 || length < 0) throw new Error("readBlobRange: offset and length must be non-negative");
    if (length === 0) return Buffer.alloc(0);
    return call(this.#native.readBlobRange(String(relativePath), offset, length));
  }

  async listBlobs(prefix) {
    return call(this.#native.listBlobs(String(prefix)));
  }

  async deleteBlob(relativePath) {
    await call(this.#native.deleteBlob(String(relativePath)));
  }

  async deleteBlobDir(prefix) {
    await call(this.#native.deleteBlobDir(String(prefix)));
  }
}

module.exports = { FsBackend, itemsText, itemsMap };
