// The whole trunk of a batched decode step in one pool call for a model wide enough that its weights
// are split over the threads (src/kernels/wasm/decode.ts splitsWeights: GPT-2 124M's on 2 threads):
//   trunkSplitPart  one thread's part: its heads' and hidden units' shares of every block's products,
//                   and its rows of the row-wise work between them, meeting the others (barrier.as)
//
// Block by block, such a step is two pool round trips a block (attentionRows, mlpRows: the helper
// woken each time, ~100-300 µs here), with the partial outputs' sum, the biases, the residual adds
// and the LayerNorms on the calling thread between them while the helper sleeps (~6 ms of GPT-2's
// 16-row step of ~74: docs/benchmark-log.md, "Serving"). Here the helper is woken once a step, the threads meet
// four times a block, and the row-wise work is cut by rows. Each output element gets exactly the
// block-by-block arithmetic: thread 0's partial y, plus the other threads' in thread order
// (accumulate), plus the bias (addBias), added to x (add), then the row's LayerNorm
// (layernormForward), each a function of the element (or row) alone, so the bits do not depend on
// which thread does the row; the products are attentionRowsPart's and mlpRowsPart's with the same
// shares of heads and hidden units (decode.ts headCuts, mlpCuts: by the weights' size only). In the
// last block the rows that want no output (a prompt's rows before its last: the step block's keep
// flags) stop after their q, k, v and cache rows; the kept rows alone, packed, go on (~1/12 of a
// prompt step's work spared).
//
// The split block (trunkSplitBytes(parts), 4-byte aligned):
//   SPLIT_PARTS    the threads taking part
//   SPLIT_BARRIER  where they meet (barrier.as's block, zeroed before the call)
//   SPLIT_THREADS  per thread, THREAD_FIELDS i32: its heads h0..h1, hidden units j0..j1 (an empty
//                  share: h1 = h0, j1 = j0) and its partial y (R,C) (thread 0's: the step's y)

const SPLIT_PARTS = 0;
const SPLIT_BARRIER = 1;
const SPLIT_THREADS = SPLIT_BARRIER + BARRIER_BYTES / 4;
const THREAD_H0 = 0, THREAD_H1 = 1, THREAD_J0 = 2, THREAD_J1 = 3, THREAD_PARTIAL = 4;
const THREAD_FIELDS = 5;

/** bytes of trunkSplitPart's split block for `parts` threads */
export function trunkSplitBytes(parts: i32): i32 {
  return (SPLIT_THREADS + parts * THREAD_FIELDS) * 4;
}

/** the i32 field where trunkSplitPart's per-thread entries start (the fields before: SPLIT_PARTS, then the barrier's) */
export function trunkSplitThreadsAt(): i32 {
  return SPLIT_THREADS;
}

/** field i of thread u's entry in split block s */
@inline function threadField(s: usize, u: i32, i: i32): usize {
  return field(s, SPLIT_THREADS + u * THREAD_FIELDS + i);
}

/**
 * Thread t's part of every block of a decode step of R rows: step is trunkRowsPart's step block,
 * split the split block. x (R,C) holds the rows' embeddings and is left holding the trunk's output.
 * scratch: attentionCachedScratchBytes(max pos + 1, nh); rowsScratch: rowsScratchBytes(R, max(C, H)).
 * mayWait: 0 where this thread may not block (barrier.as's meet).
 * With keep flags (STEP_KEEP, as trunkRowsPart's), a row flagged 0 (a prompt's row before its last:
 * only its k and v are wanted) gets in the last block only its LayerNorm, q k v and cache rows: the
 * m kept rows, packed in order into the first rows of att, the partial ys, a and h
 * (attentionKeptRowsPart), alone go through the attention, its projection and the MLP, and the
 * row-wise work is cut over the threads by kept rows. A flagged row's x is left as the block before
 * left it; every kept row gets the arithmetic it gets without flags (a row's sums do not depend on
 * the rows beside it), so its bits.
 */
export function trunkSplitPart(step: usize, split: usize, t: i32, scratch: usize, rowsScratch: usize, mayWait: i32): void {
  const C = <i32>field(step, STEP_C);
  const H = <i32>field(step, STEP_HIDDEN);
  const nh = <i32>field(step, STEP_NH);
  const R = <i32>field(step, STEP_R);
  const L = <i32>field(step, STEP_L);
  const relu = <i32>field(step, STEP_RELU);
  const parts = <i32>field(split, SPLIT_PARTS);
  const barrier = split + ((<usize>SPLIT_BARRIER) << 2);
  const h0 = <i32>threadField(split, t, THREAD_H0);
  const h1 = <i32>threadField(split, t, THREAD_H1);
  const j0 = <i32>threadField(split, t, THREAD_J0);
  const j1 = <i32>threadField(split, t, THREAD_J1);
  const partial = threadField(split, t, THREAD_PARTIAL);
  const x = field(step, STEP_X);
  const a = field(step, STEP_A);
  const mean = field(step, STEP_MEAN);
  const rstd = field(step, STEP_RSTD);
  const qkv = field(step, STEP_QKV);
  const att = field(step, STEP_ATT);
  const h = field(step, STEP_H);
  const keepTable = <usize>load<u32>(step + STEP_KEEP);
  // the rows that go through the last block's attention and MLP (all R without keep flags)
  const lastRows = keepTable == 0 ? R : kept(keepTable, R);
  // this thread's rows of every row's row-wise work (the first LayerNorms: every row's k and v are wanted)
  const all0 = (R * t) / parts;
  const all1 = (R * (t + 1)) / parts;
  for (let l = 0; l < L; l++) {
    const e = field(step, STEP_LAYERS) + <usize>(l * LAYER_FIELDS) * 4;
    const rows = field(step, STEP_ROWS) + <usize>l * <usize>R * 12;
    // the rows of this block's output: in the last block with keep flags the kept ones, packed
    // (row k of the partial ys, a and h is the k-th kept row of x); else all, each in its own row
    const keep = l + 1 == L ? keepTable : 0;
    const n = keep == 0 ? R : lastRows;
    // this thread's rows of the row-wise work after the attention (of the n)
    const r0 = (n * t) / parts;
    const r1 = (n * (t + 1)) / parts;
    // (layer l's first LayerNorm was done with layer l - 1's last sum)
    if (l == 0) layernormRows(a, mean, rstd, x, field(e, LAYER_LN1W), field(e, LAYER_LN1B), 0, all0, all1, C, epsOf(step));
    meet(barrier, parts, mayWait);
    if (h1 > h0)
      attentionKeptRowsPart(partial, att, qkv, a, R, rows, keep, field(e, LAYER_WATTN), field(e, LAYER_BATTN), field(e, LAYER_WPROJ), C, nh, h0, h1, scratch, rowsScratch, field(e, LAYER_WATTN_PACKED), field(e, LAYER_WPROJ_PACKED));
    meet(barrier, parts, mayWait);
    sumShares(x, split, parts, THREAD_H0, field(e, LAYER_BPROJ), keep, r0, r1, C);
    layernormRows(a, mean, rstd, x, field(e, LAYER_LN2W), field(e, LAYER_LN2B), keep, r0, r1, C, epsOf(step));
    meet(barrier, parts, mayWait);
    if (j1 > j0 && n > 0)
      mlpRowsPart(partial, h, a, n, field(e, LAYER_WFC), field(e, LAYER_BFC), field(e, LAYER_WMLP), C, H, j0, j1, relu, rowsScratch, field(e, LAYER_WFC_PACKED), field(e, LAYER_WMLP_PACKED));
    meet(barrier, parts, mayWait);
    sumShares(x, split, parts, THREAD_J0, field(e, LAYER_BMLP), keep, r0, r1, C);
    if (l + 1 < L) {
      // the next block's first LayerNorm (a block before the last: its n is R, r0..r1 are all0..all1)
      const next = e + <usize>LAYER_FIELDS * 4;
      layernormRows(a, mean, rstd, x, field(next, LAYER_LN1W), field(next, LAYER_LN1B), 0, all0, all1, C, epsOf(step));
    }
  }
}

/**
 * Packed rows k0..k1 of a product whose shares (the field pair from `share` of each thread's entry:
 * heads or hidden units) left partial outputs: y = thread 0's partial + each other non-empty share's
 * in thread order + bias, then x += y (attentionRows' and mlpRows' order, then Block.decode's add),
 * packed row k into x's k-th kept row (keep: R i32 flags; 0: row k is x's row k)
 */
function sumShares(x: usize, split: usize, parts: i32, share: i32, bias: usize, keep: usize, k0: i32, k1: i32, C: i32): void {
  const n = k1 - k0;
  if (n <= 0) return;
  const cb = <usize>C << 2;
  const at = <usize>k0 * cb;
  const y = threadField(split, 0, THREAD_PARTIAL) + at;
  for (let u = 1; u < parts; u++) {
    if (threadField(split, u, share + 1) > threadField(split, u, share)) accumulate(y, threadField(split, u, THREAD_PARTIAL) + at, n * C);
  }
  addBias(y, bias, n, C);
  if (keep == 0) {
    add(x + at, x + at, y, n * C);
    return;
  }
  let r = keptRow(keep, k0);
  for (let k = 0; k < n; k++) {
    const xr = x + <usize>r * cb;
    add(xr, xr, y + <usize>k * cb, C);
    if (k + 1 < n) r = nextKept(keep, r);
  }
}

/**
 * the LayerNorms' epsilon, read from the step block at each use: Node 20's V8 (11.3) lost an f64
 * local held across memory.atomic.wait32 in Liftoff code (the LayerNorms after a barrier's sleep
 * came out a few ulps off until the function tiered up: benchmark-log.md, "Serving"), so no float
 * lives in a local across meet
 */
@inline function epsOf(step: usize): f64 {
  return load<f64>(step + STEP_EPS);
}

/**
 * layernormForward of rows k0..k1 into a (and their mean, rstd): x's rows k0..k1, or with keep flags
 * (R i32; 0: none) its kept rows k0..k1 (in order), each into a's packed row k
 */
function layernormRows(a: usize, mean: usize, rstd: usize, x: usize, w: usize, b: usize, keep: usize, k0: i32, k1: i32, C: i32, eps: f64): void {
  if (k1 <= k0) return;
  const cb = <usize>C << 2;
  if (keep == 0) {
    const at = <usize>k0 * cb;
    layernormForward(a + at, mean + (<usize>k0 << 2), rstd + (<usize>k0 << 2), x + at, w, b, k1 - k0, C, eps);
    return;
  }
  let r = keptRow(keep, k0);
  for (let k = k0; k < k1; k++) {
    layernormForward(a + <usize>k * cb, mean + (<usize>k << 2), rstd + (<usize>k << 2), x + <usize>r * cb, w, b, 1, C, eps);
    if (k + 1 < k1) r = nextKept(keep, r);
  }
}

/** the row of the k-th (from 0) flagged row of keep (i32 flags; more than k are flagged) */
function keptRow(keep: usize, k: i32): i32 {
  let r = nextKept(keep, -1);
  for (let i = 0; i < k; i++) r = nextKept(keep, r);
  return r;
}

/** the first flagged row of keep after row r (one must follow) */
@inline function nextKept(keep: usize, r: i32): i32 {
  let next = r + 1;
  while (load<i32>(keep + (<usize>next << 2)) == 0) next++;
  return next;
}
