// Training on the GPU backend against wasm: 20 steps of a 2-layer, 64-wide model (forward, loss,
// backward, clipping on the device, AdamW) from the same weights on the same batches give losses
// within 1e-4 relative of wasm's. Like tests/kernels-webgpu.test.ts it runs itself in a child with
// SwiftShader's Vulkan driver (tests/webgpu-env.ts), and skips with one line when no adapter is had.
import assert from "node:assert/strict";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { type BackendName, useBackend } from "../src/kernels/index.js";
import { makeConfig } from "../src/nn/config.js";
import { GPT } from "../src/nn/gpt.js";
import { AdamW, clipGradNormAsync } from "../src/optim/adamw.js";
import { Rng } from "../src/random.js";
import { scope, Tensor } from "../src/tensor/tensor.js";
import { runInWebgpuChild } from "./webgpu-env.js";

const STEPS = 20;
const [B, T, V] = [2, 16, 32];

/** the losses of STEPS training steps on `name`, from seed 42's weights, on seed 7's batches */
async function trainLosses(name: BackendName): Promise<number[]> {
  await useBackend(name, { threads: 1 });
  const model = new GPT(makeConfig({ vocabSize: V, blockSize: T, nLayer: 2, nHead: 4, nEmbd: 64 }), 42);
  const opt = new AdamW(model.params, { lr: 1e-2 });
  const rng = new Rng(7);
  const losses: number[] = [];
  try {
    for (let step = 0; step < STEPS; step++) {
      // counting sequences from random starts: learnable, so the losses fall and the check is not of two flat lines
      const starts = Array.from({ length: B }, () => rng.int(V));
      const ids = Array.from({ length: B * (T + 1) }, (_, i) => ((starts[Math.floor(i / (T + 1))] as number) + (i % (T + 1))) % V);
      const rows = (shift: number) => Array.from({ length: B * T }, (_, i) => ids[Math.floor(i / T) * (T + 1) + (i % T) + shift] as number);
      // the loss's read is started inside the scope (ordered before its memory is reused) and awaited after
      const loss = scope(() => {
        model.zeroGrad();
        const result = model.forward(Tensor.ints(rows(0), [B, T]), { targets: Tensor.ints(rows(1), [B, T]) });
        (result.loss as Tensor).backward();
        return (result.loss as Tensor).read();
      });
      losses.push((await loss)[0] as number);
      await clipGradNormAsync(model.params.values(), 1.0);
      opt.update(1e-2);
    }
  } finally {
    model.dispose();
  }
  return losses;
}

if (process.env.MINIGPT_WEBGPU_CHILD) {
  test(`${STEPS} training steps on webgpu give wasm's losses within 1e-4 relative`, async (t) => {
    const wasm = await trainLosses("wasm");
    const gpu = await trainLosses("webgpu");
    t.diagnostic(
      `wasm ${wasm[0]?.toFixed(5)} -> ${wasm[STEPS - 1]?.toFixed(5)}, webgpu ${gpu[0]?.toFixed(5)} -> ${gpu[STEPS - 1]?.toFixed(5)}`,
    );
    const worst = Math.max(...wasm.map((w, i) => Math.abs((gpu[i] as number) - w) / Math.abs(w)));
    t.diagnostic(`largest relative difference ${worst.toExponential(2)}`);
    assert.ok((wasm[STEPS - 1] as number) < (wasm[0] as number) - 0.5, "the model learns (the check is not of two flat lines)");
    assert.ok(
      worst <= 1e-4,
      `losses differ by up to ${worst.toExponential(2)} relative:\nwasm   ${wasm.join(" ")}\nwebgpu ${gpu.join(" ")}`,
    );
  });
} else {
  test("training on webgpu matches wasm, in a child process on the available adapter", (t) => {
    runInWebgpuChild(t, fileURLToPath(import.meta.url), { show: /difference|->/ });
  });
}
