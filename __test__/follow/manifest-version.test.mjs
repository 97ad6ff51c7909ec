// Following through a backend whose manifest version is the manifest's modification time, as the
// reference's FsBackend returns it, on a filesystem whose clock ticks slower than the writer
// checkpoints: two manifests written in one tick share a version. A follower must not take the
// second for the first (it would follow a superseded op file for good).
import { test } from "node:test";
import assert from "node:assert/strict";
import { stat } from "node:fs/promises";
import { join } from "node:path";

import { JsFsBackend } from "../backends/js-fs-backend.mjs";
import { refDefect, setup } from "../support/helpers.mjs";

/** The tick of a FAT-like filesystem clock: every mtime in it is stamped with its start. */
const TICK_MS = 2000;

/**
 * Manifest versions from a clock that ticks every TICK_MS, the first tick starting at the first
 * version asked for (so the writes a test makes right after fall into one tick however the wall
 * clock is aligned). Shared by the writer's and the follower's backend, as a filesystem is.
 */
function coarseClock() {
  let start = null;
  return class CoarseMtimeBackend extends JsFsBackend {
    async getManifestVersion() {
      let mtime;
      try {
        mtime = (await stat(join(this.dir, "manifest.json"))).mtimeMs;
      } catch {
        return null;
      }
      start ??= mtime;
      return String(start + Math.floor((mtime - start) / TICK_MS) * TICK_MS);
    }
  };
}

test(
  "a read-only follower follows two checkpoints whose manifests share a modification time",
  { skip: refDefect(5) },
  async (t) => {
    const Backend = coarseClock();
    const c = await setup(t);
    const w = await c.open({ backend: new Backend() });
    const r = await c.open({ readOnly: true, backend: new Backend() });
    const probe = new Backend();
    await probe.initialize(c.dir, { readOnly: true });
    // Through a remote backend a tail hands out the followed file's new ops and looks at the
    // manifest only once that file has nothing new: tail until nothing comes.
    const settle = async () => {
      while ((await r.tail()).length > 0);
    };

    await w.set("a", { v: 1 });
    await w.compact();
    const first = await probe.getManifestVersion();
    await settle();
    assert.deepEqual(r.entries(), [["a", { v: 1 }]]);

    // The writer checkpoints again within the same tick of the filesystem's clock.
    await w.set("b", { v: 2 });
    await w.compact();
    await w.set("c", { v: 3 });
    const second = await probe.getManifestVersion();

    await settle();
    assert.deepEqual(r.entries(), w.entries(), `the follower holds the writer's state (versions ${first}, ${second})`);
    await w.delete("a");
    await settle();
    assert.deepEqual(r.entries(), [["b", { v: 2 }], ["c", { v: 3 }]]);
    // What the test is about happened (it does unless the two checkpoints took over TICK_MS).
    t.diagnostic(`manifest versions ${first === second ? "shared" : "differed"}: ${first}, ${second}`);
  },
);

test(
  "a multi-writer agent's refresh follows another agent's two compactions whose manifests share a modification time",
  async (t) => {
    const Backend = coarseClock();
    const c = await setup(t);
    const a = await c.open({ agentId: "a", backend: new Backend() });
    const b = await c.open({ agentId: "b", backend: new Backend() });
    const probe = new Backend();
    await probe.initialize(c.dir, { readOnly: true });

    await a.set("x", { v: 1 });
    await a.compact();
    const first = await probe.getManifestVersion();
    await b.refresh();
    assert.deepEqual(b.entries(), [["x", { v: 1 }]]);

    await a.set("y", { v: 2 });
    await a.compact();
    await a.set("z", { v: 3 });
    const second = await probe.getManifestVersion();
    await b.refresh();
    assert.deepEqual(b.entries(), a.entries(), `agent b holds a's state (versions ${first}, ${second})`);
    await b.set("x", { v: 4 });
    await a.refresh();
    assert.deepEqual(a.entries(), [["x", { v: 4 }], ["y", { v: 2 }], ["z", { v: 3 }]]);
    t.diagnostic(`manifest versions ${first === second ? "shared" : "differed"}: ${first}, ${second}`);
  },
);
