/**
 * What the wasm backend's methods are made of (loader.ts, decode.ts): kernel calls typed by the
 * generated exports (a task's arguments are the export's parameters, checked by tsc), the kernels the
 * helper threads may run, and the ones a data-parallel thread may do for the other, with their
 * argument layouts by name (kernelParams, generated from the kernel source).
 */
import { type KernelExports, kernelParams } from "./build/exports.js";
import type { Schedule } from "./schedule.js";

/** kernels the pool's helper threads can run (a task's op is the index here) */
export const POOL_KERNELS = [
  "matmul",
  "matmulRows",
  "attentionForward",
  "attentionBackward",
  "attentionCached",
  "mlpRowsPart",
  "attentionRowsPart",
  "trunkRowsPart",
  "trunkSplitPart",
  "geluForward",
  "geluBackward",
  "geluForwardGrad",
  "softmax",
  "crossEntropyForward",
  "crossEntropyBackward",
  "adamw",
  "accumulate",
  "setMatmulTile",
  "adamwMany",
  "qmatvecPacked",
  "qmatvecHelper",
] as const;
export type PoolKernel = (typeof POOL_KERNELS)[number];

/** the arguments of one call of kernel K */
export type Args<K extends keyof KernelExports> = Parameters<KernelExports[K]>;

/**
 * Kernels one data-parallel thread may do for the other (peer.ts; the op is the index in
 * POOL_KERNELS), each split where the result does not depend on the split: a matmul's rows,
 * attention's (b, h) pairs, elements and rows.
 */
export const PEER_KERNELS: ReadonlySet<PoolKernel> = new Set([
  "matmul",
  "attentionForward",
  "attentionBackward",
  "geluForward",
  "geluBackward",
  "geluForwardGrad",
  "softmax",
  "crossEntropyForward",
  "crossEntropyBackward",
  "adamw",
  "adamwMany",
  "accumulate",
]);

/** where argument `name` of kernel fn goes in a call (-1: it has none) */
export function argIndex(fn: keyof KernelExports, name: string): number {
  return (kernelParams[fn] as readonly string[]).indexOf(name);
}

/** What the backend's methods share: the kernels, the split decisions, and running a split call. */
export interface KernelCalls {
  readonly x: KernelExports;
  readonly sched: Schedule;
  /** run fn's tasks, the first on this thread and the others on the pool's helpers */
  parallel<K extends PoolKernel>(fn: K, tasks: Args<K>[]): void;
  /**
   * Leave fn(args) running on a pool helper (WorkerPool.detach) while calls may use more than one
   * thread; false when there is no such helper. `stop` makes it return.
   */
  detach(fn: PoolKernel, args: Args<PoolKernel>, stop: () => void): boolean;
  /** whether the detached task has returned (or there is none) */
  detachedReturned(): boolean;
  /** stop the detached task and wait for it; rethrows its failure */
  settleDetached(): void;
}
