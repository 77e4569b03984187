import { backend, type KernelArray } from "../kernels/index.js";
import { Tensor } from "../tensor/tensor.js";
import { record, shapeStr } from "./record.js";

/** a, b (same shape) -> a + b: the residual connection. Gradient flows unchanged to both. */
export function add(a: Tensor, b: Tensor): Tensor {
  if (a.size !== b.size) throw new Error(`add: shapes ${shapeStr(a.shape)} and ${shapeStr(b.shape)} differ`);
  const out = new Tensor(a.shape);
  backend().add(out.storage, a.storage, b.storage, a.size);
  return record(out, [a, b], () => {
    const dy = (out.grad as Tensor).storage;
    if (a.requiresGrad) addGrad(a, dy);
    if (b.requiresGrad) addGrad(b, dy);
  });
}

/** t.grad += g (copied in, when t has no gradient yet) */
function addGrad(t: Tensor, g: KernelArray): void {
  const fresh = t.freshGrad();
  if (fresh) backend().copy(fresh.storage, g, t.size);
  else backend().accumulate((t.grad as Tensor).storage, g, t.size);
}

/**
 * x (B,T,C) + rows p0 .. p0+T-1 of pos (P,C), broadcast over B: token + position embeddings (p0 > 0
 * for new tokens after cached ones). The gradient of pos is the sum over the batch, in those rows.
 */
export function addPositions(x: Tensor, pos: Tensor, p0 = 0): Tensor {
  if (x.shape.length !== 3 || pos.shape.length !== 2) throw new Error(`addPositions: x ${shapeStr(x.shape)}, pos ${shapeStr(pos.shape)}`);
  const [B, T, C] = x.shape as [number, number, number];
  const [P, pc] = pos.shape as [number, number];
  if (pc !== C || p0 + T > P)
    throw new Error(`addPositions: positions ${p0}..${p0 + T - 1} of width ${C} do not fit pos ${shapeStr(pos.shape)}`);
  const n = T * C;
  const rows = (t: Tensor) => t.slice(p0 * C, n);
  const out = new Tensor(x.shape);
  backend().copy(out.storage, x.storage, x.size);
  backend().addBias(out.storage, rows(pos), B, n);
  return record(out, [x, pos], () => {
    const dy = (out.grad as Tensor).storage;
    if (x.requiresGrad) addGrad(x, dy);
    if (pos.requiresGrad) backend().sumRows(rows(pos.ensureGrad()), dy, B, n);
  });
}
