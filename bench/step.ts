// One training step as the trainer runs it: batch sampling, forward and backward inside scope(),
// global-norm clip 1.0, AdamW, through the trainer's Stepper (one thread, or data parallel with the
// replica taking halves of the update: src/train/stepper.ts). Shared
// by bench/train-step.ts (Node) and bench/browser-worker.ts (a module worker in Chromium), so both
// time the same step. Deep imports: a module worker has no import map for the library's npm import.
import type { BatchSampler } from "../src/data/batches.js";
import type { GPT } from "../src/nn/gpt.js";
import type { AdamW } from "../src/optim/adamw.js";
import { clipForUpdate } from "../src/optim/adamw.js";
import { learningRate, type ScheduleOptions } from "../src/optim/schedule.js";
import { scope, Tensor } from "../src/tensor/tensor.js";
import type { Stepper } from "../src/train/stepper.js";

/**
 * small = nanoGPT's CPU recipe (4 layers, 4 heads, 128 wide, block 64, batch 12);
 * big   = 6 layers, 6 heads, 384 wide, block 256, batch 64.
 */
export const RECIPES = {
  small: { nLayer: 4, nHead: 4, nEmbd: 128, blockSize: 64, batchSize: 12 },
  big: { nLayer: 6, nHead: 6, nEmbd: 384, blockSize: 256, batchSize: 64 },
} as const;

export interface StepParts {
  model: GPT;
  optimizer: AdamW;
  sampler: BatchSampler;
  T: number;
  /** micro-batches per step (gradient accumulation) */
  accum: number;
  stepper: Stepper;
  schedule: ScheduleOptions;
  /** the tensors that train (default: every parameter; a LoRA adapter's when only it trains) */
  params?: Map<string, Tensor>;
}

/** a function that runs the next training step and returns its loss */
export function makeTrainStep(p: StepParts): () => number {
  const { model, optimizer, sampler, T, accum, stepper, schedule } = p;
  const params = p.params ?? model.params;
  let stepNo = 0;
  return () => {
    const lr = learningRate(stepNo, schedule);
    for (const t of params.values()) t.zeroGrad();
    let loss = 0;
    for (let micro = 0; micro < accum; micro++) {
      scope(() => {
        const { x, y } = sampler.next();
        const xt = Tensor.ints(x, [x.length / T, T]);
        const yt = Tensor.ints(y, [y.length / T, T]);
        // a number on the CPU backends this bench runs (a GPU's is a Promise)
        loss += (stepper.forwardBackward(xt, yt, 1 / accum, undefined, micro === 0) as number) / accum;
      });
    }
    stepper.update(() => {
      optimizer.update(lr, clipForUpdate(params.values(), 1.0).gradScale);
    });
    stepNo++;
    return loss;
  };
}
