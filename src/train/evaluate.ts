import { type Batch, evalWindows } from "../data/batches.js";
import { countingSequence, countingStarts, patternAccuracy, patternAccuracyAsync } from "../data/counting.js";
import { fail } from "../errors.js";
import { nextLogitsUncached, nextLogitsUncachedAsync } from "../generate/generate.js";
import { argmax } from "../generate/sample.js";
import type { GPT } from "../nn/gpt.js";
import { noGrad, scope, Tensor } from "../tensor/tensor.js";
import type { Tokenizer } from "../tokenizer/types.js";

export interface EvalResult {
  loss: number;
  perplexity: number;
  /** how many tokens were predicted */
  tokens: number;
  /** total nats / ln 2 / UTF-8 bytes of the scored text: comparable across tokenizers */
  bits_per_byte: number;
  pattern_accuracy?: number;
}

export interface EvalOptions {
  /** windows per forward pass */
  batchSize?: number;
  /** called after every batch with the tokens predicted so far and in all */
  onProgress?(tokensDone: number, tokensTotal: number): void;
}

/**
 * Loss of a token sequence, defined exactly so anyone can reproduce it: the ids cut into
 * non-overlapping windows of blockSize (x = ids[i·T, i·T+T), y shifted by one, the last partial
 * window included), mean cross-entropy over every predicted token. textBytes: the text's UTF-8 bytes.
 */
export function evaluateIds(model: GPT, ids: Int32Array, textBytes: number, options: EvalOptions = {}): EvalResult {
  return evaluateWindows(model, idWindows(model, ids), textBytes, options);
}

/** evaluateIds on any backend (a model on a GPU: each batch's loss read back asynchronously) */
export function evaluateIdsAsync(model: GPT, ids: Int32Array, textBytes: number, options: EvalOptions = {}): Promise<EvalResult> {
  return evaluateWindowsAsync(model, idWindows(model, ids), textBytes, options);
}

function idWindows(model: GPT, ids: Int32Array): Batch[] {
  const windows = evalWindows(ids, model.config.blockSize);
  if (windows.length === 0) fail("the text is too short to evaluate: it needs at least 2 tokens");
  return windows;
}

/**
 * A sample of about `tokens` predicted tokens from evalWindows: whole windows, evenly spaced over
 * the text (the first and the last included), so a big text is scored from end to end.
 */
export function sampleWindows(windows: readonly Batch[], tokens: number): Batch[] {
  const total = windows.reduce((n, w) => n + w.x.length, 0);
  const T = (windows[0] as Batch).x.length;
  const picked = sampleWindowIndices(windows.length, total, T, tokens);
  return picked === null ? [...windows] : picked.map((k) => windows[k] as Batch);
}

/**
 * Which of `count` windows (of T tokens, `total` predicted tokens in all) sampleWindows keeps for
 * about `tokens` tokens, by index; null for all of them.
 */
export function sampleWindowIndices(count: number, total: number, T: number, tokens: number): number[] | null {
  if (tokens >= total) return null;
  const n = Math.max(1, Math.ceil(tokens / T));
  if (n === 1) return [0];
  const step = (count - 1) / (n - 1);
  return Array.from({ length: n }, (_, k) => Math.round(k * step));
}

/** UTF-8 bytes of the tokens the windows predict (their targets): the scored text of a split or a sample. */
export function targetBytes(windows: readonly Batch[], tokenizer: Tokenizer): number {
  let bytes = 0;
  for (const w of windows) for (const id of w.y) bytes += tokenizer.tokenBytes(id).length;
  return bytes;
}

/** Mean cross-entropy over every target of `windows` (full windows in batches, shorter ones alone). */
export function evaluateWindows(model: GPT, windows: readonly Batch[], textBytes: number, options: EvalOptions = {}): EvalResult {
  let totalNats = 0;
  let tokens = 0;
  for (const group of windowGroups(windows, options.batchSize ?? 16)) {
    totalNats += noGrad(() => scope(() => groupLoss(model, group).item())) * group.x.length;
    tokens += group.x.length;
    options.onProgress?.(tokens, group.total);
  }
  return evalResult(totalNats, tokens, textBytes);
}

/** evaluateWindows on any backend: each batch's loss read back asynchronously (a model on a GPU) */
export async function evaluateWindowsAsync(
  model: GPT,
  windows: readonly Batch[],
  textBytes: number,
  options: EvalOptions = {},
): Promise<EvalResult> {
  let totalNats = 0;
  let tokens = 0;
  for (const group of windowGroups(windows, options.batchSize ?? 16)) {
    const loss = await noGrad(() => scope(() => groupLoss(model, group).read()));
    totalNats += (loss[0] as number) * group.x.length;
    tokens += group.x.length;
    options.onProgress?.(tokens, group.total);
  }
  return evalResult(totalNats, tokens, textBytes);
}

/** windows of one length side by side, up to batchSize of them: x, y (rows·len) */
interface WindowGroup {
  x: Int32Array;
  y: Int32Array;
  rows: number;
  len: number;
  /** the predicted tokens of all the windows, for progress */
  total: number;
}

function* windowGroups(windows: readonly Batch[], batchSize: number): Generator<WindowGroup> {
  const total = windows.reduce((n, w) => n + w.x.length, 0);
  for (let i = 0; i < windows.length; ) {
    const len = (windows[i] as Batch).x.length;
    let j = i;
    while (j < windows.length && j - i < batchSize && (windows[j] as Batch).x.length === len) j++;
    const group = windows.slice(i, j);
    const x = new Int32Array(group.length * len);
    const y = new Int32Array(group.length * len);
    group.forEach((w, k) => {
      x.set(w.x, k * len);
      y.set(w.y, k * len);
    });
    yield { x, y, rows: group.length, len, total };
    i = j;
  }
}

/** the mean loss (a scalar tensor) of a group's windows, or of any (rows, len) x and y */
function groupLoss(model: GPT, { x, y, rows, len }: Omit<WindowGroup, "total">): Tensor {
  return model.forward(Tensor.ints(x, [rows, len]), { targets: Tensor.ints(y, [rows, len]) }).loss as Tensor;
}

function evalResult(totalNats: number, tokens: number, textBytes: number, patternAccuracy?: number): EvalResult {
  const loss = totalNats / tokens;
  const result: EvalResult = { loss, perplexity: Math.exp(loss), tokens, bits_per_byte: totalNats / Math.LN2 / textBytes };
  if (patternAccuracy !== undefined) result.pattern_accuracy = patternAccuracy;
  return result;
}

/** Which part of a dataset to score: what training learned from, what it held out, or both. */
export type EvalSplit = "train" | "val" | "all";

/** The counting task: loss over the split's sequences and the pattern accuracy on them (val: the held-out ones). */
export function evaluateCounting(model: GPT, split: EvalSplit = "val"): EvalResult {
  const { chosen, group, bytes } = countingSplit(split);
  const totalNats = noGrad(() => scope(() => groupLoss(model, group).item())) * group.y.length;
  return evalResult(totalNats, group.y.length, bytes, countingAccuracy(model, chosen));
}

/** evaluateCounting on any backend (a model on a GPU: values read back asynchronously) */
export async function evaluateCountingAsync(model: GPT, split: EvalSplit = "val"): Promise<EvalResult> {
  const { chosen, group, bytes } = countingSplit(split);
  const loss = await noGrad(() => scope(() => groupLoss(model, group).read()));
  return evalResult((loss[0] as number) * group.y.length, group.y.length, bytes, await countingAccuracyAsync(model, chosen));
}

/** a split's counting starts, their sequences as one batch, and the bytes of their text */
function countingSplit(split: EvalSplit) {
  const starts = countingStarts();
  const chosen = split === "val" ? starts.val : split === "train" ? starts.train : [...starts.train, ...starts.val].sort((a, b) => a - b);
  const seqs = chosen.map(countingSequence);
  const len = (seqs[0] as number[]).length - 1;
  const x = Int32Array.from(seqs.flatMap((s) => s.slice(0, len)));
  const y = Int32Array.from(seqs.flatMap((s) => s.slice(1)));
  const bytes = new TextEncoder().encode(seqs.map((s) => s.join(" ")).join("\n")).length;
  return { chosen, group: { x, y, rows: seqs.length, len }, bytes };
}

/** Counting task: fraction of sequences (by default the held-out ones) continued exactly by greedy decoding. */
export function countingAccuracy(model: GPT, starts = countingStarts().val): number {
  return patternAccuracy((prefix) => argmax(nextLogitsUncached(model, prefix)), starts);
}

/** countingAccuracy on any backend (each prediction's logits read back asynchronously) */
export function countingAccuracyAsync(model: GPT, starts = countingStarts().val): Promise<number> {
  return patternAccuracyAsync(async (prefix) => argmax(await nextLogitsUncachedAsync(model, prefix)), starts);
}
