"use strict";
// The helper exports of the reference, backed by the engine's own implementations.
const path = require("node:path");
const { open } = require("node:fs/promises");
const native = require("./native");
const { call, withCode } = require("./errors");
const { recordEntries } = require("./stream");

/** JSON text of a value for the engine's validators; values JSON cannot hold count as null. */
function jsonOf(value) {
  try {
    return JSON.stringify(value) ?? "null";
  } catch {
    return "null";
  }
}

function validator(check) {
  return (raw) => {
    const message = check(jsonOf(raw));
    if (message !== null) throw new Error(message);
    return raw;
  };
}

const validateOp = validator(native.validateOpText);
const validateManifest = validator(native.validateManifestText);
const validateSnapshot = validator(native.validateSnapshotText);
const validateArchiveSegment = validator(native.validateArchiveSegmentText);

function createDelta(oldRecord, newRecord) {
  if (oldRecord === null) return null;
  const text = native.deltaCreate(JSON.stringify(oldRecord), JSON.stringify(newRecord));
  return text === null ? null : JSON.parse(text);
}

function applyDelta(record, patch) {
  const text = native.deltaApply(JSON.stringify(record), JSON.stringify(patch));
  return text === null ? { ...record } : JSON.parse(text);
}

function isDeltaSmaller(patch, fullRecord) {
  if (patch === null || fullRecord === null) return false;
  return native.deltaIsSmaller(JSON.stringify(patch), JSON.stringify(fullRecord));
}

/** Streams `[id, record]` from a snapshot file; returns `{version}`. */
function streamSnapshotFile(dir, relativePath) {
  return recordEntries(() => {
    const cursor = native.snapshotFileCursor(path.join(String(dir)), String(relativePath));
    return { read: (max) => call(cursor.next(max)), end: () => ({ version: cursor.version() }) };
  });
}

/** The engine's lock behind each handle `acquireLock` gave out. */
const heldLocks = new WeakMap();

/** Takes `.lock` (the engine's protocol) and resolves to a FileHandle on it, as the reference does. */
async function acquireLock(dir) {
  const normalized = path.join(String(dir));
  let lock;
  try {
    lock = native.acquireDirLock(normalized);
  } catch (err) {
    throw withCode(err);
  }
  try {
    const fh = await open(path.join(normalized, ".lock"), "r");
    heldLocks.set(fh, lock);
    return fh;
  } catch (err) {
    lock.release();
    throw err;
  }
}

async function releaseLock(_dir, fh) {
  await fh.close();
  heldLocks.get(fh)?.release();
  heldLocks.delete(fh);
}

module.exports = {
  LamportClock: native.LamportClock,
  createDelta,
  applyDelta,
  isDeltaSmaller,
  streamSnapshotFile,
  acquireLock,
  releaseLock,
  validateOp,
  validateManifest,
  validateSnapshot,
  validateArchiveSegment,
};
