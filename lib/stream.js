"use strict";
// Streaming reads: batches read by a worker, parsed on the JavaScript thread. A batch is
// `[items, ids]`: `items` a JSON array text, `ids` the ids taken out of it. Where an id is
// expected, `items` holds either its JSON string or its length in `ids`, where the ids follow
// one another in order. (The engine's batch module says why, with the measurements.)

const noop = () => {};

/** Items per worker round trip when streaming, at most (the engine also ends a batch at ~96 KB). */
const STREAM_BATCH = 4096;

/** Op codes of an ops batch, as the engine writes them (engine::batch::OpCode). */
const OP_OBJECT = 0;
const OP_SET = 1;

/** Reads a batch's ids in order: `id(item)` for each item where an id is expected. */
function idReader(ids) {
  let at = 0;
  return (item) => (typeof item === "number" ? ids.slice(at, (at += item)) : item);
}

/** The ops of an ops batch: each is a code, then the op's whole object or its values. */
function parseOps(batch) {
  const items = JSON.parse(batch[0]);
  const id = idReader(batch[1]);
  const ops = [];
  for (let i = 0; i < items.length; ) {
    const code = items[i];
    if (code === OP_OBJECT) {
      ops.push(items[i + 1]);
      i += 2;
    } else if (code === OP_SET) {
      ops.push({ ts: items[i + 1], op: "set", id: id(items[i + 2]), prev: items[i + 3], data: items[i + 4] });
      i += 5;
    } else {
      ops.push({ ts: items[i + 1], op: "delete", id: id(items[i + 2]), prev: items[i + 3] });
      i += 4;
    }
  }
  return ops;
}

/** A record pairs batch as the flat array `[id, record, id, record, ...]`. */
function parsePairs(batch) {
  const items = JSON.parse(batch[0]);
  const id = idReader(batch[1]);
  for (let i = 0; i < items.length; i += 2) items[i] = id(items[i]);
  return items;
}

/** An ids batch as the array of ids. */
function parseIds(batch) {
  const items = JSON.parse(batch[0]);
  const id = idReader(batch[1]);
  for (let i = 0; i < items.length; i++) items[i] = id(items[i]);
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

module.exports = { ReadAhead, STREAM_BATCH, parseIds, parseOps, parsePairs };
