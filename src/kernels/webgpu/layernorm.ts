/**
 * LayerNorm on the GPU; twin of src/kernels/ref/layernorm.ts. x (N,C), w (C), b (C).
 * Forward: one workgroup per row (wgsl.ts rowThreads: mean, then the biased variance, each a workgroup sum).
 * Backward: dx one workgroup per row (the two row means of the formula below); dw and db one
 * invocation per column walking the rows, so nothing is summed by two invocations at once.
 *   xhat = (x - mean)·rstd, g = dout·w:  dx += rstd·(g - mean(g) - xhat·mean(g·xhat)),
 *   dw += Σ_rows dout·xhat,  db += Σ_rows dout
 */
import { type GpuArray, type GpuRuntime, groups1d } from "./runtime.js";
import { declare, ENTRY_1D, GROUP_1D, reduceOver, rowKernel } from "./wgsl.js";

const FORWARD = rowKernel(
  (
    t,
  ) => `${declare(["N: u32", "C: u32", "eps: f32"], [{ name: "x" }, { name: "w" }, { name: "b" }, { name: "out", write: true }, { name: "mean", write: true }, { name: "rstd", write: true }])}
${reduceOver(t)}
@compute @workgroup_size(${t})
fn main(${ENTRY_1D}) {
  ${GROUP_1D}
  let n = group;
  if (n >= p.N) { return; }
  let o = n * p.C;
  var s = 0.0;
  for (var c = lid; c < p.C; c = c + ${t}u) { s = s + x[p.o_x + o + c]; }
  let m = reduce_sum(s, lid) / f32(p.C);
  var q = 0.0;
  for (var c = lid; c < p.C; c = c + ${t}u) { let d = x[p.o_x + o + c] - m; q = fma(d, d, q); }
  let r = 1.0 / sqrt(reduce_sum(q, lid) / f32(p.C) + p.eps);
  for (var c = lid; c < p.C; c = c + ${t}u) {
    out[p.o_out + o + c] = (x[p.o_x + o + c] - m) * r * w[p.o_w + c] + b[p.o_b + c];
  }
  if (lid == 0u) { mean[p.o_mean + n] = m; rstd[p.o_rstd + n] = r; }
}`,
);

const BACKWARD_DX = rowKernel(
  (
    t,
  ) => `${declare(["N: u32", "C: u32"], [{ name: "dout" }, { name: "x" }, { name: "w" }, { name: "mean" }, { name: "rstd" }, { name: "dx", write: true }])}
${reduceOver(t)}
@compute @workgroup_size(${t})
fn main(${ENTRY_1D}) {
  ${GROUP_1D}
  let n = group;
  if (n >= p.N) { return; }
  let o = n * p.C;
  let m = mean[p.o_mean + n];
  let r = rstd[p.o_rstd + n];
  var gs = 0.0;
  var gxs = 0.0;
  for (var c = lid; c < p.C; c = c + ${t}u) {
    let xhat = (x[p.o_x + o + c] - m) * r;
    let g = dout[p.o_dout + o + c] * w[p.o_w + c];
    gs = gs + g;
    gxs = fma(g, xhat, gxs);
  }
  let gMean = reduce_sum(gs, lid) / f32(p.C);
  let gxMean = reduce_sum(gxs, lid) / f32(p.C);
  for (var c = lid; c < p.C; c = c + ${t}u) {
    let xhat = (x[p.o_x + o + c] - m) * r;
    let g = dout[p.o_dout + o + c] * w[p.o_w + c];
    dx[p.o_dx + o + c] = dx[p.o_dx + o + c] + r * (g - gMean - xhat * gxMean);
  }
}`,
);

const BACKWARD_DW = `${declare(["N: u32", "C: u32"], [{ name: "dout" }, { name: "x" }, { name: "mean" }, { name: "rstd" }, { name: "dw", write: true }, { name: "db", write: true }])}
@compute @workgroup_size(256)
fn main(${ENTRY_1D}) {
  ${GROUP_1D}
  let c = group * 256u + lid;
  if (c >= p.C) { return; }
  var sw = 0.0;
  var sb = 0.0;
  for (var n = 0u; n < p.N; n = n + 1u) {
    let d = dout[p.o_dout + n * p.C + c];
    let xhat = (x[p.o_x + n * p.C + c] - mean[p.o_mean + n]) * rstd[p.o_rstd + n];
    sw = fma(d, xhat, sw);
    sb = sb + d;
  }
  dw[p.o_dw + c] = dw[p.o_dw + c] + sw;
  db[p.o_db + c] = db[p.o_db + c] + sb;
}`;

export function layernormForward(
  rt: GpuRuntime,
  out: GpuArray,
  mean: GpuArray,
  rstd: GpuArray,
  x: GpuArray,
  w: GpuArray,
  b: GpuArray,
  N: number,
  C: number,
  eps: number,
): void {
  rt.run(FORWARD(C), groups1d(N, 1), [{ u32: N }, { u32: C }, { f32: eps }], [x, w, b], [out, mean, rstd]);
}

export function layernormBackward(
  rt: GpuRuntime,
  dx: GpuArray,
  dw: GpuArray,
  db: GpuArray,
  dout: GpuArray,
  x: GpuArray,
  w: GpuArray,
  mean: GpuArray,
  rstd: GpuArray,
  N: number,
  C: number,
): void {
  const NC = [{ u32: N }, { u32: C }];
  rt.run(BACKWARD_DX(C), groups1d(N, 1), NC, [dout, x, w, mean, rstd], [dx]);
  rt.run(BACKWARD_DW, groups1d(C, 256), NC, [dout, x, mean, rstd], [dw, db]);
}
