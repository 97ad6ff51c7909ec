"use strict";
// The napi-rs style platform name of this machine (e.g. "linux-x64-gnu") and the names derived
// from it: the addon file of a local build and the npm package that carries a prebuilt one.
function platformTriple() {
  const { platform, arch } = process;
  if (platform === "linux") {
    const report = typeof process.report?.getReport === "function" ? process.report.getReport() : null;
    const glibc = report?.header?.glibcVersionRuntime;
    return `linux-${arch}-${glibc ? "gnu" : "musl"}`;
  }
  if (platform === "win32") return `win32-${arch}-msvc`;
  return `${platform}-${arch}`;
}

const binaryName = (triple = platformTriple()) => `opslog-native.${triple}.node`;
const packageName = (triple = platformTriple()) => `opslog-native-${triple}`;

module.exports = { platformTriple, binaryName, packageName };
