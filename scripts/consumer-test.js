#!/usr/bin/env node
// The install test of issue "install it like any napi-rs package": packs this package and its
// platform package, installs them into empty projects with no Rust toolchain on PATH (under our
// own name and under the alias @backloghq/opslog), then runs ESM and CommonJS consumers and
// compiles a TypeScript program written against the reference's typings with tsc --strict
// (against the reference too, to prove the program is the reference's).
"use strict";
const { execFileSync, spawnSync } = require("node:child_process");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const { PACKAGE_NAME, CLI_NAME, platformTriple, packageName } = require("../lib/platform");

const root = path.join(__dirname, "..");
const fixtures = path.join(root, "__test__", "consumer");
const work = fs.mkdtempSync(path.join(os.tmpdir(), "opslog-consumer-"));
const triple = platformTriple();
const env = { ...process.env, PATH: consumerPath(path.join(work, "bin")), npm_config_audit: "false", npm_config_fund: "false", npm_config_update_notifier: "false" };

// A consumer machine has no Rust toolchain: PATH is one directory holding links to this node,
// npm and the shell npm runs install scripts with, so cargo and rustc are absent by construction.
function consumerPath(bin) {
  const which = (name) => {
    for (const dir of process.env.PATH.split(path.delimiter)) {
      const file = path.join(dir, name);
      if (fs.existsSync(file)) return file;
    }
    throw new Error(`consumer test: '${name}' is not on PATH`);
  };
  const tools = {
    node: process.execPath,
    npm: process.env.npm_execpath && /npm-cli\.js$/.test(process.env.npm_execpath) ? process.env.npm_execpath : which("npm"),
    sh: which("sh"),
  };
  fs.mkdirSync(bin);
  for (const [name, target] of Object.entries(tools)) fs.symlinkSync(fs.realpathSync(target), path.join(bin, name));
  for (const absent of ["cargo", "rustc"]) {
    if (spawnSync(absent, ["--version"], { env: { PATH: bin }, stdio: "ignore" }).error?.code !== "ENOENT") {
      throw new Error(`consumer test: '${absent}' is reachable from the consumer PATH ${bin}`);
    }
  }
  return bin;
}

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
const platformDep = { [packageName(triple)]: tarball(platform) };

let ours;
for (const [name, spec] of [[PACKAGE_NAME, tarball(main)], ["@backloghq/opslog", tarball(main)]]) {
  const dir = project(`consumer-${name.replace(/\W/g, "-")}`, { [name]: spec, ...platformDep });
  for (const file of ["esm.mjs", "cjs.cjs"]) {
    fs.writeFileSync(path.join(dir, file), fs.readFileSync(path.join(fixtures, file), "utf8").replaceAll("PACKAGE", name));
    console.log(`${name}: ${run(process.execPath, [file], dir).trim()}`);
  }
  // The operator CLI, as `npx opslog-native` (npm exec) finds it in a project that installed it.
  const store = path.join(dir, "cli-store");
  const write = `import { Store } from ${JSON.stringify(name)}; const s = new Store(); await s.open(${JSON.stringify(store)}); await s.set("a", {}); await s.close();`;
  run(process.execPath, ["--input-type=module", "-e", write], dir);
  const verified = run("npm", ["exec", "--no", "--", CLI_NAME, "verify", store], dir).trim();
  console.log(`${name}: npx ${CLI_NAME} verify: ${verified}`);
  if (name === "@backloghq/opslog") ours = typecheckAndRun(dir, `${PACKAGE_NAME} under the alias`);
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
