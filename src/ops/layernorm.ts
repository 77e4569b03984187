import { backend } from "../kernels/index.js";
import { Tensor } from "../tensor/tensor.js";
import { lastDim, record, shapeStr } from "./record.js";

/** x (...,C), w (C), b (C) -> (...,C), normalised over the last axis (biased variance, like PyTorch) */
export function layerNorm(x: Tensor, w: Tensor, b: Tensor, eps = 1e-5): Tensor {
  const C = lastDim(x);
  if (w.size !== C || b.size !== C) throw new Error(`layerNorm: x ${shapeStr(x.shape)} with w ${shapeStr(w.shape)}`);
  const N = x.size / C;
  const out = new Tensor(x.shape);
  const mean = new Tensor([N]);
  const rstd = new Tensor([N]);
  backend().layernormForward(out.storage, mean.storage, rstd.storage, x.storage, w.storage, b.storage, N, C, eps);
  return record(out, [x, w, b], () => {
    // a frozen w or b (LoRA trains the layers around it) gets no gradient buffer: the kernel writes
    // its sums into scratch that is then dropped
    const frozen = !w.requiresGrad || !b.requiresGrad ? new Tensor([2, C], "f32", false, false) : null;
    if (frozen) backend().zero(frozen.storage, 2 * C);
    backend().layernormBackward(
      x.ensureGrad().storage,
      w.requiresGrad ? w.ensureGrad().storage : (frozen as Tensor).slice(0, C),
      b.requiresGrad ? b.ensureGrad().storage : (frozen as Tensor).slice(C, C),
      (out.grad as Tensor).storage,
      x.storage,
      w.storage,
      mean.storage,
      rstd.storage,
      N,
      C,
    );
    frozen?.dispose();
  });
}
