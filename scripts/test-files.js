// The JavaScript test files, listed in one place for the runners that start them one by one
// (node-matrix.js, test-arm64.js): `__test__/<concept>/*.test.mjs`, one folder level deep, the
// same files as the `__test__/*/*.test.mjs` glob of `npm test`. Paths relative to the
// repository root, sorted.
"use strict";
const fs = require("node:fs");
const path = require("node:path");

const root = path.join(__dirname, "..");
const TESTS = "__test__";

/** Every test file, or those of one concept folder (e.g. "store", which runs once per backend). */
function testFiles(concept) {
  const folders = concept
    ? [concept]
    : fs.readdirSync(path.join(root, TESTS), { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name);
  return folders
    .flatMap((folder) =>
      fs.readdirSync(path.join(root, TESTS, folder)).filter((f) => f.endsWith(".test.mjs")).map((f) => path.join(TESTS, folder, f)),
    )
    .sort();
}

module.exports = { testFiles };
