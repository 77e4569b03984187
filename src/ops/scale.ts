import { backend } from "../kernels/index.js";
import { Tensor } from "../tensor/tensor.js";
import { record } from "./record.js";

/** x (any shape) -> s·x, s a constant (LoRA's alpha/r).  dx += s·dy */
export function scale(x: Tensor, s: number): Tensor {
  const out = new Tensor(x.shape);
  const k = backend();
  k.copy(out.storage, x.storage, x.size);
  k.scale(out.storage, x.size, s);
  return record(out, [x], () => {
    const dy = (out.grad as Tensor).storage;
    const fresh = x.freshGrad();
    if (fresh) {
      k.copy(fresh.storage, dy, x.size);
      k.scale(fresh.storage, x.size, s);
      return;
    }
    // x has another consumer: scale a copy of dy, then add it
    const tmp = new Tensor(x.shape, "f32", false, false);
    k.copy(tmp.storage, dy, x.size);
    k.scale(tmp.storage, x.size, s);
    k.accumulate((x.grad as Tensor).storage, tmp.storage, x.size);
    tmp.dispose();
  });
}
