// Matrix products with int8 / int4 weights, dequantized in registers: the twins of
// src/kernels/ref/quant.ts (the format is src/io/quantize.ts). W = q·s: int8 with one scale per output,
// or int4 (inputs 2k, 2k+1 of an output in one byte: low nibble, high nibble) with one scale per G
// inputs (G even). For each output: each group's Σ x·q, times its scale, groups added in order, + bias.
//
//   qmatmulIO  out (M,N) = x (M,K) · W [+ bias]  W stored (in, out): q (K,N) or (ceil(K/2),N) bytes,
//              scales (N) or (ceil(K/G),N); outputs j0..j1 (the Conv1D layers)
//   qmatmulOI  out (M,N) = x (M,K) · Wᵀ          W stored (out, in): q (N,K) or (N,ceil(K/2)) bytes,
//              scales (N) or (N,ceil(K/G)); outputs j0..j1 (the tied LM head)
//
// qmatmulIO runs 16 outputs at a time (one 16-byte load per input row, or per two rows for int4), then
// 4, then one; every output of a 16- or 4-block takes the same per-lane steps, so a split of j0..j1 at
// multiples of 16 leaves each output's bits unchanged.

/** the four f32x4 of 16 signed bytes, lanes 0-3, 4-7, 8-11, 12-15 */
@inline function bytesLo(v: v128): v128 {
  return f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(i16x8.extend_low_i8x16_s(v)));
}
@inline function bytes1(v: v128): v128 {
  return f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(i16x8.extend_low_i8x16_s(v)));
}
@inline function bytes2(v: v128): v128 {
  return f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(i16x8.extend_high_i8x16_s(v)));
}
@inline function bytes3(v: v128): v128 {
  return f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(i16x8.extend_high_i8x16_s(v)));
}

/**
 * The low nibbles of 16 bytes as signed bytes (-8..7). x86 has no byte shifts (V8 emulates
 * i8x16.shl/shr_s in several instructions), so: mask, then (n ^ 8) - 8 sign-extends a 4-bit value.
 */
@inline function lowNibbles(b: v128): v128 {
  const eight = i8x16(8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8);
  return i8x16.sub(v128.xor(v128.and(b, i8x16(15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15)), eight), eight);
}

/** the high nibbles of 16 bytes as signed bytes (a 16-bit shift moves them down, the mask drops the rest) */
@inline function highNibbles(b: v128): v128 {
  const eight = i8x16(8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8);
  return i8x16.sub(v128.xor(v128.and(i16x8.shr_u(b, 4), i8x16(15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15)), eight), eight);
}

/** input k of a stored int4/int8 value at byte p */
@inline function quantAt(p: usize, bits: i32, k: i32): f32 {
  const b = <i32>load<i8>(p);
  if (bits == 8) return <f32>b;
  return <f32>(((b >> ((k & 1) << 2)) << 28) >> 28);
}

export function qmatmulIO(out: usize, x: usize, q: usize, scales: usize, bias: usize, M: i32, K: i32, N: i32, bits: i32, G: i32, j0: i32, j1: i32): void {
  const group = bits == 8 ? K : G;
  const groups = (K + group - 1) / group;
  const ldq = <usize>N;
  for (let m = 0; m < M; m++) {
    const xm = x + ((<usize>m * <usize>K) << 2);
    const om = out + ((<usize>m * <usize>N) << 2);
    let j = j0;
    for (; j + 16 <= j1; j += 16) {
      let t0 = f32x4.splat(0), t1 = f32x4.splat(0), t2 = f32x4.splat(0), t3 = f32x4.splat(0);
      for (let g = 0; g < groups; g++) {
        const k0 = g * group;
        const k1 = min(K, k0 + group);
        let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
        if (bits == 8) {
          for (let k = k0; k < k1; k++) {
            const v = v128.load(q + <usize>k * ldq + <usize>j);
            const xs = splat(load<f32>(xm + (<usize>k << 2)));
            a0 = madd(xs, bytesLo(v), a0);
            a1 = madd(xs, bytes1(v), a1);
            a2 = madd(xs, bytes2(v), a2);
            a3 = madd(xs, bytes3(v), a3);
          }
        } else {
          for (let k = k0; k < k1; k += 2) {
            const b = v128.load(q + <usize>(k >> 1) * ldq + <usize>j);
            let v = lowNibbles(b);
            let xs = splat(load<f32>(xm + (<usize>k << 2)));
            a0 = madd(xs, bytesLo(v), a0);
            a1 = madd(xs, bytes1(v), a1);
            a2 = madd(xs, bytes2(v), a2);
            a3 = madd(xs, bytes3(v), a3);
            if (k + 1 < k1) {
              v = highNibbles(b);
              xs = splat(load<f32>(xm + (<usize>(k + 1) << 2)));
              a0 = madd(xs, bytesLo(v), a0);
              a1 = madd(xs, bytes1(v), a1);
              a2 = madd(xs, bytes2(v), a2);
              a3 = madd(xs, bytes3(v), a3);
            }
          }
        }
        const s = scales + ((<usize>(bits == 8 ? 0 : g) * ldq + <usize>j) << 2);
        t0 = madd(a0, v128.load(s), t0);
        t1 = madd(a1, v128.load(s, 16), t1);
        t2 = madd(a2, v128.load(s, 32), t2);
        t3 = madd(a3, v128.load(s, 48), t3);
      }
      if (bias != 0) {
        const bj = bias + (<usize>j << 2);
        t0 = f32x4.add(t0, v128.load(bj));
        t1 = f32x4.add(t1, v128.load(bj, 16));
        t2 = f32x4.add(t2, v128.load(bj, 32));
        t3 = f32x4.add(t3, v128.load(bj, 48));
      }
      const o = om + (<usize>j << 2);
      v128.store(o, t0);
      v128.store(o, t1, 16);
      v128.store(o, t2, 32);
      v128.store(o, t3, 48);
    }
    for (; j + 4 <= j1; j += 4) {
      let t = f32x4.splat(0);
      for (let g = 0; g < groups; g++) {
        const k0 = g * group;
        const k1 = min(K, k0 + group);
        let a = f32x4.splat(0);
        if (bits == 8) {
          for (let k = k0; k < k1; k++) {
            const v = v128.load32_zero(q + <usize>k * ldq + <usize>j);
            a = madd(splat(load<f32>(xm + (<usize>k << 2))), bytesLo(v), a);
          }
        } else {
          for (let k = k0; k < k1; k += 2) {
            const b = v128.load32_zero(q + <usize>(k >> 1) * ldq + <usize>j);
            a = madd(splat(load<f32>(xm + (<usize>k << 2))), bytesLo(lowNibbles(b)), a);
            if (k + 1 < k1) a = madd(splat(load<f32>(xm + (<usize>(k + 1) << 2))), bytesLo(highNibbles(b)), a);
          }
        }
        t = madd(a, v128.load(scales + ((<usize>(bits == 8 ? 0 : g) * ldq + <usize>j) << 2)), t);
      }
      if (bias != 0) t = f32x4.add(t, v128.load(bias + (<usize>j << 2)));
      v128.store(om + (<usize>j << 2), t);
    }
    for (; j < j1; j++) {
      let t: f32 = 0;
      for (let g = 0; g < groups; g++) {
        const k0 = g * group;
        const k1 = min(K, k0 + group);
        let a: f32 = 0;
        for (let k = k0; k < k1; k++) {
          const row = bits == 8 ? k : k >> 1;
          a += load<f32>(xm + (<usize>k << 2)) * quantAt(q + <usize>row * ldq + <usize>j, bits, k);
        }
        t += a * load<f32>(scales + ((<usize>(bits == 8 ? 0 : g) * ldq + <usize>j) << 2));
      }
      if (bias != 0) t += load<f32>(bias + (<usize>j << 2));
      store<f32>(om + (<usize>j << 2), t);
    }
  }
}

export function qmatmulOI(out: usize, x: usize, q: usize, scales: usize, M: i32, K: i32, N: i32, bits: i32, G: i32, j0: i32, j1: i32): void {
  const group = bits == 8 ? K : G;
  const groups = (K + group - 1) / group;
  const rowBytes = <usize>(bits == 8 ? K : (K + 1) >> 1);
  for (let m = 0; m < M; m++) {
    const xm = x + ((<usize>m * <usize>K) << 2);
    const om = out + ((<usize>m * <usize>N) << 2);
    for (let n = j0; n < j1; n++) {
      const row = q + <usize>n * rowBytes;
      // the groups' vector sums times their scales stay in lanes: one horizontal sum per output
      let tv = f32x4.splat(0);
      let t: f32 = 0;
      for (let g = 0; g < groups; g++) {
        const k0 = g * group;
        const k1 = min(K, k0 + group);
        let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
        let k = k0;
        for (; k + 16 <= k1; k += 16) {
          let v: v128;
          if (bits == 8) v = v128.load(row + <usize>k);
          else {
            // 8 bytes hold inputs k..k+15: interleave the low and high nibbles back into input order
            const b = v128.load64_zero(row + <usize>(k >> 1));
            v = i8x16.shuffle(lowNibbles(b), highNibbles(b), 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
          }
          const xk = xm + (<usize>k << 2);
          a0 = madd(v128.load(xk), bytesLo(v), a0);
          a1 = madd(v128.load(xk, 16), bytes1(v), a1);
          a2 = madd(v128.load(xk, 32), bytes2(v), a2);
          a3 = madd(v128.load(xk, 48), bytes3(v), a3);
        }
        let a: f32 = 0;
        for (; k < k1; k++) a += load<f32>(xm + (<usize>k << 2)) * quantAt(row + <usize>(bits == 8 ? k : k >> 1), bits, k);
        const s = load<f32>(scales + ((<usize>n * <usize>(bits == 8 ? 1 : groups) + <usize>(bits == 8 ? 0 : g)) << 2));
        tv = madd(f32x4.add(f32x4.add(a0, a1), f32x4.add(a2, a3)), splat(s), tv);
        t += a * s;
      }
      t += hsum(tv);
      store<f32>(om + (<usize>n << 2), t);
    }
  }
}
