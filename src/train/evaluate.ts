import { type Batch, evalWindows } from "../data/batches.js";
import { countingSequence, countingStarts, patternAccuracy } from "../data/counting.js";
import { fail } from "../errors.js";
import { nextLogitsUncached } from "../generate/generate.js";
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
  const windows = evalWindows(ids, model.config.blockSize);
  if (windows.length === 0) fail("the text is too short to evaluate: it needs at least 2 tokens");
  return evaluateWindows(model, windows, textBytes, options);
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
  const batchSize = options.batchSize ?? 16;
  const total = windows.reduce((n, w) => n + w.x.length, 0);
  let totalNats = 0;
  let tokens = 0;
  noGrad(() => {
    for (let i = 0; i < windows.length; ) {
      const len = (windows[i] as Batch).x.length;
      let j = i;
      while (j < windows.length && j - i < batchSize && (windows[j] as Batch).x.length === len) j++;
      const group = windows.slice(i, j);
      scope(() => {
        const x = new Int32Array(group.length * len);
        const y = new Int32Array(group.length * len);
        group.forEach((w, k) => {
          x.set(w.x, k * len);
          y.set(w.y, k * len);
        });
        const { loss } = model.forward(Tensor.ints(x, [group.length, len]), { targets: Tensor.ints(y, [group.length, len]) });
        totalNats += (loss as Tensor).item() * x.length;
        tokens += x.length;
      });
      options.onProgress?.(tokens, total);
      i = j;
    }
  });
  const loss = totalNats / tokens;
  return { loss, perplexity: Math.exp(loss), tokens, bits_per_byte: totalNats / Math.LN2 / textBytes };
}

/** Which part of a dataset to score: what training learned from, what it held out, or both. */
export type EvalSplit = "train" | "val" | "all";

/** The counting task: loss over the split's sequences and the pattern accuracy on them (val: the held-out ones). */
export function evaluateCounting(model: GPT, split: EvalSplit = "val"): EvalResult {
  const starts = countingStarts();
  const chosen = split === "val" ? starts.val : split === "train" ? starts.train : [...starts.train, ...starts.val].sort((a, b) => a - b);
  const seqs = chosen.map(countingSequence);
  let totalNats = 0;
  let tokens = 0;
  let bytes = 0;
  noGrad(() =>
    scope(() => {
      const L = (seqs[0] as number[]).length - 1;
      const x = Int32Array.from(seqs.flatMap((s) => s.slice(0, L)));
      const y = Int32Array.from(seqs.flatMap((s) => s.slice(1)));
      const { loss } = model.forward(Tensor.ints(x, [seqs.length, L]), { targets: Tensor.ints(y, [seqs.length, L]) });
      totalNats = (loss as Tensor).item() * y.length;
      tokens = y.length;
      bytes = new TextEncoder().encode(seqs.map((s) => s.join(" ")).join("\n")).length;
    }),
  );
  const loss = totalNats / tokens;
  return {
    loss,
    perplexity: Math.exp(loss),
    tokens,
    bits_per_byte: totalNats / Math.LN2 / bytes,
    pattern_accuracy: countingAccuracy(model, chosen),
  };
}

/** Counting task: fraction of sequences (by default the held-out ones) continued exactly by greedy decoding. */
export function countingAccuracy(model: GPT, starts = countingStarts().val): number {
  return patternAccuracy((prefix) => argmax(nextLogitsUncached(model, prefix)), starts);
}
