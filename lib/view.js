"use strict";
// The record view: the JavaScript Map of decoded records the facade reads synchronously. The
// engine owns the records (as JSON text); the view mirrors them in the engine's order. After a
// lazy open (a large snapshot) the view holds only the records read or written since: any other
// is the engine's, decoded on its first read, and the first visit of them all decodes every
// record from the engine's, in the engine's order; their Map is then built in the background.
const path = require("node:path");
const fsp = require("node:fs/promises");
const { recordPairsCursor } = require("./native");
const { withCode } = require("./errors");
const { ReadAhead, parsePairs, eachPair } = require("./stream");

/** Records per chunk when the engine hands its state to the view (keeps event-loop turns short). */
const EXPORT_CHUNK = 16384;

/** Records a turn of the event loop adds to the Map while it is built in the background. */
const INDEX_CHUNK = 16384;

/** Records per worker round trip when the view is read from the snapshot file at open. */
const VIEW_CHUNK = 8192;

/**
 * A snapshot file this large or larger opens lazily: the view starts empty, and each record is
 * decoded on its first read (the first `all()`, `filter()`... decodes the rest). Decoding costs
 * ~8 ms per MB here, so below this the whole view is built at open. (Tests lower it.) Not even
 * the ids are read at open: a Map of a million of them costs ~0.7 s to build and ~60 MB, and
 * the engine knows them.
 */
const LAZY_VIEW_BYTES = Number(process.env.OPSLOG_LAZY_VIEW_BYTES) || 32 * 1024 * 1024;

/**
 * Reads the current snapshot's records into a Map, on workers, while the engine opens the store:
 * `view` resolves to `{map, snapshot, lazy}`, or to null when the file is not a plain JSONL
 * snapshot, moved on meanwhile, or `abandon()` was called (the view is then built from the
 * engine). `lazy` (a large snapshot): nothing is read, `map` is null.
 */
function earlyView(dir) {
  let abandoned = false;
  const read = async () => {
    const { currentSnapshot } = JSON.parse(await fsp.readFile(path.join(dir, "manifest.json"), "utf8"));
    const rel = String(currentSnapshot);
    if ((await fsp.stat(path.join(dir, rel))).size >= LAZY_VIEW_BYTES) return { map: null, snapshot: currentSnapshot, lazy: true };
    const cursor = recordPairsCursor(dir, rel);
    const map = new Map();
    const batches = new ReadAhead(() => cursor.next(VIEW_CHUNK), parsePairs);
    for (let items; (items = await batches.next()) !== null; ) {
      if (abandoned) return null;
      for (let i = 0; i < items.length; i += 2) map.set(items[i], items[i + 1]);
    }
    return { map, snapshot: currentSnapshot, lazy: false };
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
  /**
   * id -> record, in the engine's order. While `#lazy`, only the records read or written since
   * the lazy open, in no particular order: the engine has the others. While `#pending`, the
   * first `indexed` of its records.
   */
  #map = new Map();
  /** The view is partial (a lazy open): records not in the Map are the engine's. */
  #lazy = false;
  /**
   * After the first full read of a lazy view: every record, decoded, in the engine's order, as
   * `{ids, values, indexed}` (`indexed`: how many are in the Map so far), whose Map is built in
   * the background, a chunk a turn of the event loop; any other use of the view finishes it
   * first (a Map of a million records costs ~0.6 s to build, which the full read that decoded
   * them need not wait for). Null when there is none.
   */
  #pending = null;
  /** `engine()`: the engine, once the writes collected in JavaScript have reached it. */
  #engine;

  constructor(engine) {
    this.#engine = engine;
  }

  get size() {
    if (this.#lazy) return this.#call((engine) => engine.recordCount());
    return this.#pending === null ? this.#map.size : this.#pending.ids.length;
  }

  get(id) {
    const value = this.#whole().get(id);
    return value === undefined && this.#lazy ? this.#decode(id) : value;
  }

  has(id) {
    if (this.#whole().has(id)) return true;
    return this.#lazy && this.#call((engine) => engine.hasRecord(JSON.stringify(id)));
  }

  set(id, value) {
    this.#whole().set(id, value);
  }

  delete(id) {
    this.#whole().delete(id);
  }

  /** The Map with every record decoded (before anything visits them all). Not to be changed. */
  decoded() {
    if (this.#lazy) this.#decodeAll();
    return this.#whole();
  }

  /** Every record, in order, as a new array (a first full read does not wait for the Map). */
  values() {
    if (this.#lazy) this.#decodeAll();
    return this.#pending === null ? Array.from(this.#map.values()) : this.#pending.values.slice();
  }

  /**
   * Takes the view read from the snapshot file at open, once it is known to be of the snapshot
   * the engine loaded: plus the ops the engine replayed, it is the engine's state. False (build it
   * from the engine with `load`) when it is not. A lazy one is empty: the engine has it all.
   */
  adopt(early, currentSnapshot) {
    if (!early || early.snapshot !== currentSnapshot) return false;
    this.#pending = null;
    if (early.lazy) {
      this.#map = new Map();
      this.#lazy = true;
      return true;
    }
    const map = early.map;
    const engine = this.#engine();
    applyOps(map, JSON.parse(engine.getOps(null)));
    if (map.size !== engine.recordCount()) return false;
    this.#map = map;
    this.#lazy = false;
    return true;
  }

  /** Fills the view from the engine's records, yielding to the event loop between chunks. */
  async load() {
    const map = this.#map;
    map.clear();
    this.#lazy = false;
    this.#pending = null;
    for (const items of exportedChunks(this.#engine())) {
      for (let i = 0; i < items.length; i += 2) map.set(items[i], items[i + 1]);
      await new Promise(setImmediate);
    }
  }

  applyOps(ops) {
    applyOps(this.#whole(), ops);
  }

  /** Applies `[[id, record|null], ...]` (null: the record is gone). */
  applyEffects(effects) {
    const map = this.#whole();
    for (const [id, record] of effects) {
      if (record === null) map.delete(id);
      else map.set(id, record);
    }
  }

  /** Takes the engine's word for one record (`idText` its id as JSON text). */
  reread(idText) {
    const map = this.#whole();
    const text = this.#engine().recordText(idText);
    if (text === null) map.delete(JSON.parse(idText));
    else map.set(JSON.parse(idText), JSON.parse(text));
  }

  /** Puts the records in the order of `ids` (all of the view's). A partial view has no order. */
  reorder(ids) {
    if (this.#lazy) return;
    const map = this.#whole();
    const entries = ids.map((id) => [id, map.get(id)]);
    map.clear();
    for (const [id, record] of entries) map.set(id, record);
  }

  /** `fn(engine)`, its errors with their codes. */
  #call(fn) {
    try {
      return fn(this.#engine());
    } catch (err) {
      throw withCode(err);
    }
  }

  /** The first read of a record a lazy open left to the engine: decoded once, kept in the view. */
  #decode(id) {
    const text = this.#call((engine) => engine.recordText(JSON.stringify(id)));
    if (text === null) return undefined;
    const value = JSON.parse(text);
    this.#map.set(id, value);
    return value;
  }

  /**
   * The whole view, decoded once from the engine's records in its order, each record as decoded
   * from the engine's text unless the view has it already (read or written since the open: the
   * same object stays). The Map is then built in the background (see `#pending`).
   */
  #decodeAll() {
    const known = this.#map;
    const ids = [];
    const values = [];
    const fresh = (id, record) => {
      ids.push(id);
      values.push(record);
    };
    const keepKnown = (id, record) => {
      ids.push(id);
      values.push(known.get(id) ?? record);
    };
    this.#call((engine) => engine.exportAllRecords(EXPORT_CHUNK, (batch) => eachPair(batch, known.size === 0 ? fresh : keepKnown)));
    this.#map = new Map();
    this.#lazy = false;
    const pending = { ids, values, indexed: 0 };
    this.#pending = pending;
    const step = () => {
      if (this.#pending !== pending) return; // finished meanwhile
      this.#index(INDEX_CHUNK);
      // (Unreferenced: the Map is only ever needed by this process's own later calls.)
      if (this.#pending === pending) setImmediate(step).unref();
    };
    setImmediate(step).unref();
  }

  /** Adds up to `n` more of the pending records to the Map; all of them: the view is whole. */
  #index(n) {
    const pending = this.#pending;
    const { ids, values } = pending;
    const map = this.#map;
    const end = Math.min(ids.length, pending.indexed + n);
    for (let i = pending.indexed; i < end; i++) map.set(ids[i], values[i]);
    pending.indexed = end;
    if (end === ids.length) this.#pending = null;
  }

  /** The Map, with the records decoded and not indexed yet put in now. */
  #whole() {
    if (this.#pending !== null) this.#index(Infinity);
    return this.#map;
  }
}

module.exports = { RecordView, earlyView, exportedChunks };
