// The benchmark of opslog-native against @backloghq/opslog 0.8.1 (issue 5).
//
//   node bench/run.mjs [--scale S] [--rounds R] [--only a,b] [--no-write] [--keep]
//
// Runs every scenario on both implementations in the same run, each measurement in a fresh
// process (bench/run-one.mjs), alternating which implementation goes first from round to round,
// and reports the median of the rounds: each figure for the reference, for ours, the ratio and
// whether the target is met. At full scale (--scale 1, the default) it also writes the table and
// a description of the machine into BENCHMARKS.md (between the generated-section markers; the
// rest of the file is kept). `npm run bench:smoke` runs everything at 1% scale, once, and writes
// nothing: it only checks that the harness works.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import crypto from "node:crypto";
import { spawn, execSync } from "node:child_process";
import { ROOT, BENCH_DIR, IMPLS } from "./common.mjs";
import { SCENARIOS, ratioOf, meets, targetText } from "./scenarios.mjs";

// --- arguments ---
const argv = process.argv.slice(2);
const arg = (name) => {
  const i = argv.indexOf(name);
  if (i === -1) return undefined;
  const v = argv[i + 1];
  if (v === undefined || v.startsWith("--")) throw new Error(`${name} needs a value`);
  return v;
};
const scale = Number(arg("--scale") ?? 1);
if (!(scale > 0)) throw new Error("--scale must be a positive number");
const full = scale === 1;
const rounds = Number(arg("--rounds") ?? (full ? 3 : 1));
const only = arg("--only")?.split(",");
const write = full && !argv.includes("--no-write") && !only;
const keep = argv.includes("--keep");
const scenarios = only ? SCENARIOS.filter((s) => only.includes(s.key)) : SCENARIOS;
if (only && scenarios.length !== only.length) {
  throw new Error(`unknown scenario in --only (known: ${SCENARIOS.map((s) => s.key).join(", ")})`);
}

const log = (...a) => console.error(...a);

// --- the addon under test ---
const addonName = fs.readdirSync(ROOT).find((f) => /^opslog-native\..*\.node$/.test(f));
if (!addonName) throw new Error("no built addon at the repository root: run `npm run build` first");
const sha = (file) => crypto.createHash("sha256").update(fs.readFileSync(file)).digest("hex");
const addonSha = sha(path.join(ROOT, addonName));
const releaseLib = path.join(process.env.CARGO_TARGET_DIR ?? path.join(ROOT, "target"), "release", "libopslog_native.so");
const isRelease = fs.existsSync(releaseLib) && sha(releaseLib) === addonSha;
if (!isRelease) {
  log(`WARNING: ${addonName} is not the release build in target/release (run \`npm run build\`).`);
  if (write) throw new Error("refusing to write BENCHMARKS.md from a build that is not the release build");
}

// A private copy of our package, so a rebuild in the working tree during the run changes nothing.
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "opslog-bench-"));
const oursPkg = path.join(tmp, "ours-pkg");
fs.mkdirSync(oursPkg);
for (const f of ["index.js", "index.mjs", "package.json", "lib", addonName]) {
  fs.cpSync(path.join(ROOT, f), path.join(oursPkg, f), { recursive: true });
}
const env = { ...process.env, OPSLOG_BENCH_OURS: oursPkg };

// --- child processes ---
function runChild(impl, scenario, extra = []) {
  const args = ["--expose-gc", path.join(BENCH_DIR, "run-one.mjs"), impl, scenario, String(scale), ...extra];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { env, stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    child.stdout.setEncoding("utf8").on("data", (d) => (out += d));
    child.on("error", reject);
    child.on("exit", (code, signal) => {
      const line = out.split("\n").find((l) => l.startsWith("RESULT "));
      if (code !== 0 || !line) {
        reject(new Error(`${impl} ${scenario} failed (exit ${code ?? signal})\n${out}`));
      } else resolve(JSON.parse(line.slice("RESULT ".length)));
    });
  });
}

// --- machine ---
function machine() {
  const cpu = (() => {
    try {
      return fs.readFileSync("/proc/cpuinfo", "utf8").match(/model name\s*:\s*(.*)/)?.[1]?.trim();
    } catch {
      return undefined;
    }
  })() ?? os.cpus()[0]?.model ?? "unknown";
  const sh = (cmd) => {
    try {
      return execSync(cmd, { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
    } catch {
      return "unknown";
    }
  };
  const refVersion = JSON.parse(fs.readFileSync(path.join(ROOT, "node_modules/@backloghq/opslog/package.json"), "utf8")).version;
  return {
    cpu,
    cores: os.availableParallelism?.() ?? os.cpus().length,
    memoryGB: (os.totalmem() / 2 ** 30).toFixed(1),
    os: `${os.type()} ${os.release()} (${os.arch()})`,
    node: process.version,
    rustc: sh("rustc -V"),
    tmpFs: sh(`df -T ${JSON.stringify(os.tmpdir())} | tail -1 | awk '{print $2}'`),
    reference: `@backloghq/opslog ${refVersion}`,
    commit: sh("git -C " + JSON.stringify(ROOT) + " describe --always --dirty"),
    addon: `${addonName} (${isRelease ? "release build" : "NOT the release build"}, sha256 ${addonSha.slice(0, 12)})`,
  };
}

// --- the run ---
const started = Date.now();
const m = machine();
log(`opslog bench: scale ${scale}, ${rounds} round(s), ${scenarios.length} scenario(s); temp dir ${tmp}`);
log(`${m.cpu}, ${m.cores} cores, ${m.memoryGB} GB, Node ${m.node}, ${m.rustc}`);

// Fixtures: created once per implementation, each with its own implementation, not timed.
const fixtures = {};
for (const name of new Set(scenarios.map((s) => s.fixture).filter(Boolean))) {
  for (const impl of IMPLS) {
    const dir = path.join(tmp, "fixtures", impl, name);
    const r = await runChild(impl, `fixture:${name}`, ["--dir", dir]);
    log(`  fixture ${name} (${impl}): ${r.details.records} records, ${r.details.ops} ops, ${(r.figures.ms / 1000).toFixed(1)} s`);
    fixtures[`${impl}/${name}`] = dir;
  }
}

const results = {}; // scenario -> impl -> [result per round]
for (let round = 0; round < rounds; round++) {
  for (const s of scenarios) {
    const order = round % 2 === 0 ? ["reference", "ours"] : ["ours", "reference"];
    for (const impl of order) {
      const work = path.join(tmp, "work", `${impl}-${s.key}`);
      const extra = ["--dir", work];
      if (s.fixture) extra.push("--fixture", fixtures[`${impl}/${s.fixture}`]);
      const r = await runChild(impl, s.key, extra);
      fs.rmSync(work, { recursive: true, force: true });
      ((results[s.key] ??= {})[impl] ??= []).push(r);
      const figs = s.figures.map((f) => `${fmt(r.figures[f.key])} ${f.unit}`).join(", ");
      log(`  round ${round + 1} ${s.key} ${impl}: ${figs}`);
    }
  }
}
const seconds = Math.round((Date.now() - started) / 1000);

// --- the table ---
function median(xs) {
  const v = [...xs].sort((a, b) => a - b);
  const mid = v.length >> 1;
  return v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

function fmt(x) {
  if (x === null || x === undefined || Number.isNaN(x)) return "-";
  if (x >= 1000) return Math.round(x).toLocaleString("en-US");
  if (x >= 100) return x.toFixed(0);
  if (x >= 10) return x.toFixed(1);
  return x.toFixed(2);
}

function ratioText(f, ratio) {
  if (ratio === null) return "-";
  const x = (r) => (r >= 100 ? r.toFixed(0) : r.toFixed(2));
  if (f.ratio !== "ref/ours") return `${x(ratio)}x`;
  const [better, worse] = f.word === "shorter" ? ["shorter", "longer"] : ["faster", "slower"];
  return ratio >= 1 ? `${x(ratio)}x ${better}` : `${x(ratio)}x (${(1 / ratio).toFixed(1)}x ${worse})`;
}

const rows = [];
for (const s of scenarios) {
  for (const f of s.figures) {
    const per = (impl) => results[s.key][impl].map((r) => r.figures[f.key]);
    const ref = median(per("reference"));
    const ours = median(per("ours"));
    const ratio = ratioOf(f, ref, ours);
    rows.push({
      scenario: f.label ?? s.title,
      figure: f.unit,
      ref,
      ours,
      ratio,
      ratioText: ratioText(f, ratio),
      target: targetText(f),
      met: meets(f, ref, ours),
      rounds: { reference: per("reference"), ours: per("ours") },
    });
  }
}

function table() {
  const lines = [
    "| scenario | figure | reference | ours | ratio | target | met |",
    "| --- | --- | ---: | ---: | ---: | --- | --- |",
  ];
  for (const r of rows) {
    lines.push(`| ${r.scenario} | ${r.figure} | ${fmt(r.ref)} | ${fmt(r.ours)} | ${r.ratioText} | ${r.target} | ${r.met === null ? "–" : r.met ? "yes" : "**no**"} |`);
  }
  return lines.join("\n");
}

function roundsTable() {
  const lines = ["| scenario | figure | reference, per round | ours, per round |", "| --- | --- | --- | --- |"];
  for (const r of rows) {
    lines.push(`| ${r.scenario} | ${r.figure} | ${r.rounds.reference.map(fmt).join(", ")} | ${r.rounds.ours.map(fmt).join(", ")} |`);
  }
  return lines.join("\n");
}

const tableText = table();
console.log(`\nopslog-native vs @backloghq/opslog — scale ${scale}${full ? "" : ` (sizes are ${scale * 100}% of those named)`}, median of ${rounds} round(s), ${seconds} s\n`);
console.log(tableText);
console.log(
  "\nratio: ours / reference for ops/s and MB, reference / ours (\"x faster\") for ms;" +
    " targets marked ≤ N are on our own figure.",
);

// --- BENCHMARKS.md ---
if (write) {
  const BEGIN = "<!-- bench:begin (generated by `npm run bench`; edits inside are overwritten) -->";
  const END = "<!-- bench:end -->";
  const generated = `${BEGIN}
Command: \`npm run bench\` (= \`npm run build && node bench/run.mjs\`), run ${new Date().toISOString().slice(0, 10)}, ${seconds} s.
Each figure is the median of ${rounds} rounds; each measurement runs in a fresh \`node --expose-gc\`
process and the two implementations alternate which goes first from round to round.

Machine:

- CPU: ${m.cpu}, ${m.cores} cores
- memory: ${m.memoryGB} GB
- OS: ${m.os}; store directories under ${os.tmpdir()} (${m.tmpFs})
- Node ${m.node}; ${m.rustc}
- reference: ${m.reference}; ours: ${m.addon}, from commit ${m.commit}

${tableText}

Ratio: ours / reference for ops/s and MB; reference / ours ("x faster") for ms. Targets written
"≤ N ms" or "≤ N MB" are on our own figure; the reference's is shown for comparison.

<details><summary>Every round</summary>

${roundsTable()}

</details>
${END}`;
  const file = path.join(ROOT, "BENCHMARKS.md");
  const old = fs.existsSync(file) ? fs.readFileSync(file, "utf8") : "";
  const a = old.indexOf("<!-- bench:begin");
  const b = old.indexOf(END);
  const text = a !== -1 && b !== -1
    ? old.slice(0, a) + generated + old.slice(b + END.length)
    : `# Benchmarks\n\n${generated}\n`;
  fs.writeFileSync(file, text);
  log("\nwrote BENCHMARKS.md");
}
if (keep) fs.writeFileSync(path.join(tmp, "results.json"), JSON.stringify({ machine: m, scale, rounds, results }, null, 2));

if (!keep) fs.rmSync(tmp, { recursive: true, force: true });
else log(`kept ${tmp}`);
