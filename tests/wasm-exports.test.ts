// The wasm kernels' exports' TypeScript types (src/kernels/wasm/build/exports.ts) are generated from
// the AssemblyScript source by the build and committed: they must be what the build makes now, and
// name exactly the functions the built .wasm exports.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { setFlagsFromString } from "node:v8";
import { exportsFile, exportsTs } from "../scripts/wasm-sources.mjs";

test("src/kernels/wasm/build/exports.ts is what scripts/build-wasm.mjs writes (run npm run build:wasm)", () => {
  assert.equal(readFileSync(exportsFile, "utf8"), exportsTs());
});

test("exports.ts names exactly the functions each built .wasm exports", () => {
  setFlagsFromString("--experimental-wasm-relaxed-simd"); // Node 20 compiles relaxed SIMD only with it
  const declared = [...exportsTs().matchAll(/^ {2}(\w+)\(/gm)].map((m) => m[1]).sort();
  for (const name of ["kernels-simd.wasm", "kernels-relaxed.wasm"]) {
    const bytes = readFileSync(join(exportsFile, "..", name));
    const exported = WebAssembly.Module.exports(new WebAssembly.Module(bytes))
      .filter((e) => e.kind === "function")
      .map((e) => e.name)
      .sort();
    assert.deepEqual(exported, declared, name);
  }
});
