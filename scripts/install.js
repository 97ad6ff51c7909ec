#!/usr/bin/env node
// npm install hook. A prebuilt binary (local build or the platform package) needs nothing.
// Otherwise build from source when a Rust toolchain is there; if not, say what to do and leave
// the install itself intact (loading then fails with the same explanation).
"use strict";
const fs = require("node:fs");
const path = require("node:path");
const { spawnSync } = require("node:child_process");
const { PACKAGE_NAME, binaryName, packageName } = require("../lib/platform");

const root = path.join(__dirname, "..");
function prebuilt() {
  if (fs.existsSync(path.join(root, binaryName()))) return true;
  try {
    require.resolve(packageName(), { paths: [root] });
    return true;
  } catch {
    return false;
  }
}

if (prebuilt() && !process.env.OPSLOG_NATIVE_REBUILD) process.exit(0);
const hasCargo = spawnSync("cargo", ["--version"], { stdio: "ignore" }).status === 0;
if (!hasCargo || !fs.existsSync(path.join(root, "Cargo.toml"))) {
  console.warn(
    `${PACKAGE_NAME}: no prebuilt binary for this platform (${packageName()}) and no Rust toolchain to build one; ` +
      `install Rust from https://rustup.rs and run \`npm rebuild ${PACKAGE_NAME}\`.`,
  );
  process.exit(0);
}
process.argv.push("--release");
require("./build.js");
