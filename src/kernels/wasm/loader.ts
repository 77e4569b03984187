/**
 * The `wasm` backend: WebAssembly SIMD kernels (src/kernels/wasm/assembly/*.as, built by
 * scripts/build-wasm.mjs, which also writes their exports' types and argument layouts,
 * ./build/exports.ts) running in place on the tensor heap, optionally split over worker threads.
 * This file maps each Backend method to its kernel calls; around it:
 *   runtime.ts   SIMD / relaxed SIMD probes, V8's flag, which build and matmul tile, compiling the .wasm
 *   schedule.ts  when and where a call is split over threads, with the measurements behind it; scratch
 *   calls.ts     typed kernel calls, the kernels the threads run; decode.ts: generation's calls
 *   pool.ts      the worker threads a split call runs on; peer.ts: the data-parallel thread that helps
 *
 * - Arrays must be Float32Array / Int32Array views of heap().memory; their byteOffset is the pointer.
 *   Anything else (a Float64Array in a gradient check, a plain Float32Array) goes to the ref kernel,
 *   counted in `stats.fallback`, so the interface stays total (onHeap).
 * - Most methods are one wasm call with the method's own parameters (direct) or one elementwise
 *   kernel split by elements (byElements); the rest say below how they split their work.
 */
import { heap, isBufferOf } from "../../tensor/memory.js";
import type {
  AdamwStep,
  AdamwTensor,
  Backend,
  CachedRow,
  DecodeMatrices,
  FloatArray,
  PackedLayer,
  TrunkLayer,
  TrunkRows,
} from "../backend.js";
import type { BackendOptions } from "../index.js";
import { refBackend } from "../ref/index.js";
import { sampleTemperature as refSampleTemperature } from "../ref/sample.js";
import { ADAMW_RECORD, type AdamwRecord, adamwCuts, writeAdamwTable } from "./adamw-many.js";
import { type KernelExports, kernelParams } from "./build/exports.js";
import { type Args, argIndex, type KernelCalls, PEER_KERNELS, POOL_KERNELS, type PoolKernel } from "./calls.js";
import * as decode from "./decode.js";
import { decodeShapes, PACKED_MATRICES, packLayer, WasmPackedLayer } from "./packed-layer.js";
import type { PeerLink } from "./peer.js";
import { atomicsWaitAllowed, defaultThreads } from "./platform.js";
import { WorkerPool } from "./pool.js";
import { chooseMatmulTile, chooseSimd, compile, type MatmulTile, type SimdFlavour, simdSupported } from "./runtime.js";
import { alignedRanges, PARALLEL_FLOPS, PEER_ELEMENTS, PEER_FLOPS, ranges, Schedule } from "./schedule.js";

export { chooseMatmulTile, chooseSimd, type MatmulTile, relaxedSimdSupported, type SimdFlavour } from "./runtime.js";

/**
 * a TrunkLayer's weights in the order of trunkRowsPart's layers table (decode.as: LAYER_LN1W ..);
 * the packed copies' pointers follow (PACKED_MATRICES' order, from trunkLayerPackedAt)
 */
const TRUNK_LAYER_FIELDS: readonly Exclude<keyof TrunkLayer, "packed">[] = [
  "ln1Weight",
  "ln1Bias",
  "attnWeight",
  "attnBias",
  "attnProjWeight",
  "attnProjBias",
  "ln2Weight",
  "ln2Bias",
  "fcWeight",
  "fcBias",
  "mlpProjWeight",
  "mlpProjBias",
];

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

/** a Backend method's argument: an array (a heap view, or not; null where a method allows it), a number or a flag */
type Arg = FloatArray | Int32Array | number | boolean | null | undefined;

/** the Backend methods (not `name`) */
type Method = { [K in keyof Backend]-?: Backend[K] extends (...a: never[]) => unknown ? K : never }[keyof Backend];

/** a method's parameters with every array as its heap pointer (null: 0) and the numbers and flags as they are */
type OnHeap<P extends unknown[]> = { [I in keyof P]: P[I] extends number | boolean | undefined ? P[I] : number };

/**
 * Backend methods whose wasm export takes the same parameters (as many; arrays become pointers), so
 * that the wasm call can be derived from the method (direct); the build's generated KernelExports
 * keeps this true to the AssemblyScript source.
 */
type SameParams = {
  [K in Method & keyof KernelExports]: Parameters<Backend[K]>["length"] extends Parameters<KernelExports[K]>["length"] ? K : never;
}[Method & keyof KernelExports];

interface WasmLoadOptions extends BackendOptions {
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

/** matmul's layouts (the kernels' `kind`): a·b, a·bᵀ, aᵀ·b */
const AB = 0;
const ABT = 1;
const ATB = 2;

class WasmKernels implements WasmBackend, KernelCalls {
  readonly name = "wasm";
  readonly stats = { fast: 0, fallback: 0, parallel: 0 };
  /** whether this thread may block in a wait (not a browser page's main thread): barrier.as's meet */
  private readonly mayWait = atomicsWaitAllowed();
  private pool: WorkerPool | null;
  private peer: PeerLink | null = null;
  readonly sched: Schedule;

  constructor(
    readonly x: KernelExports,
    readonly simd: SimdFlavour,
    readonly tile: MatmulTile,
    readonly threads: number,
    pool: WorkerPool | null,
  ) {
    this.pool = pool;
    this.sched = new Schedule(pool ? pool.size + 1 : 1, pool?.spins === true, x.matmulScratchBytes());
    const fields = TRUNK_LAYER_FIELDS.length + PACKED_MATRICES.length;
    if (x.trunkLayerPackedAt() !== TRUNK_LAYER_FIELDS.length || x.trunkLayerBytes() !== 4 * fields)
      throw new Error("wasm backend: decode.as's layer table is not the one loader.ts writes (rebuild: npm run build:wasm)");
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

  /**
   * The Backend method fn as `body` over heap pointers: each array argument becomes its byte offset
   * in the heap (null: 0), numbers and flags pass as they are; when an array is not a Float32Array /
   * Int32Array view of the heap, the ref kernel does the call instead (counted as a fallback).
   */
  private onHeap<K extends Method>(fn: K, body: (...p: OnHeap<Parameters<Backend[K]>>) => ReturnType<Backend[K]>): Backend[K] {
    const ref = refBackend[fn] as (...a: Arg[]) => ReturnType<Backend[K]>;
    const run = body as (...p: Arg[]) => ReturnType<Backend[K]>;
    return ((...args: Arg[]) => {
      const memory = heap().memory;
      const p = new Array<Arg>(args.length);
      for (let i = 0; i < args.length; i++) {
        const a = args[i];
        if (a === null) {
          p[i] = 0;
        } else if (typeof a !== "object") {
          p[i] = a;
        } else if ((a instanceof Float32Array || a instanceof Int32Array) && isBufferOf(memory, a.buffer)) {
          p[i] = a.byteOffset;
        } else {
          this.stats.fallback++;
          return ref(...args);
        }
      }
      this.stats.fast++;
      return run(...p);
    }) as unknown as Backend[K];
  }

  /** The Backend method fn as one wasm call with the same parameters (SameParams). */
  private direct<K extends SameParams>(fn: K): Backend[K] {
    // (this.x is not set yet while the fields below are made)
    return this.onHeap(fn, ((...p: number[]) => (this.x[fn] as (...a: number[]) => ReturnType<Backend[K]>)(...p)) as never);
  }

  /**
   * The Backend method fn(arrays..., n, scalars...) over n elements of each array as wasm calls split
   * over the threads by elements (split()).
   */
  private byElements<K extends SameParams & PoolKernel>(fn: K): Backend[K] {
    return this.onHeap(fn, ((...p: number[]) => this.elementwise(fn, p)) as never);
  }

  /**
   * An elementwise kernel fn(pointers..., n, scalars...) over n elements (the first number after
   * the pointers, which are the arguments named before `n`), split by split().
   */
  private elementwise(fn: PoolKernel, p: number[]): void {
    const k = argIndex(fn, "n");
    const n = p[k] as number;
    this.split(fn, n, 1, (i, c) => p.map((v, j) => (j < k ? v + 4 * i : j === k ? c : v)) as Args<typeof fn>);
  }

  /**
   * Runs fn over `units` independent units (elements or rows, `elems` elements each), split over the
   * threads when there are enough elements; args(start, count) gives one task's arguments.
   */
  private split<K extends PoolKernel>(fn: K, units: number, elems: number, args: (start: number, count: number) => Args<K>): void {
    let parts = this.sched.elementParts(units, elems);
    // units are independent: offered to a waiting data-parallel thread, the result is the same
    const offer = parts === 1 && units >= 8 && units * elems >= PEER_ELEMENTS && PEER_KERNELS.has(fn) && this.peerIdle();
    if (offer) parts = 2;
    const tasks = alignedRanges(units, parts, elems === 1 ? 4 : 1).map(([a, b]) => args(a, b - a));
    if (offer && tasks.length === 2) this.share(fn, tasks[0] as Args<K>, tasks[1] as Args<K>);
    else this.parallel(fn, tasks);
  }

  detach(fn: PoolKernel, args: Args<PoolKernel>, stop: () => void): boolean {
    return this.pool !== null && this.sched.threads > 1 && this.pool.detach(fn, args, stop);
  }

  detachedReturned(): boolean {
    return this.pool?.detachedReturned() ?? true;
  }

  settleDetached(): void {
    this.pool?.settle();
  }

  parallel<K extends PoolKernel>(fn: K, tasks: Args<K>[]): void {
    const f = this.x[fn] as (...a: number[]) => void;
    if (tasks.length === 1 || !this.pool) {
      for (const t of tasks) f(...t);
      return;
    }
    this.stats.parallel++;
    this.pool.run(fn, tasks, (a) => f(...a));
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
  /** (one tensor's update is adamwMany's with one record: the same split, the same bits) */
  readonly adamw = (p: FloatArray, g: FloatArray, m: FloatArray, v: FloatArray, n: number, step: AdamwStep): void =>
    this.adamwMany([{ p, g, m, v, n, decays: true }], step);

  readonly sumRows = this.onHeap("sumRows", (out, x, rows, cols) =>
    this.x.sumRows(out, x, rows, cols, this.sched.scratch(cols * 8)[0] as number),
  );
  /**
   * The whole update in one kernel call over a table of the tensors (adamw-many.ts), one share of it
   * offered to a waiting data-parallel thread or split over the pool: a call per tensor, each
   * offered on its own, took longer on two threads than all of them on one (~52 tensors, 0.8 M
   * parameters). Arrays off the heap: the ref's.
   */
  readonly adamwMany = (tensors: readonly AdamwTensor[], step: AdamwStep): void => {
    const memory = heap().memory;
    const at = (a: FloatArray) => (a instanceof Float32Array && isBufferOf(memory, a.buffer) ? a.byteOffset : -1);
    const records = tensors.map((t): AdamwRecord => [at(t.p), at(t.g), at(t.m), at(t.v), t.n, t.decays ? 1 : 0]);
    if (records.some((r) => r.slice(0, 4).some((p) => p < 0))) {
      this.stats.fallback++;
      refBackend.adamwMany?.(tensors, step);
      return;
    }
    const { lr, beta1, beta2, eps, weightDecay, bc1, bc2, gradScale } = step;
    this.stats.fast++;
    const table = this.sched.scratch(records.length * ADAMW_RECORD * 4)[0] as number;
    writeAdamwTable(new Int32Array(memory.buffer, table, records.length * ADAMW_RECORD), records);
    const sizes = tensors.map((t) => t.n);
    const total = sizes.reduce((a, b) => a + b, 0);
    const task = (e0: number, e1: number): Args<"adamwMany"> => [
      table,
      records.length,
      e0,
      e1,
      lr,
      beta1,
      beta2,
      eps,
      weightDecay,
      bc1,
      bc2,
      gradScale,
    ];
    if (total >= PEER_ELEMENTS && this.peerIdle()) {
      const [c0, c1, c2] = adamwCuts(sizes, 2) as [number, number, number];
      this.share("adamwMany", task(c0, c1), task(c1, c2));
      return;
    }
    const cuts = adamwCuts(sizes, this.sched.elementParts(total, 1));
    this.parallel(
      "adamwMany",
      cuts.slice(1).map((e, i) => task(cuts[i] as number, e)),
    );
  };
  readonly accumulate = this.onHeap("accumulate", (dst, src, n) => {
    // not split over the pool (memory-bound: a sleeping worker's wake-up costs more), only offered
    if (n >= PEER_ELEMENTS && this.peerIdle()) this.elementwise("accumulate", [dst, src, n]);
    else this.x.accumulate(dst, src, n);
  });

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
  ): Args<"matmul">[] {
    const s = this.sched.scratch(0);
    const lda = kind === ATB ? M : K;
    const rows = Math.ceil(M / Math.max(1, parts) / 4) * 4;
    const tasks: Args<"matmul">[] = [];
    for (let t = scratch0, m0 = 0, m = 0; m0 < M; t++, m0 += m) {
      m = M - m0 - rows < 4 ? M - m0 : rows;
      const aOff = kind === ATB ? pa + m0 * 4 : pa + m0 * K * 4;
      tasks.push([kind, po + m0 * N * 4, aOff, pb, m, K, N, lda, acc ? 1 : 0, s[t] as number, bias]);
    }
    return tasks;
  }

  /** out (M,N) (+)= a·b (+ bias, 0: none) in layout `kind`, over heap pointers */
  private mm(kind: number, po: number, pa: number, pb: number, M: number, K: number, N: number, acc: boolean, pbias = 0): void {
    if (M < 4 && M > 0) {
      decode.matmulRows(this, kind, po, pa, pb, M, K, N, acc, pbias);
      return;
    }
    const flops = 2 * M * K * N;
    const parts = this.sched.matmulParts(M, flops);
    if (parts === 1 && M >= 12 && this.peerWaiting(flops)) {
      // offer the second half of the rows: from M = 12 both parts have >= 4 rows and start on a
      // multiple of 4, so the result is bit-identical to one call (a part of < 4 rows would take
      // matmulRows' other summation order)
      const [mine, theirs] = this.mmTasks(kind, po, pa, pb, M, K, N, acc, pbias, 2, 0) as [Args<"matmul">, Args<"matmul">];
      this.share("matmul", mine, theirs);
      return;
    }
    this.parallel("matmul", this.mmTasks(kind, po, pa, pb, M, K, N, acc, pbias, parts, 0));
  }

  readonly matmul = this.onHeap("matmul", (out, a, b, M, K, N, acc) => this.mm(AB, out, a, b, M, K, N, acc));
  readonly matmulBT = this.onHeap("matmulBT", (out, a, b, M, K, N, acc) => this.mm(ABT, out, a, b, M, K, N, acc));
  readonly matmulAT = this.onHeap("matmulAT", (out, a, b, M, K, N, acc) => this.mm(ATB, out, a, b, M, K, N, acc));
  readonly linearForward = this.onHeap("linearForward", (out, x, w, bias, M, K, N) => this.mm(AB, out, x, w, M, K, N, false, bias));

  readonly linearBackward = this.onHeap("linearBackward", (dx, dw, db, dy, x, w, M, K, N, overwriteDx = false, overwriteDw = false) => {
    const accDx = !overwriteDx;
    const accDw = !overwriteDw;
    const flops = 2 * M * K * N;
    if (dx && dw && M >= 4 && this.sched.threads > 1 && flops >= PARALLEL_FLOPS) {
      // dx = dy·wᵀ and dw = xᵀ·dy take the same flops and share no output: run them side by side,
      // each on its own half of the threads, in one round trip
      const half = Math.max(1, this.sched.threads >> 1);
      this.parallel("matmul", [
        ...this.mmTasks(ABT, dx, dy, w, M, N, K, accDx, 0, Math.min(half, Math.floor(M / 8)), 0),
        ...this.mmTasks(ATB, dw, x, dy, K, M, N, accDw, 0, Math.min(this.sched.threads - half, Math.max(1, Math.floor(K / 8))), half),
      ]);
    } else if (dx && dw && M >= 4 && this.peerWaiting(flops)) {
      // the other data-parallel thread is waiting: offer it dw whole while this thread does dx (each
      // is one call wherever it runs, so the result is that of the two calls below)
      const [mine] = this.mmTasks(ABT, dx, dy, w, M, N, K, accDx, 0, 1, 0) as [Args<"matmul">];
      const [theirs] = this.mmTasks(ATB, dw, x, dy, K, M, N, accDw, 0, 1, 0) as [Args<"matmul">];
      this.share("matmul", mine, theirs);
    } else {
      if (dx) this.mm(ABT, dx, dy, w, M, N, K, accDx);
      if (dw) this.mm(ATB, dw, x, dy, K, M, N, accDw);
    }
    if (db) this.x.sumRows(db, dy, M, N, this.sched.scratch(N * 8)[0] as number);
  });

  // ---- data-parallel help (peer.ts) --------------------------------------------------------------

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
  private share<K extends PoolKernel>(fn: K, mine: Args<K>, theirs: Args<K>): void {
    // a thread on its own has one scratch: when the offer is not taken, this thread does both halves
    // on it (a taker puts its own scratch in: runPeerTask)
    const at = argIndex(fn, "scratch");
    if (at >= 0) (theirs as number[])[at] = mine[at] as number;
    const f = this.x[fn] as (...a: number[]) => void;
    (this.peer as PeerLink).share(POOL_KERNELS.indexOf(fn), mine, theirs, (a) => f(...a));
  }

  runPeerTask(kernel: number, args: Float64Array): void {
    const fn = POOL_KERNELS[kernel];
    if (!fn || !PEER_KERNELS.has(fn)) throw new Error(`data-parallel peer: kernel ${kernel} cannot be shared`);
    const a = Array.from(args.subarray(0, kernelParams[fn].length));
    const at = argIndex(fn, "scratch");
    if (at >= 0) {
      // attention's scratch size depends on T, C, nh; matmul's is fixed
      const arg = (name: string) => a[argIndex(fn, name)] as number;
      const bytes = fn === "matmul" ? 0 : this.x.attentionScratchBytes(arg("T"), arg("C"), arg("nh"));
      a[at] = this.sched.scratch(bytes)[0] as number;
    }
    (this.x[fn] as (...v: number[]) => void)(...a);
  }

  // ---- attention ---------------------------------------------------------------------------------

  /**
   * Attention's (b, h) pairs over the threads, or, on one thread, half of them offered to a waiting
   * data-parallel thread: pairs are independent, so any split gives the same result. task(a, b,
   * scratch) is the call for pairs [a, b) on the thread that owns `scratch`.
   */
  private attentionPairs<K extends "attentionForward" | "attentionBackward">(
    fn: K,
    B: number,
    T: number,
    C: number,
    nh: number,
    flops: number,
    task: (a: number, b: number, scratch: number) => Args<K>,
  ): void {
    const s = this.sched.scratch(this.x.attentionScratchBytes(T, C, nh));
    const pairs = B * nh;
    const parts = this.sched.parts(pairs, flops);
    if (parts === 1 && pairs >= 2 && this.peerWaiting(flops)) {
      const [mine, theirs] = ranges(pairs, 2).map(([a, b]) => task(a, b, s[0] as number)) as [Args<K>, Args<K>];
      this.share(fn, mine, theirs);
      return;
    }
    this.parallel(
      fn,
      ranges(pairs, parts).map(([a, b], t) => task(a, b, s[t] as number)),
    );
  }

  readonly attentionForward = this.onHeap("attentionForward", (out, lse, qkv, B, T, C, nh, probs = 0) =>
    this.attentionPairs("attentionForward", B, T, C, nh, 2 * B * T * T * C, (a, b, sc) => [out, lse, probs, qkv, B, T, C, nh, a, b, sc]),
  );
  readonly attentionBackward = this.onHeap("attentionBackward", (dqkv, dout, qkv, out, lse, B, T, C, nh, probs = 0, overwrite = false) =>
    this.attentionPairs("attentionBackward", B, T, C, nh, 4 * B * T * T * C, (a, b, sc) => [
      dqkv,
      dout,
      qkv,
      out,
      lse,
      probs,
      overwrite ? 1 : 0,
      B,
      T,
      C,
      nh,
      a,
      b,
      sc,
    ]),
  );

  // ---- generation (decode.ts) --------------------------------------------------------------------

  readonly attentionCached = this.onHeap("attentionCached", (...p) => decode.attentionCached(this, ...p));
  /** every row as a one-row call: the row products for any M (the blocked matmul's order would depend on M) */
  readonly linearRows = this.onHeap("linearRows", (out, x, w, bias, M, K, N) =>
    decode.matmulRows(this, AB, out, x, w, M, K, N, false, bias),
  );
  readonly matmulBTRows = this.onHeap("matmulBTRows", (out, a, b, M, K, N) => decode.matmulRows(this, ABT, out, a, b, M, K, N, false, 0));

  /** (the packed copies go to the kernels as heap pointers picked for the call's split: packed-layer.ts) */
  packDecodeLayer(m: DecodeMatrices, C: number, nh: number, H: number): PackedLayer | null {
    const p = this.pointers(PACKED_MATRICES.map((name) => m[name]));
    if (!p) return null;
    const at = Object.fromEntries(PACKED_MATRICES.map((name, i) => [name, p[i] as number])) as Record<keyof DecodeMatrices, number>;
    return packLayer(this, at, C, nh, H);
  }

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
    packed?: PackedLayer | null,
  ): void {
    const p = this.pointers([y, h, a, wfc, bfc, wproj, bproj]);
    if (!p) {
      this.stats.fallback++;
      refBackend.mlpRows(y, h, a, R, wfc, bfc, wproj, bproj, C, H, relu);
      return;
    }
    this.stats.fast++;
    const [py, ph, pa, pwfc, pbfc, pwproj, pbproj] = p as [number, number, number, number, number, number, number];
    decode.mlpRows(this, py, ph, pa, R, pwfc, pbfc, pwproj, pbproj, C, H, relu, packed instanceof WasmPackedLayer ? packed : null);
  }

  /** (the rows' caches go to the kernel as a heap table of pointers: rowTable) */
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
    packed?: PackedLayer | null,
  ): void {
    const table = this.rowTable(rows);
    const p = table < 0 ? null : this.pointers([y, att, qkv, a, wattn, battn, wproj, bproj]);
    if (!p) {
      this.stats.fallback++;
      refBackend.attentionRows(y, att, qkv, a, rows, wattn, battn, wproj, bproj, C, nh);
      return;
    }
    this.stats.fast++;
    let maxPos = 0;
    for (const r of rows) maxPos = Math.max(maxPos, r.pos);
    const [py, patt, pqkv, pa, pwattn, pbattn, pwproj, pbproj] = p as [number, number, number, number, number, number, number, number];
    const startsSequence = (r: number) => rows[r]?.keys !== rows[r - 1]?.keys;
    const pk = packed instanceof WasmPackedLayer ? packed : null;
    decode.attentionRows(this, py, patt, pqkv, pa, rows.length, table, maxPos, pwattn, pbattn, pwproj, pbproj, C, nh, startsSequence, pk);
  }

  /**
   * (the step's buffers and weights go to the kernel as a heap block: trunkRowsPart's step block,
   * the layers' table and the rows' tables of every layer; where the weights are split over the
   * threads, trunkSplitPart's split block after them)
   */
  trunkRows(t: TrunkRows): boolean {
    const { R, C, nh, H } = t;
    const L = t.layers.length;
    const split = decode.splitsWeights(this, C, nh, H);
    const buffers = this.pointers([t.x, t.a, t.mean, t.rstd, t.qkv, t.att, t.y, t.h]);
    const layersAt = this.layersTable(t.layers, C, nh, H);
    if (!buffers || layersAt === 0 || t.rows.length !== L) return false;
    const stepBytes = this.x.trunkStepBytes();
    // the keep flags after the rows' tables: only where some row's output is not wanted (those
    // rows skip the last block's attention and MLP, in trunkRowsPart and trunkSplitPart alike)
    const keep = t.outputs?.includes(false) ? t.outputs : null;
    if (keep && keep.length !== R) return false;
    const keepBytes = keep ? R * 4 : 0;
    const splitBytes = split ? this.x.trunkSplitBytes(this.sched.threads) : 0;
    const block = this.trunkBlock(stepBytes + L * R * 12 + keepBytes + splitBytes);
    const memory = heap().memory;
    const rowsAt = block + stepBytes;
    const keepAt = rowsAt + L * R * 12;
    if (keep) new Int32Array(memory.buffer, keepAt, R).set(keep.map(Number));
    let maxPos = 0;
    for (let l = 0; l < L; l++) {
      const rows = t.rows[l] as readonly CachedRow[];
      if (rows.length !== R || !this.writeRows(rowsAt + l * R * 12, rows)) return false;
      for (const r of rows) maxPos = Math.max(maxPos, r.pos);
    }
    // trunkRowsPart's step block (decode.as: STEP_X .. STEP_RELU, then eps and the keep flags' pointer)
    new Int32Array(memory.buffer, block, 16).set([...buffers, layersAt, L, rowsAt, R, C, nh, H, t.relu ? 1 : 0]);
    new Float64Array(memory.buffer, block + this.x.trunkStepEpsAt(), 1)[0] = t.eps;
    new Int32Array(memory.buffer, block + this.x.trunkStepKeepAt(), 1)[0] = keep ? keepAt : 0;
    this.stats.fast++;
    if (split) {
      decode.trunkSplit(this, block, keepAt + keepBytes, buffers[6] as number, R, maxPos, C, nh, H, this.mayWait);
      return true;
    }
    const first = t.rows[0] as readonly CachedRow[];
    const startsSequence = (r: number) => first[r]?.keys !== first[r - 1]?.keys;
    decode.trunkRows(this, block, R, maxPos, C, nh, H, startsSequence);
    return true;
  }

  /**
   * trunkRowsPart's layers table as last written: its heap block, the TrunkLayer objects and the
   * thread count it was written for (which decides the packed copies' cuts: decodeShapes)
   */
  private layers: { from: readonly TrunkLayer[]; threads: number; ptr: number; bytes: number } = { from: [], threads: 0, ptr: 0, bytes: 0 };

  /**
   * The layers' table on the heap (decode.as: per layer its weights' pointers, then its packed
   * copies' where made for the current thread count's cuts, as the trunk's products split them:
   * packed-layer.ts decodeShapes), written again only when other TrunkLayer objects or another
   * thread count come (one is not changed once made: a model's table is written once, not every step);
   * 0 when a weight is not on the heap
   */
  private layersTable(layers: readonly TrunkLayer[], C: number, nh: number, H: number): number {
    const last = this.layers;
    const threads = this.sched.threads;
    if (last.ptr !== 0 && last.threads === threads && last.from.length === layers.length && layers.every((l, i) => l === last.from[i]))
      return last.ptr;
    const shapes = decodeShapes(this, C, nh, H);
    const weights = this.pointers(layers.flatMap((l) => TRUNK_LAYER_FIELDS.map((f) => l[f])));
    const words = this.x.trunkLayerBytes() / 4;
    const bytes = layers.length * words * 4;
    if (!weights || bytes === 0) return 0;
    let ptr = last.ptr;
    if (bytes > last.bytes) {
      if (last.bytes > 0) heap().release(last.ptr, last.bytes);
      ptr = heap().alloc(bytes);
      this.layers = { from: [], threads: 0, ptr, bytes };
    }
    const fields = TRUNK_LAYER_FIELDS.length;
    const table = new Int32Array(heap().memory.buffer, ptr, layers.length * words);
    for (const [l, layer] of layers.entries()) {
      const w = weights.slice(l * fields, (l + 1) * fields);
      table.set(w, l * words);
      const packed = layer.packed;
      PACKED_MATRICES.forEach((name, i) => {
        const source = w[TRUNK_LAYER_FIELDS.indexOf(name)] as number;
        table[l * words + fields + i] = packed instanceof WasmPackedLayer ? packed.pick(name, source, shapes[name][2]) : 0;
      });
    }
    this.layers = { from: [...layers], threads, ptr, bytes: Math.max(bytes, this.layers.bytes) };
    return ptr;
  }

  private trunkBlockPtr = 0;
  private trunkBlockBytes = 0;

  /** trunkRows' heap block of at least `bytes` (kept, grown when a step needs more) */
  private trunkBlock(bytes: number): number {
    if (bytes > this.trunkBlockBytes) {
      if (this.trunkBlockBytes > 0) heap().release(this.trunkBlockPtr, this.trunkBlockBytes);
      this.trunkBlockBytes = Math.max(bytes, 2 * this.trunkBlockBytes);
      this.trunkBlockPtr = heap().alloc(this.trunkBlockBytes);
    }
    return this.trunkBlockPtr;
  }

  /** attentionRows' table: per row its (kCache, vCache, pos) as three i32 on the heap */
  private rowTablePtr = 0;
  private rowTableBytes = 0;

  /** the rows' table on the heap (its pointer), or -1 when a cache is not on the heap */
  private rowTable(rows: readonly CachedRow[]): number {
    const bytes = rows.length * 12;
    if (bytes > this.rowTableBytes) {
      if (this.rowTableBytes > 0) heap().release(this.rowTablePtr, this.rowTableBytes);
      this.rowTableBytes = Math.max(bytes, 16 * 12);
      this.rowTablePtr = heap().alloc(this.rowTableBytes);
    }
    return this.writeRows(this.rowTablePtr, rows) ? this.rowTablePtr : -1;
  }

  /** rows as (kCache, vCache, pos) i32 triples at ptr; false when a cache is not on the heap */
  private writeRows(ptr: number, rows: readonly CachedRow[]): boolean {
    const memory = heap().memory;
    const t = new Int32Array(memory.buffer, ptr, rows.length * 3);
    for (let r = 0; r < rows.length; r++) {
      const { keys, values, pos } = rows[r] as CachedRow;
      if (
        !(
          keys instanceof Float32Array &&
          values instanceof Float32Array &&
          isBufferOf(memory, keys.buffer) &&
          isBufferOf(memory, values.buffer)
        )
      )
        return false;
      t[3 * r] = keys.byteOffset;
      t[3 * r + 1] = values.byteOffset;
      t[3 * r + 2] = pos;
    }
    return true;
  }

  /** heap pointers of the arrays, or null when one is not a Float32Array view of the heap */
  private pointers(arrays: readonly FloatArray[]): number[] | null {
    const memory = heap().memory;
    const out: number[] = [];
    for (const a of arrays) {
      if (!(a instanceof Float32Array) || !isBufferOf(memory, a.buffer)) return null;
      out.push(a.byteOffset);
    }
    return out;
  }

  // ---- softmax, cross-entropy (split by rows) ----------------------------------------------------

  readonly softmax = this.onHeap("softmax", (out, x, rows, cols) =>
    this.split("softmax", rows, cols, (r, c) => [out + 4 * r * cols, x + 4 * r * cols, c, cols]),
  );
  /** on this thread: one row, ~0.1 ms over GPT-2's 50,257 logits (a hand-off would cost about as much) */
  readonly sampleTemperature = (logits: FloatArray, V: number, temperature: number, u: number): number => {
    if (!(logits instanceof Float32Array) || !isBufferOf(heap().memory, logits.buffer)) {
      this.stats.fallback++;
      return refSampleTemperature(logits, V, temperature, u);
    }
    this.stats.fast++;
    const blocks = Math.ceil(V / 256); // sample.as's SAMPLE_BLOCK
    if (blocks > this.sampleSumsLength) {
      this.sampleSums = heap().alloc(blocks * 8);
      this.sampleSumsLength = blocks;
    }
    return this.x.sampleTemperature(logits.byteOffset, V, 1 / temperature, u, this.sampleSums);
  };
  /** sampleTemperature's scratch on the heap: one f64 a block of 256 logits (grown, never freed: ~1.6 KB for GPT-2) */
  private sampleSums = 0;
  private sampleSumsLength = 0;
  readonly crossEntropyForward = this.onHeap("crossEntropyForward", (losses, lse, logits, targets, N, V) =>
    this.split("crossEntropyForward", N, V, (r, c) => [losses + 4 * r, lse + 4 * r, logits + 4 * r * V, targets + 4 * r, c, V]),
  );
  readonly crossEntropyBackward = this.onHeap("crossEntropyBackward", (dlogits, logits, lse, targets, N, V, scale) =>
    this.split("crossEntropyBackward", N, V, (r, c) => [
      dlogits + 4 * r * V,
      logits + 4 * r * V,
      lse + 4 * r,
      targets + 4 * r,
      c,
      V,
      scale,
    ]),
  );
}
