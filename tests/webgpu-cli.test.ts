// --backend webgpu through the real CLI, on the adapter tests/webgpu-env.ts finds (SwiftShader):
// a tiny model trained on the GPU (parameters, gradients and AdamW moments there; checkpoints read
// back) generates on the GPU the greedy text wasm generates from it; the chosen adapter is printed;
// a part that reads values on the CPU is one line. Without an adapter, --backend webgpu is one line,
// and a run that did not ask for webgpu never shows Dawn's Vulkan warning.
import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";
import { runCli, tempDir, wordCorpus } from "./helpers.js";
import { webgpuEnv, webgpuUnavailable } from "./webgpu-env.js";

/** the environment of a machine where Dawn finds no Vulkan driver */
const NO_VULKAN = { VK_ICD_FILENAMES: "/nonexistent/icd.json", LD_LIBRARY_PATH: "" };

test("train --backend webgpu, then generate on webgpu (MINIGPT_BACKEND too) gives wasm's greedy text", (t) => {
  const why = webgpuUnavailable();
  if (why) {
    t.skip(`webgpu: ${why}`);
    return;
  }
  const dir = tempDir("minigpt-webgpu-cli-");
  const data = wordCorpus(dir, 3000);
  const out = join(dir, "model");
  const env = webgpuEnv();
  // a tiny model and a high rate, so that 3 steps give logits far from ties
  const tiny = ["--n-layer", "1", "--n-head", "2", "--n-embd", "16", "--block-size", "8", "--batch-size", "2"];
  const steps = ["--max-steps", "3", "--lr", "0.05", "--warmup-steps", "0", "--eval-steps", "1", "--sample-tokens", "0"];
  const trained = runCli(["train", "--backend", "webgpu", "--data", data, "--out", out, ...tiny, ...steps], { env });
  assert.equal(trained.status, 0, trained.stderr);
  assert.match(trained.stderr, /^backend: webgpu on .+/m);
  assert.match(trained.stdout + trained.stderr, /3\/3 loss \d/);

  const generate = ["generate", "--model", out, "--prompt", "the whale", "--temperature", "0", "--max-new-tokens", "8"];
  const wasm = runCli([...generate, "--backend", "wasm"], { env });
  const gpu = runCli(generate, { env: { ...env, MINIGPT_BACKEND: "webgpu" } });
  assert.equal(wasm.status, 0, wasm.stderr);
  assert.equal(gpu.status, 0, gpu.stderr);
  assert.match(gpu.stderr, /^backend: webgpu on /m);
  assert.ok(wasm.stdout.length > "the whale\n".length, "text was generated");
  t.diagnostic(`greedy: ${JSON.stringify(gpu.stdout)}`);
  assert.equal(gpu.stdout, wasm.stdout);

  // the learning view reads activations on the CPU: one line, not a stack trace
  const explain = runCli([...generate, "--backend", "webgpu", "--explain"], { env });
  assert.equal(explain.status, 1);
  assert.match(explain.stderr, /does not run on the webgpu backend yet; use --backend wasm\n$/);
  assert.doesNotMatch(explain.stderr, /\n\s+at /);
});

test("--backend webgpu without an adapter is one line; a default run shows nothing of Dawn", () => {
  const dir = tempDir("minigpt-webgpu-none-");
  const data = wordCorpus(dir, 2000);
  const r = runCli(["train", "--backend", "webgpu", "--data", data, "--out", join(dir, "m"), "--max-steps", "1"], { env: NO_VULKAN });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /^minigpt train: --backend webgpu: .*use --backend wasm\n$/);
  const plain = runCli(
    ["train", "--data", data, "--out", join(dir, "m"), "--max-steps", "1", "--n-layer", "1", "--n-embd", "16", "--sample-tokens", "0"],
    {
      env: NO_VULKAN,
    },
  );
  assert.equal(plain.status, 0, plain.stderr);
  assert.doesNotMatch(plain.stderr, /Vulkan|BackendVk|backend: webgpu/);
});
