"use strict";
// The napi-rs style platform name of this machine, e.g. "linux-x64-gnu".
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

module.exports = { platformTriple, binaryName: (triple = platformTriple()) => `opslog-native.${triple}.node` };
