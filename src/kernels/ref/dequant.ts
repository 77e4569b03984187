/**
 * Packed int8 / int4 weights (src/kernels/quant-packed.ts) back to their float values, q·s: the
 * reference loop, the definition its wasm twin (assembly/dequant.as) matches bit for bit. Each value
 * is one float32 product of the integer and its group's scale (exact in a double, rounded once when
 * stored), so there is one right answer and no order to keep.
 *
 *   dequantPacked  outputs n0..n1 of W: output n's input k goes to out[(n - n0)·nStride + k·kStride]
 *                  (nStride 1, kStride N: an (in, out) Conv1D matrix; nStride K, kStride 1: rows of
 *                  an (out, in) one, wte's)
 *
 * Padding (inputs past a short last group, outputs past N) is never written.
 */
import type { PackedShape } from "../quant-packed.js";
import { PANEL } from "../quant-packed.js";

export function dequantPacked(
  out: Float32Array,
  bytes: Uint8Array,
  scales: Float32Array,
  s: PackedShape,
  n0: number,
  n1: number,
  nStride: number,
  kStride: number,
): void {
  const panelBytes = (s.Kp * PANEL * s.bits) / 8;
  for (let n = n0; n < n1; n++) {
    const p = Math.floor(n / PANEL);
    const i = n % PANEL;
    const panel = p * panelBytes + 4 * i;
    const base = (n - n0) * nStride;
    for (let g = 0; g < s.groups; g++) {
      const scale = scales[(p * s.groups + g) * PANEL + i]!;
      const k0 = g * s.G;
      const k1 = Math.min(s.K, k0 + s.G);
      for (let k = k0, kk = g * s.Gp; k < k1; k++, kk++) {
        let v: number;
        if (s.bits === 8) v = (bytes[panel + (kk >> 2) * 64 + (kk & 3)]! << 24) >> 24;
        else v = ((bytes[panel + (kk >> 3) * 64 + (kk & 3)]! >> (kk & 4)) & 0xf) - 8;
        out[base + k * kStride] = v * scale;
      }
    }
  }
}
