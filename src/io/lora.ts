/**
 * LoRA adapters in PEFT's format (https://huggingface.co/docs/peft), without the file system (the
 * browser uses it as it is; the folder half is io/lora-folder.ts):
 *
 *   adapter_config.json         PEFT's LoraConfig: peft_type "LORA", r, lora_alpha, lora_dropout,
 *                               target_modules, fan_in_fan_out (true: GPT-2's Conv1D stores W (in, out)),
 *                               base_model_name_or_path, trainable_token_indices, ...
 *   adapter_model.safetensors   base_model.model.transformer.h.{i}.{attn.c_attn|...}.lora_A.weight (r, in)
 *                               base_model.model.transformer.h.{i}.{...}.lora_B.weight (out, r)
 *                               base_model.model.transformer.wte.token_adapter.trainable_tokens_delta
 *                               (n, C): the trained rows of wte listed in trainable_token_indices
 *
 * A targeted layer computes y = x·W + b + scaling·(x·Aᵀ)·Bᵀ with scaling = lora_alpha / r; merging
 * folds the same product into the weight, W += scaling·(B·A)ᵀ. PEFT's trainable tokens hold the
 * rows' new values (not deltas, whatever the name says): they replace those rows of wte.
 */
import { fail } from "../errors.js";
import type { GPTConfig } from "../nn/config.js";
import type { SafetensorsFile, TensorToWrite } from "./safetensors.js";

/** What an adapter is, in minigpt's words (adapter_config.json holds it in PEFT's). */
export interface LoraConfig {
  rank: number;
  alpha: number;
  dropout: number;
  /** PEFT's target_modules: names matched by suffix ("c_proj" is attn.c_proj and mlp.c_proj), or one regular expression for the whole name */
  targets: string[] | string;
  /** where the base model lives (base_model_name_or_path): a folder, relative to the adapter's or absolute, or a Hub name */
  base: string;
  /** rows of wte that train with the adapter (tokens a fine-tune added); their values are stored whole */
  trainableTokens: number[];
}

/** The layers a LoRA adapter may target: GPT-2's Conv1D layers, by their names inside a block. */
const LORA_LAYERS = ["attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj"] as const;

/** PEFT's prefix of every key in adapter_model.safetensors (PeftModel wraps GPT2LMHeadModel as base_model.model). */
const PEFT_PREFIX = "base_model.model.";
export const TOKENS_KEY = `${PEFT_PREFIX}transformer.wte.token_adapter.trainable_tokens_delta`;

/** One adapted layer: A (r, in) and B (out, r), row-major. */
interface LoraLayerWeights {
  /** the module's Hugging Face name, e.g. "transformer.h.0.attn.c_attn" */
  module: string;
  inFeatures: number;
  outFeatures: number;
  a: Float32Array;
  b: Float32Array;
}

export interface LoraAdapter {
  config: LoraConfig;
  layers: LoraLayerWeights[];
  /** trainableTokens.length x C: the rows' values */
  tokenRows?: Float32Array;
}

/** The modules of a model that `targets` selects, with their Conv1D shapes (in, out), in model order. */
export function loraModules(model: GPTConfig, targets: string[] | string): { module: string; inFeatures: number; outFeatures: number }[] {
  const C = model.nEmbd;
  const shape: Record<(typeof LORA_LAYERS)[number], [number, number]> = {
    "attn.c_attn": [C, 3 * C],
    "attn.c_proj": [C, C],
    "mlp.c_fc": [C, model.nInner],
    "mlp.c_proj": [model.nInner, C],
  };
  const out: { module: string; inFeatures: number; outFeatures: number }[] = [];
  for (let l = 0; l < model.nLayer; l++)
    for (const layer of LORA_LAYERS) {
      const module = `transformer.h.${l}.${layer}`;
      if (!targetMatches(module, targets)) continue;
      const [inFeatures, outFeatures] = shape[layer];
      out.push({ module, inFeatures, outFeatures });
    }
  return out;
}

/**
 * PEFT's check_target_module_exists: a list matches a module whose name is an item or ends with
 * "." + item; a string is a regular expression the whole name must match.
 */
export function targetMatches(module: string, targets: string[] | string): boolean {
  if (typeof targets === "string") return new RegExp(`^(?:${targets})$`).test(module);
  return targets.some((t) => module === t || module.endsWith(`.${t}`));
}

/** adapter_config.json's options minigpt does not implement, each with what the user can do. */
const UNSUPPORTED: { key: string; isSet: (v: unknown) => boolean; why: string }[] = [
  { key: "use_dora", isSet: (v) => v === true, why: "DoRA (use_dora) is not implemented; train a plain LoRA adapter (use_dora: false)" },
  {
    key: "use_rslora",
    isSet: (v) => v === true,
    why: "rank-stabilized LoRA (use_rslora, scaling alpha/sqrt(r)) is not implemented; use use_rslora: false",
  },
  { key: "rank_pattern", isSet: nonEmpty, why: "per-layer ranks (rank_pattern) are not implemented; every layer must use r" },
  { key: "alpha_pattern", isSet: nonEmpty, why: "per-layer alphas (alpha_pattern) are not implemented; every layer must use lora_alpha" },
  {
    key: "bias",
    isSet: (v) => v !== undefined && v !== null && v !== "none",
    why: 'trained biases (bias other than "none") are not implemented; merge the adapter in PEFT (merge_and_unload) and load the merged model',
  },
  {
    key: "modules_to_save",
    isSet: nonEmpty,
    why: "fully trained extra modules (modules_to_save) are not implemented; merge the adapter in PEFT (merge_and_unload) and load the merged model",
  },
  {
    key: "layers_to_transform",
    isSet: nonEmpty,
    why: "adapters on some layers only (layers_to_transform) are not implemented; target every layer",
  },
  { key: "layer_replication", isSet: nonEmpty, why: "layer_replication is not implemented" },
];

function nonEmpty(v: unknown): boolean {
  if (v === undefined || v === null) return false;
  if (Array.isArray(v)) return v.length > 0;
  if (typeof v === "object") return Object.keys(v).length > 0;
  return true;
}

/** adapter_config.json -> LoraConfig; an option minigpt does not implement is one line naming it. */
export function loraConfigFromJson(json: Record<string, unknown>, label: string): LoraConfig {
  if (json.peft_type !== "LORA")
    fail(`${label}: peft_type is ${JSON.stringify(json.peft_type)}; minigpt loads LoRA adapters only (peft_type "LORA")`);
  for (const option of UNSUPPORTED) if (option.isSet(json[option.key])) fail(`${label}: ${option.why}`);
  const rank = json.r;
  if (!Number.isInteger(rank) || (rank as number) < 1) fail(`${label}: r must be a positive integer, got ${JSON.stringify(rank)}`);
  const alpha = json.lora_alpha ?? 8; // PEFT's default
  if (typeof alpha !== "number" || !Number.isFinite(alpha)) fail(`${label}: lora_alpha must be a number, got ${JSON.stringify(alpha)}`);
  const dropout = json.lora_dropout ?? 0;
  if (typeof dropout !== "number" || !(dropout >= 0 && dropout < 1))
    fail(`${label}: lora_dropout must be a number in [0, 1), got ${JSON.stringify(dropout)}`);
  const targets = json.target_modules;
  const targetList = Array.isArray(targets) && targets.length > 0 && targets.every((t) => typeof t === "string");
  if (!targetList && typeof targets !== "string")
    fail(`${label}: target_modules must name the layers (e.g. ["c_attn"]), got ${JSON.stringify(targets)}`);
  if (typeof targets === "string") {
    try {
      new RegExp(targets);
    } catch {
      fail(`${label}: target_modules ${JSON.stringify(targets)} is neither a list of names nor a valid regular expression`);
    }
  }
  const base = json.base_model_name_or_path;
  if (typeof base !== "string" || base.length === 0)
    fail(`${label}: base_model_name_or_path is missing; it must say where the base model lives (a model folder)`);
  return {
    rank: rank as number,
    alpha,
    dropout,
    targets: targets as string[] | string,
    base,
    trainableTokens: trainableTokenIndices(json.trainable_token_indices, label),
  };
}

/** trainable_token_indices: a list (the input embedding's rows) or {"wte": [...]} (GPT-2's tied wte/lm_head) */
function trainableTokenIndices(v: unknown, label: string): number[] {
  if (v === undefined || v === null) return [];
  let list = v;
  if (typeof v === "object" && !Array.isArray(v)) {
    const entries = Object.entries(v as Record<string, unknown>);
    const other = entries.find(([k]) => !k.endsWith("wte") && !k.endsWith("lm_head"));
    if (other)
      fail(`${label}: trainable_token_indices names ${other[0]}; minigpt trains rows of wte (the tied embedding and LM head) only`);
    list = entries[0]?.[1] ?? [];
  }
  if (!Array.isArray(list) || !list.every((i) => Number.isInteger(i) && i >= 0))
    fail(`${label}: trainable_token_indices must be a list of token ids, got ${JSON.stringify(v)}`);
  return list as number[];
}

/** LoraConfig -> adapter_config.json, with the keys PEFT writes (so PEFT's from_pretrained reads it as its own). */
export function loraConfigToJson(c: LoraConfig): Record<string, unknown> {
  return {
    alpha_pattern: {},
    auto_mapping: null,
    base_model_name_or_path: c.base,
    bias: "none",
    fan_in_fan_out: true,
    inference_mode: true,
    init_lora_weights: true,
    layer_replication: null,
    layers_pattern: null,
    layers_to_transform: null,
    loftq_config: {},
    lora_alpha: c.alpha,
    lora_dropout: c.dropout,
    modules_to_save: null,
    peft_type: "LORA",
    r: c.rank,
    rank_pattern: {},
    revision: null,
    target_modules: c.targets,
    task_type: "CAUSAL_LM",
    trainable_token_indices: c.trainableTokens.length > 0 ? { wte: c.trainableTokens } : null,
    use_dora: false,
    use_rslora: false,
  };
}

/** PEFT's key of a module's lora_A or lora_B */
export function loraKey(module: string, which: "A" | "B"): string {
  return `${PEFT_PREFIX}${module}.lora_${which}.weight`;
}

/**
 * The adapter's tensors, checked against the base model it is for: every targeted layer present
 * with A (r, in) and B (out, r), nothing for a layer the base lacks. An adapter made for another
 * base (other widths or depth) or with other ranks than its config says is one line naming the tensor.
 */
export function loraAdapterFromSafetensors(file: SafetensorsFile, config: LoraConfig, model: GPTConfig, label: string): LoraAdapter {
  const modules = loraModules(model, config.targets);
  const expected = new Set<string>();
  const layers: LoraLayerWeights[] = [];
  const tensor = (key: string, shape: [number, number], what: string): Float32Array => {
    const t = file.tensors.get(key) ?? file.tensors.get(key.replace(/\.weight$/, ".default.weight"));
    if (!t) fail(`${label}: missing tensor ${key} (${what}); the adapter's target_modules say the layer is adapted`);
    if (!(t.data instanceof Float32Array)) fail(`${label}: tensor ${key} has dtype ${t.dtype}, expected a float type`);
    if (t.shape.length !== 2 || t.shape[0] !== shape[0] || t.shape[1] !== shape[1]) {
      // which side disagrees says whether the base or the rank is wrong
      const baseSide = what.startsWith("lora_A") ? 1 : 0;
      const rankSide = 1 - baseSide;
      if (t.shape.length === 2 && t.shape[rankSide] === shape[rankSide])
        fail(
          `${label}: tensor ${key} has shape [${t.shape.join(", ")}] but the base model's layer needs [${shape.join(", ")}]; the adapter was made for another base model (its base_model_name_or_path says ${config.base})`,
        );
      fail(
        `${label}: tensor ${key} has shape [${t.shape.join(", ")}] but r = ${config.rank} and the base model's layer need [${shape.join(", ")}]; the adapter's rank does not match its adapter_config.json`,
      );
    }
    return t.data;
  };
  for (const { module, inFeatures, outFeatures } of modules) {
    const keyA = loraKey(module, "A");
    const keyB = loraKey(module, "B");
    expected.add(keyA).add(keyB);
    const a = tensor(keyA, [config.rank, inFeatures], `lora_A, (r, in)`);
    const b = tensor(keyB, [outFeatures, config.rank], `lora_B, (out, r)`);
    layers.push({ module, inFeatures, outFeatures, a, b });
  }
  let tokenRows: Float32Array | undefined;
  if (config.trainableTokens.length > 0) {
    expected.add(TOKENS_KEY);
    const rows = tensor(TOKENS_KEY, [config.trainableTokens.length, model.nEmbd], "the trained rows of wte");
    const outside = config.trainableTokens.find((i) => i >= model.vocabSize);
    if (outside !== undefined)
      fail(
        `${label}: trainable_token_indices holds token ${outside} but the model has ${model.vocabSize} tokens; the adapter is for another base`,
      );
    tokenRows = rows;
  }
  for (const key of file.tensors.keys()) {
    if (expected.has(key) || expected.has(key.replace(/\.default\.weight$/, ".weight"))) continue;
    fail(
      `${label}: tensor ${key} is not a LoRA weight of a layer this base model has (${model.nLayer} layers, target_modules ${JSON.stringify(config.targets)}); the adapter was made for another base model`,
    );
  }
  if (layers.length === 0)
    fail(`${label}: target_modules ${JSON.stringify(config.targets)} matches no layer of GPT-2 (${LORA_LAYERS.join(", ")})`);
  return { config, layers, tokenRows };
}

/** adapter_model.safetensors' tensors, under PEFT's keys. */
export function loraAdapterTensors(adapter: LoraAdapter): TensorToWrite[] {
  const r = adapter.config.rank;
  const out: TensorToWrite[] = [];
  for (const l of adapter.layers) {
    out.push({ name: loraKey(l.module, "A"), dtype: "F32", shape: [r, l.inFeatures], data: l.a });
    out.push({ name: loraKey(l.module, "B"), dtype: "F32", shape: [l.outFeatures, r], data: l.b });
  }
  if (adapter.tokenRows) {
    const n = adapter.config.trainableTokens.length;
    out.push({ name: TOKENS_KEY, dtype: "F32", shape: [n, adapter.tokenRows.length / n], data: adapter.tokenRows });
  }
  return out;
}

/**
 * Fold a layer's adapter into its Conv1D weight w (in, out), in place: W += scaling·(B·A)ᵀ, i.e.
 * w[i][o] += scaling · Σ_k B[o][k]·A[k][i] (what PEFT's merge_and_unload does with fan_in_fan_out).
 */
export function mergeLoraLayer(w: Float32Array, layer: LoraLayerWeights, rank: number, scaling: number): void {
  const { inFeatures: IN, outFeatures: OUT, a, b } = layer;
  for (let i = 0; i < IN; i++)
    for (let o = 0; o < OUT; o++) {
      let s = 0;
      for (let k = 0; k < rank; k++) s += b[o * rank + k]! * a[k * IN + i]!;
      w[i * OUT + o]! += scaling * s;
    }
}
