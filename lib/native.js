"use strict";
// Loads the compiled addon for this platform and says clearly what is missing when it can't.
const path = require("node:path");
const fs = require("node:fs");
const { platformTriple, binaryName } = require("./platform");

const triple = platformTriple();
const file = path.join(__dirname, "..", binaryName(triple));
if (!fs.existsSync(file)) {
  throw new Error(
    `opslog-native: no native binary for ${triple} (looked for ${file}). ` +
      "Build it from source with `npm run build` (needs a Rust toolchain).",
  );
}
module.exports = require(file);
