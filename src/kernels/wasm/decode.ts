/**
 * The wasm backend's calls for generation (decode.as and matmul.as's row products): the products
 * of few rows, cached attention and the fused one-token attention and MLP blocks, for R rows (one
 * new token of each of R sequences). One-token
 * work is bound by reading the weights once from memory; with threads each thread streams its own
 * contiguous block of them, and the helpers' partial outputs go to their scratch and are added
 * after. In a separate call the calling thread starts at once while a helper first has to wake up,
 * so it takes the bigger share (Schedule.shares); the blocks' shares are equal, for the threads of
 * a step's trunk meet awake (trunkSplit). Arguments are heap pointers (loader.ts made them).
 */
import { heap } from "../../tensor/memory.js";
import type { Args, KernelCalls } from "./calls.js";
import type { WasmPackedLayer } from "./packed-layer.js";
import { ranges } from "./schedule.js";

/** bytes of n floats rounded up to whole vectors (so what follows in a scratch stays 16-byte aligned) */
function alignedBytes(n: number): number {
  return Math.ceil(n / 4) * 16;
}

/**
 * Where a batch of R rows is cut over the threads when the block's weights are too small to split
 * (Schedule.batchParts): near-equal pieces of whole register tiles (4 rows), each cut moved to the
 * nearest row where `startsSequence` holds (a prompt's rows, one sequence, stay on one thread, in order).
 * Each row is computed whole on one thread, exactly as unsplit: the cut may depend on R.
 */
function batchBounds(k: KernelCalls, R: number, startsSequence: (r: number) => boolean): number[] {
  const parts = k.sched.batchParts(R);
  const bounds = [0];
  for (let t = 1; t < parts; t++) {
    const last = bounds[t - 1] as number;
    const ideal = Math.ceil((R * t) / parts / 4) * 4;
    // the sequence start nearest the ideal cut, below it or above (a prompt's rows in the middle of
    // the batch would otherwise push the cut down to their first row)
    let down = ideal;
    while (down > last && !startsSequence(down)) down--;
    let up = ideal;
    while (up < R && !startsSequence(up)) up++;
    const at = down > last && (up >= R || ideal - down <= up - ideal) ? down : up;
    if (at > last && at < R) bounds.push(at);
  }
  bounds.push(R);
  return bounds;
}

/**
 * out (M,N) (+)= a·b (+ bias) for M < 4 rows in layout `kind` (0: a·b, 1: a·bᵀ, 2: aᵀ·b), or any M
 * for the decode's rows (linearRows, matmulBTRows: B is streamed once for all rows, each row with a
 * one-row call's arithmetic). With threads, kind 1 splits N (B's rows) and kinds 0 and 2 split K
 * (B's rows too), by the weights' size only: a row's bits do not depend on M.
 */
export function matmulRows(
  k: KernelCalls,
  kind: number,
  po: number,
  pa: number,
  pb: number,
  M: number,
  K: number,
  N: number,
  acc: boolean,
  pbias: number,
): void {
  const lda = kind === 2 ? M : K;
  const units = kind === 1 ? N : K;
  const parts = k.sched.rowParts(K * N, Math.floor(units / 8));
  // per thread: a helper's partial out (kinds 0 and 2), then the rows' packing space (M >= 2)
  const outBytes = kind === 1 || parts <= 1 ? 0 : alignedBytes(M * N);
  const s = k.sched.scratch(outBytes + (kind === 1 ? 0 : k.x.rowsScratchBytes(M, K)));
  if (parts <= 1) {
    k.x.matmulRows(kind, po, pa, pb, M, K, N, lda, acc ? 1 : 0, 0, N, s[0] as number);
  } else {
    const bounds = k.sched.shares(units, parts, K * N, 8);
    const tasks: Args<"matmulRows">[] = [];
    for (let t = 0; t < parts; t++) {
      const u0 = bounds[t] as number;
      const u1 = bounds[t + 1] as number;
      if (u1 <= u0) continue;
      const st = s[t] as number;
      if (kind === 1) {
        tasks.push([kind, po, pa, pb, M, K, N, lda, acc ? 1 : 0, u0, u1, 0]);
      } else {
        const aOff = kind === 2 ? pa + u0 * lda * 4 : pa + u0 * 4;
        const out = tasks.length === 0 ? po : st;
        tasks.push([kind, out, aOff, pb + u0 * N * 4, M, u1 - u0, N, lda, tasks.length === 0 && acc ? 1 : 0, 0, N, st + outBytes]);
      }
    }
    k.parallel("matmulRows", tasks);
    if (kind !== 1) for (let t = 1; t < tasks.length; t++) k.x.accumulate(po, (tasks[t] as Args<"matmulRows">)[1], M * N);
  }
  if (pbias) k.x.addBias(po, pbias, M, N);
}

/** attention of Tn new positions after pos0 cached ones, its heads over the threads */
export function attentionCached(
  k: KernelCalls,
  out: number,
  qkv: number,
  kCache: number,
  vCache: number,
  Tn: number,
  pos0: number,
  C: number,
  nh: number,
): void {
  const s = k.sched.scratch(k.x.attentionCachedScratchBytes(pos0 + Tn, nh));
  const parts = k.sched.parts(nh, 4 * Tn * (pos0 + Tn) * C);
  k.parallel(
    "attentionCached",
    ranges(nh, parts).map(([h0, h1], t): Args<"attentionCached"> => [out, qkv, kCache, vCache, Tn, pos0, C, nh, h0, h1, s[t] as number]),
  );
}

/**
 * Where mlpRows cuts the hidden units (wfc's columns, wproj's rows) over the threads, [0, H] where it
 * does not: by the weights' size only (a row's bits must not depend on R). Equal shares: the
 * threads run them awake, in one call for the whole trunk (trunkSplit; block by block, a layer that
 * is not plain elsewhere in the model, the helper starts ~100-300 µs late).
 */
export function mlpCuts(k: KernelCalls, C: number, H: number): number[] {
  const floats = 2 * C * H;
  const parts = k.sched.rowParts(floats, Math.floor(H / 8));
  return parts > 1 ? k.sched.shares(H, parts, floats, 8, true) : [0, H];
}

/** Where attentionRows cuts the heads over the threads, [0, nh] where it does not (as mlpCuts) */
export function headCuts(k: KernelCalls, C: number, nh: number): number[] {
  const floats = 4 * C * C;
  const parts = k.sched.rowParts(floats, nh);
  return parts > 1 ? k.sched.shares(nh, parts, floats, 1, true) : [0, nh];
}

/**
 * The MLP of R rows (one new token of each of R sequences): the hidden units over the threads (each
 * streams its columns of wfc and its rows of wproj once for all rows, then the partial outputs are
 * added): one pool round trip for the whole MLP. The split depends on the weights' size only, so a
 * row's bits do not depend on R. Weights too small for that split the rows instead (batchBounds).
 * packed: the block's packed matrices (packed-layer.ts), read where they were packed for this split.
 */
export function mlpRows(
  k: KernelCalls,
  y: number,
  h: number,
  a: number,
  R: number,
  wfc: number,
  bfc: number,
  wproj: number,
  bproj: number,
  C: number,
  H: number,
  relu: boolean,
  packed: WasmPackedLayer | null,
): void {
  const bounds = mlpCuts(k, C, H);
  const parts = bounds.length - 1;
  const fcPacked = packed?.pick("fcWeight", wfc, [0, C]) ?? 0;
  const projPacked = packed?.pick("mlpProjWeight", wproj, bounds) ?? 0;
  // per thread: the partial y, then the rows' packing space
  const yBytes = alignedBytes(R * C);
  const s = k.sched.scratch(yBytes + k.x.rowsScratchBytes(R, Math.max(C, H)));
  if (parts <= 1) {
    // the rows over the threads (each row whole on one: no partial outputs)
    const cuts = batchBounds(k, R, () => true);
    const byRows: Args<"mlpRowsPart">[] = [];
    for (let t = 0; t + 1 < cuts.length; t++) {
      const r0 = cuts[t] as number;
      const n = (cuts[t + 1] as number) - r0;
      byRows.push([
        y + r0 * C * 4,
        h + r0 * H * 4,
        a + r0 * C * 4,
        n,
        wfc,
        bfc,
        wproj,
        C,
        H,
        0,
        H,
        relu ? 1 : 0,
        (s[t] as number) + yBytes,
        fcPacked,
        projPacked,
      ]);
    }
    k.parallel("mlpRowsPart", byRows);
    k.x.addBias(y, bproj, R, C);
    return;
  }
  const tasks: Args<"mlpRowsPart">[] = [];
  for (let t = 0; t + 1 < bounds.length; t++) {
    const j0 = bounds[t] as number;
    const j1 = bounds[t + 1] as number;
    const st = s[t] as number;
    if (j1 > j0)
      tasks.push([tasks.length === 0 ? y : st, h, a, R, wfc, bfc, wproj, C, H, j0, j1, relu ? 1 : 0, st + yBytes, fcPacked, projPacked]);
  }
  k.parallel("mlpRowsPart", tasks);
  for (let t = 1; t < tasks.length; t++) k.x.accumulate(y, (tasks[t] as Args<"mlpRowsPart">)[0], R * C);
  k.x.addBias(y, bproj, R, C);
}

/**
 * The attention block of R rows, each at its own position against its own cache (`rows`: a heap
 * table of (kCache, vCache, pos) per row): the heads over the threads (each computes its heads' q, k,
 * v columns for all rows, their attention against each row's cache and their rows of the output
 * projection; the partial outputs are added): one pool round trip for the whole block. The split
 * depends on the weights' size only (not on R or the positions), so a row's bits do not depend on
 * the batch. Weights too small for that split the rows instead, whole sequences to a thread
 * (`startsSequence(r)`: row r is not the previous row's sequence). packed: as mlpRows'.
 */
export function attentionRows(
  k: KernelCalls,
  y: number,
  att: number,
  qkv: number,
  a: number,
  R: number,
  rows: number,
  maxPos: number,
  wattn: number,
  battn: number,
  wproj: number,
  bproj: number,
  C: number,
  nh: number,
  startsSequence: (r: number) => boolean,
  packed: WasmPackedLayer | null,
): void {
  const bounds = headCuts(k, C, nh);
  const parts = bounds.length - 1;
  const attnPacked = packed?.pick("attnWeight", wattn, [0, C]) ?? 0;
  const projPacked =
    packed?.pick(
      "attnProjWeight",
      wproj,
      bounds.map((b) => (b * C) / nh),
    ) ?? 0;
  // per thread: the partial y, the rows' packing space, then the attention scores
  const yBytes = alignedBytes(R * C);
  const packBytes = k.x.rowsScratchBytes(R, C);
  const s = k.sched.scratch(yBytes + packBytes + k.x.attentionCachedScratchBytes(maxPos + 1, nh));
  if (parts <= 1) {
    // the rows over the threads, whole sequences on one (a prompt's rows read the k and v rows the
    // ones before them wrote)
    const cuts = batchBounds(k, R, startsSequence);
    const byRows: Args<"attentionRowsPart">[] = [];
    for (let t = 0; t + 1 < cuts.length; t++) {
      const r0 = cuts[t] as number;
      const n = (cuts[t + 1] as number) - r0;
      const st = s[t] as number;
      const at = (width: number) => r0 * width * 4;
      byRows.push([
        y + at(C),
        att + at(C),
        qkv + at(3 * C),
        a + at(C),
        n,
        rows + r0 * 12,
        wattn,
        battn,
        wproj,
        C,
        nh,
        0,
        nh,
        st + yBytes + packBytes,
        st + yBytes,
        attnPacked,
        projPacked,
      ]);
    }
    k.parallel("attentionRowsPart", byRows);
    k.x.addBias(y, bproj, R, C);
    return;
  }
  const tasks: Args<"attentionRowsPart">[] = [];
  for (let t = 0; t + 1 < bounds.length; t++) {
    const h0 = bounds[t] as number;
    const h1 = bounds[t + 1] as number;
    const st = s[t] as number;
    if (h1 > h0)
      tasks.push([
        tasks.length === 0 ? y : st,
        att,
        qkv,
        a,
        R,
        rows,
        wattn,
        battn,
        wproj,
        C,
        nh,
        h0,
        h1,
        st + yBytes + packBytes,
        st + yBytes,
        attnPacked,
        projPacked,
      ]);
  }
  k.parallel("attentionRowsPart", tasks);
  for (let t = 1; t < tasks.length; t++) k.x.accumulate(y, (tasks[t] as Args<"attentionRowsPart">)[0], R * C);
  k.x.addBias(y, bproj, R, C);
}

/**
 * Whether attentionRows and mlpRows split the weights of a model this wide over the threads (then
 * each row's sums come in parts, and trunkRows, which keeps every row whole, would not give the
 * same bits): the same decisions as theirs, which depend on the weights' size only.
 */
export function splitsWeights(k: KernelCalls, C: number, nh: number, H: number): boolean {
  return k.sched.rowParts(4 * C * C, nh) > 1 || k.sched.rowParts(2 * C * H, Math.floor(H / 8)) > 1;
}

/**
 * Every block of a decode step of R rows (`step`: trunkRowsPart's step block, filled by the caller),
 * the rows over the threads, whole sequences on one: each thread takes its rows through every block
 * in one call, one pool round trip a step. Only where splitsWeights is false: then attentionRows and
 * mlpRows split rows too, so each row's arithmetic is theirs.
 */
export function trunkRows(
  k: KernelCalls,
  step: number,
  R: number,
  maxPos: number,
  C: number,
  nh: number,
  H: number,
  startsSequence: (r: number) => boolean,
): void {
  const attBytes = alignedBytes(k.x.attentionCachedScratchBytes(maxPos + 1, nh) / 4);
  const cuts = batchBounds(k, R, startsSequence);
  const s = k.sched.scratch(attBytes + k.x.rowsScratchBytes(R, Math.max(C, H)));
  const tasks: Args<"trunkRowsPart">[] = [];
  for (let t = 0; t + 1 < cuts.length; t++) {
    const st = s[t] as number;
    tasks.push([step, cuts[t] as number, cuts[t + 1] as number, st, st + attBytes]);
  }
  k.parallel("trunkRowsPart", tasks);
}

/**
 * Every block of a decode step of R rows where splitsWeights is true, in one pool round trip
 * (trunk-split.as): each thread takes its share of every block's heads and hidden units (headCuts,
 * mlpCuts, as attentionRows' and mlpRows') and its rows of the row-wise work between them, the
 * threads meeting in the kernel instead of returning here; each row's arithmetic is attentionRows'
 * and mlpRows' with Block.decode's adds and LayerNorms, so its bits too. step: trunkRowsPart's step
 * block (filled by the caller, y its pointer of the step's y; its keep flags, where set, spare the
 * rows that want no output the last block's attention, projection and MLP, as trunkRows' do);
 * split: trunkSplitBytes(threads) bytes for the split block. mayWait: whether the calling thread
 * may block (barrier.as).
 */
export function trunkSplit(
  k: KernelCalls,
  step: number,
  split: number,
  y: number,
  R: number,
  maxPos: number,
  C: number,
  nh: number,
  H: number,
  mayWait: boolean,
): void {
  const heads = headCuts(k, C, nh);
  const hidden = mlpCuts(k, C, H);
  const parts = Math.max(heads.length, hidden.length) - 1;
  // thread t's share of a product cut at `cuts` (an unsplit product is thread 0's alone)
  const share = (cuts: number[], t: number) => {
    const end = cuts[cuts.length - 1] as number;
    return t + 1 < cuts.length ? [cuts[t] as number, cuts[t + 1] as number] : [end, end];
  };
  // per thread: its partial y (thread 0's is the step's y), the attention scores, the rows' packing space
  const yBytes = alignedBytes(R * C);
  const attBytes = alignedBytes(k.x.attentionCachedScratchBytes(maxPos + 1, nh) / 4);
  const s = k.sched.scratch(yBytes + attBytes + k.x.rowsScratchBytes(R, Math.max(C, H)));
  const threads: number[] = [];
  const tasks: Args<"trunkSplitPart">[] = [];
  for (let t = 0; t < parts; t++) {
    const st = s[t] as number;
    threads.push(...share(heads, t), ...share(hidden, t), t === 0 ? y : st);
    tasks.push([step, split, t, st + yBytes, st + yBytes + attBytes, t > 0 || mayWait ? 1 : 0]);
  }
  // the split block: the parts, the barrier's counts (zero: no meeting yet), the threads' entries
  const at = k.x.trunkSplitThreadsAt();
  const block = new Int32Array(heap().memory.buffer, split, at + threads.length);
  block.fill(0, 0, at);
  block[0] = parts;
  block.set(threads, at);
  k.parallel("trunkSplitPart", tasks);
}
