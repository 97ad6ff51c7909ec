// Shared by the cli/*.test.mjs files: running the CLI as a child process, hashing a directory,
// and stores written by either implementation.
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { ROOT } from "../support/helpers.mjs";

export const BIN = join(ROOT, "bin", "opslog-native.js");

export const IMPLS = {
  ours: await import("../../index.mjs"),
  reference: await import("@backloghq/opslog"),
};

/** Runs the CLI to its end: `{ code, signal, stdout, stderr }`, the output decoded once. */
export function cli(args, { env } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const out = [];
    const err = [];
    child.stdout.on("data", (b) => out.push(b));
    child.stderr.on("data", (b) => err.push(b));
    child.on("error", reject);
    child.on("close", (code, signal) =>
      resolve({
        code,
        signal,
        stdout: Buffer.concat(out).toString("utf8"),
        stderr: Buffer.concat(err).toString("utf8"),
      }),
    );
  });
}

/** Every file under `dir` (relative path, sorted) with the SHA-256 of its bytes. */
export async function hashDir(dir) {
  const out = {};
  const walk = async (sub) => {
    for (const e of await readdir(join(dir, sub), { withFileTypes: true })) {
      const rel = sub ? `${sub}/${e.name}` : e.name;
      if (e.isDirectory()) await walk(rel);
      else out[rel] = createHash("sha256").update(await readFile(join(dir, rel))).digest("hex");
    }
  };
  await walk("");
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => (a < b ? -1 : 1)));
}

/**
 * A single-writer store with checkpoints behind it, an archive segment, and ops since the last
 * checkpoint that set, delete, re-create and batch (closed without a final checkpoint).
 */
export async function writeSingle(mod, dir) {
  const s = new mod.Store();
  await s.open(dir, { checkpointThreshold: 7, checkpointOnClose: false });
  for (let i = 0; i < 12; i++) await s.set(`r${i}`, { i, tag: i % 3 === 0 ? "old" : "new", text: "é😀\u2028" });
  await s.delete("r1");
  await s.set("r2", { i: 2, changed: true });
  await s.archive((r) => r.tag === "old");
  await s.set("r1", { back: true });
  await s.delete("r4");
  await s.set("r4", { again: true });
  await s.set("r5", { i: 5, n: 1e21 });
  await s.batch(() => {
    s.set("b1", { x: [] });
    s.set("b2", {});
  });
  await s.close();
}

/** The state of a store as its own implementation reads it: `[[id, record], ...]` in order. */
export async function stateOf(mod, dir, opts = {}) {
  const s = new mod.Store();
  await s.open(dir, { readOnly: true, ...opts });
  const entries = [...s.entries()];
  await s.close();
  return entries;
}

/** A multi-writer store of two agents, left open (the caller closes them). */
export async function writeMulti(mod, dir) {
  const a = new mod.Store();
  await a.open(dir, { agentId: "alpha", checkpointThreshold: 1000 });
  const b = new mod.Store();
  await b.open(dir, { agentId: "beta", checkpointThreshold: 1000 });
  await a.set("x", { v: 1 });
  await b.set("y", { v: 1 });
  await b.refresh();
  await b.set("x", { v: 2 });
  await a.refresh();
  await a.delete("y");
  await a.set("z", { v: 3 });
  return [a, b];
}

/** Export output as `[[id, record], ...]`. */
export function parseJsonl(text) {
  return text
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => JSON.parse(l));
}
