/**
 * The one-token decode of R sequences on the GPU; twins of src/kernels/ref/decode.ts, and like
 * them exactly the composition of the kernels they stand for. On the GPU they are a handful of
 * dispatches recorded back to back with nothing read in between, so there is nothing more to fuse.
 */

import type { CachedRow } from "../backend.js";
import { geluForward, reluForward } from "./activations.js";
import { attentionCached } from "./attention.js";
import { copy } from "./elementwise.js";
import { matmul } from "./matmul.js";
import type { GpuArray, GpuRuntime } from "./runtime.js";

/** each row of out (M,N) = x (M,K)·w + bias */
export function linearRows(
  rt: GpuRuntime,
  out: GpuArray,
  x: GpuArray,
  w: GpuArray,
  bias: GpuArray | null,
  M: number,
  K: number,
  N: number,
): void {
  matmul(rt, "nn", out, x, w, bias, M, K, N, false);
}

/** each row of out (M,N) = a (M,K)·bᵀ (the LM head) */
export function matmulBTRows(rt: GpuRuntime, out: GpuArray, a: GpuArray, b: GpuArray, M: number, K: number, N: number): void {
  matmul(rt, "nt", out, a, b, null, M, K, N, false);
}

/** h (R,H) = act(a·wfc + bfc), y (R,C) = h·wproj + bproj */
export function mlpRows(
  rt: GpuRuntime,
  y: GpuArray,
  h: GpuArray,
  a: GpuArray,
  R: number,
  wfc: GpuArray,
  bfc: GpuArray,
  wproj: GpuArray,
  bproj: GpuArray,
  C: number,
  H: number,
  relu: boolean,
): void {
  linearRows(rt, h, a, wfc, bfc, R, C, H);
  if (relu) reluForward(rt, h, h, R * H);
  else geluForward(rt, h, h, R * H);
  linearRows(rt, y, h, wproj, bproj, R, H, C);
}

/**
 * qkv (R,3C) = a·wattn + battn; row r's k, v to row pos of its caches (Tmax,C); att[r] (C) over its
 * rows 0..pos; y (R,C) = att·wproj + bproj
 */
export function attentionRows(
  rt: GpuRuntime,
  y: GpuArray,
  att: GpuArray,
  qkv: GpuArray,
  a: GpuArray,
  rows: readonly CachedRow<GpuArray>[],
  wattn: GpuArray,
  battn: GpuArray,
  wproj: GpuArray,
  bproj: GpuArray,
  C: number,
  nh: number,
): void {
  const R = rows.length;
  linearRows(rt, qkv, a, wattn, battn, R, C, 3 * C);
  rows.forEach(({ keys, values, pos }, r) => {
    const q = rt.view(qkv, r * 3 * C, 3 * C);
    copy(rt, rt.view(keys, pos * C, C), rt.view(qkv, r * 3 * C + C, C), C);
    copy(rt, rt.view(values, pos * C, C), rt.view(qkv, r * 3 * C + 2 * C, C), C);
    attentionCached(rt, rt.view(att, r * C, C), q, keys, values, 1, pos, C, nh);
  });
  linearRows(rt, y, att, wproj, bproj, R, C, C);
}
