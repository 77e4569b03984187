/**
 * The load-time layout of a quantized matrix for the integer decode kernels (qmatvecPacked in
 * ref/quant-int.ts and wasm/assembly/quant-int.as). The file keeps its documented format
 * (docs/quantization.md); a loaded model repacks each matrix once into this form, from either of the
 * file's orders ((in, out) Conv1D or (out, in) wte), so one kernel serves both.
 *
 * Outputs are cut into panels of 16; a panel's weights are one run of rows along the inputs, so the
 * whole matrix is read front to back in one stream (as the hardware prefetcher likes: separate
 * streams per 8 outputs ran at a third of float32's bandwidth). Each 16 bytes of a row hold 4
 * outputs' runs of 4 consecutive inputs, so a pair of adjacent bytes meets a pair of adjacent
 * activations in a dot product (i32x4.dot_i16x8_s widened, or relaxed SIMD's
 * i16x8.relaxed_dot_i8x16_i7x16_s as it is), and a pairwise add leaves one output per lane:
 *   int8: a row of 64 bytes per 4 inputs: byte 4o+j of row r = q(o, 4r+j)
 *   int4: a row of 64 bytes per 8 inputs: byte 4o+j of row r holds q(o, 8r+j) + 8 in the low nibble
 *         and q(o, 8r+4+j) + 8 in the high one (stored offset by 8, so 0..15: unpacking is a mask,
 *         and the nibbles are the unsigned 7-bit operand relaxed SIMD's dot product wants)
 * The inputs are indexed in groups padded to Gp (G rounded up to the chunk's inputs; int8 has one
 * group of K): padded index g·Gp + r is input g·G + r, and padding holds zero weights (int4: nibble 8).
 * Scales are (panels, groups, 16) float32; outputs past N have weight and scale 0.
 * int8 also keeps each output's Σ q over all inputs, (panels, 16) int32: relaxed SIMD's dot product
 * takes the activations offset to 1..127 (its unsigned 7-bit operand), and that sum takes the offset
 * back out.
 *
 * The activations meet the weights as int8 with one scale per row (ref/quant-int.ts's
 * quantizeActivations), at most ACTIVATION_MAX[bits] in size: 63 with int8 weights, so that the
 * offset activations fit 7 bits; 127 with int4 weights (the nibbles are the unsigned operand).
 *
 * The way back, the float values q·s, is ref/dequant.ts's dequantPacked (wasm: assembly/dequant.as).
 */
import { type QuantizedMatrix, quantizedScale, quantizedValue } from "../io/quantize.js";

export interface PackedShape {
  bits: 8 | 4;
  /** inputs, outputs */
  K: number;
  N: number;
  /** inputs per scale (int8: K) and its padded length */
  G: number;
  Gp: number;
  groups: number;
  /** padded inputs: groups · Gp (the length of a quantized activation row) */
  Kp: number;
  panels: number;
  /** bytes of weights, floats of scales, int32 weight sums (int8; int4: none) */
  bytes: number;
  scaleCount: number;
  sumCount: number;
  /** the largest quantized activation (ACTIVATION_MAX) */
  xmax: number;
}

/** the inputs one row of a panel covers */
const CHUNK_INPUTS = { 8: 4, 4: 8 } as const;
export const PANEL = 16;
/** the largest quantized activation with int8 / int4 weights (see above) */
const ACTIVATION_MAX = { 8: 63, 4: 127 } as const;

export function packedShape(bits: 8 | 4, K: number, N: number, groupSize: number): PackedShape {
  const G = bits === 8 ? K : groupSize;
  const step = CHUNK_INPUTS[bits];
  const Gp = Math.ceil(G / step) * step;
  const groups = Math.ceil(K / G);
  const Kp = groups * Gp;
  const panels = Math.ceil(N / PANEL);
  return {
    bits,
    K,
    N,
    G,
    Gp,
    groups,
    Kp,
    panels,
    bytes: (panels * Kp * PANEL * bits) / 8,
    scaleCount: panels * groups * PANEL,
    sumCount: bits === 8 ? panels * PANEL : 0,
    xmax: ACTIVATION_MAX[bits],
  };
}

/** the input at padded index kk, or -1 for padding */
export function inputAt(s: PackedShape, kk: number): number {
  const g = Math.floor(kk / s.Gp);
  const r = kk - g * s.Gp;
  const k = g * s.G + r;
  return r < s.G && k < s.K ? k : -1;
}

/** m repacked into `bytes` (s.bytes), `scales` (s.scaleCount) and `sums` (s.sumCount), zeroed by the caller or not */
export function packQuantized(m: QuantizedMatrix, s: PackedShape, bytes: Uint8Array, scales: Float32Array, sums: Int32Array): void {
  const panelBytes = (s.Kp * PANEL * s.bits) / 8;
  bytes.fill(s.bits === 8 ? 0 : 0x88);
  scales.fill(0);
  sums.fill(0);
  const inputs = Array.from({ length: s.Kp }, (_, kk) => inputAt(s, kk));
  for (let n = 0; n < s.N; n++) {
    const p = Math.floor(n / PANEL);
    const i = n % PANEL;
    for (let g = 0; g < s.groups; g++) scales[(p * s.groups + g) * PANEL + i] = quantizedScale(m, g, n);
    for (let kk = 0; kk < s.Kp; kk++) {
      const k = inputs[kk]!;
      if (k < 0) continue;
      const v = quantizedValue(m, k, n);
      if (s.bits === 8) {
        bytes[p * panelBytes + (kk >> 2) * 64 + 4 * i + (kk & 3)] = v & 0xff;
        sums[n] = sums[n]! + v;
      } else {
        const at = p * panelBytes + (kk >> 3) * 64 + 4 * i + (kk & 3);
        const shift = kk & 4 ? 4 : 0;
        bytes[at] = (bytes[at]! & ~(0xf << shift)) | ((v + 8) << shift);
      }
    }
  }
}
