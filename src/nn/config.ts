import { fail } from "../errors.js";

/** The activation inside the MLP. GPT-2 uses the tanh GELU; some small models use ReLU (HF `activation_function: "relu"`). */
export type Activation = "gelu_new" | "relu";

export interface GPTConfig {
  vocabSize: number;
  /** context length: the most positions the model can see (HF: n_positions) */
  blockSize: number;
  nLayer: number;
  nHead: number;
  nEmbd: number;
  /** feed-forward width, 4·nEmbd by default (other codebases' ff_dim, or mlp_ratio·nEmbd) */
  nInner: number;
  dropout: number;
  activation: Activation;
  layerNormEps: number;
}

export function makeConfig(partial: Partial<GPTConfig> & Pick<GPTConfig, "vocabSize">): GPTConfig {
  const nEmbd = partial.nEmbd ?? 128;
  const config: GPTConfig = {
    vocabSize: partial.vocabSize,
    blockSize: partial.blockSize ?? 64,
    nLayer: partial.nLayer ?? 4,
    nHead: partial.nHead ?? 4,
    nEmbd,
    nInner: partial.nInner ?? 4 * nEmbd,
    dropout: partial.dropout ?? 0,
    activation: partial.activation ?? "gelu_new",
    layerNormEps: partial.layerNormEps ?? 1e-5,
  };
  validateConfig(config);
  return config;
}

/** `where`: the file the config came from (a user can fix that file), else "config" */
function validateConfig(c: GPTConfig, where = "config"): void {
  for (const key of ["vocabSize", "blockSize", "nLayer", "nHead", "nEmbd", "nInner"] as const) {
    if (!Number.isInteger(c[key]) || c[key] < 1) fail(`${where}: ${key} must be a positive integer, got ${c[key]}`);
  }
  if (c.nEmbd % c.nHead !== 0) fail(`${where}: n_embd ${c.nEmbd} must be divisible by n_head ${c.nHead}`);
  if (!(c.dropout >= 0 && c.dropout < 1)) fail(`${where}: dropout must be in [0, 1), got ${c.dropout}`);
  if (c.activation !== "gelu_new" && c.activation !== "relu") fail(`${where}: unsupported activation "${c.activation}"`);
}

/** Hugging Face GPT2Config keys, plus a "minigpt" object for what HF has no key for. */
export function configToHuggingFace(c: GPTConfig, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    architectures: ["GPT2LMHeadModel"],
    model_type: "gpt2",
    vocab_size: c.vocabSize,
    n_positions: c.blockSize,
    n_ctx: c.blockSize,
    n_embd: c.nEmbd,
    n_layer: c.nLayer,
    n_head: c.nHead,
    n_inner: c.nInner,
    activation_function: c.activation,
    resid_pdrop: c.dropout,
    embd_pdrop: c.dropout,
    attn_pdrop: c.dropout,
    layer_norm_epsilon: c.layerNormEps,
    initializer_range: 0.02,
    tie_word_embeddings: true,
    torch_dtype: "float32",
    minigpt: { version: 1, ...extra },
  };
}

/** Read a Hugging Face GPT-2 config.json. `file` names the file in error messages. */
export function configFromHuggingFace(json: Record<string, unknown>, file: string): GPTConfig {
  const int = (key: string, fallback?: number): number => {
    const v = json[key] ?? fallback;
    if (typeof v !== "number" || !Number.isInteger(v) || v < 1)
      fail(`${file}: "${key}" must be a positive integer, got ${JSON.stringify(v)}`);
    return v;
  };
  const nEmbd = int("n_embd");
  const act = json.activation_function ?? "gelu_new";
  let activation: Activation;
  if (act === "gelu_new" || act === "gelu_pytorch_tanh") activation = "gelu_new";
  else if (act === "relu") activation = "relu";
  else
    fail(
      `${file}: activation_function ${JSON.stringify(act)} is not supported (minigpt implements "gelu_new"/"gelu_pytorch_tanh", the tanh GELU, and "relu"; HF's "gelu" is the exact erf GELU)`,
    );
  const inner = json.n_inner;
  const tie = json.tie_word_embeddings;
  if (tie === false) fail(`${file}: tie_word_embeddings false is not supported: minigpt ties the LM head to wte as GPT-2 does`);
  // a value out of range is a damaged or hand-edited file, named here rather than quietly replaced
  for (const key of ["resid_pdrop", "embd_pdrop", "attn_pdrop"]) {
    const p = json[key];
    if (p !== undefined && !(typeof p === "number" && p >= 0 && p < 1))
      fail(`${file}: "${key}" must be a dropout probability in [0, 1), got ${JSON.stringify(p)}`);
  }
  const dropout = (json.resid_pdrop as number | undefined) ?? 0;
  const eps = json.layer_norm_epsilon ?? 1e-5;
  if (!(typeof eps === "number" && Number.isFinite(eps) && eps > 0))
    fail(`${file}: "layer_norm_epsilon" must be a small positive number (GPT-2: 1e-5), got ${JSON.stringify(eps)}`);
  const config: GPTConfig = {
    vocabSize: int("vocab_size"),
    blockSize: int("n_positions", json.n_ctx as number | undefined),
    nLayer: int("n_layer"),
    nHead: int("n_head"),
    nEmbd,
    nInner: inner === null || inner === undefined ? 4 * nEmbd : int("n_inner"),
    dropout,
    activation,
    layerNormEps: eps,
  };
  validateConfig(config, file);
  return config;
}
