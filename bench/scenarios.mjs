// The scenarios of the benchmark (issue 5): what each measures, its size at full scale, the
// fixture it starts from, and the target of each figure.
//
// Every figure has a `ratio` orientation so that a ratio above 1 always means "ours is better",
// except for memory, where the ratio is ours / reference (below 1 is better):
//   ops/s: ours / reference        ms: reference / ours ("x faster")        MB: ours / reference
// A target is one of
//   { minRatio }   the ratio is at least this
//   { maxRatio }   the ratio is at most this
//   { maxAbs }     our own figure is at most this (the reference's is shown for comparison)
//   { minAbs }     our own figure is at least this

/** The options of the raw write path: no checkpoint inside the timed loop. */
export const RAW = Object.freeze({ checkpointThreshold: 1e9 });

/** A scenario whose figure is its ops/s, ours over the reference's. */
function opsPerSec(key, title, size, target, unit = "ops/s") {
  return { key, title, size, figures: [{ key: "opsPerSec", unit, ratio: "ours/ref", target }] };
}

/**
 * The raw-path twin of a scenario (issue 16): no checkpoint inside the timed loop
 * (`checkpointThreshold: 1e9`), what users with large thresholds get; `target` is its own.
 * `options` are added to the timed store's open (the agents' too).
 */
function raw(scenario, target) {
  return {
    ...scenario,
    key: `raw-${scenario.key}`,
    title: `raw path: ${scenario.title}`,
    options: RAW,
    figures: scenario.figures.map((f) => ({ ...f, target })),
  };
}

const WRITES = [
  opsPerSec("set-immediate", "5,000 sequential `await set` on new ids, `immediate`", 5_000, { minRatio: 10 }),
  opsPerSec("set-group", "50,000 sequential `await set`, `group`, then `flush`", 50_000, { minRatio: 3 }),
  opsPerSec("set-async", "50,000 sequential `await set`, `async`, then `flush`", 50_000, { minRatio: 3 }),
  opsPerSec("batch", "100,000 sets in batches of 1,000", 100_000, { minRatio: 2 }),
];
const MULTI = opsPerSec(
  "multi",
  "3 agents writing concurrently, multi-writer (5,000 sets each)",
  5_000,
  { minRatio: 1, strict: true },
  "ops/s total",
);
// Each implementation against itself, as the reference's own group-commit test does (it asserts
// group is over 2x immediate): 500 sets in `immediate`, then 500 in `group` + flush, in one
// process, each on a new store. The figure is immediate's time / group's time.
const GROUP_VS_IMMEDIATE = {
  key: "group-vs-immediate",
  title: "`group` vs `immediate` of the same implementation, 500 sets",
  size: 500,
  figures: [{ key: "speedup", unit: "x (immediate ms / group ms)", ratio: "ours/ref", target: { minAbs: 2 } }],
};

export const SCENARIOS = [
  ...WRITES,
  // The raw path's targets, in the order of WRITES.
  ...WRITES.map((s, i) => raw(s, { minRatio: [30, 5, 5, 3][i] })),
  GROUP_VS_IMMEDIATE,
  raw(GROUP_VS_IMMEDIATE, { minAbs: 2 }),
  {
    key: "open",
    title: "`open` of a 1,000,000-record store",
    size: 1_000_000,
    fixture: "records-1m",
    figures: [
      { key: "ms", unit: "ms", ratio: "ref/ours", target: { minRatio: 4 } },
      { key: "rssMB", label: "RSS after `open` of 1,000,000 records", unit: "MB", ratio: "ours/ref", target: { maxRatio: 1.1 } },
      // A large store opens lazily (records decoded on first read): the first full read after
      // open, and RSS once every record is decoded, show what the lazy open moved out of it.
      { key: "scanMs", label: "first `all()` after that `open`", unit: "ms", ratio: "ref/ours" },
      { key: "openAllMs", label: "`open` of 1,000,000 records + the first `all()`", unit: "ms", ratio: "ref/ours", target: { minRatio: 1.5 } },
      { key: "rssScanMB", label: "RSS after that `all()`", unit: "MB", ratio: "ours/ref", target: { maxRatio: 1 } },
    ],
  },
  {
    key: "compact",
    title: "`compact` of 1,000,000 records",
    size: 1_000_000,
    fixture: "records-1m",
    figures: [
      { key: "ms", unit: "ms", ratio: "ref/ours", target: { minRatio: 4 } },
      { key: "stallMs", label: "longest event-loop stall during `compact`", unit: "ms", ratio: "ref/ours", word: "shorter", target: { maxAbs: 5 } },
    ],
  },
  {
    key: "stream",
    title: "`streamSnapshot` over 1,000,000 records",
    size: 1_000_000,
    fixture: "records-1m",
    figures: [
      { key: "ms", unit: "ms", ratio: "ref/ours", target: { minRatio: 4 } },
      { key: "growthMB", label: "RSS growth during `streamSnapshot`", unit: "MB", ratio: "ours/ref", target: { maxAbs: 32 } },
    ],
  },
  {
    key: "walops",
    title: "`getWalOps` over 100,000 ops",
    size: 100_000,
    fixture: "wal-100k",
    figures: [
      { key: "ms", unit: "ms", ratio: "ref/ours", target: { minRatio: 2 } },
      // "Bounded memory": held to the same fixed bound as streamSnapshot.
      { key: "growthMB", label: "RSS growth during `getWalOps`", unit: "MB", ratio: "ours/ref", target: { maxAbs: 64 } },
    ],
  },
  {
    key: "read",
    title: "10 x `filter` and 100,000 x `get` over 100,000 records",
    size: 100_000,
    fixture: "records-100k",
    figures: [{ key: "ms", unit: "ms", ratio: "ref/ours", target: { minRatio: 0.9 } }],
  },
  MULTI,
  raw(MULTI, { minRatio: 5 }),
];

export const byKey = new Map(SCENARIOS.map((s) => [s.key, s]));

/** The ratio of a figure, oriented as described above. */
export function ratioOf(figure, ref, ours) {
  if (!(ref > 0) || !(ours > 0)) return null;
  return figure.ratio === "ref/ours" ? ref / ours : ours / ref;
}

/** Whether our figure meets its target; null for a figure shown for context, without one. */
export function meets(figure, ref, ours) {
  const t = figure.target;
  if (!t) return null;
  if (t.maxAbs !== undefined) return ours <= t.maxAbs;
  if (t.minAbs !== undefined) return ours >= t.minAbs;
  const r = ratioOf(figure, ref, ours);
  if (r === null) return false;
  if (t.minRatio !== undefined) return t.strict ? r > t.minRatio : r >= t.minRatio;
  return r <= t.maxRatio;
}

export function targetText(figure) {
  const t = figure.target;
  if (!t) return "(context)";
  if (t.maxAbs !== undefined) return `≤ ${t.maxAbs} ${figure.unit}`;
  if (t.minAbs !== undefined) return `ours ≥ ${t.minAbs}`;
  if (t.maxRatio !== undefined) return `≤ ${t.maxRatio}x the reference`;
  if (figure.ratio === "ref/ours") return t.minRatio < 1 ? `≥ ${t.minRatio}x (no slower)` : `≥ ${t.minRatio}x faster`;
  return t.strict ? `> ${t.minRatio}x` : `≥ ${t.minRatio}x`;
}
