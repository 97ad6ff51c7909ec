"use strict";
// opslog-native: drop-in replacement for @backloghq/opslog with a Rust engine.
const { Store } = require("./lib/store");
const { FsBackend } = require("./lib/fs-backend");
const helpers = require("./lib/helpers");

module.exports = { Store, FsBackend, ...helpers };
