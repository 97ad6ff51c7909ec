// Run by io-errors.test.mjs as the user `nobody`: argv `<ref|ours> <base>`. `base/root-owned`
// (holding a store) may not be written by this user, `base/own` is its own. Prints one JSON line.
import { chmodSync, readdirSync } from "node:fs";
import { join } from "node:path";

const [impl, base] = process.argv.slice(2);
const { Store } = impl === "ref" ? await import("@backloghq/opslog") : await import("../../index.mjs");
const describe = (e) => ({ isError: e instanceof Error, message: e.message, errno: e.errno, code: e.code, syscall: e.syscall, path: e.path });
const refusal = (promise) => promise.then(() => ({ resolved: true }), describe);

const out = {};
out.newDir = await refusal(new Store().open(join(base, "root-owned", "new")));
out.existing = await refusal(new Store().open(join(base, "root-owned", "store")));

const own = join(base, "own");
const s = new Store();
await s.open(own);
for (let i = 0; i < 20; i++) await s.set(`k${i}`, { i });
chmodSync(join(own, "snapshots"), 0o555);
out.compact = await refusal(s.compact());
const setAfterRefusal = await s.set("after", { ok: true }).then(() => true, () => false);
chmodSync(join(own, "snapshots"), 0o755);
await s.compact();
await s.close();
const again = new Store();
await again.open(own, { readOnly: true });
const count = again.count();
await again.close();
const tmp = readdirSync(own, { recursive: true }).filter((f) => String(f).endsWith(".tmp"));
out.after = { setAfterRefusal, count, tmp };
process.stdout.write(`${JSON.stringify(out)}\n`);
