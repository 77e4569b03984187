// --backend webgpu through the real CLI, on the adapter tests/webgpu-env.ts finds (SwiftShader):
// a tiny model trained on the GPU (parameters, gradients and AdamW moments there; checkpoints read
// back) generates on the GPU the greedy text wasm generates from it; the chosen adapter is printed;
// the learning views (generate --explain, attention, explain-step) and interactive mode run there. Without an adapter, --backend webgpu is one line,
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

  // the learning views run there too, reading each pass's values back together: generate --explain
  // draws wasm's tokens, attention and explain-step finish (the loss near wasm's)
  const explain = (backend: string) => runCli([...generate, "--backend", backend, "--explain"], { env });
  const drawn = (out: string) => [...out.matchAll(/-> "(.*)"\n/g)].map((m) => m[1]).concat(out.split("== text\n")[1] ?? "");
  const [explainedWasm, explainedGpu] = [explain("wasm"), explain("webgpu")];
  assert.equal(explainedGpu.status, 0, explainedGpu.stderr);
  assert.match(explainedGpu.stdout, /== forward pass over \d+ tokens/);
  assert.deepEqual(drawn(explainedGpu.stdout), drawn(explainedWasm.stdout));
  const attention = runCli(["attention", "--model", out, "--prompt", "the sea", "--out", join(dir, "att.html"), "--backend", "webgpu"], {
    env,
  });
  assert.equal(attention.status, 0, attention.stderr);
  assert.match(attention.stdout, /^wrote .*att\.html: 1 layer x 2 heads over \d+ tokens\n/);
  const lossOf = (backend: string) => {
    const r = runCli(["explain-step", "--model", out, "--text", "the whale and the sea", "--backend", backend], { env });
    assert.equal(r.status, 0, r.stderr);
    return Number(/== loss: .* = (\d+\.\d+)/.exec(r.stdout)?.[1]);
  };
  assert.ok(Math.abs(lossOf("webgpu") - lossOf("wasm")) <= 2e-4);

  // interactive mode: generate (sampled) and Enter to continue give wasm's text; analyze works
  const script = "1\n1\n/max 12\nthe whale\n\n/mode\n3\n/quit\n";
  const session = (backend: string) => runCli(["interactive", "--dir", out, "--backend", backend], { env, input: script });
  const [sessionWasm, sessionGpu] = [session("wasm"), session("webgpu")];
  assert.equal(sessionGpu.status, 0, sessionGpu.stderr);
  assert.match(sessionGpu.stdout, /parameters: [\d,]+ total/);
  assert.equal(sessionGpu.stdout, sessionWasm.stdout);
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
