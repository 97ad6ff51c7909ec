// One agent of the multi-writer scenario, forked by run-one.mjs:
//   node bench/agent.mjs <ours|reference> <dir> <agentId> <n> [options JSON]
// Opens the store as <agentId>, says "ready", waits for "go", does <n> sequential `await set` on
// its own new ids, says {done, ms}, and closes on "close".
import { loadStore, makeRecord } from "./common.mjs";

const [impl, dir, agentId, nArg, optionsArg] = process.argv.slice(2);
const n = Number(nArg);
const Store = await loadStore(impl);
const store = new Store();
await store.open(dir, { ...JSON.parse(optionsArg ?? "{}"), agentId });
const recs = Array.from({ length: n }, (_, i) => makeRecord(i));
const ids = recs.map((_, i) => `${agentId}-${String(i).padStart(7, "0")}`);

process.on("message", async (m) => {
  try {
    if (m === "go") {
      const t0 = performance.now();
      for (let i = 0; i < n; i++) await store.set(ids[i], recs[i]);
      process.send({ done: true, ms: performance.now() - t0 });
    } else if (m === "close") {
      await store.close();
      process.disconnect();
    }
  } catch (err) {
    console.error(`agent ${agentId}:`, err);
    process.send({ error: String(err?.message ?? err) });
    process.exitCode = 1;
  }
});
process.send("ready");
