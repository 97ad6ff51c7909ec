// The main job, end to end: a task tracker kept in an opslog-native store.
// Run with `npm run demo`; it uses ./demo-data (recreated on every run).
import { rm } from "node:fs/promises";
import { readdirSync } from "node:fs";
import { Store } from "./index.mjs";

const dir = process.argv[2] ?? "demo-data";
await rm(dir, { recursive: true, force: true });
const say = (what, value) => console.log(`${what.padEnd(34)} ${value === undefined ? "" : JSON.stringify(value)}`);

const store = new Store();
await store.open(dir, { checkpointThreshold: 1000 });
say(`opened ${dir}/`);

await store.set("task-1", { title: "Write the engine", status: "active", tags: ["rust"] });
await store.set("task-2", { title: "Bind it to Node", status: "active", tags: ["napi"] });
await store.set("task-1", { title: "Write the engine", status: "done", tags: ["rust"] });
say("3 writes; task-1 is now", store.get("task-1"));

await store.batch(() => {
  store.set("task-3", { title: "Write the README", status: "active", tags: [] });
  store.set("task-4", { title: "Benchmark", status: "active", tags: [] });
  store.delete("task-2");
});
say("batch (2 sets + 1 delete), ids", store.entries().map(([id]) => id));

await store.delete("task-4");
say("deleted task-4; has it?", store.has("task-4"));
await store.undo();
say("undo brings it back", store.get("task-4"));

say("ops since the last checkpoint", store.stats().opsCount);
say("history of task-1", store.getHistory("task-1").map((op) => `${op.op}${op.encoding ? ` (${op.encoding} prev)` : ""}`));

await store.compact();
const m = store.getManifest();
say("checkpoint wrote", m.currentSnapshot);
say("ops after the checkpoint", store.stats().opsCount);

await store.set("task-3", { title: "Write the README", status: "done", tags: ["docs"] });
await store.close();
say("closed; files in ops/", readdirSync(`${dir}/ops`).length);

const again = new Store();
await again.open(dir, { readOnly: true });
say("reopened read-only, records", again.count());
say("active tasks", again.filter((t) => t.status === "active").map((t) => t.title));

const streamed = [];
for await (const [id, task] of again.streamSnapshot()) streamed.push(`${id}:${task.status}`);
say("streamed from the snapshot", streamed);
await again.close();
say("done; the data is in", `${dir}/`);
