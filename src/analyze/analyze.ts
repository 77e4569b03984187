/**
 * What a model is made of and what it costs: parameters (per tensor, per layer), memory for weights,
 * training and inference, FLOPs per token, and the training history. Every figure is computed from
 * the config and the model's tensors (or their shapes), never from rule-of-thumb constants; the
 * activation count follows this implementation's forward pass tensor by tensor, and a test checks it
 * against the bytes the heap really allocates.
 *
 * Shapes: B batch, T tokens (block), C = nEmbd, F = nInner, V vocab, L layers, nh heads.
 *
 * No file system here (the browser uses it as it is); a model folder's files and training history
 * are src/analyze/folder.ts.
 */

import { quantizationLabel } from "../io/quantize.js";
import type { GPTConfig } from "../nn/config.js";
import { parameterShapes } from "../nn/gpt.js";
import { keepsAttentionProbs } from "../ops/attention.js";

/** float32 everywhere: weights, gradients, AdamW moments, activations */
export const BYTES_PER_FLOAT = 4;

interface TensorRow {
  name: string;
  shape: number[];
  count: number;
  /** share of all parameters, 0..100 */
  percent: number;
  trainable: boolean;
}

interface GroupRow {
  /** "embeddings" (wte + wpe), "h.0" ... "h.{L-1}", "ln_f" */
  name: string;
  count: number;
  percent: number;
}

interface ParameterFigures {
  /** the model's parameters (a LoRA adapter folder: its base's, which the adapter is merged into to run) */
  total: number;
  /** what a training run updates: the model's trainable tensors, and the adapter's parameters */
  trainable: number;
  /** a LoRA adapter's parameters, beside the model's (which then stay frozen); 0 without one */
  adapter: number;
  /** V·C + P·C + L·(4C² + 2CF + F + 9C) + 2C; with F = 4C: V·d + P·d + L·(12d² + 13d) + 2d */
  closedForm: number;
  /** parameters that take part in matrix multiplies per token: block weights + the tied LM head (V·C) */
  matmul: number;
  tensors: TensorRow[];
  groups: GroupRow[];
}

export interface ActivationFigures {
  /** floats the forward pass keeps for backward (every tensor it creates) at B x T, incl. int inputs */
  forwardFloats: number;
  /**
   * floats of the gradients of those activations: an upper bound of what backward holds at once,
   * since each is freed as soon as it has been pushed to its inputs
   */
  gradientFloats: number;
}

interface MemoryFigures {
  bytesPerFloat: number;
  /** the weights as the model holds them: float32, but a quantized model's packed matrices as loaded */
  weights: number;
  training: {
    batchSize: number;
    blockSize: number;
    weights: number;
    grads: number;
    /** AdamW's first and second moments */
    adamMoments: number;
    activations: number;
    activationGrads: number;
    total: number;
  };
  inference: {
    /** tokens of context the KV cache holds (the block size) */
    contextTokens: number;
    weights: number;
    /** per layer a k and a v row of C floats for every position */
    kvCache: number;
    total: number;
  };
}

interface FlopFigures {
  /** context length the attention term assumes (the block size) */
  contextTokens: number;
  /** 2·N_matmul + 4·L·T·C (q·kᵀ and att·v, each 2·T·C per layer, over the full context) */
  forwardPerToken: number;
  /** 3 × forward (backward costs twice the forward): 6·N_matmul + 12·L·T·C */
  trainingPerToken: number;
  rule: string;
}

export interface HistoryFigures {
  steps: number;
  lastLoss: number | null;
  bestValLoss: number | null;
  lastValLoss: number | null;
  evaluations: number;
}

/** A model folder's files (Node: analyzeModel reads them). */
interface FileFigures {
  dir: string;
  /** the folder's weights: model.safetensors, or a LoRA adapter folder's adapter_model.safetensors */
  weightsFile: string;
  weightsBytes: number;
  /** every file in the folder, checkpoints included */
  folderBytes: number;
  /** a LoRA adapter folder: the adapter (r, targets, its parameters) and the base model it runs on */
  lora?: { rank: number; targets: string[] | string; parameters: number; base: string; baseWeightsBytes: number };
}

/**
 * A model loaded from an int8 / int4 folder holds its matrices (wte and each block's four) only in
 * the integer kernels' packed form (src/nn/quantized.ts); the rest stays float32.
 */
interface QuantizedFigures {
  bits: 8 | 4;
  /** inputs per scale: int4's G; null for int8 (one scale per output) */
  groupSize: number | null;
  /** the parameters held packed */
  parameters: number;
  /** the bytes they take as loaded: packed values, scales and int8's sums */
  packedBytes: number;
}

/** what analyze reads of a matrix held int8 / int4 (src/nn/quantized.ts's QuantizedWeight) */
export interface PackedMatrix {
  readonly size: number;
  readonly bytes: number;
  readonly packed: { shape: { bits: 8 | 4; G: number } };
}

/** the packed matrices' figures, from the matrices themselves (undefined: none) */
export function quantizedFigures(matrices: ReadonlyMap<string, PackedMatrix> | undefined): QuantizedFigures | undefined {
  const all = [...(matrices?.values() ?? [])];
  const first = all[0];
  if (first === undefined) return undefined;
  const { bits, G } = first.packed.shape;
  return {
    bits,
    groupSize: bits === 8 ? null : G,
    parameters: all.reduce((n, m) => n + m.size, 0),
    packedBytes: all.reduce((n, m) => n + m.bytes, 0),
  };
}

export interface ModelAnalysis {
  config: GPTConfig;
  files?: FileFigures;
  /** a quantized model's packed matrices (the memory figures of inference count them as loaded) */
  quantized?: QuantizedFigures;
  /** what training this shape writes (Node: analyzeModel adds it, knowing how many checkpoints a run keeps) */
  disk?: DiskFigures;
  parameters: ParameterFigures;
  memory: MemoryFigures;
  flops: FlopFigures;
  history?: HistoryFigures;
}

export interface AnalyzeOptions {
  /** the parameters of a LoRA adapter trained beside the model's frozen tensors (default none) */
  adapterParameters?: number;
  /** B of the training-memory figure (default 12) */
  batchSize?: number;
  /** T of the training-memory figure (default: the model's block size) */
  blockSize?: number;
  /** the model's matrices held int8 / int4 (default: none, all float32) */
  quantized?: QuantizedFigures;
}

/** The independent closed form of the parameter count (does not look at any tensor). */
export function closedFormParameterCount(c: GPTConfig): number {
  const d = c.nEmbd;
  const f = c.nInner;
  // per block: ln_1 2d, c_attn 3d²+3d, attn c_proj d²+d, ln_2 2d, c_fc d·f+f, mlp c_proj f·d+d
  const block = 4 * d * d + 2 * d * f + f + 9 * d;
  return c.vocabSize * d + c.blockSize * d + c.nLayer * block + 2 * d;
}

/** Which group (embeddings, h.N, ln_f) a parameter name belongs to. */
function groupOf(name: string): string {
  const m = /^transformer\.h\.(\d+)\./.exec(name);
  if (m) return `h.${m[1]}`;
  if (name.startsWith("transformer.ln_f")) return "ln_f";
  return "embeddings";
}

/**
 * Parameter figures from a list of named tensors: the model's real tensors (analyzeModel) or the
 * shapes a config implies (parameterShapes, which allocates nothing).
 */
export function parameterFigures(
  config: GPTConfig,
  tensors: Iterable<readonly [string, { shape: readonly number[]; requiresGrad?: boolean }]>,
  adapter = 0,
): ParameterFigures {
  const rows: TensorRow[] = [];
  let total = 0;
  let trainable = adapter;
  for (const [name, t] of tensors) {
    const count = t.shape.reduce((a, b) => a * b, 1);
    const isTrainable = t.requiresGrad ?? true;
    rows.push({ name, shape: [...t.shape], count, percent: 0, trainable: isTrainable });
    total += count;
    if (isTrainable) trainable += count;
  }
  const groups = new Map<string, number>();
  for (const r of rows) {
    r.percent = (100 * r.count) / total;
    const g = groupOf(r.name);
    groups.set(g, (groups.get(g) ?? 0) + r.count);
  }
  let matmul = 0;
  for (const r of rows) if (r.shape.length === 2 && r.name !== "transformer.wpe.weight") matmul += r.count; // wte is the LM head
  return {
    total,
    trainable,
    adapter,
    closedForm: closedFormParameterCount(config),
    matmul,
    tensors: rows,
    groups: [...groups].map(([name, count]) => ({ name, count, percent: (100 * count) / total })),
  };
}

/**
 * Floats created by one forward pass with targets (and by its backward) at B x T, following
 * GPT.forward op by op (dropout off):
 *   embedding + positions 2·BTC
 *   per block: ln_1 BTC + 2BT (mean, rstd); qkv 3BTC; attention BTC + B·nh·T (row log-sum-exp);
 *              c_proj BTC; residual BTC; ln_2 BTC + 2BT; c_fc BTF; activation BTF; c_proj BTC; residual BTC
 *   ln_f BTC + 2BT; logits BTV; cross-entropy 2BT + 1; the int inputs idx and targets 2BT.
 * Gradients exist for every float activation except the LayerNorm statistics, the log-sum-exps
 * and the per-row losses.
 */
export function activationFloats(c: GPTConfig, B: number, T: number): ActivationFigures {
  const C = c.nEmbd;
  const F = c.nInner;
  const V = c.vocabSize;
  const BT = B * T;
  const blockDiff = 10 * BT * C + 2 * BT * F; // differentiable tensors of one block
  // ln means/rstds + attention lse, and the softmax probabilities where training keeps them
  const probs = keepsAttentionProbs(T, C / c.nHead) ? B * c.nHead * T * T : 0;
  const blockStats = 4 * BT + B * c.nHead * T + probs;
  const diff = 2 * BT * C + c.nLayer * blockDiff + BT * C + BT * V + 1;
  const stats = c.nLayer * blockStats + 2 * BT + 2 * BT; // ln_f stats, CE losses + lse
  const ints = 2 * BT;
  return { forwardFloats: diff + stats + ints, gradientFloats: diff };
}

export function analyzeConfig(config: GPTConfig, options: AnalyzeOptions = {}): ModelAnalysis {
  return analyzeTensors(
    config,
    parameterShapes(config).map(([n, shape]) => [n, { shape }] as const),
    options,
  );
}

export function analyzeTensors(
  config: GPTConfig,
  tensors: Iterable<readonly [string, { shape: readonly number[]; requiresGrad?: boolean }]>,
  options: AnalyzeOptions,
): ModelAnalysis {
  const parameters = parameterFigures(config, tensors, options.adapterParameters);
  const B = options.batchSize ?? 12;
  const T = options.blockSize ?? config.blockSize;
  const f = BYTES_PER_FLOAT;
  // training holds (and writes) float32 weights; the loaded model holds quantized matrices packed
  const weights = parameters.total * f;
  const q = options.quantized;
  const held = q ? (parameters.total - q.parameters) * f + q.packedBytes : weights;
  const act = activationFloats(config, B, T);
  const training = {
    batchSize: B,
    blockSize: T,
    // an adapter's weights are kept beside the frozen model's while it trains
    weights: weights + parameters.adapter * f,
    grads: parameters.trainable * f,
    adamMoments: 2 * parameters.trainable * f,
    activations: act.forwardFloats * f,
    activationGrads: act.gradientFloats * f,
    total: 0,
  };
  training.total = training.weights + training.grads + training.adamMoments + training.activations + training.activationGrads;
  const P = config.blockSize;
  const kvCache = 2 * config.nLayer * P * config.nEmbd * f;
  const attention = 4 * config.nLayer * P * config.nEmbd;
  const forwardPerToken = 2 * parameters.matmul + attention;
  return {
    config,
    ...(q ? { quantized: q } : {}),
    parameters,
    memory: { bytesPerFloat: f, weights: held, training, inference: { contextTokens: P, weights: held, kvCache, total: held + kvCache } },
    flops: {
      contextTokens: P,
      forwardPerToken,
      trainingPerToken: 3 * forwardPerToken,
      rule: "forward = 2·N + 4·L·T·C per token (N = parameters in matrix multiplies incl. the tied LM head; q·kᵀ and att·v over a full context of T); training = 3 × forward = 6·N + 12·L·T·C (backward ≈ 2 × forward)",
    },
  };
}

/** Bytes a training run leaves on disk, from the size of the float32 weights file it writes (a model's, or a LoRA adapter's). */
export interface DiskFigures {
  /** the run's weights file: model.safetensors, or a LoRA run's adapter_model.safetensors */
  weightsFile: string;
  /** that file's size, its header included (what `ls -l` shows once it is written) */
  weightsBytes: number;
  /** one checkpoint, about: the weights file again and AdamW's two moments (optimizer.safetensors, twice its size) */
  checkpointBytes: number;
  keepCheckpoints: number;
  /** the model folder once saved: the weights file and keepCheckpoints checkpoints (tokenizer and metrics aside) */
  runFolderBytes: number;
  /** a LoRA adapter's: the model.safetensors a merge into its base writes */
  mergedWeightsBytes?: number;
}

export function diskFigures(weightsBytes: number, keepCheckpoints: number, weightsFile = "model.safetensors"): DiskFigures {
  const checkpointBytes = 3 * weightsBytes;
  return { weightsFile, weightsBytes, checkpointBytes, keepCheckpoints, runFolderBytes: weightsBytes + keepCheckpoints * checkpointBytes };
}

/** Human sizes: 1,234 B, 12.3 KB, 4.56 MB, 1.23 GB (powers of 1000, as file managers show them). */
export function formatBytes(n: number): string {
  if (n < 1000) return `${n} B`;
  const units = ["KB", "MB", "GB", "TB"];
  let v = n;
  let u = -1;
  while (v >= 1000 && u < units.length - 1) {
    v /= 1000;
    u++;
  }
  return `${v.toPrecision(3)} ${units[u]}`;
}

/** 1.23 MFLOP, 4.56 GFLOP ... */
export function formatFlops(n: number): string {
  const units = ["", "K", "M", "G", "T", "P"];
  let v = n;
  let u = 0;
  while (v >= 1000 && u < units.length - 1) {
    v /= 1000;
    u++;
  }
  return `${u === 0 ? String(v) : v.toPrecision(3)} ${units[u]}FLOP`;
}

const int = (n: number) => n.toLocaleString("en-US");

/** The report `minigpt analyze` prints. */
export function formatAnalysis(a: ModelAnalysis): string {
  const c = a.config;
  const p = a.parameters;
  const m = a.memory;
  const lines: string[] = [];
  const q = a.quantized;
  const quantized = q
    ? `${quantizationLabel(q)} weights (wte and the blocks' matrices, ${int(q.parameters)} parameters; the rest float32)`
    : "";
  if (a.files) {
    const f = a.files;
    const weights = `${quantized ? `${quantized}, ` : ""}${f.weightsFile} ${formatBytes(f.weightsBytes)}`;
    const lora = f.lora;
    const holds = lora
      ? `a LoRA adapter (r ${lora.rank} on ${typeof lora.targets === "string" ? lora.targets : lora.targets.join(", ")}: ${int(lora.parameters)} parameters), ${weights}, on the base model ${lora.base} (model.safetensors ${formatBytes(lora.baseWeightsBytes)}; the figures below are of the base with the adapter merged in)`
      : weights;
    lines.push(`model folder ${f.dir}: ${holds}; folder ${formatBytes(f.folderBytes)}`);
  } else if (quantized) lines.push(`model: ${quantized}`);
  if (a.disk) {
    const d = a.disk;
    const run =
      d.mergedWeightsBytes === undefined
        ? `a training run's folder at least ${formatBytes(d.runFolderBytes)}: the model and ${d.keepCheckpoints} checkpoints of weights and AdamW moments, ${formatBytes(d.checkpointBytes)} each (other files besides)`
        : `a LoRA training run's folder at least ${formatBytes(d.runFolderBytes)}: the adapter and ${d.keepCheckpoints} checkpoints of its weights and AdamW moments, ${formatBytes(d.checkpointBytes)} each (other files besides); merged into its base: model.safetensors ${formatBytes(d.mergedWeightsBytes)}`;
    // what training writes, float32 (a quantized folder's own file, in the line above, is smaller)
    lines.push(`on disk when trained: ${d.weightsFile} ${formatBytes(d.weightsBytes)} (float32); ${run}`);
  }
  lines.push(
    `config: ${c.nLayer} layers, ${c.nHead} heads (head size ${c.nEmbd / c.nHead}), n_embd ${c.nEmbd}, n_inner ${c.nInner}, block ${c.blockSize}, vocab ${int(c.vocabSize)}, ${c.activation}, dropout ${c.dropout}`,
  );
  const counts =
    p.adapter > 0
      ? `${int(p.total)} in the base model${p.trainable === p.adapter ? " (frozen)" : ""}, ${int(p.trainable)} trainable in the LoRA adapter`
      : `${int(p.total)} total, ${int(p.trainable)} trainable`;
  lines.push(
    `parameters: ${counts} (closed form V·d + P·d + L·(4d² + 2d·f + f + 9d) + 2d = ${int(p.closedForm)}${p.closedForm === p.total ? ", agrees" : ", DIFFERS"})`,
  );
  lines.push("", "per group:");
  for (const g of p.groups) lines.push(`  ${g.name.padEnd(12)} ${int(g.count).padStart(14)}  ${g.percent.toFixed(2).padStart(6)}%`);
  lines.push("", "per tensor:");
  const width = Math.max(...p.tensors.map((t) => t.name.length));
  for (const t of p.tensors) {
    lines.push(
      `  ${t.name.padEnd(width)}  ${`[${t.shape.join(", ")}]`.padEnd(14)} ${int(t.count).padStart(14)}  ${t.percent.toFixed(2).padStart(6)}%`,
    );
  }
  const tr = m.training;
  const weightsLine = q
    ? `  weights                 ${formatBytes(m.weights)} as loaded (the ${quantizationLabel(q)} matrices packed: ${formatBytes(q.packedBytes)}); ${formatBytes(tr.weights)} as float32`
    : `  weights                 ${formatBytes(m.weights)}`;
  lines.push(
    "",
    q ? `memory (float32, except the ${quantizationLabel(q)} matrices as loaded):` : "memory (float32):",
    weightsLine,
    `  training at batch ${tr.batchSize} x block ${tr.blockSize}: ${formatBytes(tr.total)} = weights ${formatBytes(tr.weights)}${q ? " (float32)" : ""} + grads ${formatBytes(tr.grads)} + AdamW moments ${formatBytes(tr.adamMoments)} + activations ${formatBytes(tr.activations)} + activation grads ${formatBytes(tr.activationGrads)} (an upper bound: each is freed once propagated)`,
    `  inference, ${m.inference.contextTokens} tokens of KV cache: ${formatBytes(m.inference.total)} = weights${q ? " as loaded" : ""} + KV cache ${formatBytes(m.inference.kvCache)}`,
    "",
    `FLOPs per token at ${a.flops.contextTokens} tokens of context: forward ${formatFlops(a.flops.forwardPerToken)}, training ${formatFlops(a.flops.trainingPerToken)} (N = ${int(p.matmul)} matmul parameters)`,
    `  rule: ${a.flops.rule}`,
  );
  if (a.history) {
    const h = a.history;
    lines.push(
      "",
      `training history: ${int(h.steps)} steps, last train loss ${h.lastLoss?.toFixed(4) ?? "n/a"}, best val loss ${h.bestValLoss?.toFixed(4) ?? "n/a"} (${h.evaluations} evaluation${h.evaluations === 1 ? "" : "s"}, last ${h.lastValLoss?.toFixed(4) ?? "n/a"})`,
    );
  }
  return lines.join("\n");
}
