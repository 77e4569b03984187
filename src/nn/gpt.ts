/**
 * GPT-2, top to bottom like the paper (Radford et al. 2019; nanoGPT's model.py is the same maths):
 *
 *   x = wte[idx] + wpe[0..T)                      token + learned position embeddings
 *   for each block:                               pre-LayerNorm, residual stream
 *     x = x + proj(attention(ln_1(x)))             causal multi-head self-attention
 *     x = x + mlp(ln_2(x))                         mlp(h) = c_proj(act(c_fc(h)))
 *   logits = ln_f(x) · wteᵀ                       LM head tied to the token embedding
 *
 * Shapes: B batch, T time, C = nEmbd, V vocab, nh heads, hs = C/nh.
 * Parameter names are Hugging Face GPT2LMHeadModel's, so weights map one-to-one.
 */
import { fail } from "../errors.js";
import {
  add,
  addPositions,
  causalSelfAttention,
  crossEntropy,
  dropout,
  embedding,
  layerNorm,
  linear,
  linearGelu,
  matmulTransposed,
  relu,
} from "../ops/index.js";
import { Rng } from "../random.js";
import { Tensor } from "../tensor/tensor.js";
import type { GPTConfig } from "./config.js";

export interface ForwardResult {
  /** (B,T,V) */
  logits: Tensor;
  /** scalar mean cross-entropy, when targets were given */
  loss?: Tensor;
}

export interface ForwardOptions {
  /** targets (B,T) int32, -1 = no loss at that position */
  targets?: Tensor;
  /** the PRNG for dropout; without it (or with dropout 0) the forward pass is deterministic */
  dropoutRng?: Rng;
  /**
   * Learning mode (src/explain/): called with intermediate activations as they are computed, e.g.
   * ("h.0.qkv", (B,T,3C)). The tensors belong to the forward pass: copy what you keep. Unused, it
   * costs nothing and changes nothing.
   */
  capture?: (name: string, t: Tensor) => void;
}

/** The name and shape of every parameter, in a fixed order (init order, file order). */
export function parameterShapes(c: GPTConfig): [string, number[]][] {
  const C = c.nEmbd;
  const shapes: [string, number[]][] = [
    ["transformer.wte.weight", [c.vocabSize, C]],
    ["transformer.wpe.weight", [c.blockSize, C]],
  ];
  for (let l = 0; l < c.nLayer; l++) {
    const h = `transformer.h.${l}`;
    shapes.push(
      [`${h}.ln_1.weight`, [C]],
      [`${h}.ln_1.bias`, [C]],
      [`${h}.attn.c_attn.weight`, [C, 3 * C]],
      [`${h}.attn.c_attn.bias`, [3 * C]],
      [`${h}.attn.c_proj.weight`, [C, C]],
      [`${h}.attn.c_proj.bias`, [C]],
      [`${h}.ln_2.weight`, [C]],
      [`${h}.ln_2.bias`, [C]],
      [`${h}.mlp.c_fc.weight`, [C, c.nInner]],
      [`${h}.mlp.c_fc.bias`, [c.nInner]],
      [`${h}.mlp.c_proj.weight`, [c.nInner, C]],
      [`${h}.mlp.c_proj.bias`, [C]],
    );
  }
  shapes.push(["transformer.ln_f.weight", [C]], ["transformer.ln_f.bias", [C]]);
  return shapes;
}

export class GPT {
  readonly config: GPTConfig;
  /** every parameter by its Hugging Face name, in parameterShapes order */
  readonly params: Map<string, Tensor>;

  /**
   * A freshly initialised model (GPT-2's scheme, seeded); or, given `shared`, a model whose
   * parameters are those tensors (a data-parallel replica on another thread: src/train/parallel.ts).
   */
  constructor(config: GPTConfig, seed = 1337, shared?: Map<string, Tensor>) {
    this.config = config;
    this.params = new Map();
    if (shared) {
      for (const [name, shape] of parameterShapes(config)) {
        const t = shared.get(name);
        if (!t || t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i]))
          throw new Error(`GPT: shared parameter ${name} missing or misshapen`);
        this.params.set(name, t);
      }
      return;
    }
    const rng = new Rng(seed);
    // GPT-2 init: N(0, 0.02) for weights and embeddings, zero biases, LayerNorm = identity, and the
    // projections that write into the residual stream scaled by 1/sqrt(2·nLayer) so its variance
    // does not grow with depth.
    const residStd = 0.02 / Math.sqrt(2 * config.nLayer);
    for (const [name, shape] of parameterShapes(config)) {
      const t = Tensor.zeros(shape, true);
      const d = t.data;
      if (name.includes(".ln_")) {
        if (name.endsWith(".weight")) d.fill(1);
      } else if (name.endsWith(".weight")) {
        const std = name.endsWith("c_proj.weight") ? residStd : 0.02;
        for (let i = 0; i < d.length; i++) d[i] = rng.normal() * std;
      }
      this.params.set(name, t);
    }
  }

  param(name: string): Tensor {
    const t = this.params.get(name);
    if (!t) throw new Error(`no parameter ${name}`);
    return t;
  }

  parameterCount(): number {
    let n = 0;
    for (const t of this.params.values()) n += t.size;
    return n;
  }

  /**
   * Copy weights in by name. Every parameter must be present with the right shape; the error names
   * the tensor (the shape mismatch users of the seeds hit when a config and a checkpoint disagree).
   */
  loadWeights(weights: Map<string, { shape: readonly number[]; data: Float32Array }>, source: string): void {
    for (const [name, t] of this.params) {
      const w = weights.get(name);
      if (!w) fail(`${source}: missing tensor ${name}`);
      if (w.shape.length !== t.shape.length || w.shape.some((d, i) => d !== t.shape[i])) {
        fail(`${source}: tensor ${name} has shape [${w.shape.join(", ")}] but the config needs [${t.shape.join(", ")}]`);
      }
      t.data.set(w.data);
    }
  }

  /** idx (B,T) int32 -> logits (B,T,V) [, loss] */
  forward(idx: Tensor, options: ForwardOptions = {}): ForwardResult {
    const c = this.config;
    const [, T] = idx.shape as [number, number];
    if (idx.shape.length !== 2) throw new Error(`forward: idx must be (B,T), got [${idx.shape.join(", ")}]`);
    if (T > c.blockSize) fail(`sequence of ${T} tokens is longer than the model's block size ${c.blockSize}`);
    const p = (name: string) => this.param(name);
    const drop = (t: Tensor) => (options.dropoutRng && c.dropout > 0 ? dropout(t, c.dropout, options.dropoutRng) : t);
    // act(c_fc(h)): with GELU one op, which keeps gelu' for backward instead of c_fc's output (linearGelu)
    const fcAct = c.activation === "relu" ? (t: Tensor, w: Tensor, b: Tensor) => relu(linear(t, w, b)) : linearGelu;
    const cap = options.capture;

    let x = drop(addPositions(embedding(p("transformer.wte.weight"), idx), p("transformer.wpe.weight"))); // (B,T,C)
    cap?.("embedding", x);
    for (let l = 0; l < c.nLayer; l++) {
      const h = `transformer.h.${l}`;
      // attention: ln -> qkv (B,T,3C) -> heads -> (B,T,C) -> projection
      let a = layerNorm(x, p(`${h}.ln_1.weight`), p(`${h}.ln_1.bias`), c.layerNormEps);
      cap?.(`h.${l}.ln_1`, a);
      a = linear(a, p(`${h}.attn.c_attn.weight`), p(`${h}.attn.c_attn.bias`));
      cap?.(`h.${l}.qkv`, a);
      a = causalSelfAttention(a, c.nHead);
      cap?.(`h.${l}.attn`, a);
      a = drop(linear(a, p(`${h}.attn.c_proj.weight`), p(`${h}.attn.c_proj.bias`)));
      x = add(x, a);
      cap?.(`h.${l}.resid_attn`, x);
      // MLP: ln -> (B,T,nInner) -> activation -> (B,T,C)
      let m = layerNorm(x, p(`${h}.ln_2.weight`), p(`${h}.ln_2.bias`), c.layerNormEps);
      m = fcAct(m, p(`${h}.mlp.c_fc.weight`), p(`${h}.mlp.c_fc.bias`));
      cap?.(`h.${l}.mlp_act`, m);
      m = drop(linear(m, p(`${h}.mlp.c_proj.weight`), p(`${h}.mlp.c_proj.bias`)));
      x = add(x, m);
      cap?.(`h.${l}.out`, x);
    }
    x = layerNorm(x, p("transformer.ln_f.weight"), p("transformer.ln_f.bias"), c.layerNormEps);
    cap?.("ln_f", x);
    const logits = matmulTransposed(x, p("transformer.wte.weight")); // (B,T,V)
    cap?.("logits", logits);
    const result: ForwardResult = { logits };
    if (options.targets) result.loss = crossEntropy(logits, options.targets);
    return result;
  }

  zeroGrad(): void {
    for (const t of this.params.values()) t.zeroGrad();
  }

  dispose(): void {
    for (const t of this.params.values()) t.dispose();
  }
}
