/**
 * src/browser.ts is the library without Node: nothing it imports, directly or through other modules,
 * may be a node: builtin or a package a browser cannot load (tests/browser.test.ts then loads it in
 * Chromium). Type-only imports are erased and dynamic import() calls sit behind runtime checks, so
 * both are left out. A static walk of the import graph, so it runs everywhere, Chromium or not.
 */
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { test } from "node:test";

const ROOT = resolve(dirname(new URL(import.meta.url).pathname), "..");
/** packages the browser entry may import (each resolvable in a page; see tests/browser/model.html) */
const BROWSER_PACKAGES = new Set(["js-tiktoken/ranks/gpt2", "fflate"]);

/** static, non-type import and export-from specifiers of a TypeScript file */
function specifiers(file: string): string[] {
  const text = readFileSync(file, "utf8");
  const out: string[] = [];
  for (const m of text.matchAll(/^(import|export)\s+(type\s+)?([^;]*?)\s+from\s+"([^"]+)";/gms)) {
    if (m[2]) continue; // import type / export type
    out.push(m[4] as string);
  }
  for (const m of text.matchAll(/^import\s+"([^"]+)";/gm)) out.push(m[1] as string);
  return out;
}

/** every module the entry reaches: file -> the chain of imports that led there */
function walk(entry: string): { files: Map<string, string[]>; external: { spec: string; chain: string[] }[] } {
  const files = new Map<string, string[]>([[entry, [entry]]]);
  const external: { spec: string; chain: string[] }[] = [];
  const queue = [entry];
  while (queue.length > 0) {
    const file = queue.shift() as string;
    const chain = files.get(file) as string[];
    for (const spec of specifiers(file)) {
      if (!spec.startsWith(".")) {
        external.push({ spec, chain });
        continue;
      }
      const target = resolve(dirname(file), spec.replace(/\.js$/, ".ts"));
      assert.ok(existsSync(target), `${relative(ROOT, file)} imports ${spec}, which does not exist`);
      if (!files.has(target)) {
        files.set(target, [...chain, target]);
        queue.push(target);
      }
    }
  }
  return { files, external };
}

test("src/browser.ts reaches no node: builtin and no package a browser cannot load", () => {
  const { files, external } = walk(join(ROOT, "src/browser.ts"));
  assert.ok(files.size > 40, `only ${files.size} modules reached: the walk is broken`);
  const bad = external
    .filter((e) => !BROWSER_PACKAGES.has(e.spec))
    .map((e) => `${e.spec} via ${e.chain.map((f) => relative(ROOT, f)).join(" -> ")}`);
  assert.deepEqual(bad, []);
});

test("the walk sees what src/index.ts adds for Node (so the check above can fail)", () => {
  const { external } = walk(join(ROOT, "src/index.ts"));
  const builtins = new Set(external.map((e) => e.spec).filter((s) => s.startsWith("node:")));
  assert.ok(builtins.has("node:fs"), `node:fs not found among ${[...builtins].join(", ")}`);
});
