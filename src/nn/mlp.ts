/**
 * GPT-2's MLP: x (B,T,C) -> c_fc (B,T,nInner) -> activation (GELU, tanh approximation, or ReLU)
 * -> c_proj (B,T,C).
 *
 * forward: tensors (with GELU, c_fc and the activation are one op, which keeps gelu' for backward).
 * decode: one row per sequence on decode buffers. With plain linear layers one fused kernel for all
 * rows (Backend.mlpRows: exactly the calls of the general path below, in one pool round trip, the
 * weights read once); otherwise c_fc.rows, the activation, c_proj.rows.
 */

import type { PackedLayer } from "../kernels/backend.js";
import { backend } from "../kernels/index.js";
import { relu } from "../ops/index.js";
import type { Tensor } from "../tensor/tensor.js";
import type { Activation } from "./config.js";
import type { DecodeBuffers } from "./decode-step.js";
import type { ForwardContext } from "./forward-context.js";
import type { Linear } from "./linear.js";

export class MLP {
  /** the linear layers may be swapped for a Linear subclass (an adapter, quantized weights: see linear.ts) */
  constructor(
    public c_fc: Linear,
    public c_proj: Linear,
    readonly activation: Activation,
  ) {}

  /** x (B,T,C) -> (B,T,C); captures "mlp_act" (B,T,nInner) */
  forward(x: Tensor, ctx: ForwardContext): Tensor {
    const h = this.activation === "relu" ? relu(this.c_fc.forward(x, ctx)) : this.c_fc.forwardGelu(x, ctx);
    ctx.capture?.("mlp_act", h);
    return ctx.drop(this.c_proj.forward(h, ctx));
  }

  /** s.y (R,C) = mlp(s.a (R,C)) for the first R rows, each row on its own; packed: the block's (Block.pack) */
  decode(s: DecodeBuffers, R: number, packed: PackedLayer | null = null): void {
    const be = backend();
    const C = this.c_proj.outFeatures;
    const H = this.c_fc.outFeatures;
    const isRelu = this.activation === "relu";
    const fc = this.c_fc.plain();
    const proj = this.c_proj.plain();
    if (fc && proj) {
      be.mlpRows(
        s.y.storage,
        s.h.storage,
        s.a.storage,
        R,
        fc.weight.storage,
        fc.bias.storage,
        proj.weight.storage,
        proj.bias.storage,
        C,
        H,
        isRelu,
        packed,
      );
      return;
    }
    this.c_fc.rows(s.h, s.a, R);
    const h = s.h.storage;
    if (isRelu) be.reluForward(h, h, R * H);
    else be.geluForward(h, h, R * H);
    this.c_proj.rows(s.y, s.h, R);
  }
}
