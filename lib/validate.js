"use strict";
// Argument checks at the call: a write the log could not replay is refused with a TypeError
// that names the problem, before anything changes (SPEC 7.6).

function describe(value) {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "string") return `the string ${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value)}`;
  if (typeof value === "bigint") return `the BigInt ${value}n`;
  if (typeof value === "object") return `an object (${Object.prototype.toString.call(value).slice(8, -1)})`;
  return `${typeof value} ${String(value)}`;
}

/** Returns the id as JSON text (any JavaScript string survives the trip, lone surrogates too). */
function checkId(id) {
  if (typeof id !== "string" || id.length === 0) {
    throw new TypeError(`opslog: id must be a non-empty string, got ${describe(id)}`);
  }
  return JSON.stringify(id);
}

/** Returns the record's JSON text, or throws a TypeError saying why it cannot be stored. */
function recordText(id, value) {
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new TypeError(`opslog: record '${id}' must be a JSON object, got ${describe(value)}`);
  }
  let text;
  try {
    text = JSON.stringify(value);
  } catch (err) {
    throw new TypeError(`opslog: record '${id}' cannot be stored as JSON: ${err.message}`);
  }
  if (typeof text !== "string" || text.charCodeAt(0) !== 123 /* "{" */) {
    throw new TypeError(`opslog: record '${id}' must serialize to a JSON object, but JSON.stringify gave ${describe(text)}`);
  }
  return text;
}

function checkPeriod(segment) {
  if (typeof segment !== "string" || segment.length === 0 || /[/\\\0]/.test(segment) || segment === "." || segment === "..") {
    throw new TypeError(`opslog: archive segment must be a non-empty name without path separators, got ${describe(segment)}`);
  }
}

const WRITE_MODES = ["immediate", "group", "async"];

/** The options with the reference's defaults filled in; a TypeError for values of the wrong type. */
function checkOptions(options) {
  if (options !== undefined && (options === null || typeof options !== "object")) {
    throw new TypeError(`opslog: options must be an object, got ${describe(options)}`);
  }
  const o = options ?? {};
  const bad = (name, what) => {
    throw new TypeError(`opslog: option ${name} must be ${what}, got ${describe(o[name])}`);
  };
  const given = (name) => o[name] !== undefined;
  if (given("checkpointThreshold") && typeof o.checkpointThreshold !== "number") bad("checkpointThreshold", "a number");
  if (given("version") && !(Number.isInteger(o.version) && o.version >= 1 && o.version <= 0xffffffff)) bad("version", "a positive integer");
  if (given("migrate") && typeof o.migrate !== "function") bad("migrate", "a function");
  if (given("writeMode") && !WRITE_MODES.includes(o.writeMode)) bad("writeMode", '"immediate", "group" or "async"');
  for (const name of ["groupCommitSize", "groupCommitMs"]) {
    if (given(name) && !(typeof o[name] === "number" && o[name] >= 0)) bad(name, "a non-negative number");
  }
  if (given("agentId") && typeof o.agentId !== "string") bad("agentId", "a string");
  if (given("durable") && typeof o.durable !== "boolean") bad("durable", "a boolean");
  if (o.agentId && /[/\\\0]/.test(o.agentId)) bad("agentId", "usable in a file name (no path separators)");
  const skipLoad = Boolean(o.skipLoad);
  return {
    checkpointThreshold: given("checkpointThreshold") ? o.checkpointThreshold : 100,
    // skipLoad's Map is empty: checkpointing it on close would overwrite the real data.
    checkpointOnClose: given("checkpointOnClose") ? Boolean(o.checkpointOnClose) : !skipLoad,
    version: given("version") ? o.version : 1,
    migrate: o.migrate ?? ((r) => r),
    readOnly: Boolean(o.readOnly),
    skipLoad,
    writeMode: o.writeMode ?? "immediate",
    groupCommitSize: o.groupCommitSize || 50,
    groupCommitMs: o.groupCommitMs || 100,
    agentId: o.agentId || undefined,
    durable: o.durable === true,
    backend: o.backend,
  };
}

module.exports = { checkId, recordText, checkPeriod, checkOptions };
