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
 *
 * The layers (src/nn/: Embedding, LayerNorm, Linear, CausalSelfAttention, MLP, Block) are built
 * once, over the tensors of `params`, and every way through the model goes through them:
 *   forward   (B,T) ids -> (B,T,V) logits on tensors with autograd (training, eval, learning mode)
 *   prefill   new ids of one sequence after its cached positions -> the last one's logits (V), the
 *             k and v rows written to the sequence's KV cache (src/generate/kvcache.ts)
 *   decode    one new token for each of R sequences, each at its own position against its own cache
 *             -> logits (R,V): generation, one sequence or a server's batch of them
 * prefill and decode record their kernels and then read the logits: at once from the heap on the CPU
 * backends (prefill, decode), or asynchronously wherever the tensors live (prefillAsync,
 * decodeAsync: on a GPU the one readback of a step).
 */
import { fail } from "../errors.js";
import type { TrunkLayer } from "../kernels/backend.js";
import type { KernelArray } from "../kernels/index.js";
import { backend } from "../kernels/index.js";
import { addPositions, crossEntropy, dropout } from "../ops/index.js";
import { Rng } from "../random.js";
import { isGradEnabled, noGrad, scope, Tensor } from "../tensor/tensor.js";
import { CausalSelfAttention } from "./attention.js";
import type { AttentionCache } from "./attention-cache.js";
import { Block } from "./block.js";
import type { GPTConfig } from "./config.js";
import { DecodeBuffers, type DecodeRow } from "./decode-step.js";
import { Embedding } from "./embedding.js";
import type { ForwardContext } from "./forward-context.js";
import { LayerNorm } from "./layer-norm.js";
import { Linear } from "./linear.js";
import { MLP } from "./mlp.js";
import { QuantizedEmbedding, QuantizedLinear, type QuantizedWeight, TapeScratch } from "./quantized.js";

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
  /**
   * every parameter held as a float tensor, by its Hugging Face name, in parameterShapes order: all
   * of them, but for the matrices of a quantized model (`quantized`)
   */
  readonly params: Map<string, Tensor>;
  /**
   * the matrices a quantized model holds only as int8 / int4 (src/nn/quantized.ts), by name; they
   * are in `params` too once a float copy of them was made (floatWeight)
   */
  readonly quantized: Map<string, QuantizedWeight>;
  /** the float buffer the tape's products with quantized weights read (null: none are quantized) */
  private readonly scratch: TapeScratch | null;
  /** token and position embeddings: wte (V,C), wpe (blockSize,C) */
  readonly wte: Embedding;
  readonly wpe: Embedding;
  /** the blocks, in order */
  readonly h: readonly Block[];
  /** the final layer norm, before the LM head (tied to wte) */
  readonly ln_f: LayerNorm;

  /**
   * A freshly initialised model (GPT-2's scheme, seeded; a null seed leaves the parameters zero, for
   * weights about to be loaded: GPT.forLoading); or, given `shared`, a model whose parameters are
   * those tensors (a data-parallel replica on another thread: src/train/parallel.ts). The matrices
   * named in `quantized` are those (held int8 / int4, owned by the model from now on), never floats.
   */
  constructor(
    config: GPTConfig,
    seed: number | null = 1337,
    shared?: Map<string, Tensor>,
    quantized: Map<string, QuantizedWeight> = new Map(),
  ) {
    this.config = config;
    this.params = new Map();
    this.quantized = quantized;
    const largest = Math.max(0, ...[...quantized.values()].map((q) => q.size));
    this.scratch = quantized.size > 0 ? new TapeScratch(largest) : null;
    if (shared) {
      for (const [name, shape] of parameterShapes(config)) {
        if (quantized.has(name)) continue;
        const t = shared.get(name);
        if (!t || t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i]))
          throw new Error(`GPT: shared parameter ${name} missing or misshapen`);
        this.params.set(name, t);
      }
    } else this.initParams(seed);
    const p = (name: string) => this.param(name);
    const q = (name: string) => quantized.get(name);
    const scratch = this.scratch as TapeScratch;
    const lin = (name: string) => {
      const w = q(`${name}.weight`);
      return w ? new QuantizedLinear(w, p(`${name}.bias`), scratch) : new Linear(p(`${name}.weight`), p(`${name}.bias`));
    };
    const norm = (name: string) => new LayerNorm(p(`${name}.weight`), p(`${name}.bias`), config.layerNormEps);
    const wte = q("transformer.wte.weight");
    this.wte = wte ? new QuantizedEmbedding(wte, scratch) : new Embedding(p("transformer.wte.weight"));
    this.wpe = new Embedding(p("transformer.wpe.weight"));
    this.h = Array.from({ length: config.nLayer }, (_, l) => {
      const h = `transformer.h.${l}`;
      return new Block(
        norm(`${h}.ln_1`),
        new CausalSelfAttention(lin(`${h}.attn.c_attn`), lin(`${h}.attn.c_proj`), config.nHead, l),
        norm(`${h}.ln_2`),
        new MLP(lin(`${h}.mlp.c_fc`), lin(`${h}.mlp.c_proj`), config.activation),
        l,
      );
    });
    this.ln_f = norm("transformer.ln_f");
  }

  /**
   * A model with zero parameters that loadWeights is about to fill: no random draws, which for
   * GPT-2 124M would cost seconds of start-up spent on numbers thrown away.
   */
  static forLoading(config: GPTConfig, quantized?: Map<string, QuantizedWeight>): GPT {
    return new GPT(config, null, undefined, quantized);
  }

  /** GPT-2's initialisation of every parameter, seeded (null: left zero, see forLoading); quantized ones are given */
  private initParams(seed: number | null): void {
    const config = this.config;
    if (seed === null) {
      for (const [name, shape] of parameterShapes(config)) if (!this.quantized.has(name)) this.params.set(name, Tensor.zeros(shape, true));
      return;
    }
    const rng = new Rng(seed);
    // GPT-2 init: N(0, 0.02) for weights and embeddings, zero biases, LayerNorm = identity, and the
    // projections that write into the residual stream scaled by 1/sqrt(2·nLayer) so its variance
    // does not grow with depth.
    const residStd = 0.02 / Math.sqrt(2 * config.nLayer);
    for (const [name, shape] of parameterShapes(config)) {
      if (this.quantized.has(name)) continue;
      const t = Tensor.zeros(shape, true);
      // drawn on the CPU; a tensor in device memory gets the values copied in
      const d = t.device ? new Float32Array(t.size) : t.data;
      if (name.includes(".ln_")) {
        if (name.endsWith(".weight")) d.fill(1);
      } else if (name.endsWith(".weight")) {
        const std = name.endsWith("c_proj.weight") ? residStd : 0.02;
        for (let i = 0; i < d.length; i++) d[i] = rng.normal() * std;
      }
      if (t.device) t.write(d);
      this.params.set(name, t);
    }
  }

  /** a parameter's tensor (its values may be changed through it: the packed decode copies are dropped) */
  param(name: string): Tensor {
    this.dropPackedWeights();
    const t = this.params.get(name);
    if (!t) throw new Error(`no parameter ${name}`);
    return t;
  }

  parameterCount(): number {
    let n = 0;
    for (const t of this.params.values()) n += t.size;
    for (const [name, q] of this.quantized) if (!this.params.has(name)) n += q.size;
    return n;
  }

  /** every parameter's shape and whether it trains, in parameterShapes order: quantized ones too, counted as their float tensors were */
  parameterInfo(): Map<string, { shape: readonly number[]; requiresGrad: boolean }> {
    return new Map(parameterShapes(this.config).map(([name, shape]) => [name, this.params.get(name) ?? { shape, requiresGrad: true }]));
  }

  /** the float values of any parameter, a copy: a quantized one's dequantized (q·s) */
  weightValues(name: string): Float32Array {
    const t = this.params.get(name);
    if (t) return t.data.slice();
    const q = this.quantized.get(name);
    if (!q) throw new Error(`no parameter ${name}`);
    return q.values();
  }

  /**
   * The float tensor of a parameter; for a quantized matrix a float copy made now (its dequantized
   * values, a parameter like the others from now on: the tape's products read it and it may take a
   * gradient), where a caller needs the floats for good: an adapter merged into the matrix, the
   * gradient of every weight (the learning mode's step). The rest stays quantized.
   */
  floatWeight(name: string): Tensor {
    this.dropPackedWeights();
    const t = this.params.get(name);
    if (t) return t;
    const q = this.quantized.get(name);
    if (!q) throw new Error(`no parameter ${name}`);
    // untracked: it lives as long as the model, not the scope it was asked for in
    const float = new Tensor(q.shape, "f32", true, false);
    q.values(float.data);
    q.float = float;
    this.params.set(name, float);
    return float;
  }

  /**
   * Make this a float32 model: every quantized matrix dequantized (q·s) into a float parameter, its
   * layers plain ones over it, the packed form freed. For training every weight (the web page
   * fine-tuning a loaded quantized model): after it the model computes as an unquantized one.
   */
  dequantize(): void {
    this.dropPackedWeights();
    for (const block of this.h) {
      const h = `transformer.h.${block.index}`;
      const plain = (l: Linear, name: string) =>
        l instanceof QuantizedLinear ? new Linear(this.floatWeight(`${name}.weight`), l.bias) : l;
      block.attn.c_attn = plain(block.attn.c_attn, `${h}.attn.c_attn`);
      block.attn.c_proj = plain(block.attn.c_proj, `${h}.attn.c_proj`);
      block.mlp.c_fc = plain(block.mlp.c_fc, `${h}.mlp.c_fc`);
      block.mlp.c_proj = plain(block.mlp.c_proj, `${h}.mlp.c_proj`);
    }
    if (this.wte instanceof QuantizedEmbedding) {
      this.wte.dispose();
      (this as unknown as { wte: Embedding }).wte = new Embedding(this.floatWeight("transformer.wte.weight"));
    }
    // the float copies are the model's parameters now (takeQuantized leaves them here), in file order
    for (const q of this.takeQuantized(true).values()) q.dispose();
    const order = parameterShapes(this.config).map(([name]) => [name, this.param(name)] as const);
    this.params.clear();
    for (const [name, t] of order) this.params.set(name, t);
  }

  /**
   * the quantized matrices, handed to another model (which owns them from now on); this one keeps
   * none, and their float copies only with keepFloats (as its own parameters)
   */
  takeQuantized(keepFloats = false): Map<string, QuantizedWeight> {
    this.dropPackedWeights();
    const taken = new Map(this.quantized);
    for (const [name, q] of taken)
      if (q.float) {
        // a float copy is this model's parameter: kept as such (keepFloats), or dropped, never the next model's
        if (!keepFloats) {
          this.params.delete(name);
          q.float.dispose();
        }
        q.float = null;
      }
    this.quantized.clear();
    return taken;
  }

  /**
   * Copy weights in by name. Every parameter must be present with the right shape; the error names
   * the tensor (the shape mismatch a user meets when a config and a checkpoint disagree).
   */
  loadWeights(weights: Map<string, { shape: readonly number[]; data: Float32Array }>, source: string): void {
    this.dropPackedWeights();
    for (const [name, t] of this.params) {
      const w = weights.get(name);
      if (!w) fail(`${source}: missing tensor ${name}`);
      if (w.shape.length !== t.shape.length || w.shape.some((d, i) => d !== t.shape[i])) {
        fail(`${source}: tensor ${name} has shape [${w.shape.join(", ")}] but the config needs [${t.shape.join(", ")}]`);
      }
      t.write(w.data);
    }
  }

  /** idx (B,T) int32 -> logits (B,T,V) [, loss] */
  forward(idx: Tensor, options: ForwardOptions = {}): ForwardResult {
    const c = this.config;
    const [, T] = idx.shape as [number, number];
    if (idx.shape.length !== 2) throw new Error(`forward: idx must be (B,T), got [${idx.shape.join(", ")}]`);
    if (T > c.blockSize) fail(`sequence of ${T} tokens is longer than the model's block size ${c.blockSize}`);
    // a forward that records the tape is a training step's: the weights are about to change
    if (isGradEnabled()) this.dropPackedWeights();
    const rng = options.dropoutRng;
    const ctx: ForwardContext = {
      drop: (t) => (rng && c.dropout > 0 ? dropout(t, c.dropout, rng) : t),
      dropoutRng: rng,
      capture: options.capture,
    };
    const x = this.ln_f.forward(this.trunk(idx, 0, ctx)); // (B,T,C)
    ctx.capture?.("ln_f", x);
    const logits = this.lmHead(x); // (B,T,V)
    ctx.capture?.("logits", logits);
    const result: ForwardResult = { logits };
    if (options.targets) result.loss = crossEntropy(logits, options.targets);
    return result;
  }

  /** idx (B,T) at positions pos0.. -> the residual stream after the last block (B,T,C) */
  private trunk(idx: Tensor, pos0: number, ctx: ForwardContext): Tensor {
    let x = ctx.drop(addPositions(this.wte.forward(idx), this.wpe.weight, pos0)); // (B,T,C)
    ctx.capture?.("embedding", x);
    for (const block of this.h) x = block.forward(x, ctx);
    return x;
  }

  /** x (...,C) -> logits (...,V) = x·wteᵀ: the LM head, tied to the token embedding */
  private lmHead(x: Tensor): Tensor {
    return this.wte.head(x);
  }

  /**
   * Prefill: `ids` of one sequence at positions pos0.. (after the pos0 positions its cache holds)
   * through the model, their k and v rows written to `cache` (one AttentionCache per layer); returns
   * the logits (V) of the last one (a copy). The caller checks that they fit in the block.
   */
  prefill(ids: readonly number[], cache: readonly AttentionCache[], pos0: number): Float32Array {
    const logits = this.prefillLogits(ids, cache, pos0);
    try {
      return logits.data.slice();
    } finally {
      logits.dispose();
    }
  }

  /** prefill on any backend: the logits read back asynchronously (a GPU's tensors) */
  prefillAsync(ids: readonly number[], cache: readonly AttentionCache[], pos0: number): Promise<Float32Array> {
    const logits = this.prefillLogits(ids, cache, pos0);
    const values = logits.read(); // ordered before its storage is reused
    logits.dispose();
    return values;
  }

  /** prefill's kernels: the last position's logits (1,V) as a tensor the caller disposes */
  private prefillLogits(ids: readonly number[], cache: readonly AttentionCache[], pos0: number): Tensor {
    const C = this.config.nEmbd;
    const Tn = ids.length;
    return noGrad(() =>
      scope(() => {
        const x = this.trunk(Tensor.ints(ids, [1, Tn]), pos0, { drop: (t) => t, cache: { layers: cache, pos0 } });
        // only the last position's logits are needed
        const last = new Tensor([1, C]);
        backend().copy(last.storage, x.slice((Tn - 1) * C, C), C);
        return this.lmHead(this.ln_f.forward(last));
      }),
    );
  }

  /**
   * One decode step: rows[r].id, the next token of sequence r, at its position rows[r].pos against
   * its own cache (its k and v rows written there) -> logits (R,V), a view of buffers.logits valid
   * until the next step. No tensors, tape or scope per token: buffers (capacity >= R) are reused.
   * Each row is computed as it would be alone (the rows share the weights, not their arithmetic).
   * Rows with `logits: false` get none: the logits are those of the other rows, in order.
   */
  decode(rows: readonly DecodeRow[], buffers: DecodeBuffers): Float32Array {
    return buffers.logits.data.subarray(0, this.decodeKernels(rows, buffers) * this.config.vocabSize);
  }

  /** decode on any backend: the logits (R,V) read back asynchronously (a copy; on a GPU the step's one readback) */
  decodeAsync(rows: readonly DecodeRow[], buffers: DecodeBuffers): Promise<Float32Array> {
    return buffers.logits.read(0, this.decodeKernels(rows, buffers) * this.config.vocabSize);
  }

  /** decode's kernels, leaving the logits of the rows that want them in buffers.logits; returns how many */
  private decodeKernels(rows: readonly DecodeRow[], buffers: DecodeBuffers): number {
    const { nEmbd: C, vocabSize: V } = this.config;
    const R = rows.length;
    if (R > buffers.capacity) throw new Error(`decode: ${R} rows, buffers for ${buffers.capacity}`);
    const be = backend();
    const s = buffers;
    for (let r = 0; r < R; r++) {
      const { id, pos } = rows[r] as DecodeRow;
      if (!Number.isInteger(id) || id < 0 || id >= V) throw new RangeError(`embedding: id ${id} out of range for a table of ${V} rows`);
      // token + position embedding (embedding, then addPositions: one addition per element)
      be.add(DecodeBuffers.row(s.x, r), this.wte.row(id), this.wpe.row(pos), C);
    }
    if (!this.trunkRows(s, rows)) for (const block of this.h) block.decode(s, rows);
    this.ln_f.rows(s.a, s.x, R, s.mean, s.rstd);
    // the head only for the rows that want logits, moved up to be the first ones (a row moves to
    // a row before it, so in place)
    let n = 0;
    for (let r = 0; r < R; r++) {
      if ((rows[r] as DecodeRow).logits === false) continue;
      if (n < r) be.copy(DecodeBuffers.row(s.a, n), DecodeBuffers.row(s.a, r), C);
      n++;
    }
    if (n > 0) this.wte.headRows(s.logits, s.a, n);
    return n;
  }

  /**
   * Every block of a decode step at once where the backend offers it (Backend.trunkRows: the same
   * bits as block by block; the wasm backend's threads then take whole rows through every block in
   * one round trip); false when it does not, or a layer is not plain (then block by block).
   */
  private trunkRows(s: DecodeBuffers, rows: readonly DecodeRow[]): boolean {
    const be = backend();
    if (!be.trunkRows) return false;
    const { nEmbd: C, nHead: nh, nInner: H, activation, layerNormEps: eps } = this.config;
    const layers: TrunkLayer<KernelArray>[] = [];
    for (const block of this.h) {
      const layer = block.trunkLayer(eps);
      if (!layer) return false;
      layers.push(layer);
    }
    return be.trunkRows({
      ...{ x: s.x.storage, a: s.a.storage, mean: s.mean.storage, rstd: s.rstd.storage },
      ...{ qkv: s.qkv.storage, att: s.att.storage, y: s.y.storage, h: s.h.storage },
      layers,
      rows: this.h.map((_, l) =>
        rows.map(({ cache, pos }) => {
          const kv = cache[l] as AttentionCache;
          return { keys: kv.keys.storage, values: kv.values.storage, pos };
        }),
      ),
      R: rows.length,
      C,
      nh,
      H,
      relu: activation === "relu",
      eps,
      // a prompt's rows before its last want no logits: the last block's attention and MLP skip them
      outputs: rows.map((r) => r.logits !== false),
    });
  }

  /**
   * Lay every plain block's attention and MLP matrices out once for the backend's decode steps of
   * many rows (Block.pack: the wasm backend's 4-column panels, which a step of 2 or more rows reads
   * faster; the same bits): for a model whose weights stay as they are while it decodes many rows a
   * step (a server). The copies cost as much memory again as those matrices (the bytes are
   * returned; 0: the backend has no such layout) and are a snapshot: every method here that can
   * change weights drops them (param, floatWeight, loadWeights, dequantize, takeQuantized, a forward
   * that records the tape, dispose; attaching or merging an adapter), and whoever writes weights
   * through `params` directly calls dropPackedWeights.
   */
  packDecodeWeights(): number {
    let bytes = 0;
    for (const block of this.h) bytes += block.pack();
    return bytes;
  }

  /** frees packDecodeWeights' copies (the decode reads the row-major matrices again) */
  dropPackedWeights(): void {
    // (param is called while the constructor makes the blocks: none yet)
    for (const block of this.h ?? []) block.unpack();
  }

  zeroGrad(): void {
    for (const t of this.params.values()) t.zeroGrad();
  }

  dispose(): void {
    this.dropPackedWeights();
    for (const t of this.params.values()) t.dispose();
    for (const q of this.quantized.values()) q.dispose();
    if (this.wte instanceof QuantizedEmbedding) this.wte.dispose();
    this.scratch?.dispose();
  }
}
