"use strict";
// The record view: the JavaScript Map of decoded records the facade reads synchronously. The
// engine owns the records (as JSON text); the view mirrors them in the engine's order. After a
// lazy open (a large snapshot) the view holds `UNREAD` for each record, decoded on its first read.
const path = require("node:path");
const fsp = require("node:fs/promises");
const { recordPairsCursor, recordIdsCursor } = require("./native");
const { withCode } = require("./errors");
const { ReadAhead, parseIds, parsePairs } = require("./stream");

/** Records per chunk when the engine hands its state to the view (keeps event-loop turns short). */
const EXPORT_CHUNK = 16384;

/** Records per worker round trip when the view is read from the snapshot file at open. */
const VIEW_CHUNK = 8192;

/**
 * A snapshot file this large or larger opens lazily: the view holds the ids, and each record is
 * decoded on its first read (the first `all()`, `filter()`... decodes the rest). Decoding costs
 * ~8 ms per MB here, so below this the whole view is built at open. (Tests lower it.)
 */
const LAZY_VIEW_BYTES = Number(process.env.OPSLOG_LAZY_VIEW_BYTES) || 32 * 1024 * 1024;

/** The view's value for a record not decoded yet: its text is in the engine. Never handed out. */
const UNREAD = Object.freeze({});

/**
 * Reads the current snapshot's records into a Map, on workers, while the engine opens the store:
 * `view` resolves to `{map, snapshot, lazy}`, or to null when the file is not a plain JSONL
 * snapshot, moved on meanwhile, or `abandon()` was called (the view is then built from the
 * engine). `lazy`: the map holds `UNREAD` for each record (a large snapshot).
 */
function earlyView(dir) {
  let abandoned = false;
  const read = async () => {
    const { currentSnapshot } = JSON.parse(await fsp.readFile(path.join(dir, "manifest.json"), "utf8"));
    const rel = String(currentSnapshot);
    const lazy = (await fsp.stat(path.join(dir, rel))).size >= LAZY_VIEW_BYTES;
    const cursor = (lazy ? recordIdsCursor : recordPairsCursor)(dir, rel);
    const map = new Map();
    const batches = new ReadAhead(() => cursor.next(VIEW_CHUNK), lazy ? parseIds : parsePairs);
    for (let items; (items = await batches.next()) !== null; ) {
      if (abandoned) return null;
      if (lazy) for (let i = 0; i < items.length; i++) map.set(items[i], UNREAD);
      else for (let i = 0; i < items.length; i += 2) map.set(items[i], items[i + 1]);
    }
    return { map, snapshot: currentSnapshot, lazy };
  };
  return {
    view: read().catch(() => null),
    abandon: () => (abandoned = true),
  };
}

/** The engine's records in order, as `[id, record, ...]` arrays of up to EXPORT_CHUNK records. */
function* exportedChunks(engine) {
  for (let start = 0; ; ) {
    let batch;
    try {
      batch = engine.exportRecords(start, EXPORT_CHUNK);
    } catch (err) {
      throw withCode(err);
    }
    if (batch === null) return;
    yield parsePairs(batch);
    start = batch[2];
  }
}

/** Applies ops (objects as the op files hold them) to a Map of records, in order. */
function applyOps(map, ops) {
  for (const op of ops) {
    if (op.op === "set") map.set(op.id, op.data);
    else map.delete(op.id);
  }
}

class RecordView {
  /** id -> record (or UNREAD), in the engine's order. */
  #map = new Map();
  /** Some records may still be `UNREAD` (a lazy open). */
  #lazy = false;
  /** `engine()`: the engine, once the writes collected in JavaScript have reached it. */
  #engine;

  constructor(engine) {
    this.#engine = engine;
  }

  get size() {
    return this.#map.size;
  }

  get(id) {
    const value = this.#map.get(id);
    return value === UNREAD ? this.#decode(id) : value;
  }

  has(id) {
    return this.#map.has(id);
  }

  set(id, value) {
    this.#map.set(id, value);
  }

  delete(id) {
    this.#map.delete(id);
  }

  /** The Map with every record decoded (before anything visits them all). Not to be changed. */
  decoded() {
    if (this.#lazy) this.#decodeAll();
    return this.#map;
  }

  /**
   * Takes the view read from the snapshot file at open, once it is known to be of the snapshot
   * the engine loaded: plus the ops the engine replayed, it is the engine's state. False (build it
   * from the engine with `load`) when it is not.
   */
  adopt(early, currentSnapshot) {
    if (!early || early.snapshot !== currentSnapshot) return false;
    const map = early.map;
    const engine = this.#engine();
    applyOps(map, JSON.parse(engine.getOps(null)));
    if (map.size !== engine.recordCount()) return false;
    this.#map = map;
    this.#lazy = early.lazy;
    return true;
  }

  /** Fills the view from the engine's records, yielding to the event loop between chunks. */
  async load() {
    const map = this.#map;
    map.clear();
    this.#lazy = false;
    for (const items of exportedChunks(this.#engine())) {
      for (let i = 0; i < items.length; i += 2) map.set(items[i], items[i + 1]);
      await new Promise(setImmediate);
    }
  }

  applyOps(ops) {
    applyOps(this.#map, ops);
  }

  /** Applies `[[id, record|null], ...]` (null: the record is gone). */
  applyEffects(effects) {
    for (const [id, record] of effects) {
      if (record === null) this.#map.delete(id);
      else this.#map.set(id, record);
    }
  }

  /** Takes the engine's word for one record (`idText` its id as JSON text). */
  reread(idText) {
    const text = this.#engine().recordText(idText);
    if (text === null) this.#map.delete(JSON.parse(idText));
    else this.#map.set(JSON.parse(idText), JSON.parse(text));
  }

  /** Puts the records in the order of `ids` (all of the view's). */
  reorder(ids) {
    const map = this.#map;
    const entries = ids.map((id) => [id, map.get(id)]);
    map.clear();
    for (const [id, record] of entries) map.set(id, record);
  }

  /** The first read of a record a lazy open left undecoded: decoded once, kept in the view. */
  #decode(id) {
    let text;
    try {
      text = this.#engine().recordText(JSON.stringify(id));
    } catch (err) {
      throw withCode(err);
    }
    if (text === null) throw new Error(`opslog: record ${JSON.stringify(id)} is in the view but not in the store`);
    const value = JSON.parse(text);
    this.#map.set(id, value);
    return value;
  }

  #decodeAll() {
    const map = this.#map;
    for (const items of exportedChunks(this.#engine())) {
      for (let i = 0; i < items.length; i += 2) if (map.get(items[i]) === UNREAD) map.set(items[i], items[i + 1]);
    }
    this.#lazy = false;
  }
}

module.exports = { RecordView, earlyView, exportedChunks };
