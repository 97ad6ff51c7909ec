"use strict";
const { CLI_NAME } = require("../platform");
const native = require("../native");
const { startProgress } = require("./progress");
const { EXIT } = require("./usage");

const help = `Usage: ${CLI_NAME} verify <dir> [--json]

Reads every file the manifest of <dir> names and checks it in full: every snapshot line parses,
record ids are unique, every op line parses and validates (a torn last line is reported), the
ops replay over the snapshot, each agent's ops carry its id and increasing clocks, archive
segments are valid, and no path leads outside the directory. Each problem is printed as
<file>:<line>: <message>. Read-only: takes no lock, changes nothing.

Warnings (oddities the store reads as written, e.g. an op that deletes a record the log never
had) are printed but do not count as problems.

Options:
  --json      print one JSON object (documented in the README) instead of text
  -h, --help  show this help

Exit codes: 0 clean, 1 problems found, 2 could not read (no store there, or a file that cannot
be read at all).
`;

function where(p) {
  return p.line === null ? p.file : `${p.file}:${p.line}`;
}

function plural(n, one) {
  return `${n.toLocaleString("en-US")} ${n === 1 ? one : `${one}s`}`;
}

async function run(dir, values) {
  const job = new native.CliVerify(dir);
  const stop = startProgress("verifying", () => job.progress(), "bytes");
  let v;
  try {
    v = await job.run();
  } finally {
    stop();
  }
  if (values.json) {
    process.stdout.write(`${JSON.stringify(v, null, 2)}\n`);
  } else {
    const lines = v.problems.map((p) => `${where(p)}: ${p.message}`);
    lines.push(...v.warnings.map((w) => `warning: ${where(w)}: ${w.message}`));
    const checked = `${plural(v.files, "file")}, ${plural(v.records, "record")}, ${plural(v.ops, "op")}`;
    if (v.status === "clean") lines.push(`ok: ${checked} checked, no problems`);
    else if (v.status === "problems") lines.push(`${plural(v.problems.length, "problem")} (${checked} checked)`);
    else lines.push("could not read the store");
    process.stdout.write(`${lines.join("\n")}\n`);
  }
  return { clean: EXIT.OK, problems: EXIT.FAILED, unreadable: EXIT.UNREADABLE }[v.status];
}

module.exports = {
  summary: "check every file the manifest names, in full (exit 0 clean, 1 problems, 2 unreadable)",
  help,
  options: { json: { type: "boolean" } },
  run,
};
