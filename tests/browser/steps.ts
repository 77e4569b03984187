// Training steps for the browser tests (tests/browser/model.ts on the page, train-worker.ts in a
// module worker): a seeded 256-wide model and batch, their gradients on the current backend, and
// data parallel against one thread. Deep imports, not src/browser.ts: a module worker gets no import
// map, so it cannot resolve the GPT-2 tokenizer's npm import (a bundler would).
import { useBackend } from "../../src/kernels/index.js";
import type { WasmBackend } from "../../src/kernels/wasm/loader.js";
import { makeConfig } from "../../src/nn/config.js";
import { GPT } from "../../src/nn/gpt.js";
import { Rng } from "../../src/random.js";
import { scope, Tensor } from "../../src/tensor/tensor.js";
import { DataParallel } from "../../src/train/parallel.js";

export interface DataParallelReport {
  /** DataParallel.create gave replicas (null means the page cannot run them) */
  created: boolean;
  threads: number;
  lossDiff: number;
  /** worst over parameters of max |grad_dp - grad_one| / max |grad_one| */
  worstRelDiff: number;
  /** median ms of a forward/backward: data parallel, and kernels split over the pool */
  msDataParallel: number;
  msKernels: number;
  /** the timed forward/backwards (ms), alternating: data parallel, kernels split, data parallel, ... */
  samples: number[];
}

const B = 8;
const T = 64;

/** a seeded batch of B rows of T tokens (inputs and next-token targets) over 301 ids */
function seededBatch(): { x: number[]; y: number[] } {
  const rng = new Rng(3);
  const ids = Array.from({ length: B * (T + 1) }, () => rng.int(301));
  const x: number[] = [];
  const y: number[] = [];
  for (let b = 0; b < B; b++) {
    x.push(...ids.slice(b * (T + 1), b * (T + 1) + T));
    y.push(...ids.slice(b * (T + 1) + 1, (b + 1) * (T + 1)));
  }
  return { x, y };
}

const seededModel = () => new GPT(makeConfig({ vocabSize: 301, blockSize: T, nLayer: 2, nHead: 4, nEmbd: 256 }), 7);

function gradsOf(model: GPT): Map<string, Float32Array> {
  const grads = new Map<string, Float32Array>();
  for (const [name, p] of model.params) grads.set(name, Float32Array.from((p.grad as Tensor).data));
  return grads;
}

/** max |got - want| / max |want| of one tensor (Infinity when the lengths differ) */
export function relDiff(got: Float32Array | undefined, want: Float32Array): number {
  if (!got || got.length !== want.length) return Number.POSITIVE_INFINITY;
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < want.length; i++) {
    diff = Math.max(diff, Math.abs((got[i] as number) - (want[i] as number)));
    scale = Math.max(scale, Math.abs(want[i] as number));
  }
  return diff / scale;
}

/** worst relDiff over the tensors of `want` */
export function worstRelDiff(got: Map<string, Float32Array>, want: Map<string, Float32Array>): number {
  let worst = 0;
  for (const [name, w] of want) worst = Math.max(worst, relDiff(got.get(name), w));
  return worst;
}

export const median = (xs: number[]) => [...xs].sort((p, q) => p - q)[xs.length >> 1] as number;

/** loss and every gradient of one forward/backward of a seeded model on the current backend */
export function lossAndGrads(): { loss: number; grads: Map<string, Float32Array> } {
  const model = seededModel();
  try {
    const { x, y } = seededBatch();
    return scope(() => {
      const { loss } = model.forward(Tensor.ints(x, [B, T]), { targets: Tensor.ints(y, [B, T]) });
      if (!loss) throw new Error("no loss");
      loss.backward();
      return { loss: loss.item(), grads: gradsOf(model) };
    });
  } finally {
    model.dispose();
  }
}

export async function dataParallelReport(): Promise<DataParallelReport> {
  const be = (await useBackend("wasm", { threads: 2 })) as WasmBackend;
  const model = seededModel();
  const dp = await DataParallel.create(model, 2);
  try {
    const { x, y } = seededBatch();
    const one = (): number =>
      scope(() => {
        model.zeroGrad();
        const l = model.forward(Tensor.ints(x, [B, T]), { targets: Tensor.ints(y, [B, T]) }).loss as Tensor;
        l.backward();
        return l.item();
      });
    const split = (): number =>
      scope(() => {
        model.zeroGrad();
        return (dp as DataParallel).forwardBackward(Tensor.ints(x, [B, T]), Tensor.ints(y, [B, T]), 1);
      });
    const lossOne = one();
    const want = gradsOf(model);
    if (!dp)
      return { created: false, threads: 1, lossDiff: Number.NaN, worstRelDiff: Number.NaN, msDataParallel: 0, msKernels: 0, samples: [] };
    const lossDp = split();
    const got = gradsOf(model);
    // in turns, so both see the same minutes of a noisy machine
    const samples: number[] = [];
    const dpMs: number[] = [];
    const kernelMs: number[] = [];
    for (let i = 0; i < 5; i++) {
      for (const [f, into] of [
        [split, dpMs],
        [one, kernelMs],
      ] as const) {
        const t0 = performance.now();
        f();
        const ms = performance.now() - t0;
        into.push(ms);
        samples.push(ms);
      }
    }
    return {
      created: true,
      threads: dp.threads,
      lossDiff: Math.abs(lossDp - lossOne),
      worstRelDiff: worstRelDiff(got, want),
      msDataParallel: median(dpMs),
      msKernels: median(kernelMs),
      samples,
    };
  } finally {
    dp?.dispose();
    model.dispose();
    await useBackend("ref");
    be.dispose();
  }
}
