import { backend } from "../kernels/index.js";
import { isGradEnabled, Tensor } from "../tensor/tensor.js";
import { linearBackward } from "./matmul.js";
import { lastDim, record, shapeStr } from "./record.js";

/** GELU with the tanh approximation (GPT-2's "gelu_new"), elementwise. */
export function gelu(x: Tensor): Tensor {
  const out = new Tensor(x.shape);
  backend().geluForward(out.storage, x.storage, x.size);
  return record(out, [x], () => {
    backend().geluBackward(x.ensureGrad().storage, x.storage, (out.grad as Tensor).storage, x.size);
  });
}

/**
 * gelu(x·w + b), the first half of the MLP, as one op: x (...,K), w (K,N), b (N) -> (...,N).
 * The pre-activation h = x·w + b is used by backward only through gelu'(h), so when a graph is being
 * recorded the forward keeps gelu'(h) instead of h (computed with gelu(h), from the same exp).
 * Backward is then dh = gelu'(h)·dout, one multiply, where gelu(linear(...)) would recompute the tanh
 * of every element and zero a gradient buffer for h to add into. Same values as the two ops.
 */
export function linearGelu(x: Tensor, w: Tensor, b: Tensor): Tensor {
  const K = lastDim(x);
  const [wk, N] = w.shape as [number, number];
  if (w.shape.length !== 2 || wk !== K) throw new Error(`linearGelu: x ${shapeStr(x.shape)} does not match w ${shapeStr(w.shape)}`);
  const M = x.size / K;
  const shape = [...x.shape.slice(0, -1), N];
  const k = backend();
  const h = new Tensor(shape);
  k.linearForward(h.storage, x.storage, w.storage, b.storage, M, K, N);
  const out = new Tensor(shape);
  if (!(isGradEnabled() && (x.requiresGrad || w.requiresGrad || b.requiresGrad))) {
    k.geluForward(out.storage, h.storage, h.size);
    h.dispose();
    return out;
  }
  const dgelu = h; // gelu'(h) from here on, in h's storage
  k.geluForwardGrad(out.storage, dgelu.storage, h.storage, h.size);
  return record(out, [x, w, b], () => {
    const be = backend();
    // a buffer of its own (not dgelu's storage), so that the graph can be walked backward again
    const dh = new Tensor(shape, "f32", false, false);
    try {
      be.mul(dh.storage, dgelu.storage, (out.grad as Tensor).storage, dh.size);
      linearBackward(x, w, b, dh.storage, M, K, N);
    } finally {
      dh.dispose();
    }
  });
}
