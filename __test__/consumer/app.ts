// A program written against @backloghq/opslog 0.8.1's typings: it must compile unchanged (tsc
// --strict) against opslog-native installed under that name, and run.
import {
  Store,
  FsBackend,
  LamportClock,
  createDelta,
  applyDelta,
  isDeltaSmaller,
  streamSnapshotFile,
  acquireLock,
  releaseLock,
  validateOp,
  validateManifest,
  validateSnapshot,
  validateArchiveSegment,
} from "@backloghq/opslog";
import type {
  Operation,
  Snapshot,
  Manifest,
  ManifestInfo,
  ManifestStats,
  ArchiveSegment,
  StoreOptions,
  StoreStats,
  StorageBackend,
  LockHandle,
  DeltaPatch,
} from "@backloghq/opslog";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

interface Task {
  title: string;
  status: "active" | "done";
  tags: string[];
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "opslog-consumer-"));
  const backend: StorageBackend = new FsBackend();
  const options: StoreOptions = { checkpointThreshold: 50, backend, writeMode: "immediate" };
  const store = new Store<Task>();
  await store.open(dir, options);
  await store.set("t1", { title: "one", status: "active", tags: [] });
  await store.batch(() => {
    store.set("t2", { title: "two", status: "done", tags: ["x"] });
  });
  const t1: Task | undefined = store.get("t1");
  const active: Task[] = store.filter((t, id) => t.status === "active" && id.length > 0);
  const n: number = store.count((t) => t.tags.length === 0);
  const entries: [string, Task][] = store.entries();
  const history: Operation<Task>[] = store.getHistory("t1");
  const ops: Operation<Task>[] = store.getOps();
  const stats: StoreStats = store.stats();
  const info: ManifestInfo | null = store.getManifest();
  await store.set("t3", { title: "three", status: "active", tags: [] });
  const undone: boolean = await store.undo();
  for await (const [id, task] of store.streamSnapshot()) void [id, task.title];
  for await (const op of store.getWalOps()) void op.ts;
  await store.compact();
  const archived: number = await store.archive((t) => t.status === "done", "2026-Q1");
  const segment: Map<string, Task> = await store.loadArchive("2026-Q1");
  const segments: string[] = store.listArchiveSegments();
  store.watch((newOps: Operation<Task>[]) => void newOps.length, 50);
  store.unwatch();
  await store.refresh();
  const tailed: Operation<Task>[] = await store.tail();
  await store.flush();
  await store.sync();
  await store.close();

  // The snapshot current after close (this store deletes superseded ones, SPEC 7.8).
  const last: ManifestInfo | null = store.getManifest();
  const gen: AsyncGenerator<[string, Task], { version: number }> = streamSnapshotFile<Task>(dir, last!.currentSnapshot);
  let r = await gen.next();
  while (!r.done) r = await gen.next();
  const version: number = r.value.version;

  const clock = new LamportClock(3);
  const ticks: number[] = [clock.tick(), clock.merge(10), clock.current];
  const patch: DeltaPatch | null = createDelta({ a: 1, b: 2 }, { a: 1 });
  const restored: Record<string, unknown> = applyDelta({ a: 1 }, patch ?? {});
  const smaller: boolean = isDeltaSmaller(patch, { a: 1, b: 2 });
  const fh = await acquireLock(dir);
  await releaseLock(dir, fh);

  const op: Operation = validateOp({ ts: "2026-01-01T00:00:00.000Z", op: "set", id: "x", prev: null, data: {} });
  const manifest: Manifest = validateManifest(await backend.readManifest());
  const mstats: ManifestStats = manifest.stats;
  const snap: Snapshot = validateSnapshot({ version: 1, timestamp: "t", records: {} });
  const seg: ArchiveSegment = validateArchiveSegment({ version: 1, period: "p", timestamp: "t", records: {} });
  const lock: LockHandle = await backend.acquireLock();
  await backend.releaseLock(lock);
  const blob: Buffer = await backend.readBlobRange("manifest.json", 0, 1);

  console.log(
    JSON.stringify({
      t1: t1?.title,
      active: active.length,
      n,
      entries: entries.length,
      history: history.length,
      ops: ops.length,
      stats,
      undone,
      archived,
      segment: segment.size,
      segments,
      tailed: tailed.length,
      version,
      ticks,
      restored,
      smaller,
      op: op.id,
      opsCount: mstats.opsCount,
      snap: snap.version,
      seg: seg.period,
      blob: blob.toString(),
    }),
  );
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
