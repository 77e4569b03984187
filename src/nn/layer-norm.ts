/**
 * Layer normalisation over the last axis (biased variance, as PyTorch): x (...,C), weight (C),
 * bias (C) -> (...,C). forward on tensors (training, prefill); rows on decode buffers.
 */
import { backend } from "../kernels/index.js";
import { layerNorm } from "../ops/index.js";
import type { Tensor } from "../tensor/tensor.js";

export class LayerNorm {
  constructor(
    readonly weight: Tensor,
    readonly bias: Tensor,
    readonly eps: number,
  ) {}

  forward(x: Tensor): Tensor {
    return layerNorm(x, this.weight, this.bias, this.eps);
  }

  /** out (N,C) = layerNorm(x (N,C)) for the first N rows, each row on its own; mean and rstd (N) scratch */
  rows(out: Tensor, x: Tensor, N: number, mean: Tensor, rstd: Tensor): void {
    const C = this.weight.size;
    backend().layernormForward(out.storage, mean.storage, rstd.storage, x.storage, this.weight.storage, this.bias.storage, N, C, this.eps);
  }
}
