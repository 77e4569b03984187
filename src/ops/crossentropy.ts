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
  const k = backend();
  k.crossEntropyForward(losses.storage, lse.storage, logits.storage, targets.intStorage, N, V);
  let out: Tensor;
  if (logits.device) {
    // in device memory: the mean stays there too (read it with `await loss.read()`)
    out = Tensor.zeros([]);
    k.sumRows(out.storage, losses.storage, N, 1);
    k.scale(out.storage, 1, count > 0 ? 1 / count : Number.NaN);
  } else {
    let sum = 0;
    const lv = losses.data;
    for (let i = 0; i < N; i++) sum += lv[i] as number;
    out = Tensor.fromArray([count > 0 ? sum / count : Number.NaN], []);
  }
  return record(out, [logits], () => {
    if (count === 0) return;
    let upstream: number;
    if (out.device) {
      // the loss's gradient is on the device; the seed backward() wrote there is known here
      if (out.seed === null) throw new Error("crossEntropy on a GPU: backward() must start from the loss itself");
      upstream = out.seed;
    } else upstream = (out.grad as Tensor).data[0] as number;
    k.crossEntropyBackward(logits.ensureGrad().storage, logits.storage, lse.storage, targets.intStorage, N, V, upstream / count);
  });
}
