import { backend } from "../kernels/index.js";
import { Tensor } from "../tensor/tensor.js";
import { lastDim, record, shapeStr } from "./record.js";

/** Index that marks "no loss at this position" (PyTorch's ignore_index, nanoGPT's -1). */
export const IGNORE_INDEX = -1;

/**
 * logits (...,V), targets (...) int32 -> scalar mean cross-entropy over the positions whose target
 * is not -1 (as PyTorch's F.cross_entropy(..., ignore_index=-1)). Softmax is fused in: backward
 * is (softmax - onehot) / count.
 */
export function crossEntropy(logits: Tensor, targets: Tensor): Tensor {
  const V = lastDim(logits);
  const N = logits.size / V;
  if (targets.size !== N) throw new Error(`crossEntropy: logits ${shapeStr(logits.shape)} vs targets ${shapeStr(targets.shape)}`);
  const tv = targets.ints;
  let count = 0;
  for (let i = 0; i < N; i++) {
    const t = tv[i] as number;
    if (t === IGNORE_INDEX) continue;
    if (t < 0 || t >= V) throw new RangeError(`crossEntropy: target ${t} outside the vocabulary of ${V}`);
    count++;
  }
  const losses = new Tensor([N]);
  const lse = new Tensor([N]);
  backend().crossEntropyForward(losses.data, lse.data, logits.data, tv, N, V);
  let sum = 0;
  const lv = losses.data;
  for (let i = 0; i < N; i++) sum += lv[i] as number;
  const out = Tensor.fromArray([count > 0 ? sum / count : Number.NaN], []);
  return record(out, [logits], () => {
    if (count === 0) return;
    const upstream = (out.grad as Tensor).data[0] as number;
    backend().crossEntropyBackward(logits.ensureGrad().data, logits.data, lse.data, targets.ints, N, V, upstream / count);
  });
}
