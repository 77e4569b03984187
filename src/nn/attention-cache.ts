/**
 * One attention layer's key/value cache for one sequence: the k and v rows of every position seen so
 * far, so that a new token attends to them without recomputing them. keys, values (Tmax,C), row p
 * holding position p's heads side by side (as in qkv). The sequence's length is kept by its owner
 * (src/generate/kvcache.ts); the layer writes rows and reads rows 0..p.
 */
import { backend } from "../kernels/index.js";
import { Tensor } from "../tensor/tensor.js";

export class AttentionCache {
  readonly keys: Tensor;
  readonly values: Tensor;

  constructor(
    readonly maxPositions: number,
    readonly width: number,
  ) {
    this.keys = new Tensor([maxPositions, width], "f32", false, false);
    this.values = new Tensor([maxPositions, width], "f32", false, false);
  }

  /** qkv (Tn,3C) rows [q | k | v] of positions pos0 .. pos0+Tn-1: their k and v into those rows */
  store(qkv: Tensor, Tn: number, pos0: number): void {
    if (pos0 + Tn > this.maxPositions) throw new Error(`AttentionCache: ${pos0 + Tn} positions exceed ${this.maxPositions}`);
    for (let t = 0; t < Tn; t++) this.storeRow(qkv, t, pos0 + t);
  }

  /**
   * Row `r` of qkv (rows [q | k | v] of 3C): its k and v into row `pos`. A kernel copy, so that it
   * works wherever the tensors live (the heap, or a GPU's memory).
   */
  storeRow(qkv: Tensor, r: number, pos: number): void {
    const be = backend();
    const C = this.width;
    be.copy(this.keys.slice(pos * C, C), qkv.slice(r * 3 * C + C, C), C);
    be.copy(this.values.slice(pos * C, C), qkv.slice(r * 3 * C + 2 * C, C), C);
  }

  dispose(): void {
    this.keys.dispose();
    this.values.dispose();
  }
}
