/**
 * LoRA (Hu et al. 2021) on the model's linear layers, as PEFT computes it for GPT-2's Conv1D:
 *
 *   y = x·W + b + scaling·(x·Aᵀ)·Bᵀ      A (r, in), B (out, r), scaling = lora_alpha / r
 *
 * W and b stay frozen; only A and B train. A starts U(-1/sqrt(in), 1/sqrt(in)) (PEFT's
 * kaiming_uniform_(a=sqrt(5))) and B at zero, so a new adapter leaves the model's output unchanged.
 * The adapter's file format is io/lora.ts (PEFT's); attachLora puts one on a model, merge folds
 * it into the weights (W += scaling·(B·A)ᵀ), after which the model is a plain GPT again.
 *
 * Training (PEFT's forward): the adapter's path sees its input through a dropout of its own,
 * scaling·(dropout(x)·Aᵀ)·Bᵀ, drawn from the forward pass's dropout PRNG; and the rows of wte that
 * a fine-tune added (PEFT's trainable tokens: chat special tokens, new characters) train with it,
 * the rest of the table frozen.
 */

import { type LoraAdapter, type LoraConfig, loraKey, loraModules, mergeLoraLayer, TOKENS_KEY } from "../io/lora.js";
import { backend } from "../kernels/index.js";
import { dropout, embeddingTail, gelu, linearLora, matmulTransposedTail } from "../ops/index.js";
import type { Rng } from "../random.js";
import { Tensor } from "../tensor/tensor.js";
import { Embedding } from "./embedding.js";
import type { ForwardContext } from "./forward-context.js";
import type { GPT } from "./gpt.js";
import { Linear } from "./linear.js";

/** A frozen linear layer with a LoRA adapter beside it. */
export class LoraLinear extends Linear {
  /** r floats of scratch for rows() */
  private readonly u: Tensor;

  constructor(
    readonly base: Linear,
    /** (r, in) */
    readonly loraA: Tensor,
    /** (out, r) */
    readonly loraB: Tensor,
    readonly scaling: number,
    /** lora_dropout: on the adapter's input while training (the forward pass has a dropout PRNG) */
    readonly dropout = 0,
  ) {
    super(null, base.bias, [base.inFeatures, base.outFeatures]);
    this.u = Tensor.zeros([loraA.shape[0] as number]);
  }

  /** the base's float W (a quantized base has none: withWeight) */
  override get weight(): Tensor {
    return this.base.weight;
  }

  override withWeight(op: (w: Tensor) => Tensor): Tensor {
    return this.base.withWeight(op);
  }

  get rank(): number {
    return this.loraA.shape[0] as number;
  }

  /** x·W + b + scaling·(x·Aᵀ)·Bᵀ as one op (ops/lora.ts); the adapter's x through its dropout while training */
  override forward(x: Tensor, ctx?: ForwardContext): Tensor {
    const rng = ctx?.dropoutRng;
    const xa = rng && this.dropout > 0 ? dropout(x, this.dropout, rng) : x;
    return this.base.withWeight((w) => linearLora(x, xa, w, this.bias, this.loraA, this.loraB, this.scaling));
  }

  override forwardGelu(x: Tensor, ctx?: ForwardContext): Tensor {
    return gelu(this.forward(x, ctx));
  }

  override rows(out: Tensor, x: Tensor, M: number): void {
    // the base's own rows: a quantized base's integer kernels, as its folder decodes
    this.base.rows(out, x, M);
    const K = this.inFeatures;
    const N = this.outFeatures;
    const r = this.rank;
    const be = backend();
    const u = this.u.data;
    for (let m = 0; m < M; m++) {
      be.matmulBT(u, x.data.subarray(m * K, (m + 1) * K), this.loraA.data, 1, K, r, false);
      be.scale(u, r, this.scaling);
      be.matmulBT(out.data.subarray(m * N, (m + 1) * N), u, this.loraB.data, 1, r, N, true);
    }
  }

  override plain(): null {
    return null;
  }

  dispose(): void {
    this.u.dispose();
  }
}

/**
 * The token embedding with its last rows training (PEFT's trainable tokens, for the tokens a fine-tune
 * added at the end of the vocabulary): `tail` is a view of those rows of the frozen table, so the
 * lookup and the tied LM head read their current values and only they get a gradient.
 */
class TrainableTailEmbedding extends Embedding {
  constructor(
    weight: Tensor,
    /** (n, C): a view of weight's last n rows */
    readonly tail: Tensor,
  ) {
    super(weight);
  }

  override forward(ids: Tensor): Tensor {
    return embeddingTail(this.weight, ids, this.tail);
  }

  override head(x: Tensor): Tensor {
    return matmulTransposedTail(x, this.weight, this.tail);
  }
}

/** The adapters on a model: their tensors under PEFT's keys (what trains and what is saved). */
export interface LoraAttachment {
  config: LoraConfig;
  /** lora_A / lora_B tensors by PEFT key, in model order, then the trained rows of wte (trainable tokens) */
  params: Map<string, Tensor>;
  layers: { module: string; layer: LoraLinear }[];
}

/** the Linear slot of a module name ("transformer.h.3.mlp.c_fc") on a model, to read and replace */
function slot(model: GPT, module: string): { get: () => Linear; set: (l: Linear) => void } {
  const m = /^transformer\.h\.(\d+)\.(attn|mlp)\.(c_attn|c_proj|c_fc)$/.exec(module);
  if (!m) throw new Error(`LoRA: no linear layer ${module}`);
  const block = model.h[Number(m[1])];
  if (!block) throw new Error(`LoRA: no block ${m[1]}`);
  const owner = (m[2] === "attn" ? block.attn : block.mlp) as unknown as Record<string, Linear>;
  const name = m[3] as string;
  return {
    get: () => owner[name] as Linear,
    set: (l) => {
      owner[name] = l;
    },
  };
}

/** the model's token embedding, replaceable (a trainable tail goes in while an adapter trains) */
function setWte(model: GPT, wte: Embedding): void {
  (model as unknown as { wte: Embedding }).wte = wte;
}

/** are `tokens` the last rows of a table of V rows, in order? (the tokens a fine-tune adds are) */
function isTail(tokens: readonly number[], V: number): boolean {
  return tokens.every((id, i) => id === V - tokens.length + i);
}

/**
 * Freeze the model and put LoRA adapters on the layers `config.targets` selects: with the weights
 * of `init` (an adapter read from a file), new ones drawn from `init` (an Rng: A uniform, B 0), or
 * the tensors themselves (a Map by PEFT key: a data-parallel replica over the main thread's
 * adapter). The rows of wte that config.trainableTokens lists take the adapter's values (a file's);
 * when they are the table's last rows (the tokens a fine-tune added) they train too.
 */
export function attachLora(model: GPT, config: LoraConfig, init: LoraAdapter | Rng | Map<string, Tensor>): LoraAttachment {
  // an adapted layer's decode goes through its rows(), not a packed copy (and merging changes W)
  model.dropPackedWeights();
  for (const t of model.params.values()) t.requiresGrad = false;
  const params = new Map<string, Tensor>();
  const layers: LoraAttachment["layers"] = [];
  const scaling = config.alpha / config.rank;
  const modules = loraModules(model.config, config.targets);
  const shared = init instanceof Map ? init : null;
  const loaded = "layers" in init ? new Map(init.layers.map((l) => [l.module, l])) : null;
  for (const { module, inFeatures, outFeatures } of modules) {
    const keyA = loraKey(module, "A");
    const keyB = loraKey(module, "B");
    let a: Tensor;
    let b: Tensor;
    if (shared) {
      const sa = shared.get(keyA);
      const sb = shared.get(keyB);
      if (!sa || !sb) throw new Error(`LoRA: no shared tensors for ${module}`);
      a = sa;
      b = sb;
    } else {
      a = Tensor.zeros([config.rank, inFeatures], true);
      b = Tensor.zeros([outFeatures, config.rank], true);
      const from = loaded?.get(module);
      if (loaded) {
        if (!from) throw new Error(`LoRA: the adapter has no weights for ${module}`);
        a.data.set(from.a);
        b.data.set(from.b);
      } else {
        const rng = init as Rng;
        const bound = 1 / Math.sqrt(inFeatures);
        for (let i = 0; i < a.size; i++) a.data[i] = (rng.random() * 2 - 1) * bound;
      }
    }
    const s = slot(model, module);
    const layer = new LoraLinear(s.get(), a, b, scaling, config.dropout);
    s.set(layer);
    params.set(keyA, a);
    params.set(keyB, b);
    layers.push({ module, layer });
  }
  const tokens = config.trainableTokens;
  if (tokens.length > 0) {
    // rows written into the table (or training) need it in floats: a quantized table gets a float copy
    const wte = model.floatWeight("transformer.wte.weight");
    wte.requiresGrad = false;
    const [V, C] = wte.shape as [number, number];
    const rows = !shared && "layers" in init ? init.tokenRows : undefined;
    if (rows) for (const [i, id] of tokens.entries()) wte.data.set(rows.subarray(i * C, (i + 1) * C), id * C);
    if (isTail(tokens, V)) {
      const tail = Tensor.view(wte.ptr + (V - tokens.length) * C * 4, [tokens.length, C], "f32", true);
      setWte(model, new TrainableTailEmbedding(wte, tail));
      params.set(TOKENS_KEY, tail);
    }
  }
  return { config, params, layers };
}

/** The attachment's current weights, as the adapter file holds them. */
export function loraAdapterOf(attachment: LoraAttachment): LoraAdapter {
  return {
    config: attachment.config,
    layers: attachment.layers.map(({ module, layer }) => ({
      module,
      inFeatures: layer.inFeatures,
      outFeatures: layer.outFeatures,
      a: layer.loraA.data.slice(),
      b: layer.loraB.data.slice(),
    })),
    tokenRows: attachment.params.get(TOKENS_KEY)?.data.slice(),
  };
}

/**
 * Fold an adapter into the model's weights (W += scaling·(B·A)ᵀ, as PEFT's merge_and_unload) and
 * put the plain layers back: the model is then an ordinary GPT with no adapter.
 */
export function mergeLora(model: GPT, attachment: LoraAttachment): void {
  const adapter = loraAdapterOf(attachment);
  const scaling = attachment.config.alpha / attachment.config.rank;
  for (const [i, { module, layer }] of attachment.layers.entries()) {
    // a quantized base's matrix gets a float copy to merge into
    const weight = model.floatWeight(`${module}.weight`);
    mergeLoraLayer(weight.data, adapter.layers[i]!, attachment.config.rank, scaling);
    // a base that is more than its float weight (quantized) would decode without the adapter: the
    // merged float weight is what the layer is now
    slot(model, module).set(layer.base.plain() ? layer.base : new Linear(weight, layer.bias));
    layer.dispose();
    layer.loraA.dispose();
    layer.loraB.dispose();
  }
  // trained rows are wte's own (the tail is a view of them): the plain lookup reads them
  if (model.wte instanceof TrainableTailEmbedding) {
    model.wte.tail.dispose();
    setWte(model, new Embedding(model.wte.weight));
  }
  // a plain GPT again, whose every parameter may train (explain-step, a fine-tune of the merged model)
  for (const t of model.params.values()) t.requiresGrad = true;
}
