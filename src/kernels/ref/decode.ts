/**
 * The one-token decode of R sequences at once (GPT.decode: one new token of each, each at its own
 * position against its own KV cache). Here every row is computed on its own, so its bits never depend
 * on the batch. (The wasm backend keeps the same promise with its own order of additions, the
 * "steps" of matmul-rows.as, the same for one row and for a register tile of four: its rows are
 * tested bitwise against its own one-row calls and against these within a tolerance.) The fused blocks (mlpRows, attentionRows) are exactly the composition of the kernels
 * they stand for, in the same order; a fast backend runs one as a single task per thread (a split
 * over hidden units or heads) instead of one pool round trip per matmul.
 */
import type { CachedRow, FloatArray } from "../backend.js";
import { geluForward, reluForward } from "./activations.js";
import { attentionCached } from "./attention.js";
import { linearForward, matmulBT } from "./matmul.js";

/** each row of out (M,N) = x (M,K)·w + bias as a one-row linearForward (ref rows never depend on M) */
export function linearRows(out: FloatArray, x: FloatArray, w: FloatArray, bias: FloatArray | null, M: number, K: number, N: number): void {
  linearForward(out, x, w, bias, M, K, N);
}

/** each row of out (M,N) = a (M,K)·bᵀ as a one-row matmulBT */
export function matmulBTRows(out: FloatArray, a: FloatArray, b: FloatArray, M: number, K: number, N: number): void {
  matmulBT(out, a, b, M, K, N, false);
}

/** h (R,H) = act(a·wfc + bfc), y (R,C) = h·wproj + bproj */
export function mlpRows(
  y: FloatArray,
  h: FloatArray,
  a: FloatArray,
  R: number,
  wfc: FloatArray,
  bfc: FloatArray,
  wproj: FloatArray,
  bproj: FloatArray,
  C: number,
  H: number,
  relu: boolean,
): void {
  linearRows(h, a, wfc, bfc, R, C, H);
  if (relu) reluForward(h, h, R * H);
  else geluForward(h, h, R * H);
  linearRows(y, h, wproj, bproj, R, H, C);
}

/**
 * qkv (R,3C) = a·wattn + battn; row r's k and v to row pos of its caches; att[r] (C) = attention of
 * its q over its cache rows 0..pos; y (R,C) = att·wproj + bproj
 */
export function attentionRows(
  y: FloatArray,
  att: FloatArray,
  qkv: FloatArray,
  a: FloatArray,
  rows: readonly CachedRow[],
  wattn: FloatArray,
  battn: FloatArray,
  wproj: FloatArray,
  bproj: FloatArray,
  C: number,
  nh: number,
): void {
  const R = rows.length;
  linearRows(qkv, a, wattn, battn, R, C, 3 * C);
  for (let r = 0; r < R; r++) {
    const { keys, values, pos } = rows[r]!;
    const q = qkv.subarray(r * 3 * C, (r + 1) * 3 * C);
    for (let c = 0; c < C; c++) {
      keys[pos * C + c] = q[C + c]!;
      values[pos * C + c] = q[2 * C + c]!;
    }
    attentionCached(att.subarray(r * C, (r + 1) * C), q, keys, values, 1, pos, C, nh);
  }
  linearRows(y, att, wproj, bproj, R, C, C);
}
