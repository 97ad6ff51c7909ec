#!/usr/bin/env node
// The install test of issue "install it like any napi-rs package": packs this package and its
// platform package, installs them into empty projects with no Rust toolchain on PATH (under our
// own name and under the alias @backloghq/opslog), then runs ESM and CommonJS consumers and
// compiles a TypeScript program written against the reference's typings with tsc --strict
// (against the reference too, to prove the program is the reference's).
"use strict";
const { execFileSync } = require("node:child_process");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const { platformTriple } = require("../lib/platform");

const root = path.join(__dirname, "..");
const fixtures = path.join(root, "__test__", "consumer");
const work = fs.mkdtempSync(path.join(os.tmpdir(), "opslog-consumer-"));
const triple = platformTriple();
// No cargo: a consumer machine has no Rust toolchain. Directories holding cargo are dropped from
// PATH, and a cargo that fails comes first, for one that shares a directory with npm and node
// (a distribution's /usr/bin), which has to stay.
const noRust = path.join(work, "no-rust");
fs.mkdirSync(noRust);
fs.writeFileSync(path.join(noRust, "cargo"), "#!/bin/sh\necho 'cargo: not installed (consumer test)' >&2\nexit 127\n", { mode: 0o755 });
const keep = (p) => !fs.existsSync(path.join(p, "cargo")) || fs.existsSync(path.join(p, "npm"));
const pathWithoutRust = [noRust, ...process.env.PATH.split(path.delimiter).filter(keep)].join(path.delimiter);
const env = { ...process.env, PATH: pathWithoutRust, npm_config_audit: "false", npm_config_fund: "false", npm_config_update_notifier: "false" };

function run(cmd, args, cwd) {
  return execFileSync(cmd, args, { cwd, env, encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] });
}

function pack(dir) {
  const [info] = JSON.parse(run("npm", ["pack", "--json", "--pack-destination", work], dir));
  return info;
}

execFileSync(process.execPath, [path.join(root, "scripts", "artifacts.js")], { stdio: "inherit" });
const main = pack(require("./stage").stage(path.join(work, "stage")));
const platform = pack(path.join(root, "npm", triple));
const leaked = main.files.filter((f) => /(^|\/)(target|__test__|npm)\/|\.node$/.test(f.path));
if (leaked.length) throw new Error(`the package carries files users don't need: ${leaked.map((f) => f.path)}`);
console.log(`packed ${main.filename}: ${main.files.length} files, ${main.size} bytes (${main.unpackedSize} unpacked)`);
console.log(`packed ${platform.filename}: ${platform.size} bytes (${platform.unpackedSize} unpacked)`);

function project(name, deps) {
  const dir = path.join(work, name);
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, "package.json"), JSON.stringify({ name, private: true, type: "module", dependencies: deps }, null, 2));
  run("npm", ["install", "--no-package-lock"], dir);
  return dir;
}

const tarball = (info) => `file:${path.join(work, info.filename)}`;
const platformDep = { [`opslog-native-${triple}`]: tarball(platform) };

let ours;
for (const [name, spec] of [["opslog-native", tarball(main)], ["@backloghq/opslog", tarball(main)]]) {
  const dir = project(`consumer-${name.replace(/\W/g, "-")}`, { [name]: spec, ...platformDep });
  for (const file of ["esm.mjs", "cjs.cjs"]) {
    fs.writeFileSync(path.join(dir, file), fs.readFileSync(path.join(fixtures, file), "utf8").replaceAll("PACKAGE", name));
    console.log(`${name}: ${run(process.execPath, [file], dir).trim()}`);
  }
  // The operator CLI, as `npx opslog-native` finds it in a project that installed the package.
  const store = path.join(dir, "cli-store");
  const write = `import { Store } from ${JSON.stringify(name)}; const s = new Store(); await s.open(${JSON.stringify(store)}); await s.set("a", {}); await s.close();`;
  run(process.execPath, ["--input-type=module", "-e", write], dir);
  console.log(`${name}: npx opslog-native verify: ${run("npx", ["--no", "opslog-native", "verify", store], dir).trim()}`);
  if (name === "@backloghq/opslog") ours = typecheckAndRun(dir, "opslog-native under the alias");
}

// The same TypeScript program against the reference itself: it compiles and prints the same.
const reference = project("consumer-reference", { "@backloghq/opslog": `file:${path.join(root, "node_modules", "@backloghq", "opslog")}` });
const theirs = typecheckAndRun(reference, "the reference");
if (ours !== theirs) throw new Error(`app.ts printed different results:\n ours: ${ours}\n reference: ${theirs}`);

function typecheckAndRun(dir, label) {
  for (const file of ["app.ts", "tsconfig.json"]) fs.copyFileSync(path.join(fixtures, file), path.join(dir, file));
  const tsc = path.join(root, "node_modules", "typescript", "bin", "tsc");
  run(process.execPath, [tsc, "-p", "tsconfig.json", "--typeRoots", path.join(root, "node_modules", "@types")], dir);
  const output = run(process.execPath, ["dist/app.js"], dir).trim();
  console.log(`tsc --strict: app.ts compiles against ${label}; it prints ${output}`);
  return output;
}

fs.rmSync(work, { recursive: true, force: true });
console.log("consumer test passed");
