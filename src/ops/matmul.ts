import { backend, type KernelArray } from "../kernels/index.js";
import { Tensor } from "../tensor/tensor.js";
import { lastDim, record, shapeStr } from "./record.js";

/**
 * x (...,K), w (K,N) [, b (N)] -> (...,N). GPT-2 stores linear weights as [in, out] (its Conv1D),
 * so the forward is a plain x·w and the weights map one-to-one to Hugging Face's.
 *   dx += dy·wᵀ,  dw += xᵀ·dy,  db += Σ_rows dy
 */
export function linear(x: Tensor, w: Tensor, b?: Tensor): Tensor {
  const K = lastDim(x);
  const [wk, N] = w.shape as [number, number];
  if (w.shape.length !== 2 || wk !== K) throw new Error(`linear: x ${shapeStr(x.shape)} does not match w ${shapeStr(w.shape)}`);
  const M = x.size / K;
  const out = new Tensor([...x.shape.slice(0, -1), N]);
  backend().linearForward(out.storage, x.storage, w.storage, b ? b.storage : null, M, K, N);
  const parents = b ? [x, w, b] : [x, w];
  return record(out, parents, () => linearBackward(x, w, b, (out.grad as Tensor).storage, M, K, N));
}

/** the gradients of linear(x, w, b) for dy (M,N), added into theirs (x's and w's written, when new or zeroed: freshGrad) */
export function linearBackward(x: Tensor, w: Tensor, b: Tensor | undefined, dy: KernelArray, M: number, K: number, N: number): void {
  const fresh = x.requiresGrad ? x.freshGrad() : null;
  const dx = fresh ? fresh.storage : x.requiresGrad ? (x.grad as Tensor).storage : null;
  const freshW = w.requiresGrad ? w.freshGrad() : null;
  const dw = freshW ? freshW.storage : w.requiresGrad ? (w.grad as Tensor).storage : null;
  const db = b?.requiresGrad ? b.ensureGrad().storage : null;
  backend().linearBackward(dx, dw, db, dy, x.storage, w.storage, M, K, N, fresh !== null, freshW !== null);
}

/**
 * x (...,K), w (N,K) -> (...,N) = x·wᵀ. The tied LM head: logits = x · wteᵀ.
 *   dx += dy·w,  dw += dyᵀ·x
 */
export function matmulTransposed(x: Tensor, w: Tensor): Tensor {
  const K = lastDim(x);
  const [N, wk] = w.shape as [number, number];
  if (w.shape.length !== 2 || wk !== K) throw new Error(`matmulTransposed: x ${shapeStr(x.shape)} does not match w ${shapeStr(w.shape)}`);
  const M = x.size / K;
  const out = new Tensor([...x.shape.slice(0, -1), N]);
  backend().matmulBT(out.storage, x.storage, w.storage, M, K, N, false);
  return record(out, [x, w], () => {
    const dy = (out.grad as Tensor).storage;
    const k = backend();
    if (x.requiresGrad) {
      const fresh = x.freshGrad();
      k.matmul((fresh ?? (x.grad as Tensor)).storage, dy, w.storage, M, N, K, fresh === null);
    }
    if (w.requiresGrad) k.matmulAT(w.ensureGrad().storage, dy, x.storage, N, M, K, true);
  });
}
