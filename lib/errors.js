"use strict";
// The one place where the engine's errors become what a Node program expects. A failed system
// call arrives with its details as the error's `cause` (src/binding/guard.rs) and becomes an
// error shaped as Node's own fs errors are: `errno`, `code`, `syscall`, `path` (and `dest` for
// a rename), message `ENOSPC: no space left on device, write '<path>'`. Names and texts come
// from libuv through `util.getSystemErrorMap()`, so they are Node's by construction.
const { getSystemErrorMap } = require("node:util");

const OS_ERROR = "opslog:os-error ";
let systemErrors = null;
/** Errors a JavaScript backend threw: the user gets them as they are. */
const foreign = new WeakSet();

/** Marks a JavaScript backend's own error, which `withCode` then leaves alone. */
function passThrough(err) {
  if (err !== null && (typeof err === "object" || typeof err === "function")) foreign.add(err);
  return err;
}

/** The Node-shaped error for a failed system call the engine reported, or null. */
function osError(err) {
  const cause = err.cause;
  if (!(cause instanceof Error) || !String(cause.message).startsWith(OS_ERROR)) return null;
  const { errno, syscall, path, dest } = JSON.parse(cause.message.slice(OS_ERROR.length));
  systemErrors ??= getSystemErrorMap();
  // What Node's own uvException says of an errno libuv has no name for.
  const [code, text] = systemErrors.get(errno) ?? ["UNKNOWN", "unknown error"];
  let message = `${code}: ${text}, ${syscall} '${path}'`;
  if (dest !== undefined) message += ` -> '${dest}'`;
  const e = new Error(message);
  e.errno = errno;
  e.code = code;
  e.syscall = syscall;
  e.path = path;
  if (dest !== undefined) e.dest = dest;
  return e;
}

/** An engine error as the user sees it: Node's shape for a failed system call, else without napi's status code. */
function withCode(err) {
  if (!(err instanceof Error) || foreign.has(err)) return err;
  const os = osError(err);
  if (os) return os;
  if (err.code === "GenericFailure") delete err.code;
  return err;
}

/** Awaits a native promise, rethrowing its error as `withCode` shows it. */
async function call(promise) {
  try {
    return await promise;
  } catch (err) {
    throw withCode(err);
  }
}

// The facade's own error texts (the reference's words), each spelled here only.
const NOT_OPEN = "Store is not open. Call open() first.";
const READ_ONLY = "Store is read-only. Cannot perform mutations.";
const SKIP_LOAD_COMPACT = "Cannot compact in skipLoad mode — in-memory Map is incomplete";
const notFound = (id) => `Record '${id}' not found`;

module.exports = { withCode, call, passThrough, NOT_OPEN, READ_ONLY, SKIP_LOAD_COMPACT, notFound };
