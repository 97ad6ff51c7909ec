"use strict";
// The Store facade: the reference's exact API over the Rust engine. The engine owns the records
// (as JSON text), the log and the files; this class keeps a Map of the decoded objects so reads
// are plain synchronous Map reads, and orders mutations one at a time in call order.
const path = require("node:path");
const { NativeStore, recordPairsCursor, recordIdsCursor } = require("./native");
const fsp = require("node:fs/promises");
const { checkId, recordText, checkOptions, checkPeriod } = require("./validate");
const { FsBackend } = require("./fs-backend");
const { makeDispatcher } = require("./js-backend");
const { withCode, passThrough } = require("./errors");
const { ReadAhead, STREAM_BATCH, parseIds, parseOps, parsePairs } = require("./stream");

const NOT_OPEN = "Store is not open. Call open() first.";
const READ_ONLY = "Store is read-only. Cannot perform mutations.";
/** Records per chunk when the engine hands its state to the view (keeps event-loop turns short). */
const EXPORT_CHUNK = 16384;
const RESOLVED = Promise.resolve();
const noop = () => {};

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

/** A checkpoint a write started failed. Nothing is lost: the ops stay in the current op file (or
 * buffered), and the next write retries it. */
function checkpointFailed(err) {
  console.error(`opslog: checkpoint failed (retried after the next write): ${err.message}`);
}

function defaultPeriod() {
  const now = new Date();
  return `${now.getFullYear()}-Q${Math.ceil((now.getMonth() + 1) / 3)}`;
}

class Store {
  #native = null;
  #records = new Map();
  /** Some records of the view may still be `UNREAD` (a lazy open). */
  #lazy = false;
  #opened = false;
  #readOnly = false;
  #skipLoad = false;
  #buffered = false;
  #groupMs = 100;
  #groupTimer = null;
  #manifest = null;
  #queue = RESOLVED;
  #queued = 0;
  #batching = false;
  /** A call of the open batch was refused as invalid (SPEC 7.6): its rollback changes nothing. */
  #refused = false;
  #watchTimer = null;
  #watchCallback = null;
  /** A JavaScript StorageBackend's adapter state ({lock, error}), or null for the native filesystem. */
  #adapter = null;
  /** An FsBackend instance the caller passed (initialised on open, shut down on close). */
  #fsBackend = null;
  #multiWriter = false;
  /** `durable`: writes resolve once fsynced; concurrent writes share one fsync. */
  #durable = false;
  /** The fsync in flight, and the one that starts when it ends (shared by writes made meanwhile). */
  #syncing = null;
  #nextSync = null;
  /**
   * `async` and `group` modes: sets not yet handed to the engine, as `[idText, recordText, ms,
   * ...]` (`ms` is "" when it is the previous set's: many sets come to the millisecond); the
   * engine gets them in one call before anything else reaches it (see #engine), or once there
   * are enough of them: `groupCommitSize` in `async` mode, `#room` in `group` mode. Null in
   * `immediate` mode and with a JavaScript backend.
   */
  #deferred = null;
  /** `group` mode: the engine applies the sets handed over at once, on this thread. */
  #groupDefer = false;
  /**
   * `group` mode: how many sets may be collected before they are handed over, so that the
   * buffer is written, and a checkpoint comes due, after the same set as if each set were
   * handed over on its own (0: unknown, the next set goes at once and learns it).
   */
  #room = 0;
  /** The sets of the open batch not yet handed to the engine, as #deferred holds them. */
  #staged = [];
  /** Ids (JSON text) of staged sets whose handing over failed: rollback reads them back. */
  #unsure = [];
  /** The `ms` of the last set collected in #deferred or #staged (NaN after a hand-over). */
  #lastMs = NaN;
  #groupSize = 50;
  /**
   * The checkpoints writes made due, which the engine writes on a worker while sets and deletes
   * go on (they are carried into the new op file); everything else waits for them. Settles,
   * never rejects; null when none is running.
   */
  #background = null;

  async open(dir, options) {
    try {
      return await this.#open(dir, options);
    } catch (err) {
      throw withCode(err);
    }
  }

  async #open(dir, options) {
    const o = checkOptions(options);
    if (o.agentId !== undefined && o.writeMode !== "immediate") {
      console.error(`opslog: writeMode '${o.writeMode}' is not compatible with multi-writer (agentId). Using 'immediate'.`);
      o.writeMode = "immediate";
    }
    dir = path.join(String(dir));
    let dispatch = null;
    this.#adapter = null;
    this.#fsBackend = null;
    if (o.backend instanceof FsBackend) {
      this.#fsBackend = o.backend;
      await o.backend.initialize(dir, { readOnly: o.readOnly });
    } else if (o.backend !== undefined) {
      this.#adapter = { lock: null, error: null };
      dispatch = makeDispatcher(o.backend, this.#adapter);
    }
    this.#readOnly = o.readOnly;
    this.#multiWriter = o.agentId !== undefined;
    this.#skipLoad = o.skipLoad;
    this.#buffered = o.writeMode !== "immediate";
    this.#groupMs = o.groupCommitMs;
    this.#groupSize = o.groupCommitSize;
    this.#deferred = o.writeMode !== "immediate" && !this.#adapter && !o.readOnly ? [] : null;
    this.#groupDefer = o.writeMode === "group";
    this.#room = 0;
    // A JavaScript backend's own methods decide when its data is durable.
    this.#durable = o.durable && !this.#adapter && !o.readOnly;
    const native = new NativeStore();
    // The view is built from the snapshot file while the engine loads (and checks) the same file.
    const early = this.#adapter || this.#multiWriter || o.skipLoad ? null : earlyView(dir);
    const opening = this.#call(native.open(dir, {
        checkpointThreshold: o.checkpointThreshold,
        checkpointOnClose: o.checkpointOnClose,
        version: o.version,
        readOnly: o.readOnly,
        skipLoad: o.skipLoad,
        writeMode: o.writeMode,
        groupCommitSize: o.groupCommitSize,
        agentId: o.agentId,
        durable: this.#durable,
      }, dispatch));
    let info;
    try {
      info = JSON.parse(await opening);
    } catch (err) {
      early?.abandon();
      throw err;
    }
    this.#native = native;
    this.#manifest = JSON.parse(native.manifest());
    let view = null;
    if (info.needsMigration) {
      // The file's records are not the migrated ones: the view comes from the engine.
      early?.abandon();
      await early?.view;
      await this.#migrate(o.migrate, info.storedVersion);
    } else if (early) {
      view = await early.view;
    }
    this.#records = new Map();
    if (!this.#adoptView(view)) await this.#loadView();
    this.#opened = true;
  }

  /**
   * Takes the view read from the snapshot file at open, once it is known to be of the snapshot
   * the engine loaded: plus the ops the engine replayed, it is the engine's state. False (build it
   * from the engine) when it is not.
   */
  #adoptView(view) {
    if (!view || view.snapshot !== this.#manifest.currentSnapshot) return false;
    const map = view.map;
    applyOps(map, JSON.parse(this.#engine.getOps(null)));
    if (map.size !== this.#engine.recordCount()) return false;
    this.#records = map;
    this.#lazy = view.lazy;
    return true;
  }

  /** Passes the snapshot's records through `migrate`, before the op log is replayed. */
  async #migrate(migrate, fromVersion) {
    for (const items of exportedChunks(this.#engine)) {
      const ids = [];
      const texts = [];
      for (let i = 0; i < items.length; i += 2) {
        ids.push(JSON.stringify(items[i]));
        texts.push(recordText(items[i], migrate(items[i + 1], fromVersion)));
      }
      this.#engine.replaceRecords(ids, texts);
    }
    this.#engine.finishReplay();
  }

  /** Fills the Map from the engine's records, yielding to the event loop between chunks. */
  async #loadView() {
    const map = this.#records;
    map.clear();
    this.#lazy = false;
    for (const items of exportedChunks(this.#engine)) {
      for (let i = 0; i < items.length; i += 2) map.set(items[i], items[i + 1]);
      await new Promise(setImmediate);
    }
  }

  async close() {
    this.#ensureOpen();
    this.unwatch();
    this.#clearGroupTimer();
    await this.#enqueue(async () => {
      if (this.#durable) {
        await this.#flushNow();
        await this.#synced();
      }
      return this.#call(this.#engine.close());
    });
    if (this.#fsBackend) await this.#fsBackend.shutdown();
    this.#opened = false;
  }

  get(id) {
    this.#ensureOpen();
    const value = this.#records.get(id);
    return value === UNREAD ? this.#decode(id) : value;
  }

  /** The first read of a record a lazy open left undecoded: decoded once, kept in the view. */
  #decode(id) {
    let text;
    try {
      text = this.#engine.recordText(JSON.stringify(id));
    } catch (err) {
      throw withCode(err);
    }
    if (text === null) throw new Error(`opslog: record ${JSON.stringify(id)} is in the view but not in the store`);
    const value = JSON.parse(text);
    this.#records.set(id, value);
    return value;
  }

  /** Decodes every record a lazy open left undecoded (before anything visits them all). */
  #decodeAll() {
    if (!this.#lazy) return;
    const map = this.#records;
    for (const items of exportedChunks(this.#engine)) {
      for (let i = 0; i < items.length; i += 2) if (map.get(items[i]) === UNREAD) map.set(items[i], items[i + 1]);
    }
    this.#lazy = false;
  }

  set(id, value) {
    this.#ensureOpen();
    this.#ensureWritable();
    let idText, data;
    try {
      idText = checkId(id);
      data = recordText(id, value);
    } catch (err) {
      this.#refused ||= this.#batching;
      throw err;
    }
    if (this.#batching) {
      // Handed over with the commit (or before any other call that needs the engine).
      this.#collect(this.#staged, idText, data);
      this.#records.set(id, value);
      return undefined;
    }
    if (this.#deferred !== null && this.#queued === 0) return this.#defer(id, value, idText, data);
    if (this.#adapter) {
      return this.#enqueue(async () => {
        const due = Number(await this.#call(this.#engine.setAsync(idText, data)));
        this.#records.set(id, value);
        return this.#afterWrite(due);
      });
    }
    return this.#acknowledged(this.#mutate(() => {
      const due = this.#engine.set(idText, data);
      this.#records.set(id, value);
      return this.#afterWrite(due);
    }, false));
  }

  delete(id) {
    this.#ensureOpen();
    this.#ensureWritable();
    let idText;
    try {
      idText = checkId(id);
    } catch (err) {
      this.#refused ||= this.#batching;
      throw err;
    }
    if (this.#batching) {
      this.#deleteNow(id, idText);
      return undefined;
    }
    if (this.#adapter) {
      return this.#enqueue(async () => {
        const code = Number(await this.#call(this.#engine.deleteAsync(idText)));
        return this.#afterWrite(this.#afterDelete(id, code));
      });
    }
    return this.#acknowledged(this.#mutate(() => this.#afterWrite(this.#deleteNow(id, idText)), false));
  }

  #deleteNow(id, idText) {
    return this.#afterDelete(id, this.#engine.delete(idText));
  }

  #afterDelete(id, code) {
    if (code === 2) throw new Error(`Record '${id}' not found`);
    this.#records.delete(id);
    return code;
  }

  has(id) {
    this.#ensureOpen();
    return this.#records.has(id);
  }

  all() {
    this.#ensureOpen();
    this.#decodeAll();
    return Array.from(this.#records.values());
  }

  entries() {
    this.#ensureOpen();
    this.#decodeAll();
    return Array.from(this.#records.entries());
  }

  // filter and count visit the records with Map#forEach rather than for...of over entries: the
  // same order and the same view of changes made meanwhile, but no [id, value] array per record
  // and no iterator, which matters most in the first calls, before V8 optimizes the loop
  // (measured: 10 filters over 100,000 records, first calls, ~15 ms instead of ~25 ms).

  filter(predicate) {
    this.#ensureOpen();
    this.#decodeAll();
    const out = [];
    this.#records.forEach((value, id) => {
      if (predicate(value, id)) out.push(value);
    });
    return out;
  }

  count(predicate) {
    this.#ensureOpen();
    if (!predicate) return this.#records.size;
    this.#decodeAll();
    let n = 0;
    this.#records.forEach((value, id) => {
      if (predicate(value, id)) n++;
    });
    return n;
  }

  getManifest() {
    const m = this.#manifest;
    if (!m) return null;
    return { currentSnapshot: m.currentSnapshot, activeOps: m.activeOps, archiveSegments: m.archiveSegments, stats: m.stats };
  }

  async *streamSnapshot() {
    this.#ensureOpen();
    // A checkpoint a write started: the reference's write waited for it, so stream what it makes current.
    await this.#background;
    let cursor;
    try {
      cursor = this.#engine.streamSnapshot(this.#manifest.currentSnapshot);
    } catch (err) {
      throw withCode(err);
    }
    const batches = new ReadAhead(() => this.#call(cursor.next(STREAM_BATCH)), parsePairs);
    for (let items; (items = await batches.next()) !== null; ) {
      for (let i = 0; i < items.length; i += 2) yield [items[i], items[i + 1]];
    }
  }

  async *getWalOps(sinceTimestamp) {
    this.#ensureOpen();
    const since = sinceTimestamp ? String(sinceTimestamp) : null;
    await this.#background; // as in streamSnapshot
    let cursor;
    try {
      const merged = this.#multiWriter || this.#engine.mergesAgents();
      cursor = merged ? this.#engine.streamMergedOps(since) : this.#engine.streamOps(this.#manifest.activeOps, since);
    } catch (err) {
      throw withCode(err);
    }
    const batches = new ReadAhead(() => this.#call(cursor.next(STREAM_BATCH)), parseOps);
    for (let ops; (ops = await batches.next()) !== null; ) {
      for (let i = 0; i < ops.length; i++) yield ops[i];
    }
  }

  async batch(fn) {
    this.#ensureOpen();
    this.#ensureWritable();
    const stage = () => {
      this.#engine.batchBegin();
      this.#staged = [];
      this.#unsure = [];
      this.#batching = true;
      this.#refused = false;
      try {
        fn();
      } catch (err) {
        this.#batching = false;
        this.#rollBackBatch();
        throw err;
      }
      this.#batching = false;
    };
    const rollback = (err) => {
      this.#rollBackBatch();
      throw err;
    };
    if (this.#adapter) {
      return this.#enqueue(async () => {
        stage();
        let job;
        try {
          job = this.#engine.batchCommitAsync();
        } catch (err) {
          rollback(err);
        }
        const due = await this.#call(job).catch(rollback);
        return this.#afterWrite(Number(due));
      });
    }
    return this.#acknowledged(this.#mutate(() => {
      stage();
      let due;
      try {
        due = this.#engine.batchCommit();
      } catch (err) {
        rollback(err);
      }
      return this.#afterWrite(due);
    }));
  }

  async undo() {
    this.#ensureOpen();
    this.#ensureWritable();
    const apply = (change) => {
      if (change === null) return false;
      if (change === '"reset"') return this.#loadView().then(() => true);
      if (change === '"reloaded"') return this.#loadView().then(() => false);
      this.#applyEffects(change);
      return true;
    };
    // A multi-writer undo waits for the compaction lock and re-reads every agent's file: on a worker.
    if (this.#adapter || this.#multiWriter) {
      return this.#enqueue(async () => apply(await this.#call(this.#engine.undoAsync())));
    }
    return this.#acknowledged(this.#mutate(() => apply(this.#engine.undo())));
  }

  getHistory(id) {
    this.#ensureOpen();
    try {
      return JSON.parse(this.#engine.getHistory(JSON.stringify(String(id))));
    } catch (err) {
      throw withCode(err);
    }
  }

  getOps(since) {
    this.#ensureOpen();
    try {
      return JSON.parse(this.#engine.getOps(since ? String(since) : null));
    } catch (err) {
      throw withCode(err);
    }
  }

  async compact() {
    this.#ensureOpen();
    this.#ensureWritable();
    if (this.#skipLoad) throw new Error("Cannot compact in skipLoad mode — in-memory Map is incomplete");
    return this.#enqueue(() => this.#checkpoint());
  }

  async archive(predicate, segment) {
    this.#ensureOpen();
    this.#ensureWritable();
    if (segment !== undefined) checkPeriod(segment);
    return this.#enqueue(async () => {
      const ids = [];
      this.#decodeAll();
      for (const [id, value] of this.#records) if (predicate(value, id)) ids.push(id);
      if (ids.length === 0) return 0;
      const { moved, reset } = JSON.parse(
        await this.#call(this.#engine.archive(ids.map((id) => JSON.stringify(id)), segment ?? defaultPeriod())),
      );
      if (reset) await this.#loadView();
      else for (const id of ids) this.#records.delete(id);
      this.#manifest = JSON.parse(this.#engine.manifest());
      return moved;
    });
  }

  listArchiveSegments() {
    this.#ensureOpen();
    return [...this.#manifest.archiveSegments];
  }

  async loadArchive(segment) {
    this.#ensureOpen();
    const items = JSON.parse(await this.#call((async () => this.#engine.loadArchive(String(segment)))()));
    const out = new Map();
    for (let i = 0; i < items.length; i += 2) out.set(items[i], items[i + 1]);
    return out;
  }

  stats() {
    this.#ensureOpen();
    let opsCount;
    try {
      opsCount = this.#engine.opsCount();
    } catch (err) {
      throw withCode(err);
    }
    return { activeRecords: this.#records.size, opsCount, archiveSegments: this.#manifest.archiveSegments.length };
  }

  async refresh() {
    this.#ensureOpen();
    await this.tail();
  }

  async tail() {
    this.#ensureOpen();
    return this.#enqueue(async () => {
      const { reset, ops } = JSON.parse(await this.#call(this.#engine.tail()));
      if (reset) await this.#loadView();
      else applyOps(this.#records, ops);
      // The writer may have checkpointed (a new generation) even when no op came of it.
      this.#manifest = JSON.parse(this.#engine.manifest());
      return ops;
    });
  }

  watch(callback, intervalMs = 1000) {
    this.#ensureOpen();
    if (this.#watchTimer) this.unwatch();
    this.#watchCallback = callback;
    this.#watchTimer = setInterval(async () => {
      try {
        const ops = await this.tail();
        if (ops.length > 0 && this.#watchCallback) this.#watchCallback(ops);
      } catch {
        // A failed poll is retried on the next tick, as in the reference.
      }
    }, intervalMs);
  }

  unwatch() {
    if (this.#watchTimer) {
      clearInterval(this.#watchTimer);
      this.#watchTimer = null;
    }
    this.#watchCallback = null;
  }

  /** Writes what is buffered, and waits for a checkpoint in progress: then the files are settled. */
  async flush() {
    if (!this.#opened) return;
    if (!this.#buffered) return this.#background ?? undefined;
    await this.#enqueue(async () => {
      this.#clearGroupTimer();
      await this.#flushNow();
    });
    if (this.#durable) await this.#synced();
  }

  async sync() {
    return this.flush();
  }

  // --- internals ---

  #ensureOpen() {
    if (!this.#opened) throw new Error(NOT_OPEN);
  }

  #ensureWritable() {
    if (this.#readOnly) throw new Error(READ_ONLY);
  }

  /**
   * Runs a mutation now when nothing is queued (the immediate write path: no promise hop
   * before the append), else after everything queued before it. `exclusive`: it also waits for
   * a checkpoint in progress (only sets and deletes may run during one).
   */
  #mutate(fn, exclusive = true) {
    if (this.#queued > 0 || (exclusive && this.#background)) return this.#enqueue(fn, exclusive);
    let result;
    try {
      result = fn();
    } catch (err) {
      return Promise.reject(withCode(err));
    }
    if (result instanceof Promise) return this.#adopt(result);
    return result === undefined ? RESOLVED : Promise.resolve(result);
  }

  /** Makes later mutations wait for an operation that has already started (a checkpoint after a write). */
  #adopt(promise) {
    this.#queued++;
    const p = promise.finally(() => {
      this.#queued--;
    });
    this.#queue = p.then(noop, noop);
    return p;
  }

  #enqueue(fn, exclusive = true) {
    this.#queued++;
    const run = async () => {
      try {
        // No checkpoint can start meanwhile: only a write run from this queue (or, with nothing
        // queued, directly) starts one.
        if (exclusive) await this.#background;
        return await fn();
      } catch (err) {
        throw withCode(err);
      } finally {
        this.#queued--;
      }
    };
    const p = this.#queue.then(run);
    this.#queue = p.then(noop, noop);
    return p;
  }

  /** The engine, once the sets collected (deferred, staged) have reached it, in call order. */
  get #engine() {
    if (this.#deferred !== null && this.#deferred.length > 0) this.#handOver();
    if (this.#staged.length > 0) this.#stageNow();
    // Whatever the caller does next may change the buffer and the op count.
    this.#room = 0;
    return this.#native;
  }

  /**
   * Hands the deferred sets over; in `group` mode, returns what `setManyNow` does
   * (`refuseLast`: the last one is the calling set's, taken back out if the write fails).
   */
  #handOver(refuseLast = false) {
    const items = this.#deferred;
    this.#deferred = [];
    this.#lastMs = NaN;
    try {
      if (this.#groupDefer) return this.#native.setManyNow(items.join("\n"), refuseLast);
      this.#native.setMany(items.join("\n"));
      return 1;
    } catch (err) {
      throw withCode(err);
    }
  }

  /** Stages the open batch's collected sets in the engine's batch. */
  #stageNow() {
    const items = this.#staged;
    this.#staged = [];
    this.#lastMs = NaN;
    try {
      this.#native.setManyNow(items.join("\n"), false);
    } catch (err) {
      // Some may be staged, some not: the rollback that follows reads these back.
      for (let i = 0; i < items.length; i += 3) this.#unsure.push(items[i]);
      throw err;
    }
  }

  /** Adds a set to `list` as `idText, data, ms` (`ms`: when it was called, "" if unchanged). */
  #collect(list, idText, data) {
    const ms = Date.now();
    list.push(idText, data, ms === this.#lastMs ? "" : ms);
    this.#lastMs = ms;
  }

  /**
   * An `async`- or `group`-mode set: resolves at once, as the reference's does (in `group` mode
   * the set that fills the buffer resolves once it is written); the engine gets it later. A
   * write that fails rejects the set that handed the group over: in `group` mode that set is
   * taken back out of the engine and the view; the sets before it were acknowledged, so they
   * stay applied and buffered, and a later flush retries them.
   */
  #defer(id, value, idText, data) {
    this.#collect(this.#deferred, idText, data);
    if (this.#groupDefer) {
      if (this.#deferred.length >= 3 * this.#room) {
        try {
          this.#room = this.#handOver(true);
        } catch (err) {
          // Refused: not in the engine, so not in the view either.
          return Promise.reject(withCode(err));
        }
      }
      this.#records.set(id, value);
      this.#afterWrite(this.#room === 0 ? 1 : 0);
      return RESOLVED;
    }
    this.#records.set(id, value);
    if (this.#deferred.length >= 3 * this.#groupSize) {
      try {
        this.#handOver();
      } catch (err) {
        return Promise.reject(err);
      }
    }
    this.#afterWrite(0);
    return RESOLVED;
  }

  /**
   * In durable mode, a write's promise resolves once what it appended is fsynced. In group and
   * async modes writes are acknowledged by flush() (as in the reference), which syncs instead.
   */
  #acknowledged(written) {
    if (!this.#durable || this.#buffered) return written;
    return written.then((result) => this.#synced().then(() => result));
  }

  /** Resolves once everything appended before this call is on stable storage (group commit). */
  #synced() {
    if (this.#nextSync) return this.#nextSync;
    if (this.#syncing) {
      this.#nextSync = this.#syncing.then(() => {
        this.#nextSync = null;
        return this.#startSync();
      });
      return this.#nextSync;
    }
    return this.#startSync();
  }

  #startSync() {
    const run = this.#call(this.#engine.syncOps());
    const settled = run.then(noop, noop).then(() => {
      if (this.#syncing === settled) this.#syncing = null;
    });
    this.#syncing = settled;
    return run;
  }

  /** After a logged write: arm the group timer, or checkpoint when the engine says it is due. */
  #afterWrite(due) {
    if (this.#buffered && !this.#groupTimer) {
      this.#groupTimer = setTimeout(() => {
        this.#groupTimer = null;
        if (!this.#opened) return;
        this.#enqueue(() => this.#flushNow(), false).catch(noop);
      }, this.#groupMs);
    }
    if (due !== 1) return undefined;
    // Runs inside the write's own turn in the queue (or is adopted into it by #mutate).
    // The write is logged: a checkpoint that fails (a full disk) does not undo it, and stays due.
    if (this.#adapter || this.#multiWriter) return this.#checkpoint().catch((err) => checkpointFailed(withCode(err)));
    // The write is logged and resolves now. The log is cut here (getOps() and stats() show the
    // checkpoint at once) and the checkpoint is written in the background: by a job begun now,
    // or, while one runs, by that job next.
    this.#clearGroupTimer();
    let job;
    try {
      job = this.#engine.checkpointDue();
    } catch (err) {
      // Its first step (writing what group/async mode buffered) failed: the write itself is
      // logged or buffered, as acknowledged, and the checkpoint stays due.
      checkpointFailed(withCode(err));
      return undefined;
    }
    if (job !== null) this.#inBackground(job);
    return undefined;
  }

  #inBackground(job) {
    const before = this.#background ?? RESOLVED;
    const done = this.#call(job).then(noop, checkpointFailed);
    // A job begun while the last one was ending (see checkpointDue) runs beside it.
    const background = Promise.all([before, done]).then(() => {
      this.#manifest = JSON.parse(this.#native.manifest());
      if (this.#background === background) this.#background = null;
    });
    this.#background = background;
  }

  #clearGroupTimer() {
    if (this.#groupTimer) {
      clearTimeout(this.#groupTimer);
      this.#groupTimer = null;
    }
  }

  async #checkpoint() {
    this.#clearGroupTimer();
    const { reset, manifest } = JSON.parse(await this.#call(this.#engine.checkpoint()));
    if (reset) await this.#loadView();
    this.#manifest = manifest;
  }

  #flushNow() {
    return this.#adapter ? this.#call(this.#engine.flushAsync()) : this.#engine.flush();
  }

  /** Awaits an engine job; a JavaScript backend's failure rejects with the backend's own error. */
  async #call(promise) {
    try {
      return await promise;
    } catch (err) {
      const original = this.#adapter?.error;
      if (original) {
        this.#adapter.error = null;
        throw passThrough(original);
      }
      throw withCode(err);
    }
  }

  /**
   * Reverses the staged batch in the view too. After a refused call nothing may change, so the
   * records it deleted go back in their place; after any other error they come back at the end
   * of the order, as in the reference (where a rollback is a fresh insertion).
   */
  #rollBackBatch() {
    if (this.#staged.length > 0) {
      try {
        this.#stageNow();
      } catch {
        // Their ids are in #unsure.
      }
    }
    const { effects, reordered } = JSON.parse(this.#engine.batchRollback(this.#refused));
    this.#applyEffectList(effects);
    // Sets whose handing over failed may not have reached the engine: take its word for them.
    for (const idText of this.#unsure) {
      const text = this.#native.recordText(idText);
      if (text === null) this.#records.delete(JSON.parse(idText));
      else this.#records.set(JSON.parse(idText), JSON.parse(text));
    }
    this.#unsure = [];
    if (!reordered) return;
    const map = this.#records;
    const entries = JSON.parse(this.#engine.recordIds()).map((id) => [id, map.get(id)]);
    map.clear();
    for (const [id, record] of entries) map.set(id, record);
  }

  #applyEffects(text) {
    this.#applyEffectList(JSON.parse(text));
  }

  #applyEffectList(effects) {
    for (const [id, record] of effects) {
      if (record === null) this.#records.delete(id);
      else this.#records.set(id, record);
    }
  }
}

module.exports = { Store };
