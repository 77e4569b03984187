import { backend } from "../kernels/index.js";
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
  backend().linearForward(out.data, x.data, w.data, b ? b.data : null, M, K, N);
  const parents = b ? [x, w, b] : [x, w];
  return record(out, parents, () => {
    const dx = x.requiresGrad ? x.ensureGrad().data : null;
    const dw = w.requiresGrad ? w.ensureGrad().data : null;
    const db = b?.requiresGrad ? b.ensureGrad().data : null;
    backend().linearBackward(dx, dw, db, (out.grad as Tensor).data, x.data, w.data, M, K, N);
  });
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
  backend().matmulBT(out.data, x.data, w.data, M, K, N, false);
  return record(out, [x, w], () => {
    const dy = (out.grad as Tensor).data;
    const k = backend();
    if (x.requiresGrad) k.matmul(x.ensureGrad().data, dy, w.data, M, N, K, true);
    if (w.requiresGrad) k.matmulAT(w.ensureGrad().data, dy, x.data, N, M, K, true);
  });
}
