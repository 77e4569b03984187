import { backend } from "../kernels/index.js";
import { Tensor } from "../tensor/tensor.js";
import { record } from "./record.js";

/** max(x, 0), elementwise (the activation of seeds 000 and 002). */
export function relu(x: Tensor): Tensor {
  const out = new Tensor(x.shape);
  backend().reluForward(out.data, x.data, x.size);
  return record(out, [x], () => {
    backend().reluBackward(x.ensureGrad().data, x.data, (out.grad as Tensor).data, x.size);
  });
}
