/**
 * Incremental decoding with a key/value cache: each layer keeps the k and v rows of every position
 * seen so far, so a new token costs one row through the network instead of the whole context.
 *
 * Past the block size the reference semantics are nanoGPT's: the model sees the last blockSize
 * tokens at positions 0..blockSize-1. Learned absolute positions mean every cached row changes when
 * the window slides, so the cache cannot be shifted; instead it is re-filled from the window (one
 * batched prefill per token). Output is therefore identical to the uncached model everywhere; only
 * speed differs past the block size. See docs/generation.md.
 */
import { backend } from "../kernels/index.js";
import type { GPT } from "../nn/gpt.js";
import { add, addPositions, embedding, gelu, layerNorm, linear, matmulTransposed, relu } from "../ops/index.js";
import { noGrad, scope, Tensor } from "../tensor/tensor.js";

export class KVCache {
  readonly model: GPT;
  /** per layer: k and v rows (blockSize, C) */
  private readonly keys: Tensor[];
  private readonly values: Tensor[];
  /** how many positions are filled */
  length = 0;

  constructor(model: GPT) {
    this.model = model;
    const { nLayer, blockSize, nEmbd } = model.config;
    this.keys = Array.from({ length: nLayer }, () => new Tensor([blockSize, nEmbd], "f32", false, false));
    this.values = Array.from({ length: nLayer }, () => new Tensor([blockSize, nEmbd], "f32", false, false));
  }

  reset(): void {
    this.length = 0;
  }

  /**
   * Run `ids` (appended after the cached positions) through the model; returns the logits (V) of
   * the last one. Throws if they do not fit in the block.
   */
  append(ids: readonly number[]): Float32Array {
    const c = this.model.config;
    const Tn = ids.length;
    const pos0 = this.length;
    if (Tn === 0) throw new Error("KVCache.append: no tokens");
    if (pos0 + Tn > c.blockSize) throw new Error(`KVCache.append: ${pos0 + Tn} positions exceed the block size ${c.blockSize}`);
    const C = c.nEmbd;
    const p = (name: string) => this.model.param(name);
    const act = c.activation === "relu" ? relu : gelu;
    const logits = noGrad(() =>
      scope(() => {
        const idx = Tensor.ints(ids, [1, Tn]);
        // positions pos0.. : embed with the wpe rows offset by pos0
        const tok = embedding(p("transformer.wte.weight"), idx);
        const wpe = p("transformer.wpe.weight");
        const posRows = new Tensor([Tn, C]);
        posRows.data.set(wpe.data.subarray(pos0 * C, (pos0 + Tn) * C));
        let x = addPositions(tok, posRows); // (1,Tn,C)
        for (let l = 0; l < c.nLayer; l++) {
          const h = `transformer.h.${l}`;
          const a = layerNorm(x, p(`${h}.ln_1.weight`), p(`${h}.ln_1.bias`), c.layerNormEps);
          const qkv = linear(a, p(`${h}.attn.c_attn.weight`), p(`${h}.attn.c_attn.bias`)); // (1,Tn,3C)
          const kc = (this.keys[l] as Tensor).data;
          const vc = (this.values[l] as Tensor).data;
          const q = qkv.data;
          for (let t = 0; t < Tn; t++) {
            kc.set(q.subarray(t * 3 * C + C, t * 3 * C + 2 * C), (pos0 + t) * C);
            vc.set(q.subarray(t * 3 * C + 2 * C, t * 3 * C + 3 * C), (pos0 + t) * C);
          }
          const att = new Tensor([1, Tn, C]);
          backend().attentionCached(att.data, q, kc, vc, Tn, pos0, C, c.nHead);
          x = add(x, linear(att, p(`${h}.attn.c_proj.weight`), p(`${h}.attn.c_proj.bias`)));
          const m = layerNorm(x, p(`${h}.ln_2.weight`), p(`${h}.ln_2.bias`), c.layerNormEps);
          x = add(
            x,
            linear(
              act(linear(m, p(`${h}.mlp.c_fc.weight`), p(`${h}.mlp.c_fc.bias`))),
              p(`${h}.mlp.c_proj.weight`),
              p(`${h}.mlp.c_proj.bias`),
            ),
          );
        }
        // only the last position's logits are needed
        const last = new Tensor([1, C]);
        last.data.set(x.data.subarray((Tn - 1) * C, Tn * C));
        const lf = layerNorm(last, p("transformer.ln_f.weight"), p("transformer.ln_f.bias"), c.layerNormEps);
        return matmulTransposed(lf, p("transformer.wte.weight")).data.slice();
      }),
    );
    this.length += Tn;
    return logits;
  }

  dispose(): void {
    for (const t of [...this.keys, ...this.values]) t.dispose();
  }
}
