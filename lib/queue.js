"use strict";
// Call order: the facade's mutations run one at a time, in the order they were called. A
// mutation runs at once when nothing is queued (the immediate write path: no promise hop before
// the append), else after everything queued before it.
const { withCode } = require("./errors");

const RESOLVED = Promise.resolve();
const noop = () => {};

class CallQueue {
  /** Mutations queued or running. */
  queued = 0;
  #tail = RESOLVED;
  /**
   * The checkpoints writes made due, which the engine writes on a worker while sets and deletes
   * go on (they are carried into the new op file); every other mutation ("exclusive") waits for
   * them. Settles, never rejects; null when none is running.
   */
  background = null;

  /**
   * Runs `fn` now when nothing is queued (and, if `exclusive`, no checkpoint is in progress),
   * else queues it. Its result, a promise or not, comes back as a promise.
   */
  run(fn, exclusive = true) {
    if (this.queued > 0 || (exclusive && this.background)) return this.enqueue(fn, exclusive);
    let result;
    try {
      result = fn();
    } catch (err) {
      return Promise.reject(withCode(err));
    }
    if (result instanceof Promise) return this.#adopt(result);
    return result === undefined ? RESOLVED : Promise.resolve(result);
  }

  /** Runs `fn` after everything queued before it (and a checkpoint in progress, if `exclusive`). */
  enqueue(fn, exclusive = true) {
    this.queued++;
    const run = async () => {
      try {
        // No checkpoint can start meanwhile: only a write run from this queue (or, with nothing
        // queued, directly) starts one.
        if (exclusive) await this.background;
        return await fn();
      } catch (err) {
        throw withCode(err);
      } finally {
        this.queued--;
      }
    };
    const p = this.#tail.then(run);
    this.#tail = p.then(noop, noop);
    return p;
  }

  /** Makes later mutations wait for an operation that has already started (a checkpoint after a write). */
  #adopt(promise) {
    this.queued++;
    const p = promise.finally(() => {
      this.queued--;
    });
    this.#tail = p.then(noop, noop);
    return p;
  }
}

module.exports = { CallQueue, RESOLVED, noop };
