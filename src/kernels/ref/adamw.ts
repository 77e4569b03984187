import type { AdamwTensor, FloatArray } from "../backend.js";

/** PyTorch's AdamW: decoupled weight decay first, then the bias-corrected Adam step. */
export function adamw(
  p: FloatArray,
  g: FloatArray,
  m: FloatArray,
  v: FloatArray,
  n: number,
  lr: number,
  beta1: number,
  beta2: number,
  eps: number,
  weightDecay: number,
  bc1: number,
  bc2: number,
): void {
  const decay = 1 - lr * weightDecay;
  const stepSize = lr / bc1;
  const sqrtBc2 = Math.sqrt(bc2);
  for (let i = 0; i < n; i++) {
    const gi = g[i]!;
    const mi = beta1 * m[i]! + (1 - beta1) * gi;
    const vi = beta2 * v[i]! + (1 - beta2) * gi * gi;
    m[i] = mi;
    v[i] = vi;
    p[i] = p[i]! * decay - (stepSize * mi) / (Math.sqrt(vi) / sqrtBc2 + eps);
  }
}

/** adamw on each tensor, weight decay on those that decay (the definition of Backend.adamwMany) */
export function adamwMany(
  tensors: readonly AdamwTensor[],
  lr: number,
  beta1: number,
  beta2: number,
  eps: number,
  weightDecay: number,
  bc1: number,
  bc2: number,
): void {
  for (const t of tensors) adamw(t.p, t.g, t.m, t.v, t.n, lr, beta1, beta2, eps, t.decays ? weightDecay : 0, bc1, bc2);
}
