"use strict";
// The JavaScript half of the adapter that lets the Rust engine use any object implementing
// StorageBackend: the engine asks for `method(a, b)`, records and ops as JSON text, flags and
// numbers as themselves; this calls the backend with the shapes the reference passes (Maps of
// records, arrays of Operation objects) and hands its answer back the same way. No store logic
// lives here.
const { itemsText, itemsMap } = require("./fs-backend");

/**
 * Returns the dispatcher the engine calls, and remembers the backend's own errors in
 * `state.error` so the Store can reject with that very error object.
 */
function makeDispatcher(backend, state) {
  const methods = {
    initialize: (dir, readOnly) => backend.initialize(dir, { readOnly }).then(() => null),
    shutdown: () => backend.shutdown().then(() => null),
    acquireLock: async () => {
      state.lock = await backend.acquireLock();
      return null;
    },
    releaseLock: async () => {
      if (state.lock !== null) await backend.releaseLock(state.lock);
      state.lock = null;
      return null;
    },
    // A held lock shows as a rejection; that is an answer (false), not a failure of the store.
    acquireCompactionLock: async () => {
      try {
        state.compactionLock = await backend.acquireCompactionLock();
        return true;
      } catch {
        return false;
      }
    },
    releaseCompactionLock: async () => {
      if (state.compactionLock != null) await backend.releaseCompactionLock(state.compactionLock);
      state.compactionLock = null;
      return null;
    },
    createAgentOpsFile: async (agent) => String(await backend.createAgentOpsFile(agent)),
    readManifest: async () => {
      const manifest = await backend.readManifest();
      return manifest == null ? null : JSON.stringify(manifest);
    },
    // A string or a number, as the backend gave it (5 and "5" differ); null when it cannot tell
    // (no such method, no manifest, or a version of another type): the engine reads the
    // manifest then.
    getManifestVersion: async () => {
      if (typeof backend.getManifestVersion !== "function") return null;
      const version = await backend.getManifestVersion();
      return typeof version === "string" || typeof version === "number" ? version : null;
    },
    writeManifest: (text) => backend.writeManifest(JSON.parse(text)).then(() => null),
    writeSnapshot: async (items, version) => String(await backend.writeSnapshot(itemsMap(JSON.parse(items)), version)),
    // A version that is not a finite number counts as 1, as a missing one does.
    loadSnapshot: async (rel) => {
      const { records, version } = await backend.loadSnapshot(rel);
      return { version: Number.isFinite(version) ? version : 1, items: itemsText(records) };
    },
    readOps: async (rel) => `[${(await backend.readOps(rel)).map((op) => JSON.stringify(op)).join(",")}]`,
    appendOps: (rel, ops) => backend.appendOps(rel, JSON.parse(ops)).then(() => null),
    // The engine cuts its own view of the file: whether a line went is not its question.
    truncateLastOp: (rel) => backend.truncateLastOp(rel).then(() => null),
    createOpsFile: async () => String(await backend.createOpsFile()),
    writeArchiveSegment: async (period, items) => String(await backend.writeArchiveSegment(period, itemsMap(JSON.parse(items)))),
    loadArchiveSegment: async (rel) => itemsText(await backend.loadArchiveSegment(rel)),
  };
  return async (method, a, b) => {
    try {
      return await methods[method](a ?? undefined, b ?? undefined);
    } catch (err) {
      state.error = err;
      throw err;
    }
  };
}

module.exports = { makeDispatcher };
