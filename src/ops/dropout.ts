import { backend } from "../kernels/index.js";
import type { Rng } from "../random.js";
import { Tensor } from "../tensor/tensor.js";
import { record } from "./record.js";

/**
 * Inverted dropout: zero each element with probability p and scale the rest by 1/(1-p), so
 * inference needs no rescaling. The mask comes from the seeded PRNG, so runs (and resumes) repeat.
 */
export function dropout(x: Tensor, p: number, rng: Rng): Tensor {
  if (p <= 0) return x;
  if (p >= 1) throw new RangeError(`dropout probability must be < 1, got ${p}`);
  const mask = new Tensor(x.shape);
  // the mask is drawn on the CPU (the seeded PRNG) and, for a tensor in device memory, copied there
  const m = mask.device ? new Float32Array(x.size) : mask.data;
  const keep = 1 / (1 - p);
  for (let i = 0; i < x.size; i++) m[i] = rng.random() < p ? 0 : keep;
  if (mask.device) mask.write(m);
  const out = new Tensor(x.shape);
  backend().mul(out.storage, x.storage, mask.storage, x.size);
  return record(out, [x], () => {
    const fresh = x.freshGrad();
    if (fresh) {
      backend().mul(fresh.storage, (out.grad as Tensor).storage, mask.storage, x.size);
      return;
    }
    const dx = new Tensor(x.shape, "f32", false, false);
    backend().mul(dx.storage, (out.grad as Tensor).storage, mask.storage, x.size);
    backend().accumulate((x.grad as Tensor).storage, dx.storage, x.size);
    dx.dispose();
  });
}
