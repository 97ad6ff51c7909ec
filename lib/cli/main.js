"use strict";
const { CLI_NAME } = require("../platform");
// The operator CLI's entry: parses the command line, runs one command, sets the exit code.
// Exit codes: 0 done (verify: clean); 1 the command found problems or failed; 2 a usage error,
// or the directory could not be read as a store.
const { parseArgs } = require("node:util");
const { COMMANDS, USAGE } = require("./commands");
const { EXIT, UsageError } = require("./usage");

const EXIT_OK = EXIT.OK;
const EXIT_USAGE = EXIT.USAGE;

function usageError(message, command) {
  const help = command ? `${CLI_NAME} ${command} --help` : `${CLI_NAME} --help`;
  process.stderr.write(`${CLI_NAME}: ${message}\nRun '${help}' for usage.\n`);
  return EXIT_USAGE;
}

/** Parses `argv` for `command`: its options, then exactly one directory. */
function parse(command, spec, argv) {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      options: { ...spec.options, help: { type: "boolean", short: "h" } },
      allowPositionals: true,
      strict: true,
    });
  } catch (err) {
    throw new UsageError(err.message.replace(/\. To specify a positional argument.*$/s, ""));
  }
  const { values, positionals } = parsed;
  if (values.help) return { help: true };
  if (positionals.length === 0) throw new UsageError("missing the store directory");
  if (positionals.length > 1) throw new UsageError(`unexpected argument '${positionals[1]}'`);
  return { dir: positionals[0], values };
}

async function main(argv) {
  const [command, ...rest] = argv;
  if (command === undefined) return usageError("missing a command");
  if (command === "--help" || command === "-h" || command === "help") {
    const topic = rest[0];
    if (topic !== undefined && COMMANDS[topic]) process.stdout.write(COMMANDS[topic].help);
    else if (topic !== undefined) return usageError(`unknown command '${topic}'`);
    else process.stdout.write(USAGE);
    return EXIT_OK;
  }
  if (command === "--version" || command === "-V") {
    process.stdout.write(`${require("../../package.json").version}\n`);
    return EXIT_OK;
  }
  const spec = COMMANDS[command];
  if (!spec) {
    return usageError(command.startsWith("-") ? `unknown option '${command}'` : `unknown command '${command}'`);
  }
  let args;
  try {
    args = parse(command, spec, rest);
    if (args.help) {
      process.stdout.write(spec.help);
      return EXIT_OK;
    }
    spec.check?.(args.values);
  } catch (err) {
    if (err instanceof UsageError) return usageError(err.message, command);
    throw err;
  }
  return spec.run(args.dir, args.values);
}

/** Runs the CLI and exits with its code once stdout has taken everything written to it. */
function run(argv) {
  main(argv).then(
    (code) => {
      process.exitCode = code;
    },
    (err) => {
      process.stderr.write(`${CLI_NAME}: ${err?.message ?? err}\n`);
      process.exitCode = 1;
    },
  );
}

module.exports = { run, main };
