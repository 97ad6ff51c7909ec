"use strict";
// opslog-native: drop-in replacement for @backloghq/opslog with a Rust engine.
const { Store } = require("./lib/store");

module.exports = { Store };
