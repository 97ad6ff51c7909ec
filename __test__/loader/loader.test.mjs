// The loader (lib/native.js, lib/platform.js): platform names as @napi-rs/cli derives them,
// glibc/musl detection without the report's network scan, and, in a staged copy of the
// published package beside a fake node_modules, what happens when the platform package is
// there, of another version, missing, or not published for this platform at all.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, mkdirSync, writeFileSync, copyFileSync, rmSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { spawnSync } from "node:child_process";
import { createRequire } from "node:module";
import { nodeArgv, ROOT } from "../support/helpers.mjs";

const require = createRequire(import.meta.url);
const platform = require("../../lib/platform.js");
const { stage } = require("../../scripts/stage.js");
const { version, napi } = require("../../package.json");

// @napi-rs/cli itself needs Node 20 or later (its prompts import util.styleText); on Node 18 the
// comparison is left to the other majors of the matrix.
const nodeMajor = Number(process.versions.node.split(".")[0]);
const cli = nodeMajor >= 20 ? await import("@napi-rs/cli") : null;

test("every target's platform name is the one @napi-rs/cli gives it", { skip: !cli && "@napi-rs/cli needs Node >= 20" }, () => {
  const { parseTriple } = cli;
  const targets = [...napi.targets, "aarch64-unknown-linux-musl", "aarch64-pc-windows-msvc", "i686-pc-windows-msvc", "armv7-unknown-linux-gnueabihf"];
  for (const t of targets) assert.equal(platform.platformOfTarget(t), parseTriple(t).platformArchABI, t);
  assert.deepEqual(platform.shippedPlatforms(), napi.targets.map((t) => parseTriple(t).platformArchABI));
  assert.throws(() => platform.platformOfTarget("wasm32-unknown-unknown"), /no platform name for the target wasm32-unknown-unknown/);
});

// Node's own view of this machine's C library, what the loader's detection must agree with.
const hostGlibc = Boolean(process.report.getReport().header.glibcVersionRuntime);

test("this machine's platform name matches Node's own view of its C library", () => {
  const expected = process.platform === "linux" ? `linux-${process.arch}-${hostGlibc ? "gnu" : "musl"}` : null;
  if (expected) assert.equal(platform.platformTriple(), expected);
  assert.equal(platform.binaryName("linux-arm64-gnu"), "opslog-native.linux-arm64-gnu.node");
  assert.equal(platform.packageName("darwin-arm64"), "opslog-native-darwin-arm64");
});

// Runs `code` (CommonJS) in a fresh Node with `preload` (CommonJS source) required first.
function node(code, { preload } = {}) {
  const dir = mkdtempSync(join(tmpdir(), "opslog-loader-"));
  const args = [];
  if (preload) {
    writeFileSync(join(dir, "preload.cjs"), preload);
    args.push("-r", join(dir, "preload.cjs"));
  }
  const [cmd, ...argv] = nodeArgv(...args, "-e", code);
  const r = spawnSync(cmd, argv, { cwd: dir, encoding: "utf8" });
  rmSync(dir, { recursive: true, force: true });
  return r;
}

test("without a readable /usr/bin/ldd, musl detection asks the report with its network scan off, and restores the setting", { skip: process.platform !== "linux" }, () => {
  const preload = `
    const fs = require("node:fs");
    const read = fs.readFileSync;
    fs.readFileSync = function (file, ...rest) {
      if (file === "/usr/bin/ldd") throw Object.assign(new Error("EACCES"), { code: "EACCES" });
      return read.call(this, file, ...rest);
    };
    const getReport = process.report.getReport.bind(process.report);
    globalThis.seen = [];
    process.report.getReport = (...a) => { globalThis.seen.push(process.report.excludeNetwork); return getReport(...a); };
  `;
  const code = `
    process.report.excludeNetwork = false;
    const musl = require(${JSON.stringify(join(ROOT, "lib", "platform.js"))}).isMusl();
    console.log(JSON.stringify({ musl, seen: globalThis.seen, after: process.report.excludeNetwork }));
  `;
  const r = node(code, { preload });
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.deepEqual(out, { musl: !hostGlibc, seen: [true], after: false });
});

// A staged copy of the published main package (no addon beside it) in <tmp>/node_modules, so
// the platform package resolves from a sibling directory, as after `npm install`; removed when
// the test ends.
function stagedInstall(t) {
  const dir = mkdtempSync(join(tmpdir(), "opslog-staged-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const modules = join(dir, "node_modules");
  return { modules, main: stage(join(modules, "opslog-native")) };
}

function fakePlatformPackage(modules, triple, pkgVersion, addon) {
  const pkgDir = join(modules, platform.packageName(triple));
  mkdirSync(pkgDir, { recursive: true });
  const file = platform.binaryName(triple);
  writeFileSync(join(pkgDir, "package.json"), JSON.stringify({ name: platform.packageName(triple), version: pkgVersion, main: file }));
  copyFileSync(addon, join(pkgDir, file));
}

const here = platform.platformTriple();
const localAddon = join(ROOT, platform.binaryName(here));
// The staged installs below need this machine's own build (`npm install` or `npm run build`).
const ownAddon = () => {
  assert.ok(existsSync(localAddon), `${localAddon} is missing: run \`npm run build:debug\` first`);
  return localAddon;
};
const requireStaged = (main) => `const m = require(${JSON.stringify(main)}); console.log(typeof m.Store, typeof m.FsBackend);`;

test("the staged package loads the platform package of its own version", (t) => {
  const s = stagedInstall(t);
  assert.equal(existsSync(join(s.main, platform.binaryName(here))), false, "the staged package carries no addon");
  fakePlatformPackage(s.modules, here, version, ownAddon());
  const r = node(requireStaged(s.main));
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), "function function");
});

test("a platform package of another version is refused, naming both versions and the fix", (t) => {
  const s = stagedInstall(t);
  fakePlatformPackage(s.modules, here, "0.0.1-other", ownAddon());
  const r = node(requireStaged(s.main));
  assert.notEqual(r.status, 0);
  const pkg = platform.packageName(here);
  assert.match(r.stderr, new RegExp(`the platform package "${pkg}" is version 0\\.0\\.1-other, but opslog-native is ${version.replace(/\./g, "\\.")}`));
  assert.match(r.stderr, new RegExp(`npm install opslog-native@${version.replace(/\./g, "\\.")} ${pkg}@`));
});

test("a missing platform package names the platform, the package and both fixes", (t) => {
  const s = stagedInstall(t);
  const r = node(requireStaged(s.main));
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, new RegExp(`opslog-native: no native binary for this platform \\(${here}\\)`));
  if (platform.shippedPlatforms().includes(here)) {
    assert.match(r.stderr, new RegExp(`The package "${platform.packageName(here)}" is missing`));
    assert.match(r.stderr, /reinstall with `npm install`/);
  }
  assert.match(r.stderr, /npm rebuild opslog-native/);
  assert.match(r.stderr, /README, "Installing"/);
});

test("a platform nothing is published for says so and lists what is", (t) => {
  const s = stagedInstall(t);
  const preload = `Object.defineProperty(process, "arch", { value: "riscv64" });`;
  const r = node(requireStaged(s.main), { preload });
  assert.notEqual(r.status, 0);
  const triple = process.platform === "linux" ? here.replace(process.arch, "riscv64") : null;
  if (triple) assert.match(r.stderr, new RegExp(`no native binary for this platform \\(${triple}\\)\\. No prebuilt binary is published for ${triple}`));
  assert.match(r.stderr, new RegExp(`published: ${platform.shippedPlatforms().join(", ")}`));
});

// npm/<platform>/ holds one package per platform napi.targets ships (the napi-rs layout): the
// folders are data, so this keeps them in step with the one list and with the names the loader
// looks for.
test("npm/ holds exactly the shipped platforms' packages, named as the loader looks for them", async () => {
  const { readdirSync, readFileSync } = await import("node:fs");
  const folders = readdirSync(join(ROOT, "npm"), { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name);
  assert.deepEqual(folders.sort(), [...platform.shippedPlatforms()].sort());
  const os = { darwin: "darwin", win32: "win32", linux: "linux" };
  for (const p of platform.shippedPlatforms()) {
    const pkg = JSON.parse(readFileSync(join(ROOT, "npm", p, "package.json"), "utf8"));
    const [system, arch, abi] = p.split("-");
    assert.equal(pkg.name, platform.packageName(p), p);
    assert.equal(pkg.version, version, `${p}: version`);
    assert.equal(pkg.main, platform.binaryName(p), `${p}: main`);
    assert.deepEqual(pkg.files, [platform.binaryName(p)], `${p}: files`);
    assert.deepEqual(pkg.os, [os[system]], `${p}: os`);
    assert.deepEqual(pkg.cpu, [arch], `${p}: cpu`);
    if (system === "linux") assert.deepEqual(pkg.libc, [abi === "musl" ? "musl" : "glibc"], `${p}: libc`);
  }
});
