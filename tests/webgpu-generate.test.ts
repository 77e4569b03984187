// Generation with the KV cache on the GPU backend against wasm: from the same weights, the logits
// of every step (the prompt's prefill, one-token decodes against the cache on the device, and the
// refills once the window slides past the block size) are within 1e-4 of wasm's, and greedy
// decoding gives the same tokens. The GPU steps read back only each token's logits
// (Decoder.stepAsync). Like tests/webgpu-train.test.ts it runs itself in a child on SwiftShader's
// Vulkan driver (tests/webgpu-env.ts), and skips with one line when no adapter can be had.
import assert from "node:assert/strict";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { MinigptError } from "../src/errors.js";
import {
  explainTrainingStep,
  explainTrainingStepAsync,
  type ForwardTrace,
  type StageRecord,
  traceForward,
  traceForwardAsync,
} from "../src/explain/explain.js";
import { Decoder, generate, generateAsync } from "../src/generate/generate.js";
import { type BackendName, backend, useBackend } from "../src/kernels/index.js";
import type { WebGpuBackend } from "../src/kernels/webgpu/index.js";
import { makeConfig } from "../src/nn/config.js";
import { GPT, parameterShapes } from "../src/nn/gpt.js";
import { Rng } from "../src/random.js";
import { Tensor } from "../src/tensor/tensor.js";
import { TEMPERATURE_DRAWS, temperatureDraws } from "./temperature-draws.js";
import { runInWebgpuChild } from "./webgpu-env.js";

const config = makeConfig({ vocabSize: 40, blockSize: 16, nLayer: 2, nHead: 4, nEmbd: 32 });
const prompt = [3, 1, 4, 1, 5];
// past the block size: the last tokens come from refilled windows
const NEW_TOKENS = 20;

/**
 * Weights far from GPT-2's small init (N(0, 0.3), LayerNorm gains near 1), so that the logits are
 * spread and greedy choices are not near ties that rounding could flip.
 */
function weights(): Map<string, { shape: number[]; data: Float32Array }> {
  const rng = new Rng(11);
  const map = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [name, shape] of parameterShapes(config)) {
    const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
    const gain = name.includes(".ln_") && name.endsWith(".weight") ? 1 : 0;
    for (let i = 0; i < data.length; i++) data[i] = gain + rng.normal() * 0.3;
    map.set(name, { shape, data });
  }
  return map;
}

/** greedy tokens and every step's logits with the KV cache on `name` (async steps: every backend) */
async function decodeOn(name: BackendName): Promise<{ ids: number[]; logits: Float32Array[] }> {
  await useBackend(name, { threads: 1 });
  const model = new GPT(config, 1);
  model.loadWeights(weights(), "test weights");
  const decoder = new Decoder(model, prompt, { maxNewTokens: NEW_TOKENS, temperature: 0 });
  const ids: number[] = [];
  const logits: Float32Array[] = [];
  try {
    for (let s = await decoder.stepAsync(); s; s = await decoder.stepAsync()) {
      ids.push(s.id);
      logits.push(s.logits);
    }
  } finally {
    decoder.dispose();
  }
  // without the cache (the whole window each token) the same tokens
  assert.deepEqual(await generateAsync(model, prompt, { maxNewTokens: NEW_TOKENS, temperature: 0, cache: false }), ids);
  if (name === "webgpu") {
    // the synchronous API cannot read a GPU tensor, and says what to use
    assert.throws(() => generate(model, prompt, { maxNewTokens: 1 }), /GPU memory.*await t\.read\(\)/);
  } else assert.deepEqual(generate(model, prompt, { maxNewTokens: NEW_TOKENS, temperature: 0 }), ids);
  model.dispose();
  return { ids, logits };
}

if (process.env.MINIGPT_WEBGPU_CHILD) {
  test("generation with the KV cache on webgpu: wasm's logits within 1e-4 and the same greedy tokens", async (t) => {
    const wasm = await decodeOn("wasm");
    const gpu = await decodeOn("webgpu");
    assert.equal(wasm.ids.length, NEW_TOKENS);
    assert.ok(prompt.length + NEW_TOKENS > config.blockSize, "the run slides past the block size");
    let worst = 0;
    wasm.logits.forEach((w, step) => {
      const g = gpu.logits[step] as Float32Array;
      assert.equal(g.length, config.vocabSize);
      for (let i = 0; i < w.length; i++) worst = Math.max(worst, Math.abs((g[i] as number) - (w[i] as number)));
    });
    t.diagnostic(`greedy ${wasm.ids.join(" ")}; largest logit difference ${worst.toExponential(2)}`);
    assert.deepEqual(gpu.ids, wasm.ids);
    assert.ok(worst <= 1e-4, `logits differ by up to ${worst}`);
  });

  test("the learning views on webgpu (traceForwardAsync, explainTrainingStepAsync): wasm's synchronous forms within 1e-4", async (t) => {
    const ids = prompt.concat([2, 7, 1, 8]);
    const targets = ids.slice(1).concat([0]);
    const on = async (name: BackendName) => {
      await useBackend(name, { threads: 1 });
      const model = new GPT(config, 1);
      model.loadWeights(weights(), "test weights");
      try {
        if (name === "webgpu") {
          assert.throws(() => traceForward(model, ids), /GPU memory/);
          return { trace: await traceForwardAsync(model, ids), step: await explainTrainingStepAsync(model, ids, targets) };
        }
        return { trace: traceForward(model, ids), step: explainTrainingStep(model, ids, targets) };
      } finally {
        model.dispose();
      }
    };
    const wasm = await on("wasm");
    const gpu = await on("webgpu");
    let worst = 0;
    const near = (g: ArrayLike<number>, w: ArrayLike<number>, what: string) => {
      assert.equal(g.length, w.length, what);
      for (let i = 0; i < w.length; i++) {
        const d = Math.abs((g[i] as number) - (w[i] as number)) / Math.max(1, Math.abs(w[i] as number));
        worst = Math.max(worst, d);
        assert.ok(d <= 1e-4, `${what}[${i}]: ${g[i]} vs ${w[i]}`);
      }
    };
    const sameTrace = (g: ForwardTrace, w: ForwardTrace, what: string) => {
      assert.deepEqual(
        g.stages.map((s) => s.name),
        w.stages.map((s) => s.name),
      );
      g.stages.forEach((s, i) => {
        const ws = w.stages[i] as StageRecord;
        near([s.mean, s.std, ...s.last], [ws.mean, ws.std, ...ws.last], `${what} ${s.name}`);
      });
      for (const [l, heads] of g.attention.entries())
        for (const [k, h] of heads.entries()) near(h, w.attention[l]?.[k] ?? [], `${what} attention ${l}.${k}`);
      near(g.nextLogits, w.nextLogits, `${what} logits`);
    };
    sameTrace(gpu.trace, wasm.trace, "trace");
    sameTrace(gpu.step.trace, wasm.step.trace, "step's trace");
    const g = gpu.step;
    const w = wasm.step;
    near(
      [g.loss, g.gradNorm, ...g.groups.flatMap((x) => [x.gradNorm, x.weightNorm]), ...g.tensors.flatMap((x) => [x.gradNorm, x.weightNorm])],
      [w.loss, w.gradNorm, ...w.groups.flatMap((x) => [x.gradNorm, x.weightNorm]), ...w.tensors.flatMap((x) => [x.gradNorm, x.weightNorm])],
      "step",
    );
    t.diagnostic(`learning views: largest relative difference ${worst.toExponential(2)}`);
  });

  test("plain temperature sampling on webgpu (no sampleTemperature kernel) draws what its float64 definition draws, vocabularies of 4,096 and 50,257 too", async (t) => {
    await useBackend("webgpu");
    const r = await temperatureDraws();
    t.diagnostic(`${r.draws} draws`);
    assert.deepEqual(r.mismatches, []);
    assert.equal(r.draws, TEMPERATURE_DRAWS);
  });

  test("a tensor larger than the adapter's largest buffer is a one-line error", () => {
    // the webgpu backend is current from the test above
    const { limits } = (backend() as WebGpuBackend).runtime.device;
    const max = Math.min(limits.maxStorageBufferBindingSize, limits.maxBufferSize);
    assert.throws(
      () => new Tensor([max / 4 + 1]),
      (e: unknown) =>
        e instanceof MinigptError &&
        /^webgpu: a tensor of \d+ MiB does not fit this adapter, whose largest buffer is \d+ MiB[^\n]*$/.test(e.message),
    );
  });
} else {
  test("generation with the KV cache on webgpu matches wasm, in a child process on the available adapter", (t) => {
    runInWebgpuChild(t, fileURLToPath(import.meta.url), { show: /largest/ });
  });
}
