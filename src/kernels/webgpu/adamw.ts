/**
 * One AdamW update on the GPU, PyTorch's formulation; twin of src/kernels/ref/adamw.ts:
 *   g = gradScale·g;  p = p·(1 - lr·wd);  m = b1·m + (1-b1)·g;  v = b2·v + (1-b2)·g²;  p -= (lr/bc1)·m / (√v/√bc2 + eps)
 */
import type { AdamwStep } from "../backend.js";
import { type GpuArray, type GpuRuntime, groups1d } from "./runtime.js";
import { mapKernel } from "./wgsl.js";

const ADAMW = mapKernel(
  [
    "beta1: f32",
    "one_minus_beta1: f32",
    "beta2: f32",
    "one_minus_beta2: f32",
    "eps: f32",
    "decay: f32",
    "step_size: f32",
    "sqrt_bc2: f32",
    "grad_scale: f32",
  ],
  [{ name: "g" }, { name: "param", write: true }, { name: "m", write: true }, { name: "v", write: true }],
  `let gi = @g * p.grad_scale;
  let mi = p.beta1 * @m + p.one_minus_beta1 * gi;
  let vi = p.beta2 * @v + p.one_minus_beta2 * gi * gi;
  @m = mi;
  @v = vi;
  @param = @param * p.decay - (p.step_size * mi) / (sqrt(vi) / p.sqrt_bc2 + p.eps);`,
);

export function adamw(rt: GpuRuntime, param: GpuArray, g: GpuArray, m: GpuArray, v: GpuArray, n: number, step: AdamwStep): void {
  const { lr, beta1, beta2, eps, weightDecay, bc1, bc2, gradScale } = step;
  const scalars = [beta1, 1 - beta1, beta2, 1 - beta2, eps, 1 - lr * weightDecay, lr / bc1, Math.sqrt(bc2), gradScale].map((f32) => ({
    f32,
  }));
  rt.run(ADAMW, groups1d(n, 256), [{ u32: n }, ...scalars], [g], [param, m, v]);
}
