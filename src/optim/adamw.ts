import { type AdamwStep, type AdamwTensor, backend, deviceReductions, type KernelArray } from "../kernels/index.js";
import { Tensor } from "../tensor/tensor.js";

export interface AdamWOptions {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
}

export const defaultAdamW: AdamWOptions = { lr: 1e-3, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1 };

/**
 * AdamW as PyTorch implements it. Weight decay applies to tensors of 2+ dims only (matmul weights
 * and embeddings), never to biases and LayerNorm gains, as in nanoGPT's configure_optimizers.
 */
export class AdamW {
  readonly options: AdamWOptions;
  step = 0;
  readonly params: Map<string, Tensor>;
  /** first and second moments, same names as the parameters */
  readonly m = new Map<string, Tensor>();
  readonly v = new Map<string, Tensor>();

  constructor(params: Map<string, Tensor>, options: Partial<AdamWOptions> = {}) {
    this.options = { ...defaultAdamW, ...options };
    this.params = params;
    for (const [name, p] of params) {
      this.m.set(name, Tensor.zeros(p.shape));
      this.v.set(name, Tensor.zeros(p.shape));
    }
  }

  /**
   * One update with learning rate `lr` (the schedule's value for this step), each gradient taken
   * times `gradScale` (a global-norm clip's factor: clipForUpdate).
   */
  update(lr: number, gradScale = 1): void {
    this.step++;
    const { beta1, beta2, eps, weightDecay } = this.options;
    const step: AdamwStep = { lr, beta1, beta2, eps, weightDecay, bc1: 1 - beta1 ** this.step, bc2: 1 - beta2 ** this.step, gradScale };
    const k = backend();
    if (k.adamwMany) {
      const tensors: AdamwTensor<KernelArray>[] = [];
      for (const [name, p] of this.params) {
        if (!p.grad) continue;
        const m = (this.m.get(name) as Tensor).storage;
        const v = (this.v.get(name) as Tensor).storage;
        tensors.push({ p: p.storage, g: p.grad.storage, m, v, n: p.size, decays: p.shape.length >= 2 });
      }
      k.adamwMany(tensors, step);
      return;
    }
    const noDecay = { ...step, weightDecay: 0 };
    for (const [name, p] of this.params) {
      if (!p.grad) continue;
      const m = (this.m.get(name) as Tensor).storage;
      const v = (this.v.get(name) as Tensor).storage;
      k.adamw(p.storage, p.grad.storage, m, v, p.size, p.shape.length >= 2 ? step : noDecay);
    }
  }
}

/**
 * Scale all gradients so their global L2 norm is at most maxNorm (PyTorch's clip_grad_norm_).
 * Returns the norm before clipping.
 */
export function clipGradNorm(params: Iterable<Tensor>, maxNorm: number): number {
  const list = [...params].filter((p) => p.grad);
  const norm = gradNorm(list);
  const coef = clipFactor(norm, maxNorm);
  if (coef < 1) for (const p of list) backend().scale((p.grad as Tensor).data, p.size, coef);
  return norm;
}

/** the global L2 norm of the gradients of `list` (tensors that have one) */
function gradNorm(list: readonly Tensor[]): number {
  const k = backend();
  let sq = 0;
  for (const p of list) sq += k.sumSquares((p.grad as Tensor).data, p.size);
  return Math.sqrt(sq);
}

/** what clip_grad_norm_ multiplies the gradients by: maxNorm / norm when above it (a norm that is not finite: nothing) */
function clipFactor(norm: number, maxNorm: number): number {
  if (!(maxNorm > 0) || !Number.isFinite(norm)) return 1;
  return Math.min(1, maxNorm / (norm + 1e-6));
}

/**
 * clipGradNormAsync for a training step whose AdamW.update comes next: on the CPU the gradients are
 * not scaled here but the factor is returned for AdamW.update(lr, gradScale), which multiplies each
 * gradient as it reads it (the same f32 products as scaling first, and one pass over the gradients
 * fewer); on a device they are clipped there and the factor is 1.
 */
export function clipForUpdate(params: Iterable<Tensor>, maxNorm: number): { norm: number | Promise<number>; gradScale: number } {
  const list = [...params].filter((p) => p.grad);
  if (deviceReductions() && list[0]?.device) return { norm: clipGradNormAsync(list, maxNorm), gradScale: 1 };
  const norm = gradNorm(list);
  return { norm, gradScale: clipFactor(norm, maxNorm) };
}

/**
 * clipGradNorm on any backend, the norm read asynchronously. On a device (webgpu) the norm is
 * computed and the gradients scaled there, with no readback between: only the norm comes back.
 */
export async function clipGradNormAsync(params: Iterable<Tensor>, maxNorm: number): Promise<number> {
  const list = [...params].filter((p) => p.grad);
  const device = deviceReductions();
  if (!device || !list[0]?.device) return clipGradNorm(list, maxNorm);
  const sums = new Tensor([list.length], "f32", false, false);
  try {
    for (const [i, p] of list.entries()) device.sumSquaresInto(sums.slice(i, 1), (p.grad as Tensor).storage, p.size);
    if (maxNorm > 0) for (const p of list) device.clipByNorm((p.grad as Tensor).storage, p.size, sums.storage, list.length, maxNorm);
    let sq = 0;
    for (const v of await sums.read()) sq += v;
    return Math.sqrt(sq);
  } finally {
    sums.dispose();
  }
}
