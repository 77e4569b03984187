// Matrix products: out (M,N) (+)= a (M,K) · b (K,N) in the three layouts of matmul-tiles.as
// (a·b, a·bᵀ, aᵀ·b), with an optional bias added as each tile is stored.
//   matmul      the blocked product (packing + register tiles, matmul-tiles.as), for training's
//               many-row products; scratch: matmulScratchBytes()
//   matmulRows  columns j0..j1 of few-row products without packing (generation: one token's row
//               against a weight matrix is bound by memory bandwidth, not arithmetic)
// The row kernels (rowTimesB, rowTimesBT) and dot are also used by attention and decode.

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
 * thread's q, k and v columns), each column with exactly the arithmetic of a one-range call. With
 * rows > 1, rows of a (rsA bytes apart) and of out (ldo bytes apart) share the sweep (a batched
 * decode step: B is read from memory once for all of them, the other rows find it in cache), each
 * row with exactly the arithmetic of a one-row call: a row's bits do not depend on the batch. Two
 * or more rows take rowsTimesB (matmul-rows.as: the same arithmetic in register tiles; scratch:
 * rowsScratchBytes(rows, K)), from `packed` where given (packRowsB's copy of b; 0: none), which one
 * row does not read (its eight streams over row-major B are faster than the panels).
 */
function rowTimesB(out: usize, a: usize, csA: usize, b: usize, K: i32, ldb: i32, j0: i32, j1: i32, add: bool, ranges: i32 = 1, rstride: i32 = 0, rows: i32 = 1, rsA: usize = 0, ldo: usize = 0, scratch: usize = 0, packed: usize = 0): void {
  if (rows > 1) {
    rowsTimesB(out, a, csA, b, K, ldb, j0, j1, add, ranges, rstride, rows, rsA, ldo, scratch, packed);
    return;
  }
  const rs = <usize>ldb << 2;
  const n = j1 - j0;
  const n4 = n & ~3;
  const n8 = n & ~7;
  const roff = <usize>rstride << 2;
  if (!add) for (let i = 0; i < rows; i++) for (let r = 0; r < ranges; r++) memory.fill(out + <usize>i * ldo + (<usize>j0 << 2) + <usize>r * roff, 0, <usize>n << 2);
  let pb0 = b + (<usize>j0 << 2);
  let pa = a;
  // the eight streams (see above): block i holds rows i·Kb .. (i+1)·Kb - 1
  const Kb = K >> 3;
  const rs8 = <usize>Kb * rs; // from one stream to the next in B
  const cs8 = <usize>Kb * csA; // and in a
  for (let kk = 0; kk < Kb; kk++) {
    for (let i = 0; i < rows; i++) {
    const ai = pa + <usize>i * rsA;
    const x0 = v128.load32_splat(ai);
    const x1 = v128.load32_splat(ai + cs8);
    const x2 = v128.load32_splat(ai + 2 * cs8);
    const x3 = v128.load32_splat(ai + 3 * cs8);
    const x4 = v128.load32_splat(ai + 4 * cs8);
    const x5 = v128.load32_splat(ai + 5 * cs8);
    const x6 = v128.load32_splat(ai + 6 * cs8);
    const x7 = v128.load32_splat(ai + 7 * cs8);
    for (let r = 0; r < ranges; r++) {
      const o0 = out + <usize>i * ldo + (<usize>j0 << 2) + <usize>r * roff;
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
        for (let q = 0; q < 8; q++) v += load<f32>(ai + <usize>q * cs8) * load<f32>(pb + <usize>q * rs8 + jo);
        store<f32>(o0 + jo, v);
      }
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
    for (let i = 0; i < rows; i++) {
    const ai = pa + <usize>i * rsA;
    const x0 = v128.load32_splat(ai);
    const x1 = v128.load32_splat(ai + csA);
    const x2 = v128.load32_splat(ai + 2 * csA);
    const x3 = v128.load32_splat(ai + 3 * csA);
    for (let r = 0; r < ranges; r++) {
      const o0 = out + <usize>i * ldo + (<usize>j0 << 2) + <usize>r * roff;
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
        v += load<f32>(ai) * load<f32>(pb + jo);
        v += load<f32>(ai + csA) * load<f32>(pb + rs + jo);
        v += load<f32>(ai + 2 * csA) * load<f32>(pb + 2 * rs + jo);
        v += load<f32>(ai + 3 * csA) * load<f32>(pb + 3 * rs + jo);
        store<f32>(o0 + jo, v);
      }
    }
    }
    pa += 4 * csA;
    pb0 += 4 * rs;
  }
  for (; k < K; k++) {
    for (let i = 0; i < rows; i++) {
    const ai = pa + <usize>i * rsA;
    const x0 = v128.load32_splat(ai);
    for (let r = 0; r < ranges; r++) {
      const o0 = out + <usize>i * ldo + (<usize>j0 << 2) + <usize>r * roff;
      const pb = pb0 + <usize>r * roff;
      let j = 0;
      for (; j < n4; j += 4) {
        const jo = <usize>j << 2;
        v128.store(o0 + jo, madd(x0, v128.load(pb + jo), v128.load(o0 + jo)));
      }
      for (; j < n; j++) {
        const jo = <usize>j << 2;
        store<f32>(o0 + jo, load<f32>(o0 + jo) + load<f32>(ai) * load<f32>(pb + jo));
      }
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
 * floats, at ~7 GB/s); then the last n % 8 rows four and one at a time. With rows > 1, rows of a
 * (rsA bytes apart) and of out (ldo bytes apart) take their dot products with each group of b's rows
 * in turn (read from memory once, then from cache), each with exactly a one-row call's arithmetic.
 */
function rowTimesBT(out0: usize, a0: usize, b: usize, K: i32, j0: i32, j1: i32, add: bool, rows: i32 = 1, rsA: usize = 0, ldo: usize = 0): void {
  const rs = <usize>K << 2;
  const K4 = K & ~3;
  const nb = (j1 - j0) >> 3;
  const bs = <usize>nb * rs; // from one stream to the next in b
  const os = <usize>nb << 2; // and in out
  for (let j = j0; j < j0 + nb; j++) {
    const p0 = b + <usize>j * rs;
    // two rows at a time: each vector of b loaded once for both (dots2x4), four of b's rows a sweep
    let i = 0;
    for (; i + 2 <= rows; i += 2) {
      const o = out0 + <usize>i * ldo + (<usize>j << 2);
      const a = a0 + <usize>i * rsA;
      dots2x4(o, ldo, os, a, rsA, p0, bs, K, add);
      dots2x4(o + 4 * os, ldo, os, a, rsA, p0 + 4 * bs, bs, K, add);
    }
    for (; i < rows; i++) {
    const a = a0 + <usize>i * rsA;
    const out = out0 + <usize>i * ldo;
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
  }
  let j = j0 + 8 * nb;
  for (; j + 4 <= j1; j += 4) {
    const p0 = b + <usize>j * rs;
    for (let i = 0; i < rows; i++) {
    const a = a0 + <usize>i * rsA;
    const out = out0 + <usize>i * ldo;
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
  }
  for (; j < j1; j++) {
    for (let i = 0; i < rows; i++) storeOne(out0 + <usize>i * ldo + (<usize>j << 2), dot(a0 + <usize>i * rsA, b + <usize>j * rs, K), add);
  }
}

/**
 * rowTimesBT's eight-stream dot products for two rows of a (rsA bytes apart, out rows ldo apart) and
 * four rows of b (p, p + bs, ...; out os apart): each of the eight with exactly the arithmetic of a
 * one-row call (its own four-lane sum over k, hsum4, then the K % 4 tail), b's vectors loaded once.
 */
function dots2x4(o: usize, ldo: usize, os: usize, a: usize, rsA: usize, p: usize, bs: usize, K: i32, add: bool): void {
  const K4 = K & ~3;
  let s00 = f32x4.splat(0), s01 = f32x4.splat(0), s02 = f32x4.splat(0), s03 = f32x4.splat(0);
  let s10 = f32x4.splat(0), s11 = f32x4.splat(0), s12 = f32x4.splat(0), s13 = f32x4.splat(0);
  let k = 0;
  for (; k < K4; k += 4) {
    const ko = <usize>k << 2;
    const x0 = v128.load(a + ko);
    const x1 = v128.load(a + rsA + ko);
    const q = p + ko;
    let v = v128.load(q);
    s00 = madd(x0, v, s00);
    s10 = madd(x1, v, s10);
    v = v128.load(q + bs);
    s01 = madd(x0, v, s01);
    s11 = madd(x1, v, s11);
    v = v128.load(q + 2 * bs);
    s02 = madd(x0, v, s02);
    s12 = madd(x1, v, s12);
    v = v128.load(q + 3 * bs);
    s03 = madd(x0, v, s03);
    s13 = madd(x1, v, s13);
  }
  let r0 = hsum4(s00, s01, s02, s03);
  let r1 = hsum4(s10, s11, s12, s13);
  for (; k < K; k++) {
    const ko = <usize>k << 2;
    r0 = f32x4.add(r0, tail4(load<f32>(a + ko), p + ko, bs));
    r1 = f32x4.add(r1, tail4(load<f32>(a + rsA + ko), p + ko, bs));
  }
  storeOne(o, f32x4.extract_lane(r0, 0), add);
  storeOne(o + os, f32x4.extract_lane(r0, 1), add);
  storeOne(o + 2 * os, f32x4.extract_lane(r0, 2), add);
  storeOne(o + 3 * os, f32x4.extract_lane(r0, 3), add);
  storeOne(o + ldo, f32x4.extract_lane(r1, 0), add);
  storeOne(o + ldo + os, f32x4.extract_lane(r1, 1), add);
  storeOne(o + ldo + 2 * os, f32x4.extract_lane(r1, 2), add);
  storeOne(o + ldo + 3 * os, f32x4.extract_lane(r1, 3), add);
}

/**
 * Columns j0..j1 of out (M,N) (+)= a·b for a few rows (token-by-token generation, one row per
 * sequence): no packing, B streamed from memory once for all M rows, each row with exactly the
 * arithmetic of a one-row call (its bits do not depend on M). Threads split the columns (or, for
 * a·b and aᵀ·b, the caller splits K). Same layouts as matmul. scratch: rowsScratchBytes(M, K).
 */
export function matmulRows(kind: i32, out: usize, a: usize, b: usize, M: i32, K: i32, N: i32, lda: i32, accumulate: i32, j0: i32, j1: i32, scratch: usize): void {
  const acc = accumulate != 0;
  const ldc = <usize>N << 2;
  const rsA: usize = kind == 2 ? 4 : <usize>lda << 2;
  const csA: usize = kind == 2 ? <usize>lda << 2 : 4;
  if (kind == 1) rowTimesBT(out, a, b, K, j0, j1, acc, M, rsA, ldc);
  else rowTimesB(out, a, csA, b, K, N, j0, j1, acc, 1, 0, M, rsA, ldc, scratch);
}

/**
 * out (M,N) = a·b for M >= 2 rows of a (K wide) from bp = packRowsB's copy of b (K x N): what a
 * batched decode step's products do with a server's packed weights (decode.as passes the copies to
 * rowTimesB), callable alone for bench/kernel-ab.ts --packed and tests. scratch: rowsScratchBytes(M, K).
 */
export function matmulRowsPacked(out: usize, a: usize, bp: usize, M: i32, K: i32, N: i32, scratch: usize): void {
  rowTimesB(out, a, 4, 0, K, N, 0, N, false, 1, 0, M, <usize>K << 2, <usize>N << 2, scratch, bp);
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
    matmulRows(kind, out, a, b, M, K, N, lda, accumulate, 0, N, scratch);
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

