#!/usr/bin/env node
// Prepares the publishable main package in a directory: the `files` of package.json, and a
// package.json that lists every platform package (napi.targets) as an optional dependency, at
// this version. (The repository's own package.json does not list them: they only exist once
// published, and `npm ci` would refuse a lock file without them.)
// Usage: node scripts/stage.js <dir>
"use strict";
const fs = require("node:fs");
const path = require("node:path");

const { PACKAGE_NAME, shippedPlatforms, packageName } = require("../lib/platform");

const root = path.join(__dirname, "..");

function stage(dest) {
  const pkg = JSON.parse(fs.readFileSync(path.join(root, "package.json"), "utf8"));
  fs.rmSync(dest, { recursive: true, force: true });
  fs.mkdirSync(dest, { recursive: true });
  for (const entry of pkg.files) fs.cpSync(path.join(root, entry), path.join(dest, entry), { recursive: true });
  pkg.optionalDependencies = Object.fromEntries(shippedPlatforms().map((p) => [packageName(p), pkg.version]));
  delete pkg.devDependencies;
  for (const name of Object.keys(pkg.scripts)) if (name !== "install") delete pkg.scripts[name];
  fs.writeFileSync(path.join(dest, "package.json"), `${JSON.stringify(pkg, null, 2)}\n`);
  return dest;
}

if (require.main === module) {
  const dest = process.argv[2];
  if (!dest) {
    console.error("usage: node scripts/stage.js <dir>");
    process.exit(2);
  }
  console.log(`${PACKAGE_NAME}: staged ${stage(path.resolve(dest))}`);
}

module.exports = { stage };
