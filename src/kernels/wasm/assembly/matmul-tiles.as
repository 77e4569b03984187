// The blocked matmul's packing and register tiles (matmul.as drives them).
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

