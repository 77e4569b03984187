/**
 * The fused one-token blocks of generation on the GPU; twins of src/kernels/ref/decode.ts, and like
 * them exactly the composition of the kernels they stand for. On the GPU they are a handful of
 * dispatches recorded back to back with nothing read in between, so there is nothing more to fuse.
 */
import { geluForward, reluForward } from "./activations.js";
import { attentionCached } from "./attention.js";
import { copy } from "./elementwise.js";
import { matmul } from "./matmul.js";
import type { GpuArray, GpuRuntime } from "./runtime.js";

/** h (H) = act(a·wfc + bfc), y (C) = h·wproj + bproj */
export function mlpRow(
  rt: GpuRuntime,
  y: GpuArray,
  h: GpuArray,
  a: GpuArray,
  wfc: GpuArray,
  bfc: GpuArray,
  wproj: GpuArray,
  bproj: GpuArray,
  C: number,
  H: number,
  relu: boolean,
): void {
  matmul(rt, "nn", h, a, wfc, bfc, 1, C, H, false);
  if (relu) reluForward(rt, h, h, H);
  else geluForward(rt, h, h, H);
  matmul(rt, "nn", y, h, wproj, bproj, 1, H, C, false);
}

/** qkv (3C) = a·wattn + battn; its k, v to row pos of the caches (Tmax,C); att (C) over rows 0..pos; y (C) = att·wproj + bproj */
export function attentionRow(
  rt: GpuRuntime,
  y: GpuArray,
  att: GpuArray,
  qkv: GpuArray,
  a: GpuArray,
  wattn: GpuArray,
  battn: GpuArray,
  kCache: GpuArray,
  vCache: GpuArray,
  pos: number,
  wproj: GpuArray,
  bproj: GpuArray,
  C: number,
  nh: number,
): void {
  matmul(rt, "nn", qkv, a, wattn, battn, 1, C, 3 * C, false);
  copy(rt, rt.view(kCache, pos * C, C), rt.view(qkv, C, C), C);
  copy(rt, rt.view(vCache, pos * C, C), rt.view(qkv, 2 * C, C), C);
  attentionCached(rt, att, qkv, kCache, vCache, 1, pos, C, nh);
  matmul(rt, "nn", y, att, wproj, bproj, 1, C, C, false);
}
