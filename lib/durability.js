"use strict";
// `durable` mode: a write resolves once what it appended is fsynced. Writes made while an fsync
// runs share the next one (group commit).

class Syncer {
  #start;
  /** The fsync in flight, and the one that starts when it ends (shared by writes made meanwhile). */
  #syncing = null;
  #next = null;

  /** `start()`: a promise of an fsync of everything appended before the call. */
  constructor(start) {
    this.#start = start;
  }

  /** Resolves once everything appended before this call is on stable storage. */
  synced() {
    if (this.#next) return this.#next;
    if (this.#syncing) {
      this.#next = this.#syncing.then(() => {
        this.#next = null;
        return this.#begin();
      });
      return this.#next;
    }
    return this.#begin();
  }

  #begin() {
    const run = this.#start();
    const settled = run.then(
      () => {},
      () => {},
    ).then(() => {
      if (this.#syncing === settled) this.#syncing = null;
    });
    this.#syncing = settled;
    return run;
  }
}

module.exports = { Syncer };
