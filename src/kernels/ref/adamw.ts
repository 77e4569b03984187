import type { AdamwStep, AdamwTensor, FloatArray } from "../backend.js";

/** PyTorch's AdamW (backend.ts AdamwStep): decoupled weight decay first, then the bias-corrected Adam step. */
export function adamw(p: FloatArray, g: FloatArray, m: FloatArray, v: FloatArray, n: number, step: AdamwStep): void {
  const { lr, beta1, beta2, eps, weightDecay, bc1, bc2, gradScale } = step;
  const decay = 1 - lr * weightDecay;
  const stepSize = lr / bc1;
  const sqrtBc2 = Math.sqrt(bc2);
  for (let i = 0; i < n; i++) {
    // rounded to float32, as the gradient a clip had scaled in place was
    const gi = Math.fround(g[i]! * gradScale);
    const mi = beta1 * m[i]! + (1 - beta1) * gi;
    const vi = beta2 * v[i]! + (1 - beta2) * gi * gi;
    m[i] = mi;
    v[i] = vi;
    p[i] = p[i]! * decay - (stepSize * mi) / (Math.sqrt(vi) / sqrtBc2 + eps);
  }
}

/** adamw on each tensor, weight decay on those that decay (the definition of Backend.adamwMany) */
export function adamwMany(tensors: readonly AdamwTensor[], step: AdamwStep): void {
  for (const t of tensors) adamw(t.p, t.g, t.m, t.v, t.n, t.decays ? step : { ...step, weightDecay: 0 });
}
