import { backend } from "../kernels/index.js";
import { Tensor } from "../tensor/tensor.js";
import { linearBackward } from "./matmul.js";
import { lastDim, record, shapeStr } from "./record.js";

/**
 * A linear layer with a LoRA adapter, as one op (PEFT's forward for GPT-2's Conv1D):
 *
 *   y = x·W + b + s·(xa·Aᵀ)·Bᵀ      x, xa (M,K), W (K,N), A (r,K), B (N,r), s = lora_alpha / r
 *
 * xa is the adapter's input: x, or x through the adapter's dropout. One op instead of linear, two
 * matmuls, a scale and an add keeps one (M,N) output per layer instead of three (on GPT-2 124M's
 * c_attn, 9 MB a layer at batch 4 x 256) and only u = s·xa·Aᵀ (M,r) for the backward:
 *   dB += dyᵀ·u,  g = s·dy·B (M,r),  dA += gᵀ·xa,  dxa += g·A,  and W's own: dx += dy·Wᵀ (dW, db if they train)
 */
export function linearLora(x: Tensor, xa: Tensor, w: Tensor, b: Tensor, a: Tensor, bm: Tensor, s: number): Tensor {
  const K = lastDim(x);
  const [wk, N] = w.shape as [number, number];
  const r = a.shape[0] as number;
  if (w.shape.length !== 2 || wk !== K || xa.size !== x.size || a.shape[1] !== K || bm.shape[0] !== N || bm.shape[1] !== r)
    throw new Error(
      `linearLora: x ${shapeStr(x.shape)}, w ${shapeStr(w.shape)}, A ${shapeStr(a.shape)}, B ${shapeStr(bm.shape)} do not fit`,
    );
  const M = x.size / K;
  const k = backend();
  const out = new Tensor([...x.shape.slice(0, -1), N]);
  k.linearForward(out.storage, x.storage, w.storage, b.storage, M, K, N);
  const u = new Tensor([M, r]);
  k.matmulBT(u.storage, xa.storage, a.storage, M, K, r, false);
  k.scale(u.storage, M * r, s);
  k.matmulBT(out.storage, u.storage, bm.storage, M, r, N, true);
  const parents = xa === x ? [x, w, b, a, bm] : [x, xa, w, b, a, bm];
  return record(out, parents, () => {
    const dy = (out.grad as Tensor).storage;
    if (bm.requiresGrad) k.matmulAT(bm.ensureGrad().storage, dy, u.storage, N, M, r, true);
    const g = new Tensor([M, r], "f32", false, false);
    k.matmul(g.storage, dy, bm.storage, M, N, r, false);
    k.scale(g.storage, M * r, s);
    if (a.requiresGrad) k.matmulAT(a.ensureGrad().storage, g.storage, xa.storage, r, M, K, true);
    // W's path first: it writes x's gradient when x has none yet; the adapter's adds to it
    linearBackward(x, w, b, dy, M, K, N);
    if (xa.requiresGrad) {
      const fresh = xa === x ? null : xa.freshGrad();
      k.matmul((fresh ?? xa.ensureGrad()).storage, g.storage, a.storage, M, r, K, fresh === null);
    }
    g.dispose();
  });
}
