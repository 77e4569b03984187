// Packed int8 / int4 weights (src/kernels/quant-packed.ts) back to their float values q·s: the twin of
// src/kernels/ref/dequant.ts, bit for bit (each value is one f32 product of the integer and its
// group's scale, as there). A quantized model keeps only the packed form, and a training step on it
// (QLoRA) dequantizes every matrix twice (forward and backward, src/nn/quantized.ts's TapeScratch):
// the JS loop took ~2x a small model's step, so this runs 4 or 8 values at a time.
//
//   dequantPacked  outputs n0..n1 of W: output n's input k goes to out[(n - n0)·nStride + k·kStride]
//     kStride 1 (rows of an (out, in) matrix, wte's): 4 consecutive inputs of one output are 4 bytes
//       of a panel row, widened and stored as 4 consecutive floats
//     nStride 1 (an (in, out) Conv1D matrix): a panel row's 16 bytes hold 4 outputs x 4 inputs;
//       transposed in one shuffle, each input's 4 outputs are 4 consecutive floats of its row
//     anything else, a ragged panel, or inputs near a group's padding: one value at a time
// Padding (inputs past a short group or K, outputs past N) is never written.

/** output n's value for padded input kk (group scale `scale`), as the ref twin computes it */
@inline function dequantOne(w: usize, panelBytes: usize, n: i32, kk: i32, bits: i32, scale: f32): f32 {
  const at = w + <usize>(n >> 4) * panelBytes + <usize>(4 * (n & 15));
  let v: i32;
  if (bits == 8) v = <i32>load<i8>(at + <usize>((kk >> 2) * 64 + (kk & 3)));
  else v = ((<i32>load<u8>(at + <usize>((kk >> 3) * 64 + (kk & 3))) >> (kk & 4)) & 15) - 8;
  return <f32>v * scale;
}

/** 4 outputs' int4 values (stored + 8) of 16 bytes, low (inputs 0-3 of a row) or high nibbles, less 8 */
@inline function nibbles(b: v128, high: bool): v128 {
  const mask = i8x16.splat(15);
  return i8x16.sub(high ? v128.and(i8x16.shr_u(b, 4), mask) : v128.and(b, mask), i8x16.splat(8));
}

/** the 4 values of i8 lanes 4q..4q+3 of v (signed), as f32 times sv */
@inline function quarter(v: v128, q: i32, sv: v128): v128 {
  const h = q < 2 ? i16x8.extend_low_i8x16_s(v) : i16x8.extend_high_i8x16_s(v);
  const i = (q & 1) == 0 ? i32x4.extend_low_i16x8_s(h) : i32x4.extend_high_i16x8_s(h);
  return f32x4.mul(f32x4.convert_i32x4_s(i), sv);
}

export function dequantPacked(out: usize, w: usize, scales: usize, K: i32, N: i32, bits: i32, G: i32, Gp: i32, groups: i32, n0: i32, n1: i32, nStride: i32, kStride: i32): void {
  const panelBytes = <usize>(groups * Gp) * <usize>bits * 2;
  // inputs per 64-byte panel row
  const step = bits == 8 ? 4 : 8;
  for (let n = n0; n < n1; ) {
    const p = n >> 4;
    const full = nStride == 1 && (n & 15) == 0 && n + 16 <= n1;
    if (full) {
      // 16 outputs at once: row k's floats n..n+15
      const o = out + (<usize>(n - n0) << 2);
      const pw = w + <usize>p * panelBytes;
      for (let g = 0; g < groups; g++) {
        const sg = scales + ((<usize>(p * groups + g)) << 6);
        const s0 = v128.load(sg), s1 = v128.load(sg, 16), s2 = v128.load(sg, 32), s3 = v128.load(sg, 48);
        for (let r = 0; r < Gp; r += step) {
          const row = pw + <usize>((g * Gp + r) / step) * 64;
          for (let a = 0; a < 4; a++) {
            // bytes 4o+j (output o of 4, input j) to 4j+o: input j's 4 outputs in lane quarter j
            const b = v128.load(row + <usize>(a << 4));
            const t = i8x16.shuffle(b, b, 0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
            const sv = a == 0 ? s0 : a == 1 ? s1 : a == 2 ? s2 : s3;
            const lo = bits == 8 ? t : nibbles(t, false);
            for (let j = 0; j < step; j++) {
              const rr = r + j;
              const k = g * G + rr;
              if (rr >= G || k >= K) break;
              const v = j < 4 ? lo : nibbles(t, true);
              v128.store(o + ((<usize>k * <usize>kStride + <usize>(a << 2)) << 2), quarter(v, j & 3, sv));
            }
          }
        }
      }
      n += 16;
      continue;
    }
    const o = out + ((<usize>(n - n0) * <usize>nStride) << 2);
    const at = w + <usize>p * panelBytes + <usize>(4 * (n & 15));
    for (let g = 0; g < groups; g++) {
      const scale = load<f32>(scales + ((<usize>((p * groups + g) * 16 + (n & 15))) << 2));
      const sv = f32x4.splat(scale);
      const k0 = g * G;
      const k1 = min(K, k0 + G);
      // quarters of 4 inputs whose values all exist, 4 at a time when they are consecutive floats
      for (let r = 0; r < Gp; r += 4) {
        const k = k0 + r;
        if (k >= k1) break;
        const kk = g * Gp + r;
        if (kStride == 1 && k + 4 <= k1) {
          const b = v128.load32_splat(at + <usize>((kk / step) * 64));
          const v = bits == 8 ? b : nibbles(b, (kk & 4) != 0);
          v128.store(o + (<usize>k << 2), quarter(v, 0, sv));
        } else {
          const e = min(k1, k + 4);
          for (let kq = k, kp = kk; kq < e; kq++, kp++) store<f32>(o + ((<usize>kq * <usize>kStride) << 2), dequantOne(w, panelBytes, n, kp, bits, scale));
        }
      }
    }
    n++;
  }
}
