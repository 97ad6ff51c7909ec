#!/usr/bin/env node
"use strict";
// The operator CLI: `npx opslog-native <command> <dir>` (see `opslog-native --help`).
require("../lib/cli/main").run(process.argv.slice(2));
