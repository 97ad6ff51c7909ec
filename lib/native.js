"use strict";
// Loads the compiled addon the way napi-rs's generated loader does: a local build beside the
// package (from source, or `npm run build`) first, then the platform package npm installs as an
// optional dependency. The platform package must be this package's version (an addon of
// another version may expose another binding). Every failure names the platform, the package
// and the fix.
const path = require("node:path");
const fs = require("node:fs");
const { version } = require("../package.json");
const { PACKAGE_NAME, platformTriple, shippedPlatforms, binaryName, packageName } = require("./platform");

const BUILD_FROM_SOURCE =
  `To build from source instead, install Rust (https://rustup.rs) and run \`npm rebuild ${PACKAGE_NAME}\` ` +
  "(with npm 11 or later, allow our install script first: see the README, \"Installing\").";

function fromPackage(triple) {
  const pkg = packageName(triple);
  let manifest;
  try {
    manifest = require(`${pkg}/package.json`);
  } catch (err) {
    if (err.code !== "MODULE_NOT_FOUND") throw err;
    const why = shippedPlatforms().includes(triple)
      ? `The package "${pkg}" is missing: npm installs it as an optional dependency unless optional ` +
        "dependencies are omitted (--omit=optional, or a lock file written on another platform: reinstall with `npm install`)."
      : `No prebuilt binary is published for ${triple} (published: ${shippedPlatforms().join(", ")}).`;
    throw new Error(`${PACKAGE_NAME}: no native binary for this platform (${triple}). ${why} ${BUILD_FROM_SOURCE}`);
  }
  if (manifest.version !== version) {
    throw new Error(
      `${PACKAGE_NAME}: the platform package "${pkg}" is version ${manifest.version}, but ${PACKAGE_NAME} is ${version}; ` +
        `install matching versions (npm install ${PACKAGE_NAME}@${version} ${pkg}@${version}).`,
    );
  }
  return require(pkg);
}

function load() {
  const triple = platformTriple();
  const local = path.join(__dirname, "..", binaryName(triple));
  return fs.existsSync(local) ? require(local) : fromPackage(triple);
}

module.exports = load();
