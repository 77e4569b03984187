// AssemblyScript source of the wasm kernels (compiled by scripts/build-wasm.mjs; the ".as" extension
// keeps the project's tsc away from it). Every kernel is the SIMD twin of src/kernels/ref/*.ts.
//
// Rules of this module:
// - It imports the tensor heap's shared WebAssembly.Memory; all pointers are byte offsets into it.
// - No allocation and no shadow stack (runtime "stub", only scalars and v128 locals), so several
//   threads can run the same module on the same memory at once. Scratch space comes from the caller.
// - ASC_FEATURE_RELAXED_SIMD selects f32x4.relaxed_madd (FMA) for the relaxed build, mul+add otherwise.

// ---------------------------------------------------------------------------------------------------
// helpers

@inline function madd(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_madd(a, b, c);
  return f32x4.add(f32x4.mul(a, b), c);
}

@inline function splat(x: f32): v128 {
  return f32x4.splat(x);
}

@inline function hsum(v: v128): f32 {
  return f32x4.extract_lane(v, 0) + f32x4.extract_lane(v, 1) + f32x4.extract_lane(v, 2) + f32x4.extract_lane(v, 3);
}

@inline function hmax(v: v128): f32 {
  return max(max(f32x4.extract_lane(v, 0), f32x4.extract_lane(v, 1)), max(f32x4.extract_lane(v, 2), f32x4.extract_lane(v, 3)));
}

/** f64x2 sum of the four f32 lanes of v added into acc */
@inline function addWide(acc: v128, v: v128): v128 {
  acc = f64x2.add(acc, f64x2.promote_low_f32x4(v));
  return f64x2.add(acc, f64x2.promote_low_f32x4(v128.shuffle<f32>(v, v, 2, 3, 2, 3)));
}

/** the f64x2 sum lo + hi of the four f32 lanes of v (lanes 0+2, 1+3) */
@inline function wide(v: v128): v128 {
  return f64x2.add(f64x2.promote_low_f32x4(v), f64x2.promote_low_f32x4(v128.shuffle<f32>(v, v, 2, 3, 2, 3)));
}

@inline function hsum64(v: v128): f64 {
  return f64x2.extract_lane(v, 0) + f64x2.extract_lane(v, 1);
}

/** e^x on four lanes for x already in [-87.33654, 88] (see vexp) */
@inline function vexpIn(x: v128): v128 {
  // round to nearest with the 1.5·2^23 trick: j's low mantissa bits hold the integer n (|n| <= 127),
  // so no f32x4.nearest / i32x4.trunc_sat (a long sequence in V8) is needed
  const j = f32x4.add(f32x4.mul(x, splat(1.44269504088896341)), splat(12582912.0));
  const n = f32x4.sub(j, splat(12582912.0));
  let r = f32x4.sub(x, f32x4.mul(n, splat(0.693359375)));
  r = f32x4.sub(r, f32x4.mul(n, splat(-2.12194440e-4)));
  let p = splat(1.9875691500e-4);
  p = madd(p, r, splat(1.3981999507e-3));
  p = madd(p, r, splat(8.3334519073e-3));
  p = madd(p, r, splat(4.1665795894e-2));
  p = madd(p, r, splat(1.6666665459e-1));
  p = madd(p, r, splat(5.0000001201e-1));
  const y = madd(p, f32x4.mul(r, r), f32x4.add(r, splat(1.0)));
  const e = i32x4.shl(i32x4.add(j, i32x4.splat(127 - 0x4b400000)), 23);
  return f32x4.mul(y, e);
}

/** e^x on four lanes, ~1-2 ulp (Cephes expf: Cody-Waite reduction + degree-6 polynomial). */
@inline function vexp(xIn: v128): v128 {
  // pmin/pmax are single minps/maxps (min/max with NaN and ±0 rules cost ~7 instructions each in V8);
  // x as the first operand keeps a NaN input NaN.
  const res = vexpIn(f32x4.pmin(f32x4.pmax(xIn, splat(-87.33654)), splat(88.0)));
  // below the smallest normal result: 0 (as exp underflows)
  return v128.andnot(res, f32x4.lt(xIn, splat(-87.33654)));
}

@inline function sexp(x: f32): f32 {
  return f32x4.extract_lane(vexp(splat(x)), 0);
}

/** store the first n (0..4) lanes of v at p (p += v when add) */
@inline function storePartial(p: usize, v: v128, n: i32, add: bool): void {
  if (n <= 0) return;
  let x = f32x4.extract_lane(v, 0);
  store<f32>(p, add ? load<f32>(p) + x : x);
  if (n <= 1) return;
  x = f32x4.extract_lane(v, 1);
  store<f32>(p, add ? load<f32>(p, 4) + x : x, 4);
  if (n <= 2) return;
  x = f32x4.extract_lane(v, 2);
  store<f32>(p, add ? load<f32>(p, 8) + x : x, 8);
  if (n <= 3) return;
  x = f32x4.extract_lane(v, 3);
  store<f32>(p, add ? load<f32>(p, 12) + x : x, 12);
}

@inline function storeVec(p: usize, v: v128, add: bool): void {
  v128.store(p, add ? f32x4.add(v128.load(p), v) : v);
}

@inline function store8(p: usize, v0: v128, v1: v128, nr: i32, add: bool): void {
  if (nr == 8) {
    storeVec(p, v0, add);
    storeVec(p + 16, v1, add);
  } else if (nr >= 4) {
    storeVec(p, v0, add);
    storePartial(p + 16, v1, nr - 4, add);
  } else {
    storePartial(p, v0, nr, add);
  }
}

// ---------------------------------------------------------------------------------------------------
// matmul
//
// kind 0 (a·b):   a(i,k) = a[i*lda + k],  b(k,j) = b[k*N + j]
// kind 1 (a·bᵀ):  a(i,k) = a[i*lda + k],  b(k,j) = b[j*K + k]
// kind 2 (aᵀ·b):  a(i,k) = a[k*lda + i],  b(k,j) = b[k*N + j]
// out (M,N) row-major with row stride N. B is packed per (KC x NC) block into panels as wide as the
// register tile (panel p, row k at scratch + (p*kc + k)*w*4 bytes, zero-padded past N), A per
// (MC x KC) block into groups of the tile's rows; a register tile of out is accumulated over the
// block's kc rows. Two tiles do the same arithmetic in different register shapes: 4x8 (kern4x8) and
// 3x12 (kern3x12, with its packA3 and constants below kern4x8); setMatmulTile picks one per instance.

const KC: i32 = 256;
const NC: i32 = 2048;
const MC: i32 = 32;

/** bytes of scratch matmul needs: the packed B block, then the packed A block */
export function matmulScratchBytes(): i32 {
  return KC * NC * 4 + MC * KC * 4;
}

/** 4x4 transpose of the rows r0..r3 into the columns, stored at d, d+ds, d+2ds, d+3ds */
@inline function transpose4(d: usize, ds: usize, r0: v128, r1: v128, r2: v128, r3: v128): void {
  const t0 = v128.shuffle<f32>(r0, r1, 0, 4, 1, 5);
  const t1 = v128.shuffle<f32>(r2, r3, 0, 4, 1, 5);
  const t2 = v128.shuffle<f32>(r0, r1, 2, 6, 3, 7);
  const t3 = v128.shuffle<f32>(r2, r3, 2, 6, 3, 7);
  v128.store(d, v128.shuffle<f32>(t0, t1, 0, 1, 4, 5));
  v128.store(d + ds, v128.shuffle<f32>(t0, t1, 2, 3, 6, 7));
  v128.store(d + 2 * ds, v128.shuffle<f32>(t2, t3, 0, 1, 4, 5));
  v128.store(d + 3 * ds, v128.shuffle<f32>(t2, t3, 2, 3, 6, 7));
}

/**
 * Packs rows k0..k0+kc-1, columns n0..n0+nc-1 of B into panels of w = 8 or 12 columns (the tile's
 * width): panel p, row k at dst + (p*kc + k)*w*4 bytes, columns past N zero.
 */
function packB(kind: i32, b: usize, dst: usize, k0: i32, kc: i32, n0: i32, nc: i32, K: i32, N: i32, w: i32): void {
  const np = (nc + w - 1) / w;
  const rowBytes = <usize>w << 2;
  for (let p = 0; p < np; p++) {
    const j0 = n0 + p * w;
    const nr = min(w, n0 + nc - j0);
    let d = dst + <usize>(p * kc) * rowBytes;
    if (kind == 1) {
      // b (N,K): column j of the panel is row j0+j of b
      if (nr == w) {
        let s = b + ((<usize>j0 * <usize>K + <usize>k0) << 2);
        const rs = <usize>K << 2;
        let k = 0;
        for (; k + 4 <= kc; k += 4) {
          // rows j0..j0+w-1, columns k..k+3 -> 4 rows of the panel, four of b's rows at a time
          for (let g = 0; g < w; g += 4) {
            const r = s + <usize>g * rs;
            transpose4(d + (<usize>g << 2), rowBytes, v128.load(r), v128.load(r + rs), v128.load(r + 2 * rs), v128.load(r + 3 * rs));
          }
          s += 16;
          d += rowBytes << 2;
        }
        for (; k < kc; k++) {
          for (let j = 0; j < w; j++) store<f32>(d + (<usize>j << 2), load<f32>(s + <usize>j * rs));
          s += 4;
          d += rowBytes;
        }
      } else {
        for (let k = 0; k < kc; k++) {
          for (let j = 0; j < w; j++) {
            const v: f32 = j < nr ? load<f32>(b + ((<usize>(j0 + j) * <usize>K + <usize>(k0 + k)) << 2)) : 0;
            store<f32>(d + (<usize>j << 2), v);
          }
          d += rowBytes;
        }
      }
    } else {
      let s = b + ((<usize>k0 * <usize>N + <usize>j0) << 2);
      const rs = <usize>N << 2;
      if (nr == w) {
        for (let k = 0; k < kc; k++) {
          for (let o: usize = 0; o < rowBytes; o += 16) v128.store(d + o, v128.load(s + o));
          s += rs;
          d += rowBytes;
        }
      } else {
        for (let k = 0; k < kc; k++) {
          for (let j = 0; j < w; j++) {
            const v: f32 = j < nr ? load<f32>(s + (<usize>j << 2)) : 0;
            store<f32>(d + (<usize>j << 2), v);
          }
          s += rs;
          d += rowBytes;
        }
      }
    }
  }
}

/**
 * packA for the 4x8 tile: rows m0..m0+mc-1, columns k0..k0+kc-1 of A in quads of 4 rows (quad q,
 * column k at dst + (q*kc + k)*16 bytes), rows past M zero.
 */
function packA4(kind: i32, a: usize, dst: usize, m0: i32, mc: i32, k0: i32, kc: i32, lda: i32): void {
  const la = <usize>lda << 2;
  for (let q = 0; q * 4 < mc; q++) {
    const i0 = m0 + q * 4;
    const mr = min(4, mc - q * 4);
    let d = dst + (<usize>(q * kc) << 4);
    if (kind == 2) {
      // a (K, M): the quad's 4 values for one k are contiguous
      let s = a + <usize>k0 * la + (<usize>i0 << 2);
      if (mr == 4) {
        for (let k = 0; k < kc; k++) {
          v128.store(d, v128.load(s));
          s += la;
          d += 16;
        }
      } else {
        for (let k = 0; k < kc; k++) {
          for (let r = 0; r < 4; r++) store<f32>(d + (<usize>r << 2), r < mr ? load<f32>(s + (<usize>r << 2)) : 0);
          s += la;
          d += 16;
        }
      }
    } else {
      let s = a + <usize>i0 * la + (<usize>k0 << 2);
      if (mr == 4) {
        let k = 0;
        for (; k + 4 <= kc; k += 4) {
          transpose4(d, 16, v128.load(s), v128.load(s + la), v128.load(s + 2 * la), v128.load(s + 3 * la));
          s += 16;
          d += 64;
        }
        for (; k < kc; k++) {
          store<f32>(d, load<f32>(s));
          store<f32>(d, load<f32>(s + la), 4);
          store<f32>(d, load<f32>(s + 2 * la), 8);
          store<f32>(d, load<f32>(s + 3 * la), 12);
          s += 4;
          d += 16;
        }
      } else {
        for (let k = 0; k < kc; k++) {
          for (let r = 0; r < 4; r++) store<f32>(d + (<usize>r << 2), r < mr ? load<f32>(s + <usize>r * la) : 0);
          s += 4;
          d += 16;
        }
      }
    }
  }
}

/**
 * out[mr <= 4 rows, nr <= 8 cols] (+)= packed A quad [4, kc] · packed B panel [kc, 8].
 * Why 4x8 and not bigger: V8 (Node 20) hoists all broadcast loads of an iteration above its FMAs, so
 * a tile needs accumulators + B vectors + one register per row, and x64 gives wasm 15 xmm registers.
 * 4x8 uses 8 + 2 + 4 = 14; 5x8 and 6x8 were tried and spill to the stack (both measured slower).
 * For the same reason unrolling k by 2 spills (V8 hoists all 12 loads; ~10% slower). The loop is
 * front-end bound (~20 uops for 8 FMAs), so looping on the pointer instead of a counter gained ~10%.
 * The one bigger tile that fits, 3x12 (9 + 3 + 3), is kern3x12: faster on newer V8s, not on Node 20's.
 */
function kern4x8(c: usize, ldc: usize, ap: usize, bp: usize, kc: i32, mr: i32, nr: i32, add: bool, bias: usize): void {
  let c00 = f32x4.splat(0), c01 = f32x4.splat(0);
  let c10 = f32x4.splat(0), c11 = f32x4.splat(0);
  let c20 = f32x4.splat(0), c21 = f32x4.splat(0);
  let c30 = f32x4.splat(0), c31 = f32x4.splat(0);
  // loop on the A pointer (no separate counter: one add and compare less an iteration)
  const aEnd = ap + (<usize>kc << 4);
  while (ap < aEnd) {
    const b0 = v128.load(bp);
    const b1 = v128.load(bp, 16);
    let x = v128.load32_splat(ap);
    c00 = madd(x, b0, c00);
    c01 = madd(x, b1, c01);
    x = v128.load32_splat(ap, 4);
    c10 = madd(x, b0, c10);
    c11 = madd(x, b1, c11);
    x = v128.load32_splat(ap, 8);
    c20 = madd(x, b0, c20);
    c21 = madd(x, b1, c21);
    x = v128.load32_splat(ap, 12);
    c30 = madd(x, b0, c30);
    c31 = madd(x, b1, c31);
    ap += 16;
    bp += 32;
  }
  if (bias != 0) {
    // out = a·b + bias: the bias row joins the tile on its way out (no second pass over out)
    let b0: v128, b1: v128;
    if (nr == 8) {
      b0 = v128.load(bias);
      b1 = v128.load(bias, 16);
    } else {
      b0 = f32x4.splat(0);
      b1 = f32x4.splat(0);
      for (let j = 0; j < nr; j++) {
        const v = load<f32>(bias + (<usize>j << 2));
        if (j == 0) b0 = f32x4.replace_lane(b0, 0, v);
        else if (j == 1) b0 = f32x4.replace_lane(b0, 1, v);
        else if (j == 2) b0 = f32x4.replace_lane(b0, 2, v);
        else if (j == 3) b0 = f32x4.replace_lane(b0, 3, v);
        else if (j == 4) b1 = f32x4.replace_lane(b1, 0, v);
        else if (j == 5) b1 = f32x4.replace_lane(b1, 1, v);
        else if (j == 6) b1 = f32x4.replace_lane(b1, 2, v);
        else b1 = f32x4.replace_lane(b1, 3, v);
      }
    }
    c00 = f32x4.add(c00, b0);
    c01 = f32x4.add(c01, b1);
    c10 = f32x4.add(c10, b0);
    c11 = f32x4.add(c11, b1);
    c20 = f32x4.add(c20, b0);
    c21 = f32x4.add(c21, b1);
    c30 = f32x4.add(c30, b0);
    c31 = f32x4.add(c31, b1);
  }
  store8(c, c00, c01, nr, add);
  if (mr > 1) store8(c + ldc, c10, c11, nr, add);
  if (mr > 2) store8(c + 2 * ldc, c20, c21, nr, add);
  if (mr > 3) store8(c + 3 * ldc, c30, c31, nr, add);
}

// ---- the 3x12 tile (setMatmulTile(1)) ---------------------------------------------------------------

const NR12: i32 = 12;
const MR3: i32 = 3;
const NC12: i32 = 2016; // a multiple of 12 within NC, so the scratch serves both tiles
const MC3: i32 = 30; // a multiple of 3 within MC

/** which register tile matmul uses: 0 = 4x8 (kern4x8), 1 = 3x12 (kern3x12); per instance (thread) */
let tile: i32 = 0;

export function setMatmulTile(t: i32): void {
  tile = t;
}

/** packA for the 3x12 tile: groups of 3 rows (group q, column k at dst + (q*kc + k)*12 bytes) */
function packA3(kind: i32, a: usize, dst: usize, m0: i32, mc: i32, k0: i32, kc: i32, lda: i32): void {
  const la = <usize>lda << 2;
  for (let q = 0; q * MR3 < mc; q++) {
    const i0 = m0 + q * MR3;
    const mr = min(MR3, mc - q * MR3);
    let d = dst + <usize>(q * kc) * 12;
    if (kind == 2) {
      let s = a + <usize>k0 * la + (<usize>i0 << 2);
      if (mr == MR3) {
        for (let k = 0; k < kc; k++) {
          store<u64>(d, load<u64>(s));
          store<f32>(d, load<f32>(s, 8), 8);
          s += la;
          d += 12;
        }
      } else {
        for (let k = 0; k < kc; k++) {
          for (let r = 0; r < MR3; r++) store<f32>(d + (<usize>r << 2), r < mr ? load<f32>(s + (<usize>r << 2)) : 0);
          s += la;
          d += 12;
        }
      }
    } else {
      let s = a + <usize>i0 * la + (<usize>k0 << 2);
      if (mr == MR3) {
        let k = 0;
        for (; k + 4 <= kc; k += 4) {
          const r0 = v128.load(s), r1 = v128.load(s + la), r2 = v128.load(s + 2 * la);
          const t0 = v128.shuffle<f32>(r0, r1, 0, 4, 1, 5);
          const t2 = v128.shuffle<f32>(r0, r1, 2, 6, 3, 7);
          const c0 = v128.shuffle<f32>(t0, r2, 0, 1, 4, 5);
          const c1 = v128.shuffle<f32>(t0, r2, 2, 3, 5, 4);
          const c2 = v128.shuffle<f32>(t2, r2, 0, 1, 6, 7);
          const c3 = v128.shuffle<f32>(t2, r2, 2, 3, 7, 6);
          v128.store64_lane(d, c0, 0);
          v128.store32_lane(d, c0, 2, 8);
          v128.store64_lane(d, c1, 0, 12);
          v128.store32_lane(d, c1, 2, 20);
          v128.store64_lane(d, c2, 0, 24);
          v128.store32_lane(d, c2, 2, 32);
          v128.store64_lane(d, c3, 0, 36);
          v128.store32_lane(d, c3, 2, 44);
          s += 16;
          d += 48;
        }
        for (; k < kc; k++) {
          store<f32>(d, load<f32>(s));
          store<f32>(d, load<f32>(s + la), 4);
          store<f32>(d, load<f32>(s + 2 * la), 8);
          s += 4;
          d += 12;
        }
      } else {
        for (let k = 0; k < kc; k++) {
          for (let r = 0; r < MR3; r++) store<f32>(d + (<usize>r << 2), r < mr ? load<f32>(s + <usize>r * la) : 0);
          s += 4;
          d += 12;
        }
      }
    }
  }
}

/** store the first nr (0..12) floats of v0, v1, v2 at p (p += them when add) */
@inline function store12(p: usize, v0: v128, v1: v128, v2: v128, nr: i32, add: bool): void {
  if (nr == 12) {
    storeVec(p, v0, add);
    storeVec(p + 16, v1, add);
    storeVec(p + 32, v2, add);
  } else if (nr > 8) {
    storeVec(p, v0, add);
    storeVec(p + 16, v1, add);
    storePartial(p + 32, v2, nr - 8, add);
  } else {
    store8(p, v0, v1, nr, add);
  }
}

/** the first n (<= 4) of the 4 floats at p, the rest 0 */
@inline function loadPartial(p: usize, n: i32): v128 {
  let v = f32x4.splat(0);
  if (n > 0) v = f32x4.replace_lane(v, 0, load<f32>(p));
  if (n > 1) v = f32x4.replace_lane(v, 1, load<f32>(p, 4));
  if (n > 2) v = f32x4.replace_lane(v, 2, load<f32>(p, 8));
  if (n > 3) v = f32x4.replace_lane(v, 3, load<f32>(p, 12));
  return v;
}

/**
 * out[mr <= 3 rows, nr <= 12 cols] (+)= packed A group [3, kc] · packed B panel [kc, 12]: the same
 * FMA chain per output as kern4x8 (results are bit-identical), with 9 FMAs an iteration instead of 8
 * for the loop's fixed cost (pointer zero-extensions, adds, V8's interrupt check, compare and
 * branch) and 9 accumulator chains for the FMA's latency x throughput of 8. 9 accumulators + 3 B
 * vectors + 3 broadcasts fit x64's 15 usable xmm registers even with V8 hoisting all loads.
 * Node 22's V8 and Chromium 156's run it ~5-10% faster than kern4x8 on the recipes' shapes, Node 20's
 * no faster (bench/tiles.ts; docs/benchmarks.md), hence setMatmulTile and the loader's choice.
 */
function kern3x12(c: usize, ldc: usize, ap: usize, bp: usize, kc: i32, mr: i32, nr: i32, add: bool, bias: usize): void {
  let c00 = f32x4.splat(0), c01 = f32x4.splat(0), c02 = f32x4.splat(0);
  let c10 = f32x4.splat(0), c11 = f32x4.splat(0), c12 = f32x4.splat(0);
  let c20 = f32x4.splat(0), c21 = f32x4.splat(0), c22 = f32x4.splat(0);
  const aEnd = ap + <usize>kc * 12;
  while (ap < aEnd) {
    const b0 = v128.load(bp);
    const b1 = v128.load(bp, 16);
    const b2 = v128.load(bp, 32);
    let x = v128.load32_splat(ap);
    c00 = madd(x, b0, c00);
    c01 = madd(x, b1, c01);
    c02 = madd(x, b2, c02);
    x = v128.load32_splat(ap, 4);
    c10 = madd(x, b0, c10);
    c11 = madd(x, b1, c11);
    c12 = madd(x, b2, c12);
    x = v128.load32_splat(ap, 8);
    c20 = madd(x, b0, c20);
    c21 = madd(x, b1, c21);
    c22 = madd(x, b2, c22);
    ap += 12;
    bp += 48;
  }
  if (bias != 0) {
    const b0 = nr >= 4 ? v128.load(bias) : loadPartial(bias, nr);
    const b1 = nr >= 8 ? v128.load(bias, 16) : loadPartial(bias + 16, nr - 4);
    const b2 = nr >= 12 ? v128.load(bias, 32) : loadPartial(bias + 32, nr - 8);
    c00 = f32x4.add(c00, b0);
    c01 = f32x4.add(c01, b1);
    c02 = f32x4.add(c02, b2);
    c10 = f32x4.add(c10, b0);
    c11 = f32x4.add(c11, b1);
    c12 = f32x4.add(c12, b2);
    c20 = f32x4.add(c20, b0);
    c21 = f32x4.add(c21, b1);
    c22 = f32x4.add(c22, b2);
  }
  store12(c, c00, c01, c02, nr, add);
  if (mr > 1) store12(c + ldc, c10, c11, c12, nr, add);
  if (mr > 2) store12(c + 2 * ldc, c20, c21, c22, nr, add);
}

/**
 * out[j0..j1) (+)= Σ_k a(k)·b[k*ldb + j], no packing: one row of out (generation). csA = byte stride
 * of a along k. A token's matmuls are bound by memory bandwidth, so B is read as eight sequential
 * streams, each a block of K/8 whole rows, one row from every block per pass (then the last K % 8
 * rows four and one at a time): the hardware has eight streams' misses in flight, and a stream is
 * long however short B's rows are. (Walking a column block down K rows with a stride of ldb floats
 * defeats the prefetcher; eight adjacent rows per pass streamed the bigger recipe's MLP projection,
 * rows of 384 floats, at ~5 GB/s against ~11 now.) out[j0..j1) stays in L1 between passes, and each
 * pass over it takes two vectors at a time (two independent FMA chains). With ranges > 1 the
 * column ranges [j0, j1) + r·rstride, r < ranges, are done in the same sweep over B's rows (one
 * thread's q, k and v columns), each column with exactly the arithmetic of a one-range call.
 */
function rowTimesB(out: usize, a: usize, csA: usize, b: usize, K: i32, ldb: i32, j0: i32, j1: i32, add: bool, ranges: i32 = 1, rstride: i32 = 0): void {
  const rs = <usize>ldb << 2;
  const n = j1 - j0;
  const n4 = n & ~3;
  const n8 = n & ~7;
  const roff = <usize>rstride << 2;
  if (!add) for (let r = 0; r < ranges; r++) memory.fill(out + (<usize>j0 << 2) + <usize>r * roff, 0, <usize>n << 2);
  let pb0 = b + (<usize>j0 << 2);
  let pa = a;
  // the eight streams (see above): block i holds rows i·Kb .. (i+1)·Kb - 1
  const Kb = K >> 3;
  const rs8 = <usize>Kb * rs; // from one stream to the next in B
  const cs8 = <usize>Kb * csA; // and in a
  for (let kk = 0; kk < Kb; kk++) {
    const x0 = v128.load32_splat(pa);
    const x1 = v128.load32_splat(pa + cs8);
    const x2 = v128.load32_splat(pa + 2 * cs8);
    const x3 = v128.load32_splat(pa + 3 * cs8);
    const x4 = v128.load32_splat(pa + 4 * cs8);
    const x5 = v128.load32_splat(pa + 5 * cs8);
    const x6 = v128.load32_splat(pa + 6 * cs8);
    const x7 = v128.load32_splat(pa + 7 * cs8);
    for (let r = 0; r < ranges; r++) {
      const o0 = out + (<usize>j0 << 2) + <usize>r * roff;
      const pb = pb0 + <usize>r * roff;
      let p0 = pb;
      let o = o0;
      const oEnd = o0 + (<usize>n8 << 2);
      while (o < oEnd) {
        let u = madd(x0, v128.load(p0), v128.load(o));
        let w = madd(x0, v128.load(p0, 16), v128.load(o, 16));
        u = madd(x1, v128.load(p0 + rs8), u);
        w = madd(x1, v128.load(p0 + rs8, 16), w);
        u = madd(x2, v128.load(p0 + 2 * rs8), u);
        w = madd(x2, v128.load(p0 + 2 * rs8, 16), w);
        u = madd(x3, v128.load(p0 + 3 * rs8), u);
        w = madd(x3, v128.load(p0 + 3 * rs8, 16), w);
        u = madd(x4, v128.load(p0 + 4 * rs8), u);
        w = madd(x4, v128.load(p0 + 4 * rs8, 16), w);
        u = madd(x5, v128.load(p0 + 5 * rs8), u);
        w = madd(x5, v128.load(p0 + 5 * rs8, 16), w);
        u = madd(x6, v128.load(p0 + 6 * rs8), u);
        w = madd(x6, v128.load(p0 + 6 * rs8, 16), w);
        u = madd(x7, v128.load(p0 + 7 * rs8), u);
        w = madd(x7, v128.load(p0 + 7 * rs8, 16), w);
        v128.store(o, u);
        v128.store(o, w, 16);
        o += 32;
        p0 += 32;
      }
      if (n4 > n8) {
        let u = madd(x0, v128.load(p0), v128.load(o));
        u = madd(x1, v128.load(p0 + rs8), u);
        u = madd(x2, v128.load(p0 + 2 * rs8), u);
        u = madd(x3, v128.load(p0 + 3 * rs8), u);
        u = madd(x4, v128.load(p0 + 4 * rs8), u);
        u = madd(x5, v128.load(p0 + 5 * rs8), u);
        u = madd(x6, v128.load(p0 + 6 * rs8), u);
        u = madd(x7, v128.load(p0 + 7 * rs8), u);
        v128.store(o, u);
      }
      for (let j = n4; j < n; j++) {
        const jo = <usize>j << 2;
        let v = load<f32>(o0 + jo);
        for (let i = 0; i < 8; i++) v += load<f32>(pa + <usize>i * cs8) * load<f32>(pb + <usize>i * rs8 + jo);
        store<f32>(o0 + jo, v);
      }
    }
    pa += csA;
    pb0 += rs;
  }
  // the rows after the eight blocks
  pa = a + <usize>(8 * Kb) * csA;
  pb0 = b + (<usize>j0 << 2) + <usize>(8 * Kb) * rs;
  let k = 8 * Kb;
  for (; k + 4 <= K; k += 4) {
    const x0 = v128.load32_splat(pa);
    const x1 = v128.load32_splat(pa + csA);
    const x2 = v128.load32_splat(pa + 2 * csA);
    const x3 = v128.load32_splat(pa + 3 * csA);
    for (let r = 0; r < ranges; r++) {
      const o0 = out + (<usize>j0 << 2) + <usize>r * roff;
      const pb = pb0 + <usize>r * roff;
      let p0 = pb;
      let o = o0;
      const oEnd = o0 + (<usize>n4 << 2);
      while (o < oEnd) {
        let acc = madd(x0, v128.load(p0), v128.load(o));
        acc = madd(x1, v128.load(p0 + rs), acc);
        acc = madd(x2, v128.load(p0 + 2 * rs), acc);
        acc = madd(x3, v128.load(p0 + 3 * rs), acc);
        v128.store(o, acc);
        o += 16;
        p0 += 16;
      }
      for (let j = n4; j < n; j++) {
        const jo = <usize>j << 2;
        let v = load<f32>(o0 + jo);
        v += load<f32>(pa) * load<f32>(pb + jo);
        v += load<f32>(pa + csA) * load<f32>(pb + rs + jo);
        v += load<f32>(pa + 2 * csA) * load<f32>(pb + 2 * rs + jo);
        v += load<f32>(pa + 3 * csA) * load<f32>(pb + 3 * rs + jo);
        store<f32>(o0 + jo, v);
      }
    }
    pa += 4 * csA;
    pb0 += 4 * rs;
  }
  for (; k < K; k++) {
    const x0 = v128.load32_splat(pa);
    for (let r = 0; r < ranges; r++) {
      const o0 = out + (<usize>j0 << 2) + <usize>r * roff;
      const pb = pb0 + <usize>r * roff;
      let j = 0;
      for (; j < n4; j += 4) {
        const jo = <usize>j << 2;
        v128.store(o0 + jo, madd(x0, v128.load(pb + jo), v128.load(o0 + jo)));
      }
      for (; j < n; j++) {
        const jo = <usize>j << 2;
        store<f32>(o0 + jo, load<f32>(o0 + jo) + load<f32>(pa) * load<f32>(pb + jo));
      }
    }
    pa += csA;
    pb0 += rs;
  }
}

/** the four horizontal sums of s0..s3 as one vector (transpose-add) */
@inline function hsum4(s0: v128, s1: v128, s2: v128, s3: v128): v128 {
  const t0 = f32x4.add(v128.shuffle<f32>(s0, s1, 0, 4, 1, 5), v128.shuffle<f32>(s0, s1, 2, 6, 3, 7));
  const t1 = f32x4.add(v128.shuffle<f32>(s2, s3, 0, 4, 1, 5), v128.shuffle<f32>(s2, s3, 2, 6, 3, 7));
  return f32x4.add(v128.shuffle<f32>(t0, t1, 0, 1, 4, 5), v128.shuffle<f32>(t0, t1, 2, 3, 6, 7));
}

/** x·(q[k], q[k + rs], q[k + 2rs], q[k + 3rs]) as a vector: the K % 4 tail of four dot products */
@inline function tail4(x: f32, q: usize, rs: usize): v128 {
  const v = f32x4.replace_lane(f32x4.splat(x * load<f32>(q)), 1, x * load<f32>(q + rs));
  return f32x4.replace_lane(f32x4.replace_lane(v, 2, x * load<f32>(q + 2 * rs)), 3, x * load<f32>(q + 3 * rs));
}

/** out[j] (+)= v */
@inline function storeOne(p: usize, v: f32, add: bool): void {
  store<f32>(p, add ? load<f32>(p) + v : v);
}

/**
 * out[j0..j1) (+)= a · bᵀ for one row a (K) and b (N,K): eight dot products at a time, so a's loads
 * are shared and eight rows of b stream at once. As in rowTimesB, the eight are not adjacent: the
 * rows j0..j1 are cut into eight blocks of n/8 and a pass takes one row from each, so every stream
 * runs through a whole block (eight adjacent rows per pass read the GPT-2 LM head, rows of 768
 * floats, at ~7 GB/s); then the last n % 8 rows four and one at a time.
 */
function rowTimesBT(out: usize, a: usize, b: usize, K: i32, j0: i32, j1: i32, add: bool): void {
  const rs = <usize>K << 2;
  const K4 = K & ~3;
  const nb = (j1 - j0) >> 3;
  const bs = <usize>nb * rs; // from one stream to the next in b
  const os = <usize>nb << 2; // and in out
  for (let j = j0; j < j0 + nb; j++) {
    const p0 = b + <usize>j * rs;
    let s0 = f32x4.splat(0), s1 = f32x4.splat(0), s2 = f32x4.splat(0), s3 = f32x4.splat(0);
    let s4 = f32x4.splat(0), s5 = f32x4.splat(0), s6 = f32x4.splat(0), s7 = f32x4.splat(0);
    let k = 0;
    for (; k < K4; k += 4) {
      const ko = <usize>k << 2;
      const x = v128.load(a + ko);
      const q = p0 + ko;
      s0 = madd(x, v128.load(q), s0);
      s1 = madd(x, v128.load(q + bs), s1);
      s2 = madd(x, v128.load(q + 2 * bs), s2);
      s3 = madd(x, v128.load(q + 3 * bs), s3);
      s4 = madd(x, v128.load(q + 4 * bs), s4);
      s5 = madd(x, v128.load(q + 5 * bs), s5);
      s6 = madd(x, v128.load(q + 6 * bs), s6);
      s7 = madd(x, v128.load(q + 7 * bs), s7);
    }
    let r = hsum4(s0, s1, s2, s3);
    let r2 = hsum4(s4, s5, s6, s7);
    for (; k < K; k++) {
      const ko = <usize>k << 2;
      const x = load<f32>(a + ko);
      r = f32x4.add(r, tail4(x, p0 + ko, bs));
      r2 = f32x4.add(r2, tail4(x, p0 + 4 * bs + ko, bs));
    }
    const o = out + (<usize>j << 2);
    storeOne(o, f32x4.extract_lane(r, 0), add);
    storeOne(o + os, f32x4.extract_lane(r, 1), add);
    storeOne(o + 2 * os, f32x4.extract_lane(r, 2), add);
    storeOne(o + 3 * os, f32x4.extract_lane(r, 3), add);
    storeOne(o + 4 * os, f32x4.extract_lane(r2, 0), add);
    storeOne(o + 5 * os, f32x4.extract_lane(r2, 1), add);
    storeOne(o + 6 * os, f32x4.extract_lane(r2, 2), add);
    storeOne(o + 7 * os, f32x4.extract_lane(r2, 3), add);
  }
  let j = j0 + 8 * nb;
  for (; j + 4 <= j1; j += 4) {
    const p0 = b + <usize>j * rs;
    let s0 = f32x4.splat(0), s1 = f32x4.splat(0), s2 = f32x4.splat(0), s3 = f32x4.splat(0);
    let k = 0;
    for (; k < K4; k += 4) {
      const ko = <usize>k << 2;
      const x = v128.load(a + ko);
      const q = p0 + ko;
      s0 = madd(x, v128.load(q), s0);
      s1 = madd(x, v128.load(q + rs), s1);
      s2 = madd(x, v128.load(q + 2 * rs), s2);
      s3 = madd(x, v128.load(q + 3 * rs), s3);
    }
    let r = hsum4(s0, s1, s2, s3);
    for (; k < K; k++) {
      const ko = <usize>k << 2;
      r = f32x4.add(r, tail4(load<f32>(a + ko), p0 + ko, rs));
    }
    storeVec(out + (<usize>j << 2), r, add);
  }
  for (; j < j1; j++) {
    storeOne(out + (<usize>j << 2), dot(a, b + <usize>j * rs, K), add);
  }
}

/**
 * Columns j0..j1 of out (M,N) (+)= a·b for M < 4 rows (token-by-token generation): no packing, B is
 * read once per row, straight from memory. Threads split the columns. Same layouts as matmul.
 */
export function matmulRows(kind: i32, out: usize, a: usize, b: usize, M: i32, K: i32, N: i32, lda: i32, accumulate: i32, j0: i32, j1: i32): void {
  const acc = accumulate != 0;
  const ldc = <usize>N << 2;
  const rsA: usize = kind == 2 ? 4 : <usize>lda << 2;
  const csA: usize = kind == 2 ? <usize>lda << 2 : 4;
  for (let i = 0; i < M; i++) {
    const o = out + <usize>i * ldc;
    const ai = a + <usize>i * rsA;
    if (kind == 1) rowTimesBT(o, ai, b, K, j0, j1, acc);
    else rowTimesB(o, ai, csA, b, K, N, j0, j1, acc);
  }
}

/** dot product of n floats at x and y */
function dot(x: usize, y: usize, n: i32): f32 {
  let s0 = f32x4.splat(0), s1 = f32x4.splat(0), s2 = f32x4.splat(0), s3 = f32x4.splat(0);
  let i = 0;
  for (; i + 16 <= n; i += 16) {
    s0 = madd(v128.load(x), v128.load(y), s0);
    s1 = madd(v128.load(x, 16), v128.load(y, 16), s1);
    s2 = madd(v128.load(x, 32), v128.load(y, 32), s2);
    s3 = madd(v128.load(x, 48), v128.load(y, 48), s3);
    x += 64;
    y += 64;
  }
  for (; i + 4 <= n; i += 4) {
    s0 = madd(v128.load(x), v128.load(y), s0);
    x += 16;
    y += 16;
  }
  let s = hsum(f32x4.add(f32x4.add(s0, s1), f32x4.add(s2, s3)));
  for (; i < n; i++) {
    s += load<f32>(x) * load<f32>(y);
    x += 4;
    y += 4;
  }
  return s;
}

/**
 * out (M,N) (+)= a·b in one of the three layouts (see above); bias (N floats, 0 = none) is added to
 * every row. The rows of out a call writes are independent: threads split M.
 */
export function matmul(kind: i32, out: usize, a: usize, b: usize, M: i32, K: i32, N: i32, lda: i32, accumulate: i32, scratch: usize, bias: usize): void {
  if (M <= 0 || N <= 0) return;
  const acc = accumulate != 0;
  const ldc = <usize>N << 2;
  if (K <= 0) {
    if (!acc) memory.fill(out, 0, <usize>M * ldc);
    if (bias != 0) addBias(out, bias, M, N);
    return;
  }
  if (M < 4) {
    matmulRows(kind, out, a, b, M, K, N, lda, accumulate, 0, N);
    if (bias != 0) addBias(out, bias, M, N);
    return;
  }
  // the tile's shape: B panels w columns wide, A groups of mr rows, A blocks of mc rows
  const t3 = tile == 1;
  const w = t3 ? NR12 : 8;
  const mr = t3 ? MR3 : 4;
  const mcMax = t3 ? MC3 : MC;
  const ncMax = t3 ? NC12 : NC;
  const aScratch = scratch + (<usize>(KC * NC) << 2);
  for (let n0 = 0; n0 < N; n0 += ncMax) {
    const nc = min(ncMax, N - n0);
    const np = (nc + w - 1) / w;
    for (let k0 = 0; k0 < K; k0 += KC) {
      const kc = min(KC, K - k0);
      const add = acc || k0 > 0;
      packB(kind, b, scratch, k0, kc, n0, nc, K, N, w);
      for (let m0 = 0; m0 < M; m0 += mcMax) {
        const mc = min(mcMax, M - m0);
        if (t3) packA3(kind, a, aScratch, m0, mc, k0, kc, lda);
        else packA4(kind, a, aScratch, m0, mc, k0, kc, lda);
        for (let p = 0; p < np; p++) {
          const j0 = n0 + p * w;
          const nr = min(w, N - j0);
          const bp = scratch + <usize>(p * kc) * (<usize>w << 2);
          const bj = bias != 0 && k0 == 0 ? bias + (<usize>j0 << 2) : 0;
          for (let q = 0; q * mr < mc; q++) {
            const i = m0 + q * mr;
            const c = out + <usize>i * ldc + (<usize>j0 << 2);
            const ap = aScratch + <usize>(q * kc) * (<usize>mr << 2);
            if (t3) kern3x12(c, ldc, ap, bp, kc, min(mr, M - i), nr, add, bj);
            else kern4x8(c, ldc, ap, bp, kc, min(mr, M - i), nr, add, bj);
          }
        }
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------------
// elementwise and reductions

export function addBias(out: usize, bias: usize, rows: i32, cols: i32): void {
  for (let r = 0; r < rows; r++) {
    const o = out + ((<usize>r * <usize>cols) << 2);
    let c = 0;
    for (; c + 4 <= cols; c += 4) {
      const p = o + (<usize>c << 2);
      v128.store(p, f32x4.add(v128.load(p), v128.load(bias + (<usize>c << 2))));
    }
    for (; c < cols; c++) {
      const p = o + (<usize>c << 2);
      store<f32>(p, load<f32>(p) + load<f32>(bias + (<usize>c << 2)));
    }
  }
}

/**
 * out (cols) += column sums of x (rows, cols), summed in f64 in scratch (cols f64). x is walked row
 * by row, in memory order: walking it down a strip of columns strides by a whole row per load, which
 * defeats the prefetcher once a row is longer than a page (~4x slower on the bigger recipe's dy).
 */
export function sumRows(out: usize, x: usize, rows: i32, cols: i32, scratch: usize): void {
  memory.fill(scratch, 0, <usize>cols << 3);
  const c4 = cols & ~3;
  const stride = <usize>cols << 2;
  let p = x;
  let r = 0;
  // four rows per pass over the f64 sums: each sum is loaded and stored once per four rows (not once
  // per row), and still gets the rows added one at a time in order, so the result is the same
  for (; r + 4 <= rows; r += 4) {
    let a = scratch;
    let q = p;
    const e = p + (<usize>c4 << 2);
    while (q < e) {
      const v0 = v128.load(q);
      const v1 = v128.load(q + stride);
      const v2 = v128.load(q + 2 * stride);
      const v3 = v128.load(q + 3 * stride);
      let lo = v128.load(a);
      let hi = v128.load(a, 16);
      lo = f64x2.add(lo, f64x2.promote_low_f32x4(v0));
      hi = f64x2.add(hi, f64x2.promote_low_f32x4(v128.shuffle<f32>(v0, v0, 2, 3, 2, 3)));
      lo = f64x2.add(lo, f64x2.promote_low_f32x4(v1));
      hi = f64x2.add(hi, f64x2.promote_low_f32x4(v128.shuffle<f32>(v1, v1, 2, 3, 2, 3)));
      lo = f64x2.add(lo, f64x2.promote_low_f32x4(v2));
      hi = f64x2.add(hi, f64x2.promote_low_f32x4(v128.shuffle<f32>(v2, v2, 2, 3, 2, 3)));
      lo = f64x2.add(lo, f64x2.promote_low_f32x4(v3));
      hi = f64x2.add(hi, f64x2.promote_low_f32x4(v128.shuffle<f32>(v3, v3, 2, 3, 2, 3)));
      v128.store(a, lo);
      v128.store(a, hi, 16);
      q += 16;
      a += 32;
    }
    for (let c = c4; c < cols; c++) {
      const o = <usize>c << 2;
      let s = load<f64>(a);
      s += <f64>load<f32>(p + o);
      s += <f64>load<f32>(p + stride + o);
      s += <f64>load<f32>(p + 2 * stride + o);
      s += <f64>load<f32>(p + 3 * stride + o);
      store<f64>(a, s);
      a += 8;
    }
    p += 4 * stride;
  }
  for (; r < rows; r++) {
    let a = scratch;
    const e = p + (<usize>c4 << 2);
    while (p < e) {
      const v = v128.load(p);
      v128.store(a, f64x2.add(v128.load(a), f64x2.promote_low_f32x4(v)));
      v128.store(a, f64x2.add(v128.load(a, 16), f64x2.promote_low_f32x4(v128.shuffle<f32>(v, v, 2, 3, 2, 3))), 16);
      p += 16;
      a += 32;
    }
    for (let c = c4; c < cols; c++) {
      store<f64>(a, load<f64>(a) + <f64>load<f32>(p));
      p += 4;
      a += 8;
    }
  }
  for (let c = 0; c < cols; c++) {
    const o = out + (<usize>c << 2);
    store<f32>(o, <f32>(<f64>load<f32>(o) + load<f64>(scratch + (<usize>c << 3))));
  }
}

export function add(out: usize, a: usize, b: usize, n: i32): void {
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    v128.store(out + o, f32x4.add(v128.load(a + o), v128.load(b + o)));
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    store<f32>(out + o, load<f32>(a + o) + load<f32>(b + o));
  }
}

// Zeroing and copying go through wasm's bulk memory ops: a typed array's fill/set on the shared
// WebAssembly.Memory takes V8's slow path for shared buffers (~4x slower than on a plain buffer).
export function zero(x: usize, n: i32): void {
  memory.fill(x, 0, <usize>n << 2);
}

export function copy(dst: usize, src: usize, n: i32): void {
  memory.copy(dst, src, <usize>n << 2);
}

export function accumulate(dst: usize, src: usize, n: i32): void {
  add(dst, dst, src, n);
}

export function scale(x: usize, n: i32, s: f32): void {
  const sv = splat(s);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = x + (<usize>i << 2);
    v128.store(o, f32x4.mul(v128.load(o), sv));
  }
  for (; i < n; i++) {
    const o = x + (<usize>i << 2);
    store<f32>(o, load<f32>(o) * s);
  }
}

export function sumSquares(x: usize, n: i32): f64 {
  let s0 = f64x2.splat(0), s1 = f64x2.splat(0);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const v = v128.load(x + (<usize>i << 2));
    const lo = f64x2.promote_low_f32x4(v);
    const hi = f64x2.promote_low_f32x4(v128.shuffle<f32>(v, v, 2, 3, 2, 3));
    s0 = f64x2.add(s0, f64x2.mul(lo, lo));
    s1 = f64x2.add(s1, f64x2.mul(hi, hi));
  }
  let s = hsum64(f64x2.add(s0, s1));
  for (; i < n; i++) {
    const v = <f64>load<f32>(x + (<usize>i << 2));
    s += v * v;
  }
  return s;
}

export function mul(out: usize, x: usize, m: usize, n: i32): void {
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    v128.store(out + o, f32x4.mul(v128.load(x + o), v128.load(m + o)));
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    store<f32>(out + o, load<f32>(x + o) * load<f32>(m + o));
  }
}

// ---------------------------------------------------------------------------------------------------
// layer norm (row statistics in f64)

/** Σ (v - m)² over the four f32 lanes of v, in f64 (as an f64x2 of two partial sums) */
@inline function squaredDev(v: v128, md: v128): v128 {
  const lo = f64x2.sub(f64x2.promote_low_f32x4(v), md);
  const hi = f64x2.sub(f64x2.promote_low_f32x4(v128.shuffle<f32>(v, v, 2, 3, 2, 3)), md);
  return f64x2.add(f64x2.mul(lo, lo), f64x2.mul(hi, hi));
}

export function layernormForward(out: usize, mean: usize, rstd: usize, x: usize, w: usize, b: usize, N: i32, C: i32, eps: f64): void {
  for (let n = 0; n < N; n++) {
    const xr = x + ((<usize>n * <usize>C) << 2);
    const or = out + ((<usize>n * <usize>C) << 2);
    // two f64 sums, over alternate vectors: one sum is a chain of dependent adds (~4 cycles each)
    let acc = f64x2.splat(0);
    let acc1 = f64x2.splat(0);
    let c = 0;
    for (; c + 8 <= C; c += 8) {
      const o = <usize>c << 2;
      acc = f64x2.add(acc, wide(v128.load(xr + o)));
      acc1 = f64x2.add(acc1, wide(v128.load(xr + o, 16)));
    }
    for (; c + 4 <= C; c += 4) acc = f64x2.add(acc, wide(v128.load(xr + (<usize>c << 2))));
    let sum = hsum64(f64x2.add(acc, acc1));
    for (; c < C; c++) sum += <f64>load<f32>(xr + (<usize>c << 2));
    const m = sum / <f64>C;
    const mv = f32x4.splat(<f32>m);
    const md = f64x2.splat(m);
    acc = f64x2.splat(0);
    acc1 = f64x2.splat(0);
    c = 0;
    for (; c + 8 <= C; c += 8) {
      const o = <usize>c << 2;
      acc = f64x2.add(acc, squaredDev(v128.load(xr + o), md));
      acc1 = f64x2.add(acc1, squaredDev(v128.load(xr + o, 16), md));
    }
    for (; c + 4 <= C; c += 4) acc = f64x2.add(acc, squaredDev(v128.load(xr + (<usize>c << 2)), md));
    let vs = hsum64(f64x2.add(acc, acc1));
    for (; c < C; c++) {
      const d = <f64>load<f32>(xr + (<usize>c << 2)) - m;
      vs += d * d;
    }
    const s = 1 / Math.sqrt(vs / <f64>C + eps);
    const sv = f32x4.splat(<f32>s);
    c = 0;
    for (; c + 4 <= C; c += 4) {
      const o = <usize>c << 2;
      const xh = f32x4.mul(f32x4.sub(v128.load(xr + o), mv), sv);
      v128.store(or + o, madd(xh, v128.load(w + o), v128.load(b + o)));
    }
    for (; c < C; c++) {
      const o = <usize>c << 2;
      store<f32>(or + o, (load<f32>(xr + o) - <f32>m) * <f32>s * load<f32>(w + o) + load<f32>(b + o));
    }
    store<f32>(mean + (<usize>n << 2), <f32>m);
    store<f32>(rstd + (<usize>n << 2), <f32>s);
  }
}

export function layernormBackward(dx: usize, dw: usize, db: usize, dout: usize, x: usize, w: usize, mean: usize, rstd: usize, N: i32, C: i32): void {
  for (let n = 0; n < N; n++) {
    const ro = (<usize>n * <usize>C) << 2;
    const xr = x + ro;
    const dr = dout + ro;
    const dxr = dx + ro;
    const m = load<f32>(mean + (<usize>n << 2));
    const s = load<f32>(rstd + (<usize>n << 2));
    const mv = splat(m);
    const sv = splat(s);
    // two f64 sums of each, over alternate vectors (see layernormForward)
    let ga = f64x2.splat(0), gxa = f64x2.splat(0);
    let ga1 = f64x2.splat(0), gxa1 = f64x2.splat(0);
    let c = 0;
    for (; c + 8 <= C; c += 8) {
      const o = <usize>c << 2;
      const xh = f32x4.mul(f32x4.sub(v128.load(xr + o), mv), sv);
      const g = f32x4.mul(v128.load(dr + o), v128.load(w + o));
      ga = f64x2.add(ga, wide(g));
      gxa = f64x2.add(gxa, wide(f32x4.mul(g, xh)));
      const xh1 = f32x4.mul(f32x4.sub(v128.load(xr + o, 16), mv), sv);
      const g1 = f32x4.mul(v128.load(dr + o, 16), v128.load(w + o, 16));
      ga1 = f64x2.add(ga1, wide(g1));
      gxa1 = f64x2.add(gxa1, wide(f32x4.mul(g1, xh1)));
    }
    for (; c + 4 <= C; c += 4) {
      const o = <usize>c << 2;
      const xh = f32x4.mul(f32x4.sub(v128.load(xr + o), mv), sv);
      const g = f32x4.mul(v128.load(dr + o), v128.load(w + o));
      ga = f64x2.add(ga, wide(g));
      gxa = f64x2.add(gxa, wide(f32x4.mul(g, xh)));
    }
    let gs = hsum64(f64x2.add(ga, ga1));
    let gxs = hsum64(f64x2.add(gxa, gxa1));
    for (; c < C; c++) {
      const o = <usize>c << 2;
      const xh = (load<f32>(xr + o) - m) * s;
      const g = load<f32>(dr + o) * load<f32>(w + o);
      gs += <f64>g;
      gxs += <f64>(g * xh);
    }
    const gMean = <f32>(gs / <f64>C);
    const gxMean = <f32>(gxs / <f64>C);
    const gmv = splat(gMean);
    const gxv = splat(gxMean);
    c = 0;
    for (; c + 4 <= C; c += 4) {
      const o = <usize>c << 2;
      const xh = f32x4.mul(f32x4.sub(v128.load(xr + o), mv), sv);
      const d = v128.load(dr + o);
      const g = f32x4.mul(d, v128.load(w + o));
      const t = f32x4.sub(f32x4.sub(g, gmv), f32x4.mul(xh, gxv));
      v128.store(dxr + o, madd(sv, t, v128.load(dxr + o)));
      v128.store(dw + o, madd(d, xh, v128.load(dw + o)));
      v128.store(db + o, f32x4.add(v128.load(db + o), d));
    }
    for (; c < C; c++) {
      const o = <usize>c << 2;
      const xh = (load<f32>(xr + o) - m) * s;
      const d = load<f32>(dr + o);
      const g = d * load<f32>(w + o);
      store<f32>(dxr + o, load<f32>(dxr + o) + s * (g - gMean - xh * gxMean));
      store<f32>(dw + o, load<f32>(dw + o) + d * xh);
      store<f32>(db + o, load<f32>(db + o) + d);
    }
  }
}

// ---------------------------------------------------------------------------------------------------
// activations. gelu(x) = 0.5·x·(1 + tanh(u)), u = √(2/π)(x + 0.044715x³), written as x·σ(2u) so that
// no 1 + tanh cancellation happens for negative x.

const GELU_K: f32 = 0.7978845608028654;
const GELU_A: f32 = 0.044715;

/** e = exp(-2u) for v and v2 = v²: then gelu(v) = v / (1 + e) and 0.5(1 + tanh u) = 1 / (1 + e) */
@inline function geluExp(v: v128, v2: v128): v128 {
  const u = f32x4.mul(f32x4.mul(splat(GELU_K), v), madd(splat(GELU_A), v2, splat(1)));
  return vexpIn(f32x4.pmin(f32x4.pmax(f32x4.mul(u, splat(-2)), splat(-80)), splat(80)));
}

@inline function geluOf(v: v128, e: v128): v128 {
  return f32x4.div(v, f32x4.add(splat(1), e));
}

@inline function geluGradOf(v: v128, v2: v128, e: v128): v128 {
  const sig = f32x4.div(splat(1), f32x4.add(splat(1), e)); // 0.5(1+t)
  const omt2 = f32x4.mul(f32x4.mul(splat(4), f32x4.mul(sig, sig)), e); // 1 - t²
  const dt = f32x4.mul(f32x4.mul(omt2, splat(GELU_K)), madd(splat(3 * GELU_A), v2, splat(1)));
  return madd(f32x4.mul(splat(0.5), v), dt, sig);
}

@inline function geluVec(v: v128): v128 {
  return geluOf(v, geluExp(v, f32x4.mul(v, v)));
}

@inline function geluGradVec(v: v128): v128 {
  const v2 = f32x4.mul(v, v);
  return geluGradOf(v, v2, geluExp(v, v2));
}

// The exp-based loops below take four vectors per iteration: with one, V8's code for the ~30-operation
// chain ran ~1.5x slower (gelu forward, bench/kernel-ab.ts: 2.4 ns/element with one vector, 2.0 with
// two, 1.6 with four): the CPU overlaps the chains of neighbouring iterations poorly, and it
// overlaps independent chains within one iteration well.

export function geluForward(out: usize, x: usize, n: i32): void {
  let i = 0;
  for (; i + 16 <= n; i += 16) {
    const o = <usize>i << 2;
    const y0 = geluVec(v128.load(x + o));
    const y1 = geluVec(v128.load(x + o, 16));
    const y2 = geluVec(v128.load(x + o, 32));
    const y3 = geluVec(v128.load(x + o, 48));
    v128.store(out + o, y0);
    v128.store(out + o, y1, 16);
    v128.store(out + o, y2, 32);
    v128.store(out + o, y3, 48);
  }
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    v128.store(out + o, geluVec(v128.load(x + o)));
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    store<f32>(out + o, f32x4.extract_lane(geluVec(splat(load<f32>(x + o))), 0));
  }
}

/** gelu and gelu' of v, from one exp */
@inline function geluBoth(v: v128, out: usize, dgelu: usize): void {
  const v2 = f32x4.mul(v, v);
  const e = geluExp(v, v2);
  v128.store(out, geluOf(v, e));
  v128.store(dgelu, geluGradOf(v, v2, e));
}

/**
 * out (n) = gelu(x), dgelu (n) = gelu'(x), both from one exp; dgelu may be x itself (written in place
 * after it is read). Each is computed exactly as geluForward and geluBackward compute it, so
 * dgelu·dout equals what geluBackward adds into a zeroed dx (tests/kernel-cases.ts checks it).
 */
export function geluForwardGrad(out: usize, dgelu: usize, x: usize, n: i32): void {
  let i = 0;
  for (; i + 16 <= n; i += 16) {
    const o = <usize>i << 2;
    // all four loaded before any store: dgelu may be x
    const v0 = v128.load(x + o);
    const v1 = v128.load(x + o, 16);
    const v2 = v128.load(x + o, 32);
    const v3 = v128.load(x + o, 48);
    geluBoth(v0, out + o, dgelu + o);
    geluBoth(v1, out + o + 16, dgelu + o + 16);
    geluBoth(v2, out + o + 32, dgelu + o + 32);
    geluBoth(v3, out + o + 48, dgelu + o + 48);
  }
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    geluBoth(v128.load(x + o), out + o, dgelu + o);
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    const v = splat(load<f32>(x + o));
    store<f32>(out + o, f32x4.extract_lane(geluVec(v), 0));
    store<f32>(dgelu + o, f32x4.extract_lane(geluGradVec(v), 0));
  }
}

export function geluBackward(dx: usize, x: usize, dout: usize, n: i32): void {
  let i = 0;
  for (; i + 16 <= n; i += 16) {
    const o = <usize>i << 2;
    const g0 = geluGradVec(v128.load(x + o));
    const g1 = geluGradVec(v128.load(x + o, 16));
    const g2 = geluGradVec(v128.load(x + o, 32));
    const g3 = geluGradVec(v128.load(x + o, 48));
    v128.store(dx + o, madd(g0, v128.load(dout + o), v128.load(dx + o)));
    v128.store(dx + o, madd(g1, v128.load(dout + o, 16), v128.load(dx + o, 16)), 16);
    v128.store(dx + o, madd(g2, v128.load(dout + o, 32), v128.load(dx + o, 32)), 32);
    v128.store(dx + o, madd(g3, v128.load(dout + o, 48), v128.load(dx + o, 48)), 48);
  }
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    v128.store(dx + o, madd(geluGradVec(v128.load(x + o)), v128.load(dout + o), v128.load(dx + o)));
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    const g = f32x4.extract_lane(geluGradVec(splat(load<f32>(x + o))), 0);
    store<f32>(dx + o, load<f32>(dx + o) + g * load<f32>(dout + o));
  }
}

export function reluForward(out: usize, x: usize, n: i32): void {
  const z = f32x4.splat(0);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    const v = v128.load(x + o);
    v128.store(out + o, v128.and(v, f32x4.gt(v, z)));
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    const v = load<f32>(x + o);
    store<f32>(out + o, v > 0 ? v : 0);
  }
}

export function reluBackward(dx: usize, x: usize, dout: usize, n: i32): void {
  const z = f32x4.splat(0);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    const mask = f32x4.gt(v128.load(x + o), z);
    v128.store(dx + o, f32x4.add(v128.load(dx + o), v128.and(v128.load(dout + o), mask)));
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    if (load<f32>(x + o) > 0) store<f32>(dx + o, load<f32>(dx + o) + load<f32>(dout + o));
  }
}

// ---------------------------------------------------------------------------------------------------
// softmax and cross-entropy (exp in f32, sums in f64)

/** out[i] = exp(x[i] - m) for i < n; returns Σ in f64 */
function expShift(out: usize, x: usize, n: i32, m: f32): f64 {
  const mv = splat(m);
  let acc = f64x2.splat(0);
  let i = 0;
  // four exps an iteration (see geluForward), added into acc one after another as with one
  for (; i + 16 <= n; i += 16) {
    const o = <usize>i << 2;
    const e0 = vexp(f32x4.sub(v128.load(x + o), mv));
    const e1 = vexp(f32x4.sub(v128.load(x + o, 16), mv));
    const e2 = vexp(f32x4.sub(v128.load(x + o, 32), mv));
    const e3 = vexp(f32x4.sub(v128.load(x + o, 48), mv));
    v128.store(out + o, e0);
    v128.store(out + o, e1, 16);
    v128.store(out + o, e2, 32);
    v128.store(out + o, e3, 48);
    acc = addWide(addWide(addWide(addWide(acc, e0), e1), e2), e3);
  }
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    const e = vexp(f32x4.sub(v128.load(x + o), mv));
    v128.store(out + o, e);
    acc = addWide(acc, e);
  }
  let s = hsum64(acc);
  for (; i < n; i++) {
    const o = <usize>i << 2;
    const e = sexp(load<f32>(x + o) - m);
    store<f32>(out + o, e);
    s += <f64>e;
  }
  return s;
}

function rowMax(x: usize, n: i32): f32 {
  let mv = splat(-Infinity);
  let i = 0;
  for (; i + 4 <= n; i += 4) mv = f32x4.max(mv, v128.load(x + (<usize>i << 2)));
  let m = hmax(mv);
  for (; i < n; i++) m = max(m, load<f32>(x + (<usize>i << 2)));
  return m;
}

/** Σ exp(x[i] - m) in f64, nothing stored */
function sumExpShift(x: usize, n: i32, m: f32): f64 {
  const mv = splat(m);
  let acc = f64x2.splat(0);
  let i = 0;
  for (; i + 16 <= n; i += 16) {
    const o = <usize>i << 2;
    const e0 = vexp(f32x4.sub(v128.load(x + o), mv));
    const e1 = vexp(f32x4.sub(v128.load(x + o, 16), mv));
    const e2 = vexp(f32x4.sub(v128.load(x + o, 32), mv));
    const e3 = vexp(f32x4.sub(v128.load(x + o, 48), mv));
    acc = addWide(addWide(addWide(addWide(acc, e0), e1), e2), e3);
  }
  for (; i + 4 <= n; i += 4) acc = addWide(acc, vexp(f32x4.sub(v128.load(x + (<usize>i << 2)), mv)));
  let s = hsum64(acc);
  for (; i < n; i++) s += <f64>sexp(load<f32>(x + (<usize>i << 2)) - m);
  return s;
}

export function softmax(out: usize, x: usize, rows: i32, cols: i32): void {
  for (let r = 0; r < rows; r++) {
    const ro = (<usize>r * <usize>cols) << 2;
    const m = rowMax(x + ro, cols);
    const s = expShift(out + ro, x + ro, cols, m);
    scale(out + ro, cols, <f32>(1 / s));
  }
}

export function crossEntropyForward(losses: usize, lse: usize, logits: usize, targets: usize, N: i32, V: i32): void {
  for (let n = 0; n < N; n++) {
    const row = logits + ((<usize>n * <usize>V) << 2);
    const m = rowMax(row, V);
    const s = sumExpShift(row, V, m);
    const l = <f64>m + Math.log(s);
    store<f32>(lse + (<usize>n << 2), <f32>l);
    const t = load<i32>(targets + (<usize>n << 2));
    store<f32>(losses + (<usize>n << 2), t < 0 ? 0 : <f32>(l - <f64>load<f32>(row + (<usize>t << 2))));
  }
}

export function crossEntropyBackward(dlogits: usize, logits: usize, lse: usize, targets: usize, N: i32, V: i32, sc: f32): void {
  const sv = splat(sc);
  for (let n = 0; n < N; n++) {
    const t = load<i32>(targets + (<usize>n << 2));
    if (t < 0) continue;
    const ro = (<usize>n * <usize>V) << 2;
    const row = logits + ro;
    const drow = dlogits + ro;
    const l = load<f32>(lse + (<usize>n << 2));
    const lv = splat(l);
    let i = 0;
    for (; i + 16 <= V; i += 16) {
      const o = <usize>i << 2;
      const p0 = vexp(f32x4.sub(v128.load(row + o), lv));
      const p1 = vexp(f32x4.sub(v128.load(row + o, 16), lv));
      const p2 = vexp(f32x4.sub(v128.load(row + o, 32), lv));
      const p3 = vexp(f32x4.sub(v128.load(row + o, 48), lv));
      v128.store(drow + o, madd(sv, p0, v128.load(drow + o)));
      v128.store(drow + o, madd(sv, p1, v128.load(drow + o, 16)), 16);
      v128.store(drow + o, madd(sv, p2, v128.load(drow + o, 32)), 32);
      v128.store(drow + o, madd(sv, p3, v128.load(drow + o, 48)), 48);
    }
    for (; i + 4 <= V; i += 4) {
      const o = <usize>i << 2;
      const p = vexp(f32x4.sub(v128.load(row + o), lv));
      v128.store(drow + o, madd(sv, p, v128.load(drow + o)));
    }
    for (; i < V; i++) {
      const o = <usize>i << 2;
      store<f32>(drow + o, load<f32>(drow + o) + sc * sexp(load<f32>(row + o) - l));
    }
    const o = <usize>t << 2;
    store<f32>(drow + o, load<f32>(drow + o) - sc);
  }
}

// ---------------------------------------------------------------------------------------------------
// embedding

export function embeddingForward(out: usize, ids: usize, table: usize, N: i32, C: i32): void {
  const rb = <usize>C << 2;
  for (let n = 0; n < N; n++) {
    const id = load<i32>(ids + (<usize>n << 2));
    memory.copy(out + <usize>n * rb, table + <usize>id * rb, rb);
  }
}

export function embeddingBackward(dtable: usize, dout: usize, ids: usize, N: i32, C: i32): void {
  const rb = <usize>C << 2;
  for (let n = 0; n < N; n++) {
    const id = load<i32>(ids + (<usize>n << 2));
    const d = dtable + <usize>id * rb;
    add(d, d, dout + <usize>n * rb, C);
  }
}

// ---------------------------------------------------------------------------------------------------
// AdamW

/** one vector of AdamW's update (see adamw) */
@inline function adamwVec(p: usize, g: usize, m: usize, v: usize, b1v: v128, b2v: v128, ob1v: v128, ob2v: v128, decv: v128, stv: v128, ibv: v128, epv: v128): void {
  const gi = v128.load(g);
  const mi = madd(b1v, v128.load(m), f32x4.mul(ob1v, gi));
  const vi = madd(b2v, v128.load(v), f32x4.mul(ob2v, f32x4.mul(gi, gi)));
  v128.store(m, mi);
  v128.store(v, vi);
  const den = madd(f32x4.sqrt(vi), ibv, epv);
  v128.store(p, f32x4.sub(f32x4.mul(v128.load(p), decv), f32x4.div(f32x4.mul(stv, mi), den)));
}

export function adamw(p: usize, g: usize, m: usize, v: usize, n: i32, lr: f64, beta1: f64, beta2: f64, eps: f64, wd: f64, bc1: f64, bc2: f64): void {
  const decay = <f32>(1 - lr * wd);
  const stepSize = <f32>(lr / bc1);
  const invSqrtBc2 = <f32>(1 / Math.sqrt(bc2));
  const b1 = <f32>beta1;
  const b2 = <f32>beta2;
  const ob1 = <f32>(1 - beta1);
  const ob2 = <f32>(1 - beta2);
  const epsf = <f32>eps;
  const b1v = splat(b1), b2v = splat(b2), ob1v = splat(ob1), ob2v = splat(ob2);
  const decv = splat(decay), stv = splat(stepSize), ibv = splat(invSqrtBc2), epv = splat(epsf);
  let i = 0;
  // two vectors an iteration: their sqrt and divide chains overlap (see geluForward; 1.3x, and four
  // were no faster: from there the update is bound by memory, 28 bytes an element)
  for (; i + 8 <= n; i += 8) {
    const o = <usize>i << 2;
    adamwVec(p + o, g + o, m + o, v + o, b1v, b2v, ob1v, ob2v, decv, stv, ibv, epv);
    adamwVec(p + o + 16, g + o + 16, m + o + 16, v + o + 16, b1v, b2v, ob1v, ob2v, decv, stv, ibv, epv);
  }
  if (i + 4 <= n) {
    const o = <usize>i << 2;
    adamwVec(p + o, g + o, m + o, v + o, b1v, b2v, ob1v, ob2v, decv, stv, ibv, epv);
    i += 4;
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    const gi = load<f32>(g + o);
    const mi = b1 * load<f32>(m + o) + ob1 * gi;
    const vi = b2 * load<f32>(v + o) + ob2 * gi * gi;
    store<f32>(m + o, mi);
    store<f32>(v + o, vi);
    store<f32>(p + o, load<f32>(p + o) * decay - (stepSize * mi) / (Mathf.sqrt(vi) * invSqrtBc2 + epsf));
  }
}

// ---------------------------------------------------------------------------------------------------
// attention

// Training attention works per (b, h) on padded copies in scratch, as small matrix products done by
// one 4x8 register tile (tile4x8): Tp = T rounded up to 8, hp = hs rounded up to 8, padding zero.
//   forward:  S = Q·(sc·K)ᵀ, P = softmax(S) (causal), O = P·V
//   backward: P again from lse, dP = dO·Vᵀ, dS = P∘(dP - D)·sc, dQ = dS·K, dK = dSᵀ·Q, dV = Pᵀ·dO
// Query quad i0 (rows i0..i0+3) only needs keys below jEnd(i0) = roundup8(i0 + 4); entries above the
// diagonal inside that range are zeroed and the ones past it are never written (zero from the fill).

/**
 * c (4 rows, 8 columns; row stride ldc bytes) = Σ_{k<kn} A(r,k)·B(k,·), with A(r,k) at a + r·ars + k·aks
 * and the 8 floats of B(k,·) at b + k·brs. Inlined: attention's tiles are short (kn = head size, or
 * up to T), so the call with its nine arguments cost ~10% of attention (bench/kernel-ab.ts, 4 runs).
 */
@inline function tile4x8(c: usize, ldc: usize, a: usize, ars: usize, aks: usize, b: usize, brs: usize, kn: i32): void {
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
export function attentionForward(out: usize, lse: usize, qkv: usize, B: i32, T: i32, C: i32, nh: i32, bh0: i32, bh1: i32, scratch: usize): void {
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
  memory.fill(scratch, 0, 4 * mh + <usize>Tp * ldt);
  for (let bh = bh0; bh < bh1; bh++) {
    const b = bh / nh;
    const h = bh % nh;
    const base = qkv + <usize>b * <usize>T * rs3 + (<usize>(h * hs) << 2);
    const kb = base + (<usize>C << 2);
    const vb = base + (<usize>(2 * C) << 2);
    for (let t = 0; t < T; t++) {
      const ro = <usize>t * rs3;
      copyRow(Qb + <usize>t * ldh, base + ro, hs);
      copyRow(Vb + <usize>t * ldh, vb + ro, hs);
    }
    copyColumns(Kt, ldt, Tp, kb, rs3, T, hs, sc);
    for (let i0 = 0; i0 < T4; i0 += 4) {
      const jEnd = min(Tp, (i0 + 11) & ~7);
      const prow = Pb + <usize>i0 * ldt;
      for (let j0 = 0; j0 < jEnd; j0 += 8) tile4x8(prow + (<usize>j0 << 2), ldt, Qb + <usize>i0 * ldh, ldh, 4, Kt + (<usize>j0 << 2), ldt, hp);
      const i1 = min(i0 + 4, T);
      if (i1 - i0 == 4) causalSoftmaxQuad(prow, ldt, i0, jEnd, lse + (<usize>(bh * T + i0) << 2));
      else {
        for (let i = i0; i < i1; i++) {
          const row = Pb + <usize>i * ldt;
          const l = causalSoftmaxRow(row, i + 1, jEnd);
          store<f32>(lse + (<usize>(bh * T + i) << 2), l);
        }
      }
      for (let d0 = 0; d0 < hp; d0 += 8) tile4x8(Ob + <usize>i0 * ldh + (<usize>d0 << 2), ldh, prow, ldt, 4, Vb + (<usize>d0 << 2), ldh, jEnd);
    }
    for (let t = 0; t < T; t++) copyRow(out + ((<usize>(b * T + t) * <usize>C + <usize>(h * hs)) << 2), Ob + <usize>t * ldh, hs);
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

/** attention backward for the (b, h) pairs bh0 .. bh1-1; scratch: attentionScratchBytes */
export function attentionBackward(dqkv: usize, dout: usize, qkv: usize, out: usize, lse: usize, B: i32, T: i32, C: i32, nh: i32, bh0: i32, bh1: i32, scratch: usize): void {
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
  memory.fill(scratch, 0, 8 * mh + 2 * <usize>Tp * ldt);
  const sv = splat(sc);
  for (let bh = bh0; bh < bh1; bh++) {
    const b = bh / nh;
    const h = bh % nh;
    const hoff = <usize>(h * hs) << 2;
    const base = qkv + <usize>b * <usize>T * rs3 + hoff;
    const dbase = dqkv + <usize>b * <usize>T * rs3 + hoff;
    const obase = (<usize>(b * T) * <usize>C << 2) + hoff;
    for (let t = 0; t < T; t++) {
      const ro = <usize>t * rs3;
      copyRow(Qb + <usize>t * ldh, base + ro, hs);
      copyRow(Kb + <usize>t * ldh, base + cb + ro, hs);
      copyRow(dOb + <usize>t * ldh, dout + obase + <usize>t * cb, hs);
    }
    copyColumns(Kt, ldt, Tp, base + cb, rs3, T, hs, sc);
    copyColumns(Vt, ldt, Tp, base + 2 * cb, rs3, T, hs, 1);
    for (let i0 = 0; i0 < T4; i0 += 4) {
      const jEnd = min(Tp, (i0 + 11) & ~7);
      const prow = Pb + <usize>i0 * ldt;
      const dsrow = dSb + <usize>i0 * ldt;
      for (let j0 = 0; j0 < jEnd; j0 += 8) {
        const jo = <usize>j0 << 2;
        tile4x8(prow + jo, ldt, Qb + <usize>i0 * ldh, ldh, 4, Kt + jo, ldt, hp);
        tile4x8(dsrow + jo, ldt, dOb + <usize>i0 * ldh, ldh, 4, Vt + jo, ldt, hp);
      }
      const i1 = min(i0 + 4, T);
      for (let i = i0; i < i1; i++) {
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
      for (let d0 = 0; d0 < hp; d0 += 8) tile4x8(dQb + <usize>i0 * ldh + (<usize>d0 << 2), ldh, dsrow, ldt, 4, Kb + (<usize>d0 << 2), ldh, jEnd);
    }
    // dK = dSᵀ·Q and dV = Pᵀ·dO: key quad j0 collects the queries i >= j0
    for (let j0 = 0; j0 < T4; j0 += 4) {
      const off = <usize>j0 * ldt + (<usize>j0 << 2);
      for (let d0 = 0; d0 < hp; d0 += 8) {
        const o = <usize>j0 * ldh + (<usize>d0 << 2);
        tile4x8(dKb + o, ldh, dSb + off, 4, ldt, Qb + o, ldh, T4 - j0);
        tile4x8(dVb + o, ldh, Pb + off, 4, ldt, dOb + o, ldh, T4 - j0);
      }
    }
    for (let t = 0; t < T; t++) {
      const d = dbase + <usize>t * rs3;
      const so = <usize>t * ldh;
      addRow(d, dQb + so, hs);
      addRow(d + cb, dKb + so, hs);
      addRow(d + 2 * cb, dVb + so, hs);
    }
  }
}

/** bytes of scratch attentionCached needs per thread: the scores of every head for one query row */
export function attentionCachedScratchBytes(T: i32, nh: i32): i32 {
  return (T + 1) * nh * 4;
}

/**
 * Cached attention (generation) for heads h0 .. h1-1: query row i of qkv (Tn, 3C) at position pos0+i
 * against the cached keys and values 0 .. pos0+i (rows of C floats; the row pos0+i is already there).
 * Both passes stream the cache rows in memory order, every head of a row at once (walking one head's
 * keys with a stride of C floats took 1.4-2x as long): scores s[h][j] = q_h·k_j,h · scale (scratch:
 * (h1-h0) × nk floats), a softmax per head, then out_h = Σ_j s[h][j] v_j,h / Σ_j s[h][j] with four value
 * rows per pass over out.
 */
export function attentionCached(out: usize, qkv: usize, kCache: usize, vCache: usize, Tn: i32, pos0: i32, C: i32, nh: i32, h0: i32, h1: i32, scratch: usize): void {
  const hs = C / nh;
  const sc = <f32>(1 / Math.sqrt(<f64>hs));
  const cb = <usize>C << 2;
  const hb = <usize>hs << 2;
  const hs4 = hs & ~3;
  const nhh = h1 - h0;
  const base = <usize>h0 * hb;
  for (let i = 0; i < Tn; i++) {
    const nk = pos0 + i + 1;
    const sb = <usize>nk << 2;
    const q = qkv + <usize>i * 3 * cb + base;
    const o = out + <usize>i * cb + base;
    // scores, key rows in memory order
    let kp = kCache + base;
    for (let j = 0; j < nk; j++) {
      let qh = q;
      let kh = kp;
      let sp = scratch + (<usize>j << 2);
      for (let h = 0; h < nhh; h++) {
        store<f32>(sp, dot(qh, kh, hs) * sc);
        qh += hb;
        kh += hb;
        sp += sb;
      }
      kp += cb;
    }
    // softmax numerators per head; 1 / sum (after the scores in scratch) is applied at the end
    const inv = scratch + <usize>nhh * sb;
    for (let h = 0; h < nhh; h++) {
      const sh = scratch + <usize>h * sb;
      const sum = expShift(sh, sh, nk, rowMax(sh, nk));
      store<f32>(inv + (<usize>h << 2), <f32>(1 / sum));
    }
    memory.fill(o, 0, <usize>nhh * hb);
    // values: out_h += Σ_j p[h][j] v_j,h, four rows at a time
    let vp = vCache + base;
    let j = 0;
    for (; j + 4 <= nk; j += 4) {
      let oh = o;
      let vh = vp;
      let sp = scratch + (<usize>j << 2);
      for (let h = 0; h < nhh; h++) {
        const p0 = v128.load32_splat(sp);
        const p1 = v128.load32_splat(sp, 4);
        const p2 = v128.load32_splat(sp, 8);
        const p3 = v128.load32_splat(sp, 12);
        let d = 0;
        for (; d < hs4; d += 4) {
          const dd = <usize>d << 2;
          let acc = madd(p0, v128.load(vh + dd), v128.load(oh + dd));
          acc = madd(p1, v128.load(vh + cb + dd), acc);
          acc = madd(p2, v128.load(vh + 2 * cb + dd), acc);
          acc = madd(p3, v128.load(vh + 3 * cb + dd), acc);
          v128.store(oh + dd, acc);
        }
        for (; d < hs; d++) {
          const dd = <usize>d << 2;
          let a = load<f32>(oh + dd);
          a += load<f32>(sp) * load<f32>(vh + dd);
          a += load<f32>(sp, 4) * load<f32>(vh + cb + dd);
          a += load<f32>(sp, 8) * load<f32>(vh + 2 * cb + dd);
          a += load<f32>(sp, 12) * load<f32>(vh + 3 * cb + dd);
          store<f32>(oh + dd, a);
        }
        oh += hb;
        vh += hb;
        sp += sb;
      }
      vp += 4 * cb;
    }
    for (; j < nk; j++) {
      let oh = o;
      let vh = vp;
      let sp = scratch + (<usize>j << 2);
      for (let h = 0; h < nhh; h++) {
        const p0 = v128.load32_splat(sp);
        let d = 0;
        for (; d < hs4; d += 4) {
          const dd = <usize>d << 2;
          v128.store(oh + dd, madd(p0, v128.load(vh + dd), v128.load(oh + dd)));
        }
        for (; d < hs; d++) {
          const dd = <usize>d << 2;
          store<f32>(oh + dd, load<f32>(oh + dd) + load<f32>(sp) * load<f32>(vh + dd));
        }
        oh += hb;
        vh += hb;
        sp += sb;
      }
      vp += cb;
    }
    // normalise
    let oh = o;
    for (let h = 0; h < nhh; h++) {
      const r = load<f32>(inv + (<usize>h << 2));
      const rv = splat(r);
      let d = 0;
      for (; d < hs4; d += 4) {
        const dd = <usize>d << 2;
        v128.store(oh + dd, f32x4.mul(v128.load(oh + dd), rv));
      }
      for (; d < hs; d++) {
        const dd = <usize>d << 2;
        store<f32>(oh + dd, load<f32>(oh + dd) * r);
      }
      oh += hb;
    }
  }
}

// ---------------------------------------------------------------------------------------------------
// fused one-token blocks (generation): one thread's share of a transformer block's attention or MLP
// for a single row, so that a block costs one pool round trip instead of one per matmul. Every share
// computes a partial y over its slice of the hidden units (MLP) or heads (attention); the caller adds
// the partials and the output bias. With one share the arithmetic is exactly that of the separate
// kernels (matmulRows, addBias, the activation, attentionCached) in the same order.

/**
 * Hidden units j0..j1 of one row's MLP: h[j] = act(a·wfc[:, j] + bfc[j]), then y (C) = Σ_{j0<=j<j1}
 * h[j] wproj[j, :] (no bias). a (C), wfc (C,H), bfc (H), wproj (H,C), h (H); act: 0 GELU, 1 ReLU.
 */
export function mlpRowPart(y: usize, h: usize, a: usize, wfc: usize, bfc: usize, wproj: usize, C: i32, H: i32, j0: i32, j1: i32, relu: i32): void {
  rowTimesB(h, a, 4, wfc, C, H, j0, j1, false);
  const hj = h + (<usize>j0 << 2);
  addBias(hj, bfc + (<usize>j0 << 2), 1, j1 - j0);
  if (relu != 0) reluForward(hj, hj, j1 - j0);
  else geluForward(hj, hj, j1 - j0);
  rowTimesB(y, hj, 4, wproj + <usize>j0 * (<usize>C << 2), j1 - j0, C, 0, C, false);
}

/**
 * Heads h0..h1 of one new token's attention at position pos: their q, k, v columns of
 * qkv (3C) = a·wattn + battn, k and v stored in row pos of kCache / vCache, attention over rows
 * 0..pos into att (C), then y (C) = Σ over the heads' channels c of att[c] wproj[c, :] (no bias).
 * scratch: attentionCachedScratchBytes(pos + 1, nh).
 */
export function attentionRowPart(y: usize, att: usize, qkv: usize, a: usize, wattn: usize, battn: usize, kCache: usize, vCache: usize, pos: i32, wproj: usize, C: i32, nh: i32, h0: i32, h1: i32, scratch: usize): void {
  const hs = C / nh;
  const c0 = h0 * hs;
  const n = (h1 - h0) * hs;
  // q, k and v columns of these heads in one sweep over wattn's rows (all heads: one range of 3C)
  if (n == C) {
    rowTimesB(qkv, a, 4, wattn, C, 3 * C, 0, 3 * C, false);
    addBias(qkv, battn, 1, 3 * C);
  } else {
    rowTimesB(qkv, a, 4, wattn, C, 3 * C, c0, c0 + n, false, 3, C);
    for (let part = 0; part < 3; part++) {
      const j0 = part * C + c0;
      addBias(qkv + (<usize>j0 << 2), battn + (<usize>j0 << 2), 1, n);
    }
  }
  const row = (<usize>pos * <usize>C + <usize>c0) << 2;
  memory.copy(kCache + row, qkv + (<usize>(C + c0) << 2), <usize>n << 2);
  memory.copy(vCache + row, qkv + (<usize>(2 * C + c0) << 2), <usize>n << 2);
  attentionCached(att, qkv, kCache, vCache, 1, pos, C, nh, h0, h1, scratch);
  rowTimesB(y, att + (<usize>c0 << 2), 4, wproj + <usize>c0 * (<usize>C << 2), n, C, 0, C, false);
}
