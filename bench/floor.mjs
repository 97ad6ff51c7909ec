// Where the raw `group` path's time goes, against what the design allows (issue 16):
//
//   node bench/floor.mjs [--rounds R] [--n N]
//
// Per round, each in a fresh process, alternating the order from round to round:
//   reference   the reference's raw-path `group` scenario (bench/run-one.mjs raw-set-group)
//   ours        ours, the same scenario
//   js floor    what any implementation whose records cross as JSON text pays per set in
//               JavaScript, with no store at all: an `await` of a resolved promise,
//               JSON.stringify of the id and of the record, Map#set, a push onto a list joined
//               once per 50 sets (groupCommitSize)
//   engine      our engine alone: NativeStore#setManyNow over texts built beforehand, 50 sets a
//               call, as the facade hands them over in `group` mode
// and prints the medians in µs per set, and the ratio (reference / ours) that the JS floor
// alone would give: no implementation of this design can pass it.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { spawnSync } from "node:child_process";
import { createRequire } from "node:module";
import { BENCH_DIR, ROOT, makeRecord, recordId } from "./common.mjs";

const argv = process.argv.slice(2);
const arg = (name, dflt) => {
  const i = argv.indexOf(name);
  return i === -1 ? dflt : argv[i + 1];
};
const GROUP = 50;

/** The texts the facade hands over in `group` mode: `id, record, ms` lines, GROUP sets each. */
function groupTexts(n) {
  const ms = Date.now();
  const texts = [];
  for (let g = 0; g * GROUP < n; g++) {
    const items = [];
    for (let i = g * GROUP; i < Math.min(n, (g + 1) * GROUP); i++) {
      items.push(JSON.stringify(recordId(i)), JSON.stringify(makeRecord(i)), i === g * GROUP ? ms : "");
    }
    texts.push(items.join("\n"));
  }
  return texts;
}

const child = {
  async "js-floor"(n) {
    const recs = Array.from({ length: n }, (_, i) => makeRecord(i));
    const ids = recs.map((_, i) => recordId(i));
    const resolved = Promise.resolve();
    const map = new Map();
    let list = [];
    let sink = 0;
    const set = (id, value) => {
      const idText = JSON.stringify(id);
      const data = JSON.stringify(value);
      if (data.charCodeAt(0) !== 123) throw new Error("not an object");
      list.push(idText, data, "");
      map.set(id, value);
      if (list.length >= 3 * GROUP) {
        sink += list.join("\n").length;
        list = [];
      }
      return resolved;
    };
    const t0 = performance.now();
    for (let i = 0; i < n; i++) await set(ids[i], recs[i]);
    return { usPerSet: ((performance.now() - t0) * 1000) / n, sink };
  },
  async engine(n) {
    const require = createRequire(path.join(ROOT, "package.json"));
    const { NativeStore } = require(path.join(ROOT, "lib", "native.js"));
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "opslog-floor-"));
    try {
      const store = new NativeStore();
      await store.open(dir, {
        checkpointThreshold: 1e9, checkpointOnClose: false, version: 1, readOnly: false,
        skipLoad: false, writeMode: "group", groupCommitSize: GROUP, durable: false,
      });
      const texts = groupTexts(n);
      const t0 = performance.now();
      for (const text of texts) store.setManyNow(text, false);
      return { usPerSet: ((performance.now() - t0) * 1000) / n };
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  },
};

if (argv[0] === "--child") {
  const r = await child[argv[1]](Number(argv[2]));
  process.stdout.write(`RESULT ${JSON.stringify(r)}\n`);
} else {
  const rounds = Number(arg("--rounds", 3));
  const n = Number(arg("--n", 50_000));
  const run = (args) => {
    const r = spawnSync(process.execPath, ["--expose-gc", ...args], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] });
    const line = r.stdout.split("\n").find((l) => l.startsWith("RESULT "));
    if (r.status !== 0 || !line) throw new Error(`failed: ${args.join(" ")}\n${r.stdout}`);
    return JSON.parse(line.slice("RESULT ".length));
  };
  const measure = {
    reference: () => 1e6 / run([path.join(BENCH_DIR, "run-one.mjs"), "reference", "raw-set-group", String(n / 50_000)]).figures.opsPerSec,
    ours: () => 1e6 / run([path.join(BENCH_DIR, "run-one.mjs"), "ours", "raw-set-group", String(n / 50_000)]).figures.opsPerSec,
    "js floor": () => run([path.join(BENCH_DIR, "floor.mjs"), "--child", "js-floor", String(n)]).usPerSet,
    engine: () => run([path.join(BENCH_DIR, "floor.mjs"), "--child", "engine", String(n)]).usPerSet,
  };
  const names = Object.keys(measure);
  const us = Object.fromEntries(names.map((k) => [k, []]));
  for (let round = 0; round < rounds; round++) {
    for (const k of round % 2 ? [...names].reverse() : names) us[k].push(measure[k]());
  }
  const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
  const m = Object.fromEntries(names.map((k) => [k, median(us[k])]));
  console.log(`raw-path group, ${n} sets, median of ${rounds} round(s), µs per set:`);
  for (const k of names) console.log(`  ${k.padEnd(10)} ${m[k].toFixed(2).padStart(6)}   (rounds: ${us[k].map((x) => x.toFixed(2)).join(", ")})`);
  console.log(`  ours / reference: ${(m.reference / m.ours).toFixed(2)}x; the JS floor alone: ${(m.reference / m["js floor"]).toFixed(2)}x;` +
    ` ours beyond the floor: ${(m.ours - m["js floor"]).toFixed(2)} µs, of which the engine call ${m.engine.toFixed(2)} µs`);
}
