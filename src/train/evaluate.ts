import { evalWindows } from "../data/batches.js";
import { countingStarts, countingValSequences, patternAccuracy } from "../data/counting.js";
import { fail } from "../errors.js";
import { nextLogitsUncached } from "../generate/generate.js";
import { argmax } from "../generate/sample.js";
import type { GPT } from "../nn/gpt.js";
import { noGrad, scope, Tensor } from "../tensor/tensor.js";

export interface EvalResult {
  loss: number;
  perplexity: number;
  /** how many tokens were predicted */
  tokens: number;
  /** total nats / ln 2 / UTF-8 bytes of the text: comparable across tokenizers */
  bits_per_byte: number;
  pattern_accuracy?: number;
}

/**
 * Loss of a token sequence, defined exactly so anyone can reproduce it: the ids cut into
 * non-overlapping windows of blockSize (x = ids[i·T, i·T+T), y shifted by one, the last partial
 * window included), mean cross-entropy over every predicted token.
 */
export function evaluateIds(model: GPT, ids: Int32Array, textBytes: number, batchSize = 16): EvalResult {
  const T = model.config.blockSize;
  const windows = evalWindows(ids, T);
  if (windows.length === 0) fail("the text is too short to evaluate: it needs at least 2 tokens");
  let totalNats = 0;
  let tokens = 0;
  noGrad(() => {
    for (let i = 0; i < windows.length; ) {
      const len = (windows[i] as { x: Int32Array }).x.length;
      // full windows go through in batches; the shorter last one on its own
      let j = i;
      while (j < windows.length && j - i < batchSize && (windows[j] as { x: Int32Array }).x.length === len) j++;
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
      i = j;
    }
  });
  const loss = totalNats / tokens;
  return { loss, perplexity: Math.exp(loss), tokens, bits_per_byte: totalNats / Math.LN2 / textBytes };
}

/** The counting task: loss over the held-out sequences and the pattern accuracy on them. */
export function evaluateCounting(model: GPT): EvalResult {
  const seqs = countingValSequences();
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
    pattern_accuracy: countingAccuracy(model),
  };
}

/** Counting task: fraction of held-out sequences continued exactly by greedy decoding. */
export function countingAccuracy(model: GPT): number {
  return patternAccuracy((prefix) => argmax(nextLogitsUncached(model, prefix)), countingStarts().val);
}
