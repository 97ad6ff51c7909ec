// Public types of opslog-native: the names and signatures of @backloghq/opslog 0.8.1.

/** One logged mutation: a line of an op file. */
export interface Operation<T = Record<string, unknown>> {
  /** UTC ISO-8601 timestamp with milliseconds. */
  ts: string;
  op: "set" | "delete";
  id: string;
  /** The new record (set operations only). */
  data?: T;
  /** The previous record: null for a create, the whole record, or a delta patch when `encoding` is "delta". */
  prev: T | null;
  encoding?: "full" | "delta";
  /** Writer id (multi-writer mode). */
  agent?: string;
  /** Lamport clock value (multi-writer mode). */
  clock?: number;
}

export interface Snapshot<T = Record<string, unknown>> {
  version: number;
  timestamp: string;
  records: Record<string, T>;
}

export interface ManifestStats {
  activeRecords: number;
  archivedRecords: number;
  opsCount: number;
  created: string;
  lastCheckpoint: string;
}

export interface Manifest {
  version: number;
  currentSnapshot: string;
  activeOps: string;
  /** Per-agent op files (multi-writer mode), by agent id. */
  activeAgentOps?: Record<string, string>;
  archiveSegments: string[];
  stats: ManifestStats;
}

export interface ArchiveSegment<T = Record<string, unknown>> {
  version: number;
  period: string;
  timestamp: string;
  records: Record<string, T>;
}

/** What `Store.getManifest()` shows of the current manifest. */
export interface ManifestInfo {
  readonly currentSnapshot: string;
  readonly activeOps: string;
  readonly archiveSegments: readonly string[];
  readonly stats: Readonly<ManifestStats>;
}

/** A reverse patch: applied to the new record it gives back the old one. */
export interface DeltaPatch {
  /** Old values of the keys that changed or were removed. */
  $set?: Record<string, unknown>;
  /** Keys the new record added. */
  $unset?: string[];
}

export interface StoreOptions {
  /** Checkpoint once this many ops are logged since the last one (default 100). */
  checkpointThreshold?: number;
  /** Checkpoint on close when there are ops (default true; false with skipLoad). */
  checkpointOnClose?: boolean;
  /** Schema version of the records (default 1). */
  version?: number;
  /** Upgrades a record stored under an older version; applied to the snapshot's records on open. */
  migrate?: (record: unknown, fromVersion: number) => unknown;
  /** Open without the lock; every mutation throws. */
  readOnly?: boolean;
  /** Open for appending only: nothing is loaded, reads see an empty store. */
  skipLoad?: boolean;
  /** Storage backend (default: the filesystem). */
  backend?: StorageBackend;
  /** Multi-writer mode: this writer's id. */
  agentId?: string;
  /** "immediate" (default) writes each op before its promise resolves; "group" and "async" buffer. */
  writeMode?: "immediate" | "group" | "async";
  /** Buffered ops that trigger a write in group/async mode (default 50). */
  groupCommitSize?: number;
  /** Longest a buffered op waits before it is written, in ms (default 100). */
  groupCommitMs?: number;
  /**
   * opslog-native: acknowledge writes only once they are on stable storage (default false).
   * In immediate mode every write's promise resolves after an fsync that concurrent writes share;
   * in group and async modes `flush()` and `close()` resolve after it. Filesystem only.
   */
  durable?: boolean;
}

export interface StoreStats {
  activeRecords: number;
  opsCount: number;
  archiveSegments: number;
}

/** Opaque handle returned by a backend's lock methods. */
export interface LockHandle {}

/** Where a store keeps its files. */
export interface StorageBackend {
  initialize(dir: string, opts: { readOnly: boolean }): Promise<void>;
  shutdown(): Promise<void>;
  readManifest(): Promise<Manifest | null>;
  writeManifest(manifest: Manifest): Promise<void>;
  writeSnapshot(records: Map<string, unknown>, version: number): Promise<string>;
  loadSnapshot(relativePath: string): Promise<{ records: Map<string, unknown>; version: number }>;
  appendOps(relativePath: string, ops: Operation[]): Promise<void>;
  readOps(relativePath: string): Promise<Operation[]>;
  truncateLastOp(relativePath: string): Promise<boolean>;
  createOpsFile(): Promise<string>;
  writeArchiveSegment(period: string, records: Map<string, unknown>): Promise<string>;
  loadArchiveSegment(relativePath: string): Promise<Map<string, unknown>>;
  listArchiveSegments(): Promise<string[]>;
  acquireLock(): Promise<LockHandle>;
  releaseLock(handle: LockHandle): Promise<void>;
  createAgentOpsFile(agentId: string): Promise<string>;
  listOpsFiles(): Promise<string[]>;
  acquireCompactionLock(): Promise<LockHandle>;
  releaseCompactionLock(handle: LockHandle): Promise<void>;
  getManifestVersion(): Promise<string | null>;
  writeBlob(relativePath: string, content: Buffer): Promise<void>;
  readBlob(relativePath: string): Promise<Buffer>;
  readBlobRange(relativePath: string, offset: number, length: number): Promise<Buffer>;
  listBlobs(prefix: string): Promise<string[]>;
  deleteBlob(relativePath: string): Promise<void>;
  deleteBlobDir(prefix: string): Promise<void>;
}

/** An embedded event-sourced document store. */
export declare class Store<T = Record<string, unknown>> {
  open(dir: string, options?: StoreOptions): Promise<void>;
  close(): Promise<void>;
  get(id: string): T | undefined;
  set(id: string, value: T): Promise<void> | void;
  delete(id: string): Promise<void> | void;
  has(id: string): boolean;
  all(): T[];
  entries(): [string, T][];
  filter(predicate: (value: T, id: string) => boolean): T[];
  getManifest(): ManifestInfo | null;
  streamSnapshot(): AsyncGenerator<[string, T]>;
  getWalOps(sinceTimestamp?: string): AsyncGenerator<Operation<T>>;
  count(predicate?: (value: T, id: string) => boolean): number;
  batch(fn: () => void): Promise<void>;
  undo(): Promise<boolean>;
  getHistory(id: string): Operation<T>[];
  getOps(since?: string): Operation<T>[];
  compact(): Promise<void>;
  archive(predicate: (value: T, id: string) => boolean, segment?: string): Promise<number>;
  listArchiveSegments(): string[];
  loadArchive(segment: string): Promise<Map<string, T>>;
  stats(): StoreStats;
  refresh(): Promise<void>;
  tail(): Promise<Operation<T>[]>;
  watch(callback: (ops: Operation<T>[]) => void, intervalMs?: number): void;
  unwatch(): void;
  /** Writes what group/async mode has buffered (does not wait for a checkpoint in progress). */
  flush(): Promise<void>;
  /** flush(), and waits for the checkpoints in progress: the files are then settled. */
  sync(): Promise<void>;
}

/** The filesystem StorageBackend (the default). Its methods can be called directly. */
export declare class FsBackend {}
// The class has every StorageBackend method (declaration merging).
export interface FsBackend extends StorageBackend {}

/** Lamport logical clock: `tick()` for a local event, `merge(seen)` for another writer's. */
export declare class LamportClock {
  constructor(initial?: number);
  tick(): number;
  merge(received: number): number;
  get current(): number;
}

/** The reverse patch from `oldRecord` to `newRecord`, or null when nothing changed. */
export declare function createDelta(oldRecord: Record<string, unknown> | null, newRecord: Record<string, unknown>): DeltaPatch | null;
/** Applies a reverse patch: gives back the old record. */
export declare function applyDelta(record: Record<string, unknown>, patch: DeltaPatch): Record<string, unknown>;
/** Whether the patch's JSON is shorter than the full record's. */
export declare function isDeltaSmaller(patch: DeltaPatch | null, fullRecord: Record<string, unknown> | null): boolean;

/** Streams `[id, record]` from a snapshot file of `dir`; returns `{ version }`. */
export declare function streamSnapshotFile<T>(dir: string, relativePath: string): AsyncGenerator<[string, T], { version: number }>;

/** Takes the directory's `.lock` (throws when a live process holds it); resolves to a handle on the lock file. */
export declare function acquireLock(dir: string): Promise<import("node:fs/promises").FileHandle>;
export declare function releaseLock(dir: string, fh: import("node:fs/promises").FileHandle): Promise<void>;

/** Validators: return their argument when valid, throw an Error naming the problem otherwise. */
export declare function validateOp<T>(raw: unknown): Operation<T>;
export declare function validateManifest(raw: unknown): Manifest;
export declare function validateSnapshot<T>(raw: unknown): Snapshot<T>;
export declare function validateArchiveSegment<T>(raw: unknown): ArchiveSegment<T>;
