// CommonJS consumer.
const m = require("PACKAGE");
const { mkdtempSync } = require("node:fs");
const { tmpdir } = require("node:os");
const { join } = require("node:path");

(async () => {
  const dir = mkdtempSync(join(tmpdir(), "opslog-cjs-"));
  const s = new m.Store();
  await s.open(dir);
  await s.set("b", { v: 2 });
  await s.close();
  const r = new m.Store();
  await r.open(dir, { readOnly: true });
  console.log(`cjs ok ${JSON.stringify(r.get("b"))} ${typeof m.FsBackend}`);
  await r.close();
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
