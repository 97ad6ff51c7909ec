"use strict";
const { CLI_NAME } = require("../platform");
const fs = require("node:fs");
const native = require("../native");
const { startProgress } = require("./progress");
const { EXIT, UsageError, fail, storeOrFail } = require("./usage");

const help = `Usage: ${CLI_NAME} export <dir> [--format jsonl|json] [--out FILE] [--archive]

Writes the current state of the store in <dir> (the snapshot with the ops since the last
checkpoint replayed, in the store's record order) to stdout or FILE. Streams: memory stays
bounded at any store size. Read-only: takes no lock, changes nothing in <dir>.

  jsonl (default)  one {"id":<id>,"data":<record>} line per record
  json             the same objects as one JSON array, one per line

Options:
  --format FORMAT  jsonl or json
  --out FILE       write to FILE (replaced once the export is complete) instead of stdout
  --archive        also write the archived records, after the live ones, each with
                   "segment":"<archive file>"
  -h, --help       show this help

Exit codes: 0 done, 1 the export failed (a damaged file; FILE is then left as it was), 2 the
directory cannot be read as a store.
`;

const CHUNK_BYTES = 256 * 1024;

function check(values) {
  if (values.format !== undefined && values.format !== "jsonl" && values.format !== "json") {
    throw new UsageError(`--format must be jsonl or json, not '${values.format}'`);
  }
}

/** Writes each chunk, waiting for the stream to drain when it asks to. */
async function writeAll(stream, next) {
  let failed = null;
  let wake = null;
  const onError = (err) => {
    failed = err;
    wake?.();
  };
  stream.on("error", onError);
  try {
    for (let chunk = await next(); chunk !== null; chunk = await next()) {
      if (failed) break;
      if (!stream.write(chunk)) {
        await new Promise((resolve) => {
          wake = resolve;
          stream.once("drain", resolve);
        });
        wake = null;
      }
    }
    if (failed) throw failed;
  } finally {
    stream.off("error", onError);
  }
}

function closeFile(stream) {
  return new Promise((resolve, reject) => {
    stream.once("error", reject);
    stream.end(resolve);
  });
}

async function run(dir, values) {
  if (!storeOrFail("export", dir)) return EXIT.UNREADABLE;
  const job = new native.CliExport(dir, values.format ?? "jsonl", Boolean(values.archive));
  const next = () => job.next(CHUNK_BYTES);
  const stop = startProgress("exporting", () => job.progress(), "records");
  try {
    if (values.out === undefined) {
      try {
        await writeAll(process.stdout, next);
      } catch (err) {
        // The reader went away (`| head`): what it wanted it has.
        if (err.code === "EPIPE") return EXIT.OK;
        throw err;
      }
      return EXIT.OK;
    }
    const tmp = `${values.out}.tmp-${process.pid}`;
    // Opened synchronously: a stream's own open is asynchronous and could create the file after
    // an early failure has already removed it.
    const file = fs.createWriteStream(tmp, { fd: fs.openSync(tmp, "w") });
    try {
      await writeAll(file, next);
      await closeFile(file);
      fs.renameSync(tmp, values.out);
    } catch (err) {
      file.destroy();
      fs.rmSync(tmp, { force: true });
      throw err;
    }
    return EXIT.OK;
  } catch (err) {
    fail("export", err.message);
    return EXIT.FAILED;
  } finally {
    stop();
  }
}

module.exports = {
  summary: "write the current state (snapshot + ops replayed) as JSONL or JSON, streamed",
  help,
  options: {
    format: { type: "string" },
    out: { type: "string" },
    archive: { type: "boolean" },
  },
  check,
  run,
};
