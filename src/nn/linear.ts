/**
 * A linear layer: y = x·W + b, W stored (in, out) as GPT-2's Conv1D does, so the weights map
 * one-to-one to Hugging Face's. Shapes: x (...,K), W (K,N), b (N) -> y (...,N).
 *
 * Two ways through, one definition:
 *   forward(x)        tensors with autograd (training, the KV-cache prefill)
 *   rows(out, x, M)   M rows on buffers, no tape (the one-token decode, any number of sequences)
 *
 * This is the seam for layers that compute something other than x·W + b from a plain W (a LoRA
 * adapter, quantized weights): such a class extends Linear, overrides forward, forwardGelu and rows,
 * and answers null from plain(). The one-token decode then calls its rows() where it would otherwise
 * hand W and b to a fused kernel (src/nn/attention.ts, src/nn/mlp.ts). A layer that holds W in
 * another form (quantized: src/nn/quantized.ts) has no float W to give (`weight` throws); the
 * tape's products reach W through withWeight, which such a layer overrides.
 */
import { backend } from "../kernels/index.js";
import { linear, linearGelu } from "../ops/index.js";
import type { Tensor } from "../tensor/tensor.js";
import type { ForwardContext } from "./forward-context.js";

export class Linear {
  readonly inFeatures: number;
  readonly outFeatures: number;

  /**
   * @param weight (K,N), input features first; null for a layer that holds it in another form (then
   *   `shape` gives K and N)
   * @param bias (N)
   */
  constructor(
    private readonly w: Tensor | null,
    readonly bias: Tensor,
    shape: readonly number[] = (w as Tensor).shape,
  ) {
    this.inFeatures = shape[0] as number;
    this.outFeatures = shape[1] as number;
  }

  /** W (K,N) as a float tensor */
  get weight(): Tensor {
    if (!this.w) throw new Error("this linear layer holds no float weight (quantized): its products go through withWeight");
    return this.w;
  }

  /**
   * `op` (a product recorded on the tape) applied to the float W. A layer that holds W in another
   * form makes it for `op`, and again for the recorded backward, instead of keeping it.
   */
  withWeight(op: (w: Tensor) => Tensor): Tensor {
    return op(this.weight);
  }

  /** x (...,K) -> (...,N); `ctx`, the forward pass's, for a layer with dropout of its own (LoRA's) */
  forward(x: Tensor, _ctx?: ForwardContext): Tensor {
    return this.withWeight((w) => linear(x, w, this.bias));
  }

  /** gelu(x·W + b) as one op (it keeps gelu' for backward instead of the pre-activation: linearGelu) */
  forwardGelu(x: Tensor, _ctx?: ForwardContext): Tensor {
    return this.withWeight((w) => linearGelu(x, w, this.bias));
  }

  /**
   * out (M,N) = x (M,K)·W + b for the first M rows of the buffers, no tape. Each row is computed as
   * a call for that row alone would compute it, so a row's bits do not depend on the other rows.
   */
  rows(out: Tensor, x: Tensor, M: number): void {
    backend().linearRows(out.storage, x.storage, this.weight.storage, this.bias.storage, M, this.inFeatures, this.outFeatures);
  }

  /**
   * The weight and bias a fused one-token kernel may read in this layer's place, or null when the
   * layer is more than x·W + b (then the decode goes through rows()).
   */
  plain(): { weight: Tensor; bias: Tensor } | null {
    return this;
  }
}
