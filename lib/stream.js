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
  const table = items[end];
  const builders = new Array(table.length);
  const sizes = new Array(table.length);
  for (let s = 0; s < table.length; s++) {
    const [count, keys, kinds] = table[s];
    builders[s] = builderFor(count, kinds, keys);
    sizes[s] = keys.length;
  }
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

/** A record pairs batch as the flat array `[id, record, id, record, ...]`. */
function parsePairs(batch) {
  const items = JSON.parse(batch[0]);
  const id = stringReader(batch[1]);
  for (let i = 0; i < items.length; i += 2) items[i] = id(items[i]);
  return items;
}

/** An ids batch as the array of ids. */
function parseIds(batch) {
  const items = JSON.parse(batch[0]);
  const id = stringReader(batch[1]);
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

/**
 * Streams a cursor's batches item by item. `start()` (awaited at the first `next()`, so its
 * errors reject that) returns `read(max)`, a worker read of the cursor's next batch, and
 * optionally `end()`, the generator's return value. (One generator, no generator inside it.)
 */
async function* recordEntries(start) {
  const { read, end } = await start();
  const batches = new ReadAhead(() => read(STREAM_BATCH), parsePairs);
  for (let items; (items = await batches.next()) !== null; ) {
    for (let i = 0; i < items.length; i += 2) yield [items[i], items[i + 1]];
  }
  return end?.();
}

/** The ops of an ops cursor, as `recordEntries` streams records. */
async function* opsOf(start) {
  const { read } = await start();
  const batches = new ReadAhead(() => read(STREAM_BATCH), parseOps);
  for (let ops; (ops = await batches.next()) !== null; ) {
    for (let i = 0; i < ops.length; i++) yield ops[i];
  }
}

module.exports = { ReadAhead, STREAM_BATCH, parseIds, parseOps, parsePairs, recordEntries, opsOf };
