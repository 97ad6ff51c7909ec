// Runs one CLI command in this process and reports how far its resident set grew: the RSS when
// the command starts (addon loaded) and the peak RSS of the process, in bytes, as JSON on stderr's
// last line (stdout is the command's).
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const { main } = require("../../lib/cli/main.js");
require("../../lib/native.js");
const start = process.memoryUsage().rss;
const code = await main(process.argv.slice(2));
const peak = process.resourceUsage().maxRSS * 1024;
process.stderr.write(`${JSON.stringify({ code, start, peak })}\n`);
