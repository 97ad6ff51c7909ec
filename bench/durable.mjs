// The `durable` option (ours only; the reference has none): what an fsync per acknowledged write
// costs, and how much of it concurrent writers win back by sharing fsyncs (group commit).
//
//   node bench/durable.mjs [--n 5000] [--rounds 3]
//
// Each figure is the median of the rounds: ops/s of `n` sets on new ids in `immediate` mode,
// with W writers each awaiting its own sets (W = 1 is sequential `await set`), with and without
// `durable: true`. Default options otherwise (a checkpoint every 100 ops). Store under /tmp.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { loadStore, makeRecord, recordId } from "./common.mjs";

const arg = (name, dflt) => {
  const i = process.argv.indexOf(name);
  return i === -1 ? dflt : Number(process.argv[i + 1]);
};
const N = arg("--n", 5000);
const ROUNDS = arg("--rounds", 3);
const Store = await loadStore("ours");

async function run(durable, writers) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "opslog-durable-"));
  const store = new Store();
  await store.open(dir, { durable });
  const per = Math.ceil(N / writers);
  const start = performance.now();
  await Promise.all(
    Array.from({ length: writers }, async (_, w) => {
      for (let i = w * per; i < Math.min(N, (w + 1) * per); i++) await store.set(recordId(i), makeRecord(i));
    }),
  );
  const ms = performance.now() - start;
  await store.close();
  fs.rmSync(dir, { recursive: true, force: true });
  return (N / ms) * 1000;
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const rows = [];
for (const writers of [1, 8, 64]) {
  const plain = [];
  const durable = [];
  for (let r = 0; r < ROUNDS; r++) {
    plain.push(await run(false, writers));
    durable.push(await run(true, writers));
  }
  rows.push({ writers, plain: median(plain), durable: median(durable) });
}
const fmt = (x) => Math.round(x).toLocaleString("en-US");
console.log(`${N.toLocaleString("en-US")} sets on new ids, immediate mode, median of ${ROUNDS} rounds`);
console.log("| writers in flight | ops/s | ops/s with `durable: true` |");
console.log("| ---: | ---: | ---: |");
for (const r of rows) console.log(`| ${r.writers} | ${fmt(r.plain)} | ${fmt(r.durable)} |`);
