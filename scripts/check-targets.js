#!/usr/bin/env node
// `npm run check:targets`: type-checks the workspace (engine crate and binding) for every target in
// `napi.targets`, in one cargo run on the cross toolchain (std compiled for each target with
// `-Z build-std`). Fails on any error or warning in our own crates' code, for any target.
"use strict";
const { spawnSync } = require("node:child_process");
const path = require("node:path");
const { crossEnv, BUILD_STD, SYSROOT_CARGO } = require("./toolchain");
const { napi } = require("../package.json");

const root = path.join(__dirname, "..");
const started = Date.now();
const targets = napi.targets.flatMap((t) => ["--target", t]);
const r = spawnSync(SYSROOT_CARGO, ["check", "--workspace", "--lib", "--message-format=json", ...targets, ...BUILD_STD], {
  cwd: root,
  env: crossEnv(),
  encoding: "utf8",
  maxBuffer: 256 * 1024 * 1024,
  stdio: ["ignore", "pipe", "inherit"],
});
if (r.error) throw r.error;

// Our crates' package ids (path+file://<root>[/crates/...]#name@version); std and dependencies
// are not ours.
const ours = (msg) => msg.package_id?.startsWith(`path+file://${root}`);
const findings = [];
for (const line of r.stdout.split("\n")) {
  if (!line.startsWith("{")) continue;
  const msg = JSON.parse(line);
  if (msg.reason !== "compiler-message" || !ours(msg)) continue;
  if (msg.message.level === "warning" || msg.message.level === "error") findings.push(msg.message.rendered);
}
const secs = ((Date.now() - started) / 1000).toFixed(0);
if (r.status !== 0 || findings.length) {
  for (const f of findings) process.stderr.write(f);
  console.error(`check:targets: ${findings.length} finding(s), cargo exited ${r.status} (${secs} s)`);
  process.exit(1);
}
console.log(`check:targets: ${napi.targets.join(", ")}: no errors, no warnings (${secs} s)`);
