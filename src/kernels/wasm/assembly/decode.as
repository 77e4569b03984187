// Generation (one token, or a few, at a time against a KV cache):
//   attentionCached   new query rows of qkv (Tn,3C) against the cached keys and values (rows of C
//                     floats) for heads h0..h1-1 -> out (Tn,C); scratch attentionCachedScratchBytes
//   mlpRowsPart,      one thread's share of a whole block's MLP or attention for R rows (one token of
//   attentionRowsPart each of R sequences), so a block costs one pool round trip (see below)

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
// for R rows (one new token of each of R sequences, each at its own position against its own KV
// cache), so that a block costs one pool round trip instead of one per matmul, and the weights are
// read from memory once for all R rows. Every share computes a partial y over its slice of the
// hidden units (MLP) or heads (attention); the caller adds the partials and the output bias. Each row
// gets exactly the arithmetic of R = 1 (rowTimesB's rows), and with one share exactly that of the
// separate kernels (matmulRows, addBias, the activation, attentionCached) in the same order.

/**
 * Hidden units j0..j1 of R rows' MLP: h[r][j] = act(a[r]·wfc[:, j] + bfc[j]), then
 * y[r] (C) = Σ_{j0<=j<j1} h[r][j] wproj[j, :] (no bias). a (R,C), wfc (C,H), bfc (H), wproj (H,C),
 * h (R,H), y (R,C); act: 0 GELU, 1 ReLU. rowsScratch: rowsScratchBytes(R, max(C, H)). wfcPacked,
 * wprojPacked: packRowsB's copies of wfc and of wproj (each share of wproj's rows packed on its own,
 * at its rows' offset), or 0 (see packedAt).
 */
export function mlpRowsPart(y: usize, h: usize, a: usize, R: i32, wfc: usize, bfc: usize, wproj: usize, C: i32, H: i32, j0: i32, j1: i32, relu: i32, rowsScratch: usize, wfcPacked: usize, wprojPacked: usize): void {
  const cb = <usize>C << 2;
  const hb = <usize>H << 2;
  rowTimesB(h, a, 4, wfc, C, H, j0, j1, false, 1, 0, R, cb, hb, rowsScratch, wfcPacked);
  const n = j1 - j0;
  for (let r = 0; r < R; r++) {
    const hj = h + <usize>r * hb + (<usize>j0 << 2);
    addBias(hj, bfc + (<usize>j0 << 2), 1, n);
    if (relu != 0) reluForward(hj, hj, n);
    else geluForward(hj, hj, n);
  }
  rowTimesB(y, h + (<usize>j0 << 2), 4, wproj + <usize>j0 * cb, n, C, 0, C, false, 1, 0, R, hb, cb, rowsScratch, packedAt(wprojPacked, <usize>j0 * cb));
}

/** a packed copy's rows from byte `offset` on, as B's (0: no copy) */
@inline function packedAt(packed: usize, offset: usize): usize {
  return packed == 0 ? 0 : packed + offset;
}

/**
 * Heads h0..h1 of R new tokens' attention, row r at position pos[r] against its own cache: their
 * q, k, v columns of qkv[r] (3C) = a[r]·wattn + battn, k and v stored in row pos[r] of the row's
 * caches, attention over its rows 0..pos[r] into att[r] (C), then y[r] (C) = Σ over the heads'
 * channels c of att[r][c] wproj[c, :] (no bias). a, att, y (R,C), qkv (R,3C); rows: R entries of three
 * i32 (kCache, vCache, pos). scratch: attentionCachedScratchBytes(max pos + 1, nh); rowsScratch:
 * rowsScratchBytes(R, C). wattnPacked, wprojPacked: packed copies as mlpRowsPart's, or 0.
 */
export function attentionRowsPart(y: usize, att: usize, qkv: usize, a: usize, R: i32, rows: usize, wattn: usize, battn: usize, wproj: usize, C: i32, nh: i32, h0: i32, h1: i32, scratch: usize, rowsScratch: usize, wattnPacked: usize, wprojPacked: usize): void {
  attentionKeptRowsPart(y, att, qkv, a, R, rows, 0, wattn, battn, wproj, C, nh, h0, h1, scratch, rowsScratch, wattnPacked, wprojPacked);
}

/**
 * attentionRowsPart where only the rows flagged in keep (R i32; keep 0: every row) want an output (a
 * decode step's last block, whose prompt rows before their last are wanted only for their k and v):
 * every row's q k v and its k, v rows in its caches, in row order (a prompt's later rows read its
 * earlier ones); then only the kept rows, packed in order into the first rows of att and y (R -> m
 * kept rows), get the attention and the output projection. A kept row gets the arithmetic of every
 * row through attentionRowsPart (rowTimesB's sums of a row do not depend on the rows beside it), so
 * its bits. Returns m.
 */
function attentionKeptRowsPart(y: usize, att: usize, qkv: usize, a: usize, R: i32, rows: usize, keep: usize, wattn: usize, battn: usize, wproj: usize, C: i32, nh: i32, h0: i32, h1: i32, scratch: usize, rowsScratch: usize, wattnPacked: usize, wprojPacked: usize): i32 {
  const hs = C / nh;
  const c0 = h0 * hs;
  const n = (h1 - h0) * hs;
  const cb = <usize>C << 2;
  const qb = 3 * cb;
  // q, k and v columns of these heads in one sweep over wattn's rows (all heads: one range of 3C)
  if (n == C) rowTimesB(qkv, a, 4, wattn, C, 3 * C, 0, 3 * C, false, 1, 0, R, cb, qb, rowsScratch, wattnPacked);
  else rowTimesB(qkv, a, 4, wattn, C, 3 * C, c0, c0 + n, false, 3, C, R, cb, qb, rowsScratch, wattnPacked);
  let m = 0;
  for (let r = 0; r < R; r++) {
    const q = qkv + <usize>r * qb;
    if (n == C) addBias(q, battn, 1, 3 * C);
    else {
      for (let part = 0; part < 3; part++) {
        const j0 = part * C + c0;
        addBias(q + (<usize>j0 << 2), battn + (<usize>j0 << 2), 1, n);
      }
    }
    const e = rows + <usize>r * 12;
    const kCache = <usize>load<u32>(e);
    const vCache = <usize>load<u32>(e, 4);
    const pos = load<i32>(e, 8);
    const row = (<usize>pos * <usize>C + <usize>c0) << 2;
    memory.copy(kCache + row, q + (<usize>(C + c0) << 2), <usize>n << 2);
    memory.copy(vCache + row, q + (<usize>(2 * C + c0) << 2), <usize>n << 2);
    if (keep != 0 && load<i32>(keep + (<usize>r << 2)) == 0) continue;
    attentionCached(att + <usize>m * cb, q, kCache, vCache, 1, pos, C, nh, h0, h1, scratch);
    m++;
  }
  if (m > 0) rowTimesB(y, att + (<usize>c0 << 2), 4, wproj + <usize>c0 * cb, n, C, 0, C, false, 1, 0, m, cb, cb, rowsScratch, packedAt(wprojPacked, <usize>c0 * cb));
  return m;
}

// ---------------------------------------------------------------------------------------------------
// the whole trunk of a batched decode step on one thread: with weights too small to split (the
// 384-wide model's), the rows are split over the threads instead, and each thread takes its rows
// through every block in one call: one pool round trip a step instead of two a block (a helper's
// wake-up, ~100-300 µs here, is as long as a block's share of 8 rows). Each row gets exactly the
// calls of the block-by-block path (layernormForward, attentionRowsPart over all heads, addBias,
// add, layernormForward, mlpRowsPart over all hidden units, addBias, add), so its bits too.

/**
 * i32 fields of trunkRowsPart's step block; eps (f64) follows at byte STEP_EPS, then at byte
 * STEP_KEEP a pointer to R i32 flags (0: every row's output is wanted), see trunkRowsPart
 */
const STEP_X = 0, STEP_A = 1, STEP_MEAN = 2, STEP_RSTD = 3, STEP_QKV = 4, STEP_ATT = 5, STEP_Y = 6, STEP_H = 7;
const STEP_LAYERS = 8, STEP_L = 9, STEP_ROWS = 10, STEP_R = 11, STEP_C = 12, STEP_NH = 13, STEP_HIDDEN = 14, STEP_RELU = 15;
const STEP_EPS: usize = 64;
const STEP_KEEP: usize = 72;
/**
 * i32 fields of a layer's entry in the layers table: pointers to its weights, then to the packed
 * copies of its four matrices (packRowsB, whole: the trunk splits no matrix), 0 where there are none
 */
const LAYER_LN1W = 0, LAYER_LN1B = 1, LAYER_WATTN = 2, LAYER_BATTN = 3, LAYER_WPROJ = 4, LAYER_BPROJ = 5;
const LAYER_LN2W = 6, LAYER_LN2B = 7, LAYER_WFC = 8, LAYER_BFC = 9, LAYER_WMLP = 10, LAYER_BMLP = 11;
const LAYER_PACKED = 12;
const LAYER_WATTN_PACKED = LAYER_PACKED, LAYER_WPROJ_PACKED = LAYER_PACKED + 1, LAYER_WFC_PACKED = LAYER_PACKED + 2, LAYER_WMLP_PACKED = LAYER_PACKED + 3;
const LAYER_FIELDS = LAYER_PACKED + 4;

/** the i32 field i of a table entry at p, as a pointer or count */
@inline function field(p: usize, i: i32): usize {
  return <usize>load<u32>(p + (<usize>i << 2));
}

/** bytes of trunkRowsPart's step block */
export function trunkStepBytes(): i32 {
  return <i32>STEP_KEEP + 8;
}

/** byte offsets in trunkRowsPart's step block of eps (f64) and of the keep flags' pointer (i32) */
export function trunkStepEpsAt(): i32 {
  return <i32>STEP_EPS;
}
export function trunkStepKeepAt(): i32 {
  return <i32>STEP_KEEP;
}

/** bytes of a layer's entry in trunkRowsPart's layers table */
export function trunkLayerBytes(): i32 {
  return LAYER_FIELDS * 4;
}

/** the field of a layer's entry where the packed copies' pointers start (attn, attn proj, fc, MLP proj) */
export function trunkLayerPackedAt(): i32 {
  return LAYER_PACKED;
}

/**
 * Rows r0..r1 of a decode step through every block: step describes the step's buffers (rows of
 * all R), the layers' weights (a table of L entries) and the rows' caches (a table of L·R entries of
 * (kCache, vCache, pos), layer-major: attentionRowsPart's table for each layer). x (R,C) holds the
 * rows' embeddings and is left holding the trunk's output. scratch: attentionCachedScratchBytes(max
 * pos + 1, nh); rowsScratch: rowsScratchBytes(r1 - r0, max(C, H)).
 * With keep flags (STEP_KEEP), a row flagged 0 (a prompt's row before its last: only its k and v
 * are wanted) gets in the last block only its LayerNorm, q k v and cache rows (lastBlockRows); its
 * row of x is then left as it was, and every other row gets the same arithmetic as without flags.
 */
export function trunkRowsPart(step: usize, r0: i32, r1: i32, scratch: usize, rowsScratch: usize): void {
  const C = <i32>field(step, STEP_C);
  const H = <i32>field(step, STEP_HIDDEN);
  const nh = <i32>field(step, STEP_NH);
  const R = <usize>field(step, STEP_R);
  const L = <i32>field(step, STEP_L);
  const relu = <i32>field(step, STEP_RELU);
  const eps = load<f64>(step + STEP_EPS);
  const n = r1 - r0;
  const cb = <usize>C << 2;
  const row0 = <usize>r0;
  const x = field(step, STEP_X) + row0 * cb;
  const a = field(step, STEP_A) + row0 * cb;
  const mean = field(step, STEP_MEAN) + (row0 << 2);
  const rstd = field(step, STEP_RSTD) + (row0 << 2);
  const qkv = field(step, STEP_QKV) + row0 * 3 * cb;
  const att = field(step, STEP_ATT) + row0 * cb;
  const y = field(step, STEP_Y) + row0 * cb;
  const h = field(step, STEP_H) + row0 * (<usize>H << 2);
  const keepTable = <usize>load<u32>(step + STEP_KEEP);
  const keep = keepTable == 0 ? 0 : keepTable + (row0 << 2);
  for (let l = 0; l < L; l++) {
    const e = field(step, STEP_LAYERS) + <usize>(l * LAYER_FIELDS) * 4;
    const rows = field(step, STEP_ROWS) + (<usize>l * R + row0) * 12;
    if (l == L - 1 && keep != 0 && kept(keep, n) < n) {
      lastBlockRows(x, a, mean, rstd, qkv, att, y, h, e, rows, keep, n, C, nh, H, relu, eps, scratch, rowsScratch);
      break;
    }
    layernormForward(a, mean, rstd, x, field(e, LAYER_LN1W), field(e, LAYER_LN1B), n, C, eps);
    attentionRowsPart(y, att, qkv, a, n, rows, field(e, LAYER_WATTN), field(e, LAYER_BATTN), field(e, LAYER_WPROJ), C, nh, 0, nh, scratch, rowsScratch, field(e, LAYER_WATTN_PACKED), field(e, LAYER_WPROJ_PACKED));
    addBias(y, field(e, LAYER_BPROJ), n, C);
    add(x, x, y, n * C);
    layernormForward(a, mean, rstd, x, field(e, LAYER_LN2W), field(e, LAYER_LN2B), n, C, eps);
    mlpRowsPart(y, h, a, n, field(e, LAYER_WFC), field(e, LAYER_BFC), field(e, LAYER_WMLP), C, H, 0, H, relu, rowsScratch, field(e, LAYER_WFC_PACKED), field(e, LAYER_WMLP_PACKED));
    addBias(y, field(e, LAYER_BMLP), n, C);
    add(x, x, y, n * C);
  }
}

/** how many of n rows' keep flags (i32) are set */
function kept(keep: usize, n: i32): i32 {
  let m = 0;
  for (let r = 0; r < n; r++) if (load<i32>(keep + (<usize>r << 2)) != 0) m++;
  return m;
}

/**
 * trunkRowsPart's last block for n rows of which only those flagged in keep want an output: every
 * row's LayerNorm, q k v and k, v rows in its caches; then only the kept rows, packed into the first
 * rows of att, y, a and h (attentionKeptRowsPart): their attention, its projection, the MLP and the
 * residual adds into their own rows of x. Each kept row gets attentionRowsPart's and mlpRowsPart's
 * arithmetic (a row's sums do not depend on the rows beside it), so the same bits as every row
 * through the block.
 */
function lastBlockRows(x: usize, a: usize, mean: usize, rstd: usize, qkv: usize, att: usize, y: usize, h: usize, e: usize, rows: usize, keep: usize, n: i32, C: i32, nh: i32, H: i32, relu: i32, eps: f64, scratch: usize, rowsScratch: usize): void {
  const cb = <usize>C << 2;
  layernormForward(a, mean, rstd, x, field(e, LAYER_LN1W), field(e, LAYER_LN1B), n, C, eps);
  const m = attentionKeptRowsPart(y, att, qkv, a, n, rows, keep, field(e, LAYER_WATTN), field(e, LAYER_BATTN), field(e, LAYER_WPROJ), C, nh, 0, nh, scratch, rowsScratch, field(e, LAYER_WATTN_PACKED), field(e, LAYER_WPROJ_PACKED));
  if (m == 0) return;
  addBias(y, field(e, LAYER_BPROJ), m, C);
  // the kept rows' residual adds and second LayerNorm, each into its own row of x / packed row of a
  let k = 0;
  for (let r = 0; r < n; r++) {
    if (load<i32>(keep + (<usize>r << 2)) == 0) continue;
    const xr = x + <usize>r * cb;
    add(xr, xr, y + <usize>k * cb, C);
    layernormForward(a + <usize>k * cb, mean + (<usize>k << 2), rstd + (<usize>k << 2), xr, field(e, LAYER_LN2W), field(e, LAYER_LN2B), 1, C, eps);
    k++;
  }
  mlpRowsPart(y, h, a, m, field(e, LAYER_WFC), field(e, LAYER_BFC), field(e, LAYER_WMLP), C, H, 0, H, relu, rowsScratch, field(e, LAYER_WFC_PACKED), field(e, LAYER_WMLP_PACKED));
  addBias(y, field(e, LAYER_BMLP), m, C);
  k = 0;
  for (let r = 0; r < n; r++) {
    if (load<i32>(keep + (<usize>r << 2)) == 0) continue;
    const xr = x + <usize>r * cb;
    add(xr, xr, y + <usize>k * cb, C);
    k++;
  }
}
