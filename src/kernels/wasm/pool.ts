/**
 * A pool of worker threads that run the wasm kernels on the tensor heap's shared memory.
 *
 * Every worker instantiates the same compiled module with the same imported memory. The module is
 * stackless (AssemblyScript runtime "stub", no allocation), so all instances can run at once; each
 * task gets its own scratch region from the caller.
 *
 * Dispatch goes through a small control SharedArrayBuffer, one 256-byte slot per worker (seq/done as
 * in handshake.ts):
 *   i32[0] seq   bumped by the main thread to start a task (workers Atomics.wait on it)
 *   i32[1] done  set to seq by the worker when the task is finished (the main thread Atomics.waits)
 *   i32[2] fn    index into the kernel name list (-1: exit)
 *   i32[3] error 1 when the kernel threw
 *   i32[4] argc
 *   f64[8..]     arguments (pointers, sizes, scalars)
 * Threads sleep in Atomics.wait between tasks. With MINIGPT_WASM_SPIN=1 they first spin briefly (see
 * WORKER_SPIN_MS): a futex wake-up measured ~100-300 µs on this 2-vCPU VM, a spinning thread answers in
 * ~1-2 µs; only big calls are split either way.
 *
 * In Node the helpers are worker_threads; in a browser they are Web Workers (made from a Blob URL),
 * which need a cross-origin-isolated page for SharedArrayBuffer and shared memory. The protocol is the
 * same; only a browser page's main thread, which may not Atomics.wait, spins on the done flag instead.
 */
import { CALM_MS, nextSeq, PREEMPT_MS, PREEMPT_SCORE, post, SpinPolicy, waitDone } from "./handshake.js";
import { atomicsWaitAllowed, canShareMemory, inNode } from "./platform.js";

const SLOT_BYTES = 256;
/**
 * How long a worker spins for its next task, and the calling thread for a worker's result, before
 * falling back to Atomics.wait. A sleeping thread takes ~100-300 µs to wake on a virtualised 2-core
 * machine (measured), which is a large part of a 1-3 ms kernel call; spinning picks the task up at
 * once. Spinning is bounded in time and stops for a while when another process wants the cores
 * (SpinPolicy's calm rule, handshake.ts; the worker loop below spells the same rule out).
 * Off by default: measured with another busy process on the machine, 2-thread training steps were up
 * to ~35% slower with bounded spinning than with plain waiting, and on an idle machine ~15-20% faster.
 * Sharing the cores is the common case on a laptop, so waiting is the default; MINIGPT_WASM_SPIN=1
 * turns spinning on for a machine given over to training.
 */
const WORKER_SPIN_MS = 0.5;
const CALLER_SPIN_MS = 1;
const MAX_ARGS = 24;

/**
 * A browser page's main thread may not block in Atomics.wait: it spins on the done flag, and gives up
 * (the pool is then broken) when a worker has not answered for this long, or for 20 times as long as
 * the calling thread took for its own share, whichever is longer.
 */
const STALL_MS = 30_000;
/** a browser worker that has not said "ready" after this long failed to start */
const START_MS = 30_000;

function spinEnabled(): boolean {
  return typeof process !== "undefined" && process.env?.MINIGPT_WASM_SPIN === "1";
}

// The worker loop, shared by both kinds of worker. It expects module, memory, ctrl, slot, names,
// spinMs and ready() in scope.
const WORKER_LOOP = `
const inst = new WebAssembly.Instance(module, { env: { memory } });
const fns = names.map((n) => inst.exports[n]);
const i32 = new Int32Array(ctrl, slot * ${SLOT_BYTES}, 16);
const f64 = new Float64Array(ctrl, slot * ${SLOT_BYTES} + 64, ${MAX_ARGS});
ready();
let seen = 0;
let calmUntil = 0;
let score = 0;
for (;;) {
  // spin a short while for the next task before sleeping (see WORKER_SPIN_MS in pool.ts)
  let seq = Atomics.load(i32, 0);
  if (seq === seen) {
    const t0 = performance.now();
    let last = t0;
    let spin = spinMs > 0 && t0 >= calmUntil;
    let hit = 0;
    for (let n = 1; (seq = Atomics.load(i32, 0)) === seen; n++) {
      if (!spin) {
        Atomics.wait(i32, 0, seen);
      } else if ((n & 255) === 0) {
        const now = performance.now();
        if (now - last > ${PREEMPT_MS}) hit = 1;
        if (hit || now - t0 > spinMs) spin = false;
        last = now;
      }
    }
    if (spinMs > 0 && t0 >= calmUntil) {
      score = 0.9 * score + 0.1 * hit;
      if (score > ${PREEMPT_SCORE}) {
        calmUntil = performance.now() + ${CALM_MS};
        score = 0;
      }
    }
  }
  seen = seq;
  const fn = i32[2];
  if (fn < 0) break;
  try {
    const argc = i32[4];
    const args = new Array(argc);
    for (let i = 0; i < argc; i++) args[i] = f64[i];
    fns[fn].apply(null, args);
    i32[3] = 0;
  } catch (e) {
    i32[3] = 1;
  }
  Atomics.store(i32, 1, seq);
  Atomics.notify(i32, 1);
}
`;

// Node: an eval'd CommonJS script, so that the same code works from the TypeScript sources (tsx)
// and from the compiled dist/ output without a separate worker file.
const NODE_WORKER_SOURCE = `
const { workerData, parentPort } = require("node:worker_threads");
const { module, memory, ctrl, slot, names, spinMs } = workerData;
const ready = () => parentPort.postMessage("ready");
${WORKER_LOOP}`;

// Browser: a classic Web Worker script (from a Blob URL) that gets the same data in its first message.
const WEB_WORKER_SOURCE = `
self.onmessage = (event) => {
  self.onmessage = null;
  const { module, memory, ctrl, slot, names, spinMs } = event.data;
  const ready = () => self.postMessage("ready");
  ${WORKER_LOOP}
  self.close();
};
`;

/** what a helper thread is given (postMessage / workerData can carry all of it, module and shared memory included) */
interface WorkerInit {
  module: WebAssembly.Module;
  memory: WebAssembly.Memory;
  ctrl: SharedArrayBuffer;
  slot: number;
  names: string[];
  spinMs: number;
}

/** a started helper thread */
interface PoolThread {
  /** resolves when the worker has instantiated the module and waits for tasks */
  readonly ready: Promise<void>;
  /** do not keep the process alive for it (Node; no-op in a browser) */
  detach(): void;
  terminate(): void;
}

/** How to start helper threads, and whether the calling thread may block in Atomics.wait. */
interface Platform {
  start(init: WorkerInit): PoolThread;
  /** false on a browser page's main thread: it must spin on the done flag */
  readonly canWait: boolean;
}

async function nodePlatform(): Promise<Platform> {
  const { Worker } = await import("node:worker_threads");
  return {
    canWait: true,
    start(init) {
      const w = new Worker(NODE_WORKER_SOURCE, { eval: true, workerData: init });
      const ready = new Promise<void>((resolve, reject) => {
        w.once("message", () => resolve());
        w.once("error", reject);
      });
      return { ready, detach: () => w.unref(), terminate: () => void w.terminate() };
    },
  };
}

let webWorkerUrl: string | null = null;

function webPlatform(): Platform {
  if (typeof Worker === "undefined") throw new Error("wasm pool: this runtime has no Web Workers; use threads: 1");
  if (!canShareMemory()) {
    throw new Error(
      "wasm pool: worker threads in a browser need a cross-origin-isolated page (serve it with Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy: require-corp), or use threads: 1",
    );
  }
  // one Blob URL for the page's lifetime, shared by every pool
  webWorkerUrl ??= URL.createObjectURL(new Blob([WEB_WORKER_SOURCE], { type: "text/javascript" }));
  const url = webWorkerUrl;
  return {
    canWait: atomicsWaitAllowed(),
    start(init) {
      const w = new Worker(url, { name: `minigpt-wasm-${init.slot}` });
      const ready = new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`wasm pool: worker ${init.slot} did not start within ${START_MS} ms`)), START_MS);
        const fail = (why: string) => {
          clearTimeout(timer);
          reject(new Error(`wasm pool: worker ${init.slot} failed to start: ${why}`));
        };
        w.onmessage = () => {
          clearTimeout(timer);
          w.onmessage = null;
          resolve();
        };
        w.onerror = (e) => {
          e.preventDefault();
          fail(e.message || "error");
        };
        w.onmessageerror = () => fail("its start message could not be received");
      });
      w.postMessage(init);
      return { ready, detach: () => {}, terminate: () => w.terminate() };
    },
  };
}

export class WorkerPool {
  /** number of helper threads (the calling thread is the extra one) */
  readonly size: number;
  private readonly workers: PoolThread[] = [];
  private readonly i32: Int32Array[] = [];
  private readonly f64: Float64Array[] = [];
  private readonly seq: number[] = [];
  private readonly fnIndex: Map<string, number>;
  /** how the calling thread looks for a worker's result before it sleeps (null: it sleeps at once) */
  private readonly callerSpin: SpinPolicy | null;
  /** whether threads spin briefly before sleeping (MINIGPT_WASM_SPIN=1): a round trip then costs ~1-2 µs */
  readonly spins: boolean;
  /** false on a browser page's main thread, which spins on the done flag instead of Atomics.wait */
  private readonly canWait: boolean;
  /** set when a worker stopped answering (browser main thread only): every later run fails at once */
  private stalled: string | null = null;

  private constructor(size: number, names: readonly string[], canWait: boolean) {
    this.size = size;
    this.fnIndex = new Map(names.map((n, i) => [n, i]));
    this.callerSpin = spinEnabled() ? new SpinPolicy(CALLER_SPIN_MS) : null;
    this.spins = this.callerSpin !== null;
    this.canWait = canWait;
  }

  static async create(
    helpers: number,
    module: WebAssembly.Module,
    memory: WebAssembly.Memory,
    names: readonly string[],
  ): Promise<WorkerPool> {
    const platform = inNode ? await nodePlatform() : webPlatform();
    const pool = new WorkerPool(helpers, names, platform.canWait);
    const ctrl = new SharedArrayBuffer(SLOT_BYTES * Math.max(1, helpers));
    const ready: Promise<void>[] = [];
    for (let s = 0; s < helpers; s++) {
      const w = platform.start({ module, memory, ctrl, slot: s, names: [...names], spinMs: spinEnabled() ? WORKER_SPIN_MS : 0 });
      ready.push(w.ready);
      pool.workers.push(w);
      pool.i32.push(new Int32Array(ctrl, s * SLOT_BYTES, 16));
      pool.f64.push(new Float64Array(ctrl, s * SLOT_BYTES + 64, MAX_ARGS));
      pool.seq.push(0);
    }
    try {
      await Promise.all(ready);
    } catch (e) {
      pool.dispose();
      throw e;
    }
    // blocked in Atomics.wait forever otherwise: do not keep the process alive
    for (const w of pool.workers) w.detach();
    return pool;
  }

  /**
   * Runs `fn(args[0])` on the calling thread via `local` and `fn(args[i])`, i >= 1, on helper i-1,
   * and returns when all are done. args.length must be <= size + 1.
   */
  run(fn: string, args: readonly number[][], local: (a: number[]) => void): void {
    const idx = this.fnIndex.get(fn);
    if (idx === undefined) throw new Error(`wasm pool: unknown kernel ${fn}`);
    if (this.stalled) throw new Error(this.stalled);
    const n = args.length - 1;
    if (n > this.size) throw new Error("wasm pool: more tasks than threads");
    for (let w = 0; w < n; w++) {
      const a = args[w + 1] as number[];
      const i32 = this.i32[w] as Int32Array;
      const f64 = this.f64[w] as Float64Array;
      for (let i = 0; i < a.length; i++) f64[i] = a[i] as number;
      i32[2] = idx;
      i32[4] = a.length;
      const s = nextSeq(this.seq[w] as number);
      this.seq[w] = s;
      post(i32, s);
    }
    let error: unknown = null;
    const localStart = this.canWait ? 0 : performance.now();
    try {
      local(args[0] as number[]);
    } catch (e) {
      error = e;
    }
    const stallMs = this.canWait ? 0 : Math.max(STALL_MS, 20 * (performance.now() - localStart));
    let failed = false;
    for (let w = 0; w < n; w++) {
      const i32 = this.i32[w] as Int32Array;
      const s = this.seq[w] as number;
      if (this.callerSpin && Atomics.load(i32, 1) !== s) {
        const look = this.callerSpin.looking();
        while (Atomics.load(i32, 1) !== s && look.again());
        look.end();
      }
      if (this.canWait) waitDone(i32, s);
      else this.spinUntilDone(i32, s, w, stallMs);
      if (i32[3] !== 0) failed = true;
    }
    if (error) throw error;
    if (failed) throw new Error(`wasm pool: kernel ${fn} failed in a worker`);
  }

  /** the browser main thread's wait: spin on worker w's done flag, bounded by stallMs */
  private spinUntilDone(i32: Int32Array, s: number, w: number, stallMs: number): void {
    const t0 = performance.now();
    for (let k = 1; Atomics.load(i32, 1) !== s; k++) {
      if ((k & 4095) === 0 && performance.now() - t0 > stallMs) {
        this.stalled = `wasm pool: worker ${w} stopped answering (no result after ${Math.round(stallMs)} ms)`;
        throw new Error(this.stalled);
      }
    }
  }

  dispose(): void {
    for (let w = 0; w < this.workers.length; w++) {
      const i32 = this.i32[w] as Int32Array;
      i32[2] = -1;
      const s = nextSeq(this.seq[w] as number);
      this.seq[w] = s;
      post(i32, s);
      (this.workers[w] as PoolThread).terminate();
    }
    this.workers.length = 0;
  }
}
