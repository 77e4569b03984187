// Causal self-attention for training, per (batch b, head h) pair bh0..bh1-1 (bh = b*nh + h):
//   forward:  qkv (B,T,3C) -> out (B,T,C), lse (B,nh,T)     (hs = C/nh per head)
//             [, probs (B,nh,T,T): the softmax probabilities, row t's entries 0..t]
//   backward: dout (B,T,C), qkv, out, lse [, probs] -> dqkv (B,T,3C) += (= with overwrite: each
//             element is written by one tile, so writing it is adding it to a zero, without the zeroing)
// scratch: attentionScratchBytes(T, C, nh) per thread.
//

// Training attention works per (b, h) on padded copies in scratch, as small matrix products done by
// one 4x8 register tile (tile4x8): Tp = T rounded up to 8, hp = hs rounded up to 8, padding zero.
//   forward:  S = Q·(sc·K)ᵀ, P = softmax(S) (causal), O = P·V
//   backward: P again from lse, dP = dO·Vᵀ, dS = P∘(dP - D)·sc, dQ = dS·K, dK = dSᵀ·Q, dV = Pᵀ·dO
// With probs (not 0), the forward keeps P there and the backward reads it instead of computing S and
// exp(S - lse) again: ~20% of the backward (bench/kernel-ab.ts), for T·T floats per (b, h). The
// backward's P is then the forward's own (as PyTorch's autograd uses the softmax it saved), which
// differs from exp(S - lse) in the last bits; the op decides when the memory is worth it
// (src/ops/attention.ts). In place (below), P lives in probs; otherwise it is copied in and out.
// Query quad i0 (rows i0..i0+3) only needs keys below jEnd(i0) = roundup8(i0 + 4); entries above the
// diagonal inside that range are zeroed and the ones past it are never written (zero from the fill).
// When no padding is needed (hs and T multiples of 8: the recipes' shapes), the operands a tile reads
// row by row (Q, V forward; Q, K, dO backward) are read where they lie in qkv / dout, and the tiles
// write out (forward) and add into dqkv (backward) directly: the copies in and out cost ~25% of
// attention (bench/kernel-ab.ts), and the sums are the same, so the result is bit-identical. Kᵀ and
// Vᵀ are still copied: a tile reads its B operand 8 columns at a time, and those are K's and V's rows.

/**
 * c (4 rows, 8 columns; row stride ldc bytes) = Σ_{k<kn} A(r,k)·B(k,·) (with add: c +=, the sum
 * formed first, as a store and a later addRow would), with A(r,k) at a + r·ars + k·aks and the 8
 * floats of B(k,·) at b + k·brs. Inlined: attention's tiles are short (kn = head size, or up to T),
 * so the call with its nine arguments cost ~10% of attention (bench/kernel-ab.ts, 4 runs).
 */
@inline function tile4x8(c: usize, ldc: usize, a: usize, ars: usize, aks: usize, b: usize, brs: usize, kn: i32, add: bool = false): void {
  let c00 = f32x4.splat(0), c01 = f32x4.splat(0);
  let c10 = f32x4.splat(0), c11 = f32x4.splat(0);
  let c20 = f32x4.splat(0), c21 = f32x4.splat(0);
  let c30 = f32x4.splat(0), c31 = f32x4.splat(0);
  const a2 = ars << 1;
  const a3 = a2 + ars;
  for (let k = 0; k < kn; k++) {
    const b0 = v128.load(b);
    const b1 = v128.load(b, 16);
    let x = v128.load32_splat(a);
    c00 = madd(x, b0, c00);
    c01 = madd(x, b1, c01);
    x = v128.load32_splat(a + ars);
    c10 = madd(x, b0, c10);
    c11 = madd(x, b1, c11);
    x = v128.load32_splat(a + a2);
    c20 = madd(x, b0, c20);
    c21 = madd(x, b1, c21);
    x = v128.load32_splat(a + a3);
    c30 = madd(x, b0, c30);
    c31 = madd(x, b1, c31);
    a += aks;
    b += brs;
  }
  if (add) {
    c00 = f32x4.add(v128.load(c), c00);
    c01 = f32x4.add(v128.load(c, 16), c01);
    c10 = f32x4.add(v128.load(c + ldc), c10);
    c11 = f32x4.add(v128.load(c + ldc, 16), c11);
    c20 = f32x4.add(v128.load(c + 2 * ldc), c20);
    c21 = f32x4.add(v128.load(c + 2 * ldc, 16), c21);
    c30 = f32x4.add(v128.load(c + 3 * ldc), c30);
    c31 = f32x4.add(v128.load(c + 3 * ldc, 16), c31);
  }
  v128.store(c, c00);
  v128.store(c, c01, 16);
  c += ldc;
  v128.store(c, c10);
  v128.store(c, c11, 16);
  c += ldc;
  v128.store(c, c20);
  v128.store(c, c21, 16);
  c += ldc;
  v128.store(c, c30);
  v128.store(c, c31, 16);
}

/** no padding anywhere (hs and T multiples of 8): tiles read and write qkv, dout, out, dqkv in place */
@inline function inPlace(T: i32, hs: i32): bool {
  return (hs & 7) == 0 && (T & 7) == 0;
}

/** dst (n floats) = src */
@inline function copyRow(dst: usize, src: usize, n: i32): void {
  let i = 0;
  for (; i + 4 <= n; i += 4) v128.store(dst + (<usize>i << 2), v128.load(src + (<usize>i << 2)));
  for (; i < n; i++) store<f32>(dst + (<usize>i << 2), load<f32>(src + (<usize>i << 2)));
}

/** dst (n floats) += src */
@inline function addRow(dst: usize, src: usize, n: i32): void {
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    v128.store(dst + o, f32x4.add(v128.load(dst + o), v128.load(src + o)));
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    store<f32>(dst + o, load<f32>(dst + o) + load<f32>(src + o));
  }
}

/** dst column t of an (hs x Tp) matrix = s · src (hs floats) */
@inline function copyColumn(dst: usize, Tp: i32, t: i32, src: usize, hs: i32, s: f32): void {
  let p = dst + (<usize>t << 2);
  const st = <usize>Tp << 2;
  for (let d = 0; d < hs; d++) {
    store<f32>(p, load<f32>(src + (<usize>d << 2)) * s);
    p += st;
  }
}

/**
 * dst (an hs x Tp matrix, rows ldt bytes apart) columns 0..T-1 = s · the T rows of src (hs floats
 * each, rs bytes apart): copyColumn for every t, four rows at a time through 4x4 SIMD transposes
 * (one column at a time is a scalar store per float, each to another row of dst).
 */
@inline function copyColumns(dst: usize, ldt: usize, Tp: i32, src: usize, rs: usize, T: i32, hs: i32, s: f32): void {
  const sv = splat(s);
  let t = 0;
  for (; t + 4 <= T; t += 4) {
    const r = src + <usize>t * rs;
    const col = dst + (<usize>t << 2);
    let d = 0;
    for (; d + 4 <= hs; d += 4) {
      const o = <usize>d << 2;
      const r0 = f32x4.mul(v128.load(r + o), sv);
      const r1 = f32x4.mul(v128.load(r + rs + o), sv);
      const r2 = f32x4.mul(v128.load(r + 2 * rs + o), sv);
      const r3 = f32x4.mul(v128.load(r + 3 * rs + o), sv);
      const t0 = v128.shuffle<f32>(r0, r1, 0, 4, 1, 5);
      const t1 = v128.shuffle<f32>(r2, r3, 0, 4, 1, 5);
      const t2 = v128.shuffle<f32>(r0, r1, 2, 6, 3, 7);
      const t3 = v128.shuffle<f32>(r2, r3, 2, 6, 3, 7);
      const p = col + <usize>d * ldt;
      v128.store(p, v128.shuffle<f32>(t0, t1, 0, 1, 4, 5));
      v128.store(p + ldt, v128.shuffle<f32>(t0, t1, 2, 3, 6, 7));
      v128.store(p + 2 * ldt, v128.shuffle<f32>(t2, t3, 0, 1, 4, 5));
      v128.store(p + 3 * ldt, v128.shuffle<f32>(t2, t3, 2, 3, 6, 7));
    }
    for (; d < hs; d++) {
      const o = <usize>d << 2;
      const p = col + <usize>d * ldt;
      store<f32>(p, load<f32>(r + o) * s);
      store<f32>(p, load<f32>(r + rs + o) * s, 4);
      store<f32>(p, load<f32>(r + 2 * rs + o) * s, 8);
      store<f32>(p, load<f32>(r + 3 * rs + o) * s, 12);
    }
  }
  for (; t < T; t++) copyColumn(dst, Tp, t, src + <usize>t * rs, hs, s);
}

/**
 * A (b, h) pair reads its head's slice of every row of a batch's qkv (and, backward, of dout, out
 * and dqkv): hs floats out of each row, the rows 3C (or C) floats apart. Read head by head, those
 * slices miss the cache one after another (each miss waits ~50 cycles: the copies then cost about
 * as much as the pair's arithmetic). So before its first pair, a batch's rows are read once in
 * order, one load per cache line: independent loads that the core has many of in flight and the
 * hardware prefetcher follows, after which every head finds its slices in L2. Only for blocks that
 * fit in L2 beside the scratch (TOUCH_MAX_BYTES); bigger ones are left to the per-head reads.
 */
const TOUCH_MAX_BYTES: usize = 256 << 10;
const LINE: usize = 64;
/** where touch() leaves what it read (so that the loads are not optimised away); never read */
let touched: i32 = 0;

/** read one word of every cache line of [p, p + bytes) (a no-op above TOUCH_MAX_BYTES) */
function touch(p: usize, bytes: usize): void {
  if (bytes > TOUCH_MAX_BYTES) return;
  let acc: i32 = 0;
  const end = p + bytes;
  // (no load at or past end: the block may end where the memory does)
  let q = p & ~(LINE - 1);
  for (; q + 3 * LINE < end; q += 4 * LINE) {
    acc |= load<i32>(q) | load<i32>(q, LINE) | load<i32>(q, 2 * LINE) | load<i32>(q, 3 * LINE);
  }
  for (; q < end; q += LINE) acc |= load<i32>(q);
  touched |= acc;
}

/** bytes of scratch one thread needs for attentionForward / attentionBackward */
export function attentionScratchBytes(T: i32, C: i32, nh: i32): i32 {
  const hs = C / nh;
  const Tp = (T + 7) & ~7;
  const hp = (hs + 7) & ~7;
  return (8 * Tp * hp + 2 * Tp * Tp) << 2;
}

/**
 * The lanes of the last vector of a row of n floats (n >= 1) that lie inside the row: all ones where
 * (nv-1)·4 + lane < n, nv = the row's vector count. Causal rows end mid-vector in 3 of 4 cases.
 */
@inline function lastVectorMask(n: i32): v128 {
  const nv = (n + 3) >> 2;
  return i32x4.lt_s(i32x4.add(i32x4(0, 1, 2, 3), i32x4.splat((nv - 1) << 2)), i32x4.splat(n));
}

/**
 * Row of causal scores s[0..jEnd) (jEnd a multiple of 4 and >= n): s[j] = softmax(s[0..n))[j] for
 * j < n and 0 up to jEnd; returns log Σ exp(s[j]) (the row's lse). Whole vectors only: the lanes
 * j >= n of the last one are masked, so a row of any length costs no scalar exp (rows are short:
 * T <= block size, and a quarter of them end mid-vector).
 */
function causalSoftmaxRow(row: usize, n: i32, jEnd: i32): f32 {
  const nv = (n + 3) >> 2;
  const last = <usize>(nv - 1) << 4; // bytes
  const keep = lastVectorMask(n);
  const ninf = f32x4.splat(-Infinity);
  let mv = v128.bitselect(v128.load(row + last), ninf, keep);
  for (let o: usize = 0; o < last; o += 16) mv = f32x4.max(mv, v128.load(row + o));
  const m = hmax(mv);
  const mvv = splat(m);
  let acc = f64x2.splat(0);
  let o: usize = 0;
  for (; o + 64 <= last; o += 64) {
    const e0 = vexp(f32x4.sub(v128.load(row + o), mvv));
    const e1 = vexp(f32x4.sub(v128.load(row + o, 16), mvv));
    const e2 = vexp(f32x4.sub(v128.load(row + o, 32), mvv));
    const e3 = vexp(f32x4.sub(v128.load(row + o, 48), mvv));
    v128.store(row + o, e0);
    v128.store(row + o, e1, 16);
    v128.store(row + o, e2, 32);
    v128.store(row + o, e3, 48);
    acc = addWide(addWide(addWide(addWide(acc, e0), e1), e2), e3);
  }
  for (; o < last; o += 16) {
    const e = vexp(f32x4.sub(v128.load(row + o), mvv));
    v128.store(row + o, e);
    acc = addWide(acc, e);
  }
  const el = v128.and(vexp(f32x4.sub(v128.load(row + last), mvv)), keep);
  v128.store(row + last, el);
  acc = addWide(acc, el);
  const sum = hsum64(acc);
  const r = splat(<f32>(1 / sum));
  for (let o: usize = 0; o <= last; o += 16) v128.store(row + o, f32x4.mul(v128.load(row + o), r));
  for (let o = last + 16; o < (<usize>jEnd << 2); o += 16) v128.store(row + o, f32x4.splat(0));
  return <f32>(<f64>m + Math.log(sum));
}

/**
 * causalSoftmaxRow for the four rows i0..i0+3 of a query quad (i0 a multiple of 4), rows ldt bytes
 * apart from p, their lse to lse[0..3]: row r has i0/4 whole vectors of scores and then one with r+1
 * lanes. The four rows go through each pass together: a row's passes are chains (max, exp, its f64
 * sum, 1/sum, log) too short for the CPU to overlap one row's with the next's, and four rows side by
 * side are four independent chains. Each row's arithmetic, and order of additions, is
 * causalSoftmaxRow's.
 */
function causalSoftmaxQuad(p: usize, ldt: usize, i0: i32, jEnd: i32, lse: usize): void {
  const last = <usize>i0 << 2; // bytes of the whole vectors, and the offset of each row's last one
  const p1 = p + ldt;
  const p2 = p1 + ldt;
  const p3 = p2 + ldt;
  const k0 = lastVectorMask(i0 + 1);
  const k1 = lastVectorMask(i0 + 2);
  const k2 = lastVectorMask(i0 + 3);
  const k3 = lastVectorMask(i0 + 4);
  const ninf = f32x4.splat(-Infinity);
  let m0 = v128.bitselect(v128.load(p + last), ninf, k0);
  let m1 = v128.bitselect(v128.load(p1 + last), ninf, k1);
  let m2 = v128.bitselect(v128.load(p2 + last), ninf, k2);
  let m3 = v128.bitselect(v128.load(p3 + last), ninf, k3);
  for (let o: usize = 0; o < last; o += 16) {
    m0 = f32x4.max(m0, v128.load(p + o));
    m1 = f32x4.max(m1, v128.load(p1 + o));
    m2 = f32x4.max(m2, v128.load(p2 + o));
    m3 = f32x4.max(m3, v128.load(p3 + o));
  }
  const x0 = hmax(m0), x1 = hmax(m1), x2 = hmax(m2), x3 = hmax(m3);
  const v0 = splat(x0), v1 = splat(x1), v2 = splat(x2), v3 = splat(x3);
  let a0 = f64x2.splat(0), a1 = f64x2.splat(0), a2 = f64x2.splat(0), a3 = f64x2.splat(0);
  for (let o: usize = 0; o < last; o += 16) {
    const e0 = vexp(f32x4.sub(v128.load(p + o), v0));
    const e1 = vexp(f32x4.sub(v128.load(p1 + o), v1));
    const e2 = vexp(f32x4.sub(v128.load(p2 + o), v2));
    const e3 = vexp(f32x4.sub(v128.load(p3 + o), v3));
    v128.store(p + o, e0);
    v128.store(p1 + o, e1);
    v128.store(p2 + o, e2);
    v128.store(p3 + o, e3);
    a0 = addWide(a0, e0);
    a1 = addWide(a1, e1);
    a2 = addWide(a2, e2);
    a3 = addWide(a3, e3);
  }
  const l0 = v128.and(vexp(f32x4.sub(v128.load(p + last), v0)), k0);
  const l1 = v128.and(vexp(f32x4.sub(v128.load(p1 + last), v1)), k1);
  const l2 = v128.and(vexp(f32x4.sub(v128.load(p2 + last), v2)), k2);
  const l3 = v128.and(vexp(f32x4.sub(v128.load(p3 + last), v3)), k3);
  v128.store(p + last, l0);
  v128.store(p1 + last, l1);
  v128.store(p2 + last, l2);
  v128.store(p3 + last, l3);
  const s0 = hsum64(addWide(a0, l0)), s1 = hsum64(addWide(a1, l1)), s2 = hsum64(addWide(a2, l2)), s3 = hsum64(addWide(a3, l3));
  const f0 = splat(<f32>(1 / s0)), f1 = splat(<f32>(1 / s1)), f2 = splat(<f32>(1 / s2)), f3 = splat(<f32>(1 / s3));
  for (let o: usize = 0; o <= last; o += 16) {
    v128.store(p + o, f32x4.mul(v128.load(p + o), f0));
    v128.store(p1 + o, f32x4.mul(v128.load(p1 + o), f1));
    v128.store(p2 + o, f32x4.mul(v128.load(p2 + o), f2));
    v128.store(p3 + o, f32x4.mul(v128.load(p3 + o), f3));
  }
  const z = f32x4.splat(0);
  for (let o = last + 16; o < (<usize>jEnd << 2); o += 16) {
    v128.store(p + o, z);
    v128.store(p1 + o, z);
    v128.store(p2 + o, z);
    v128.store(p3 + o, z);
  }
  store<f32>(lse, <f32>(<f64>x0 + Math.log(s0)));
  store<f32>(lse, <f32>(<f64>x1 + Math.log(s1)), 4);
  store<f32>(lse, <f32>(<f64>x2 + Math.log(s2)), 8);
  store<f32>(lse, <f32>(<f64>x3 + Math.log(s3)), 12);
}

/** attention forward for the (b, h) pairs bh0 .. bh1-1 (bh = b*nh + h); scratch: attentionScratchBytes */
export function attentionForward(out: usize, lse: usize, probs: usize, qkv: usize, B: i32, T: i32, C: i32, nh: i32, bh0: i32, bh1: i32, scratch: usize): void {
  const hs = C / nh;
  const sc = <f32>(1 / Math.sqrt(<f64>hs));
  const rs3 = <usize>(3 * C) << 2;
  const Tp = (T + 7) & ~7;
  const hp = (hs + 7) & ~7;
  const T4 = (T + 3) & ~3;
  const mh = <usize>(Tp * hp) << 2;
  const ldh = <usize>hp << 2;
  const ldt = <usize>Tp << 2;
  const Qb = scratch;
  const Kt = Qb + mh;
  const Vb = Kt + mh;
  const Ob = Vb + mh;
  const Pb = Ob + mh;
  const direct = inPlace(T, hs);
  const tt = <usize>(T * T) << 2; // bytes of one pair's probs
  memory.fill(scratch, 0, 4 * mh + <usize>Tp * ldt);
  for (let bh = bh0; bh < bh1; bh++) {
    const b = bh / nh;
    const h = bh % nh;
    if (bh == bh0 || h == 0) {
      touch(qkv + <usize>b * <usize>T * rs3, <usize>T * rs3);
      touch(out + ((<usize>(b * T) * <usize>C) << 2), <usize>T * (<usize>C << 2));
    }
    const base = qkv + <usize>b * <usize>T * rs3 + (<usize>(h * hs) << 2);
    const kb = base + (<usize>C << 2);
    const vb = base + (<usize>(2 * C) << 2);
    const ob = out + ((<usize>(b * T) * <usize>C + <usize>(h * hs)) << 2);
    // Q, V and O as the tiles use them: in place (rows 3C or C floats apart) or padded copies
    let q = Qb, qs = ldh, v = Vb, vs = ldh, o = Ob, os = ldh;
    if (direct) {
      q = base;
      qs = rs3;
      v = vb;
      vs = rs3;
      o = ob;
      os = <usize>C << 2;
    } else {
      for (let t = 0; t < T; t++) {
        const ro = <usize>t * rs3;
        copyRow(Qb + <usize>t * ldh, base + ro, hs);
        copyRow(Vb + <usize>t * ldh, vb + ro, hs);
      }
    }
    copyColumns(Kt, ldt, Tp, kb, rs3, T, hs, sc);
    // P: this pair's rows of probs when in place (Tp = T), else the scratch, copied out below
    const pairP = probs + <usize>bh * tt;
    const P = probs && direct ? pairP : Pb;
    for (let i0 = 0; i0 < T4; i0 += 4) {
      const jEnd = min(Tp, (i0 + 11) & ~7);
      const prow = P + <usize>i0 * ldt;
      for (let j0 = 0; j0 < jEnd; j0 += 8) tile4x8(prow + (<usize>j0 << 2), ldt, q + <usize>i0 * qs, qs, 4, Kt + (<usize>j0 << 2), ldt, hp);
      const i1 = min(i0 + 4, T);
      if (i1 - i0 == 4) causalSoftmaxQuad(prow, ldt, i0, jEnd, lse + (<usize>(bh * T + i0) << 2));
      else {
        for (let i = i0; i < i1; i++) {
          const row = P + <usize>i * ldt;
          const l = causalSoftmaxRow(row, i + 1, jEnd);
          store<f32>(lse + (<usize>(bh * T + i) << 2), l);
        }
      }
      for (let d0 = 0; d0 < hp; d0 += 8) tile4x8(o + <usize>i0 * os + (<usize>d0 << 2), os, prow, ldt, 4, v + (<usize>d0 << 2), vs, jEnd);
      if (probs && !direct) for (let i = i0; i < i1; i++) copyRow(pairP + <usize>(i * T) * 4, Pb + <usize>i * ldt, i + 1);
    }
    if (!direct) for (let t = 0; t < T; t++) copyRow(ob + <usize>t * (<usize>C << 2), Ob + <usize>t * ldh, hs);
  }
}

/** y (n) += a·x (n) */
@inline function axpy(y: usize, a: f32, x: usize, n: i32): void {
  const av = splat(a);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    v128.store(y + o, madd(av, v128.load(x + o), v128.load(y + o)));
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    store<f32>(y + o, load<f32>(y + o) + a * load<f32>(x + o));
  }
}

/**
 * dS row (dr, holding dP = dO·Vᵀ) = P∘(dP - D)·sc from a kept P row (pr, n causal entries): whole
 * vectors, the lanes past n of the last one masked to 0, then zeros up to jEnd (as the recomputing
 * path below leaves them).
 */
@inline function keptRowGrad(pr: usize, dr: usize, n: i32, jEnd: i32, D: f32, sv: v128): void {
  const Dv = splat(D);
  const last = <usize>(((n + 3) >> 2) - 1) << 4; // bytes
  for (let o: usize = 0; o < last; o += 16) {
    v128.store(dr + o, f32x4.mul(f32x4.mul(v128.load(pr + o), f32x4.sub(v128.load(dr + o), Dv)), sv));
  }
  const p = v128.and(v128.load(pr + last), lastVectorMask(n));
  v128.store(dr + last, f32x4.mul(f32x4.mul(p, f32x4.sub(v128.load(dr + last), Dv)), sv));
  for (let o = last + 16; o < (<usize>jEnd << 2); o += 16) v128.store(dr + o, f32x4.splat(0));
}

/** attention backward for the (b, h) pairs bh0 .. bh1-1; scratch: attentionScratchBytes */
export function attentionBackward(dqkv: usize, dout: usize, qkv: usize, out: usize, lse: usize, probs: usize, overwrite: i32, B: i32, T: i32, C: i32, nh: i32, bh0: i32, bh1: i32, scratch: usize): void {
  const hs = C / nh;
  const sc = <f32>(1 / Math.sqrt(<f64>hs));
  const rs3 = <usize>(3 * C) << 2;
  const cb = <usize>C << 2;
  const Tp = (T + 7) & ~7;
  const hp = (hs + 7) & ~7;
  const T4 = (T + 3) & ~3;
  const mh = <usize>(Tp * hp) << 2;
  const ldh = <usize>hp << 2;
  const ldt = <usize>Tp << 2;
  const Qb = scratch;
  const Kb = Qb + mh;
  const Kt = Kb + mh;
  const Vt = Kt + mh;
  const dOb = Vt + mh;
  const dQb = dOb + mh;
  const dKb = dQb + mh;
  const dVb = dKb + mh;
  const Pb = dVb + mh;
  const dSb = Pb + <usize>Tp * ldt;
  const direct = inPlace(T, hs);
  // the tiles add into dqkv in place, unless told to overwrite it (padded: into zeroed scratch)
  const adds = direct && overwrite == 0;
  const tt = <usize>(T * T) << 2; // bytes of one pair's probs
  memory.fill(scratch, 0, 8 * mh + 2 * <usize>Tp * ldt);
  const sv = splat(sc);
  for (let bh = bh0; bh < bh1; bh++) {
    const b = bh / nh;
    const h = bh % nh;
    if (bh == bh0 || h == 0) {
      const rows = <usize>b * <usize>T;
      touch(qkv + rows * rs3, <usize>T * rs3);
      touch(dqkv + rows * rs3, <usize>T * rs3);
      touch(dout + rows * cb, <usize>T * cb);
      touch(out + rows * cb, <usize>T * cb);
    }
    const hoff = <usize>(h * hs) << 2;
    const base = qkv + <usize>b * <usize>T * rs3 + hoff;
    const dbase = dqkv + <usize>b * <usize>T * rs3 + hoff;
    const obase = (<usize>(b * T) * <usize>C << 2) + hoff;
    // Q, K, dO as the tiles read them, and dQ, dK, dV as they write them: in place, the gradients
    // added into dqkv by the tiles (rows 3C or C floats apart), or padded copies in scratch
    let q = Qb, qs = ldh, k = Kb, ks = ldh, dO = dOb, dOs = ldh;
    let dQ = dQb, dK = dKb, dV = dVb, dgs = ldh;
    if (direct) {
      q = base;
      qs = rs3;
      k = base + cb;
      ks = rs3;
      dO = dout + obase;
      dOs = cb;
      dQ = dbase;
      dK = dbase + cb;
      dV = dbase + 2 * cb;
      dgs = rs3;
    } else {
      for (let t = 0; t < T; t++) {
        const ro = <usize>t * rs3;
        copyRow(Qb + <usize>t * ldh, base + ro, hs);
        copyRow(Kb + <usize>t * ldh, base + cb + ro, hs);
        copyRow(dOb + <usize>t * ldh, dout + obase + <usize>t * cb, hs);
      }
    }
    // with probs, P is the forward's (in place, or copied into the scratch), and Kᵀ is not needed
    const pairP = probs + <usize>bh * tt;
    const P = probs && direct ? pairP : Pb;
    if (!probs) copyColumns(Kt, ldt, Tp, base + cb, rs3, T, hs, sc);
    copyColumns(Vt, ldt, Tp, base + 2 * cb, rs3, T, hs, 1);
    for (let i0 = 0; i0 < T4; i0 += 4) {
      const jEnd = min(Tp, (i0 + 11) & ~7);
      const prow = P + <usize>i0 * ldt;
      const dsrow = dSb + <usize>i0 * ldt;
      for (let j0 = 0; j0 < jEnd; j0 += 8) {
        const jo = <usize>j0 << 2;
        if (!probs) tile4x8(prow + jo, ldt, q + <usize>i0 * qs, qs, 4, Kt + jo, ldt, hp);
        tile4x8(dsrow + jo, ldt, dO + <usize>i0 * dOs, dOs, 4, Vt + jo, ldt, hp);
      }
      const i1 = min(i0 + 4, T);
      if (probs) {
        for (let i = i0; i < i1; i++) {
          // (copied rows keep the zeros of the fill past i: the forward's were zero there too)
          if (!direct) copyRow(Pb + <usize>i * ldt, pairP + <usize>(i * T) * 4, i + 1);
          keptRowGrad(P + <usize>i * ldt, dSb + <usize>i * ldt, i + 1, jEnd, dot(dout + obase + <usize>i * cb, out + obase + <usize>i * cb, hs), sv);
        }
      } else for (let i = i0; i < i1; i++) {
        const pr = Pb + <usize>i * ldt;
        const dr = dSb + <usize>i * ldt;
        const l = load<f32>(lse + (<usize>(bh * T + i) << 2));
        const oo = obase + <usize>i * cb;
        const D = dot(dout + oo, out + oo, hs);
        const n = i + 1;
        const lv = splat(l);
        const Dv = splat(D);
        // whole vectors, the lanes j >= n of the last one masked to 0 (as in causalSoftmaxRow)
        const nv = (n + 3) >> 2;
        const last = <usize>(nv - 1) << 4; // bytes
        let o: usize = 0;
        for (; o + 64 <= last; o += 64) {
          const p0 = vexp(f32x4.sub(v128.load(pr + o), lv));
          const p1 = vexp(f32x4.sub(v128.load(pr + o, 16), lv));
          const p2 = vexp(f32x4.sub(v128.load(pr + o, 32), lv));
          const p3 = vexp(f32x4.sub(v128.load(pr + o, 48), lv));
          v128.store(pr + o, p0);
          v128.store(pr + o, p1, 16);
          v128.store(pr + o, p2, 32);
          v128.store(pr + o, p3, 48);
          v128.store(dr + o, f32x4.mul(f32x4.mul(p0, f32x4.sub(v128.load(dr + o), Dv)), sv));
          v128.store(dr + o, f32x4.mul(f32x4.mul(p1, f32x4.sub(v128.load(dr + o, 16), Dv)), sv), 16);
          v128.store(dr + o, f32x4.mul(f32x4.mul(p2, f32x4.sub(v128.load(dr + o, 32), Dv)), sv), 32);
          v128.store(dr + o, f32x4.mul(f32x4.mul(p3, f32x4.sub(v128.load(dr + o, 48), Dv)), sv), 48);
        }
        for (; o < last; o += 16) {
          const p = vexp(f32x4.sub(v128.load(pr + o), lv));
          v128.store(pr + o, p);
          v128.store(dr + o, f32x4.mul(f32x4.mul(p, f32x4.sub(v128.load(dr + o), Dv)), sv));
        }
        const keep = lastVectorMask(n);
        const p = v128.and(vexp(f32x4.sub(v128.load(pr + last), lv)), keep);
        v128.store(pr + last, p);
        v128.store(dr + last, f32x4.mul(f32x4.mul(p, f32x4.sub(v128.load(dr + last), Dv)), sv));
        for (let o = last + 16; o < (<usize>jEnd << 2); o += 16) {
          v128.store(pr + o, f32x4.splat(0));
          v128.store(dr + o, f32x4.splat(0));
        }
      }
      for (let d0 = 0; d0 < hp; d0 += 8) tile4x8(dQ + <usize>i0 * dgs + (<usize>d0 << 2), dgs, dsrow, ldt, 4, k + (<usize>d0 << 2), ks, jEnd, adds);
    }
    // dK = dSᵀ·Q and dV = Pᵀ·dO: key quad j0 collects the queries i >= j0
    for (let j0 = 0; j0 < T4; j0 += 4) {
      const off = <usize>j0 * ldt + (<usize>j0 << 2);
      for (let d0 = 0; d0 < hp; d0 += 8) {
        const d = <usize>d0 << 2;
        const g = <usize>j0 * dgs + d;
        tile4x8(dK + g, dgs, dSb + off, 4, ldt, q + <usize>j0 * qs + d, qs, T4 - j0, adds);
        tile4x8(dV + g, dgs, P + off, 4, ldt, dO + <usize>j0 * dOs + d, dOs, T4 - j0, adds);
      }
    }
    if (!direct) for (let t = 0; t < T; t++) {
      const d = dbase + <usize>t * rs3;
      const so = <usize>t * ldh;
      if (overwrite) {
        copyRow(d, dQb + so, hs);
        copyRow(d + cb, dKb + so, hs);
        copyRow(d + 2 * cb, dVb + so, hs);
      } else {
        addRow(d, dQb + so, hs);
        addRow(d + cb, dKb + so, hs);
        addRow(d + 2 * cb, dVb + so, hs);
      }
    }
  }
}

