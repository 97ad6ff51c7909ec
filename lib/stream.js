"use strict";
// Streaming reads: batches read by a worker, parsed on the JavaScript thread. A batch is
// `[items, ids]`: `items` a JSON array text, `ids` the ids of record pairs taken out of it
// (see the engine's batch module for why).

const noop = () => {};

/** The items of an op batch. */
function parseItems(batch) {
  return JSON.parse(batch[0]);
}

/**
 * A record pairs batch as the flat array `[id, record, id, record, ...]`. In `items` an id is
 * either its JSON string or its length in `ids`, where the ids follow one another in order.
 */
function parsePairs(batch) {
  const items = JSON.parse(batch[0]);
  const ids = batch[1];
  for (let i = 0, at = 0; i < items.length; i += 2) {
    const id = items[i];
    if (typeof id === "number") items[i] = ids.slice(at, (at += id));
  }
  return items;
}

/**
 * Parsed batches from `fetch` (a worker read resolving to a batch, or null at the end), with
 * the next read started before the current batch is handed out, so the worker's read overlaps
 * the parse and the consumer's work. `next()` is a plain async method rather than an async
 * generator, so a stream's own generator loops over it without a generator inside a generator.
 */
class ReadAhead {
  #fetch;
  #parse;
  #pending;

  constructor(fetch, parse) {
    this.#fetch = fetch;
    this.#parse = parse;
    this.#pending = fetch();
  }

  /** The next parsed batch, or null at the end. */
  async next() {
    const batch = await this.#pending;
    if (batch === null) return null;
    this.#pending = this.#fetch();
    this.#pending.catch(noop); // a consumer that stops early leaves this read unobserved
    return this.#parse(batch);
  }
}

module.exports = { ReadAhead, parseItems, parsePairs };
