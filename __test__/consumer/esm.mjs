// ESM consumer: every export by name, a store round trip.
import * as m from "PACKAGE";
import { Store } from "PACKAGE";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

const names = ["Store", "FsBackend", "LamportClock", "createDelta", "applyDelta", "isDeltaSmaller", "streamSnapshotFile", "acquireLock", "releaseLock", "validateOp", "validateManifest", "validateSnapshot", "validateArchiveSegment"];
const missing = names.filter((n) => typeof m[n] !== "function");
if (missing.length) throw new Error(`missing exports: ${missing}`);
const dir = await mkdtemp(join(tmpdir(), "opslog-esm-"));
const s = new Store();
await s.open(dir);
await s.set("a", { v: 1 });
await s.close();
const r = new Store();
await r.open(dir, { readOnly: true });
console.log(`esm ok ${JSON.stringify(r.get("a"))}`);
await r.close();
