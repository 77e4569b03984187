import { backend } from "../kernels/index.js";
import { Tensor } from "../tensor/tensor.js";
import { record } from "./record.js";

/** max(x, 0), elementwise (the MLP activation of models configured with `activation: "relu"`). */
export function relu(x: Tensor): Tensor {
  const out = new Tensor(x.shape);
  backend().reluForward(out.storage, x.storage, x.size);
  return record(out, [x], () => {
    backend().reluBackward(x.ensureGrad().storage, x.storage, (out.grad as Tensor).storage, x.size);
  });
}
