// Runs every tests/**/*.test.ts with Node's built-in test runner (Node 20 has no --test globs).
// Usage: npm test [-- substring ...]  to run only the test files whose path contains a substring.
import { spawnSync } from "node:child_process";
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";

function walk(dir) {
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) {
      if (name !== "fixtures") out.push(...walk(p));
    } else if (name.endsWith(".test.ts")) out.push(p);
  }
  return out;
}

const filters = process.argv.slice(2);
const files = walk("tests").filter((f) => filters.length === 0 || filters.some((s) => f.includes(s)));
if (files.length === 0) {
  console.error("no test files matched");
  process.exit(1);
}
// A test that hangs (a worker that never answers) fails after TEST_TIMEOUT_MS instead of holding CI
// until its limit; the slowest test here (the browser suite's setup, a training run) takes ~1 minute.
const TEST_TIMEOUT_MS = 15 * 60_000;
const r = spawnSync(
  process.execPath,
  [
    "--import",
    "tsx",
    "--import",
    "./scripts/exit-guard.mjs",
    "--test",
    "--test-concurrency=1",
    `--test-timeout=${TEST_TIMEOUT_MS}`,
    ...files,
  ],
  { stdio: "inherit" },
);
if (r.error) console.error(`could not run the tests: ${r.error.message}`);
process.exit(r.status ?? 1);
