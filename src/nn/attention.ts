/**
 * Causal multi-head self-attention, GPT-2's: x (B,T,C) -> qkv (B,T,3C) = c_attn(x), split into
 * heads (nh, hs = C/nh) inside the kernel, softmax(q·kᵀ/√hs + causal mask)·v with heads side by side
 * (B,T,C), then y = c_proj(·) (B,T,C).
 *
 * forward: tensors. Without a cache, all T positions of each sequence attend among themselves
 * (training); with one (prefill, B = 1), the new positions' k and v are written to the layer's cache
 * and the new queries attend over the cached rows 0..p.
 * decode: one new row per sequence on decode buffers, each against its own cache at its own position.
 * With plain linear layers one fused kernel for all rows (Backend.attentionRows: exactly the calls of
 * the general path below, in one pool round trip, the weights read once); otherwise c_attn.rows, the
 * cached attention per row, c_proj.rows.
 */
import type { PackedLayer } from "../kernels/backend.js";
import { backend } from "../kernels/index.js";
import { causalSelfAttention } from "../ops/index.js";
import { Tensor } from "../tensor/tensor.js";
import type { AttentionCache } from "./attention-cache.js";
import { type DecodeBuffers, type DecodeRow, DecodeBuffers as Rows } from "./decode-step.js";
import type { ForwardContext } from "./forward-context.js";
import type { Linear } from "./linear.js";

export class CausalSelfAttention {
  /** the linear layers may be swapped for a Linear subclass (an adapter, quantized weights: see linear.ts) */
  constructor(
    public c_attn: Linear,
    public c_proj: Linear,
    readonly nHead: number,
    /** which layer this is: its cache is the sequence's cache[layer] */
    readonly layer: number,
  ) {}

  /** x (B,T,C) -> (B,T,C); captures "qkv" and "attn" */
  forward(x: Tensor, ctx: ForwardContext): Tensor {
    const qkv = this.c_attn.forward(x, ctx); // (B,T,3C)
    ctx.capture?.("qkv", qkv);
    const att = ctx.cache
      ? this.cached(qkv, ctx.cache.layers[this.layer] as AttentionCache, ctx.cache.pos0)
      : causalSelfAttention(qkv, this.nHead);
    ctx.capture?.("attn", att);
    return ctx.drop(this.c_proj.forward(att, ctx));
  }

  /** qkv (1,Tn,3C) of positions pos0..: k and v into the cache, attention over its rows -> (1,Tn,C); no tape */
  private cached(qkv: Tensor, cache: AttentionCache, pos0: number): Tensor {
    const [B, Tn, C3] = qkv.shape as [number, number, number];
    if (B !== 1) throw new Error(`attention with a KV cache: one sequence at a time, got a batch of ${B}`);
    const C = C3 / 3;
    cache.store(qkv, Tn, pos0);
    const att = new Tensor([1, Tn, C]);
    backend().attentionCached(att.storage, qkv.storage, cache.keys.storage, cache.values.storage, Tn, pos0, C, this.nHead);
    return att;
  }

  /** s.y (R,C) = attention of s.a (R,C), row r the next token of rows[r]'s sequence; packed: the block's (Block.pack) */
  decode(s: DecodeBuffers, rows: readonly DecodeRow[], packed: PackedLayer | null = null): void {
    const be = backend();
    const C = this.c_proj.outFeatures;
    const R = rows.length;
    const caches = rows.map(({ cache }) => cache[this.layer] as AttentionCache);
    const cached = rows.map(({ pos }, r) => {
      const kv = caches[r] as AttentionCache;
      return { keys: kv.keys.storage, values: kv.values.storage, pos };
    });
    const wa = this.c_attn.plain();
    const wp = this.c_proj.plain();
    if (wa && wp) {
      be.attentionRows(
        s.y.storage,
        s.att.storage,
        s.qkv.storage,
        s.a.storage,
        cached,
        wa.weight.storage,
        wa.bias.storage,
        wp.weight.storage,
        wp.bias.storage,
        C,
        this.nHead,
        packed,
      );
      return;
    }
    this.c_attn.rows(s.qkv, s.a, R);
    for (let r = 0; r < R; r++) {
      const { keys, values, pos } = cached[r] as (typeof cached)[number];
      (caches[r] as AttentionCache).storeRow(s.qkv, r, pos);
      be.attentionCached(Rows.row(s.att, r), Rows.row(s.qkv, r), keys, values, 1, pos, C, this.nHead);
    }
    this.c_proj.rows(s.y, s.att, R);
  }
}
