// The whole trunk of a batched decode step in one pool call for a model wide enough that its weights
// are split over the threads (src/kernels/wasm/decode.ts splitsWeights: GPT-2 124M's on 2 threads):
//   trunkSplitPart  one thread's part: its heads' and hidden units' shares of every block's products,
//                   and its rows of the row-wise work between them, meeting the others (barrier.as)
//
// Block by block, such a step is two pool round trips a block (attentionRows, mlpRows: the helper
// woken each time, ~100-300 µs here), with the partial outputs' sum, the biases, the residual adds
// and the LayerNorms on the calling thread between them while the helper sleeps (~6 ms of GPT-2's
// 16-row step of ~74: docs/benchmarks.md). Here the helper is woken once a step, the threads meet
// four times a block, and the row-wise work is cut by rows. Each output element gets exactly the
// block-by-block arithmetic: thread 0's partial y, plus the other threads' in thread order
// (accumulate), plus the bias (addBias), added to x (add), then the row's LayerNorm
// (layernormForward), each a function of the element (or row) alone, so the bits do not depend on
// which thread does the row; the products are attentionRowsPart's and mlpRowsPart's with the same
// shares of heads and hidden units (decode.ts headCuts, mlpCuts: by the weights' size only).
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
 * Thread t's part of every block of a decode step of R rows: step is trunkRowsPart's step block (its
 * keep flags are not read: every row goes through every block), split the split block. x (R,C)
 * holds the rows' embeddings and is left holding the trunk's output. scratch:
 * attentionCachedScratchBytes(max pos + 1, nh); rowsScratch: rowsScratchBytes(R, max(C, H)).
 * mayWait: 0 where this thread may not block (barrier.as's meet).
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
  // this thread's rows of the row-wise work
  const r0 = (R * t) / parts;
  const r1 = (R * (t + 1)) / parts;
  for (let l = 0; l < L; l++) {
    const e = field(step, STEP_LAYERS) + <usize>(l * LAYER_FIELDS) * 4;
    const rows = field(step, STEP_ROWS) + <usize>l * <usize>R * 12;
    // (layer l's first LayerNorm was done with layer l - 1's last sum)
    if (l == 0) layernormRows(a, mean, rstd, x, field(e, LAYER_LN1W), field(e, LAYER_LN1B), r0, r1, C, epsOf(step));
    meet(barrier, parts, mayWait);
    if (h1 > h0)
      attentionRowsPart(partial, att, qkv, a, R, rows, field(e, LAYER_WATTN), field(e, LAYER_BATTN), field(e, LAYER_WPROJ), C, nh, h0, h1, scratch, rowsScratch, field(e, LAYER_WATTN_PACKED), field(e, LAYER_WPROJ_PACKED));
    meet(barrier, parts, mayWait);
    sumShares(x, split, parts, THREAD_H0, field(e, LAYER_BPROJ), r0, r1, C);
    layernormRows(a, mean, rstd, x, field(e, LAYER_LN2W), field(e, LAYER_LN2B), r0, r1, C, epsOf(step));
    meet(barrier, parts, mayWait);
    if (j1 > j0)
      mlpRowsPart(partial, h, a, R, field(e, LAYER_WFC), field(e, LAYER_BFC), field(e, LAYER_WMLP), C, H, j0, j1, relu, rowsScratch, field(e, LAYER_WFC_PACKED), field(e, LAYER_WMLP_PACKED));
    meet(barrier, parts, mayWait);
    sumShares(x, split, parts, THREAD_J0, field(e, LAYER_BMLP), r0, r1, C);
    if (l + 1 < L) {
      const next = e + <usize>LAYER_FIELDS * 4;
      layernormRows(a, mean, rstd, x, field(next, LAYER_LN1W), field(next, LAYER_LN1B), r0, r1, C, epsOf(step));
    }
  }
}

/**
 * Rows r0..r1 of a product whose shares (the field pair from `share` of each thread's entry: heads
 * or hidden units) left partial outputs: y = thread 0's partial + each other non-empty share's in
 * thread order + bias, then x += y (attentionRows' and mlpRows' order, then Block.decode's add)
 */
function sumShares(x: usize, split: usize, parts: i32, share: i32, bias: usize, r0: i32, r1: i32, C: i32): void {
  const n = r1 - r0;
  if (n <= 0) return;
  const at = <usize>r0 * (<usize>C << 2);
  const y = threadField(split, 0, THREAD_PARTIAL) + at;
  for (let u = 1; u < parts; u++) {
    if (threadField(split, u, share + 1) > threadField(split, u, share)) accumulate(y, threadField(split, u, THREAD_PARTIAL) + at, n * C);
  }
  addBias(y, bias, n, C);
  add(x + at, x + at, y, n * C);
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

/** layernormForward of rows r0..r1 of x into a (and their mean, rstd) */
function layernormRows(a: usize, mean: usize, rstd: usize, x: usize, w: usize, b: usize, r0: i32, r1: i32, C: i32, eps: f64): void {
  if (r1 <= r0) return;
  const at = <usize>r0 * (<usize>C << 2);
  layernormForward(a + at, mean + (<usize>r0 << 2), rstd + (<usize>r0 << 2), x + at, w, b, r1 - r0, C, eps);
}
