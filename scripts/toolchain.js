"use strict";
// The cross toolchain: what building and checking for other targets needs on a Debian/Ubuntu
// machine, installed on first use (apt packages as root, a Python venv in the cache).
//
// rustup cannot download other targets' standard libraries here, so the route is Debian's
// `rustc-web` 1.96 with its std sources (`rust-web-src`): `-Z build-std` compiles std for the
// target (RUSTC_BOOTSTRAP=1 unlocks the flag on this stable compiler). zig (PyPI `ziglang`,
// through `cargo-zigbuild`) is the linker: it carries glibc stubs of any version and musl, so
// the arm64 addon links against glibc 2.17 symbols and the musl one against zig's musl.
const { execFileSync, spawnSync } = require("node:child_process");
const { PACKAGE_NAME } = require("../lib/platform");
const fs = require("node:fs");
const path = require("node:path");
const { cacheRoot } = require("./node-dist");

const SYSROOT_RUSTC = "/usr/bin/rustc";
const SYSROOT_CARGO = "/usr/bin/cargo";
const ZIG_PACKAGES = ["ziglang==0.17.1", "cargo-zigbuild==0.24.1"];
// The arm64 runtime the official arm64 Node needs under qemu (libc, libstdc++, libgcc_s).
const QEMU_PACKAGES = ["qemu-user-static", "libc6-arm64-cross", "libstdc++6-arm64-cross", "libgcc-s1-arm64-cross"];
const RUST_PACKAGES = ["rustc-web", "cargo-web", "rust-web-src"];
const ARM64_SYSROOT = "/usr/aarch64-linux-gnu";

const crossTargetDir = () => path.join(cacheRoot(), "cross-target");
const zigVenv = () => path.join(cacheRoot(), "zig-venv");

const installed = (pkg) =>
  spawnSync("dpkg-query", ["-W", "-f=${Status}", pkg], { encoding: "utf8" }).stdout?.includes("install ok installed");

let aptUpdated = false;
function aptInstall(packages) {
  const missing = packages.filter((p) => !installed(p));
  if (!missing.length) return;
  if (process.getuid?.() !== 0) {
    throw new Error(`${PACKAGE_NAME}: the cross toolchain needs the Debian packages ${missing.join(" ")}; install them (as root: apt-get install ${missing.join(" ")})`);
  }
  console.error(`installing ${missing.join(" ")} (apt)`);
  if (!aptUpdated) {
    execFileSync("apt-get", ["update", "-qq"], { stdio: ["ignore", "ignore", "inherit"] });
    aptUpdated = true;
  }
  execFileSync("apt-get", ["install", "-y", "-qq", "--no-install-recommends", ...missing], {
    stdio: ["ignore", "ignore", "inherit"],
    env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
  });
}

function ensureZig() {
  const bin = path.join(zigVenv(), "bin");
  if (fs.existsSync(path.join(bin, "cargo-zigbuild")) && fs.existsSync(path.join(bin, "python-zig"))) return bin;
  if (!fs.existsSync(path.join(bin, "pip"))) {
    if (spawnSync("python3", ["-m", "venv", "--help"], { stdio: "ignore" }).status !== 0) aptInstall(["python3-venv"]);
    execFileSync("python3", ["-m", "venv", zigVenv()], { stdio: "inherit" });
  }
  console.error(`installing ${ZIG_PACKAGES.join(" ")} (PyPI) into ${zigVenv()}`);
  execFileSync(path.join(bin, "pip"), ["install", "-q", ...ZIG_PACKAGES], { stdio: "inherit" });
  return bin;
}

// The environment for `cargo` with `-Z build-std` on Debian's compiler, zig on PATH.
function crossEnv({ zig = false } = {}) {
  aptInstall(RUST_PACKAGES);
  const bin = zig ? [ensureZig()] : [];
  return {
    ...process.env,
    // Debian's cargo and rustc, not a rustup proxy: only they have the std sources.
    PATH: [...bin, path.dirname(SYSROOT_CARGO), process.env.PATH].join(path.delimiter),
    RUSTC: SYSROOT_RUSTC,
    RUSTC_BOOTSTRAP: "1",
    CARGO_TARGET_DIR: crossTargetDir(),
    ...Object.fromEntries(Object.entries(TARGET_RUSTFLAGS).map(([triple, flags]) => [rustflagsVar(triple), flags])),
  };
}

const BUILD_STD = ["-Z", "build-std=std,panic_abort"];

// Per-target compiler flags. musl targets default to a static C runtime, with which a cdylib
// (the addon) cannot be linked: cargo would silently drop the crate type.
const TARGET_RUSTFLAGS = { "x86_64-unknown-linux-musl": "-C target-feature=-crt-static" };
const rustflagsVar = (triple) => `CARGO_TARGET_${triple.toUpperCase().replace(/-/g, "_")}_RUSTFLAGS`;

// The prefix that runs an arm64 program here (no binfmt registration: in a container that
// would change the host).
function qemuArm64Prefix() {
  aptInstall(QEMU_PACKAGES);
  return ["qemu-aarch64-static", "-L", ARM64_SYSROOT];
}

module.exports = { crossEnv, crossTargetDir, qemuArm64Prefix, aptInstall, BUILD_STD, SYSROOT_CARGO };
