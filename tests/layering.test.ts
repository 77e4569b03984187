// The library's layers as docs/architecture.md draws them, checked on the source: src/train/ reaches
// the kernels only through their public API (src/kernels/index.ts), and names settings, not the
// CLI's flags (src/wording.ts; a suggested command line, "minigpt ...", is the exception).
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import test from "node:test";

const TRAIN = "src/train";
const sources = readdirSync(TRAIN)
  .filter((f) => f.endsWith(".ts"))
  .map((f) => ({ file: join(TRAIN, f), lines: readFileSync(join(TRAIN, f), "utf8").split("\n") }));

test("src/train/ imports no kernel internals: only src/kernels/index.ts", () => {
  for (const { file, lines } of sources)
    for (const line of lines)
      if (/^\s*(import|export) .* from "\.\.\/kernels\//.test(line)) assert.match(line, /"\.\.\/kernels\/index\.js"/, `${file}: ${line}`);
});

test("src/train/ words no message with a command-line flag", () => {
  for (const { file, lines } of sources)
    for (const line of lines) {
      if (/^\s*(\/\/|\*|\/\*)/.test(line) || line.includes("minigpt ")) continue;
      assert.doesNotMatch(line, /[`"][^`"]*(?<![\w-])--[a-z]/, `${file}: ${line.trim()}`);
    }
});

test("every export of src/ is used by another file (scripts/unused-exports.mjs): a module's own helpers stay its own", () => {
  const r = spawnSync(process.execPath, ["scripts/unused-exports.mjs"], { encoding: "utf8" });
  assert.equal(r.stdout.trim(), "every export of src/ is used by another file", r.stderr);
  assert.equal(r.status, 0);
});
