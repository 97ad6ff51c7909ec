"use strict";
// A progress bar on stderr, drawn only when stderr is a terminal and the work takes long enough
// to be worth one; with anything else on stderr (a pipe, a file) nothing is written.

const DELAY_MS = 300;
const EVERY_MS = 100;
const WIDTH = 30;

/**
 * `poll()` returns `[done, total]` (total 0: not known); `unit`: "bytes", a noun for counts, or
 * null for work whose progress cannot be seen (only the time is shown). Returns `stop()`, which clears the bar.
 */
function startProgress(label, poll, unit, { stream = process.stderr, delayMs = DELAY_MS } = {}) {
  if (!stream.isTTY) return () => {};
  const started = Date.now();
  let drawn = false;
  const draw = () => {
    const [done, total] = poll();
    const secs = ((Date.now() - started) / 1000).toFixed(1);
    let line;
    if (unit == null) {
      line = `${label} ${secs}s`;
    } else if (total > 0) {
      const frac = Math.min(1, done / total);
      const filled = Math.round(frac * WIDTH);
      line = `${label} [${"#".repeat(filled)}${"-".repeat(WIDTH - filled)}] ${(frac * 100).toFixed(0).padStart(3)}% ${amount(done, unit)} / ${amount(total, unit)} ${secs}s`;
    } else {
      line = `${label} ${amount(done, unit)} ${secs}s`;
    }
    stream.write(`\r${line}\x1b[K`);
    drawn = true;
  };
  // Short work ends before the bar would appear, and leaves no trace.
  const interval = setInterval(() => {
    if (Date.now() - started >= delayMs) draw();
  }, EVERY_MS);
  interval.unref();
  return () => {
    clearInterval(interval);
    if (drawn) stream.write("\r\x1b[K");
  };
}

function amount(n, unit) {
  return unit === "bytes" ? formatBytes(n) : `${n.toLocaleString("en-US")} ${unit}`;
}

/** Sizes as people read them: 512 B, 1.5 KB, 2.3 MB (powers of 1024). */
function formatBytes(n) {
  if (n == null) return "-";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${v} B` : `${v.toFixed(1)} ${units[i]}`;
}

module.exports = { startProgress, formatBytes };
