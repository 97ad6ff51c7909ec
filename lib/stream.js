"use strict";
// Streaming reads: batches read by a worker, parsed on the JavaScript thread. A batch is
// `[items, strings]`: `items` a JSON array text, `strings` the strings taken out of it. Where a
// string taken out may be, `items` holds either its JSON string or its length in `strings`,
// where the strings follow one another in order. (The engine's batch module says why, with the
// measurements.)

const noop = () => {};

/** Items per worker round trip when streaming, at most (the engine also ends a batch at ~96 KB). */
const STREAM_BATCH = 4096;

/** Op codes of an ops batch and their flags, as the engine writes them (engine::batch::OpCode). */
const OP_OBJECT = 0;
const OP_SET = 1;
const PREV_SHAPED = 4;
const DATA_SHAPED = 8;

/** Reads a batch's strings in order: `string(item)` for each item where one may have been taken out. */
function stringReader(strings) {
  let at = 0;
  return (item) => (typeof item === "number" ? strings.slice(at, (at += item)) : item);
}

/**
 * Builders of shaped objects (engine::batch::Shapes), by shape, shared by all streams. A builder
 * `(values, at, string)` makes the object of its keys whose values are `values[at]`,
 * `values[at + 1]`, ..., each through `string` where its kind is `s`.
 *
 * A shape is first built by copying a template object with its keys and setting the values: no
 * code generated, but a keyed store per value. Once a shape has built COMPILE_AFTER objects, its
 * builder becomes an object literal of its keys, which V8 allocates at once in its final layout:
 * ~0.04 us faster an object (the benchmark's 100,000 records: ~25 -> ~20 ms to parse and build),
 * which repays the ~20 us of compiling it after ~500 objects. Where code generation from strings
 * is disallowed (`--disallow-code-generation-from-strings`), the template builder stays.
 */
const shapes = new Map();
/** Shapes kept at most: the map starts over beyond, so that one-off shapes cannot pile up. */
const MAX_SHAPES = 1024;
const COMPILE_AFTER = 512;

/** A builder copying a template with `keys` and setting their values. */
function templateBuilder(kinds, keys) {
  const template = {};
  for (const key of keys) template[key] = null;
  const short = Array.from(kinds, (kind) => kind === "s");
  return (values, at, string) => {
    const object = { ...template };
    for (let k = 0; k < keys.length; k++) object[keys[k]] = short[k] ? string(values[at + k]) : values[at + k];
    return object;
  };
}

/** A builder made of an object literal of `keys`, or null where code cannot be generated. */
function literalBuilder(kinds, keys) {
  // A JSON string is a JavaScript string literal; `__proto__`, which a literal would take for
  // the prototype, is never shaped.
  const members = keys.map((key, k) =>
    kinds[k] === "s" ? `${JSON.stringify(key)}: string(values[at + ${k}])` : `${JSON.stringify(key)}: values[at + ${k}]`,
  );
  try {
    return new Function("values", "at", "string", `return { ${members.join(", ")} };`);
  } catch {
    return null;
  }
}

/** The builder for a batch's `count` objects of one shape. */
function builderFor(count, kinds, keys) {
  const name = kinds + JSON.stringify(keys);
  let shape = shapes.get(name);
  if (shape === undefined) {
    if (shapes.size >= MAX_SHAPES) shapes.clear();
    shape = { built: 0, build: templateBuilder(kinds, keys), literal: false };
    shapes.set(name, shape);
  }
  shape.built += count;
  if (!shape.literal && shape.built >= COMPILE_AFTER) {
    shape.literal = true;
    shape.build = literalBuilder(kinds, keys) ?? shape.build;
  }
  return shape.build;
}

/**
 * The ops of an ops batch. Each op is a code, then the op's whole object, or its values: `ts`
 * (a number for the previous op's), id, `prev`, and for a set `data`, where a shaped record is
 * its shape's index and its values. The batch's last element is its table of shapes,
 * `[[count, keys, kinds], ...]`.
 */
function parseOps(batch) {
  const items = JSON.parse(batch[0]);
  const string = stringReader(batch[1]);
  const end = items.length - 1;
  const { builders, sizes } = shapeTable(items[end]);
  let i = 0;
  /** The record value at `i`, shaped or not, and `i` moved past it. */
  const record = (shaped) => {
    if (!shaped) return items[i++];
    const s = items[i];
    const value = builders[s](items, i + 1, string);
    i += 1 + sizes[s];
    return value;
  };
  const ops = [];
  let ts;
  while (i < end) {
    const code = items[i];
    if (code === OP_OBJECT) {
      ops.push(items[i + 1]);
      i += 2;
      continue;
    }
    if (typeof items[i + 1] === "string") ts = items[i + 1];
    const id = string(items[i + 2]);
    i += 3;
    const prev = record(code & PREV_SHAPED);
    if ((code & ~(PREV_SHAPED | DATA_SHAPED)) === OP_SET) {
      ops.push({ ts, op: "set", id, prev, data: record(code & DATA_SHAPED) });
    } else {
      ops.push({ ts, op: "delete", id, prev });
    }
  }
  return ops;
}

/**
 * A record pairs batch as the flat array `[id, record, id, record, ...]`. Its elements are pairs
 * of an id and a record, where the id is a length in the batch's strings or a JSON string, or
 * minus one minus a length, and then the record is shaped: its shape's index and its values.
 * Its last element is its table of shapes.
 */
function parsePairs(batch) {
  const pairs = [];
  eachPair(batch, (id, record) => pairs.push(id, record));
  return pairs;
}

/** Calls `fn(id, record)` for each pair of a record pairs batch (see parsePairs), in order. */
function eachPair(batch, fn) {
  const items = JSON.parse(batch[0]);
  const string = stringReader(batch[1]);
  const end = items.length - 1;
  const { builders, sizes } = shapeTable(items[end]);
  for (let i = 0; i < end; ) {
    const id = items[i];
    if (typeof id === "number" && id < 0) {
      const s = items[i + 1];
      fn(string(~id), builders[s](items, i + 2, string));
      i += 2 + sizes[s];
    } else {
      fn(string(id), items[i + 1]);
      i += 2;
    }
  }
}

/** The builders of a batch's shapes (`[[count, keys, kinds], ...]`), and their numbers of values. */
function shapeTable(table) {
  const builders = new Array(table.length);
  const sizes = new Array(table.length);
  for (let s = 0; s < table.length; s++) {
    const [count, keys, kinds] = table[s];
    builders[s] = builderFor(count, kinds, keys);
    sizes[s] = keys.length;
  }
  return { builders, sizes };
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

/** A pairs batch as `[id, record]` entries, as a record stream hands them out. */
function parseEntries(batch) {
  const entries = [];
  eachPair(batch, (id, record) => entries.push([id, record]));
  return entries;
}

/** %AsyncGeneratorPrototype%: what a stream inherits (its `Symbol.asyncIterator`, its tag). */
const ASYNC_GENERATOR = Object.getPrototypeOf(Object.getPrototypeOf((async function* () {})()));
const RESOLVED = Promise.resolve();
const NO_ITEMS = [];

/**
 * The items of a cursor's batches, one by one, as an async generator hands them out (`next`,
 * `return`, `throw`, calls queued in order, done after an error), but without one: an async
 * generator's `yield` costs several promise jobs an item, here an item of a batch at hand is one
 * resolved promise (measured: 1M items in ~0.55 s through an async generator, ~0.18 s here).
 * `start()` (called and awaited at the first `next()`, so that its errors reject that) returns
 * `read(max)`, a worker read of the cursor's next batch, and optionally `end()`, the value the
 * stream ends with. `parse` makes a batch the array of its items.
 */
class BatchItems {
  #start;
  #parse;
  #end = undefined;
  /** A ReadAhead once started; null before, and once done. */
  #batches = null;
  #items = NO_ITEMS;
  #at = 0;
  #done = false;
  /** Steps queued and not settled, and the promise of the last one (null when none is). */
  #queued = 0;
  #tail = null;

  constructor(start, parse) {
    this.#start = start;
    this.#parse = parse;
  }

  next() {
    if (this.#queued === 0 && this.#at < this.#items.length) return Promise.resolve({ value: this.#take(), done: false });
    return this.#queue(() => this.#advance());
  }

  return(value) {
    return this.#queue(async () => {
      this.#finish();
      return { value: await value, done: true };
    });
  }

  throw(err) {
    return this.#queue(() => {
      this.#finish();
      throw err;
    });
  }

  /** Runs `step` after the steps queued before it; returns its promise. */
  #queue(step) {
    this.#queued++;
    const run = (this.#tail ?? RESOLVED).then(step).finally(() => {
      // Before the caller's continuation: its next call may take an item at once again.
      if (--this.#queued === 0) this.#tail = null;
    });
    this.#tail = run.catch(noop);
    return run;
  }

  /** The next item, reading batches until there is one, or the end. */
  async #advance() {
    while (this.#at >= this.#items.length) {
      if (this.#done) return { value: undefined, done: true };
      let items;
      try {
        if (this.#batches === null) {
          const { read, end } = await this.#start();
          this.#end = end;
          this.#batches = new ReadAhead(() => read(STREAM_BATCH), this.#parse);
        }
        items = await this.#batches.next();
      } catch (err) {
        this.#finish();
        throw err;
      }
      if (items === null) {
        this.#finish();
        return { value: this.#end?.(), done: true };
      }
      this.#items = items;
      this.#at = 0;
    }
    return { value: this.#take(), done: false };
  }

  /** The next item of the batch at hand, let go of there (so it dies young once used). */
  #take() {
    const value = this.#items[this.#at];
    this.#items[this.#at++] = undefined;
    return value;
  }

  #finish() {
    this.#done = true;
    this.#batches = null;
    this.#items = NO_ITEMS;
    this.#at = 0;
  }
}
Object.setPrototypeOf(BatchItems.prototype, ASYNC_GENERATOR);

/** Streams a cursor's records as `[id, record]` entries (see BatchItems for `start`). */
function recordEntries(start) {
  return new BatchItems(start, parseEntries);
}

/** The ops of an ops cursor, as `recordEntries` streams records. */
function opsOf(start) {
  return new BatchItems(start, parseOps);
}

module.exports = { ReadAhead, STREAM_BATCH, parseOps, parsePairs, eachPair, recordEntries, opsOf };
