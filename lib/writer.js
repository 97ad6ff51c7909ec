"use strict";
// The write side of the facade: every mutation reaches the engine here, in call order, and the
// view follows it. One path for a set: staged in the open batch, collected in `async` and `group`
// mode (handed to the engine in one call), or written now (in turn when others are queued).
// After a write: the group timer, and the checkpoint the engine says is due.
const { withCode, passThrough, notFound } = require("./errors");
const { CallQueue, RESOLVED, noop } = require("./queue");
const { Syncer } = require("./durability");
const { Written } = require("./native");

/** A checkpoint a write started failed. Nothing is lost: the ops stay in the current op file (or
 * buffered), and the next write retries it. */
function checkpointFailed(err) {
  console.error(`opslog: checkpoint failed (retried after the next write): ${err.message}`);
}

/**
 * Sets collected in JavaScript and handed to the engine in one call, as the `id, record, ms`
 * lines `setMany`/`setManyNow` take: `ms` is when the set was called, "" when it is the previous
 * set's (many sets come to the millisecond). Each list keeps its own last `ms`, so its first set
 * always carries one; a list handed over is replaced by a new one.
 */
class CollectedSets {
  #items = [];
  #lastMs = NaN;

  get count() {
    return this.#items.length / 3;
  }

  /** `idText`, `data`: the id and the record as JSON text. */
  add(idText, data) {
    const ms = Date.now();
    this.#items.push(idText, data, ms === this.#lastMs ? "" : ms);
    this.#lastMs = ms;
  }

  /** The ids (JSON text) of the sets collected. */
  ids() {
    const ids = [];
    for (let i = 0; i < this.#items.length; i += 3) ids.push(this.#items[i]);
    return ids;
  }

  /** The sets as the engine takes them. */
  text() {
    return this.#items.join("\n");
  }
}

class Writer {
  #native;
  #view;
  /** A JavaScript StorageBackend's adapter state ({lock, error}), or null for the native filesystem. */
  #adapter;
  #multiWriter;
  /** `group` or `async` mode: writes are acknowledged by flush(). */
  #buffered;
  #groupMs;
  #groupSize;
  #groupTimer = null;
  #closed = false;
  /** `durable`: writes resolve once fsynced; concurrent writes share one fsync. */
  #durable;
  #syncer = new Syncer(() => this.call(this.engine.syncOps()));
  #queue = new CallQueue();
  /**
   * `async` and `group` modes: the sets not yet handed to the engine (CollectedSets), which gets
   * them in one call before anything else reaches it (see `engine`), or once there are enough
   * of them: `groupCommitSize` in `async` mode, `#room` in `group` mode. Null in `immediate`
   * mode and with a JavaScript backend.
   */
  #deferred;
  /** `group` mode: the engine applies the sets handed over at once, on this thread. */
  #groupDefer;
  /**
   * `group` mode: how many sets may be collected before they are handed over, so that the
   * buffer is written, and a checkpoint comes due, after the same set as if each set were
   * handed over on its own (0: unknown, the next set goes at once and learns it).
   */
  #room = 0;
  /** The sets of the open batch not yet handed to the engine. */
  #staged = new CollectedSets();
  /** Ids (JSON text) of staged sets whose handing over failed: rollback reads them back. */
  #unsure = [];
  #batching = false;
  /** A call of the open batch was refused as invalid (SPEC 7.6): its rollback changes nothing. */
  #refused = false;
  /** The engine's manifest info (`getManifest`, the current files), as of the last change. */
  #manifest = null;
  /** A checkpoint changed the manifest since #manifest was read: read again when asked. */
  #manifestStale = false;

  /** `o`: the checked options, and `adapter` (or null), `durable` as the store opens with. */
  constructor(native, view, o) {
    this.#native = native;
    this.#view = view;
    this.#adapter = o.adapter;
    this.#multiWriter = o.agentId !== undefined;
    this.#buffered = o.writeMode !== "immediate";
    this.#groupMs = o.groupCommitMs;
    this.#groupSize = o.groupCommitSize;
    this.#deferred = o.writeMode !== "immediate" && !o.adapter && !o.readOnly ? new CollectedSets() : null;
    this.#groupDefer = o.writeMode === "group";
    this.#durable = o.durable;
    // A process's first timer costs about half a millisecond (Node sets up its timer lists and
    // their code): paid at open, not by the first buffered write.
    if (this.#buffered) clearTimeout(setTimeout(noop, this.#groupMs));
  }

  /** The engine, once the sets collected (deferred, staged) have reached it, in call order. */
  get engine() {
    if (this.#deferred !== null && this.#deferred.count > 0) this.#handOver();
    if (this.#staged.count > 0) this.#stageNow();
    // Whatever the caller does next may change the buffer and the op count.
    this.#room = 0;
    return this.#native;
  }

  /** A checkpoint a write started, or null: settles, never rejects. */
  get background() {
    return this.#queue.background;
  }

  get manifest() {
    if (this.#manifestStale) {
      this.#manifestStale = false;
      this.#manifest = this.#native.manifest();
    }
    return this.#manifest;
  }

  set manifest(info) {
    this.#manifestStale = false;
    this.#manifest = info;
  }

  /** The manifest changed: read when next asked for (most checkpoints are never looked at). */
  refreshManifest() {
    this.#manifestStale = true;
  }

  /** Awaits an engine job; a JavaScript backend's failure rejects with the backend's own error. */
  async call(promise) {
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

  /** Runs `fn` after the mutations called before it (and a checkpoint in progress, if `exclusive`). */
  enqueue(fn, exclusive = true) {
    return this.#queue.enqueue(fn, exclusive);
  }

  /** A call of the open batch was refused before it changed anything. */
  refused() {
    this.#refused ||= this.#batching;
  }

  /** The one set path (`idText`, `data`: the id and the record as JSON text). */
  set(id, value, idText, data) {
    if (this.#batching) {
      // Handed over with the commit (or before any other call that needs the engine).
      this.#staged.add(idText, data);
      this.#view.set(id, value);
      return undefined;
    }
    if (this.#deferred !== null && this.#queue.queued === 0) return this.#defer(id, value, idText, data);
    return this.#write(
      () => (this.#adapter ? this.call(this.engine.setAsync(idText, data)) : this.engine.set(idText, data)),
      (due) => {
        this.#view.set(id, value);
        return due;
      },
    );
  }

  delete(id, idText) {
    if (this.#batching) {
      this.#deleted(id, this.engine.delete(idText));
      return undefined;
    }
    return this.#write(
      () => (this.#adapter ? this.call(this.engine.deleteAsync(idText)) : this.engine.delete(idText)),
      (code) => this.#deleted(id, code),
    );
  }

  #deleted(id, code) {
    if (code === Written.NotFound) throw new Error(notFound(id));
    this.#view.delete(id);
    return code;
  }

  /** Runs `fn` as one batch: its sets and deletes are committed together, or none is. */
  batch(fn) {
    const rollback = (err) => {
      this.#rollBack();
      throw err;
    };
    return this.#write(
      () => {
        this.engine.batchBegin();
        this.#staged = new CollectedSets();
        this.#unsure = [];
        this.#batching = true;
        this.#refused = false;
        try {
          fn();
        } catch (err) {
          this.#batching = false;
          rollback(err);
        }
        this.#batching = false;
        let commit;
        try {
          commit = this.#adapter ? this.engine.batchCommitAsync() : this.engine.batchCommit();
        } catch (err) {
          rollback(err);
        }
        return this.#adapter ? this.call(commit).catch(rollback) : commit;
      },
      (due) => due,
      true,
    );
  }

  /**
   * Runs an engine write in call order: `run()` returns what the engine says of it (a job that
   * resolves to that with a JavaScript backend), `apply` brings the view along and passes it on
   * to #afterWrite. With a JavaScript backend every write waits its turn in the queue.
   * `exclusive`: waits for a checkpoint in progress (sets and deletes need not).
   */
  #write(run, apply, exclusive = false) {
    const step = () => {
      const due = run();
      if (typeof due === "number") return this.#afterWrite(apply(due));
      return due.then((d) => this.#afterWrite(apply(d)));
    };
    return this.#acknowledged(this.#adapter ? this.#queue.enqueue(step) : this.#queue.run(step, exclusive));
  }

  /** Undoes the last op; resolves to whether there was one. */
  undo() {
    const apply = (change) => {
      if (change === null) return false;
      if (change.effects == null) return this.#view.load().then(() => change.undone);
      this.#view.applyEffects(JSON.parse(change.effects));
      return true;
    };
    // A multi-writer undo waits for the compaction lock and re-reads every agent's file: on a worker.
    if (this.#adapter || this.#multiWriter) {
      return this.#queue.enqueue(async () => apply(await this.call(this.engine.undoAsync())));
    }
    return this.#acknowledged(this.#queue.run(() => apply(this.engine.undo())));
  }

  /** A whole checkpoint, now (the caller's turn in the queue). */
  async checkpoint() {
    this.#clearGroupTimer();
    const { reset, manifest } = await this.call(this.engine.checkpoint());
    if (reset) await this.#view.load();
    this.manifest = manifest;
  }

  /**
   * Writes what is buffered, after the mutations called before. A checkpoint in progress does
   * not delay it: the ops go to the current op file and are carried into the new one, as any
   * write's are (with `durable`, which resolves once they are synced, it waits for it).
   */
  async flush() {
    if (this.#buffered) await this.#writeBuffered(this.#durable);
  }

  /** Writes what is buffered once a checkpoint in progress is written: the files are then settled. */
  async sync() {
    if (!this.#buffered) return this.#queue.background ?? undefined;
    await this.#writeBuffered(true);
  }

  /** flush() and sync(): `afterCheckpoint`, whether the write waits for a checkpoint in progress. */
  async #writeBuffered(afterCheckpoint) {
    await this.#queue.run(() => {
      this.#clearGroupTimer();
      return this.#flushNow();
    }, afterCheckpoint);
    if (this.#durable) await this.#syncer.synced();
  }

  /** After everything queued: writes what is buffered, and closes the engine. */
  close() {
    this.#closed = true;
    this.#clearGroupTimer();
    return this.#queue.enqueue(async () => {
      if (this.#durable) {
        await this.#flushNow();
        await this.#syncer.synced();
      }
      // What getManifest() shows once the store is closed (read now, while it can be; a
      // failure to read it must not keep the store from closing).
      try {
        void this.manifest;
      } catch {
        // The last one read stays.
      }
      return this.call(this.engine.close());
    });
  }

  /**
   * Hands the deferred sets over; in `group` mode, returns what `setManyNow` does: the room for
   * the next ones, null when a checkpoint is due (`refuseLast`: the last one is the calling
   * set's, taken back out if the write fails).
   */
  #handOver(refuseLast = false) {
    const sets = this.#deferred;
    this.#deferred = new CollectedSets();
    try {
      if (this.#groupDefer) return this.#native.setManyNow(sets.text(), refuseLast);
      this.#native.setMany(sets.text());
      return undefined;
    } catch (err) {
      throw withCode(err);
    }
  }

  /** Stages the open batch's collected sets in the engine's batch. */
  #stageNow() {
    const staged = this.#staged;
    this.#staged = new CollectedSets();
    try {
      this.#native.setManyNow(staged.text(), false);
    } catch (err) {
      // Some may be staged, some not: the rollback that follows reads these back.
      for (const idText of staged.ids()) this.#unsure.push(idText);
      throw err;
    }
  }

  /**
   * An `async`- or `group`-mode set: resolves at once, as the reference's does (in `group` mode
   * the set that fills the buffer resolves once it is written); the engine gets it later. A
   * write that fails rejects the set that handed the group over: in `group` mode that set is
   * taken back out of the engine and the view; the sets before it were acknowledged, so they
   * stay applied and buffered, and a later flush retries them.
   */
  #defer(id, value, idText, data) {
    const deferred = this.#deferred;
    deferred.add(idText, data);
    let due = Written.Done;
    if (this.#groupDefer) {
      if (deferred.count >= this.#room) {
        try {
          this.#room = this.#handOver(true) ?? 0;
        } catch (err) {
          // Refused: not in the engine, so not in the view either.
          return Promise.reject(withCode(err));
        }
        if (this.#room === 0) due = Written.CheckpointDue;
      }
      this.#view.set(id, value);
    } else {
      this.#view.set(id, value);
      if (deferred.count >= this.#groupSize) {
        try {
          this.#handOver();
        } catch (err) {
          return Promise.reject(err);
        }
      }
    }
    // Most sets: the timer is armed and nothing is due.
    if (due !== Written.Done || this.#groupTimer === null) this.#afterWrite(due);
    return RESOLVED;
  }

  /**
   * In durable mode, a write's promise resolves once what it appended is fsynced. In group and
   * async modes writes are acknowledged by flush() (as in the reference), which syncs instead.
   */
  #acknowledged(written) {
    if (!this.#durable || this.#buffered) return written;
    return written.then((result) => this.#syncer.synced().then(() => result));
  }

  /** After a logged write: arm the group timer, or checkpoint when the engine says it is due. */
  #afterWrite(due) {
    if (this.#buffered && !this.#groupTimer) {
      this.#groupTimer = setTimeout(() => {
        this.#groupTimer = null;
        if (this.#closed) return;
        this.#queue.enqueue(() => this.#flushNow(), false).catch(noop);
      }, this.#groupMs);
    }
    if (due !== Written.CheckpointDue) return undefined;
    // Runs inside the write's own turn in the queue (or is adopted into it by CallQueue#run).
    // The write is logged: a checkpoint that fails (a full disk) does not undo it, and stays due.
    if (this.#adapter || this.#multiWriter) return this.checkpoint().catch((err) => checkpointFailed(withCode(err)));
    // The write is logged and resolves now. The log is cut here (getOps() and stats() show the
    // checkpoint at once) and the checkpoint is written in the background: by a job begun now,
    // or, while one runs, by that job next. (The group timer stays: it finds nothing to write.)
    let job;
    try {
      job = this.engine.checkpointDue();
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
    const queue = this.#queue;
    const before = queue.background ?? RESOLVED;
    const done = this.call(job).then(noop, checkpointFailed);
    // A job begun while the last one was ending (see checkpointDue) runs beside it.
    const background = Promise.all([before, done]).then(() => {
      this.refreshManifest();
      if (queue.background === background) queue.background = null;
    });
    queue.background = background;
  }

  #clearGroupTimer() {
    if (this.#groupTimer) {
      clearTimeout(this.#groupTimer);
      this.#groupTimer = null;
    }
  }

  #flushNow() {
    return this.#adapter ? this.call(this.engine.flushAsync()) : this.engine.flush();
  }

  /**
   * Reverses the staged batch in the view too. After a refused call nothing may change, so the
   * records it deleted go back in their place; after any other error they come back at the end
   * of the order, as in the reference (where a rollback is a fresh insertion).
   */
  #rollBack() {
    if (this.#staged.count > 0) {
      try {
        this.#stageNow();
      } catch {
        // Their ids are in #unsure.
      }
    }
    const { effects, reordered } = this.engine.batchRollback(this.#refused);
    this.#view.applyEffects(JSON.parse(effects));
    // Sets whose handing over failed may not have reached the engine: take its word for them.
    for (const idText of this.#unsure) this.#view.reread(idText);
    this.#unsure = [];
    if (reordered) this.#view.reorder(this.engine.recordIds());
  }
}

module.exports = { Writer };
