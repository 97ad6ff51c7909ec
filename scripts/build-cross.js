#!/usr/bin/env node
// `npm run build:cross [-- <platform>...]`: release addons for the other Linux platform
// packages, built on this machine with @napi-rs/cli (`napi build -x`: cargo-zigbuild, zig as the
// linker) on the cross toolchain of scripts/toolchain.js, into artifacts/ under the file names
// the loader looks for (`npm run artifacts` moves them into npm/<platform>/). Each output is
// checked: its machine, the libraries it needs (only the C library the platform guarantees) and
// the newest glibc symbol version it uses.
"use strict";
const { execFileSync } = require("node:child_process");
const fs = require("node:fs");
const path = require("node:path");
const { crossEnv, BUILD_STD } = require("./toolchain");
const { binaryName, platformOfTarget } = require("../lib/platform");

const root = path.join(__dirname, "..");
const ARTIFACTS = path.join(root, "artifacts");

// What each cross-built platform must look like. `glibc` is the oldest glibc we claim: zig links
// against its symbol versions (the `.2.17` suffix of the target), so the addon loads on any
// glibc from 2.17 on (CentOS 7, Amazon Linux 2, Debian 8, Ubuntu 14.04 and later).
const CROSS = {
  // This machine's own platform too: `npm run build` links against the host's glibc (2.36 here),
  // the published addon against 2.17 like the arm64 one.
  "linux-x64-gnu": {
    target: "x86_64-unknown-linux-gnu.2.17",
    machine: "Advanced Micro Devices X86-64",
    needed: ["libc.so.6", "libpthread.so.0", "libdl.so.2", "libm.so.6", "libgcc_s.so.1", "ld-linux-x86-64.so.2"],
    glibc: "2.17",
  },
  "linux-arm64-gnu": {
    target: "aarch64-unknown-linux-gnu.2.17",
    machine: "AArch64",
    needed: ["libc.so.6", "libpthread.so.0", "libdl.so.2", "libm.so.6", "libgcc_s.so.1", "ld-linux-aarch64.so.1"],
    glibc: "2.17",
  },
  "linux-x64-musl": {
    target: "x86_64-unknown-linux-musl",
    machine: "Advanced Micro Devices X86-64",
    // musl's loader resolves every libc.so / libc.musl-* name to itself.
    needed: ["libc.so", "libc.musl-x86_64.so.1"],
  },
};

const readelf = (args, file) => execFileSync("readelf", [...args, file], { encoding: "utf8" });

function glibcVersions(file) {
  const versions = new Set(readelf(["-V", "-W"], file).match(/GLIBC_\d+(\.\d+)*/g) ?? []);
  return [...versions].map((v) => v.slice("GLIBC_".length));
}
const newer = (a, b) => {
  const [x, y] = [a.split(".").map(Number), b.split(".").map(Number)];
  for (let i = 0; i < Math.max(x.length, y.length); i++) if ((x[i] ?? 0) !== (y[i] ?? 0)) return (x[i] ?? 0) > (y[i] ?? 0);
  return false;
};

// The problems of one built addon against its platform's expectations (empty when it fits).
function inspect(file, expect) {
  const problems = [];
  const machine = readelf(["-h"], file).match(/Machine:\s+(.*)/)?.[1].trim();
  if (machine !== expect.machine) problems.push(`machine is ${machine}, expected ${expect.machine}`);
  const needed = [...readelf(["-d", "-W"], file).matchAll(/\(NEEDED\)\s+Shared library: \[(.*)\]/g)].map((m) => m[1]);
  const foreign = needed.filter((lib) => !expect.needed.includes(lib));
  if (foreign.length) problems.push(`needs ${foreign.join(", ")}, which the platform does not guarantee`);
  const glibc = glibcVersions(file);
  if (expect.glibc) {
    const tooNew = glibc.filter((v) => newer(v, expect.glibc));
    if (tooNew.length) problems.push(`uses glibc ${tooNew.join(", ")} symbols, newer than the claimed ${expect.glibc}`);
  } else if (glibc.length) {
    problems.push(`has glibc symbol versions (${glibc.join(", ")}) but is not a glibc build`);
  }
  return { machine, needed, newestGlibc: glibc.sort((a, b) => (newer(a, b) ? 1 : -1)).at(-1), problems };
}

function build(platform) {
  const spec = CROSS[platform];
  const env = crossEnv({ zig: true });
  const cargoTriple = spec.target.split(".")[0];
  const napi = path.join(root, "node_modules", ".bin", "napi");
  // The binding's .d.ts napi generates on the side is not ours to ship (index.d.ts is the API).
  const scratchDts = `.${platform}.d.ts`;
  execFileSync(napi, ["build", "--platform", "--release", "-x", "--target", spec.target, "-o", ARTIFACTS, "--no-js", "--dts", scratchDts, "--", ...BUILD_STD], {
    cwd: root,
    env,
    stdio: "inherit",
  });
  fs.rmSync(path.join(ARTIFACTS, scratchDts), { force: true });
  const file = path.join(ARTIFACTS, binaryName(platform));
  if (platformOfTarget(cargoTriple) !== platform) throw new Error(`build-cross: ${cargoTriple} is not ${platform}`);
  const report = inspect(file, spec);
  const glibc = report.newestGlibc ? `, newest glibc symbol ${report.newestGlibc}` : "";
  console.log(`${path.relative(root, file)}: ${report.machine}, needs ${report.needed.join(" ")}${glibc}`);
  return report.problems.map((p) => `${platform}: ${p}`);
}

if (require.main === module) {
  const wanted = process.argv.slice(2);
  const unknown = wanted.filter((p) => !CROSS[p]);
  if (unknown.length) {
    console.error(`build-cross: unknown platform ${unknown.join(", ")} (known: ${Object.keys(CROSS).join(", ")})`);
    process.exit(2);
  }
  const problems = (wanted.length ? wanted : Object.keys(CROSS)).flatMap(build);
  if (problems.length) {
    for (const p of problems) console.error(`build-cross: ${p}`);
    process.exit(1);
  }
}

module.exports = { CROSS, inspect, ARTIFACTS };
