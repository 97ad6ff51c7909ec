#!/usr/bin/env node
// Builds the Rust addon with cargo and places it where lib/native.js looks for it.
"use strict";
const { spawnSync } = require("node:child_process");
const fs = require("node:fs");
const path = require("node:path");
const { PACKAGE_NAME, binaryName } = require("../lib/platform");

const release = process.argv.includes("--release");
const root = path.join(__dirname, "..");
const args = ["build", "--lib", ...(release ? ["--release"] : [])];
const r = spawnSync("cargo", args, { cwd: root, stdio: "inherit" });
if (r.error) {
  console.error(`${PACKAGE_NAME}: could not run cargo (${r.error.message}); install Rust from https://rustup.rs`);
  process.exit(1);
}
if (r.status !== 0) process.exit(r.status ?? 1);

const libName = { darwin: "libopslog_native.dylib", win32: "opslog_native.dll" }[process.platform] ?? "libopslog_native.so";
const targetDir = process.env.CARGO_TARGET_DIR ?? path.join(root, "target");
const built = path.join(targetDir, release ? "release" : "debug", libName);
const dest = path.join(root, binaryName());
// Copied beside the destination and renamed over it: a process that has the old addon loaded
// keeps its (now unlinked) file instead of seeing it rewritten under it.
fs.copyFileSync(built, `${dest}.tmp`);
fs.renameSync(`${dest}.tmp`, dest);
console.log(`${PACKAGE_NAME}: built ${path.relative(root, dest)} (${release ? "release" : "debug"})`);
