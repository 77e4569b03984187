import type { FloatArray } from "../backend.js";

/** logits (N,V), targets (N) -> losses (N) = lse - logit[target] (0 where target is -1), lse (N) */
export function crossEntropyForward(
  losses: FloatArray,
  lse: FloatArray,
  logits: FloatArray,
  targets: Int32Array,
  N: number,
  V: number,
): void {
  for (let n = 0; n < N; n++) {
    const o = n * V;
    let max = -Infinity;
    for (let v = 0; v < V; v++) if (logits[o + v]! > max) max = logits[o + v]!;
    let sum = 0;
    for (let v = 0; v < V; v++) sum += Math.exp(logits[o + v]! - max);
    const l = max + Math.log(sum);
    lse[n] = l;
    const t = targets[n]!;
    losses[n] = t < 0 ? 0 : l - logits[o + t]!;
  }
}

/** dlogits (N,V) += scale·(softmax - onehot(target)); ignored rows get nothing */
export function crossEntropyBackward(
  dlogits: FloatArray,
  logits: FloatArray,
  lse: FloatArray,
  targets: Int32Array,
  N: number,
  V: number,
  scale: number,
): void {
  for (let n = 0; n < N; n++) {
    const t = targets[n]!;
    if (t < 0) continue;
    const o = n * V;
    const l = lse[n]!;
    for (let v = 0; v < V; v++) {
      const p = Math.exp(logits[o + v]! - l);
      dlogits[o + v]! += scale * (v === t ? p - 1 : p);
    }
  }
}
