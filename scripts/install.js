#!/usr/bin/env node
// npm install hook: builds the addon from source when no binary for this platform is present.
"use strict";
const fs = require("node:fs");
const path = require("node:path");

const root = path.join(__dirname, "..");
const present = fs.readdirSync(root).some((f) => f.startsWith("opslog-native.") && f.endsWith(".node"));
if (present && !process.env.OPSLOG_NATIVE_REBUILD) process.exit(0);
process.argv.push("--release");
require("./build.js");
