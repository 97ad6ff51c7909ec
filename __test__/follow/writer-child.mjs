// The writer process of processes.test.mjs: opens a store (single writer) with a small
// checkpointThreshold and writes continuously, so that checkpoints (and, on ours, the deletion of
// superseded generations, SPEC 7.8) happen while a read-only follower in another process reads.
//
// Usage: node writer-child.mjs '<json config>'
//   config: { dir, writes, keys, threshold, paceEvery, paceMs, reopenEvery, compactEvery, seed,
//             batchRatio (share of calls that are batches), batchMax (sets per batch), padMax }
//
// Every value it writes carries a counter `n` that only grows (one global sequence), so a follower
// can check that no key's value ever goes backwards. Keys `k<i>` are only ever set (never
// deleted); keys `t<i>` are set and deleted (their values grow too, across re-creations).
// It also writes batches, explicit compactions and (with reopenEvery) close + reopen.
//
// stdout: "ready\n" once the store is open, then at the end one JSON line
//   { entries, view, log, writes, n, checkpoints, reopens }
// with `entries` the final state as stored (read back read-only after close), `view` the writer's
// own entries() before close, and `log` every acknowledged write in order, one array per call
// (a batch is one group): [[key, n | null (delete)], ...].
import { Store } from "../support/impl.mjs";
import { withTestBackend } from "../support/helpers.mjs";
import { mulberry32 } from "../support/random.mjs";

const cfg = JSON.parse(process.argv[2]);
const {
  dir,
  writes = 2000,
  keys = 40,
  threshold = 100,
  paceEvery = 10,
  paceMs = 1,
  reopenEvery = 0,
  compactEvery = 0,
  seed = 1,
  batchRatio = 0.1,
  batchMax = 5,
  padMax = 50,
} = cfg;

const rnd = mulberry32(seed);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function openStore() {
  const s = new Store();
  await s.open(dir, withTestBackend({ checkpointThreshold: threshold }));
  return s;
}

let s = await openStore();
process.stdout.write("ready\n");

let n = 0;
let done = 0;
let checkpoints = 0;
let reopens = 0;
const log = [];
const value = (key) => ({ key, n: ++n, pad: "x".repeat(n % padMax), nested: { n, even: n % 2 === 0 } });

while (done < writes) {
  const r = rnd();
  if (r < 0.8 - batchRatio) {
    const key = `k${Math.floor(rnd() * keys)}`;
    const v = value(key);
    await s.set(key, v);
    log.push([[key, v.n]]);
    done++;
  } else if (r < 0.8) {
    // A batch of a few sets (one append).
    const m = 2 + Math.floor(rnd() * (batchMax - 1));
    const items = [];
    for (let i = 0; i < m; i++) {
      const key = `k${Math.floor(rnd() * keys)}`;
      items.push([key, value(key)]);
    }
    await s.batch(() => {
      for (const [k, v] of items) s.set(k, v);
    });
    log.push(items.map(([k, v]) => [k, v.n]));
    done += m;
  } else {
    // Temporary keys: created and deleted.
    const key = `t${Math.floor(rnd() * 5)}`;
    if (s.has(key) && rnd() < 0.6) {
      await s.delete(key);
      log.push([[key, null]]);
    } else {
      const v = value(key);
      await s.set(key, v);
      log.push([[key, v.n]]);
    }
    done++;
  }
  if (compactEvery > 0 && done % compactEvery === 0) {
    await s.compact();
    checkpoints++;
  }
  if (reopenEvery > 0 && done % reopenEvery === 0 && done < writes) {
    await s.close();
    s = await openStore();
    reopens++;
  }
  if (paceEvery > 0 && done % paceEvery === 0) await sleep(paceMs);
}
const view = s.entries();
await s.close();
// The final state, as stored.
const r = new Store();
await r.open(dir, withTestBackend({ readOnly: true }));
const entries = r.entries();
await r.close();
process.stdout.write(JSON.stringify({ entries, view, log, writes: done, n, checkpoints, reopens }) + "\n");
