"use strict";
const { CLI_NAME } = require("../platform");
const { Store } = require("../store");
const { EXIT, UsageError, fail, storeOrFail } = require("./usage");

const AGENT = "opslog-cli-tail";

const help = `Usage: ${CLI_NAME} tail <dir> [--interval MS] [--from-start]

Follows the store in <dir> as a read-only follower and prints each op a writer appends, one JSON
object per line ({"ts","op","id","prev","data"}, plus "agent" and "clock" in a multi-writer
store), following the writer across its checkpoints. Runs until interrupted (Ctrl-C, SIGINT or
SIGTERM), then exits with code 0. Read-only: takes no lock, registers nothing, changes nothing.

Options:
  --interval MS  how often to look for new ops, in milliseconds (default 500)
  --from-start   first print the ops already logged since the last checkpoint
  -h, --help     show this help

Exit codes: 0 stopped by a signal, 1 failed, 2 the directory cannot be read as a store.
`;

function check(values) {
  if (values.interval !== undefined) {
    const ms = Number(values.interval);
    if (!Number.isInteger(ms) || ms < 10) {
      throw new UsageError(`--interval must be a whole number of milliseconds, at least 10 (got '${values.interval}')`);
    }
  }
}

function print(ops) {
  if (ops.length === 0) return;
  process.stdout.write(`${ops.map((op) => JSON.stringify(op)).join("\n")}\n`);
}

async function run(dir, values) {
  const kind = storeOrFail("tail", dir);
  if (!kind) return EXIT.UNREADABLE;
  const interval = values.interval === undefined ? 500 : Number(values.interval);
  let stopped = false;
  let wake = null;
  let timer = null;
  const stop = () => {
    stopped = true;
    clearTimeout(timer);
    wake?.();
  };
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
  process.stdout.on("error", (err) => {
    // The reader went away (`| head`): stop following.
    if (err.code === "EPIPE") stop();
  });
  const store = new Store();
  try {
    await store.open(dir, kind.multiWriter ? { readOnly: true, agentId: AGENT } : { readOnly: true });
  } catch (err) {
    process.off("SIGINT", stop);
    process.off("SIGTERM", stop);
    fail("tail", err.message);
    return EXIT.FAILED;
  }
  try {
    if (values["from-start"]) print(await store.getOps());
    while (!stopped) {
      print(await store.tail());
      if (stopped) break;
      await new Promise((resolve) => {
        wake = resolve;
        timer = setTimeout(resolve, interval);
      });
      wake = null;
    }
  } catch (err) {
    fail("tail", err.message);
    await store.close().catch(() => {});
    return EXIT.FAILED;
  } finally {
    process.off("SIGINT", stop);
    process.off("SIGTERM", stop);
  }
  await store.close();
  return EXIT.OK;
}

module.exports = {
  summary: "print ops as a live writer appends them (one JSON line each), across checkpoints",
  help,
  options: {
    interval: { type: "string" },
    "from-start": { type: "boolean" },
  },
  check,
  run,
};
