import { backend } from "../kernels/index.js";
import { Tensor } from "../tensor/tensor.js";
import { record } from "./record.js";

/** GELU with the tanh approximation (GPT-2's "gelu_new"), elementwise. */
export function gelu(x: Tensor): Tensor {
  const out = new Tensor(x.shape);
  backend().geluForward(out.data, x.data, x.size);
  return record(out, [x], () => {
    backend().geluBackward(x.ensureGrad().data, x.data, (out.grad as Tensor).data, x.size);
  });
}
