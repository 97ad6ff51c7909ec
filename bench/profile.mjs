// A quick CPU profile of one scenario's timed part, summarised by self time:
//
//   node bench/profile.mjs <ours|reference> <scenario> [--scale S] [--top N] [--keep FILE]
//   node bench/profile.mjs --summarise FILE.cpuprofile [--top N]
//
// Runs bench/run-one.mjs with --profile (the fixture is created first, outside the profile) and
// prints the functions with the most self time: JavaScript functions with their file and line,
// napi calls into the addon as the addon's method name (no file), and V8's own entries such as
// (garbage collector), (program) and (idle). Time spent on libuv worker threads (file I/O, our
// checkpoints and loads) is not in the main thread's profile; it shows up as (idle) there.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { spawnSync } from "node:child_process";
import { BENCH_DIR } from "./common.mjs";
import { byKey } from "./scenarios.mjs";

const argv = process.argv.slice(2);
const arg = (name, dflt) => {
  const i = argv.indexOf(name);
  return i === -1 ? dflt : argv[i + 1];
};
const top = Number(arg("--top", 20));

export function summarise(profile, limit = 20) {
  const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n);
  const where = (f) =>
    f.url ? `${f.url.replace(/^file:\/\//, "").replace(/^.*\/(node_modules|work\/main|tmp\/[^/]+)\//, "")}:${f.lineNumber + 1}` : "";
  const self = new Map();
  const { samples, timeDeltas } = profile;
  let total = 0;
  for (let i = 0; i < samples.length; i++) {
    // timeDeltas[i] is the time before sample i; attribute the next delta to this sample.
    const dt = (timeDeltas[i + 1] ?? 0) / 1000;
    const node = nodes.get(samples[i]);
    const f = node.callFrame;
    let key = `${f.functionName || "(anonymous)"}${f.url ? ` ${where(f)}` : ""}`;
    if (!f.url && !f.functionName.startsWith("(")) {
      // A native function (napi or Node's C++): name its JavaScript caller.
      let p = parent.get(node.id);
      while (p && !p.callFrame.url) p = parent.get(p.id);
      if (p) key += ` [native, from ${p.callFrame.functionName || "(anonymous)"} ${where(p.callFrame)}]`;
    }
    self.set(key, (self.get(key) ?? 0) + dt);
    total += dt;
  }
  const rows = [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, limit);
  const busy = total - (self.get("(idle)") ?? 0);
  const lines = [`total ${total.toFixed(0)} ms sampled, ${busy.toFixed(0)} ms not idle`];
  for (const [key, ms] of rows) {
    lines.push(`${ms.toFixed(1).padStart(9)} ms ${((100 * ms) / total).toFixed(1).padStart(5)}%  ${key}`);
  }
  return lines.join("\n");
}

if (argv[0] === "--summarise") {
  console.log(summarise(JSON.parse(fs.readFileSync(argv[1], "utf8")), top));
} else {
  const [impl, scenario] = argv;
  const s = byKey.get(scenario);
  if (!impl || !s) {
    console.error("usage: node bench/profile.mjs <ours|reference> <scenario> [--scale S] [--top N] [--keep FILE]");
    process.exit(2);
  }
  if (scenario === "multi") throw new Error("multi runs in the agents: profile them with node --cpu-prof bench/agent.mjs");
  const scale = arg("--scale", "1");
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "opslog-profile-"));
  const node = (args) => {
    const r = spawnSync(process.execPath, ["--expose-gc", path.join(BENCH_DIR, "run-one.mjs"), ...args], {
      stdio: ["ignore", "pipe", "inherit"],
      encoding: "utf8",
    });
    if (r.status !== 0) throw new Error(`run-one failed: ${args.join(" ")}\n${r.stdout}`);
    return r.stdout;
  };
  try {
    const extra = [];
    if (s.fixture) {
      node([impl, `fixture:${s.fixture}`, scale, "--dir", path.join(tmp, "fixture")]);
      extra.push("--fixture", path.join(tmp, "fixture"));
    }
    const file = arg("--keep", path.join(tmp, "profile.cpuprofile"));
    const out = node([impl, scenario, scale, "--dir", path.join(tmp, "work"), "--profile", file, ...extra]);
    console.log(out.split("\n").find((l) => l.startsWith("RESULT ")));
    console.log(summarise(JSON.parse(fs.readFileSync(file, "utf8")), top));
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}
