// Chooses the implementation under test. OPSLOG_IMPL=reference runs a test file against
// @backloghq/opslog@0.8.1 (to check that the test itself describes the reference's behaviour).
export const isReference = process.env.OPSLOG_IMPL === "reference";
const mod = isReference ? await import("@backloghq/opslog") : await import("../../index.mjs");
export const { Store } = mod;
export default mod;
