#!/usr/bin/env node
// `npm run artifacts`: puts every built addon into its platform package (npm/<platform>/) and
// sets each platform package's version to this package's (@napi-rs/cli's `napi version`). The
// addons are the ones in artifacts/ (`npm run build:cross`) and this machine's own build
// (`npm run build`).
//
// The copy is ours, not `napi artifacts`: that command refuses to run unless an addon of every
// target in napi.targets is there (right for a release job gathering all of them, not for a
// machine that builds three), and it also writes each addon into the package root, where a
// foreign platform's addon has no business.
"use strict";
const { execFileSync } = require("node:child_process");
const fs = require("node:fs");
const path = require("node:path");
const { PACKAGE_NAME, binaryName, shippedPlatforms, platformTriple } = require("../lib/platform");
const { ARTIFACTS } = require("./build-cross");

const root = path.join(__dirname, "..");
const napiCli = (args) => execFileSync(path.join(root, "node_modules", ".bin", "napi"), args, { cwd: root, stdio: "inherit" });

napiCli(["version"]);
const built = [];
for (const platform of shippedPlatforms()) {
  const name = binaryName(platform);
  const own = platform === platformTriple() ? path.join(root, name) : null;
  // The newer of the cross build and this machine's own build (a stale one never wins).
  const source = [path.join(ARTIFACTS, name), own]
    .filter((f) => f && fs.existsSync(f))
    .sort((a, b) => fs.statSync(b).mtimeMs - fs.statSync(a).mtimeMs)[0];
  if (!source) continue;
  fs.copyFileSync(source, path.join(root, "npm", platform, name));
  console.log(`${PACKAGE_NAME}: npm/${platform}/${name} ready (from ${path.relative(root, source)})`);
  built.push(platform);
}
if (!built.length) {
  console.error(`${PACKAGE_NAME}: no addon is built; run \`npm run build\` (this machine) or \`npm run build:cross\` first`);
  process.exit(1);
}
const missing = shippedPlatforms().filter((p) => !built.includes(p));
if (missing.length) console.log(`${PACKAGE_NAME}: not built here, their packages hold no addon: ${missing.join(", ")}`);
