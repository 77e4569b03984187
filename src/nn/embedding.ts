/** A lookup table: ids (...) int32 -> rows of weight (V,C): (...,C). GPT-2 has two, tokens and positions. */
import type { KernelArray } from "../kernels/index.js";
import { embedding, matmulTransposed } from "../ops/index.js";
import type { Tensor } from "../tensor/tensor.js";

export class Embedding {
  /** @param weight (V,C), one row per id */
  constructor(readonly weight: Tensor) {}

  get rowCount(): number {
    return this.weight.shape[0] as number;
  }

  forward(ids: Tensor): Tensor {
    return embedding(this.weight, ids);
  }

  /** x (...,C) -> x·weightᵀ (...,V): the table as the tied LM head */
  head(x: Tensor): Tensor {
    return matmulTransposed(x, this.weight);
  }

  /** row `id` of the table (C), in place, for a kernel call (the one-token decode) */
  row(id: number): KernelArray {
    const C = this.weight.shape[1] as number;
    return this.weight.slice(id * C, C);
  }
}
