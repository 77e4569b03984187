// The module worker of bench/browser.html: nanoGPT's CPU recipe (4 layers, 4 heads, 128 wide, block
// 64, batch 12, vocabulary 65) or the bigger one trained in Chromium as a web app would, off the
// page's main thread. It gets {recipe, threads, parallel, warmup, steps}, runs the warm-up steps, times the others (the step is
// bench/step.ts, as in Node) and posts {times, simd, tile, threads, dataParallel}. Tokens are random ids
// over 65 (the Node side's fallback when tiny Shakespeare is absent): the step's cost does not
// depend on which ids they are.
import { BatchSampler } from "../src/data/batches.js";
import { useBackend } from "../src/kernels/index.js";
import type { WasmBackend } from "../src/kernels/wasm/loader.js";
import { makeConfig } from "../src/nn/config.js";
import { GPT } from "../src/nn/gpt.js";
import { AdamW } from "../src/optim/adamw.js";
import { Rng } from "../src/random.js";
import { createStepper } from "../src/train/stepper.js";
import { makeTrainStep } from "./step.js";

export interface BrowserRun {
  /** small: nanoGPT's CPU recipe; big: 6 layers, 6 heads, 384 wide, block 256, batch 64 as 4 micro-batches of 16 */
  recipe: "small" | "big";
  threads: number;
  parallel: "batch" | "kernels";
  warmup: number;
  steps: number;
}

export interface BrowserResult {
  times: number[];
  simd: string;
  tile: string;
  threads: number;
  /** the replicas started (false: every step ran on this worker's thread, its kernels split over threads) */
  dataParallel: boolean;
}

async function run(o: BrowserRun): Promise<BrowserResult> {
  const be = (await useBackend("wasm", { threads: o.threads })) as WasmBackend;
  const rng = new Rng(0);
  const tokens = Int32Array.from({ length: 1_000_000 }, () => Math.floor(rng.random() * 65));
  const recipe =
    o.recipe === "big"
      ? { nLayer: 6, nHead: 6, nEmbd: 384, blockSize: 256, batchSize: 64 }
      : { nLayer: 4, nHead: 4, nEmbd: 128, blockSize: 64, batchSize: 12 };
  // as bench/train-step.ts: the bigger recipe's batch in one piece would not fit wasm32's 4 GiB
  const accum = o.recipe === "big" ? 4 : 1;
  const model = new GPT(makeConfig({ vocabSize: 65, ...recipe, dropout: 0 }), 1337);
  const optimizer = new AdamW(model.params, { lr: 1e-3, beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: 0.1 });
  const sampler = new BatchSampler(tokens, recipe.blockSize, recipe.batchSize / accum, new Rng(1338));
  // data parallel: one shard per thread, as DataParallel's default; kernels split: one shard
  const shards = o.parallel === "batch" ? o.threads : 1;
  const stepper = await createStepper(model, shards, shards);
  try {
    const step = makeTrainStep({
      model,
      optimizer,
      sampler,
      T: recipe.blockSize,
      accum,
      stepper,
      schedule: { lr: 1e-3, minLr: 1e-4, warmupSteps: 100, decaySteps: 2000 },
    });
    for (let i = 0; i < o.warmup; i++) step();
    const times: number[] = [];
    for (let i = 0; i < o.steps; i++) {
      const t0 = performance.now();
      step();
      times.push(performance.now() - t0);
    }
    return { times, simd: be.simd, tile: be.tile, threads: be.threads, dataParallel: stepper.threads > 1 };
  } finally {
    stepper.dispose();
    model.dispose();
    be.dispose();
  }
}

const worker = globalThis as unknown as {
  onmessage: ((e: MessageEvent<BrowserRun>) => void) | null;
  postMessage(message: unknown): void;
};
worker.onmessage = (e) => {
  run(e.data).then(
    (r) => worker.postMessage(r),
    (err: unknown) => worker.postMessage({ error: err instanceof Error ? err.message : String(err) }),
  );
};
