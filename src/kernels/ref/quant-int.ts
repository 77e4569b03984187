/**
 * Integer products of packed int8 / int4 weights (src/kernels/quant-packed.ts) with int8 activations,
 * the decode's form of a quantized linear layer; wasm twin: assembly/quant-int.as, bit for bit.
 *
 *   quantizeActivations  each row of x (M,K) -> xq (M,Kp) int8 in -xmax..xmax with one
 *                        symmetric scale per row, max|x| / xmax, and each group's Σ xq
 *                        (xmax: quant-packed.ts's ACTIVATION_MAX, 63 or 127)
 *   qmatvecPacked        out (M,N) = x·W [+ bias]: for each output, over the groups in order,
 *                        t += f32(Σ xq·q) · scale_g; then t · xscale + bias
 *
 * The integer sums are exact; every float step is one float32 operation (Math.fround), in the wasm
 * kernel's order. int4 is stored offset by 8 (q + 8, 0..15), so a group's sum subtracts 8·Σ xq.
 */
import type { FloatArray } from "../backend.js";

/** f32.nearest: round half to even */
function nearest(v: number): number {
  const r = Math.round(v);
  return r - v === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

export function quantizeActivations(
  xq: Int8Array,
  xsum: Int32Array,
  xscale: FloatArray,
  x: FloatArray,
  M: number,
  K: number,
  G: number,
  Gp: number,
  groups: number,
  xmax: number,
): void {
  const f = Math.fround;
  const Kp = groups * Gp;
  for (let m = 0; m < M; m++) {
    let big = 0;
    for (let k = 0; k < K; k++) big = Math.max(big, Math.abs(x[m * K + k]!));
    const finite = big < Number.POSITIVE_INFINITY;
    const inv = big > 0 && finite ? f(xmax / big) : 0;
    xscale[m] = finite ? f(big / xmax) : Number.NaN;
    for (let g = 0; g < groups; g++) {
      const n = Math.min(G, K - g * G);
      let sum = 0;
      for (let r = 0; r < Gp; r++) {
        const v = r < n && finite ? Math.min(xmax, Math.max(-xmax, nearest(f(x[m * K + g * G + r]! * inv)))) : 0;
        xq[m * Kp + g * Gp + r] = v;
        sum += v;
      }
      xsum[m * groups + g] = sum;
    }
  }
}

export function qmatvecPacked(
  out: FloatArray,
  xq: Int8Array,
  xsum: Int32Array,
  xscale: FloatArray,
  w: Uint8Array,
  scales: FloatArray,
  bias: FloatArray | null,
  M: number,
  N: number,
  bits: 8 | 4,
  Gp: number,
  groups: number,
): void {
  const f = Math.fround;
  const Kp = groups * Gp;
  const panelBytes = (Kp * 16 * bits) / 8;
  /** the stored integer of output n at padded input kk (int4: offset by 8) */
  const at = (n: number, kk: number): number => {
    const panel = (n >> 4) * panelBytes;
    if (bits === 8) return (w[panel + (kk >> 2) * 64 + 4 * (n & 15) + (kk & 3)]! << 24) >> 24;
    return (w[panel + (kk >> 3) * 64 + 4 * (n & 15) + (kk & 3)]! >> (kk & 4 ? 4 : 0)) & 0xf;
  };
  const offset = bits === 8 ? 0 : 8;
  for (let m = 0; m < M; m++)
    for (let n = 0; n < N; n++) {
      let t = 0;
      for (let g = 0; g < groups; g++) {
        let s = 0;
        for (let kk = g * Gp; kk < (g + 1) * Gp; kk++) s += xq[m * Kp + kk]! * at(n, kk);
        s -= offset * xsum[m * groups + g]!;
        t = f(t + f(f(s) * scales[((n >> 4) * groups + g) * 16 + (n & 15)]!));
      }
      t = f(t * xscale[m]!);
      out[m * N + n] = bias ? f(t + bias[n]!) : t;
    }
}
