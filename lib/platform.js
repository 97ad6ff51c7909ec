"use strict";
// Platform names in napi-rs's convention (e.g. "linux-x64-gnu"): this machine's, the ones the
// package ships (derived from `napi.targets` in package.json, the one list of them), and the
// names derived from a platform: the addon file of a build and the npm package that carries it.
const fs = require("node:fs");
const { name: PACKAGE_NAME, napi, bin } = require("../package.json");
/** The operator CLI's command name (package.json `bin`). */
const CLI_NAME = Object.keys(bin)[0];

// glibc or musl, in napi-rs's order of evidence: the text of /usr/bin/ldd (a script on glibc, a
// link to the musl loader on musl), then the process report without its network scan (which
// can take seconds when DNS is slow), then `ldd --version`.
function isMusl() {
  try {
    return fs.readFileSync("/usr/bin/ldd", "latin1").includes("musl");
  } catch {
    // no readable /usr/bin/ldd: ask the process report
  }
  if (typeof process.report?.getReport === "function") {
    const excludeNetwork = process.report.excludeNetwork;
    process.report.excludeNetwork = true;
    let report;
    try {
      report = process.report.getReport();
    } finally {
      process.report.excludeNetwork = excludeNetwork;
    }
    if (report?.header?.glibcVersionRuntime) return false;
    if (Array.isArray(report?.sharedObjects)) {
      return report.sharedObjects.some((f) => f.includes("libc.musl-") || f.includes("ld-musl-"));
    }
  }
  try {
    return require("node:child_process").execFileSync("ldd", ["--version"], { encoding: "utf8", stdio: "pipe" }).includes("musl");
  } catch (err) {
    // musl's ldd prints its banner to stderr and exits 1
    return String(err.stderr ?? "").includes("musl");
  }
}

function platformTriple() {
  const { platform, arch } = process;
  if (platform === "linux") return `linux-${arch}-${isMusl() ? "musl" : "gnu"}`;
  if (platform === "win32") return `win32-${arch}-msvc`;
  return `${platform}-${arch}`;
}

// A Rust target triple's platform name, as @napi-rs/cli names it (checked against its
// parseTriple in __test__/loader/loader.test.mjs).
const ARCH = { x86_64: "x64", aarch64: "arm64", i686: "ia32", armv7: "arm", riscv64gc: "riscv64" };
function platformOfTarget(target) {
  const [cpu, , system, abi] = target.split("-");
  const arch = ARCH[cpu] ?? cpu;
  if (system === "darwin") return `darwin-${arch}`;
  if (system === "windows") return `win32-${arch}-${abi}`;
  if (system === "linux") return `linux-${arch}-${abi}`;
  throw new Error(`${PACKAGE_NAME}: no platform name for the target ${target}`);
}

const shippedPlatforms = () => napi.targets.map(platformOfTarget);
const binaryName = (triple = platformTriple()) => `${napi.binaryName}.${triple}.node`;
const packageName = (triple = platformTriple()) => `${PACKAGE_NAME}-${triple}`;

module.exports = { PACKAGE_NAME, CLI_NAME, isMusl, platformTriple, platformOfTarget, shippedPlatforms, binaryName, packageName };
