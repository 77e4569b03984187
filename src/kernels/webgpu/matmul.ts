/**
 * The three matmul layouts of training, and the linear layer's forward (bias added as each output is
 * stored) and backward, on the GPU. Twin of src/kernels/ref/matmul.ts.
 *
 *   nn: a (M,K) · b (K,N)      nt: a (M,K) · b (N,K)ᵀ      tn: a (K,M)ᵀ · b (K,N)      -> out (M,N)
 *
 * Blocking: a workgroup of 16x16 invocations computes a 64x64 tile of out, each invocation 4x4
 * outputs strided by 16 (so neighbouring invocations store neighbouring columns). The K dimension
 * is walked 16 at a time: the workgroup loads a 64x16 slice of a and a 16x64 slice of b into
 * workgroup memory, each element read from global memory once per tile (by consecutive invocations
 * along the operand's contiguous axis, whichever layout it has), then every invocation runs 16
 * multiply-adds per output from workgroup memory. Sums are fp32 (the ref sums in float64).
 *
 * Rows of generation (M <= 4: one new token) take `rows`, where a workgroup of 256 computes 64
 * columns of one row with 4 invocations splitting K, so a one-token product keeps the GPU busy over N.
 */

import { sumRows } from "./elementwise.js";
import type { GpuArray, GpuRuntime } from "./runtime.js";
import { declare } from "./wgsl.js";

type Layout = "nn" | "nt" | "tn";

const TILE = 64;
const KT = 16;

/** a[m][k] and b[k][n] of the logical product, per layout, as WGSL index expressions */
function indexing(layout: Layout): { a: string; b: string; aLoad: string; bLoad: string } {
  // aLoad / bLoad: which (row, k) / (k, col) of the tile load slot e (0..1023) fetches, chosen so that
  // consecutive invocations read consecutive addresses of the operand as it is stored
  const aRowMajor = layout !== "tn";
  const bRowMajor = layout !== "nt";
  return {
    a: aRowMajor ? "a[p.o_a + m * p.K + k]" : "a[p.o_a + k * p.M + m]",
    b: bRowMajor ? "b[p.o_b + k * p.N + n]" : "b[p.o_b + n * p.K + k]",
    aLoad: aRowMajor ? "let r = e / 16u; let kk = e % 16u;" : "let kk = e / 64u; let r = e % 64u;",
    bLoad: bRowMajor ? "let kk = e / 64u; let c = e % 64u;" : "let c = e / 16u; let kk = e % 16u;",
  };
}

function tiledSource(layout: Layout, bias: boolean): string {
  const ix = indexing(layout);
  const arrays = [{ name: "a" }, { name: "b" }, ...(bias ? [{ name: "bias" }] : []), { name: "out", write: true }];
  return `${declare(["M: u32", "K: u32", "N: u32", "accumulate: u32"], arrays)}
var<workgroup> As: array<f32, ${KT * TILE}>;
var<workgroup> Bs: array<f32, ${KT * TILE}>;
@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid3: vec3u, @builtin(local_invocation_index) lid: u32) {
  let row0 = wid.y * ${TILE}u;
  let col0 = wid.x * ${TILE}u;
  let tx = lid3.x;
  let ty = lid3.y;
  var acc: array<f32, 16>;
  for (var k0 = 0u; k0 < p.K; k0 = k0 + ${KT}u) {
    for (var s = 0u; s < 4u; s = s + 1u) {
      let e = lid + s * 256u;
      {
        ${ix.aLoad}
        let m = row0 + r;
        let k = k0 + kk;
        var v = 0.0;
        if (m < p.M && k < p.K) { v = ${ix.a}; }
        As[kk * ${TILE}u + r] = v;
      }
      {
        ${ix.bLoad}
        let n = col0 + c;
        let k = k0 + kk;
        var v = 0.0;
        if (n < p.N && k < p.K) { v = ${ix.b}; }
        Bs[kk * ${TILE}u + c] = v;
      }
    }
    workgroupBarrier();
    for (var kk = 0u; kk < ${KT}u; kk = kk + 1u) {
      var av: array<f32, 4>;
      var bv: array<f32, 4>;
      for (var i = 0u; i < 4u; i = i + 1u) { av[i] = As[kk * ${TILE}u + ty + 16u * i]; }
      for (var j = 0u; j < 4u; j = j + 1u) { bv[j] = Bs[kk * ${TILE}u + tx + 16u * j]; }
      for (var i = 0u; i < 4u; i = i + 1u) {
        for (var j = 0u; j < 4u; j = j + 1u) { acc[i * 4u + j] = fma(av[i], bv[j], acc[i * 4u + j]); }
      }
    }
    workgroupBarrier();
  }
  for (var i = 0u; i < 4u; i = i + 1u) {
    let m = row0 + ty + 16u * i;
    if (m >= p.M) { continue; }
    for (var j = 0u; j < 4u; j = j + 1u) {
      let n = col0 + tx + 16u * j;
      if (n >= p.N) { continue; }
      let o = p.o_out + m * p.N + n;
      var v = acc[i * 4u + j];
      ${bias ? "v = v + bias[p.o_bias + n];" : ""}
      if (p.accumulate != 0u) { v = out[o] + v; }
      out[o] = v;
    }
  }
}`;
}

/** one row (M small): 64 columns per workgroup, 4 invocations per column splitting K, summed in workgroup memory */
function rowsSource(layout: Layout, bias: boolean): string {
  const ix = indexing(layout);
  const arrays = [{ name: "a" }, { name: "b" }, ...(bias ? [{ name: "bias" }] : []), { name: "out", write: true }];
  return `${declare(["M: u32", "K: u32", "N: u32", "accumulate: u32"], arrays)}
var<workgroup> part: array<f32, 256>;
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let m = wid.y;
  let n = wid.x * 64u + lid % 64u;
  let split = lid / 64u;
  var s = 0.0;
  if (n < p.N) {
    for (var k = split; k < p.K; k = k + 4u) { s = fma(${ix.a}, ${ix.b}, s); }
  }
  part[lid] = s;
  workgroupBarrier();
  if (split == 0u && n < p.N) {
    var v = (part[lid] + part[lid + 64u]) + (part[lid + 128u] + part[lid + 192u]);
    ${bias ? "v = v + bias[p.o_bias + n];" : ""}
    let o = p.o_out + m * p.N + n;
    if (p.accumulate != 0u) { v = out[o] + v; }
    out[o] = v;
  }
}`;
}

const sources = new Map<string, string>();
function source(kind: "tiled" | "rows", layout: Layout, bias: boolean): string {
  const key = `${kind} ${layout} ${bias}`;
  let s = sources.get(key);
  if (!s) {
    s = kind === "tiled" ? tiledSource(layout, bias) : rowsSource(layout, bias);
    sources.set(key, s);
  }
  return s;
}

/** out (M,N) (+)= the product of a and b in `layout`, + bias (N) when given */
export function matmul(
  rt: GpuRuntime,
  layout: Layout,
  out: GpuArray,
  a: GpuArray,
  b: GpuArray,
  bias: GpuArray | null,
  M: number,
  K: number,
  N: number,
  accumulate: boolean,
): void {
  if (M === 0 || N === 0) return;
  const rows = M <= 4;
  const params = [{ u32: M }, { u32: K }, { u32: N }, { u32: accumulate ? 1 : 0 }];
  const groups: [number, number] = rows ? [Math.ceil(N / 64), M] : [Math.ceil(N / TILE), Math.ceil(M / TILE)];
  rt.run(source(rows ? "rows" : "tiled", layout, bias !== null), groups, params, bias ? [a, b, bias] : [a, b], [out]);
}

/** dx (M,K) (+)= dy·wᵀ, dw (K,N) (+)= xᵀ·dy, db (N) += Σ_rows dy; null outputs skipped */
export function linearBackward(
  rt: GpuRuntime,
  dx: GpuArray | null,
  dw: GpuArray | null,
  db: GpuArray | null,
  dy: GpuArray,
  x: GpuArray,
  w: GpuArray,
  M: number,
  K: number,
  N: number,
  overwriteDx: boolean,
  overwriteDw: boolean,
): void {
  if (dx) matmul(rt, "nt", dx, dy, w, null, M, N, K, !overwriteDx);
  if (dw) matmul(rt, "tn", dw, x, dy, null, K, M, N, !overwriteDw);
  if (db) sumRows(rt, db, dy, M, N);
}
