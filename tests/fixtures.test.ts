/**
 * The model against PyTorch: logits, loss, every gradient, and the weights after 1 and 3 AdamW steps,
 * for every fixture folder (see tests/helpers.ts for where they come from). A fixture the engine
 * cannot handle fails; nothing is skipped. The check itself is tests/fixture-check.ts, which the
 * browser test also runs in a page.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { loadModel } from "../src/io/hf.js";
import { readSafetensorsFile } from "../src/io/safetensors-file.js";
import { useBackend } from "../src/kernels/index.js";
import { checkFixture, type FixtureData } from "./fixture-check.js";
import { fixtureFolders } from "./helpers.js";

const folders = fixtureFolders();
// every fixture on both backends, with the same tolerances
const backends = ["ref", "wasm"] as const;

test("fixture folders are found", () => {
  assert.ok(folders.length >= 2, `found ${folders.length} fixture folders`);
});

for (const { name, dir } of folders)
  for (const backendName of backends) {
    test(`${name} matches PyTorch [${backendName}]`, async (t) => {
      await useBackend(backendName);
      const model = loadModel(dir);
      const data: FixtureData = {
        expected: readSafetensorsFile(join(dir, "expected.safetensors")).tensors,
        json: JSON.parse(readFileSync(join(dir, "expected.json"), "utf8")) as FixtureData["json"],
        batch: readSafetensorsFile(join(dir, "batch.safetensors")).tensors,
      };
      let checks: ReturnType<typeof checkFixture>;
      try {
        checks = checkFixture(model, data);
      } finally {
        model.dispose();
      }
      const worst = [...checks].sort((a, b) => b.maxAbsDiff - a.maxAbsDiff).slice(0, 3);
      t.diagnostic(
        `${checks.length} tensors compared; largest max-abs-diff: ${worst.map((c) => `${c.label} ${c.maxAbsDiff.toExponential(2)}`).join(", ")}`,
      );
      const failures = checks.filter((c) => !c.ok).map((c) => `${c.label}: max-abs-diff ${c.maxAbsDiff.toExponential(2)}`);
      assert.deepEqual(failures, [], `mismatches against PyTorch in ${dir}:\n${failures.join("\n")}`);
    });
  }
