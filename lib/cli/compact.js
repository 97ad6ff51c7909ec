"use strict";
const { CLI_NAME } = require("../platform");
const fs = require("node:fs");
const path = require("node:path");
const { Store } = require("../store");
const { formatBytes, startProgress } = require("./progress");
const { EXIT, fail, storeOrFail } = require("./usage");

const AGENT = "opslog-cli";

const help = `Usage: ${CLI_NAME} compact <dir>

Checkpoints the store in <dir> offline: writes a new snapshot holding the ops since the last
checkpoint and starts a new empty op file, through the store's normal open, compact and close
(so the writer lock is taken and released as any writer does). Refuses, changing nothing, when a
running process holds the store's lock.

A multi-writer store is compacted as its agent "${AGENT}" (registered once, with an empty op file), under
the compaction lock, keeping every agent's writes.

Options:
  -h, --help  show this help

Exit codes: 0 done, 1 refused or failed (the store is in use, a damaged file), 2 the directory
cannot be read as a store.
`;

const LOCKED = /^Store is locked by process (\d+)\. If this is stale, delete (.*)$/;

async function run(dir, _values) {
  const kind = storeOrFail("compact", dir);
  if (!kind) return EXIT.UNREADABLE;
  const store = new Store();
  const stop = startProgress("compacting", () => [0, 0], null);
  try {
    await store.open(dir, kind.multiWriter ? { agentId: AGENT } : {});
  } catch (err) {
    stop();
    const locked = LOCKED.exec(err.message);
    if (locked) {
      fail(
        "compact",
        `the store is in use: process ${locked[1]} holds its lock (${locked[2]}). ` +
          "Stop that process and run compact again; nothing was changed.",
      );
    } else {
      fail("compact", err.message);
    }
    return EXIT.FAILED;
  }
  let done;
  try {
    const before = store.stats();
    await store.compact();
    const manifest = store.getManifest();
    done = { before, manifest };
  } catch (err) {
    stop();
    await store.close().catch(() => {});
    fail("compact", err.message);
    return EXIT.FAILED;
  }
  try {
    await store.close();
  } finally {
    stop();
  }
  const { before, manifest } = done;
  const size = fs.statSync(path.join(dir, manifest.currentSnapshot)).size;
  const n = (count, one) => `${count.toLocaleString("en-US")} ${count === 1 ? one : `${one}s`}`;
  process.stdout.write(
    `compacted ${dir}: ${n(before.activeRecords, "record")}, ${n(before.opsCount, "op")} folded into ` +
      `${manifest.currentSnapshot} (${formatBytes(size)}); new op file ${manifest.activeOps}\n`,
  );
  return EXIT.OK;
}

module.exports = {
  summary: "checkpoint the store offline (refuses while a writer holds the lock)",
  help,
  options: {},
  run,
};
