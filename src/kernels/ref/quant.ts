/**
 * Matrix products with weight-only quantized matrices, dequantizing as they go (the format is
 * src/io/quantize.ts): W = q·s, q int8 with one scale per output (bits 8), or int4 two per byte
 * (inputs 2k and 2k+1 of one output: low nibble, high nibble) with one scale per G inputs (bits 4).
 *
 *   qmatmul    out (M,N) = x (M,K) · W [+ b (N)]   W stored (in, out): q (K,N) int8 / (ceil(K/2),N) int4,
 *                                                   scales (N) / (ceil(K/G),N)   (the Conv1D layers)
 *   qmatmulBT  out (M,N) = x (M,K) · Wᵀ            W stored (out, in): q (N,K) int8 / (N,ceil(K/2)) int4,
 *                                                   scales (N) / (N,ceil(K/G))   (the tied LM head, wte)
 *
 * The order of the sums, which the wasm twins (assembly/quant.as) follow up to float rounding: for
 * each output, each group's Σ x·q over its inputs, times the group's scale, the groups added in
 * order, then the bias. An int8 matrix is one group of K.
 */
import type { FloatArray } from "../backend.js";

/** value of input k of output n in a stored matrix: int8 as is, int4 the sign-extended nibble */
function at(q: Int8Array | Uint8Array, bits: 8 | 4, index: number, k: number): number {
  if (bits === 8) return q[index]!;
  return ((q[index]! >> ((k & 1) << 2)) << 28) >> 28;
}

export function qmatmul(
  out: FloatArray,
  x: FloatArray,
  q: Int8Array | Uint8Array,
  scales: FloatArray,
  bias: FloatArray | null,
  M: number,
  K: number,
  N: number,
  bits: 8 | 4,
  G: number,
): void {
  const group = bits === 8 ? K : G;
  const groups = Math.ceil(K / group);
  for (let m = 0; m < M; m++)
    for (let n = 0; n < N; n++) {
      let total = 0;
      for (let g = 0; g < groups; g++) {
        let s = 0;
        for (let k = g * group; k < Math.min(K, (g + 1) * group); k++) {
          const row = bits === 8 ? k : k >> 1;
          s += x[m * K + k]! * at(q, bits, row * N + n, k);
        }
        total += s * scales[bits === 8 ? n : g * N + n]!;
      }
      out[m * N + n] = total + (bias ? bias[n]! : 0);
    }
}

export function qmatmulBT(
  out: FloatArray,
  x: FloatArray,
  q: Int8Array | Uint8Array,
  scales: FloatArray,
  M: number,
  K: number,
  N: number,
  bits: 8 | 4,
  G: number,
): void {
  const group = bits === 8 ? K : G;
  const groups = Math.ceil(K / group);
  const rowBytes = bits === 8 ? K : Math.ceil(K / 2);
  for (let m = 0; m < M; m++)
    for (let n = 0; n < N; n++) {
      let total = 0;
      for (let g = 0; g < groups; g++) {
        let s = 0;
        for (let k = g * group; k < Math.min(K, (g + 1) * group); k++) {
          const col = bits === 8 ? k : k >> 1;
          s += x[m * K + k]! * at(q, bits, n * rowBytes + col, k);
        }
        total += s * scales[bits === 8 ? n : n * groups + g]!;
      }
      out[m * N + n] = total;
    }
}
