#!/usr/bin/env node
"use strict";
// npm run test:s3: the S3 scenarios of issue 21 against a real S3 API (moto's server, installed
// from PyPI into ~/.cache/opslog-native/moto-venv when missing) through @backloghq/opslog-s3, for
// ours and the reference side by side. Requests are counted per HTTP method by a middleware on
// each S3 client (every attempt the SDK sends). Stops the server it started, by its pid.
// OPSLOG_S3_CALLS=1 also counts the S3Backend's method calls (".method"), OPSLOG_S3_KEYS=1 the
// requests per key ("GET ops/agent-a1/batch.jsonl"), printed beside the requests.
const { spawn, spawnSync, execFileSync } = require("node:child_process");
const net = require("node:net");
const os = require("node:os");
const path = require("node:path");
const fs = require("node:fs");
const { PACKAGE_NAME } = require("../lib/platform");

const VENV = path.join(os.homedir(), ".cache", PACKAGE_NAME, "moto-venv");
const MOTO = path.join(VENV, "bin", "moto_server");
const BUCKET = "opslog-s3-test";
Object.assign(process.env, {
  AWS_ACCESS_KEY_ID: "test",
  AWS_SECRET_ACCESS_KEY: "test",
  AWS_REGION: "us-east-1",
});

function ensureMoto() {
  if (fs.existsSync(MOTO)) return;
  console.log(`installing moto[server] into ${VENV}`);
  execFileSync("python3", ["-m", "venv", VENV], { stdio: "inherit" });
  execFileSync(path.join(VENV, "bin", "pip"), ["install", "-q", "moto[server]"], { stdio: "inherit" });
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

async function waitFor(port) {
  for (let i = 0; i < 200; i++) {
    const ok = await new Promise((resolve) => {
      const sock = net.connect(port, "127.0.0.1", () => (sock.end(), resolve(true)));
      sock.once("error", () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`moto_server did not listen on port ${port}`);
}

/** An S3 client for the server that counts requests by HTTP method into `counts`. */
async function client(endpoint, counts) {
  const { S3Client } = await import("@aws-sdk/client-s3");
  const c = new S3Client({ endpoint, forcePathStyle: true, region: "us-east-1" });
  c.middlewareStack.add(
    (next) => async (args) => {
      const m = args.request?.method ?? "?";
      counts[m] = (counts[m] ?? 0) + 1;
      if (process.env.OPSLOG_S3_KEYS) {
        // Where the requests go: the key (or listed prefix) with the store's prefix and the
        // time-derived parts of names cut off.
        const key = args.input?.Key ?? `list:${args.input?.Prefix ?? ""}`;
        const kind = `${m} ${key.replace(/^(list:)?[^/]*\//, "$1").replace(/-?\d{6,}(-\d+)?/g, "")}`;
        counts[kind] = (counts[kind] ?? 0) + 1;
      }
      return next(args);
    },
    { step: "deserialize", name: "opslogCountRequests" },
  );
  return c;
}

async function impl(which) {
  return which === "ours" ? import("../index.mjs") : import("@backloghq/opslog");
}

async function openStore(which, endpoint, prefix, counts, opts = {}) {
  const { Store } = await impl(which);
  const { S3Backend } = await import("@backloghq/opslog-s3");
  const backend = new S3Backend({ bucket: BUCKET, prefix, client: await client(endpoint, counts) });
  if (process.env.OPSLOG_S3_CALLS) {
    for (const m of Object.getOwnPropertyNames(S3Backend.prototype)) {
      const f = backend[m];
      if (typeof f !== "function" || m === "constructor") continue;
      backend[m] = (...a) => ((counts[`.${m}`] = (counts[`.${m}`] ?? 0) + 1), f.apply(backend, a));
    }
  }
  const store = new Store();
  await store.open(`s3://${BUCKET}/${prefix}`, { backend, ...opts });
  return store;
}

const state = (store) => JSON.stringify(store.entries().sort(([a], [b]) => (a < b ? -1 : 1)));
/** Requests: the per-method counts (not the diagnostic ones). */
const total = (counts) => Object.entries(counts).reduce((a, [k, n]) => (/^[A-Z]+$/.test(k) ? a + n : a), 0);

async function singleWriter(which, endpoint, prefix) {
  const counts = {};
  const started = performance.now();
  const s = await openStore(which, endpoint, prefix, counts);
  for (let i = 0; i < 300; i++) await s.set(`k${i % 50}`, { i });
  for (let i = 0; i < 10; i++) await s.delete(`k${i}`);
  await s.batch(() => {
    s.set("b1", { b: 1 });
    s.set("b2", { b: 2 });
  });
  await s.undo();
  await s.compact();
  const before = state(s);
  await s.close();
  const again = await openStore(which, endpoint, prefix, counts);
  const after = state(again);
  await again.close();
  return { counts, ms: performance.now() - started, same: before === after, state: after };
}

async function crossOpen(endpoint, prefix) {
  const results = [];
  for (const [writer, reader] of [["ours", "reference"], ["reference", "ours"]]) {
    const w = await singleWriter(writer, endpoint, `${prefix}-${writer}`);
    const r = await openStore(reader, endpoint, `${prefix}-${writer}`, {}, { readOnly: true });
    results.push({ writer, reader, same: state(r) === w.state });
    await r.close();
  }
  return results;
}

/** One agent process: writes, refreshes, maybe compacts; prints its counts and last writes. */
async function agentMain([which, endpoint, prefix, agent, compacts]) {
  const counts = {};
  const s = await openStore(which, endpoint, prefix, counts, { agentId: agent, checkpointThreshold: 100000 });
  const last = {};
  for (let i = 0; i < 150; i++) {
    const shared = `shared-${i % 20}`;
    await s.set(shared, { agent, i });
    await s.set(`${agent}-${i % 30}`, { agent, i });
    last[`${agent}-${i % 30}`] = i;
    if (i % 50 === 49) await s.refresh();
    if (compacts === "1" && i === 100) await s.compact();
  }
  await s.close();
  process.stdout.write(JSON.stringify({ counts, last }));
}

async function multiWriter(which, endpoint, prefix) {
  const started = performance.now();
  const children = ["a1", "a2", "a3"].map((agent, n) => {
    const child = spawn(process.execPath, [__filename, "--agent", which, endpoint, prefix, agent, n === 0 ? "1" : "0"], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    const chunks = [];
    child.stdout.on("data", (c) => chunks.push(c));
    return new Promise((resolve, reject) =>
      child.on("exit", (code) =>
        code === 0 ? resolve(JSON.parse(Buffer.concat(chunks).toString("utf8"))) : reject(new Error(`agent ${agent} (${which}) exited with ${code}`)),
      ),
    );
  });
  const outs = await Promise.all(children);
  const ms = performance.now() - started;
  const counts = {};
  for (const o of outs) for (const [m, n] of Object.entries(o.counts)) counts[m] = (counts[m] ?? 0) + n;
  const reader = await openStore(which, endpoint, prefix, {}, { readOnly: true });
  let lost = 0;
  for (const o of outs) for (const [id, i] of Object.entries(o.last)) if (reader.get(id)?.i !== i) lost++;
  for (let k = 0; k < 20; k++) if (!reader.has(`shared-${k}`)) lost++;
  await reader.close();
  return { counts, ms, lost };
}

function row(name, o, r) {
  const fmt = (x) => `${String(total(x.counts)).padStart(5)} req ${JSON.stringify(x.counts).padEnd(44)} ${(x.ms / 1000).toFixed(1).padStart(5)} s`;
  console.log(`${name.padEnd(14)} ours      ${fmt(o)}`);
  console.log(`${"".padEnd(14)} reference ${fmt(r)}`);
}

async function main() {
  ensureMoto();
  const port = await freePort();
  const server = spawn(MOTO, ["-H", "127.0.0.1", "-p", String(port)], { stdio: "ignore" });
  const stop = () => {
    if (server.exitCode === null) process.kill(server.pid, "SIGTERM");
  };
  process.on("exit", stop);
  const failures = [];
  try {
    await waitFor(port);
    const endpoint = `http://127.0.0.1:${port}`;
    const { CreateBucketCommand } = await import("@aws-sdk/client-s3");
    await (await client(endpoint, {})).send(new CreateBucketCommand({ Bucket: BUCKET }));
    const run = Date.now();

    const so = await singleWriter("ours", endpoint, `single-ours-${run}`);
    const sr = await singleWriter("reference", endpoint, `single-ref-${run}`);
    row("single writer", so, sr);
    if (!so.same) failures.push("single writer: ours reopened to another state");
    if (so.state !== sr.state) failures.push("single writer: ours and the reference end in different states");
    if (total(so.counts) > total(sr.counts)) failures.push("single writer: ours made more requests");

    for (const c of await crossOpen(endpoint, `cross-${run}`)) {
      console.log(`cross-open     ${c.writer} wrote, ${c.reader} opened: ${c.same ? "same state" : "DIFFERENT state"}`);
      if (!c.same) failures.push(`cross-open ${c.writer} -> ${c.reader}`);
    }

    const mo = await multiWriter("ours", endpoint, `multi-ours-${run}`);
    const mr = await multiWriter("reference", endpoint, `multi-ref-${run}`);
    row("multi-writer", mo, mr);
    console.log(`${"".padEnd(14)} acknowledged writes lost: ours ${mo.lost}, reference ${mr.lost}`);
    if (mo.lost > 0) failures.push(`multi-writer: ours lost ${mo.lost} writes`);
    if (total(mo.counts) > total(mr.counts)) failures.push("multi-writer: ours made more requests");
  } finally {
    stop();
  }
  if (failures.length) {
    console.error(`test:s3 FAILED:\n  ${failures.join("\n  ")}`);
    process.exitCode = 1;
  } else console.log("test:s3 passed");
}

if (process.argv[2] === "--agent") {
  agentMain(process.argv.slice(3)).catch((e) => {
    console.error(e);
    process.exit(1);
  });
} else {
  main().catch((e) => {
    console.error(e);
    process.exitCode = 1;
  });
}
