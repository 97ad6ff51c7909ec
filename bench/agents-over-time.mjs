// Multi-writer agents over time (README "Agent lifecycle"): N agents one after another (three open
// at once), each opening, writing 10 sets to shared and own ids and closing, one in 20 compacting.
// Own ids repeat every 50 agents, so the records stop growing after the first 50 agents and what
// grows is only the number of agents that ever wrote.
// Prints what the store holds afterwards and how long an agent's open took early and late:
//   node bench/agents-over-time.mjs [module] [agents]
// `module`: the package entry to measure (default: this checkout's index.mjs; another checkout's
// or `@backloghq/opslog` compare).
import { mkdtemp, readdir, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";

const [moduleArg, agentsArg] = process.argv.slice(2);
const spec = moduleArg && moduleArg !== "-" ? moduleArg : new URL("../index.mjs", import.meta.url).href;
const { Store } = await import(spec.startsWith("@") || spec.startsWith("file:") ? spec : pathToFileURL(resolve(spec)).href);
const AGENTS = Number(agentsArg ?? 200);
const dir = await mkdtemp(join(tmpdir(), "opslog-agents-over-time-"));

const openMs = [];
const live = [];
for (let i = 0; i < AGENTS; i++) {
  const s = new Store();
  const t0 = performance.now();
  await s.open(dir, { agentId: `agent-${i}`, checkpointOnClose: false });
  openMs.push(performance.now() - t0);
  live.push(s);
  for (let j = 0; j < 10; j++) await s.set(j % 2 ? `own-${i % 50}-${j}` : `shared-${(i * 7 + j) % 10}`, { i, j });
  if (i % 20 === 19) await s.compact();
  if (live.length > 3) await live.shift().close();
}
for (const s of live) await s.close();
const t0 = performance.now();
const reader = new Store();
await reader.open(dir, { readOnly: true });
const readerMs = performance.now() - t0;
const records = reader.count();
await reader.close();

const manifest = await readFile(join(dir, "manifest.json"), "utf8");
const registered = Object.keys(JSON.parse(manifest).activeAgentOps ?? {}).length;
const ops = await readdir(join(dir, "ops"));
let opsBytes = 0;
for (const f of ops) opsBytes += (await stat(join(dir, "ops", f))).size;
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const bucket = (from) => median(openMs.slice(from, from + 20)).toFixed(2);
console.log(
  `${spec}: ${AGENTS} agents -> ${records} records; manifest ${Buffer.byteLength(manifest)} B with ${registered} agents registered; ` +
    `ops/ ${ops.length} files, ${opsBytes} B; agent open median ms: agents 0-19 ${bucket(0)}, ` +
    `${Math.floor(AGENTS / 2)}-${Math.floor(AGENTS / 2) + 19} ${bucket(Math.floor(AGENTS / 2))}, last 20 ${bucket(AGENTS - 20)}; ` +
    `read-only open ${readerMs.toFixed(2)} ms`,
);
await rm(dir, { recursive: true, force: true });
