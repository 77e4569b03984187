/**
 * A pool of worker threads that run the wasm kernels on the tensor heap's shared memory.
 *
 * Every worker instantiates the same compiled module with the same imported memory. The module is
 * stackless (AssemblyScript runtime "stub", no allocation), so all instances can run at once; each
 * task gets its own scratch region from the caller.
 *
 * Dispatch goes through a small control SharedArrayBuffer, one 256-byte slot per worker:
 *   i32[0] seq   bumped by the main thread to start a task (workers Atomics.wait on it)
 *   i32[1] done  set to seq by the worker when the task is finished (the main thread Atomics.waits)
 *   i32[2] fn    index into the kernel name list (-1: exit)
 *   i32[3] error 1 when the kernel threw
 *   i32[4] argc
 *   f64[8..]     arguments (pointers, sizes, scalars)
 * Threads sleep in Atomics.wait between tasks. With MINIGPT_WASM_SPIN=1 they first spin briefly (see
 * WORKER_SPIN_MS): a futex wake-up measured ~100-300 µs on this 2-vCPU VM, a spinning thread answers in
 * ~1-2 µs; only big calls are split either way.
 */
import { Worker } from "node:worker_threads";

const SLOT_BYTES = 256;
/**
 * How long a worker spins for its next task, and the calling thread for a worker's result, before
 * falling back to Atomics.wait. A sleeping thread takes ~100-300 µs to wake on a virtualised 2-core
 * machine (measured), which is a large part of a 1-3 ms kernel call; spinning picks the task up at
 * once. Spinning only pays while each thread has a core to itself, so it is bounded in time, and a
 * thread that keeps finding itself preempted while spinning (a gap of PREEMPT_MS between two looks
 * at the clock: another process wants the cores) stops spinning for CALM_MS and waits as before.
 * "Keeps": a moving average over spin episodes above PREEMPT_SCORE; a lone gap is host noise (an
 * idle 2-vCPU VM here shows a few gaps > 1 ms a second). Unbounded spinning collapsed when another
 * process shared the cores; this falls back to plain waiting there.
 * Off by default: measured with another busy process on the machine, 2-thread training steps were up
 * to ~35% slower with bounded spinning than with plain waiting, and on an idle machine ~15-20% faster.
 * Sharing the cores is the common case on a laptop, so waiting is the default; MINIGPT_WASM_SPIN=1
 * turns spinning on for a machine given over to training.
 */
const WORKER_SPIN_MS = 0.5;
const CALLER_SPIN_MS = 1;
const PREEMPT_MS = 1;
const PREEMPT_SCORE = 0.15;
const CALM_MS = 200;
const MAX_ARGS = 24;

function spinEnabled(): boolean {
  return process.env.MINIGPT_WASM_SPIN === "1";
}

// The worker runs as an eval'd CommonJS script so that the same code works from the TypeScript
// sources (tsx) and from the compiled dist/ output without a separate worker file.
const WORKER_SOURCE = `
const { workerData, parentPort } = require("node:worker_threads");
const { module, memory, ctrl, slot, names, spinMs } = workerData;
const inst = new WebAssembly.Instance(module, { env: { memory } });
const fns = names.map((n) => inst.exports[n]);
const i32 = new Int32Array(ctrl, slot * ${SLOT_BYTES}, 16);
const f64 = new Float64Array(ctrl, slot * ${SLOT_BYTES} + 64, ${MAX_ARGS});
parentPort.postMessage("ready");
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

export class WorkerPool {
  /** number of helper threads (the calling thread is the extra one) */
  readonly size: number;
  private readonly workers: Worker[] = [];
  private readonly i32: Int32Array[] = [];
  private readonly f64: Float64Array[] = [];
  private readonly seq: number[] = [];
  private readonly fnIndex: Map<string, number>;
  /** the calling thread does not spin before this time (performance.now()); see CALM_MS */
  private calmUntil = 0;
  private preemptScore = 0;
  private readonly callerSpinMs: number;

  private constructor(size: number, names: readonly string[]) {
    this.size = size;
    this.fnIndex = new Map(names.map((n, i) => [n, i]));
    this.callerSpinMs = spinEnabled() ? CALLER_SPIN_MS : 0;
  }

  static async create(
    helpers: number,
    module: WebAssembly.Module,
    memory: WebAssembly.Memory,
    names: readonly string[],
  ): Promise<WorkerPool> {
    const pool = new WorkerPool(helpers, names);
    const ctrl = new SharedArrayBuffer(SLOT_BYTES * Math.max(1, helpers));
    const ready: Promise<void>[] = [];
    for (let s = 0; s < helpers; s++) {
      const w = new Worker(WORKER_SOURCE, {
        eval: true,
        workerData: { module, memory, ctrl, slot: s, names: [...names], spinMs: spinEnabled() ? WORKER_SPIN_MS : 0 },
      });
      ready.push(
        new Promise<void>((resolve, reject) => {
          w.once("message", () => resolve());
          w.once("error", reject);
        }),
      );
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
    for (const w of pool.workers) w.unref();
    return pool;
  }

  /**
   * Runs `fn(args[0])` on the calling thread via `local` and `fn(args[i])`, i >= 1, on helper i-1,
   * and returns when all are done. args.length must be <= size + 1.
   */
  run(fn: string, args: readonly number[][], local: (a: number[]) => void): void {
    const idx = this.fnIndex.get(fn);
    if (idx === undefined) throw new Error(`wasm pool: unknown kernel ${fn}`);
    const n = args.length - 1;
    if (n > this.size) throw new Error("wasm pool: more tasks than threads");
    for (let w = 0; w < n; w++) {
      const a = args[w + 1] as number[];
      const i32 = this.i32[w] as Int32Array;
      const f64 = this.f64[w] as Float64Array;
      for (let i = 0; i < a.length; i++) f64[i] = a[i] as number;
      i32[2] = idx;
      i32[4] = a.length;
      const s = ((this.seq[w] as number) + 1) | 0 || 1;
      this.seq[w] = s;
      Atomics.store(i32, 0, s);
      Atomics.notify(i32, 0);
    }
    let error: unknown = null;
    try {
      local(args[0] as number[]);
    } catch (e) {
      error = e;
    }
    let failed = false;
    for (let w = 0; w < n; w++) {
      const i32 = this.i32[w] as Int32Array;
      const s = this.seq[w] as number;
      if (this.callerSpinMs > 0 && Atomics.load(i32, 1) !== s && performance.now() >= this.calmUntil) {
        const t0 = performance.now();
        let last = t0;
        let hit = 0;
        for (let k = 1; Atomics.load(i32, 1) !== s; k++) {
          if ((k & 255) === 0) {
            const now = performance.now();
            if (now - last > PREEMPT_MS) hit = 1;
            if (hit || now - t0 > this.callerSpinMs) break;
            last = now;
          }
        }
        this.preemptScore = 0.9 * this.preemptScore + 0.1 * hit;
        if (this.preemptScore > PREEMPT_SCORE) {
          this.calmUntil = performance.now() + CALM_MS;
          this.preemptScore = 0;
        }
      }
      for (;;) {
        const d = Atomics.load(i32, 1);
        if (d === s) break;
        Atomics.wait(i32, 1, d, 1000);
      }
      if (i32[3] !== 0) failed = true;
    }
    if (error) throw error;
    if (failed) throw new Error(`wasm pool: kernel ${fn} failed in a worker`);
  }

  dispose(): void {
    for (let w = 0; w < this.workers.length; w++) {
      const i32 = this.i32[w] as Int32Array;
      i32[2] = -1;
      const s = ((this.seq[w] as number) + 1) | 0 || 1;
      this.seq[w] = s;
      Atomics.store(i32, 0, s);
      Atomics.notify(i32, 0);
      void (this.workers[w] as Worker).terminate();
    }
    this.workers.length = 0;
  }
}
