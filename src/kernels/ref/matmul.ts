import type { FloatArray } from "../backend.js";
import { addBias, sumRows } from "./elementwise.js";

// The three matmul layouts of training, as plain loops. Loop order is chosen so the innermost loop
// walks both operands contiguously (i-k-j for a·b); sums are carried in float64 (JS numbers).

/** a (M,K), b (K,N) -> out (M,N) (+)= a·b */
export function matmul(out: FloatArray, a: FloatArray, b: FloatArray, M: number, K: number, N: number, accumulate: boolean): void {
  const row = new Float64Array(N);
  for (let i = 0; i < M; i++) {
    row.fill(0);
    for (let k = 0; k < K; k++) {
      const aik = a[i * K + k]!;
      const bo = k * N;
      for (let j = 0; j < N; j++) row[j]! += aik * b[bo + j]!;
    }
    const oo = i * N;
    for (let j = 0; j < N; j++) out[oo + j] = accumulate ? out[oo + j]! + row[j]! : row[j]!;
  }
}

/** a (M,K), b (N,K) -> out (M,N) (+)= a·bᵀ */
export function matmulBT(out: FloatArray, a: FloatArray, b: FloatArray, M: number, K: number, N: number, accumulate: boolean): void {
  for (let i = 0; i < M; i++) {
    const ao = i * K;
    for (let j = 0; j < N; j++) {
      const bo = j * K;
      let s = 0;
      for (let k = 0; k < K; k++) s += a[ao + k]! * b[bo + k]!;
      const o = i * N + j;
      out[o] = accumulate ? out[o]! + s : s;
    }
  }
}

/** a (K,M), b (K,N) -> out (M,N) (+)= aᵀ·b */
export function matmulAT(out: FloatArray, a: FloatArray, b: FloatArray, M: number, K: number, N: number, accumulate: boolean): void {
  const acc = new Float64Array(M * N);
  for (let k = 0; k < K; k++) {
    const ao = k * M;
    const bo = k * N;
    for (let i = 0; i < M; i++) {
      const aki = a[ao + i]!;
      if (aki === 0) continue;
      const oo = i * N;
      for (let j = 0; j < N; j++) acc[oo + j]! += aki * b[bo + j]!;
    }
  }
  for (let o = 0; o < M * N; o++) out[o] = accumulate ? out[o]! + acc[o]! : acc[o]!;
}

/** x (M,K), w (K,N), bias (N) | null -> out (M,N) = x·w + bias */
export function linearForward(
  out: FloatArray,
  x: FloatArray,
  w: FloatArray,
  bias: FloatArray | null,
  M: number,
  K: number,
  N: number,
): void {
  matmul(out, x, w, M, K, N, false);
  if (bias) addBias(out, bias, M, N);
}

/** dy (M,N) -> dx (M,K) += dy·wᵀ, dw (K,N) += xᵀ·dy (= with overwriteDx / overwriteDw), db (N) += Σ_rows dy (null: skipped) */
export function linearBackward(
  dx: FloatArray | null,
  dw: FloatArray | null,
  db: FloatArray | null,
  dy: FloatArray,
  x: FloatArray,
  w: FloatArray,
  M: number,
  K: number,
  N: number,
  overwriteDx = false,
  overwriteDw = false,
): void {
  if (dx) matmulBT(dx, dy, w, M, N, K, !overwriteDx);
  if (dw) matmulAT(dw, x, dy, K, M, N, !overwriteDw);
  if (db) sumRows(db, dy, M, N);
}
