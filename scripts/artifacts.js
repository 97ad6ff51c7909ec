#!/usr/bin/env node
// Copies the built addon into its platform package (npm/<triple>/) and sets every platform
// package's version to the root package's, ready for `npm publish` / `npm pack`.
"use strict";
const fs = require("node:fs");
const path = require("node:path");
const { binaryName, platformTriple } = require("../lib/platform");

const root = path.join(__dirname, "..");
const { version } = require("../package.json");
for (const triple of fs.readdirSync(path.join(root, "npm"))) {
  const manifest = path.join(root, "npm", triple, "package.json");
  const pkg = JSON.parse(fs.readFileSync(manifest, "utf8"));
  pkg.version = version;
  fs.writeFileSync(manifest, `${JSON.stringify(pkg, null, 2)}\n`);
}
const triple = platformTriple();
const built = path.join(root, binaryName(triple));
if (!fs.existsSync(built)) {
  console.error(`opslog-native: ${binaryName(triple)} is not built; run \`npm run build\` first`);
  process.exit(1);
}
fs.copyFileSync(built, path.join(root, "npm", triple, binaryName(triple)));
console.log(`opslog-native: npm/${triple}/${binaryName(triple)} ready`);
