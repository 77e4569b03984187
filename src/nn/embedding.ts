/**
 * A lookup table: ids (...) int32 -> rows of weight (V,C): (...,C). GPT-2 has two, tokens and
 * positions; the token table is the tied LM head too. A table held in another form (quantized:
 * src/nn/quantized.ts) extends this class, overriding every method; it has no float `weight`.
 */
import type { KernelArray } from "../kernels/index.js";
import { backend } from "../kernels/index.js";
import { embedding, matmulTransposed } from "../ops/index.js";
import type { Tensor } from "../tensor/tensor.js";

export class Embedding {
  readonly rowCount: number;

  /** @param weight (V,C), one row per id; null for a table held in another form (then `shape` gives V and C) */
  constructor(
    private readonly w: Tensor | null,
    shape: readonly number[] = (w as Tensor).shape,
  ) {
    this.rowCount = shape[0] as number;
  }

  /** the table (V,C) as a float tensor */
  get weight(): Tensor {
    if (!this.w) throw new Error("this embedding holds no float table (quantized)");
    return this.w;
  }

  forward(ids: Tensor): Tensor {
    return embedding(this.weight, ids);
  }

  /** x (...,C) -> x·weightᵀ (...,V): the table as the tied LM head */
  head(x: Tensor): Tensor {
    return matmulTransposed(x, this.weight);
  }

  /**
   * The LM head of the one-token decode: logits (R,V) = a (R,C)·weightᵀ for the first R rows, each
   * row on its own.
   */
  headRows(logits: Tensor, a: Tensor, R: number): void {
    const [V, C] = this.weight.shape as [number, number];
    backend().matmulBTRows(logits.storage, a.storage, this.weight.storage, R, C, V);
  }

  /** row `id` of the table (C), for a kernel call (the one-token decode), valid until the next call */
  row(id: number): KernelArray {
    const C = this.weight.shape[1] as number;
    return this.weight.slice(id * C, C);
  }
}
