/**
 * The heavy half of a training step behind one interface, whoever does it: forward and backward of
 * each micro-batch into the model's gradients, then the optimizer update. The training loop
 * (trainer.ts) calls the same two methods on one thread and in data parallel:
 *
 *   OneThread     the whole micro-batch through the model on this thread (one shard: the result is
 *                 the plain single-thread step)
 *   DataParallel  the micro-batch cut into shards, run by replicas on other threads and by this one,
 *                 their gradients added in shard order (parallel.ts; with one thread every shard runs
 *                 here, with the same result)
 */
import { deviceMemory } from "../kernels/index.js";
import type { GPT } from "../nn/gpt.js";
import type { LoraAttachment } from "../nn/lora.js";
import type { Rng } from "../random.js";
import type { Tensor } from "../tensor/tensor.js";
import { DataParallel } from "./parallel.js";

export interface Stepper {
  /** threads running the model (this one included) */
  readonly threads: number;
  /**
   * Forward and backward of one micro-batch x, y (B,T): the gradient of scale·(mean loss) is ADDED
   * to the model's parameter gradients. `gradsZero`: the model's gradients are all zero (the step's
   * first micro-batch). Returns the mean loss; on a GPU its read back (started at once, so the
   * loss tensor may be freed).
   */
  forwardBackward(x: Tensor, y: Tensor, scale: number, dropoutRng?: Rng, gradsZero?: boolean): number | Promise<number>;
  /** run the optimizer update `fn` where the stepper's other threads, idle meanwhile, can take a share of it */
  update<R>(fn: () => R): R;
  /** stop the threads and free what the stepper allocated */
  dispose(): void;
}

/** One shard: every micro-batch whole through the model on this thread. */
class OneThread implements Stepper {
  readonly threads = 1;

  constructor(private readonly model: GPT) {}

  forwardBackward(x: Tensor, y: Tensor, scale: number, dropoutRng?: Rng): number | Promise<number> {
    const loss = this.model.forward(x, { targets: y, dropoutRng }).loss as Tensor;
    loss.backward(Float32Array.of(scale));
    return loss.device ? loss.read().then((v) => v[0] as number) : loss.item();
  }

  update<R>(fn: () => R): R {
    return fn();
  }

  dispose(): void {}
}

/**
 * The stepper for `model` on up to `threads` threads with each micro-batch cut into `shards`: data
 * parallel (parallel.ts) when there is more than one shard, else one thread. The shards, not the
 * threads, decide the result. With `lora`, only the adapter trains (the replicas build it too). A
 * model on a GPU (webgpu) runs each micro-batch whole: its kernels are the device's, and shards
 * exist to make CPU threads' results equal.
 */
export async function createStepper(model: GPT, threads: number, shards: number, lora: LoraAttachment | null = null): Promise<Stepper> {
  if (deviceMemory()) return new OneThread(model);
  return (await DataParallel.create(model, threads, { shards, lora })) ?? new OneThread(model);
}
