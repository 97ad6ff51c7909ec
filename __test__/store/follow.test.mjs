// A read-only follower on the same directory: refresh(), tail(), watch(cb, ms), unwatch().
import { test } from "node:test";
import assert from "node:assert/strict";
import { Store, isReference } from "../support/impl.mjs";
import { setup, sleep, waitFor, refDefect, testBackend } from "../support/helpers.mjs";

test("refresh() picks up the writer's new ops", async (t) => {
  const c = await setup(t);
  const w = await c.open();
  await w.set("a", { v: 1 });
  const r = await c.open({ readOnly: true });
  assert.deepEqual(r.entries(), [["a", { v: 1 }]]);
  await w.set("b", { v: 2 });
  await w.set("a", { v: 3 });
  assert.equal(r.has("b"), false, "nothing changes without refresh");
  assert.equal(await r.refresh(), undefined);
  assert.deepEqual(r.entries(), [
    ["a", { v: 3 }],
    ["b", { v: 2 }],
  ]);
  await w.delete("a");
  await r.refresh();
  assert.deepEqual(r.entries(), [["b", { v: 2 }]]);
  assert.equal(r.stats().opsCount, 4);
});

test("tail() applies and returns only the new ops", async (t) => {
  const c = await setup(t);
  const w = await c.open();
  const r = await c.open({ readOnly: true });
  assert.deepEqual(await r.tail(), []);
  await w.set("a", { v: 1 });
  await w.set("b", { v: 1 });
  const got = await r.tail();
  assert.ok(Array.isArray(got));
  assert.deepEqual(
    got.map(({ ts, ...o }) => o),
    [
      { op: "set", id: "a", prev: null, data: { v: 1 } },
      { op: "set", id: "b", prev: null, data: { v: 1 } },
    ],
  );
  assert.deepEqual(got, w.getOps());
  assert.deepEqual(await r.tail(), []);
  await w.delete("a");
  const got2 = await r.tail();
  assert.deepEqual(
    got2.map((o) => `${o.op}:${o.id}`),
    ["delete:a"],
  );
  assert.deepEqual(r.entries(), [["b", { v: 1 }]]);
  assert.equal(r.getOps().length, 3);
  assert.deepEqual(
    r.getHistory("a").map((o) => o.op),
    ["set", "delete"],
  );
});

test("a follower opened while the writer has unflushed-to-snapshot ops sees them", async (t) => {
  const c = await setup(t);
  const w = await c.open();
  for (let i = 0; i < 5; i++) await w.set(`k${i}`, { i });
  const r = await c.open({ readOnly: true });
  assert.equal(r.count(), 5);
  assert.equal(r.stats().opsCount, 5);
  await w.set("k5", { i: 5 });
  assert.equal((await r.tail()).length, 1);
  assert.equal(r.count(), 6);
});

test("a writer's batch is picked up whole", async (t) => {
  const c = await setup(t);
  const w = await c.open();
  const r = await c.open({ readOnly: true });
  await w.batch(() => {
    for (let i = 0; i < 10; i++) w.set(`b${i}`, { i });
  });
  assert.equal((await r.tail()).length, 10);
  assert.equal(r.count(), 10);
});

test("watch(cb, ms) calls back with new ops; unwatch() stops it", async (t) => {
  const c = await setup(t);
  const w = await c.open();
  const r = await c.open({ readOnly: true });
  const batches = [];
  assert.equal(r.watch((ops) => batches.push(ops), 20), undefined);
  await sleep(60);
  assert.deepEqual(batches, [], "no callback without new ops");
  await w.set("a", { v: 1 });
  assert.ok(await waitFor(() => batches.length === 1));
  assert.deepEqual(
    batches[0].map((o) => o.id),
    ["a"],
  );
  assert.deepEqual(r.get("a"), { v: 1 }, "ops are applied before the callback");
  await w.set("b", { v: 1 });
  await w.set("c", { v: 1 });
  assert.ok(await waitFor(() => batches.flat().length === 3));
  assert.deepEqual(
    batches.flat().map((o) => o.id),
    ["a", "b", "c"],
  );
  r.unwatch();
  const n = batches.length;
  await w.set("d", { v: 1 });
  await sleep(100);
  assert.equal(batches.length, n, "no callbacks after unwatch");
  assert.equal(r.has("d"), false);
  r.unwatch(); // idempotent
});

test("watch() again replaces the previous watcher; close() stops watching", async (t) => {
  const c = await setup(t);
  const w = await c.open();
  const r = await c.open({ readOnly: true });
  const first = [];
  const second = [];
  r.watch((ops) => first.push(...ops), 20);
  r.watch((ops) => second.push(...ops), 20);
  await w.set("a", { v: 1 });
  assert.ok(await waitFor(() => second.length === 1));
  await sleep(60);
  assert.equal(first.length, 0);
  await r.close();
  await w.set("b", { v: 1 });
  await sleep(100);
  assert.equal(second.length, 1);
});

test("watch uses a default interval of about a second", async (t) => {
  const c = await setup(t);
  const w = await c.open();
  const r = await c.open({ readOnly: true });
  const got = [];
  const start = Date.now();
  r.watch((ops) => got.push(...ops));
  await w.set("a", { v: 1 });
  assert.ok(await waitFor(() => got.length === 1));
  const elapsed = Date.now() - start;
  assert.ok(elapsed >= 700, `first poll after ${elapsed} ms`);
  r.unwatch();
});

test("a writer's own tail() sees nothing new", async (t) => {
  const c = await setup(t);
  const w = await c.open();
  await w.set("a", { v: 1 });
  assert.deepEqual(await w.tail(), []);
  await w.refresh();
  assert.deepEqual(w.entries(), [["a", { v: 1 }]]);
});

// SPEC 7.5 (planned for a later issue than the rest of the suite; if it regresses on ours before
// then, mark it { todo: "..." } rather than deleting it).
test(
  "a follower keeps following across the writer's checkpoints (SPEC 7.5)",
  { skip: refDefect(5) },
  async (t) => {
    const c = await setup(t);
    const w = await c.open({ checkpointThreshold: 3 });
    const r = await c.open({ readOnly: true });
    await w.set("a", { v: 1 });
    await r.refresh();
    assert.deepEqual(r.entries(), [["a", { v: 1 }]]);

    await w.compact(); // explicit checkpoint
    await w.set("b", { v: 2 });
    await r.refresh();
    assert.deepEqual(r.entries(), [
      ["a", { v: 1 }],
      ["b", { v: 2 }],
    ]);

    await w.set("c", { v: 3 });
    await w.set("d", { v: 4 }); // automatic checkpoint (threshold 3)
    await w.set("a", { v: 10 });
    let newOps = await r.tail();
    if (testBackend === "js") {
      // Through a JavaScript (possibly remote) backend a tail that finds new ops in the file it
      // follows hands those out without asking for the manifest (README, remote backends): the
      // checkpoint after them is followed by the next tail.
      assert.deepEqual(newOps.map((o) => o.id), ["c", "d"]);
      assert.deepEqual(r.entries(), [["a", { v: 1 }], ["b", { v: 2 }], ["c", { v: 3 }], ["d", { v: 4 }]]);
      newOps = await r.tail();
    }
    assert.ok(newOps.some((o) => o.id === "a" && o.data.v === 10), "tail returns the op written after the checkpoint");
    assert.deepEqual(r.entries(), w.entries());

    const seen = [];
    r.watch((ops) => seen.push(...ops), 20);
    await w.compact();
    await w.delete("b");
    assert.ok(await waitFor(() => !r.has("b")), "watch follows across a checkpoint");
    assert.deepEqual(r.entries(), w.entries());
    assert.ok(seen.some((o) => o.op === "delete" && o.id === "b"));
    r.unwatch();

    await w.archive((v, id) => id === "c", "P");
    await w.set("e", { v: 5 });
    await r.refresh();
    assert.deepEqual(r.entries(), w.entries());
    assert.deepEqual(r.listArchiveSegments(), ["archive/archive-P.json"]);
  },
);

