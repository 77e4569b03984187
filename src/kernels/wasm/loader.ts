/**
 * The `wasm` backend: WebAssembly SIMD kernels (src/kernels/wasm/assembly/*.as, built by
 * scripts/build-wasm.mjs, which also writes their exports' types, ./build/exports.ts) running in place
 * on the tensor heap, optionally split over worker threads. This file maps each Backend method to
 * its kernel calls; around it:
 *   runtime.ts   SIMD / relaxed SIMD probes, V8's flag, which build and matmul tile, compiling the .wasm
 *   schedule.ts  when and where a call is split over threads, with the measurements behind it; scratch
 *   pool.ts      the worker threads a split call runs on; peer.ts: the data-parallel thread that helps
 *
 * - Arrays must be Float32Array / Int32Array views of heap().memory; their byteOffset is the pointer.
 *   Anything else (a Float64Array in a gradient check, a plain Float32Array) goes to the ref kernel,
 *   counted in `stats.fallback`, so the interface stays total.
 * - Most methods are one wasm call with the method's own parameters (direct) or one elementwise
 *   kernel split by elements (byElements); the rest say below how they split their work.
 */
import { heap, isBufferOf } from "../../tensor/memory.js";
import type { Backend, CachedRow, FloatArray } from "../backend.js";
import type { BackendOptions } from "../index.js";
import { refBackend } from "../ref/index.js";
import type { KernelExports } from "./build/exports.js";
import type { PeerLink } from "./peer.js";
import { defaultThreads } from "./platform.js";
import { WorkerPool } from "./pool.js";
import { chooseMatmulTile, chooseSimd, compile, type MatmulTile, type SimdFlavour, simdSupported } from "./runtime.js";
import { alignedRanges, PARALLEL_FLOPS, PEER_ELEMENTS, PEER_FLOPS, ranges, Schedule } from "./schedule.js";

export { chooseMatmulTile, chooseSimd, type MatmulTile, relaxedSimdSupported, type SimdFlavour } from "./runtime.js";

export interface WasmBackend extends Backend {
  readonly simd: SimdFlavour;
  /** matmul's register tile on every thread */
  readonly tile: MatmulTile;
  /** threads a big kernel is split over (1 = calling thread only) */
  readonly threads: number;
  /** kernel calls served by wasm, by the ref fallback, and split over threads */
  readonly stats: { fast: number; fallback: number; parallel: number };
  /** stop the worker threads (the backend keeps working single-threaded) */
  dispose(): void;
  /**
   * Split kernels over at most n threads from now on (1 = the calling thread only, e.g. while other
   * threads of the process run kernels of their own); returns the previous limit.
   */
  useThreads(n: number): number;
  /**
   * Data-parallel training: while `link`'s other thread waits, offer it half of each bigger kernel
   * call whose result does not depend on the split (null: stop; see peer.ts). For a backend running
   * on one thread, as the data-parallel halves do.
   */
  setPeer(link: PeerLink | null): void;
  /** Do a kernel call the other data-parallel thread offered (PeerLink.helpWhile's exec). */
  runPeerTask(kernel: number, args: Float64Array): void;
}

/** kernels the worker threads can run */
const POOL_KERNELS = [
  "matmul",
  "matmulRows",
  "attentionForward",
  "attentionBackward",
  "attentionCached",
  "mlpRowsPart",
  "attentionRowsPart",
  "geluForward",
  "geluBackward",
  "geluForwardGrad",
  "softmax",
  "crossEntropyForward",
  "crossEntropyBackward",
  "adamw",
  "accumulate",
  "setMatmulTile",
] as const;
type PoolKernel = (typeof POOL_KERNELS)[number];

/** a Backend method's argument: an array (a heap view, or not) or a number */
type Arg = FloatArray | Int32Array | number;

/**
 * Backend methods whose wasm export takes the same parameters (as many; arrays become pointers), so
 * that the wasm call can be derived from the method (WasmKernels.direct); the build's generated
 * KernelExports keeps this true to the AssemblyScript source.
 */
type SameParams = {
  [K in keyof Backend & keyof KernelExports]: Backend[K] extends (...a: infer P) => unknown
    ? KernelExports[K] extends (...a: infer Q) => unknown
      ? P["length"] extends Q["length"]
        ? K
        : never
      : never
    : never;
}[keyof Backend & keyof KernelExports];

/**
 * kernels one data-parallel thread may do for the other (their index in POOL_KERNELS is the PeerLink
 * kernel id): their argument count and which argument is the scratch pointer, which the thread doing
 * the call replaces with its own. Each is split where the result does not depend on the split.
 */
const PEER_KERNELS: Partial<Record<PoolKernel, readonly [args: number, scratch: number]>> = {
  matmul: [11, 9],
  attentionForward: [10, 9],
  attentionBackward: [12, 11],
  // elementwise and row-wise (no scratch)
  geluForward: [3, -1],
  geluBackward: [4, -1],
  geluForwardGrad: [4, -1],
  softmax: [4, -1],
  crossEntropyForward: [6, -1],
  crossEntropyBackward: [7, -1],
  adamw: [12, -1],
  accumulate: [3, -1],
};
export interface WasmLoadOptions extends BackendOptions {
  /** force a SIMD flavour (default: MINIGPT_WASM_SIMD, else the best available) */
  simd?: SimdFlavour;
  /** force matmul's register tile (default: MINIGPT_MATMUL_TILE, else chooseMatmulTile()'s pick) */
  tile?: MatmulTile;
}

export async function loadWasmBackend(options: WasmLoadOptions = {}): Promise<WasmBackend> {
  if (!simdSupported()) throw new Error("wasm backend: this runtime has no WebAssembly SIMD");
  const simd = options.simd ?? (await chooseSimd());
  const module = await compile(simd);
  const memory = heap().memory;
  const instance = await WebAssembly.instantiate(module, { env: { memory } });
  const threads = Math.max(1, Math.floor(options.threads ?? (await defaultThreads())));
  const pool = threads > 1 ? await WorkerPool.create(threads - 1, module, memory, POOL_KERNELS) : null;
  const x = instance.exports as unknown as KernelExports;
  const tile = options.tile ?? chooseMatmulTile();
  const tileId = tile === "3x12" ? 1 : 0;
  x.setMatmulTile(tileId);
  // the helpers' instances have globals of their own: the same tile on every thread
  pool?.run(
    "setMatmulTile",
    Array.from({ length: pool.size + 1 }, () => [tileId]),
    (a) => x.setMatmulTile(a[0] as number),
  );
  return new WasmKernels(x, simd, tile, threads, pool);
}

class WasmKernels implements WasmBackend {
  readonly name = "wasm";
  readonly stats = { fast: 0, fallback: 0, parallel: 0 };
  private pool: WorkerPool | null;
  private peer: PeerLink | null = null;
  /** attentionRows' table of (kCache, vCache, pos) per row, on the heap */
  private rowTablePtr = 0;
  private rowTableBytes = 0;
  private readonly sched: Schedule;

  constructor(
    private readonly x: KernelExports,
    readonly simd: SimdFlavour,
    readonly tile: MatmulTile,
    readonly threads: number,
    pool: WorkerPool | null,
  ) {
    this.pool = pool;
    this.sched = new Schedule(pool ? pool.size + 1 : 1, pool?.spins === true, x.matmulScratchBytes());
  }

  dispose(): void {
    this.pool?.dispose();
    this.pool = null;
    this.sched.threads = 1;
  }

  useThreads(n: number): number {
    const before = this.sched.threads;
    this.sched.threads = Math.max(1, Math.min(Math.floor(n), this.pool ? this.pool.size + 1 : 1));
    return before;
  }

  // ---- plumbing ----------------------------------------------------------------------------------

  /** byte offset of arr in the heap memory, or -1 when arr is not a Float32Array/Int32Array view of it */
  private ptr(arr: FloatArray | Int32Array): number {
    if (!(arr instanceof Float32Array) && !(arr instanceof Int32Array)) return -1;
    return isBufferOf(heap().memory, arr.buffer) ? arr.byteOffset : -1;
  }

  /** pointers of all arrays, or null (then the caller uses ref) */
  private ptrs(...arrs: (FloatArray | Int32Array)[]): number[] | null {
    return this.pointers(arrs);
  }

  /**
   * Runs fn over `units` independent units (elements or rows, `elems` elements each), split over the
   * threads when there are enough elements; args(start, count) gives one task's arguments.
   */
  private split(fn: PoolKernel, units: number, elems: number, args: (start: number, count: number) => number[]): void {
    let parts = this.sched.elementParts(units, elems);
    // units are independent: offered to a waiting data-parallel thread, the result is the same
    const offer = parts === 1 && units >= 8 && units * elems >= PEER_ELEMENTS && PEER_KERNELS[fn] !== undefined && this.peerIdle();
    if (offer) parts = 2;
    const tasks = alignedRanges(units, parts, elems === 1 ? 4 : 1).map(([a, b]) => args(a, b - a));
    if (offer && tasks.length === 2) this.share(fn, tasks[0] as number[], tasks[1] as number[]);
    else this.parallel(fn, tasks);
  }

  private parallel(fn: PoolKernel, tasks: number[][]): void {
    const f = this.x[fn] as unknown as (...a: number[]) => void;
    if (tasks.length === 1 || !this.pool) {
      for (const t of tasks) f(...t);
      return;
    }
    this.stats.parallel++;
    this.pool.run(fn, tasks, (a) => f(...a));
  }

  /**
   * The Backend method `fn` as one wasm call: the arrays become their heap pointers and the numbers
   * pass as they are, in the same order (SameParams: the export takes the method's parameters); when
   * an array is not on the heap, the ref kernel.
   */
  private direct<K extends SameParams>(fn: K): Backend[K] {
    const ref = refBackend[fn] as (...a: Arg[]) => number | undefined;
    return ((...args: Arg[]) => {
      const p = this.pointers(args);
      return p ? (this.x[fn] as (...a: number[]) => number | undefined)(...p) : ref(...args);
    }) as Backend[K];
  }

  /**
   * The Backend method `fn`(arrays..., n, scalars...) over n elements of each array as wasm calls
   * split over the threads by elements (elementwise()), or the ref kernel.
   */
  private byElements<K extends SameParams & PoolKernel>(fn: K): Backend[K] {
    const ref = refBackend[fn] as (...a: Arg[]) => void;
    return ((...args: Arg[]) => {
      const k = args.findIndex((a) => typeof a === "number");
      const arrays = args.slice(0, k) as FloatArray[];
      if (!this.elementwise(fn, arrays, args[k] as number, args.slice(k + 1) as number[])) ref(...args);
    }) as Backend[K];
  }

  /** the arguments with each array replaced by its heap pointer, or null (counted as a fallback) */
  private pointers(args: Arg[]): number[] | null {
    const out = new Array<number>(args.length);
    for (let i = 0; i < args.length; i++) {
      const a = args[i] as Arg;
      if (typeof a === "number") {
        out[i] = a;
        continue;
      }
      const p = this.ptr(a);
      if (p < 0) {
        this.stats.fallback++;
        return null;
      }
      out[i] = p;
    }
    this.stats.fast++;
    return out;
  }

  // ---- one wasm call each, or one elementwise kernel split by elements ----------------------------

  readonly addBias = this.direct("addBias");
  readonly zero = this.direct("zero");
  readonly copy = this.direct("copy");
  readonly add = this.direct("add");
  readonly scale = this.direct("scale");
  readonly sumSquares = this.direct("sumSquares");
  readonly mul = this.direct("mul");
  readonly layernormForward = this.direct("layernormForward");
  readonly layernormBackward = this.direct("layernormBackward");
  readonly reluForward = this.direct("reluForward");
  readonly reluBackward = this.direct("reluBackward");
  readonly embeddingForward = this.direct("embeddingForward");
  readonly embeddingBackward = this.direct("embeddingBackward");
  readonly geluForward = this.byElements("geluForward");
  readonly geluBackward = this.byElements("geluBackward");
  readonly geluForwardGrad = this.byElements("geluForwardGrad");
  readonly adamw = this.byElements("adamw");

  // ---- matmul ------------------------------------------------------------------------------------

  /**
   * The tasks of out (M,N) (+)= a·b in layout `kind` (pointers), rows split into `parts` pieces
   * (multiples of 4 rows) that use the scratch of threads scratch0, scratch0 + 1, ... Every piece
   * has >= 4 rows (a last piece of fewer joins the one before): a call of < 4 rows takes matmulRows'
   * other summation order, and a split must give the bits of one call.
   */
  private mmTasks(
    kind: number,
    po: number,
    pa: number,
    pb: number,
    M: number,
    K: number,
    N: number,
    acc: boolean,
    bias: number,
    parts: number,
    scratch0: number,
  ): number[][] {
    const s = this.sched.scratch(0);
    const lda = kind === 2 ? M : K;
    const rows = Math.ceil(M / Math.max(1, parts) / 4) * 4;
    const tasks: number[][] = [];
    for (let t = scratch0, m0 = 0, m = 0; m0 < M; t++, m0 += m) {
      m = M - m0 - rows < 4 ? M - m0 : rows;
      const aOff = kind === 2 ? pa + m0 * 4 : pa + m0 * K * 4;
      tasks.push([kind, po + m0 * N * 4, aOff, pb, m, K, N, lda, acc ? 1 : 0, s[t] as number, bias]);
    }
    return tasks;
  }

  private mm(
    kind: number,
    out: FloatArray,
    a: FloatArray,
    b: FloatArray,
    M: number,
    K: number,
    N: number,
    acc: boolean,
    bias: FloatArray | null = null,
  ): void {
    const p = bias ? this.ptrs(out, a, b, bias) : this.ptrs(out, a, b);
    if (!p) {
      const ref = kind === 0 ? refBackend.matmul : kind === 1 ? refBackend.matmulBT : refBackend.matmulAT;
      ref(out, a, b, M, K, N, acc);
      if (bias) refBackend.addBias(out, bias, M, N);
      return;
    }
    const [po, pa, pb] = p as [number, number, number];
    const pbias = bias ? (p[3] as number) : 0;
    if (M < 4 && M > 0) {
      this.mmRows(kind, po, pa, pb, M, K, N, acc, pbias);
      return;
    }
    const flops = 2 * M * K * N;
    const parts = this.sched.matmulParts(M, flops);
    if (parts === 1 && M >= 12 && this.peerWaiting(flops)) {
      // offer the second half of the rows: from M = 12 both parts have >= 4 rows and start on a
      // multiple of 4, so the result is bit-identical to one call (a part of < 4 rows would take
      // matmulRows' other summation order)
      const [mine, theirs] = this.mmTasks(kind, po, pa, pb, M, K, N, acc, pbias, 2, 0) as [number[], number[]];
      this.share("matmul", mine, theirs);
      return;
    }
    this.parallel("matmul", this.mmTasks(kind, po, pa, pb, M, K, N, acc, pbias, parts, 0));
  }

  setPeer(link: PeerLink | null): void {
    this.peer = link;
  }

  /** is the other data-parallel thread waiting (and so ready to take work)? */
  private peerIdle(): boolean {
    return this.peer?.otherIdle() === true;
  }

  /** ... and a call of `flops` worth offering to it? */
  private peerWaiting(flops: number): boolean {
    return flops >= PEER_FLOPS && this.peerIdle();
  }

  /** Run fn on `mine` and offer `theirs` to the other data-parallel thread (see peer.ts). */
  private share(fn: PoolKernel, mine: number[], theirs: number[]): void {
    // a thread on its own has one scratch: when the offer is not taken, this thread does both halves
    // on it (a taker puts its own scratch in: runPeerTask)
    const at = PEER_KERNELS[fn]?.[1] ?? -1;
    if (at >= 0) theirs[at] = mine[at] as number;
    const f = this.x[fn] as unknown as (...a: number[]) => void;
    (this.peer as PeerLink).share(POOL_KERNELS.indexOf(fn), mine, theirs, (a) => f(...a));
  }

  runPeerTask(kernel: number, args: Float64Array): void {
    const fn = POOL_KERNELS[kernel];
    const shape = fn && PEER_KERNELS[fn];
    if (!fn || !shape) throw new Error(`data-parallel peer: kernel ${kernel} cannot be shared`);
    const a = Array.from(args.subarray(0, shape[0]));
    if (shape[1] >= 0) {
      // attention's scratch size depends on T, C, nh: the arguments after B (argument 3 of the
      // forward, 5 of the backward); matmul's is fixed
      const at = fn === "attentionForward" ? 3 : fn === "attentionBackward" ? 5 : -1;
      const bytes = at < 0 ? 0 : this.x.attentionScratchBytes(a[at + 1] as number, a[at + 2] as number, a[at + 3] as number);
      a[shape[1]] = this.sched.scratch(bytes)[0] as number;
    }
    (this.x[fn] as unknown as (...v: number[]) => void)(...a);
  }

  /**
   * out (M,N) (+)= a·b (+ bias) for M < 4 rows (one generated token), or any M for the decode's rows
   * (linearRows: each row as a one-row call): bound by reading B once from
   * memory. With threads, kind 1 splits N (B's rows) and kinds 0 and 2 split K (B's rows too: each
   * thread streams one contiguous block; the helpers' partial sums go to their scratch and are added
   * after). The calling thread starts at once while a helper first has to wake up, so it takes the
   * bigger share (Schedule.shares).
   */
  private mmRows(kind: number, po: number, pa: number, pb: number, M: number, K: number, N: number, acc: boolean, pbias: number): void {
    const lda = kind === 2 ? M : K;
    const units = kind === 1 ? N : K;
    const parts = this.sched.rowParts(K * N, Math.floor(units / 8));
    if (parts <= 1) {
      this.x.matmulRows(kind, po, pa, pb, M, K, N, lda, acc ? 1 : 0, 0, N);
    } else {
      const bounds = this.sched.shares(units, parts, K * N, 8);
      const s = kind === 1 ? [] : this.sched.scratch(M * N * 4);
      const tasks: number[][] = [];
      for (let t = 0; t < parts; t++) {
        const u0 = bounds[t] as number;
        const u1 = bounds[t + 1] as number;
        if (u1 <= u0) continue;
        if (kind === 1) {
          tasks.push([kind, po, pa, pb, M, K, N, lda, acc ? 1 : 0, u0, u1]);
        } else {
          const aOff = kind === 2 ? pa + u0 * lda * 4 : pa + u0 * 4;
          const out = tasks.length === 0 ? po : (s[t] as number);
          tasks.push([kind, out, aOff, pb + u0 * N * 4, M, u1 - u0, N, lda, tasks.length === 0 && acc ? 1 : 0, 0, N]);
        }
      }
      this.parallel("matmulRows", tasks);
      if (kind !== 1) for (let t = 1; t < tasks.length; t++) this.x.accumulate(po, (tasks[t] as number[])[1] as number, M * N);
    }
    if (pbias) this.x.addBias(po, pbias, M, N);
  }

  matmul(out: FloatArray, a: FloatArray, b: FloatArray, M: number, K: number, N: number, accumulate: boolean): void {
    this.mm(0, out, a, b, M, K, N, accumulate);
  }
  matmulBT(out: FloatArray, a: FloatArray, b: FloatArray, M: number, K: number, N: number, accumulate: boolean): void {
    this.mm(1, out, a, b, M, K, N, accumulate);
  }
  matmulAT(out: FloatArray, a: FloatArray, b: FloatArray, M: number, K: number, N: number, accumulate: boolean): void {
    this.mm(2, out, a, b, M, K, N, accumulate);
  }

  linearForward(out: FloatArray, x: FloatArray, w: FloatArray, bias: FloatArray | null, M: number, K: number, N: number): void {
    this.mm(0, out, x, w, M, K, N, false, bias);
  }

  linearBackward(
    dx: FloatArray | null,
    dw: FloatArray | null,
    db: FloatArray | null,
    dy: FloatArray,
    x: FloatArray,
    w: FloatArray,
    M: number,
    K: number,
    N: number,
    overwriteDx = false,
  ): void {
    const accDx = !overwriteDx;
    const flops = 2 * M * K * N;
    const p = dx && dw && M >= 4 && this.sched.threads > 1 && flops >= PARALLEL_FLOPS ? this.ptrs(dx, dw, dy, x, w) : null;
    const q = !p && dx && dw && M >= 4 && this.peerWaiting(flops) ? this.ptrs(dx, dw, dy, x, w) : null;
    if (p) {
      // dx = dy·wᵀ and dw = xᵀ·dy take the same flops and share no output: run them side by side,
      // each on its own half of the threads, in one round trip
      const [pdx, pdw, pdy, px, pw] = p as [number, number, number, number, number];
      const half = Math.max(1, this.sched.threads >> 1);
      const tasks = [
        ...this.mmTasks(1, pdx, pdy, pw, M, N, K, accDx, 0, Math.min(half, Math.floor(M / 8)), 0),
        ...this.mmTasks(2, pdw, px, pdy, K, M, N, true, 0, Math.min(this.sched.threads - half, Math.max(1, Math.floor(K / 8))), half),
      ];
      this.parallel("matmul", tasks);
    } else if (q) {
      // the other data-parallel thread is waiting: offer it dw whole while this thread does dx (each
      // is one call wherever it runs, so the result is that of the two calls below)
      const [pdx, pdw, pdy, px, pw] = q as [number, number, number, number, number];
      const [mine] = this.mmTasks(1, pdx, pdy, pw, M, N, K, accDx, 0, 1, 0) as [number[]];
      const [theirs] = this.mmTasks(2, pdw, px, pdy, K, M, N, true, 0, 1, 0) as [number[]];
      this.share("matmul", mine, theirs);
    } else {
      if (dx) this.mm(1, dx, dy, w, M, N, K, accDx);
      if (dw) this.mm(2, dw, x, dy, K, M, N, true);
    }
    if (db) this.sumRows(db, dy, M, N);
  }

  // ---- elementwise -------------------------------------------------------------------------------

  sumRows(out: FloatArray, x: FloatArray, rows: number, cols: number): void {
    const p = this.ptrs(out, x);
    if (p) this.x.sumRows(p[0] as number, p[1] as number, rows, cols, this.sched.scratch(cols * 8)[0] as number);
    else refBackend.sumRows(out, x, rows, cols);
  }
  accumulate(dst: FloatArray, src: FloatArray, n: number): void {
    // not split over the pool (memory-bound: a sleeping worker's wake-up costs more), only offered
    if (n >= PEER_ELEMENTS && this.peerIdle()) {
      if (!this.elementwise("accumulate", [dst, src], n)) refBackend.accumulate(dst, src, n);
      return;
    }
    const p = this.ptrs(dst, src);
    if (p) this.x.accumulate(p[0] as number, p[1] as number, n);
    else refBackend.accumulate(dst, src, n);
  }

  // ---- activations -------------------------------------------------------------------------------

  /**
   * An elementwise kernel fn(arrays..., count, ...rest) over n elements of each array, split by
   * split(); false (nothing done) when an array is not on the tensor heap, for the caller's ref fallback.
   */
  private elementwise(fn: PoolKernel, arrays: FloatArray[], n: number, rest: number[] = []): boolean {
    const p = this.ptrs(...arrays);
    if (!p) return false;
    this.split(fn, n, 1, (i, c) => [...p.map((q) => q + 4 * i), c, ...rest]);
    return true;
  }

  // ---- attention ---------------------------------------------------------------------------------

  /**
   * Attention's (b, h) pairs over the threads, or, on one thread, half of them offered to a waiting
   * data-parallel thread: pairs are independent, so any split gives the same result. task(a, b,
   * scratch) is the call for pairs [a, b) on the thread that owns `scratch`.
   */
  private attentionPairs(
    fn: "attentionForward" | "attentionBackward",
    B: number,
    T: number,
    C: number,
    nh: number,
    flops: number,
    task: (a: number, b: number, scratch: number) => number[],
  ): void {
    const s = this.sched.scratch(this.x.attentionScratchBytes(T, C, nh));
    const pairs = B * nh;
    const parts = this.sched.parts(pairs, flops);
    if (parts === 1 && pairs >= 2 && this.peerWaiting(flops)) {
      const [mine, theirs] = ranges(pairs, 2).map(([a, b]) => task(a, b, s[0] as number)) as [number[], number[]];
      this.share(fn, mine, theirs);
      return;
    }
    this.parallel(
      fn,
      ranges(pairs, parts).map(([a, b], t) => task(a, b, s[t] as number)),
    );
  }

  attentionForward(out: FloatArray, lse: FloatArray, qkv: FloatArray, B: number, T: number, C: number, nh: number): void {
    const p = this.ptrs(out, lse, qkv);
    if (!p) {
      refBackend.attentionForward(out, lse, qkv, B, T, C, nh);
      return;
    }
    const [po, pl, pq] = p as [number, number, number];
    this.attentionPairs("attentionForward", B, T, C, nh, 2 * B * T * T * C, (a, b, sc) => [po, pl, pq, B, T, C, nh, a, b, sc]);
  }

  attentionBackward(
    dqkv: FloatArray,
    dout: FloatArray,
    qkv: FloatArray,
    out: FloatArray,
    lse: FloatArray,
    B: number,
    T: number,
    C: number,
    nh: number,
  ): void {
    const p = this.ptrs(dqkv, dout, qkv, out, lse);
    if (!p) {
      refBackend.attentionBackward(dqkv, dout, qkv, out, lse, B, T, C, nh);
      return;
    }
    const [pd, pg, pq, po, pl] = p as [number, number, number, number, number];
    this.attentionPairs("attentionBackward", B, T, C, nh, 4 * B * T * T * C, (a, b, sc) => [pd, pg, pq, po, pl, B, T, C, nh, a, b, sc]);
  }

  attentionCached(
    out: FloatArray,
    qkv: FloatArray,
    kCache: FloatArray,
    vCache: FloatArray,
    Tn: number,
    pos0: number,
    C: number,
    nh: number,
  ): void {
    const p = this.ptrs(out, qkv, kCache, vCache);
    if (!p) {
      refBackend.attentionCached(out, qkv, kCache, vCache, Tn, pos0, C, nh);
      return;
    }
    const s = this.sched.scratch(this.x.attentionCachedScratchBytes(pos0 + Tn, nh));
    const parts = this.sched.parts(nh, 4 * Tn * (pos0 + Tn) * C);
    const tasks = ranges(nh, parts).map(([a, b], t) => [
      p[0] as number,
      p[1] as number,
      p[2] as number,
      p[3] as number,
      Tn,
      pos0,
      C,
      nh,
      a,
      b,
      s[t] as number,
    ]);
    this.parallel("attentionCached", tasks);
  }

  // ---- one-token decode of R sequences at once (generation) ---------------------------------------

  /** every row as a one-row call: matmulRows for any M (the blocked matmul's order would depend on M) */
  linearRows(out: FloatArray, x: FloatArray, w: FloatArray, bias: FloatArray | null, M: number, K: number, N: number): void {
    const p = bias ? this.ptrs(out, x, w, bias) : this.ptrs(out, x, w);
    if (!p) {
      refBackend.linearRows(out, x, w, bias, M, K, N);
      return;
    }
    this.mmRows(0, p[0] as number, p[1] as number, p[2] as number, M, K, N, false, bias ? (p[3] as number) : 0);
  }

  matmulBTRows(out: FloatArray, a: FloatArray, b: FloatArray, M: number, K: number, N: number): void {
    const p = this.ptrs(out, a, b);
    if (!p) {
      refBackend.matmulBTRows(out, a, b, M, K, N);
      return;
    }
    this.mmRows(1, p[0] as number, p[1] as number, p[2] as number, M, K, N, false, 0);
  }

  /**
   * Splits the hidden units over the threads (each streams its columns of wfc and its rows of wproj
   * once for all R rows, then the partial outputs are added): one pool round trip for the whole MLP.
   * The split depends on the weights' size only, so a row's bits do not depend on R.
   */
  mlpRows(
    y: FloatArray,
    h: FloatArray,
    a: FloatArray,
    R: number,
    wfc: FloatArray,
    bfc: FloatArray,
    wproj: FloatArray,
    bproj: FloatArray,
    C: number,
    H: number,
    relu: boolean,
  ): void {
    const p = this.ptrs(y, h, a, wfc, bfc, wproj, bproj);
    if (!p) {
      refBackend.mlpRows(y, h, a, R, wfc, bfc, wproj, bproj, C, H, relu);
      return;
    }
    const [py, ph, pa, pwfc, pbfc, pwproj, pbproj] = p as [number, number, number, number, number, number, number];
    const floats = 2 * C * H;
    const parts = this.sched.rowParts(floats, Math.floor(H / 8));
    const bounds = parts > 1 ? this.sched.shares(H, parts, floats, 8) : [0, H];
    const s = parts > 1 ? this.sched.scratch(R * C * 4) : [];
    const tasks: number[][] = [];
    for (let t = 0; t + 1 < bounds.length; t++) {
      const j0 = bounds[t] as number;
      const j1 = bounds[t + 1] as number;
      if (j1 > j0) tasks.push([tasks.length === 0 ? py : (s[t] as number), ph, pa, R, pwfc, pbfc, pwproj, C, H, j0, j1, relu ? 1 : 0]);
    }
    this.parallel("mlpRowsPart", tasks);
    for (let t = 1; t < tasks.length; t++) this.x.accumulate(py, (tasks[t] as number[])[0] as number, R * C);
    this.x.addBias(py, pbproj, R, C);
  }

  /**
   * Splits the heads over the threads (each computes its heads' q, k, v columns for all R rows, their
   * attention against each row's cache and their rows of the output projection; the partial outputs
   * are added): one pool round trip for the whole attention block. The split depends on the weights'
   * size only (not on R or the positions), so a row's bits do not depend on the batch.
   */
  attentionRows(
    y: FloatArray,
    att: FloatArray,
    qkv: FloatArray,
    a: FloatArray,
    rows: readonly CachedRow[],
    wattn: FloatArray,
    battn: FloatArray,
    wproj: FloatArray,
    bproj: FloatArray,
    C: number,
    nh: number,
  ): void {
    const R = rows.length;
    const p = this.ptrs(y, att, qkv, a, wattn, battn, wproj, bproj);
    const table = p ? this.rowTable(rows) : -1;
    if (!p || table < 0) {
      refBackend.attentionRows(y, att, qkv, a, rows, wattn, battn, wproj, bproj, C, nh);
      return;
    }
    const [py, patt, pqkv, pa, pwattn, pbattn, pwproj, pbproj] = p as number[] as [
      number,
      number,
      number,
      number,
      number,
      number,
      number,
      number,
    ];
    const floats = 4 * C * C;
    const parts = this.sched.rowParts(floats, nh);
    const bounds = parts > 1 ? this.sched.shares(nh, parts, floats, 1) : [0, nh];
    let maxPos = 0;
    for (const r of rows) maxPos = Math.max(maxPos, r.pos);
    // per thread: the partial y (R·C floats, 16-byte aligned), then the attention scores
    const yBytes = Math.ceil((R * C) / 4) * 16;
    const s = this.sched.scratch(yBytes + this.x.attentionCachedScratchBytes(maxPos + 1, nh));
    const tasks: number[][] = [];
    for (let t = 0; t + 1 < bounds.length; t++) {
      const h0 = bounds[t] as number;
      const h1 = bounds[t + 1] as number;
      const st = s[t] as number;
      if (h1 > h0) tasks.push([tasks.length === 0 ? py : st, patt, pqkv, pa, R, table, pwattn, pbattn, pwproj, C, nh, h0, h1, st + yBytes]);
    }
    this.parallel("attentionRowsPart", tasks);
    for (let t = 1; t < tasks.length; t++) this.x.accumulate(py, (tasks[t] as number[])[0] as number, R * C);
    this.x.addBias(py, pbproj, R, C);
  }

  /** the rows' (kCache, vCache, pos) as i32 triples on the heap (attentionRowsPart's table), or -1 */
  private rowTable(rows: readonly CachedRow[]): number {
    const bytes = rows.length * 12;
    if (bytes > this.rowTableBytes) {
      if (this.rowTableBytes > 0) heap().release(this.rowTablePtr, this.rowTableBytes);
      this.rowTableBytes = Math.max(bytes, 16 * 12);
      this.rowTablePtr = heap().alloc(this.rowTableBytes);
    }
    const t = new Int32Array(heap().memory.buffer, this.rowTablePtr, rows.length * 3);
    for (let r = 0; r < rows.length; r++) {
      const row = rows[r] as CachedRow;
      const k = this.ptr(row.keys);
      const v = this.ptr(row.values);
      if (k < 0 || v < 0) return -1;
      t[3 * r] = k;
      t[3 * r + 1] = v;
      t[3 * r + 2] = row.pos;
    }
    return this.rowTablePtr;
  }

  // ---- softmax, cross-entropy, embedding ---------------------------------------------------------

  softmax(out: FloatArray, x: FloatArray, rows: number, cols: number): void {
    const p = this.ptrs(out, x);
    if (!p) {
      refBackend.softmax(out, x, rows, cols);
      return;
    }
    const [po, px] = p as [number, number];
    this.split("softmax", rows, cols, (r, c) => [po + 4 * r * cols, px + 4 * r * cols, c, cols]);
  }
  crossEntropyForward(losses: FloatArray, lse: FloatArray, logits: FloatArray, targets: Int32Array, N: number, V: number): void {
    const p = this.ptrs(losses, lse, logits, targets);
    if (!p) {
      refBackend.crossEntropyForward(losses, lse, logits, targets, N, V);
      return;
    }
    const [pl, ps, px, pt] = p as [number, number, number, number];
    this.split("crossEntropyForward", N, V, (r, c) => [pl + 4 * r, ps + 4 * r, px + 4 * r * V, pt + 4 * r, c, V]);
  }
  crossEntropyBackward(
    dlogits: FloatArray,
    logits: FloatArray,
    lse: FloatArray,
    targets: Int32Array,
    N: number,
    V: number,
    scale: number,
  ): void {
    const p = this.ptrs(dlogits, logits, lse, targets);
    if (!p) {
      refBackend.crossEntropyBackward(dlogits, logits, lse, targets, N, V, scale);
      return;
    }
    const [pd, px, ps, pt] = p as [number, number, number, number];
    this.split("crossEntropyBackward", N, V, (r, c) => [pd + 4 * r * V, px + 4 * r * V, ps + 4 * r, pt + 4 * r, c, V, scale]);
  }
}
