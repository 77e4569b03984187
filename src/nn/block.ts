/**
 * One transformer block, pre-LayerNorm with a residual stream:
 *   x = x + attn(ln_1(x))
 *   x = x + mlp(ln_2(x))
 * forward on tensors (training, prefill), decode on one row per sequence (generation): the same
 * layers in the same order, each taking its own fast path inside.
 */
import type { DecodeMatrices, PackedLayer, TrunkLayer } from "../kernels/backend.js";
import type { KernelArray } from "../kernels/index.js";
import { backend } from "../kernels/index.js";
import { add } from "../ops/index.js";
import type { Tensor } from "../tensor/tensor.js";
import type { CausalSelfAttention } from "./attention.js";
import type { DecodeBuffers, DecodeRow } from "./decode-step.js";
import type { ForwardContext } from "./forward-context.js";
import type { LayerNorm } from "./layer-norm.js";
import type { MLP } from "./mlp.js";

export class Block {
  /** the attention's and MLP's matrices laid out for decode steps of many rows (pack), or null */
  private packed: PackedLayer | null = null;
  /** trunkLayer's last answer and what it was made from: the same object while none of that changed */
  private trunk: { from: readonly unknown[]; layer: TrunkLayer<KernelArray> } | null = null;

  constructor(
    readonly ln_1: LayerNorm,
    readonly attn: CausalSelfAttention,
    readonly ln_2: LayerNorm,
    readonly mlp: MLP,
    /** the block's index: learning mode's names are "h.<index>.<what>" */
    readonly index: number,
  ) {}

  /** x (B,T,C) -> (B,T,C); captures ln_1, qkv, attn, resid_attn, mlp_act, out */
  forward(x: Tensor, ctx: ForwardContext): Tensor {
    const outer = ctx.capture;
    const capture = outer && ((name: string, t: Tensor) => outer(`h.${this.index}.${name}`, t));
    const inner: ForwardContext = { ...ctx, capture };
    const a = this.ln_1.forward(x);
    capture?.("ln_1", a);
    x = add(x, this.attn.forward(a, inner));
    capture?.("resid_attn", x);
    x = add(x, this.mlp.forward(this.ln_2.forward(x), inner));
    capture?.("out", x);
    return x;
  }

  /**
   * The block's weights for a backend's whole-trunk decode (Backend.trunkRows), or null when a layer
   * is more than x·W + b (an adapter, quantized weights) or a LayerNorm's epsilon is not `eps`.
   * The same object step after step while the layers and their packed copy stay (a backend may keep
   * what it made of it: TrunkLayer).
   */
  trunkLayer(eps: number): TrunkLayer<KernelArray> | null {
    const plain = this.plainLayers();
    if (!plain || this.ln_1.eps !== eps || this.ln_2.eps !== eps) return null;
    const { attn, attnProj, fc, mlpProj } = plain;
    const from = [attn, attnProj, fc, mlpProj, this.packed];
    if (this.trunk?.from.every((v, i) => v === from[i])) return this.trunk.layer;
    const layer: TrunkLayer<KernelArray> = {
      ln1Weight: this.ln_1.weight.storage,
      ln1Bias: this.ln_1.bias.storage,
      ...matrices(plain),
      attnBias: attn.bias.storage,
      attnProjBias: attnProj.bias.storage,
      ln2Weight: this.ln_2.weight.storage,
      ln2Bias: this.ln_2.bias.storage,
      fcBias: fc.bias.storage,
      mlpProjBias: mlpProj.bias.storage,
      packed: this.packed,
    };
    this.trunk = { from, layer };
    return layer;
  }

  /**
   * The attention's and MLP's matrices laid out once for the backend's decode steps of many rows
   * (Backend.packDecodeLayer), held beside them until unpack; returns the bytes it holds (0 where the
   * backend has no such layout or a layer is not plain: an adapter's, quantized weights).
   */
  pack(): number {
    this.unpack();
    const be = backend();
    const plain = this.plainLayers();
    if (!be.packDecodeLayer || !plain) return 0;
    this.packed = be.packDecodeLayer(matrices(plain), this.attn.c_proj.outFeatures, this.attn.nHead, this.mlp.c_fc.outFeatures);
    return this.packed?.bytes ?? 0;
  }

  /** the attention's and MLP's four layers where each is plain x·W + b, else null (an adapter, quantized weights) */
  private plainLayers(): PlainLayers | null {
    const attn = this.attn.c_attn.plain();
    const attnProj = this.attn.c_proj.plain();
    const fc = this.mlp.c_fc.plain();
    const mlpProj = this.mlp.c_proj.plain();
    return attn && attnProj && fc && mlpProj ? { attn, attnProj, fc, mlpProj } : null;
  }

  /** frees pack's copy (the matrices are about to change, or the model is done with) */
  unpack(): void {
    this.packed?.release();
    this.packed = null;
  }

  /** s.x (R,C) through the block, row r the next token of rows[r]'s sequence */
  decode(s: DecodeBuffers, rows: readonly DecodeRow[]): void {
    const be = backend();
    const R = rows.length;
    const n = R * (s.x.shape[1] as number);
    this.ln_1.rows(s.a, s.x, R, s.mean, s.rstd);
    this.attn.decode(s, rows, this.packed);
    be.add(s.x.storage, s.x.storage, s.y.storage, n);
    this.ln_2.rows(s.a, s.x, R, s.mean, s.rstd);
    this.mlp.decode(s, R, this.packed);
    be.add(s.x.storage, s.x.storage, s.y.storage, n);
  }
}

/** a block's four layers as plain x·W + b (Linear.plain) */
interface PlainLayers {
  attn: PlainLinear;
  attnProj: PlainLinear;
  fc: PlainLinear;
  mlpProj: PlainLinear;
}
/** what Linear.plain gives: the weight and bias a fused kernel may read */
type PlainLinear = { weight: Tensor; bias: Tensor };

/** their weight matrices, as the backend's decode takes them */
function matrices(p: PlainLayers): DecodeMatrices<KernelArray> {
  return {
    attnWeight: p.attn.weight.storage,
    attnProjWeight: p.attnProj.weight.storage,
    fcWeight: p.fc.weight.storage,
    mlpProjWeight: p.mlpProj.weight.storage,
  };
}
