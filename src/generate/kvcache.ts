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

/** one layer's parameters (their heap arrays), looked up once per cache */
interface LayerWeights {
  ln1w: Float32Array;
  ln1b: Float32Array;
  attnW: Float32Array;
  attnB: Float32Array;
  projW: Float32Array;
  projB: Float32Array;
  ln2w: Float32Array;
  ln2b: Float32Array;
  fcW: Float32Array;
  fcB: Float32Array;
  fcProjW: Float32Array;
  fcProjB: Float32Array;
}

/**
 * The activations of one token, on the tensor heap (the fast kernels need heap arrays), allocated on
 * the first single-token step and reused for every later one.
 */
interface StepBuffers {
  tensors: Tensor[];
  /** residual stream (C) */
  x: Float32Array;
  /** layer-norm output (C) */
  a: Float32Array;
  mean: Float32Array;
  rstd: Float32Array;
  /** q, k, v (3C) */
  qkv: Float32Array;
  /** attention output (C) */
  att: Float32Array;
  /** attention or MLP output, added to x (C) */
  y: Float32Array;
  /** MLP hidden units after the activation (nInner) */
  h: Float32Array;
  logits: Float32Array;
}

export class KVCache {
  readonly model: GPT;
  /** per layer: k and v rows (blockSize, C) */
  private readonly keys: Tensor[];
  private readonly values: Tensor[];
  private step: StepBuffers | null = null;
  private weights: LayerWeights[] | null = null;
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
    const logits = this.appendView(ids);
    return ids.length === 1 ? logits.slice() : logits;
  }

  /**
   * `append` without the copy for a single token: the returned logits are a view of the cache's own
   * buffer, overwritten by the next call (the generation loop samples from it at once).
   */
  appendView(ids: readonly number[]): Float32Array {
    const c = this.model.config;
    const Tn = ids.length;
    const pos0 = this.length;
    if (Tn === 0) throw new Error("KVCache.append: no tokens");
    if (pos0 + Tn > c.blockSize) throw new Error(`KVCache.append: ${pos0 + Tn} positions exceed the block size ${c.blockSize}`);
    if (Tn === 1) return this.appendOne(ids[0] as number);
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

  /**
   * One token (the generation loop's case): the arithmetic of the ops in append, in the same order,
   * on buffers allocated once (no tensors, tape or scope per token), with each block's attention and
   * MLP as one fused kernel call (Backend.attentionRow / mlpRow, exactly the kernels they stand for).
   * On one thread the logits are identical to the ops path's; split over threads, the partial sums
   * of the output projections make them differ at fp32 rounding level.
   */
  private appendOne(id: number): Float32Array {
    const c = this.model.config;
    const { nEmbd: C, vocabSize: V, nInner, layerNormEps: eps } = c;
    if (!Number.isInteger(id) || id < 0 || id >= V) throw new RangeError(`embedding: id ${id} out of range for a table of ${V} rows`);
    const be = backend();
    const s = this.buffers();
    const layers = this.layerWeights();
    const pos = this.length;
    const relu = c.activation === "relu";
    const wte = this.model.param("transformer.wte.weight").data;
    const wpe = this.model.param("transformer.wpe.weight").data;
    // token + position embedding (embedding, then addPositions: one addition per element)
    be.add(s.x, wte.subarray(id * C, (id + 1) * C), wpe.subarray(pos * C, (pos + 1) * C), C);
    for (let l = 0; l < c.nLayer; l++) {
      const w = layers[l] as LayerWeights;
      be.layernormForward(s.a, s.mean, s.rstd, s.x, w.ln1w, w.ln1b, 1, C, eps);
      // qkv, k and v into the cache, attention, projection: one fused call (one pool round trip)
      const kc = (this.keys[l] as Tensor).data;
      const vc = (this.values[l] as Tensor).data;
      be.attentionRow(s.y, s.att, s.qkv, s.a, w.attnW, w.attnB, kc, vc, pos, w.projW, w.projB, C, c.nHead);
      be.add(s.x, s.x, s.y, C);
      be.layernormForward(s.a, s.mean, s.rstd, s.x, w.ln2w, w.ln2b, 1, C, eps);
      be.mlpRow(s.y, s.h, s.a, w.fcW, w.fcB, w.fcProjW, w.fcProjB, C, nInner, relu);
      be.add(s.x, s.x, s.y, C);
    }
    const p = (name: string) => this.model.param(name).data;
    be.layernormForward(s.a, s.mean, s.rstd, s.x, p("transformer.ln_f.weight"), p("transformer.ln_f.bias"), 1, C, eps);
    be.matmulBT(s.logits, s.a, wte, 1, C, V, false);
    this.length += 1;
    return s.logits;
  }

  private buffers(): StepBuffers {
    if (this.step) return this.step;
    const { nEmbd: C, nInner, vocabSize: V } = this.model.config;
    const tensors: Tensor[] = [];
    const buf = (n: number) => {
      const t = new Tensor([n], "f32", false, false);
      tensors.push(t);
      return t.data;
    };
    this.step = {
      tensors,
      x: buf(C),
      a: buf(C),
      mean: buf(1),
      rstd: buf(1),
      qkv: buf(3 * C),
      att: buf(C),
      y: buf(C),
      h: buf(nInner),
      logits: buf(V),
    };
    return this.step;
  }

  private layerWeights(): LayerWeights[] {
    if (this.weights) return this.weights;
    const p = (name: string) => this.model.param(name).data;
    this.weights = Array.from({ length: this.model.config.nLayer }, (_, l) => {
      const h = `transformer.h.${l}`;
      return {
        ln1w: p(`${h}.ln_1.weight`),
        ln1b: p(`${h}.ln_1.bias`),
        attnW: p(`${h}.attn.c_attn.weight`),
        attnB: p(`${h}.attn.c_attn.bias`),
        projW: p(`${h}.attn.c_proj.weight`),
        projB: p(`${h}.attn.c_proj.bias`),
        ln2w: p(`${h}.ln_2.weight`),
        ln2b: p(`${h}.ln_2.bias`),
        fcW: p(`${h}.mlp.c_fc.weight`),
        fcB: p(`${h}.mlp.c_fc.bias`),
        fcProjW: p(`${h}.mlp.c_proj.weight`),
        fcProjB: p(`${h}.mlp.c_proj.bias`),
      };
    });
    return this.weights;
  }

  dispose(): void {
    for (const t of [...this.keys, ...this.values]) t.dispose();
    for (const t of this.step?.tensors ?? []) t.dispose();
    this.step = null;
  }
}
