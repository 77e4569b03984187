/**
 * Softmax and cross-entropy on the GPU, one workgroup per row (wgsl.ts rowThreads); twins of
 * src/kernels/ref/softmax.ts and src/kernels/ref/crossentropy.ts. logits (N,V), targets (N) i32,
 * a target of -1 ignored (loss 0, no gradient).
 *   lse = max + log Σ exp(x - max);  loss = lse - x[target];  dlogits += scale·(softmax - onehot)
 */
import { type GpuArray, type GpuRuntime, groups1d } from "./runtime.js";
import { declare, ENTRY_1D, GROUP_1D, reduceOver, rowKernel } from "./wgsl.js";

/** the row's log-sum-exp, as a workgroup (x: the row's array, o: its first element) */
const rowLse = (t: number): string => `
fn row_lse(o: u32, cols: u32, lid: u32) -> vec2f {
  var mx = -3.4028234e38;
  for (var c = lid; c < cols; c = c + ${t}u) { mx = max(mx, x[o + c]); }
  let m = reduce_max(mx, lid);
  var s = 0.0;
  for (var c = lid; c < cols; c = c + ${t}u) { s = s + exp(x[o + c] - m); }
  let total = reduce_sum(s, lid);
  return vec2f(m, total);
}`;

const SOFTMAX = rowKernel(
  (t) => `${declare(["rows: u32", "cols: u32"], [{ name: "x" }, { name: "out", write: true }])}
${reduceOver(t)}
${rowLse(t)}
@compute @workgroup_size(${t})
fn main(${ENTRY_1D}) {
  ${GROUP_1D}
  if (group >= p.rows) { return; }
  let o = p.o_x + group * p.cols;
  let ms = row_lse(o, p.cols, lid);
  for (var c = lid; c < p.cols; c = c + ${t}u) { out[p.o_out + group * p.cols + c] = exp(x[o + c] - ms.x) / ms.y; }
}`,
);

const CE_FORWARD = rowKernel(
  (
    t,
  ) => `${declare(["N: u32", "V: u32"], [{ name: "x" }, { name: "targets", int: true }, { name: "losses", write: true }, { name: "lse", write: true }])}
${reduceOver(t)}
${rowLse(t)}
@compute @workgroup_size(${t})
fn main(${ENTRY_1D}) {
  ${GROUP_1D}
  if (group >= p.N) { return; }
  let o = p.o_x + group * p.V;
  let ms = row_lse(o, p.V, lid);
  if (lid == 0u) {
    let l = ms.x + log(ms.y);
    lse[p.o_lse + group] = l;
    let t = targets[p.o_targets + group];
    if (t < 0) { losses[p.o_losses + group] = 0.0; } else { losses[p.o_losses + group] = l - x[o + u32(t)]; }
  }
}`,
);

const CE_BACKWARD = rowKernel(
  (
    t,
  ) => `${declare(["N: u32", "V: u32", "scale: f32"], [{ name: "logits" }, { name: "lse" }, { name: "targets", int: true }, { name: "dlogits", write: true }])}
@compute @workgroup_size(${t})
fn main(${ENTRY_1D}) {
  ${GROUP_1D}
  let row = group;
  if (row >= p.N) { return; }
  let t = targets[p.o_targets + row];
  if (t < 0) { return; }
  let l = lse[p.o_lse + row];
  for (var v = lid; v < p.V; v = v + ${t}u) {
    let pr = exp(logits[p.o_logits + row * p.V + v] - l);
    var g = pr;
    if (i32(v) == t) { g = pr - 1.0; }
    let o = p.o_dlogits + row * p.V + v;
    dlogits[o] = dlogits[o] + p.scale * g;
  }
}`,
);

export function softmax(rt: GpuRuntime, out: GpuArray, x: GpuArray, rows: number, cols: number): void {
  rt.run(SOFTMAX(cols), groups1d(rows, 1), [{ u32: rows }, { u32: cols }], [x], [out]);
}

export function crossEntropyForward(
  rt: GpuRuntime,
  losses: GpuArray,
  lse: GpuArray,
  logits: GpuArray,
  targets: GpuArray,
  N: number,
  V: number,
): void {
  rt.run(CE_FORWARD(V), groups1d(N, 1), [{ u32: N }, { u32: V }], [logits, targets], [losses, lse]);
}

export function crossEntropyBackward(
  rt: GpuRuntime,
  dlogits: GpuArray,
  logits: GpuArray,
  lse: GpuArray,
  targets: GpuArray,
  N: number,
  V: number,
  scale: number,
): void {
  rt.run(CE_BACKWARD(V), groups1d(N, 1), [{ u32: N }, { u32: V }, { f32: scale }], [logits, lse, targets], [dlogits]);
}
