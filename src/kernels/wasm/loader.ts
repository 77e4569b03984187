/**
 * The `wasm` backend: WebAssembly SIMD kernels (src/kernels/wasm/assembly/*.as, built by
 * scripts/build-wasm.mjs, which also writes their exports' types, ./build/exports.ts) running in place on the tensor heap, optionally split over worker threads.
 *
 * - Two builds: relaxed SIMD (FMA via f32x4.relaxed_madd) when the runtime has it, plain SIMD
 *   otherwise. Node 20 needs --experimental-wasm-relaxed-simd, set here with v8.setFlagsFromString
 *   before the first compile (browsers: WebAssembly.validate decides). MINIGPT_WASM_SIMD=plain|relaxed forces one.
 * - Node and browsers alike: no top-level Node imports (./platform.ts); the .wasm is read with node:fs in
 *   Node and fetched next to this module in a browser; the pool uses Web Workers there (see pool.ts).
 * - Arrays must be Float32Array / Int32Array views of heap().memory; their byteOffset is the pointer.
 *   Anything else (a Float64Array in a gradient check, a plain Float32Array) goes to the ref kernel,
 *   counted in `stats.fallback`, so the interface stays total.
 */
import { heap } from "../../tensor/memory.js";
import type { Backend, FloatArray } from "../backend.js";
import type { BackendOptions } from "../index.js";
import { refBackend } from "../ref/index.js";
import type { KernelExports } from "./build/exports.js";
import type { PeerLink } from "./peer.js";
import { defaultThreads, inNode } from "./platform.js";
import { WorkerPool } from "./pool.js";

export type SimdFlavour = "plain" | "relaxed";

/** matmul's register tile (matmul-tiles.as: kern4x8, kern3x12); both give bit-identical results */
export type MatmulTile = "4x8" | "3x12";

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
  "mlpRowPart",
  "attentionRowPart",
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

/** elementwise kernels with exp/sqrt (~20 flops an element) are split from this many elements on */
const PARALLEL_ELEMENTS = 1 << 17;

/**
 * one-token work (a matmul of fewer than 4 rows, the fused attention / MLP blocks) streams its weights
 * from memory; it is split over the threads from this many floats read on (a wake-up costs ~100-300 µs
 * here, reading 1M floats ~0.5 ms on one core). Measured, generating with 2 threads, settings
 * alternated in one process: splitting the 384-wide model's MLP (1.2M floats) made it ~7-20% slower,
 * and GPT-2's blocks (2.4M, 4.7M) were as fast from 2^20 as from 2^21
 */
const PARALLEL_ROWS_B = 1 << 21;
/**
 * the same when the pool spins (MINIGPT_WASM_SPIN=1, a round trip ~1-2 µs): the 384-wide model's
 * blocks (0.6M, 1.2M floats) split from here generated ~1.3x as fast as unsplit on an otherwise idle
 * machine (and ~2.5x slower with another process busy on a core, which is why spinning is opt-in)
 */
const PARALLEL_ROWS_B_SPIN = 1 << 19;

/**
 * how much more than an equal share of split one-token work the calling thread takes, in floats read:
 * it starts at once while a sleeping helper first wakes up (2^17 floats ~60 µs of reading; measured
 * 5-15% faster than equal shares on GPT-2's matmuls, 2^19 no better)
 */
const WAKE_FLOATS = 1 << 17;

/**
 * offer half of a call to the waiting data-parallel thread from this many flops on (~0.1-0.3 ms of
 * work; the waiting thread looks for work without sleeping, so it starts within microseconds)
 */
const PEER_FLOPS = 4e6;
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
/** elementwise calls are offered from this many elements on (the waiting thread starts within µs) */
const PEER_ELEMENTS = 1 << 14;

/** split a call over threads from this many floating-point operations on (a pool round trip: ~100-300 µs when a sleeping worker must be woken here, ~1-2 µs with MINIGPT_WASM_SPIN=1) */
const PARALLEL_FLOPS = 2e6;

// (v128, v128, v128) -> v128 : f32x4.relaxed_madd
const RELAXED_PROBE = new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x01, 0x60, 0x03, 0x7b, 0x7b, 0x7b, 0x01, 0x7b, 0x03, 0x02, 0x01, 0x00, 0x0a,
  0x0d, 0x01, 0x0b, 0x00, 0x20, 0x00, 0x20, 0x01, 0x20, 0x02, 0xfd, 0x85, 0x02, 0x0b,
]);
// () -> v128 : v128.const 0
const SIMD_PROBE = new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x05, 0x01, 0x60, 0x00, 0x01, 0x7b, 0x03, 0x02, 0x01, 0x00, 0x0a, 0x16, 0x01, 0x14,
  0x00, 0xfd, 0x0c, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x0b,
]);

/** the one attempt at turning the flag on; concurrent loads all wait for it */
let relaxedFlag: Promise<void> | null = null;

/** Node 20 compiles relaxed SIMD only with --experimental-wasm-relaxed-simd; set it before the first compile. */
function enableRelaxedFlag(): Promise<void> {
  relaxedFlag ??= (async () => {
    if (!inNode || WebAssembly.validate(RELAXED_PROBE)) return;
    try {
      const v8 = await import("node:v8");
      v8.setFlagsFromString("--experimental-wasm-relaxed-simd");
    } catch {
      // not Node, or the flag is gone: the validate check decides
    }
  })();
  return relaxedFlag;
}

/** Whether this runtime compiles relaxed SIMD (turning Node 20's experimental flag on first). */
export async function relaxedSimdSupported(): Promise<boolean> {
  await enableRelaxedFlag();
  return WebAssembly.validate(RELAXED_PROBE);
}

async function readWasm(name: string): Promise<Uint8Array<ArrayBuffer>> {
  if (!inNode) {
    // a browser: next to this module (dist/src/kernels/wasm/build/, where the build copies it)
    const url = new URL(`./build/${name}`, import.meta.url);
    const res = await fetch(url);
    if (!res.ok) throw new Error(`wasm backend: fetching ${url} failed: HTTP ${res.status}; run "npm run build"`);
    return new Uint8Array(await res.arrayBuffer());
  }
  const { readFile } = await import("node:fs/promises");
  // next to this file (src/ via tsx, or dist/ where the build copies it), else the package's src/
  const candidates = [new URL(`./build/${name}`, import.meta.url), new URL(`../../../../src/kernels/wasm/build/${name}`, import.meta.url)];
  for (const url of candidates) {
    try {
      return new Uint8Array(await readFile(url));
    } catch {
      // try the next
    }
  }
  throw new Error(`wasm backend: ${name} not found next to ${import.meta.url}; run "npm run build:wasm"`);
}

const compiled = new Map<SimdFlavour, WebAssembly.Module>();

async function compile(flavour: SimdFlavour): Promise<WebAssembly.Module> {
  let m = compiled.get(flavour);
  if (!m) {
    m = await WebAssembly.compile(await readWasm(flavour === "relaxed" ? "kernels-relaxed.wasm" : "kernels-simd.wasm"));
    compiled.set(flavour, m);
  }
  return m;
}

/** Which SIMD flavour to use: MINIGPT_WASM_SIMD, else relaxed when available. */
export async function chooseSimd(): Promise<SimdFlavour> {
  const want = typeof process !== "undefined" ? process.env.MINIGPT_WASM_SIMD : undefined;
  const relaxed = await relaxedSimdSupported();
  if (want === "plain") return "plain";
  if (want === "relaxed") {
    if (!relaxed) throw new Error("MINIGPT_WASM_SIMD=relaxed but this runtime has no relaxed SIMD");
    return "relaxed";
  }
  if (want !== undefined && want !== "") throw new Error(`MINIGPT_WASM_SIMD=${want}: use plain or relaxed`);
  return relaxed ? "relaxed" : "plain";
}

/**
 * Which matmul tile to use: MINIGPT_MATMUL_TILE (4x8 or 3x12), else 3x12 where V8 is 12 or newer
 * (Node 22+, Chrome/Chromium/Edge 120+) and 4x8 elsewhere. Why by V8 version: the 3x12 loop does more
 * FMAs per iteration of fixed cost, but Node 20's V8 (11.3) schedules it no faster than 4x8 (time
 * ratios 0.92-1.06), while Node 22's (12.4) runs it 3-17% faster on the recipes' shapes and
 * Chromium 156's 0.97-1.15x as fast (bench/tiles.ts; docs/benchmarks.md). Other browsers' engines
 * are not measured: 4x8.
 */
export function chooseMatmulTile(): MatmulTile {
  const want = typeof process !== "undefined" ? process.env?.MINIGPT_MATMUL_TILE : undefined;
  if (want === "4x8" || want === "3x12") return want;
  if (want !== undefined && want !== "") throw new Error(`MINIGPT_MATMUL_TILE=${want}: use 4x8 or 3x12`);
  return v8Major() >= 12 ? "3x12" : "4x8";
}

/** V8's major version: Node's process.versions.v8, or a Chromium browser's (Chrome NNN ships V8 NN.N); NaN elsewhere */
function v8Major(): number {
  if (inNode) return Number.parseInt(process.versions.v8 ?? "", 10);
  const ua = (globalThis as { navigator?: { userAgent?: string } }).navigator?.userAgent ?? "";
  const chrome = /Chrom(?:e|ium)\/(\d+)/.exec(ua);
  return chrome ? Math.floor(Number(chrome[1]) / 10) : Number.NaN;
}

export interface WasmLoadOptions extends BackendOptions {
  /** force a SIMD flavour (default: MINIGPT_WASM_SIMD, else the best available) */
  simd?: SimdFlavour;
  /** force matmul's register tile (default: MINIGPT_MATMUL_TILE, else chooseMatmulTile()'s pick) */
  tile?: MatmulTile;
}

export async function loadWasmBackend(options: WasmLoadOptions = {}): Promise<WasmBackend> {
  if (!WebAssembly.validate(SIMD_PROBE)) throw new Error("wasm backend: this runtime has no WebAssembly SIMD");
  const simd = options.simd ?? (await chooseSimd());
  if (simd === "relaxed") await enableRelaxedFlag();
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
  private threadsUsable: number;
  /** per-thread scratch: pointer and size in bytes */
  private scratchPtr: number[] = [];
  private scratchBytes = 0;
  private readonly matmulScratch: number;
  /** buffers known to be (or not to be) views of the heap memory, which changes object on grow */
  private heapBuffers = new WeakSet<ArrayBufferLike>();
  private otherBuffers = new WeakSet<ArrayBufferLike>();

  constructor(
    private readonly x: KernelExports,
    readonly simd: SimdFlavour,
    readonly tile: MatmulTile,
    readonly threads: number,
    pool: WorkerPool | null,
  ) {
    this.pool = pool;
    this.threadsUsable = pool ? pool.size + 1 : 1;
    this.matmulScratch = x.matmulScratchBytes();
  }

  dispose(): void {
    this.pool?.dispose();
    this.pool = null;
    this.threadsUsable = 1;
  }

  useThreads(n: number): number {
    const before = this.threadsUsable;
    this.threadsUsable = Math.max(1, Math.min(Math.floor(n), this.pool ? this.pool.size + 1 : 1));
    return before;
  }

  // ---- plumbing ----------------------------------------------------------------------------------

  /** byte offset of arr in the heap memory, or -1 when arr is not a Float32Array/Int32Array view of it */
  private ptr(arr: FloatArray | Int32Array): number {
    if (!(arr instanceof Float32Array) && !(arr instanceof Int32Array)) return -1;
    const buf = arr.buffer;
    if (this.heapBuffers.has(buf)) return arr.byteOffset;
    if (this.otherBuffers.has(buf)) return -1;
    const mem = heap().memory.buffer;
    let on = buf === mem;
    if (!on && buf instanceof SharedArrayBuffer && buf.byteLength > 0 && buf.byteLength <= mem.byteLength) {
      // an older buffer object of the same (since grown) memory? Probe: a write through one must be
      // visible through the other (two different values, so a coincidence cannot pass).
      const mine = new Uint8Array(buf);
      const theirs = new Uint8Array(mem);
      const i = buf.byteLength - 1;
      const old = mine[i] as number;
      mine[i] = old ^ 0x5a;
      const a = theirs[i] === (old ^ 0x5a);
      mine[i] = old ^ 0xa5;
      const b = theirs[i] === (old ^ 0xa5);
      mine[i] = old;
      on = a && b;
    }
    (on ? this.heapBuffers : this.otherBuffers).add(buf);
    return on ? arr.byteOffset : -1;
  }

  /** pointers of all arrays, or null (then the caller uses ref) */
  private ptrs(...arrs: (FloatArray | Int32Array)[]): number[] | null {
    const out = new Array<number>(arrs.length);
    for (let i = 0; i < arrs.length; i++) {
      const p = this.ptr(arrs[i] as FloatArray);
      if (p < 0) {
        this.stats.fallback++;
        return null;
      }
      out[i] = p;
    }
    this.stats.fast++;
    return out;
  }

  /** make sure every thread has `bytes` of scratch; returns the pointers */
  private scratch(bytes: number): number[] {
    const need = Math.max(bytes, this.matmulScratch);
    if (need > this.scratchBytes || this.scratchPtr.length < this.threadsUsable) {
      for (const p of this.scratchPtr) heap().release(p, this.scratchBytes);
      const size = Math.max(need, this.scratchBytes);
      const n = Math.max(this.threadsUsable, this.scratchPtr.length);
      this.scratchPtr = [];
      for (let t = 0; t < n; t++) this.scratchPtr.push(heap().alloc(size));
      this.scratchBytes = size;
    }
    return this.scratchPtr;
  }

  /**
   * Runs fn over `units` independent units (elements or rows, `elems` elements each), split over the
   * threads when there are enough elements; args(start, count) gives one task's arguments.
   */
  private split(fn: PoolKernel, units: number, elems: number, args: (start: number, count: number) => number[]): void {
    let parts = this.threadsUsable > 1 && units * elems >= PARALLEL_ELEMENTS ? Math.min(this.threadsUsable, units) : 1;
    // units are independent: offered to a waiting data-parallel thread, the result is the same
    const offer = parts === 1 && units >= 8 && units * elems >= PEER_ELEMENTS && PEER_KERNELS[fn] !== undefined && this.peerIdle();
    if (offer) parts = 2;
    // element ranges start on a multiple of 4 so that SIMD loops stay aligned
    const align = elems === 1 ? 4 : 1;
    const tasks: number[][] = [];
    for (let t = 0; t < parts; t++) {
      const a = Math.min(units, Math.ceil((units * t) / parts / align) * align);
      const b = t === parts - 1 ? units : Math.min(units, Math.ceil((units * (t + 1)) / parts / align) * align);
      if (b > a) tasks.push(args(a, b - a));
    }
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
    const s = this.scratch(0);
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

  /** threads worth splitting a matmul of M rows and `flops` over */
  private mmParts(M: number, flops: number): number {
    if (this.threadsUsable <= 1 || flops < PARALLEL_FLOPS) return 1;
    return Math.max(1, Math.min(this.threadsUsable, Math.floor(M / 8)));
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
    const parts = this.mmParts(M, flops);
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
      a[shape[1]] = this.scratch(bytes)[0] as number;
    }
    (this.x[fn] as unknown as (...v: number[]) => void)(...a);
  }

  /**
   * out (M,N) (+)= a·b (+ bias) for M < 4 rows (one generated token): bound by reading B once from
   * memory. With threads, kind 1 splits N (B's rows) and kinds 0 and 2 split K (B's rows too: each
   * thread streams one contiguous block; the helpers' partial sums go to their scratch and are added
   * after). The calling thread starts at once while a helper first has to wake up, so it takes the
   * bigger share (see WAKE_FLOATS).
   */
  private mmRows(kind: number, po: number, pa: number, pb: number, M: number, K: number, N: number, acc: boolean, pbias: number): void {
    const lda = kind === 2 ? M : K;
    const units = kind === 1 ? N : K;
    const parts = this.threadsUsable > 1 && K * N >= this.rowsSplitFrom ? Math.min(this.threadsUsable, Math.floor(units / 8)) : 1;
    if (parts <= 1) {
      this.x.matmulRows(kind, po, pa, pb, M, K, N, lda, acc ? 1 : 0, 0, N);
    } else {
      const bounds = this.shares(units, parts, K * N, 8);
      const s = kind === 1 ? [] : this.scratch(M * N * 4);
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

  /** floats of weights from which one-token work is split over the threads */
  private get rowsSplitFrom(): number {
    return this.pool?.spins ? PARALLEL_ROWS_B_SPIN : PARALLEL_ROWS_B;
  }

  /**
   * Boundaries (parts + 1 of them, multiples of `align` inside) that split `units` over `parts`
   * threads for one-token work reading `floats` floats: the calling thread starts at once while a
   * helper first has to wake up, so its share is f, with f·T = wake + (1 - f)·T / (parts - 1).
   */
  private shares(units: number, parts: number, floats: number, align: number): number[] {
    // (a spinning pool answers in ~1-2 µs: equal shares)
    const f = Math.min(0.75, (1 + ((parts - 1) * (this.pool?.spins ? 0 : WAKE_FLOATS)) / floats) / parts);
    const bounds = [0];
    for (let t = 1; t < parts; t++) {
      const at = Math.round((units * (f + ((1 - f) * (t - 1)) / (parts - 1))) / align) * align;
      bounds.push(Math.min(units, Math.max(bounds[t - 1] as number, at)));
    }
    bounds.push(units);
    return bounds;
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
    const p = dx && dw && M >= 4 && this.threadsUsable > 1 && flops >= PARALLEL_FLOPS ? this.ptrs(dx, dw, dy, x, w) : null;
    const q = !p && dx && dw && M >= 4 && this.peerWaiting(flops) ? this.ptrs(dx, dw, dy, x, w) : null;
    if (p) {
      // dx = dy·wᵀ and dw = xᵀ·dy take the same flops and share no output: run them side by side,
      // each on its own half of the threads, in one round trip
      const [pdx, pdw, pdy, px, pw] = p as [number, number, number, number, number];
      const half = Math.max(1, this.threadsUsable >> 1);
      const tasks = [
        ...this.mmTasks(1, pdx, pdy, pw, M, N, K, accDx, 0, Math.min(half, Math.floor(M / 8)), 0),
        ...this.mmTasks(2, pdw, px, pdy, K, M, N, true, 0, Math.min(this.threadsUsable - half, Math.max(1, Math.floor(K / 8))), half),
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

  addBias(out: FloatArray, bias: FloatArray, rows: number, cols: number): void {
    const p = this.ptrs(out, bias);
    if (p) this.x.addBias(p[0] as number, p[1] as number, rows, cols);
    else refBackend.addBias(out, bias, rows, cols);
  }
  sumRows(out: FloatArray, x: FloatArray, rows: number, cols: number): void {
    const p = this.ptrs(out, x);
    if (p) this.x.sumRows(p[0] as number, p[1] as number, rows, cols, this.scratch(cols * 8)[0] as number);
    else refBackend.sumRows(out, x, rows, cols);
  }
  zero(x: FloatArray, n: number): void {
    const p = this.ptrs(x);
    if (p) this.x.zero(p[0] as number, n);
    else refBackend.zero(x, n);
  }
  copy(dst: FloatArray, src: FloatArray, n: number): void {
    const p = this.ptrs(dst, src);
    if (p) this.x.copy(p[0] as number, p[1] as number, n);
    else refBackend.copy(dst, src, n);
  }
  add(out: FloatArray, a: FloatArray, b: FloatArray, n: number): void {
    const p = this.ptrs(out, a, b);
    if (p) this.x.add(p[0] as number, p[1] as number, p[2] as number, n);
    else refBackend.add(out, a, b, n);
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
  scale(x: FloatArray, n: number, s: number): void {
    const p = this.ptrs(x);
    if (p) this.x.scale(p[0] as number, n, s);
    else refBackend.scale(x, n, s);
  }
  sumSquares(x: FloatArray, n: number): number {
    const p = this.ptrs(x);
    return p ? this.x.sumSquares(p[0] as number, n) : refBackend.sumSquares(x, n);
  }
  mul(out: FloatArray, x: FloatArray, mask: FloatArray, n: number): void {
    const p = this.ptrs(out, x, mask);
    if (p) this.x.mul(p[0] as number, p[1] as number, p[2] as number, n);
    else refBackend.mul(out, x, mask, n);
  }

  // ---- layer norm --------------------------------------------------------------------------------

  layernormForward(
    out: FloatArray,
    mean: FloatArray,
    rstd: FloatArray,
    x: FloatArray,
    w: FloatArray,
    b: FloatArray,
    N: number,
    C: number,
    eps: number,
  ): void {
    const p = this.ptrs(out, mean, rstd, x, w, b);
    if (p)
      this.x.layernormForward(p[0] as number, p[1] as number, p[2] as number, p[3] as number, p[4] as number, p[5] as number, N, C, eps);
    else refBackend.layernormForward(out, mean, rstd, x, w, b, N, C, eps);
  }
  layernormBackward(
    dx: FloatArray,
    dw: FloatArray,
    db: FloatArray,
    dout: FloatArray,
    x: FloatArray,
    w: FloatArray,
    mean: FloatArray,
    rstd: FloatArray,
    N: number,
    C: number,
  ): void {
    const p = this.ptrs(dx, dw, db, dout, x, w, mean, rstd);
    if (p) {
      this.x.layernormBackward(
        p[0] as number,
        p[1] as number,
        p[2] as number,
        p[3] as number,
        p[4] as number,
        p[5] as number,
        p[6] as number,
        p[7] as number,
        N,
        C,
      );
    } else refBackend.layernormBackward(dx, dw, db, dout, x, w, mean, rstd, N, C);
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

  geluForward(out: FloatArray, x: FloatArray, n: number): void {
    if (!this.elementwise("geluForward", [out, x], n)) refBackend.geluForward(out, x, n);
  }
  geluBackward(dx: FloatArray, x: FloatArray, dout: FloatArray, n: number): void {
    if (!this.elementwise("geluBackward", [dx, x, dout], n)) refBackend.geluBackward(dx, x, dout, n);
  }
  geluForwardGrad(out: FloatArray, dgelu: FloatArray, x: FloatArray, n: number): void {
    if (!this.elementwise("geluForwardGrad", [out, dgelu, x], n)) refBackend.geluForwardGrad(out, dgelu, x, n);
  }
  reluForward(out: FloatArray, x: FloatArray, n: number): void {
    const p = this.ptrs(out, x);
    if (p) this.x.reluForward(p[0] as number, p[1] as number, n);
    else refBackend.reluForward(out, x, n);
  }
  reluBackward(dx: FloatArray, x: FloatArray, dout: FloatArray, n: number): void {
    const p = this.ptrs(dx, x, dout);
    if (p) this.x.reluBackward(p[0] as number, p[1] as number, p[2] as number, n);
    else refBackend.reluBackward(dx, x, dout, n);
  }

  // ---- attention ---------------------------------------------------------------------------------

  /** split count for work over `units` independent pieces costing `flops` in total */
  private splits(units: number, flops: number): number {
    if (this.threadsUsable <= 1 || flops < PARALLEL_FLOPS) return 1;
    return Math.max(1, Math.min(this.threadsUsable, units));
  }

  private ranges(units: number, parts: number): [number, number][] {
    const out: [number, number][] = [];
    for (let t = 0; t < parts; t++) {
      const a = Math.floor((units * t) / parts);
      const b = Math.floor((units * (t + 1)) / parts);
      if (b > a) out.push([a, b]);
    }
    return out;
  }

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
    const s = this.scratch(this.x.attentionScratchBytes(T, C, nh));
    const pairs = B * nh;
    const parts = this.splits(pairs, flops);
    if (parts === 1 && pairs >= 2 && this.peerWaiting(flops)) {
      const [mine, theirs] = this.ranges(pairs, 2).map(([a, b]) => task(a, b, s[0] as number)) as [number[], number[]];
      this.share(fn, mine, theirs);
      return;
    }
    this.parallel(
      fn,
      this.ranges(pairs, parts).map(([a, b], t) => task(a, b, s[t] as number)),
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
    const s = this.scratch(this.x.attentionCachedScratchBytes(pos0 + Tn, nh));
    const parts = this.splits(nh, 4 * Tn * (pos0 + Tn) * C);
    const tasks = this.ranges(nh, parts).map(([a, b], t) => [
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

  // ---- fused one-token blocks (generation) -------------------------------------------------------

  /**
   * Splits the hidden units over the threads (each streams its columns of wfc and its rows of wproj,
   * then the partial outputs are added): one pool round trip for the whole MLP.
   */
  mlpRow(
    y: FloatArray,
    h: FloatArray,
    a: FloatArray,
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
      refBackend.mlpRow(y, h, a, wfc, bfc, wproj, bproj, C, H, relu);
      return;
    }
    const [py, ph, pa, pwfc, pbfc, pwproj, pbproj] = p as [number, number, number, number, number, number, number];
    const floats = 2 * C * H;
    const parts = this.threadsUsable > 1 && floats >= this.rowsSplitFrom ? Math.min(this.threadsUsable, Math.floor(H / 8)) : 1;
    const bounds = parts > 1 ? this.shares(H, parts, floats, 8) : [0, H];
    const s = parts > 1 ? this.scratch(C * 4) : [];
    const tasks: number[][] = [];
    for (let t = 0; t + 1 < bounds.length; t++) {
      const j0 = bounds[t] as number;
      const j1 = bounds[t + 1] as number;
      if (j1 > j0) tasks.push([tasks.length === 0 ? py : (s[t] as number), ph, pa, pwfc, pbfc, pwproj, C, H, j0, j1, relu ? 1 : 0]);
    }
    this.parallel("mlpRowPart", tasks);
    for (let t = 1; t < tasks.length; t++) this.x.accumulate(py, (tasks[t] as number[])[0] as number, C);
    this.x.addBias(py, pbproj, 1, C);
  }

  /**
   * Splits the heads over the threads (each computes its heads' q, k, v columns, their attention and
   * their rows of the output projection; the partial outputs are added): one pool round trip for the
   * whole attention block.
   */
  attentionRow(
    y: FloatArray,
    att: FloatArray,
    qkv: FloatArray,
    a: FloatArray,
    wattn: FloatArray,
    battn: FloatArray,
    kCache: FloatArray,
    vCache: FloatArray,
    pos: number,
    wproj: FloatArray,
    bproj: FloatArray,
    C: number,
    nh: number,
  ): void {
    const p = this.ptrs(y, att, qkv, a, wattn, battn, kCache, vCache, wproj, bproj);
    if (!p) {
      refBackend.attentionRow(y, att, qkv, a, wattn, battn, kCache, vCache, pos, wproj, bproj, C, nh);
      return;
    }
    const [py, patt, pqkv, pa, pwattn, pbattn, pk, pv, pwproj, pbproj] = p as number[] as [
      number,
      number,
      number,
      number,
      number,
      number,
      number,
      number,
      number,
      number,
    ];
    const floats = 4 * C * C + 2 * (pos + 1) * C;
    const parts = this.threadsUsable > 1 && floats >= this.rowsSplitFrom ? Math.min(this.threadsUsable, nh) : 1;
    const bounds = parts > 1 ? this.shares(nh, parts, floats, 1) : [0, nh];
    // per thread: the partial y (C floats, 16-byte aligned), then the attention scores
    const yBytes = Math.ceil(C / 4) * 16;
    const s = this.scratch(yBytes + this.x.attentionCachedScratchBytes(pos + 1, nh));
    const tasks: number[][] = [];
    for (let t = 0; t + 1 < bounds.length; t++) {
      const h0 = bounds[t] as number;
      const h1 = bounds[t + 1] as number;
      const st = s[t] as number;
      if (h1 > h0)
        tasks.push([tasks.length === 0 ? py : st, patt, pqkv, pa, pwattn, pbattn, pk, pv, pos, pwproj, C, nh, h0, h1, st + yBytes]);
    }
    this.parallel("attentionRowPart", tasks);
    for (let t = 1; t < tasks.length; t++) this.x.accumulate(py, (tasks[t] as number[])[0] as number, C);
    this.x.addBias(py, pbproj, 1, C);
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
  embeddingForward(out: FloatArray, ids: Int32Array, table: FloatArray, N: number, C: number): void {
    const p = this.ptrs(out, ids, table);
    if (p) this.x.embeddingForward(p[0] as number, p[1] as number, p[2] as number, N, C);
    else refBackend.embeddingForward(out, ids, table, N, C);
  }
  embeddingBackward(dtable: FloatArray, dout: FloatArray, ids: Int32Array, N: number, C: number): void {
    const p = this.ptrs(dtable, dout, ids);
    if (p) this.x.embeddingBackward(p[0] as number, p[1] as number, p[2] as number, N, C);
    else refBackend.embeddingBackward(dtable, dout, ids, N, C);
  }

  // ---- optimizer ---------------------------------------------------------------------------------

  adamw(
    p: FloatArray,
    g: FloatArray,
    m: FloatArray,
    v: FloatArray,
    n: number,
    lr: number,
    beta1: number,
    beta2: number,
    eps: number,
    weightDecay: number,
    bc1: number,
    bc2: number,
  ): void {
    if (!this.elementwise("adamw", [p, g, m, v], n, [lr, beta1, beta2, eps, weightDecay, bc1, bc2])) {
      refBackend.adamw(p, g, m, v, n, lr, beta1, beta2, eps, weightDecay, bc1, bc2);
    }
  }
}
