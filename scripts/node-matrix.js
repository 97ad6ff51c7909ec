#!/usr/bin/env node
// `npm run test:node-matrix`: the JavaScript suite under every Node major we support, against the
// addon already built in this checkout. Node binaries come from the npm registry's official
// `node-<platform>-<arch>` packages into a cache outside the checkout, reused between runs.
//
//   node scripts/node-matrix.js [--majors 18,22] [--repeat N] [-- extra node --test args]
//
// Prints one line per run; exits 1 when any run fails (its full output is kept in the log named).
"use strict";
const { execFileSync, spawn } = require("node:child_process");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const { nodeBinary } = require("./node-dist");
const { testFiles } = require("./test-files");

const root = path.join(__dirname, "..");
// The Node majors the README promises; engines.node in package.json says ">= 18".
const SUPPORTED_MAJORS = [18, 20, 22, 24];

function parseArgs(argv) {
  const opts = { majors: SUPPORTED_MAJORS, repeat: 1, files: null };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "--majors") opts.majors = argv[++i].split(",").map(Number);
    else if (arg === "--repeat") opts.repeat = Number(argv[++i]);
    else if (arg === "--") opts.files = argv.slice(i + 1), (i = argv.length);
    else throw new Error(`node-matrix: unknown argument '${arg}' (expected --majors, --repeat or -- files)`);
  }
  if (opts.majors.some((m) => !Number.isInteger(m) || m < 18)) throw new Error("node-matrix: --majors takes majors >= 18, e.g. 18,22");
  if (!Number.isInteger(opts.repeat) || opts.repeat < 1) throw new Error("node-matrix: --repeat takes a positive integer");
  return opts;
}

// Runs `node --test` with the given binary first on PATH (children that spawn "node" get it too).
// Output goes to a log file in TAP (the default reporter differs between majors); the summary
// counters come from its footer.
function runSuite(node, files, log) {
  return new Promise((resolve, reject) => {
    const out = fs.openSync(log, "w");
    const env = { ...process.env, PATH: `${path.dirname(node)}${path.delimiter}${process.env.PATH}` };
    const child = spawn(node, ["--test", "--test-reporter=tap", ...files], { cwd: root, env, stdio: ["ignore", out, out] });
    child.on("error", reject);
    child.on("close", (code, signal) => {
      fs.closeSync(out);
      const text = fs.readFileSync(log, "utf8");
      const count = (name) => Number((text.match(new RegExp(`^# ${name} (\\d+)$`, "m")) || [])[1] ?? NaN);
      const failures = failureReports(text);
      resolve({ code, signal, pass: count("pass"), fail: count("fail"), skipped: count("skipped"), todo: count("todo"), failures });
    });
  });
}

// Each `not ok` line of a TAP log (a todo's expected failure aside) with its YAML diagnostic
// block (error, stack, location), so a failure on a CI machine can be read from the console.
function failureReports(text) {
  const lines = text.split("\n");
  const reports = [];
  for (let i = 0; i < lines.length; i++) {
    const m = /^(\s*)not ok /.exec(lines[i]);
    if (!m || / # TODO /.test(lines[i])) continue;
    const indent = m[1];
    const block = [lines[i]];
    for (let j = i + 1; j < lines.length && j < i + 60; j++) {
      block.push(lines[j]);
      if (lines[j] === `${indent}  ...`) break;
    }
    reports.push(block.join("\n"));
  }
  return reports;
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const files = opts.files ?? testFiles();
  const logs = fs.mkdtempSync(path.join(os.tmpdir(), "opslog-node-matrix-"));
  let failed = 0;
  for (const major of opts.majors) {
    const node = nodeBinary(major);
    const version = execFileSync(node, ["--version"], { encoding: "utf8" }).trim();
    for (let round = 1; round <= opts.repeat; round++) {
      const log = path.join(logs, `node-${major}-run-${round}.log`);
      const started = Date.now();
      const r = await runSuite(node, files, log);
      const secs = ((Date.now() - started) / 1000).toFixed(1);
      const ok = r.code === 0 && r.fail === 0;
      if (!ok) failed++;
      const run = opts.repeat > 1 ? ` run ${round}/${opts.repeat}` : "";
      console.log(
        `node ${version}${run}: ${ok ? "ok" : "FAILED"}, ${r.pass} pass, ${r.fail} fail, ${r.skipped} skipped, ${r.todo} todo, ${secs} s` +
          (ok ? "" : ` (exit ${r.signal ?? r.code}; log: ${log})`),
      );
      for (const report of ok ? [] : r.failures) console.log(report);
    }
  }
  if (failed) process.exitCode = 1;
  else fs.rmSync(logs, { recursive: true, force: true });
}

main().catch((err) => {
  console.error(err.message);
  process.exitCode = 2;
});
