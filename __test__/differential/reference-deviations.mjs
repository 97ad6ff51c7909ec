// Where the reference package itself goes wrong on some Node versions. A differential test that
// meets one checks ours against the value the reference gives where it works, and reports the
// reference's failure as a named, counted skip (`reportDeviations`), never as a mismatch of ours.
import { createInterface } from "node:readline";
import { Readable } from "node:stream";
import { readFile } from "node:fs/promises";
import { join } from "node:path";

export const DEVIATIONS = {
  // Node 24's readline also ends lines at U+2028 and U+2029. The reference streams JSONL snapshots
  // through readline, so a record holding either character is cut in two and JSON.parse throws.
  readlineLineSeparators:
    "the reference's streamSnapshotFile/streamSnapshot throws SyntaxError on records holding U+2028/U+2029 (this Node's readline ends lines there)",
};

/** True when this Node's readline ends a line at U+2028 (Node 24+). */
export const readlineSplitsAtLineSeparators = await (async () => {
  const lines = [];
  for await (const line of createInterface({ input: Readable.from(["a\u2028b\n"]), crlfDelay: Infinity })) lines.push(line);
  return lines.length > 1;
})();

const counts = new Map();

/**
 * Runs `read`, the reference's streaming of snapshot `rel` in `dir`, drained into
 * `{ items, value }` (the generator's return value). When it fails only because of the readline
 * deviation, counts it and gives what the reference gives on a Node whose readline ends lines at
 * \n, \r and \r\n alone (the same shape, or the error of a bad line); any other failure
 * propagates as it is.
 */
export async function referenceSnapshotStream(dir, rel, read) {
  try {
    return await read();
  } catch (err) {
    if (!(err instanceof SyntaxError) || !readlineSplitsAtLineSeparators) throw err;
    const content = await readFile(join(dir, rel), "utf8");
    const header = jsonlHeader(content);
    if (!/[\u2028\u2029]/.test(content) || !header) throw err;
    let items;
    try {
      items = jsonlRecords(content);
    } catch (expected) {
      if (expected.message === err.message) throw err; // a bad line before any separator: no deviation
      count("readlineLineSeparators");
      throw expected;
    }
    count("readlineLineSeparators");
    return { items, value: { version: header.version } };
  }
}

const count = (name) => counts.set(name, (counts.get(name) ?? 0) + 1);

// The reference reads a file whose first line is a JSON object without "records" as JSONL, with
// that line as its header; null for any other file.
function jsonlHeader(content) {
  const end = content.indexOf("\n");
  try {
    const header = JSON.parse(end === -1 ? content : content.slice(0, end));
    return header !== null && typeof header === "object" && !("records" in header) ? header : null;
  } catch {
    return null;
  }
}

// The reference's JSONL reading with readline's line ends before Node 24: skip the header line and
// blank lines, parse the rest as {id, data}.
function jsonlRecords(content) {
  const items = [];
  for (const line of content.split(/\r\n|\r|\n/).slice(1)) {
    const trimmed = line.trim();
    if (trimmed) {
      const entry = JSON.parse(trimmed);
      items.push([entry.id, entry.data]);
    }
  }
  return items;
}

/** Reports (as skipped subtests of `t`) the deviations met since the last call, and forgets them. */
export async function reportDeviations(t) {
  for (const [name, n] of counts) {
    await t.test(`reference deviation ${name}`, { skip: `${DEVIATIONS[name]}: ${n} time(s); ours was checked against the expected value` }, () => {});
  }
  counts.clear();
}
