"use strict";
const { CLI_NAME } = require("../platform");
const native = require("../native");
const { formatBytes } = require("./progress");
const { EXIT, fail } = require("./usage");

const help = `Usage: ${CLI_NAME} inspect <dir> [--json]

Shows what the store in <dir> is made of: the manifest, the current snapshot and op file with
their sizes and record/op counts, the archive segments, the agents of a multi-writer store (each
one's op file, op count, highest clock, whether a process has it open), who holds the writer
lock, and the files no generation references. Read-only: takes no lock, changes nothing.

Options:
  --json      print one JSON object (documented in the README) instead of text
  -h, --help  show this help

Exit codes: 0 done, 2 the directory cannot be read as a store (no manifest, or a manifest that
is not valid).
`;

function count(n, one, many = `${one}s`) {
  return n == null ? `? ${many}` : `${n.toLocaleString("en-US")} ${n === 1 ? one : many}`;
}

function holderText(lock) {
  if (lock === null) return "none";
  if (lock.pid === null) return "present, holding no pid (stale)";
  return lock.alive ? `held by process ${lock.pid} (running)` : `stale: process ${lock.pid} is not running`;
}

function opsText(o) {
  const parts = [o.path, formatBytes(o.bytes), count(o.ops, "op")];
  if (o.bytes === null) parts.push("(missing)");
  if (o.malformed > 0) parts.push(`${count(o.malformed, "malformed line")}`);
  if (o.torn) parts.push("torn last line");
  if (o.error) parts.push(`error: ${o.error}`);
  return parts.join("  ");
}

/** The inspection as text, one fact per line. */
function render(dir, r) {
  const out = [];
  const s = r.manifest.stats;
  out.push(`store         ${dir}`);
  out.push(`manifest      ${r.manifest.path}  ${formatBytes(r.manifest.bytes)}  version ${r.manifest.version}`);
  out.push(`              ${count(s.activeRecords, "record")}, ${count(s.archivedRecords, "archived record")}, ${count(s.opsCount, "op")} at the last checkpoint`);
  out.push(`              created ${s.created}, last checkpoint ${s.lastCheckpoint}`);
  const snap = r.snapshot;
  const snapParts = [snap.path, formatBytes(snap.bytes), count(snap.records, "record")];
  if (snap.version !== null) snapParts.push(`(${snap.format}, data version ${snap.version})`);
  if (snap.bytes === null) snapParts.push("(missing)");
  if (snap.error) snapParts.push(`error: ${snap.error}`);
  out.push(`snapshot      ${snapParts.join("  ")}`);
  const owner = r.agents.find((a) => a.ops.path === r.ops.path);
  const note = !r.multiWriter ? "" : owner ? `  (agent ${owner.agent}'s file)` : "  (not read in multi-writer mode)";
  out.push(`op file       ${opsText(r.ops)}${note}`);
  if (r.archive.length === 0) out.push("archive       none");
  for (const [i, seg] of r.archive.entries()) {
    const parts = [seg.path, formatBytes(seg.bytes), count(seg.records, "record")];
    if (seg.error) parts.push(`error: ${seg.error}`);
    out.push(`${i === 0 ? "archive       " : "              "}${parts.join("  ")}`);
  }
  if (r.multiWriter) {
    out.push(`agents        ${r.agents.length} (multi-writer)`);
    for (const a of r.agents) {
      const live = a.live === null ? "liveness unknown" : a.live ? "live" : "not live";
      const clocks = `highest clock ${a.ops.highestClock ?? "-"}, in snapshot ${a.snapshotClock ?? "-"}`;
      out.push(`  ${a.agent}  ${opsText(a.ops)}  ${clocks}  ${live}`);
    }
  }
  out.push(`lock          ${holderText(r.lock)}`);
  if (r.multiWriter || r.compactLock !== null) out.push(`compact lock  ${holderText(r.compactLock)}`);
  const loose = r.unreferenced;
  const looseBytes = loose.reduce((n, f) => n + (f.bytes ?? 0), 0);
  out.push(`unreferenced  ${loose.length === 0 ? "none" : `${count(loose.length, "file")}, ${formatBytes(looseBytes)}`}`);
  for (const f of loose) out.push(`  ${f.path}  ${formatBytes(f.bytes)}`);
  out.push(`total         ${formatBytes(r.totalBytes)}`);
  return `${out.join("\n")}\n`;
}

async function run(dir, values) {
  let report;
  try {
    report = await native.cliInspect(dir);
  } catch (err) {
    fail("inspect", `cannot read the store: ${err.message}`);
    return EXIT.UNREADABLE;
  }
  process.stdout.write(values.json ? `${JSON.stringify(report, null, 2)}\n` : render(dir, report));
  return EXIT.OK;
}

module.exports = {
  summary: "what the store is made of: files, sizes, counts, agents, lock, unreferenced files",
  help,
  options: { json: { type: "boolean" } },
  run,
};
