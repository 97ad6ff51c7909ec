"use strict";
const { CLI_NAME, PACKAGE_NAME } = require("../platform");
// The CLI's commands, by name, and the overall usage text.
const COMMANDS = {
  inspect: require("./inspect"),
  verify: require("./verify"),
  export: require("./export"),
  compact: require("./compact"),
  tail: require("./tail"),
};

const USAGE = `Usage: ${CLI_NAME} <command> <dir> [options]

Looks at and maintains an opslog data directory (written by ${PACKAGE_NAME} or @backloghq/opslog).

Commands:
${Object.entries(COMMANDS)
  .map(([name, c]) => `  ${name.padEnd(9)}${c.summary}`)
  .join("\n")}

Run '${CLI_NAME} <command> --help' for a command's options and exit codes.
inspect, verify, export and tail never take the writer lock and never change a byte of <dir>.

Options:
  -h, --help     show this help
  -V, --version  show the version
`;

module.exports = { COMMANDS, USAGE };
