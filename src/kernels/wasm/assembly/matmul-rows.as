// The decode's products of several rows against one weight matrix (a batched decode step: one new
// token of each of R sequences), register-tiled: rowTimesB's arithmetic (matmul.as) for R >= 2 rows.
//
// rowTimesB gives every element of out the same chain of multiply-adds in the same order, whatever
// the batch: out[j] = (((0 + a(k₀)·b[k₀][j]) + a(k₁)·b[k₁][j]) + ...) over the rows of B in its "step"
// order (below), one madd per step for the columns of the vector part (j - j0 < n & ~3), a scalar
// multiply then add for the last n % 4 columns. A row at a time that loop re-reads B (from cache)
// and its row of out once per pass for every row of the batch, ~1/3 of the FMA unit's peak. Here a
// register tile of 4 rows x 8 columns of out stays in registers over many steps: each vector of B is
// loaded once for four rows, each a value once (a splat) for eight columns, and every element still
// gets exactly its chain of steps in the same order, so each row's bits equal a one-row call's.
//
// Step order over B's K rows: with Kb = K >> 3, steps 8·kk + q (kk < Kb, q < 8) take row q·Kb + kk
// (eight sequential streams through B, see rowTimesB), then the rows 8·Kb .. K-1 in order.
// a's rows are packed first (scratch: rowsScratchBytes) into groups of four, step-major with the four
// rows' values side by side (a zero row pads the last group), so a tile's splats are at fixed offsets.
// The passes are done in chunks over all column tiles, so a chunk's rows of B stay in cache while its
// columns are walked: a chunk of one pass streams B from memory in eight forward streams (as a row
// alone does) but loads and stores the tiles of out every 8 steps; longer chunks the other way round.
//
// B packed once (packRowsB, where the weights are fixed: a server's model) is read instead where the
// caller passes it: chunks of 256 steps, each chunk's 4-column panels side by side, a panel's steps
// contiguous (16 bytes a step), so a product reads B as one forward stream (rowsTimesPacked). There
// the tile is 8 rows x 4 columns held transposed (rowsTile8x4: each accumulator one column of four
// rows), so each vector of B is read once for eight rows, and a chunk of eight rows' packed a stays
// in L1 over the chunk's panels (a packed in groups of eight rows there: packRows8). Each element
// keeps its chain of madds in the same order: the same bits.

/**
 * passes (8 steps each) per chunk from more than 4 rows on (below: one). Measured in a batched decode
 * step of the 384-wide model (tokens per CPU-second, chunks in turns, loaded machine): 4 rows ~700
 * with 1 pass against ~560 with 4 or 8; 16 rows ~900-1020 with 1 against ~1020-1100 with 4 or 8.
 * 5-8 rows (a thread's share of a 16-row step split over 2): bench/kernel-ab.ts --rows on the
 * model's shapes, 1 pass vs 4 in turns, 4 passes 1.07-1.32x faster (load 7-12).
 */
const ROW_CHUNK: i32 = 4;

/**
 * Passes per chunk where B's tiles are copied (below): the copy costs a load and a store per vector
 * of B once a chunk, so longer chunks; out's tiles are loaded and stored once a chunk too.
 */
const COPY_CHUNK: i32 = 8;
/** bytes of a copied tile's steps: a chunk of COPY_CHUNK passes of 8 steps, 32 bytes a step */
const TILE_COPY_BYTES: i32 = 32 * 8 * COPY_CHUNK;

/**
 * Whether a chunk of four passes (32 rows of B: rows rs bytes apart, streams rs8 apart) puts more
 * than 12 lines in one set of the L1 cache (64 sets of 64-byte lines, so addresses 4 KiB apart share
 * a set; 12 ways on Zen 4/5). The row groups re-read a tile's steps from L1, and a crowded set evicts
 * them before the next group: rows 12 KiB apart (GPT-2's 768 x 3072 MLP matrix) put all 32 in one set
 * and ran at ~21 GF/s against ~45 for 768 x 2304 (bench/kernel-ab.ts --rows, 16 rows). Then each
 * tile's steps of a chunk are first copied side by side (34 GF/s there, quiet, load ~6).
 */
function crowdsL1(rs: usize, rs8: usize): bool {
  for (let i = 0; i < 32; i++) {
    const set = ((<usize>(i & 7) * rs8 + <usize>(i >> 3) * rs) >> 6) & 63;
    let same = 0;
    for (let m = 0; m < 32; m++) if ((((<usize>(m & 7) * rs8 + <usize>(m >> 3) * rs) >> 6) & 63) == set) same++;
    if (same > 12) return true;
  }
  return false;
}

/** bytes of scratch rowsTimesB needs for R rows of K: a's rows packed in groups of four, then a tile's copied steps */
export function rowsScratchBytes(R: i32, K: i32): i32 {
  return ((R + 3) >> 2) * K * 16 + TILE_COPY_BYTES;
}

/** a's rows in groups of four, step-major (see above): group g, step s at dst + (g·K + s)·16 + r·4 */
function packRows(dst: usize, a: usize, csA: usize, rsA: usize, rows: i32, K: i32): void {
  const Kb = K >> 3;
  const groups = (rows + 3) >> 2;
  for (let i = 0; i < groups * 4; i++) {
    const d = dst + <usize>(i >> 2) * (<usize>K << 4) + (<usize>(i & 3) << 2);
    if (i >= rows) {
      for (let s = 0; s < K; s++) store<f32>(d + (<usize>s << 4), 0);
      continue;
    }
    const ai = a + <usize>i * rsA;
    for (let s = 0; s < K; s++) {
      const k = s < 8 * Kb ? (s & 7) * Kb + (s >> 3) : s;
      store<f32>(d + (<usize>s << 4), load<f32>(ai + <usize>k * csA));
    }
  }
}

/**
 * One tile of out (mr <= 4 rows ldo bytes apart from o, 8 columns) over `groups` x `size` steps:
 * packed a from ap (16 bytes a step), B's vectors from bq, bq + inner, ... (`size` of them), then
 * from bq + outer, and so on. The tile is read from out and written back.
 */
function rowsTile4x8(o: usize, ldo: usize, mr: i32, ap: usize, bq: usize, groups: i32, size: i32, inner: usize, outer: usize): void {
  const z = f32x4.splat(0);
  let c00 = v128.load(o), c01 = v128.load(o, 16);
  let c10 = z, c11 = z, c20 = z, c21 = z, c30 = z, c31 = z;
  if (mr > 1) {
    c10 = v128.load(o + ldo);
    c11 = v128.load(o + ldo, 16);
  }
  if (mr > 2) {
    c20 = v128.load(o + 2 * ldo);
    c21 = v128.load(o + 2 * ldo, 16);
  }
  if (mr > 3) {
    c30 = v128.load(o + 3 * ldo);
    c31 = v128.load(o + 3 * ldo, 16);
  }
  for (let g = 0; g < groups; g++) {
    let p = bq;
    for (let q = 0; q < size; q++) {
      const b0 = v128.load(p);
      const b1 = v128.load(p, 16);
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
      p += inner;
    }
    bq += outer;
  }
  v128.store(o, c00);
  v128.store(o, c01, 16);
  if (mr > 1) {
    v128.store(o + ldo, c10);
    v128.store(o + ldo, c11, 16);
  }
  if (mr > 2) {
    v128.store(o + 2 * ldo, c20);
    v128.store(o + 2 * ldo, c21, 16);
  }
  if (mr > 3) {
    v128.store(o + 3 * ldo, c30);
    v128.store(o + 3 * ldo, c31, 16);
  }
}

/** rowsTile4x8 for 4 columns (the vector part's last n % 8) */
function rowsTile4x4(o: usize, ldo: usize, mr: i32, ap: usize, bq: usize, groups: i32, size: i32, inner: usize, outer: usize): void {
  const z = f32x4.splat(0);
  let c0 = v128.load(o);
  let c1 = mr > 1 ? v128.load(o + ldo) : z;
  let c2 = mr > 2 ? v128.load(o + 2 * ldo) : z;
  let c3 = mr > 3 ? v128.load(o + 3 * ldo) : z;
  for (let g = 0; g < groups; g++) {
    let p = bq;
    for (let q = 0; q < size; q++) {
      const b0 = v128.load(p);
      c0 = madd(v128.load32_splat(ap), b0, c0);
      c1 = madd(v128.load32_splat(ap, 4), b0, c1);
      c2 = madd(v128.load32_splat(ap, 8), b0, c2);
      c3 = madd(v128.load32_splat(ap, 12), b0, c3);
      ap += 16;
      p += inner;
    }
    bq += outer;
  }
  v128.store(o, c0);
  if (mr > 1) v128.store(o + ldo, c1);
  if (mr > 2) v128.store(o + 2 * ldo, c2);
  if (mr > 3) v128.store(o + 3 * ldo, c3);
}

/** one scalar column of mr rows (the last n % 4 columns): a multiply then an add per step, as a row alone */
function rowsColumn(o: usize, ldo: usize, mr: i32, ap: usize, bq: usize, groups: i32, size: i32, inner: usize, outer: usize): void {
  for (let r = 0; r < mr; r++) {
    const po = o + <usize>r * ldo;
    let v = load<f32>(po);
    let a = ap + (<usize>r << 2);
    let b = bq;
    for (let g = 0; g < groups; g++) {
      let p = b;
      for (let q = 0; q < size; q++) {
        v += load<f32>(a) * load<f32>(p);
        a += 16;
        p += inner;
      }
      b += outer;
    }
    store<f32>(po, v);
  }
}

/**
 * rowTimesB (matmul.as) for rows >= 2: out[i][j0..j1) (+)= Σ_k a_i(k)·b[k·ldb + j] for rows i of a
 * (rsA bytes apart, csA along k) and of out (ldo bytes apart), column ranges [j0, j1) + r·rstride
 * (r < ranges), each element with a one-row call's arithmetic (see above). scratch: rowsScratchBytes.
 * packed: packRowsB's copy of these K rows of B (ldb columns), or 0.
 */
function rowsTimesB(out: usize, a: usize, csA: usize, b: usize, K: i32, ldb: i32, j0: i32, j1: i32, add: bool, ranges: i32, rstride: i32, rows: i32, rsA: usize, ldo: usize, scratch: usize, packed: usize): void {
  if (packed != 0 && ((j0 | j1 | rstride | ldb) & 3) == 0) {
    rowsTimesPacked(out, a, csA, rsA, ldo, packed, K, ldb, rows, add, scratch, j0, j1, ranges, rstride);
    return;
  }
  const rs = <usize>ldb << 2;
  const n = j1 - j0;
  const n4 = n & ~3;
  const n8 = n & ~7;
  const roff = <usize>rstride << 2;
  const Kb = K >> 3;
  const rs8 = <usize>Kb * rs;
  const groups = (rows + 3) >> 2;
  const gb = <usize>K << 4; // from one packed group of a to the next
  const copy = rows > 4 && crowdsL1(rs, rs8);
  const most = rows <= 4 ? 1 : copy ? COPY_CHUNK : ROW_CHUNK;
  const tcopy = scratch + <usize>groups * gb;
  if (!add) for (let i = 0; i < rows; i++) for (let r = 0; r < ranges; r++) memory.fill(out + <usize>i * ldo + (<usize>j0 << 2) + <usize>r * roff, 0, <usize>n << 2);
  packRows(scratch, a, csA, rsA, rows, K);
  // the phases: chunks of passes (eight streams, B's vectors rs8 apart within a pass), then the
  // rows after the eight blocks one after the other
  for (let s0 = 0; s0 < K; ) {
    const tail = s0 >= 8 * Kb;
    const passes = tail ? 1 : min(most, Kb - (s0 >> 3));
    const size = tail ? K - s0 : 8;
    const inner = tail ? rs : rs8;
    const k0 = tail ? s0 : s0 >> 3; // B's row of the phase's first step
    for (let r = 0; r < ranges; r++) {
      const oc = out + (<usize>j0 << 2) + <usize>r * roff;
      const bc = b + (<usize>j0 << 2) + <usize>r * roff + <usize>k0 * rs;
      // column tiles outside, row groups inside: a tile's steps of B stay in L1 for the groups
      for (let j = 0; j < n; j += j < n8 ? 8 : j < n4 ? 4 : 1) {
        const bj = bc + (<usize>j << 2);
        if (copy && j < n8) {
          // the tile's steps of B side by side (its rows would evict each other from L1 between groups)
          let d = tcopy;
          let src = bj;
          for (let pass = 0; pass < passes; pass++) {
            let p = src;
            for (let q = 0; q < size; q++) {
              v128.store(d, v128.load(p));
              v128.store(d, v128.load(p, 16), 16);
              d += 32;
              p += inner;
            }
            src += rs;
          }
          for (let g = 0; g < groups; g++) {
            const o = oc + <usize>(4 * g) * ldo + (<usize>j << 2);
            rowsTile4x8(o, ldo, min(4, rows - 4 * g), scratch + <usize>g * gb + (<usize>s0 << 4), tcopy, 1, passes * size, 32, 0);
          }
          continue;
        }
        for (let g = 0; g < groups; g++) {
          const mr = min(4, rows - 4 * g);
          const o = oc + <usize>(4 * g) * ldo + (<usize>j << 2);
          const ap = scratch + <usize>g * gb + (<usize>s0 << 4);
          if (j < n8) rowsTile4x8(o, ldo, mr, ap, bj, passes, size, inner, rs);
          else if (j < n4) rowsTile4x4(o, ldo, mr, ap, bj, passes, size, inner, rs);
          else rowsColumn(o, ldo, mr, ap, bj, passes, size, inner, rs);
        }
      }
    }
    s0 += passes * size;
  }
}

/**
 * a's rows for rowsTimesPacked, step-major (the step order above) in groups of eight rows: group g
 * (rows 8g .. 8g + 7) at dst + 2g·K·16, step s at + s·32, rows 8g .. 8g + 3 side by side, then the
 * next four (so rowsTile8x4 reads a step's eight values from one pointer: two loads, no second
 * pointer for the loop to keep), zero rows padding a last group of 5-7; a last group of 1-4 rows as
 * packRows's groups of four (16 bytes a step, zero-padded). No more bytes than packRows's groups.
 */
function packRows8(dst: usize, a: usize, csA: usize, rsA: usize, rows: i32, K: i32): void {
  const Kb = K >> 3;
  const gb = <usize>K << 4;
  for (let i = 0; i < rows; i += 8) {
    const mr = min(8, rows - i);
    const d0 = dst + <usize>(i >> 2) * gb;
    const ai = a + <usize>i * rsA;
    if (mr == 8 && csA == 4) {
      packEight(d0, ai, rsA, K);
      continue;
    }
    const w = mr > 4 ? 8 : 4;
    const ss: usize = mr > 4 ? 32 : 16;
    for (let r = 0; r < w; r++) {
      const d = d0 + (<usize>r << 2);
      if (r >= mr) {
        for (let s = 0; s < K; s++) store<f32>(d + <usize>s * ss, 0);
        continue;
      }
      const ar = ai + <usize>r * rsA;
      for (let s = 0; s < K; s++) {
        const k = s < 8 * Kb ? (s & 7) * Kb + (s >> 3) : s;
        store<f32>(d + <usize>s * ss, load<f32>(ar + <usize>k * csA));
      }
    }
  }
}

/**
 * packRows8's group of eight full rows (contiguous along k, rows rsA bytes apart) into d: four k of
 * a stream (k = q·Kb + kk .. + 3, steps 8kk + q, 8(kk + 1) + q, ...) of four rows at a time, loaded
 * as four vectors and transposed into the four steps' vectors; the last Kb % 4 of each stream and
 * the K % 8 steps after the streams one value at a time. Each value lands where packRows8's
 * one-at-a-time loop puts it (the same bytes; ~9 cycles a value there).
 */
function packEight(d: usize, a: usize, rsA: usize, K: i32): void {
  const Kb = K >> 3;
  const Kb4 = Kb & ~3;
  for (let h = 0; h < 2; h++) {
    const ah = a + <usize>(4 * h) * rsA;
    const dh = d + (<usize>h << 4);
    for (let q = 0; q < 8; q++) {
      const aq = ah + (<usize>(q * Kb) << 2);
      for (let kk = 0; kk < Kb4; kk += 4) {
        const p = aq + (<usize>kk << 2);
        const r0 = v128.load(p), r1 = v128.load(p + rsA), r2 = v128.load(p + 2 * rsA), r3 = v128.load(p + 3 * rsA);
        const o = dh + (<usize>(8 * kk + q) << 5);
        // step 8(kk + m) + q is m·8 steps (256 bytes) after step 8kk + q
        v128.store(o, transposed(r0, r1, r2, r3, 0));
        v128.store(o, transposed(r0, r1, r2, r3, 1), 256);
        v128.store(o, transposed(r0, r1, r2, r3, 2), 512);
        v128.store(o, transposed(r0, r1, r2, r3, 3), 768);
      }
    }
  }
  for (let r = 0; r < 8; r++) {
    const ar = a + <usize>r * rsA;
    const dr = d + (<usize>r << 2);
    for (let q = 0; q < 8; q++) {
      for (let kk = Kb4; kk < Kb; kk++) store<f32>(dr + (<usize>(8 * kk + q) << 5), load<f32>(ar + (<usize>(q * Kb + kk) << 2)));
    }
    for (let s = 8 * Kb; s < K; s++) store<f32>(dr + (<usize>s << 5), load<f32>(ar + (<usize>s << 2)));
  }
}

/** steps of a chunk of packRowsB's layout (rowsTimesPacked): eight rows' packed a for a chunk, 8 KiB, stays in L1 */
const PACK_CHUNK: i32 = 256;

/** bytes packRowsB writes for B (K x N, N a multiple of 4): as many as B's */
export function rowsPackedBytes(K: i32, N: i32): i32 {
  return K * N * 4;
}

/**
 * B (K x N row-major, N a multiple of 4) into dst for rowsTimesPacked: chunks of PACK_CHUNK steps (the
 * step order above), each chunk's 4-column panels side by side, each panel's steps contiguous: step
 * s0 + s of panel t (columns 4t .. 4t + 3) in the chunk from step s0 (L steps) at dst + s0·N·4 +
 * (t·L + s)·16. So a product reads B as one forward stream. A thread's share of B's rows (its own K,
 * its own step order) is packed on its own, at its rows' offset in dst.
 */
export function packRowsB(dst: usize, b: usize, K: i32, N: i32): void {
  const Kb = K >> 3;
  const panels = N >> 2;
  const rs = <usize>N << 2;
  for (let s0 = 0; s0 < K; s0 += PACK_CHUNK) {
    const L = min(PACK_CHUNK, K - s0);
    let d = dst + <usize>s0 * rs;
    for (let t = 0; t < panels; t++) {
      const src = b + (<usize>t << 4);
      for (let s = s0; s < s0 + L; s++) {
        const k = s < 8 * Kb ? (s & 7) * Kb + (s >> 3) : s;
        v128.store(d, v128.load(src + <usize>k * rs));
        d += 16;
      }
    }
  }
}

/** rows r0..r3 of a 4 x 4 block as its columns (and back: the transpose is its own inverse) */
@inline function transposed(r0: v128, r1: v128, r2: v128, r3: v128, column: i32): v128 {
  const lo = column < 2;
  const t0 = lo ? v128.shuffle<f32>(r0, r1, 0, 4, 1, 5) : v128.shuffle<f32>(r0, r1, 2, 6, 3, 7);
  const t1 = lo ? v128.shuffle<f32>(r2, r3, 0, 4, 1, 5) : v128.shuffle<f32>(r2, r3, 2, 6, 3, 7);
  return (column & 1) == 0 ? v128.shuffle<f32>(t0, t1, 0, 1, 4, 5) : v128.shuffle<f32>(t0, t1, 2, 3, 6, 7);
}

/**
 * Where a tile's accumulators start (rowsTile8x4, rowsTile4x4T): at zero (a product's first chunk
 * without add), from out's rows, or from the raw accumulators a full eight-row tile left in its
 * eight rows of out after an earlier chunk (c0..c3, d0..d3 as they are: no transposes between chunks)
 */
const TILE_ZERO = 0, TILE_ROWS = 1, TILE_RAW = 2;

/** row r (< mr) of out's tile at o, else zeros (a padding row of the last group: never stored) */
@inline function tileRow(o: usize, ldo: usize, r: i32, mr: i32): v128 {
  return r < mr ? v128.load(o + <usize>r * ldo) : f32x4.splat(0);
}

/**
 * One tile of out, mr <= 8 rows (ldo bytes apart from o) x 4 columns, over K steps of a packed
 * panel (bp, 16 bytes a step) against a packed group of eight rows of a (packRows8: ap, 32 bytes a
 * step). The tile is held transposed: each accumulator is one column of four rows, so a step is two
 * vector loads of a and four splats of B for eight madds (8 + 2 + 4 of V8's 15 xmm registers), and
 * each vector of B is read once for eight rows. Each element still gets a_i(k)·b[k][j] added in
 * step order, one madd a step: the bits of the 4 x 8 tile and of one row.
 * from (TILE_ZERO, TILE_ROWS, TILE_RAW): where the accumulators start; raw: leave them as they are
 * in the tile's eight rows of out (mr = 8 only, another chunk follows) instead of transposed back.
 * a's eight values a step from one pointer (the second load at offset 16, which V8 folds into the
 * load) instead of two groups gb bytes apart: 24 instructions a step instead of 25, the products of
 * 256 and 16 rows 1.03-1.05x (bench/kernel-ab.ts --packed, docs/benchmark-log.md "Serving", 22:32).
 * The loop two steps an iteration spills (0.51-0.53x); B's splats from one load and shuffles 0.89x.
 */
function rowsTile8x4(o: usize, ldo: usize, mr: i32, ap: usize, bp: usize, K: i32, from: i32, raw: bool): void {
  // c_j: column j of rows 0-3, d_j: of rows 4-7
  let c0 = f32x4.splat(0), c1 = c0, c2 = c0, c3 = c0, d0 = c0, d1 = c0, d2 = c0, d3 = c0;
  if (from == TILE_RAW) {
    c0 = v128.load(o);
    c1 = v128.load(o + ldo);
    c2 = v128.load(o + 2 * ldo);
    c3 = v128.load(o + 3 * ldo);
    d0 = v128.load(o + 4 * ldo);
    d1 = v128.load(o + 5 * ldo);
    d2 = v128.load(o + 6 * ldo);
    d3 = v128.load(o + 7 * ldo);
  } else if (from == TILE_ROWS) {
    const r0 = tileRow(o, ldo, 0, mr), r1 = tileRow(o, ldo, 1, mr), r2 = tileRow(o, ldo, 2, mr), r3 = tileRow(o, ldo, 3, mr);
    const r4 = tileRow(o, ldo, 4, mr), r5 = tileRow(o, ldo, 5, mr), r6 = tileRow(o, ldo, 6, mr), r7 = tileRow(o, ldo, 7, mr);
    c0 = transposed(r0, r1, r2, r3, 0);
    c1 = transposed(r0, r1, r2, r3, 1);
    c2 = transposed(r0, r1, r2, r3, 2);
    c3 = transposed(r0, r1, r2, r3, 3);
    d0 = transposed(r4, r5, r6, r7, 0);
    d1 = transposed(r4, r5, r6, r7, 1);
    d2 = transposed(r4, r5, r6, r7, 2);
    d3 = transposed(r4, r5, r6, r7, 3);
  }
  let aq = ap;
  const end = bp + (<usize>K << 4);
  for (let p = bp; p < end; p += 16) {
    const x = v128.load(aq);
    const y = v128.load(aq, 16);
    let b = v128.load32_splat(p);
    c0 = madd(x, b, c0);
    d0 = madd(y, b, d0);
    b = v128.load32_splat(p, 4);
    c1 = madd(x, b, c1);
    d1 = madd(y, b, d1);
    b = v128.load32_splat(p, 8);
    c2 = madd(x, b, c2);
    d2 = madd(y, b, d2);
    b = v128.load32_splat(p, 12);
    c3 = madd(x, b, c3);
    d3 = madd(y, b, d3);
    aq += 32;
  }
  if (raw) {
    v128.store(o, c0);
    v128.store(o + ldo, c1);
    v128.store(o + 2 * ldo, c2);
    v128.store(o + 3 * ldo, c3);
    v128.store(o + 4 * ldo, d0);
    v128.store(o + 5 * ldo, d1);
    v128.store(o + 6 * ldo, d2);
    v128.store(o + 7 * ldo, d3);
    return;
  }
  for (let r = 0; r < mr; r++) {
    const c = r < 4 ? r : r - 4;
    const row = r < 4 ? transposed(c0, c1, c2, c3, c) : transposed(d0, d1, d2, d3, c);
    v128.store(o + <usize>r * ldo, row);
  }
}

/** rowsTile8x4 for a last group of 1-4 rows (16 bytes of a a step): four accumulators, one load of a and four splats a step */
function rowsTile4x4T(o: usize, ldo: usize, mr: i32, ap: usize, bp: usize, K: i32, from: i32): void {
  let c0 = f32x4.splat(0), c1 = c0, c2 = c0, c3 = c0;
  if (from == TILE_ROWS) {
    const r0 = tileRow(o, ldo, 0, mr), r1 = tileRow(o, ldo, 1, mr), r2 = tileRow(o, ldo, 2, mr), r3 = tileRow(o, ldo, 3, mr);
    c0 = transposed(r0, r1, r2, r3, 0);
    c1 = transposed(r0, r1, r2, r3, 1);
    c2 = transposed(r0, r1, r2, r3, 2);
    c3 = transposed(r0, r1, r2, r3, 3);
  }
  let aq = ap;
  const end = bp + (<usize>K << 4);
  for (let p = bp; p < end; p += 16) {
    const x = v128.load(aq);
    c0 = madd(x, v128.load32_splat(p), c0);
    c1 = madd(x, v128.load32_splat(p, 4), c1);
    c2 = madd(x, v128.load32_splat(p, 8), c2);
    c3 = madd(x, v128.load32_splat(p, 12), c3);
    aq += 16;
  }
  for (let r = 0; r < mr; r++) v128.store(o + <usize>r * ldo, transposed(c0, c1, c2, c3, r));
}

/**
 * rowsTimesB from bp = packRowsB(B) (K rows of ldb columns), for column ranges [j0, j1) + r·rstride
 * (multiples of 4): chunks of PACK_CHUNK steps outside, then eight rows at a time, then the chunk's
 * panels, each tile over the chunk's steps in one call (its accumulators stay in registers for 256
 * steps; they pass through out between chunks, continuing each element's chain: a full tile's as
 * they are, TILE_RAW, no transposes; a product without add starts them at zero, TILE_ZERO, instead
 * of zeroing out and reading it back). A chunk of B is read from memory by the first eight rows and
 * from L2 or L3 by the next (a chunk of all panels of GPT-2's 768 x 2304 is 2.4 MB, of a thread's
 * half 1.2 MB: more than L2); a chunk of eight rows' a (8 KiB) stays in L1 over all panels. For
 * many rows (a server's joined prompts: 256 rows) the panels in blocks of 4, 16 or 64 (B's block of
 * a chunk in L1 or L2 for all the row groups) ran 0.94-1.04x (quiet, 2026-12-06 22:47): the loop
 * is its 24 instructions a step, not B's reads. Measured (docs/benchmark-log.md, "Serving", 2026-12-06 20:20): against
 * the 4 x 8 tile over 8-column panels each contiguous over all K, B cold, 8 rows 1.06-1.37x, 16
 * rows 1.02-1.14x; panels in K order with chunks (each chunk of a panel 4 KiB, K·16 bytes from the
 * next) 0.6-0.7x, and all of K a tile with 4-column panels 0.84-0.94x where a's rows pass 32 KiB.
 */
function rowsTimesPacked(out: usize, a: usize, csA: usize, rsA: usize, ldo: usize, bp: usize, K: i32, ldb: i32, rows: i32, add: bool, scratch: usize, j0: i32, j1: i32, ranges: i32, rstride: i32): void {
  const gb = <usize>K << 4; // from one packed group of a to the next
  const n = j1 - j0;
  // without add, the first chunk's tiles start from zero (the chain's 0 of a one-row call) and write
  // every element of out; with no steps at all, out is zeroed here
  if (!add && K == 0) for (let i = 0; i < rows; i++) for (let r = 0; r < ranges; r++) memory.fill(out + <usize>i * ldo + (<usize>(j0 + r * rstride) << 2), 0, <usize>n << 2);
  packRows8(scratch, a, csA, rsA, rows, K);
  const panels = n >> 2;
  const start = add ? TILE_ROWS : TILE_ZERO;
  for (let s0 = 0; s0 < K; s0 += PACK_CHUNK) {
    const L = min(PACK_CHUNK, K - s0);
    const first = s0 == 0;
    const last = s0 + L == K;
    const pb = <usize>L << 4; // from one panel of the chunk to the next
    const bs = bp + <usize>s0 * (<usize>ldb << 2);
    for (let r = 0; r < ranges; r++) {
      const c0 = j0 + r * rstride;
      const oc = out + (<usize>c0 << 2);
      const bc = bs + <usize>(c0 >> 2) * pb;
      for (let i = 0; i < rows; i += 8) {
        const ap = scratch + <usize>(i >> 2) * gb + (<usize>s0 << (rows - i > 4 ? 5 : 4));
        for (let t = 0; t < panels; t++) {
          const o = oc + <usize>i * ldo + (<usize>t << 4);
          const bt = bc + <usize>t * pb;
          if (rows - i >= 8) rowsTile8x4(o, ldo, 8, ap, bt, L, first ? start : TILE_RAW, !last);
          else if (rows - i > 4) rowsTile8x4(o, ldo, rows - i, ap, bt, L, first ? start : TILE_ROWS, false);
          else rowsTile4x4T(o, ldo, rows - i, ap, bt, L, first ? start : TILE_ROWS);
        }
      }
    }
  }
}
