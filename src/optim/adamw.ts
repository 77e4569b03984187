import { type AdamwTensor, backend, deviceReductions, type KernelArray } from "../kernels/index.js";
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

  /** One update with learning rate `lr` (the schedule's value for this step). */
  update(lr: number): void {
    this.step++;
    const { beta1, beta2, eps, weightDecay } = this.options;
    const bc1 = 1 - beta1 ** this.step;
    const bc2 = 1 - beta2 ** this.step;
    const k = backend();
    if (k.adamwMany) {
      const tensors: AdamwTensor<KernelArray>[] = [];
      for (const [name, p] of this.params) {
        if (!p.grad) continue;
        const m = (this.m.get(name) as Tensor).storage;
        const v = (this.v.get(name) as Tensor).storage;
        tensors.push({ p: p.storage, g: p.grad.storage, m, v, n: p.size, decays: p.shape.length >= 2 });
      }
      k.adamwMany(tensors, lr, beta1, beta2, eps, weightDecay, bc1, bc2);
      return;
    }
    for (const [name, p] of this.params) {
      if (!p.grad) continue;
      const wd = p.shape.length >= 2 ? weightDecay : 0;
      k.adamw(
        p.storage,
        p.grad.storage,
        (this.m.get(name) as Tensor).storage,
        (this.v.get(name) as Tensor).storage,
        p.size,
        lr,
        beta1,
        beta2,
        eps,
        wd,
        bc1,
        bc2,
      );
    }
  }
}

/**
 * Scale all gradients so their global L2 norm is at most maxNorm (PyTorch's clip_grad_norm_).
 * Returns the norm before clipping.
 */
export function clipGradNorm(params: Iterable<Tensor>, maxNorm: number): number {
  const k = backend();
  const list = [...params].filter((p) => p.grad);
  let sq = 0;
  for (const p of list) sq += k.sumSquares((p.grad as Tensor).data, p.size);
  const norm = Math.sqrt(sq);
  if (maxNorm > 0 && Number.isFinite(norm)) {
    const coef = maxNorm / (norm + 1e-6);
    if (coef < 1) for (const p of list) k.scale((p.grad as Tensor).data, p.size, coef);
  }
  return norm;
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
