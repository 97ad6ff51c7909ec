// One agent of processes.test.mjs: a child process that opens a store with its own
// agentId and does a seeded random mix of writes (its own keys and keys shared by every agent),
// deletes, batches, refreshes, compactions (explicit, via a small checkpointThreshold and on
// close) and close+reopen, while the other agents do the same in their own processes.
//
// Usage: node agent-child.mjs '<json config>'
//   config: { dir, agent, seed, ops, ownKeys, sharedKeys, threshold }
//   or, with mode "waves": { mode, dir, agent, seed, waves, start, slot } (see below)
//
// It checks as it goes that its own keys always read back as it last wrote them (nobody else
// writes them), and prints one JSON line on stdout at the end: every write whose promise resolved.
//   { agent, own: [[key, value | null]], shared: [[key, value | null]], counts }
// `own` holds the last acknowledged value per own key (null: deleted), `shared` every acknowledged
// write of a shared key in order (null: a delete).
import { isDeepStrictEqual } from "node:util";
import { Store } from "../support/impl.mjs";
import { withTestBackend } from "../support/helpers.mjs";
import { mulberry32 } from "../support/random.mjs";

const cfg = JSON.parse(process.argv[2]);
const { dir, agent } = cfg;

const rnd = mulberry32(cfg.seed);
const pick = (arr) => arr[Math.floor(rnd() * arr.length)];
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const ownKeys = Array.from({ length: cfg.ownKeys }, (_, i) => `own-${agent}-${i}`);
const sharedKeys = Array.from({ length: cfg.sharedKeys }, (_, i) => `shared-${i}`);

/** Last acknowledged value of each own key (null: deleted). */
const own = new Map();
/** Every acknowledged write of a shared key, in acknowledgement order. */
const shared = [];
const counts = { set: 0, del: 0, sharedSet: 0, sharedDel: 0, batch: 0, burst: 0, refresh: 0, tail: 0, compact: 0, reopen: 0 };

let seq = 0;
/** A value unique to this agent and write; updates of a key change one field (delta-encoded ops). */
function value(key) {
  seq++;
  return { agent, seq, key, tags: ["a", "b", "c"], body: { n: seq % 7, text: "x".repeat(seq % 40) } };
}

async function openStore() {
  const s = new Store();
  await s.open(dir, withTestBackend({ agentId: agent, checkpointThreshold: cfg.threshold }));
  return s;
}

let step = 0;
let lastAction = "open";
function checkOwn(s, where) {
  for (const [k, v] of own) {
    const got = s.get(k);
    if (!isDeepStrictEqual(got ?? null, v)) {
      throw new Error(
        `agent ${agent} step ${step} (${where}, after ${lastAction}): own key ${k} reads ${JSON.stringify(got)}, ` +
          `last acknowledged ${JSON.stringify(v)}`,
      );
    }
  }
}

let s = await openStore();
checkOwn(s, "open");

if (cfg.mode === "waves") {
  // Every agent compacts at the same instants (cfg.start + w * cfg.slot), each time after the
  // parent may have left a stale .compact-lock: all of them try to take it over at once.
  for (let w = 0; w < cfg.waves; w++) {
    step = w;
    lastAction = `wave ${w}`;
    const k1 = `own-${agent}-w${w}`;
    await s.set(k1, value(k1));
    own.set(k1, s.get(k1));
    const at = cfg.start + w * cfg.slot;
    if (at - Date.now() > 5) await sleep(at - Date.now() - 5);
    while (Date.now() < at) {
      // spin: start within the same millisecond as the others
    }
    await s.compact();
    const k2 = `own-${agent}-c${w}`;
    await s.set(k2, value(k2));
    own.set(k2, s.get(k2));
    checkOwn(s, "after compact");
  }
  await s.close();
  process.stdout.write(JSON.stringify({ agent, own: [...own], shared, counts }) + "\n");
  process.exit(0);
}

for (step = 0; step < cfg.ops; step++) {
  const r = rnd();
  if (r < 0.34) {
    const k = pick(ownKeys);
    const v = value(k);
    await s.set(k, v);
    own.set(k, v);
    counts.set++;
    lastAction = `set ${k}`;
  } else if (r < 0.52) {
    const k = pick(sharedKeys);
    const v = value(k);
    await s.set(k, v);
    shared.push([k, v]);
    counts.sharedSet++;
    lastAction = `set ${k}`;
  } else if (r < 0.6) {
    const present = ownKeys.filter((k) => own.get(k));
    if (present.length > 0) {
      const k = pick(present);
      await s.delete(k); // must not throw: this agent's view holds its own keys
      own.set(k, null);
      counts.del++;
      lastAction = `delete ${k}`;
    }
  } else if (r < 0.64) {
    const k = pick(sharedKeys);
    if (s.has(k)) {
      try {
        await s.delete(k);
        shared.push([k, null]);
        counts.sharedDel++;
        lastAction = `delete ${k}`;
      } catch (e) {
        if (!/not found/.test(e.message)) throw e;
      }
    }
  } else if (r < 0.69) {
    // A batch: several own keys and one shared key, one append.
    const entries = [pick(ownKeys), pick(ownKeys), pick(ownKeys)].map((k) => [k, value(k)]);
    const sk = pick(sharedKeys);
    const sv = value(sk);
    await s.batch(() => {
      for (const [k, v] of entries) s.set(k, v);
      s.set(sk, sv);
    });
    for (const [k, v] of entries) own.set(k, v);
    shared.push([sk, sv]);
    counts.batch++;
    lastAction = "batch";
  } else if (r < 0.74) {
    // A burst of writes issued without waiting: acknowledged one by one, in call order.
    const n = 2 + Math.floor(rnd() * 4);
    const pending = [];
    for (let i = 0; i < n; i++) {
      const k = rnd() < 0.75 ? pick(ownKeys) : pick(sharedKeys);
      const v = value(k);
      pending.push(
        s.set(k, v).then(() => {
          if (k.startsWith("own-")) own.set(k, v);
          else shared.push([k, v]);
        }),
      );
    }
    await Promise.all(pending);
    counts.burst++;
    lastAction = "burst";
  } else if (r < 0.84) {
    await s.refresh();
    counts.refresh++;
    lastAction = "refresh";
  } else if (r < 0.88) {
    await s.tail();
    counts.tail++;
    lastAction = "tail";
  } else if (r < 0.95) {
    await s.compact();
    counts.compact++;
    lastAction = "compact";
  } else if (r < 0.975) {
    await s.close();
    if (rnd() < 0.5) await sleep(Math.floor(rnd() * 5));
    s = await openStore();
    counts.reopen++;
    lastAction = "close+reopen";
  } else {
    await sleep(Math.floor(rnd() * 4));
    lastAction = "sleep";
  }
  checkOwn(s, "step");
}
await s.close();

process.stdout.write(JSON.stringify({ agent, own: [...own], shared, counts }) + "\n");
