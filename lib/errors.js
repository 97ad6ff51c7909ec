"use strict";
// Errors from the engine carry Node's errno text ("ENOENT: no such file or directory, ...");
// give them the matching `code` property as Node's own fs errors have.
function withCode(err) {
  if (err instanceof Error) {
    const m = /^(E[A-Z]+): /.exec(err.message);
    if (m) err.code = m[1];
    else if (err.code === "GenericFailure") delete err.code;
  }
  return err;
}

/** Awaits a native promise, rethrowing its error with a Node-style `code`. */
async function call(promise) {
  try {
    return await promise;
  } catch (err) {
    throw withCode(err);
  }
}

module.exports = { withCode, call };
