/**
 * The model against PyTorch: logits, loss, every gradient, and the weights after 1 and 3 AdamW steps,
 * for every fixture folder (see tests/helpers.ts for where they come from). A fixture the engine
 * cannot handle fails; nothing is skipped. The check itself is tests/fixture-check.ts, which the
 * browser test also runs in a page.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { loadModel } from "../src/io/hf.js";
import { readSafetensorsFile } from "../src/io/safetensors-file.js";
import { useBackend } from "../src/kernels/index.js";
import { checkFixture, type FixtureData } from "./fixture-check.js";
import { fixtureFolders } from "./helpers.js";
import { webgpuEnv, webgpuUnavailable } from "./webgpu-env.js";

const folders = fixtureFolders();
// every fixture on both CPU backends, with the same tolerances; with MINIGPT_BACKEND=webgpu, on the GPU
// backend alone (the run below starts this file so, in a child with SwiftShader's Vulkan driver)
const onGpu = process.env.MINIGPT_BACKEND === "webgpu";
const backends = onGpu ? (["webgpu"] as const) : (["ref", "wasm"] as const);

if (!onGpu) {
  test("every fixture matches PyTorch on webgpu too (a child process, MINIGPT_BACKEND=webgpu)", (t) => {
    const why = webgpuUnavailable();
    if (why) {
      t.skip(`webgpu: ${why}`);
      return;
    }
    const r = spawnSync(process.execPath, ["--import", "tsx", "--test-reporter=tap", fileURLToPath(import.meta.url)], {
      env: webgpuEnv({ MINIGPT_BACKEND: "webgpu" }),
      encoding: "utf8",
      timeout: 600_000,
    });
    t.diagnostic(
      r.stdout
        .split("\n")
        .filter((l) => /^(not )?ok|^# [0-9]+ tensors/.test(l.trim()))
        .join("; "),
    );
    if (r.status !== 0) assert.fail(`webgpu child failed, exit ${r.status}:\n${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, /# fail 0/);
  });
}

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
      let checks: Awaited<ReturnType<typeof checkFixture>>;
      try {
        checks = await checkFixture(model, data);
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
