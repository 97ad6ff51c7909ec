// A StorageBackend written in plain JavaScript over node:fs, used to run the Store suites with
// every byte of I/O going through the engine's JavaScript-backend adapter.
import { appendFile, mkdir, open, readFile, readdir, rename, rm, stat, unlink, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";

/** `<prefix><Date.now()><suffix>` under `dir`, moved to the next millisecond while that name is taken. */
async function freshName(dir, prefix, suffix) {
  for (let ms = Date.now(); ; ms++) {
    const rel = `${prefix}${ms}${suffix}`;
    try {
      await stat(join(dir, rel));
    } catch {
      return rel;
    }
  }
}

export class JsFsBackend {
  dir = "";
  calls = [];

  async initialize(dir, { readOnly }) {
    this.dir = dir;
    this.calls.push("initialize");
    if (!readOnly) for (const sub of ["snapshots", "ops", "archive"]) await mkdir(join(dir, sub), { recursive: true });
  }

  async shutdown() {}

  async readManifest() {
    let text;
    try {
      text = await readFile(join(this.dir, "manifest.json"), "utf8");
    } catch {
      return null;
    }
    return JSON.parse(text);
  }

  async writeManifest(manifest) {
    const path = join(this.dir, "manifest.json");
    await writeFile(`${path}.tmp`, JSON.stringify(manifest, null, 2));
    await rename(`${path}.tmp`, path);
  }

  async writeSnapshot(records, version) {
    const rel = await freshName(this.dir, "snapshots/snap-", ".jsonl");
    const lines = [JSON.stringify({ version, timestamp: new Date().toISOString() })];
    for (const [id, data] of records) lines.push(JSON.stringify({ id, data }));
    await writeFile(join(this.dir, rel), `${lines.join("\n")}\n`);
    return rel;
  }

  async loadSnapshot(rel) {
    const text = await readFile(join(this.dir, rel), "utf8");
    const [head, ...rest] = text.split("\n");
    let header;
    try {
      header = JSON.parse(head);
    } catch {
      header = JSON.parse(text); // the pretty-printed legacy form
    }
    if ("records" in header) return { records: new Map(Object.entries(header.records)), version: header.version };
    const records = new Map();
    for (const line of rest) {
      if (!line.trim()) continue;
      const { id, data } = JSON.parse(line);
      records.set(id, data);
    }
    return { records, version: header.version };
  }

  async appendOps(rel, ops) {
    this.calls.push(["appendOps", ops.length]);
    await appendFile(join(this.dir, rel), ops.map((op) => `${JSON.stringify(op)}\n`).join(""));
  }

  async readOps(rel) {
    let text;
    try {
      text = await readFile(join(this.dir, rel), "utf8");
    } catch {
      return [];
    }
    const ops = [];
    for (const line of text.split("\n")) {
      if (!line.trim()) continue;
      try {
        ops.push(JSON.parse(line));
      } catch {
        // a malformed line: skipped, as the file backend does
      }
    }
    return ops;
  }

  async truncateLastOp(rel) {
    const path = join(this.dir, rel);
    let buf;
    try {
      buf = await readFile(path);
    } catch {
      return false;
    }
    if (buf.length === 0) return false;
    const cut = buf.lastIndexOf(10, buf.length - 2);
    await writeFile(path, buf.subarray(0, cut + 1));
    return true;
  }

  async createOpsFile() {
    const rel = await freshName(this.dir, "ops/ops-", ".jsonl");
    await writeFile(join(this.dir, rel), "");
    return rel;
  }

  async writeArchiveSegment(period, records) {
    const rel = `archive/archive-${period}.json`;
    let existing = {};
    try {
      existing = JSON.parse(await readFile(join(this.dir, rel), "utf8")).records;
    } catch {}
    const segment = { version: 1, period, timestamp: new Date().toISOString(), records: { ...existing, ...Object.fromEntries(records) } };
    await writeFile(join(this.dir, rel), JSON.stringify(segment, null, 2));
    return rel;
  }

  async loadArchiveSegment(rel) {
    return new Map(Object.entries(JSON.parse(await readFile(join(this.dir, rel), "utf8")).records));
  }

  async listArchiveSegments() {
    try {
      return (await readdir(join(this.dir, "archive"))).filter((f) => f.endsWith(".json")).map((f) => `archive/${f}`);
    } catch {
      return [];
    }
  }

  async acquireLock() {
    const path = join(this.dir, ".lock");
    for (;;) {
      try {
        const fh = await open(path, "wx");
        await fh.writeFile(String(process.pid));
        return { fh };
      } catch (err) {
        if (err.code !== "EEXIST") throw err;
      }
      const pid = Number.parseInt(await readFile(path, "utf8").catch(() => ""), 10);
      let alive = false;
      try {
        if (pid > 0) alive = process.kill(pid, 0);
      } catch {}
      if (alive) throw new Error(`Store is locked by process ${pid}. If this is stale, delete ${path}`);
      await unlink(path).catch(() => {});
    }
  }

  async releaseLock(handle) {
    await handle.fh.close();
    await unlink(join(this.dir, ".lock")).catch(() => {});
  }

  async createAgentOpsFile(agentId) {
    const rel = await freshName(this.dir, `ops/agent-${agentId}-`, ".jsonl");
    await writeFile(join(this.dir, rel), "");
    return rel;
  }

  async listOpsFiles() {
    return (await readdir(join(this.dir, "ops"))).map((f) => `ops/${f}`);
  }

  async acquireCompactionLock() {
    return { fh: await open(join(this.dir, ".compact-lock"), "wx") };
  }

  async releaseCompactionLock(handle) {
    await handle.fh.close();
    await unlink(join(this.dir, ".compact-lock")).catch(() => {});
  }

  async getManifestVersion() {
    try {
      return String((await stat(join(this.dir, "manifest.json"))).mtimeMs);
    } catch {
      return null;
    }
  }

  async writeBlob(rel, content) {
    await mkdir(dirname(join(this.dir, rel)), { recursive: true });
    await writeFile(join(this.dir, rel), content);
  }

  async readBlob(rel) {
    return readFile(join(this.dir, rel));
  }

  async readBlobRange(rel, offset, length) {
    const fh = await open(join(this.dir, rel), "r");
    try {
      const buf = Buffer.alloc(length);
      const { bytesRead } = await fh.read(buf, 0, length, offset);
      return buf.subarray(0, bytesRead);
    } finally {
      await fh.close();
    }
  }

  async listBlobs(prefix) {
    return readdir(join(this.dir, prefix)).catch(() => []);
  }

  async deleteBlob(rel) {
    await unlink(join(this.dir, rel)).catch(() => {});
  }

  async deleteBlobDir(prefix) {
    await rm(join(this.dir, prefix), { recursive: true, force: true });
  }
}
