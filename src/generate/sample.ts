import type { Rng } from "../random.js";

export interface SamplingOptions {
  /** 0 = greedy (argmax); otherwise logits are divided by it (lower = more conservative) */
  temperature: number;
  /** keep only the k most likely tokens (0 = off) */
  topK: number;
  /** keep the smallest set of tokens whose probability reaches p (1 = off) */
  topP: number;
}

export const defaultSampling: SamplingOptions = { temperature: 0.8, topK: 0, topP: 1 };

export function argmax(x: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if ((x[i] as number) > (x[best] as number)) best = i;
  return best;
}

/**
 * The next-token distribution after temperature, top-k and top-p (in that order, as in HF's
 * generate): probabilities (V) with the filtered tokens at exactly 0.
 */
export function nextTokenProbs(logits: ArrayLike<number>, o: SamplingOptions): Float64Array {
  const V = logits.length;
  const t = o.temperature > 0 ? o.temperature : 1;
  const scaled = Float64Array.from({ length: V }, (_, i) => (logits[i] as number) / t);
  if (o.topK > 0 && o.topK < V) {
    // the k-th largest value is the threshold; ties at the threshold are kept (like torch.topk + mask <)
    const kth = Float64Array.from(scaled).sort().reverse()[o.topK - 1] as number;
    for (let i = 0; i < V; i++) if ((scaled[i] as number) < kth) scaled[i] = -Infinity;
  }
  let max = -Infinity;
  for (let i = 0; i < V; i++) if ((scaled[i] as number) > max) max = scaled[i] as number;
  const probs = new Float64Array(V);
  let sum = 0;
  for (let i = 0; i < V; i++) {
    const e = Math.exp((scaled[i] as number) - max);
    probs[i] = e;
    sum += e;
  }
  for (let i = 0; i < V; i++) probs[i] = (probs[i] as number) / sum;
  if (o.topP < 1) {
    // nucleus: sort by probability, keep tokens while the mass *before* them is below p
    // (the token that crosses p is kept, so at least one token always survives)
    const order = Array.from({ length: V }, (_, i) => i).sort((a, b) => (probs[b] as number) - (probs[a] as number));
    let cum = 0;
    for (const i of order) {
      if (cum >= o.topP) probs[i] = 0;
      else cum += probs[i] as number;
    }
    const kept = cum;
    for (let i = 0; i < V; i++) probs[i] = (probs[i] as number) / kept;
  }
  return probs;
}

/** Draw the next token id: greedy at temperature 0, else from the filtered distribution. */
export function sampleToken(logits: ArrayLike<number>, o: SamplingOptions, rng: Rng): number {
  if (o.temperature <= 0) return argmax(logits);
  const probs = nextTokenProbs(logits, o);
  let r = rng.random();
  for (let i = 0; i < probs.length; i++) {
    r -= probs[i] as number;
    if (r < 0) return i;
  }
  // rounding left a sliver: the last token with any mass
  for (let i = probs.length - 1; i >= 0; i--) if ((probs[i] as number) > 0) return i;
  return 0;
}
