"use strict";
// Loads the compiled addon: a local build (from source, or `npm run build`) first, then the
// platform package npm installs as an optional dependency (napi-rs convention). Says clearly
// which package is missing when neither is there.
const path = require("node:path");
const fs = require("node:fs");
const { platformTriple, binaryName, packageName } = require("./platform");

function load() {
  const triple = platformTriple();
  const local = path.join(__dirname, "..", binaryName(triple));
  if (fs.existsSync(local)) return require(local);
  const pkg = packageName(triple);
  try {
    return require(pkg);
  } catch (err) {
    if (err.code !== "MODULE_NOT_FOUND" || !String(err.message).includes(pkg)) throw err;
  }
  throw new Error(
    `opslog-native: no native binary for this platform (${triple}). ` +
      `The package "${pkg}" is missing: npm installs it as an optional dependency unless optional ` +
      "dependencies are omitted (--omit=optional) or no binary is published for this platform. " +
      "To build from source instead, install Rust (https://rustup.rs) and run `npm rebuild opslog-native`.",
  );
}

module.exports = load();
