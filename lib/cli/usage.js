"use strict";
const { CLI_NAME } = require("../platform");
// What the commands share: exit codes, the usage error, the store check before a command runs.
const native = require("../native");

const EXIT = { OK: 0, FAILED: 1, USAGE: 2, UNREADABLE: 2 };

/** A wrong command line: reported with a pointer to `--help`, exit code 2. */
class UsageError extends Error {}

/** Writes `<CLI_NAME> <command>: <message>` on stderr. */
function fail(command, message) {
  process.stderr.write(`${CLI_NAME} ${command}: ${message}\n`);
}

/**
 * The store in `dir` by a look at its manifest: `{ multiWriter }`, or `null` after saying on
 * stderr why the directory cannot be read as a store (exit code 2 follows).
 */
function storeOrFail(command, dir) {
  const kind = native.cliStoreKind(dir);
  if (kind.error !== null) {
    fail(command, `cannot read the store: ${kind.error}`);
    return null;
  }
  return kind;
}

module.exports = { EXIT, UsageError, fail, storeOrFail };
