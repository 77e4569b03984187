import { backend } from "../kernels/index.js";
import { sampleTemperature as refSampleTemperature } from "../kernels/ref/sample.js";
import type { Rng } from "../random.js";
import { heap, isBufferOf } from "../tensor/memory.js";
import { Tensor } from "../tensor/tensor.js";

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
 * From this vocabulary size on, plain temperature sampling on a fast backend runs the backend's
 * sampleTemperature kernel (wasm: fp32 SIMD exp, f64 sums, on the logits where they are, no copy)
 * instead of the float64 JS one: ~1.4 ms -> ~0.11 ms a token over GPT-2's 50,257 logits (copy +
 * scale + softmax + a JS walk took ~0.19 ms: bench/sample.ts), the same distribution to fp32 rounding.
 */
export const BACKEND_SOFTMAX_MIN_V = 4096;
/** a heap copy of logits that are not on the heap (the wasm kernels read heap arrays); grown when needed */
let heapProbs: Tensor | null = null;

/**
 * The next-token distribution after temperature, top-k and top-p (in that order, as in HF's
 * generate): probabilities (V) with the filtered tokens at exactly 0.
 */
export function nextTokenProbs(logits: ArrayLike<number>, o: SamplingOptions): Float64Array {
  const V = logits.length;
  const t = o.temperature > 0 ? o.temperature : 1;
  const scaled = new Float64Array(V);
  for (let i = 0; i < V; i++) scaled[i] = (logits[i] as number) / t;
  if (o.topK > 0 && o.topK < V) {
    // the k-th largest value is the threshold; ties at the threshold are kept (like torch.topk + mask <)
    const kth = Float64Array.from(scaled).sort().reverse()[o.topK - 1] as number;
    for (let i = 0; i < V; i++) if ((scaled[i] as number) < kth) scaled[i] = -Infinity;
  }
  let max = -Infinity;
  for (let i = 0; i < V; i++) if ((scaled[i] as number) > max) max = scaled[i] as number;
  const probs = scaled;
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

/** Walk the distribution probs (or e / sum) down from a uniform draw in [0, 1). */
function draw(e: ArrayLike<number>, V: number, sum: number, rng: Rng): number {
  let r = rng.random();
  for (let i = 0; i < V; i++) {
    r -= (e[i] as number) / sum;
    if (r < 0) return i;
  }
  // rounding left a sliver: the last token with any mass
  for (let i = V - 1; i >= 0; i--) if ((e[i] as number) > 0) return i;
  return 0;
}

/**
 * The logits with the ids in `suppress` at -Infinity, so no sampling setting can draw them (a copy:
 * the input may be a view of the model's output buffer).
 */
export function withSuppressed(logits: ArrayLike<number>, suppress: readonly number[]): ArrayLike<number> {
  if (suppress.length === 0) return logits;
  const out = Float32Array.from(logits);
  for (const id of suppress) if (id >= 0 && id < out.length) out[id] = -Infinity;
  return out;
}

/** Draw the next token id: greedy at temperature 0, else from the filtered distribution. */
export function sampleToken(logits: ArrayLike<number>, o: SamplingOptions, rng: Rng): number {
  if (o.temperature <= 0) return argmax(logits);
  const V = logits.length;
  if ((o.topK > 0 && o.topK < V) || o.topP < 1) return draw(nextTokenProbs(logits, o), V, 1, rng);
  // plain temperature sampling, the generation loop's case
  const be = backend();
  if (V >= BACKEND_SOFTMAX_MIN_V && be.name !== "ref" && be.sampleTemperature) {
    // the logits where they are when they are a heap array (the model's output), else a heap copy
    // (suppressed ids, plain arrays, logits read back from a device)
    if (logits instanceof Float32Array && isBufferOf(heap().memory, logits.buffer)) {
      return be.sampleTemperature(logits, V, o.temperature, rng.random());
    }
    if (!heapProbs || heapProbs.size < V) {
      heapProbs?.dispose();
      heapProbs = new Tensor([V], "f32", false, false);
    }
    const p = heapProbs.size === V ? heapProbs.data : heapProbs.data.subarray(0, V);
    p.set(logits);
    return be.sampleTemperature(p, V, o.temperature, rng.random());
  }
  // on the reference backend, for small vocabularies, and on a backend without the kernel: float64
  // JS, the logits read in place. WebGPU has none: its kernels run on the GPU and answer only
  // asynchronously, and a Tensor made while it is in use lives there (its data cannot be read
  // here), so neither a heap copy nor its scale and softmax could serve a draw made now.
  return refSampleTemperature(logits, V, o.temperature, rng.random());
}
