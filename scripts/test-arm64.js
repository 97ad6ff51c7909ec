#!/usr/bin/env node
// `npm run test:arm64`: the linux-arm64-gnu addon (artifacts/, from `npm run build:cross`; built
// first when missing) in the official arm64 Node of the npm registry, under qemu user-mode
// emulation: the demo, then every Store test file (__test__/store/*.test.mjs). The kernel here
// cannot start an arm64 program by itself (no binfmt registration in a container), so each file
// runs as `qemu-aarch64-static <arm64 node> <file>` instead of through `node --test`'s runner,
// and the tests start their child processes through the same prefix (OPSLOG_TEST_NODE_PREFIX).
"use strict";
const { spawnSync, execFileSync } = require("node:child_process");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const { nodeBinary } = require("./node-dist");
const { qemuArm64Prefix } = require("./toolchain");
const { ARTIFACTS } = require("./build-cross");
const { binaryName } = require("../lib/platform");
const { testFiles } = require("./test-files");

const root = path.join(__dirname, "..");
const PLATFORM = "linux-arm64-gnu";
// `-- --demo`: the demo only (what CI runs); `-- <major>`: another Node major than this one's.
const args = process.argv.slice(2);
const demoOnly = args.includes("--demo");
const major = Number(args.find((a) => /^\d+$/.test(a)) ?? process.versions.node.split(".")[0]);

const artifact = path.join(ARTIFACTS, binaryName(PLATFORM));
if (!fs.existsSync(artifact)) execFileSync(process.execPath, [path.join(__dirname, "build-cross.js"), PLATFORM], { stdio: "inherit" });
const prefix = qemuArm64Prefix();

// The loader takes a local build beside the package first: the arm64 addon is put there for
// the run (the host's own addon has another name and stays).
const local = path.join(root, binaryName(PLATFORM));
if (fs.existsSync(local)) {
  console.error(`test:arm64: ${path.relative(root, local)} exists (a native arm64 build?): run \`npm test\` on an arm64 machine, or move it away`);
  process.exit(2);
}
// Some tests run a child as user nobody, who cannot enter the cache under root's home: the
// arm64 Node runs from a world-readable copy.
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "opslog-arm64-"));
fs.chmodSync(scratch, 0o755);
const node = path.join(scratch, "node");
fs.copyFileSync(nodeBinary(major, { arch: "arm64" }), node);
fs.chmodSync(node, 0o755);
fs.copyFileSync(artifact, local);

const env = { ...process.env, OPSLOG_TEST_NODE_PREFIX: JSON.stringify(prefix) };
function runArm64(args, label) {
  const started = Date.now();
  const r = spawnSync(prefix[0], [...prefix.slice(1), node, ...args], { cwd: root, env, encoding: "utf8", timeout: 20 * 60 * 1000 });
  const secs = ((Date.now() - started) / 1000).toFixed(1);
  const ok = r.status === 0;
  console.log(`${ok ? "ok    " : "FAILED"} ${label} (${secs} s)`);
  if (!ok) process.stdout.write(`${r.stdout ?? ""}${r.stderr ?? ""}${r.error ? `${r.error.message}\n` : ""}`);
  return ok;
}

let failed = 0;
try {
  const arch = spawnSync(prefix[0], [...prefix.slice(1), node, "-p", "`${process.version} ${process.arch}`"], { encoding: "utf8" }).stdout.trim();
  console.log(`arm64 Node under qemu: ${arch}`);
  if (!runArm64(["demo.mjs"], "demo.mjs")) failed++;
  const files = demoOnly ? [] : testFiles("store");
  for (const f of files) if (!runArm64([f], f)) failed++;
  console.log(`test:arm64: ${files.length + 1 - failed} of ${files.length + 1} passed`);
} finally {
  fs.rmSync(local, { force: true });
  fs.rmSync(scratch, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
