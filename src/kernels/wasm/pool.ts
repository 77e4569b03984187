/**
 * A pool of helper threads that run the wasm kernels on the tensor heap's shared memory.
 *
 * Every helper (pool-worker.ts) instantiates the same compiled module with the same imported memory.
 * The module is stackless (AssemblyScript runtime "stub", no allocation), so all instances can run at
 * once; each task gets its own scratch region from the caller.
 *
 * Dispatch goes through one control block per helper (src/threads/control.ts): op = the kernel's
 * index in the name list, args = its arguments; a kernel that throws in a helper fails the task with
 * its message, rethrown by run(). Threads sleep in Atomics.wait between tasks. With
 * MINIGPT_WASM_SPIN=1 they first look for a while (WORKER_SPIN_MS): a futex wake-up measured
 * ~100-300 µs on this 2-vCPU VM, a looking thread answers in ~1-2 µs; only big calls are split
 * either way.
 *
 * In Node the helpers are worker_threads; in a browser module Web Workers, which need a
 * cross-origin-isolated page for SharedArrayBuffer and shared memory. A browser page's main thread,
 * which may not Atomics.wait, spins on a helper's done flag instead.
 */
import { ControlBlock, EXIT, type Shape, Waiter } from "../../threads/control.js";
import { startWorker, type Thread } from "../../threads/workers.js";
import { atomicsWaitAllowed, canShareMemory, inNode } from "./platform.js";

/**
 * How long a helper looks for its next task, and the calling thread for a helper's result, before
 * sleeping in Atomics.wait. A sleeping thread takes ~100-300 µs to wake on a virtualised 2-core
 * machine (measured), a large part of a 1-3 ms kernel call; looking picks the task up at once.
 * Looking is bounded in time and stops for a while when another process wants the cores (the
 * Waiter's calm rule, src/threads/control.ts).
 * Off by default: measured with another busy process on the machine, 2-thread training steps were up
 * to ~35% slower with bounded spinning than with plain waiting, and on an idle machine ~15-20% faster.
 * Sharing the cores is the common case on a laptop, so waiting is the default; MINIGPT_WASM_SPIN=1
 * turns spinning on for a machine given over to training.
 */
const WORKER_SPIN_MS = 0.5;
const CALLER_SPIN_MS = 1;

/** the most arguments a kernel takes (attentionRowsPart: 17) */
const MAX_ARGS = 17;
/** a pool helper's control block: a kernel call's arguments, and a failure's message */
export const poolShape: Shape = { args: MAX_ARGS, text: 512 };

/**
 * A browser page's main thread may not block in Atomics.wait: it spins on the done flag, and gives up
 * (the pool is then broken) when a helper has not answered for this long, or for 20 times as long as
 * the calling thread took for its own share, whichever is longer.
 */
const STALL_MS = 30_000;

function spinEnabled(): boolean {
  return typeof process !== "undefined" && process.env?.MINIGPT_WASM_SPIN === "1";
}

/** what a helper thread is given (postMessage / workerData can carry all of it, module and shared memory included) */
export interface PoolInit {
  module: WebAssembly.Module;
  memory: WebAssembly.Memory;
  /** the helpers' control blocks; this helper's is block `slot` of `helpers` */
  buffer: SharedArrayBuffer;
  slot: number;
  helpers: number;
  /** the kernels by index (a task's op) */
  names: string[];
  spinMs: number;
}

/**
 * Call kernel f with the first arguments of `args` (a wasm function ignores arguments past its own,
 * so all MAX_ARGS go, without copying them into an array).
 */
export function callKernel(f: (...a: number[]) => void, a: ArrayLike<number>): void {
  f(
    a[0] as number,
    a[1] as number,
    a[2] as number,
    a[3] as number,
    a[4] as number,
    a[5] as number,
    a[6] as number,
    a[7] as number,
    a[8] as number,
    a[9] as number,
    a[10] as number,
    a[11] as number,
    a[12] as number,
    a[13] as number,
    a[14] as number,
    a[15] as number,
    a[16] as number,
  );
}

export class WorkerPool {
  /** number of helper threads (the calling thread is the extra one) */
  readonly size: number;
  private readonly threads: Thread[] = [];
  private readonly blocks: ControlBlock[];
  private readonly fnIndex: Map<string, number>;
  /** how the calling thread waits for a helper's result */
  private readonly waiter: Waiter;
  /** whether threads look for a while before sleeping (MINIGPT_WASM_SPIN=1): a round trip then costs ~1-2 µs */
  readonly spins: boolean;
  /** set when a helper stopped answering (browser main thread only): every later run fails at once */
  private stalled: string | null = null;
  /** a task left running on helper 0 (detach), and what tells it to return */
  private detached: { fn: string; stop: () => void } | null = null;

  private constructor(blocks: ControlBlock[], names: readonly string[], canWait: boolean) {
    this.size = blocks.length;
    this.blocks = blocks;
    this.fnIndex = new Map(names.map((n, i) => [n, i]));
    this.spins = spinEnabled();
    this.waiter = new Waiter({
      spinMs: this.spins ? CALLER_SPIN_MS : 0,
      noBlock: canWait ? undefined : { stallMs: STALL_MS, stalled: (ms) => `no result after ${Math.round(ms)} ms` },
    });
  }

  static async create(
    helpers: number,
    module: WebAssembly.Module,
    memory: WebAssembly.Memory,
    names: readonly string[],
  ): Promise<WorkerPool> {
    if (!inNode) {
      if (typeof Worker === "undefined") throw new Error("wasm pool: this runtime has no Web Workers; use threads: 1");
      if (!canShareMemory()) {
        throw new Error(
          "wasm pool: worker threads in a browser need a cross-origin-isolated page (serve it with Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy: require-corp), or use threads: 1",
        );
      }
    }
    const { buffer, blocks } = ControlBlock.create(poolShape, helpers);
    const pool = new WorkerPool(blocks, names, inNode || atomicsWaitAllowed());
    const entry = {
      from: import.meta.url,
      name: "pool-worker",
      web: () => new Worker(new URL("./pool-worker.js", import.meta.url), { type: "module", name: "minigpt-wasm" }),
    };
    const spinMs = pool.spins ? WORKER_SPIN_MS : 0;
    const started = await Promise.allSettled(
      blocks.map((_, slot) =>
        startWorker<string>(
          entry,
          { module, memory, buffer, slot, helpers, names: [...names], spinMs } satisfies PoolInit,
          `wasm pool worker ${slot}`,
        ),
      ),
    );
    for (const s of started) if (s.status === "fulfilled") pool.threads.push(s.value.thread);
    const failed = started.find((s) => s.status === "rejected");
    if (failed) {
      pool.dispose();
      throw (failed as PromiseRejectedResult).reason;
    }
    // blocked in Atomics.wait forever otherwise: do not keep the process alive
    for (const t of pool.threads) t.detach();
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
    this.settle();
    const n = args.length - 1;
    if (n > this.size) throw new Error("wasm pool: more tasks than threads");
    for (let w = 0; w < n; w++) {
      const a = args[w + 1] as number[];
      const block = this.blocks[w] as ControlBlock;
      block.args.set(a);
      // (a kernel called with fewer arguments than it takes got 0 for the rest, as from JS)
      if (a.length < MAX_ARGS) block.args.fill(0, a.length);
      block.post(idx, a.length);
    }
    let error: unknown = null;
    const localStart = this.waiter.blocks ? 0 : performance.now();
    try {
      local(args[0] as number[]);
    } catch (e) {
      error = e;
    }
    if (!this.waiter.blocks) this.waiter.stallMs = Math.max(STALL_MS, 20 * (performance.now() - localStart));
    let failure: string | null = null;
    for (let w = 0; w < n; w++) {
      let message: string | null;
      try {
        message = (this.blocks[w] as ControlBlock).await(this.waiter);
      } catch (e) {
        this.stalled = `wasm pool: worker ${w} stopped answering (${(e as Error).message})`;
        throw new Error(this.stalled);
      }
      failure ??= message;
    }
    if (error) throw error;
    if (failure !== null) throw new Error(`wasm pool: kernel ${fn} failed in a worker: ${failure}`);
  }

  /**
   * Post fn(args) to helper 0 and return at once, for a kernel that stays looking for work in shared
   * memory until it finds none for a while (quant-share.as's qmatvecHelper). `stop` makes it return
   * soon; run() and dispose() call it and collect the task first. Returns whether helper 0 is on
   * such a task now (false: it is busy with nothing else, but this pool cannot post: the browser's
   * main thread, which may not block to collect it later, or no helper).
   */
  detach(fn: string, args: readonly number[], stop: () => void): boolean {
    if (this.size === 0 || !this.waiter.blocks || this.stalled) return false;
    const block = this.blocks[0] as ControlBlock;
    if (this.detached) {
      if (!block.finished()) return true;
      this.collect();
    }
    const idx = this.fnIndex.get(fn);
    if (idx === undefined) throw new Error(`wasm pool: unknown kernel ${fn}`);
    block.args.set(args);
    if (args.length < MAX_ARGS) block.args.fill(0, args.length);
    block.post(idx, args.length);
    this.detached = { fn, stop };
    return true;
  }

  /** Has the detached task returned (or is there none)? */
  detachedReturned(): boolean {
    return this.detached === null || (this.blocks[0] as ControlBlock).finished();
  }

  /** stop the detached task, if any, and wait until it has returned; rethrows its failure */
  settle(): void {
    this.detached?.stop();
    this.collect();
  }

  /** wait for the detached task, if any, to return (it was told to, or is about to); rethrows its failure */
  private collect(): void {
    const d = this.detached;
    if (!d) return;
    this.detached = null;
    const message = (this.blocks[0] as ControlBlock).await(this.waiter);
    if (message !== null) throw new Error(`wasm pool: kernel ${d.fn} failed in a worker: ${message}`);
  }

  dispose(): void {
    this.detached?.stop();
    this.detached = null;
    for (const block of this.blocks) block.post(EXIT);
    for (const t of this.threads) t.terminate();
    this.threads.length = 0;
  }
}
