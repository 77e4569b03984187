// Integer matrix-vector products with int8 / int4 weights and int8 activations: the twins of
// src/kernels/ref/quant-int.ts (the packed layout is src/kernels/quant-packed.ts). The one-token decode
// reads every weight once per token; unpacking bytes to floats (6 widenings + 4 conversions per 16
// weights) made it slower than float32's memory traffic. Here the activations are quantized per row
// once (quantizeActivations), and the weights meet them in integer dot products, one float multiply
// per group and output at the end:
// - the relaxed build: i16x8.relaxed_dot_i8x16_i7x16_s (x86's pmaddubsw), 16 weights in one
//   instruction. Its second operand must lie in 0..127 (its sign is implementation-defined: x86 reads
//   it unsigned, Arm signed): the int4 nibbles (0..15) are that operand as stored, the int8 kernel
//   offsets its activations (-63..63) by 64 and takes 64·Σq back out (the packed sums). Its products'
//   pair sums fit i16 (at most 2·127·127), so no saturation. Not i32x4.relaxed_dot_i8x16_i7x16_add_s:
//   Node 20's baseline compiler (Liftoff, which runs a module's first calls before tier-up) returned
//   twice the sum, so a prefill's logits depended on timing; the i16 form is the same in both tiers.
// - the plain build: the bytes widened to i16 and i32x4.dot_i16x8_s (per 16 weights two widenings,
//   two dots, two adds; int4: a mask, a shift and a mask per 32 first), each output's two pair sums
//   added at the group's end.
//
//   quantizeActivations  xq (M,Kp) i8, xsum (M,groups) i32, xscale (M) f32 from x (M,K) f32
//   qmatvecPacked        out (M,N) = x·W [+ bias] for outputs j0..j1 (multiples of 16, or N)
//
// The integer sums are exact, and every output's float steps are the same scalar operations in the
// same order as the ref twin's (no fused multiply-add), so the two builds and the ref twin agree bit
// for bit, on any split.

/** round half to even, as f32.nearest; the ref twin does the same */
@inline function clampQ(v: f32, xmax: f32): i32 {
  return <i32>min(max(nearest(v), -xmax), xmax);
}

export function quantizeActivations(xq: usize, xsum: usize, xscale: usize, x: usize, M: i32, K: i32, G: i32, Gp: i32, groups: i32, xmaxInt: i32): void {
  const Kp = groups * Gp;
  const xmax = <f32>xmaxInt;
  // whole groups of 16 without padding (int4's G 32, int8's one group of K when K is a multiple of
  // 16): 16 activations at a time. The same float steps lane by lane (mul, nearest, max, min), so the
  // same bits as the scalar loop; called once per linear layer and token, the scalar loop took ~4-5%
  // of an int4 decode step
  const vec = G == Gp && (G & 15) == 0 && groups * G == K;
  for (let m = 0; m < M; m++) {
    const xm = x + ((<usize>m * <usize>K) << 2);
    const qm = xq + <usize>m * <usize>Kp;
    const big = vec ? maxAbs16(xm, K) : maxAbs(xm, K);
    // NaN or infinity: a NaN scale carries it to every output, as the float product would
    const finite = big < Infinity;
    const inv: f32 = big > 0 && finite ? xmax / big : 0;
    store<f32>(xscale + (<usize>m << 2), finite ? big / xmax : NaN);
    for (let g = 0; g < groups; g++) {
      const k0 = g * G;
      const n = min(G, K - k0);
      let sum = 0;
      if (vec && finite) {
        sum = quantize16(qm + <usize>(g * Gp), xm + (<usize>k0 << 2), G, inv, xmax);
      } else {
        for (let r = 0; r < Gp; r++) {
          const v = r < n && finite ? clampQ(load<f32>(xm + (<usize>(k0 + r) << 2)) * inv, xmax) : 0;
          store<i8>(qm + <usize>(g * Gp + r), <i8>v);
          sum += v;
        }
      }
      store<i32>(xsum + ((<usize>m * <usize>groups + <usize>g) << 2), sum);
    }
  }
}

/** max |x| over K floats (NaN if any is NaN, as f32.max gives) */
function maxAbs(xm: usize, K: i32): f32 {
  let big: f32 = 0;
  for (let k = 0; k < K; k++) big = max(big, abs(load<f32>(xm + (<usize>k << 2))));
  return big;
}

/** maxAbs for K a multiple of 16: the same maximum (max is order-free, NaN included) */
function maxAbs16(xm: usize, K: i32): f32 {
  let b0 = f32x4.splat(0), b1 = f32x4.splat(0), b2 = f32x4.splat(0), b3 = f32x4.splat(0);
  for (let k = 0; k < K; k += 16) {
    const p = xm + (<usize>k << 2);
    b0 = f32x4.max(b0, f32x4.abs(v128.load(p)));
    b1 = f32x4.max(b1, f32x4.abs(v128.load(p, 16)));
    b2 = f32x4.max(b2, f32x4.abs(v128.load(p, 32)));
    b3 = f32x4.max(b3, f32x4.abs(v128.load(p, 48)));
  }
  const b = f32x4.max(f32x4.max(b0, b1), f32x4.max(b2, b3));
  return max(max(f32x4.extract_lane(b, 0), f32x4.extract_lane(b, 1)), max(f32x4.extract_lane(b, 2), f32x4.extract_lane(b, 3)));
}

/** clampQ of 4 lanes, as i32 */
@inline function clampQ4(v: v128, inv: v128, lo: v128, hi: v128): v128 {
  return i32x4.trunc_sat_f32x4_s(f32x4.min(f32x4.max(f32x4.nearest(f32x4.mul(v, inv)), lo), hi));
}

/** n (a multiple of 16) finite activations at xk quantized into qk as clampQ does; returns their sum */
function quantize16(qk: usize, xk: usize, n: i32, inv: f32, xmax: f32): i32 {
  const iv = f32x4.splat(inv), lo = f32x4.splat(-xmax), hi = f32x4.splat(xmax);
  let sum = i32x4.splat(0);
  for (let r = 0; r < n; r += 16) {
    const p = xk + (<usize>r << 2);
    const q0 = clampQ4(v128.load(p), iv, lo, hi), q1 = clampQ4(v128.load(p, 16), iv, lo, hi);
    const q2 = clampQ4(v128.load(p, 32), iv, lo, hi), q3 = clampQ4(v128.load(p, 48), iv, lo, hi);
    sum = i32x4.add(sum, i32x4.add(i32x4.add(q0, q1), i32x4.add(q2, q3)));
    // |q| <= 127: the narrowings are exact
    v128.store(qk + <usize>r, i8x16.narrow_i16x8_s(i16x8.narrow_i32x4_s(q0, q1), i16x8.narrow_i32x4_s(q2, q3)));
  }
  return i32x4.extract_lane(sum, 0) + i32x4.extract_lane(sum, 1) + i32x4.extract_lane(sum, 2) + i32x4.extract_lane(sum, 3);
}

/** 16 int8 (4 outputs x 4 inputs) against 4 activations repeated 4 times (i16): 2 outputs' pair sums */
@inline function dot8(b: v128, xv: v128, half: i32): v128 {
  return i32x4.dot_i16x8_s(half == 0 ? i16x8.extend_low_i8x16_s(b) : i16x8.extend_high_i8x16_s(b), xv);
}

/** i32x4 [a0+a1, a2+a3, b0+b1, b2+b3] from the pair sums a = [a0, a1, a2, a3], b = [b0, b1, b2, b3] */
@inline function pairSums(a: v128, b: v128): v128 {
  return i32x4.add(v128.shuffle<i32>(a, b, 0, 2, 4, 6), v128.shuffle<i32>(a, b, 1, 3, 5, 7));
}

/** the pair sums of the first (half 0) or last (half 1) 2 outputs of 16 bytes b, i16 lanes */
@inline function dot4Plain(b: v128, x0: v128, x1: v128, half: i32): v128 {
  const mask = i8x16.splat(15);
  const l = v128.and(b, mask), h = v128.and(i16x8.shr_u(b, 4), mask);
  if (half == 0) return i32x4.add(i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_u(l), x0), i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_u(h), x1));
  return i32x4.add(i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_u(l), x0), i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_u(h), x1));
}

/**
 * relaxed build: 16 bytes b of an int4 row (4 outputs x 8 inputs) against the row's activations x0
 * (inputs 0-3, repeated 4 times) and x1 (inputs 4-7): i16 lanes, each output's two partial sums
 * (at most 2·2·127·15 = 7620 in size)
 */
@inline function dot4Relaxed(b: v128, x0: v128, x1: v128): v128 {
  const mask = i8x16.splat(15);
  return i16x8.add(
    i16x8.relaxed_dot_i8x16_i7x16_s(x0, v128.and(b, mask)),
    i16x8.relaxed_dot_i8x16_i7x16_s(x1, v128.and(i16x8.shr_u(b, 4), mask)),
  );
}

/** relaxed build: 16 int8 (4 outputs x 4 inputs) against 4 offset activations: i32 lanes, one per output */
@inline function dot8Relaxed(b: v128, xv: v128): v128 {
  return i32x4.extadd_pairwise_i16x8_s(i16x8.relaxed_dot_i8x16_i7x16_s(b, xv));
}

/** int4 rows whose i16 sums may be added before widening: 4 · 7620 < 32768 */
const I16_ROWS = 4;

/**
 * out (M,N) = x·W [+ bias] for outputs j0..j1 (j0 a multiple of 16; j1 one too, or N), a panel of 16
 * outputs at a time: lanes a0..a3 are its outputs 0-3, 4-7, 8-11, 12-15. W packed (scales (panels,
 * groups, 16) f32, int8's sums (panels, 16) i32), xq/xsum/xscale from quantizeActivations. For each
 * output: t = Σ_g f32(Σ xq·w - offset·xsum_g) · scale_g, then t · xscale + bias.
 */
export function qmatvecPacked(out: usize, xq: usize, xsum: usize, xscale: usize, w: usize, scales: usize, sums: usize, bias: usize, M: i32, N: i32, bits: i32, Gp: i32, groups: i32, j0: i32, j1: i32): void {
  const Kp = groups * Gp;
  const panelBytes = <usize>Kp * <usize>bits * 2;
  // int8: rows of 64 bytes per 4 inputs; int4: rows of 64 bytes per 8 inputs (quant-packed.ts)
  const chunksPerGroup = Gp / (bits == 8 ? 4 : 8);
  const offset = bits == 8 ? 0 : 8;
  for (let j = j0; j < j1; j += 16) {
    const pw = w + <usize>(j >> 4) * panelBytes;
    const ps = scales + ((<usize>(j >> 4) * <usize>groups) << 6);
    for (let m = 0; m < M; m++) {
      const xm = xq + <usize>m * <usize>Kp;
      let t0 = f32x4.splat(0), t1 = f32x4.splat(0), t2 = f32x4.splat(0), t3 = f32x4.splat(0);
      for (let g = 0; g < groups; g++) {
        let a0 = i32x4.splat(0), a1 = i32x4.splat(0), a2 = i32x4.splat(0), a3 = i32x4.splat(0);
        const c0 = g * chunksPerGroup, c1 = c0 + chunksPerGroup;
        if (ASC_FEATURE_RELAXED_SIMD) {
          if (bits == 8) {
            // activations + 64 (1..127), each output's 64·Σq taken back out below
            const lift = i8x16.splat(64);
            for (let c = c0; c < c1; c++) {
              const xv = i8x16.add(v128.load32_splat(xm + (<usize>c << 2)), lift);
              const row = pw + (<usize>c << 6);
              a0 = i32x4.add(a0, dot8Relaxed(v128.load(row), xv));
              a1 = i32x4.add(a1, dot8Relaxed(v128.load(row, 16), xv));
              a2 = i32x4.add(a2, dot8Relaxed(v128.load(row, 32), xv));
              a3 = i32x4.add(a3, dot8Relaxed(v128.load(row, 48), xv));
            }
            const su = sums + (<usize>j << 2);
            a0 = i32x4.sub(a0, i32x4.shl(v128.load(su), 6));
            a1 = i32x4.sub(a1, i32x4.shl(v128.load(su, 16), 6));
            a2 = i32x4.sub(a2, i32x4.shl(v128.load(su, 32), 6));
            a3 = i32x4.sub(a3, i32x4.shl(v128.load(su, 48), 6));
          } else {
            // i16 sums over up to I16_ROWS rows, then widened (pairwise: one output per lane). A
            // block's first row starts its sums and the first block starts a, with no zeroed sums
            // to add to: a group of G 32 is one block of 4 rows, and this loop is bound by its SIMD
            // instructions, not its memory reads (~4% faster on GPT-2's LM head, benchmarks.md)
            for (let r0 = c0; r0 < c1; r0 += I16_ROWS) {
              const r1 = min(r0 + I16_ROWS, c1);
              let x0 = v128.load32_splat(xm + (<usize>r0 << 3));
              let x1 = v128.load32_splat(xm + (<usize>r0 << 3), 4);
              let row = pw + (<usize>r0 << 6);
              let e0 = dot4Relaxed(v128.load(row), x0, x1), e1 = dot4Relaxed(v128.load(row, 16), x0, x1);
              let e2 = dot4Relaxed(v128.load(row, 32), x0, x1), e3 = dot4Relaxed(v128.load(row, 48), x0, x1);
              for (let r = r0 + 1; r < r1; r++) {
                x0 = v128.load32_splat(xm + (<usize>r << 3));
                x1 = v128.load32_splat(xm + (<usize>r << 3), 4);
                row = pw + (<usize>r << 6);
                e0 = i16x8.add(e0, dot4Relaxed(v128.load(row), x0, x1));
                e1 = i16x8.add(e1, dot4Relaxed(v128.load(row, 16), x0, x1));
                e2 = i16x8.add(e2, dot4Relaxed(v128.load(row, 32), x0, x1));
                e3 = i16x8.add(e3, dot4Relaxed(v128.load(row, 48), x0, x1));
              }
              const w0 = i32x4.extadd_pairwise_i16x8_s(e0), w1 = i32x4.extadd_pairwise_i16x8_s(e1);
              const w2 = i32x4.extadd_pairwise_i16x8_s(e2), w3 = i32x4.extadd_pairwise_i16x8_s(e3);
              if (r0 == c0) {
                a0 = w0;
                a1 = w1;
                a2 = w2;
                a3 = w3;
              } else {
                a0 = i32x4.add(a0, w0);
                a1 = i32x4.add(a1, w1);
                a2 = i32x4.add(a2, w2);
                a3 = i32x4.add(a3, w3);
              }
            }
          }
        } else {
          // each output's two pair sums in lanes of e (outputs 0-1 of a 4), f (outputs 2-3), added at the end
          let e0 = i32x4.splat(0), f0 = i32x4.splat(0), e1 = i32x4.splat(0), f1 = i32x4.splat(0);
          let e2 = i32x4.splat(0), f2 = i32x4.splat(0), e3 = i32x4.splat(0), f3 = i32x4.splat(0);
          if (bits == 8) {
            for (let c = c0; c < c1; c++) {
              const xv = i16x8.extend_low_i8x16_s(v128.load32_splat(xm + (<usize>c << 2)));
              const row = pw + (<usize>c << 6);
              let b = v128.load(row);
              e0 = i32x4.add(e0, dot8(b, xv, 0));
              f0 = i32x4.add(f0, dot8(b, xv, 1));
              b = v128.load(row, 16);
              e1 = i32x4.add(e1, dot8(b, xv, 0));
              f1 = i32x4.add(f1, dot8(b, xv, 1));
              b = v128.load(row, 32);
              e2 = i32x4.add(e2, dot8(b, xv, 0));
              f2 = i32x4.add(f2, dot8(b, xv, 1));
              b = v128.load(row, 48);
              e3 = i32x4.add(e3, dot8(b, xv, 0));
              f3 = i32x4.add(f3, dot8(b, xv, 1));
            }
          } else {
            for (let r = c0; r < c1; r++) {
              const x0 = i16x8.extend_low_i8x16_s(v128.load32_splat(xm + (<usize>r << 3)));
              const x1 = i16x8.extend_low_i8x16_s(v128.load32_splat(xm + (<usize>r << 3), 4));
              const row = pw + (<usize>r << 6);
              let b = v128.load(row);
              e0 = i32x4.add(e0, dot4Plain(b, x0, x1, 0));
              f0 = i32x4.add(f0, dot4Plain(b, x0, x1, 1));
              b = v128.load(row, 16);
              e1 = i32x4.add(e1, dot4Plain(b, x0, x1, 0));
              f1 = i32x4.add(f1, dot4Plain(b, x0, x1, 1));
              b = v128.load(row, 32);
              e2 = i32x4.add(e2, dot4Plain(b, x0, x1, 0));
              f2 = i32x4.add(f2, dot4Plain(b, x0, x1, 1));
              b = v128.load(row, 48);
              e3 = i32x4.add(e3, dot4Plain(b, x0, x1, 0));
              f3 = i32x4.add(f3, dot4Plain(b, x0, x1, 1));
            }
          }
          a0 = pairSums(e0, f0);
          a1 = pairSums(e1, f1);
          a2 = pairSums(e2, f2);
          a3 = pairSums(e3, f3);
        }
        // the offset-8 nibbles added 8·Σxq to every sum of the group
        const corr = i32x4.splat(offset * load<i32>(xsum + ((<usize>m * <usize>groups + <usize>g) << 2)));
        const sg = ps + (<usize>g << 6);
        t0 = f32x4.add(t0, f32x4.mul(f32x4.convert_i32x4_s(i32x4.sub(a0, corr)), v128.load(sg)));
        t1 = f32x4.add(t1, f32x4.mul(f32x4.convert_i32x4_s(i32x4.sub(a1, corr)), v128.load(sg, 16)));
        t2 = f32x4.add(t2, f32x4.mul(f32x4.convert_i32x4_s(i32x4.sub(a2, corr)), v128.load(sg, 32)));
        t3 = f32x4.add(t3, f32x4.mul(f32x4.convert_i32x4_s(i32x4.sub(a3, corr)), v128.load(sg, 48)));
      }
      const xs = v128.load32_splat(xscale + (<usize>m << 2));
      t0 = f32x4.mul(t0, xs);
      t1 = f32x4.mul(t1, xs);
      t2 = f32x4.mul(t2, xs);
      t3 = f32x4.mul(t3, xs);
      const o = out + ((<usize>m * <usize>N + <usize>j) << 2);
      const n = min(16, N - j);
      if (n == 16) {
        if (bias != 0) {
          const b = bias + (<usize>j << 2);
          t0 = f32x4.add(t0, v128.load(b));
          t1 = f32x4.add(t1, v128.load(b, 16));
          t2 = f32x4.add(t2, v128.load(b, 32));
          t3 = f32x4.add(t3, v128.load(b, 48));
        }
        v128.store(o, t0);
        v128.store(o, t1, 16);
        v128.store(o, t2, 32);
        v128.store(o, t3, 48);
      } else {
        // the ragged last panel: the outputs that exist, then their bias (none to load past N)
        store8(o, t0, t1, min(8, n), false);
        store8(o + 32, t2, t3, n - 8, false);
        if (bias != 0) for (let i = 0; i < n; i++) store<f32>(o + (<usize>i << 2), load<f32>(o + (<usize>i << 2)) + load<f32>(bias + ((<usize>(j + i)) << 2)));
      }
    }
  }
}
