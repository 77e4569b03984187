/**
 * Fused one-token blocks for generation with a KV cache (src/generate/kvcache.ts): each is exactly
 * the composition of the kernels it stands for, in the same order. A fast backend runs one as a
 * single task per thread (a split over hidden units or heads) instead of one pool round trip per
 * matmul.
 */
import type { FloatArray } from "../backend.js";
import { geluForward, reluForward } from "./activations.js";
import { attentionCached } from "./attention.js";
import { linearForward } from "./matmul.js";

/** h (H) = act(a·wfc + bfc), y (C) = h·wproj + bproj (one row) */
export function mlpRow(
  y: FloatArray,
  h: FloatArray,
  a: FloatArray,
  wfc: FloatArray,
  bfc: FloatArray,
  wproj: FloatArray,
  bproj: FloatArray,
  C: number,
  H: number,
  relu: boolean,
): void {
  linearForward(h, a, wfc, bfc, 1, C, H);
  if (relu) reluForward(h, h, H);
  else geluForward(h, h, H);
  linearForward(y, h, wproj, bproj, 1, H, C);
}

/**
 * qkv (3C) = a·wattn + battn; k and v to row pos of the caches; att (C) = attention of q over cache
 * rows 0..pos; y (C) = att·wproj + bproj
 */
export function attentionRow(
  y: FloatArray,
  att: FloatArray,
  qkv: FloatArray,
  a: FloatArray,
  wattn: FloatArray,
  battn: FloatArray,
  kCache: FloatArray,
  vCache: FloatArray,
  pos: number,
  wproj: FloatArray,
  bproj: FloatArray,
  C: number,
  nh: number,
): void {
  linearForward(qkv, a, wattn, battn, 1, C, 3 * C);
  for (let c = 0; c < C; c++) {
    kCache[pos * C + c] = qkv[C + c]!;
    vCache[pos * C + c] = qkv[2 * C + c]!;
  }
  attentionCached(att, qkv, kCache, vCache, 1, pos, C, nh);
  linearForward(y, att, wproj, bproj, 1, C, C);
}
