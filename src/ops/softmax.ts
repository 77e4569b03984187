import { backend } from "../kernels/index.js";
import { Tensor } from "../tensor/tensor.js";
import { lastDim } from "./record.js";

/**
 * Softmax over the last axis, for inference (sampling, the learning views). Training never needs a
 * standalone softmax: cross-entropy and attention fuse theirs, so this op records no gradient.
 */
export function softmax(x: Tensor): Tensor {
  const cols = lastDim(x);
  const out = new Tensor(x.shape);
  backend().softmax(out.storage, x.storage, x.size / cols, cols);
  return out;
}
