/**
 * Learning mode: run the model on a prompt and show what happens inside it, stage by stage. The
 * forward pass is the model's own (GPT.forward with its `capture` hook); nothing is re-implemented
 * except the attention weights, which the fused kernel never stores: they are recomputed from the
 * captured q and k as softmax(q·kᵀ/√hs) with the causal mask, exactly what the kernel uses.
 */
import { type GPT, parameterShapes } from "../nn/gpt.js";
import { clipGradNorm, clipGradNormAsync } from "../optim/adamw.js";
import { noGrad, scope, Tensor } from "../tensor/tensor.js";
import type { Tokenizer } from "../tokenizer/types.js";

export type ExplainLevel = "brief" | "full";

export interface StageRecord {
  name: string;
  shape: number[];
  /** the stage's values at the last position (C or V floats, or 3C for qkv) */
  last: Float32Array;
  /** mean and standard deviation over the whole tensor */
  mean: number;
  std: number;
}

export interface ForwardTrace {
  ids: number[];
  stages: StageRecord[];
  /** attention[layer][head]: (T,T) row-major; row = query position, column = key position */
  attention: Float32Array[][];
  /** logits (V) of the next token after the last position */
  nextLogits: Float32Array;
}

/**
 * softmax(q·kᵀ/√hs) per head from a (T,3C) qkv block (q | k | v, heads side by side as in GPT-2),
 * causal: position t attends to 0..t. Computed in float64.
 */
export function attentionWeights(qkv: ArrayLike<number>, T: number, C: number, nHead: number): Float32Array[] {
  const hs = C / nHead;
  const scale = 1 / Math.sqrt(hs);
  const heads: Float32Array[] = [];
  for (let h = 0; h < nHead; h++) {
    const w = new Float32Array(T * T);
    const row = new Float64Array(T);
    for (let t = 0; t < T; t++) {
      let max = -Infinity;
      for (let s = 0; s <= t; s++) {
        let dot = 0;
        for (let i = 0; i < hs; i++) dot += (qkv[t * 3 * C + h * hs + i] as number) * (qkv[s * 3 * C + C + h * hs + i] as number);
        row[s] = dot * scale;
        if ((row[s] as number) > max) max = row[s] as number;
      }
      let sum = 0;
      for (let s = 0; s <= t; s++) {
        row[s] = Math.exp((row[s] as number) - max);
        sum += row[s] as number;
      }
      for (let s = 0; s <= t; s++) w[t * T + s] = (row[s] as number) / sum;
    }
    heads.push(w);
  }
  return heads;
}

function stats(d: Float32Array): { mean: number; std: number } {
  let s = 0;
  for (const v of d) s += v;
  const mean = s / d.length;
  let q = 0;
  for (const v of d) q += (v - mean) * (v - mean);
  return { mean, std: Math.sqrt(q / d.length) };
}

/**
 * A forward pass's stages as they are captured (one stage's values at a time): what they hold,
 * every head's attention recomputed from each layer's qkv, and the next token's logits.
 */
class TraceBuilder {
  readonly stages: StageRecord[] = [];
  readonly attention: Float32Array[][] = [];
  nextLogits = new Float32Array(0);

  constructor(
    private readonly model: GPT,
    readonly ids: readonly number[],
  ) {}

  add(name: string, shape: readonly number[], d: Float32Array): void {
    const width = shape[shape.length - 1] as number;
    const last = d.slice(d.length - width);
    this.stages.push({ name, shape: [...shape], last, ...stats(d) });
    const c = this.model.config;
    if (name.endsWith(".qkv")) this.attention.push(attentionWeights(d, this.ids.length, c.nEmbd, c.nHead));
    if (name === "logits") this.nextLogits = last;
  }

  trace(): ForwardTrace {
    return { ids: [...this.ids], stages: this.stages, attention: this.attention, nextLogits: this.nextLogits };
  }
}

/** the model's forward pass over `ids` without a tape, each stage handed to `capture` as it is made */
function forwardCapturing(model: GPT, ids: readonly number[], capture: (name: string, t: Tensor) => void): void {
  noGrad(() =>
    scope(() => {
      model.forward(Tensor.ints(ids, [1, ids.length]), { capture });
    }),
  );
}

/**
 * One forward pass over `ids` (≤ blockSize) recording every stage and every head's attention. On
 * the CPU backends (it reads each stage through `data` as it is made); traceForwardAsync on any.
 */
export function traceForward(model: GPT, ids: readonly number[]): ForwardTrace {
  const trace = new TraceBuilder(model, ids);
  forwardCapturing(model, ids, (name, t) => trace.add(name, t.shape, t.data));
  return trace.trace();
}

/** traceForward on any backend: every stage's values read back together (on a GPU, one wait) */
export async function traceForwardAsync(model: GPT, ids: readonly number[]): Promise<ForwardTrace> {
  const stages: { name: string; shape: readonly number[]; values: Promise<Float32Array> }[] = [];
  // a read is ordered before the stage's storage is reused, so the scope may free it at once
  forwardCapturing(model, ids, (name, t) => stages.push({ name, shape: [...t.shape], values: t.read() }));
  const trace = new TraceBuilder(model, ids);
  for (const { name, shape, values } of stages) trace.add(name, shape, await values);
  return trace.trace();
}

/** The k most likely next tokens with their probabilities (softmax of the raw logits). */
export function topTokens(logits: ArrayLike<number>, k: number): { id: number; p: number }[] {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) if ((logits[i] as number) > max) max = logits[i] as number;
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += Math.exp((logits[i] as number) - max);
  const order = Array.from({ length: logits.length }, (_, i) => i).sort((a, b) => (logits[b] as number) - (logits[a] as number));
  return order.slice(0, k).map((id) => ({ id, p: Math.exp((logits[id] as number) - max) / sum }));
}

/** A token as a short readable label: JSON-escaped, at most `width` characters. */
export function tokenLabel(tokenizer: Tokenizer, id: number, width = 8): string {
  const s = JSON.stringify(tokenizer.tokenString(id)).slice(1, -1).replace(/ /g, "␣");
  return s.length > width ? `${s.slice(0, width - 1)}…` : s;
}

const SHADES = [" ", "·", "░", "▒", "▓", "█"];

/** One weight in 0..1 as a shade: blank for 0, then · ░ ▒ ▓ █ for (0,0.2], (0.2,0.4], ... (0.8,1]. */
export function shade(w: number): string {
  if (!(w > 0)) return SHADES[0] as string;
  return SHADES[Math.min(SHADES.length - 1, Math.ceil(w * (SHADES.length - 1)))] as string;
}

/**
 * A (T,T) attention matrix as rows of shades: one row per query token, one column per key token,
 * at most `maxT` of the latest positions.
 */
export function heatmap(weights: Float32Array, T: number, labels: readonly string[], maxT = 32): string[] {
  const from = Math.max(0, T - maxT);
  const lines: string[] = [];
  const w = Math.max(...labels.slice(from).map((l) => l.length), 1);
  for (let t = from; t < T; t++) {
    let row = "";
    for (let s = from; s < T; s++) row += s <= t ? shade(weights[t * T + s] as number) : " ";
    lines.push(`${(labels[t] ?? "").padStart(w)} │${row}│`);
  }
  if (from > 0) lines.push(`${" ".repeat(w)}  (the last ${maxT} of ${T} positions)`);
  return lines;
}

const fmt = (v: number) => (Math.abs(v) >= 1e4 || (Math.abs(v) < 1e-3 && v !== 0) ? v.toExponential(2) : v.toFixed(3));

/** A few values of a vector: the first n, then "…". */
export function fewValues(d: ArrayLike<number>, n = 6): string {
  const out: string[] = [];
  for (let i = 0; i < Math.min(n, d.length); i++) out.push(fmt(d[i] as number));
  return `[${out.join(", ")}${d.length > n ? ", …" : ""}]`;
}

const STAGE_TEXT: Record<string, string> = {
  embedding: "token embedding wte[id] + position embedding wpe[t]",
  ln_1: "LayerNorm before attention",
  qkv: "queries | keys | values for every head (x·W_attn + b)",
  attn: "attention output: each head's weighted sum of values, heads side by side",
  resid_attn: "residual stream after attention (x + proj(attn))",
  mlp_act: "MLP hidden layer after the activation",
  out: "residual stream after the MLP: the block's output",
  ln_f: "final LayerNorm",
  logits: "logits: ln_f(x) · wteᵀ, one score per vocabulary token",
};

/** The readable report of one forward pass (the prompt step of generate --explain). */
export function formatTrace(trace: ForwardTrace, model: GPT, tokenizer: Tokenizer, level: ExplainLevel): string {
  const c = model.config;
  const T = trace.ids.length;
  const labels = trace.ids.map((id) => tokenLabel(tokenizer, id));
  const lines: string[] = [];
  lines.push(
    `== forward pass over ${T} tokens: ${labels.map((l) => `[${l}]`).join("")}`,
    `   B=1, T=${T}, C=${c.nEmbd}, ${c.nHead} heads of ${c.nEmbd / c.nHead}, ${c.nLayer} layers, V=${c.vocabSize}; values shown at the last position`,
  );
  const showLayer = (l: number) => level === "full" || l === 0 || l === c.nLayer - 1;
  for (const s of trace.stages) {
    const m = /^h\.(\d+)\.(.+)$/.exec(s.name);
    const layer = m ? Number(m[1]) : -1;
    const kind = m ? (m[2] as string) : s.name;
    if (layer >= 0 && !showLayer(layer)) continue;
    if (level === "brief" && layer >= 0 && kind !== "out" && kind !== "qkv") continue;
    const what = STAGE_TEXT[kind] ?? kind;
    lines.push(
      `${s.name.padEnd(14)} (${s.shape.join(",")})`.padEnd(30) +
        ` ${what}; mean ${fmt(s.mean)} std ${fmt(s.std)} ${level === "full" ? fewValues(s.last, 8) : fewValues(s.last, 4)}`,
    );
    if (kind === "qkv") {
      const heads = trace.attention[layer] ?? [];
      lines.push(
        `  attention weights softmax(q·kᵀ/√${c.nEmbd / c.nHead}) of layer ${layer}: rows = query token, columns = key token; · ≤0.2 ░ ≤0.4 ▒ ≤0.6 ▓ ≤0.8 █ ≤1`,
      );
      for (const [h, w] of heads.entries()) {
        lines.push(`  head ${h}:`);
        for (const row of heatmap(w, T, labels, level === "full" ? 48 : 24)) lines.push(`    ${row}`);
      }
    }
  }
  if (level === "brief" && c.nLayer > 2)
    lines.push(`  (layers 1..${c.nLayer - 2} hidden: --explain-level full shows every layer and stage)`);
  return lines.join("\n");
}

/** "top-5: "a" 41.2%  "b" 12.0% ..." */
export function formatTop(tokenizer: Tokenizer, logits: ArrayLike<number>, k = 5): string {
  return topTokens(logits, k)
    .map(({ id, p }) => `"${tokenLabel(tokenizer, id, 12)}" ${(p * 100).toFixed(1)}%`)
    .join("  ");
}

export interface StepExplanation {
  loss: number;
  /** global gradient norm before clipping */
  gradNorm: number;
  /** per group (embeddings, h.N, ln_f): gradient norm and weight norm */
  groups: { name: string; gradNorm: number; weightNorm: number }[];
  /** per tensor (full level) */
  tensors: { name: string; shape: number[]; gradNorm: number; weightNorm: number }[];
  trace: ForwardTrace;
}

/** the step's loss tensor: forward on x (T) -> y (T) and backward, gradients zeroed first */
function lossWithGradients(model: GPT, x: readonly number[], y: readonly number[]): Tensor {
  const T = x.length;
  // every weight's gradient is shown: a quantized model's matrices get float copies to take theirs
  // (the decode and the trace keep reading the quantized form)
  for (const name of model.quantized.keys()) model.floatWeight(name);
  model.zeroGrad();
  const { loss } = model.forward(Tensor.ints(x, [1, T]), { targets: Tensor.ints(y, [1, T]) });
  (loss as Tensor).backward();
  return loss as Tensor;
}

/** per group and per tensor, the gradient and weight norms, read through `data` */
function gradientNorms(model: GPT): Pick<StepExplanation, "groups" | "tensors"> {
  const norm = (d: Float32Array) => {
    let s = 0;
    for (const v of d) s += v * v;
    return s;
  };
  const groups = new Map<string, { g: number; w: number }>();
  const tensors: StepExplanation["tensors"] = [];
  for (const [name] of parameterShapes(model.config)) {
    const t = model.param(name);
    const g = t.grad ? norm(t.grad.data) : 0;
    const w = norm(t.data);
    tensors.push({ name, shape: [...t.shape], gradNorm: Math.sqrt(g), weightNorm: Math.sqrt(w) });
    const m = /^transformer\.h\.(\d+)\./.exec(name);
    const group = m ? `h.${m[1]}` : name.startsWith("transformer.ln_f") ? "ln_f" : "embeddings";
    const e = groups.get(group) ?? { g: 0, w: 0 };
    e.g += g;
    e.w += w;
    groups.set(group, e);
  }
  return { groups: [...groups].map(([name, e]) => ({ name, gradNorm: Math.sqrt(e.g), weightNorm: Math.sqrt(e.w) })), tensors };
}

/**
 * One training step's forward and backward on x (T) -> y (T) without updating the weights: the
 * loss, and the gradient norm of every layer and tensor. The model's .grad buffers are left filled.
 * On the CPU backends; explainTrainingStepAsync on any.
 */
export function explainTrainingStep(model: GPT, x: readonly number[], y: readonly number[]): StepExplanation {
  const loss = scope(() => lossWithGradients(model, x, y).item());
  const norms = gradientNorms(model);
  return { loss, gradNorm: clipGradNorm(model.params.values(), 0), ...norms, trace: traceForward(model, x) };
}

/** explainTrainingStep on any backend: the loss, the norms and the trace read back asynchronously */
export async function explainTrainingStepAsync(model: GPT, x: readonly number[], y: readonly number[]): Promise<StepExplanation> {
  const loss = scope(() => lossWithGradients(model, x, y).read());
  const params = [...model.params.values()];
  const gradNorm = clipGradNormAsync(params, 0);
  const grads = params.flatMap((t) => (t.grad ? [t.grad] : []));
  const norms = await Tensor.withHostValues([...params, ...grads], () => gradientNorms(model));
  return { loss: (await loss)[0] as number, gradNorm: await gradNorm, ...norms, trace: await traceForwardAsync(model, x) };
}
