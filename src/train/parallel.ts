/**
 * Data-parallel training on the threads of one process, as DistributedDataParallel does across
 * GPUs: every thread holds a replica of the model over the SAME parameter storage (the tensor heap
 * is one shared WebAssembly.Memory), runs forward and backward on its own rows of the batch into its
 * own gradient buffers, and the main thread adds the replicas' gradients into the model's.
 *
 * Why not only split each kernel over threads (src/kernels/wasm/pool.ts)? A training step of a small
 * model is ~150 kernel calls of 0.1-2 ms each, and every split call pays a round trip to a sleeping
 * worker (~100-300 µs to wake one on this 2-core VM). Splitting the batch costs one round trip per
 * micro-batch, and every op (LayerNorm, attention, GELU, ...) runs in parallel, not only the big ones.
 *
 * The result is the gradient of the mean loss over the whole micro-batch, as on one thread: replica i
 * seeds its backward with scale·n_i/n, n_i its rows' counted targets (not -1) and n all of them.
 * Only the order of float additions differs from one thread; a given thread count is deterministic.
 * With two threads, the one that finishes its rows first does halves of the other's bigger kernel
 * calls instead of waiting (src/kernels/wasm/peer.ts); that changes who computes which rows, never
 * the arithmetic, so the step is bit-identical with or without it.
 * Dropout: each replica's mask stream is seeded from the caller's dropout PRNG, so checkpoints that
 * save that PRNG still resume bit-exactly.
 *
 * The replicas are worker_threads in Node and module Web Workers on a cross-origin-isolated page
 * (replica.ts, replica-web.ts; the replica itself is replica-core.ts). Without shared memory or
 * workers, or for one thread, `DataParallel.create` returns null and the caller runs
 * forward/backward itself.
 */
import { backend } from "../kernels/index.js";
import { nextSeq, post, waitDone } from "../kernels/wasm/handshake.js";
import type { WasmBackend } from "../kernels/wasm/loader.js";
import { PEER_BYTES, PeerLink } from "../kernels/wasm/peer.js";
import { atomicsWaitAllowed, canShareMemory, inNode } from "../kernels/wasm/platform.js";
import type { GPT } from "../nn/gpt.js";
import { IGNORE_INDEX } from "../ops/crossentropy.js";
import type { Rng } from "../random.js";
import { heap } from "../tensor/memory.js";
import { scope, Tensor } from "../tensor/tensor.js";
import type { ReplicaData } from "./replica-core.js";

/** control block of one replica: i32 [seq, done, cmd, error], f64 args from byte 64, error text from 256 */
export const CTRL_BYTES = 256 + 1024;
export const CMD_STEP = 1;
export const CMD_EXIT = -1;
/** f64 slots of the control block (from byte 64) */
export const ARG = { x: 0, y: 1, rows: 2, T: 3, scale: 4, seed: 5, loss: 6 } as const;

interface Replica {
  thread: { terminate(): void };
  i32: Int32Array;
  f64: Float64Array;
  text: Uint8Array;
  seq: number;
  /** the replica's gradient of each parameter (views of its buffers), in model.params order */
  grads: Tensor[];
  /** with one replica: the link through which it and this thread share kernel calls (src/kernels/wasm/peer.ts) */
  peer: PeerLink | null;
}

/** Sum a micro-batch's counted targets (not IGNORE_INDEX) in rows [r0, r1) of y (B,T). */
function countTargets(y: Int32Array, T: number, r0: number, r1: number): number {
  let n = 0;
  for (let i = r0 * T; i < r1 * T; i++) if (y[i] !== IGNORE_INDEX) n++;
  return n;
}

/** starts one replica thread and resolves with its gradient buffers' pointers once it is ready */
type Starter = (data: ReplicaData) => Promise<{ thread: { terminate(): void }; grads: [string, number][] }>;

/** how long a page's main thread spins on a replica before deciding it died (a step of a big model takes seconds) */
const SPIN_LIMIT_MS = 300_000;

async function nodeStarter(): Promise<Starter> {
  const { Worker } = await import("node:worker_threads");
  // the replica's entry next to this file: .ts when running from source (tsx), .js from dist/
  const fromSource = import.meta.url.endsWith(".ts");
  const entry = new URL(fromSource ? "./replica.ts" : "./replica.js", import.meta.url);
  // from source, the worker registers tsx's loader itself (workers do not inherit --import hooks)
  const script = fromSource
    ? `import(${JSON.stringify(import.meta.resolve("tsx/esm/api"))}).then((t) => { t.register(); return import(${JSON.stringify(entry.href)}); });`
    : null;
  return async (workerData) => {
    const worker = script ? new Worker(script, { eval: true, workerData }) : new Worker(entry, { workerData });
    try {
      const grads = await new Promise<[string, number][]>((resolve, reject) => {
        worker.once("message", (m: { grads?: [string, number][]; error?: string }) =>
          m.grads ? resolve(m.grads) : reject(new Error(`data-parallel replica failed to start: ${m.error}`)),
        );
        worker.once("error", reject);
      });
      worker.unref();
      return { thread: { terminate: () => void worker.terminate() }, grads };
    } catch (e) {
      void worker.terminate();
      throw e;
    }
  };
}

function webStarter(): Starter {
  // dist/ (what a page loads) has replica-web.js beside this file
  const entry = new URL("./replica-web.js", import.meta.url);
  return async (data) => {
    const worker = new Worker(entry, { type: "module", name: "minigpt-replica" });
    try {
      const grads = await new Promise<[string, number][]>((resolve, reject) => {
        worker.onmessage = (e: MessageEvent<{ grads?: [string, number][]; error?: string }>) =>
          e.data.grads ? resolve(e.data.grads) : reject(new Error(`data-parallel replica failed to start: ${e.data.error}`));
        worker.onerror = (e) => {
          e.preventDefault();
          reject(new Error(`data-parallel replica failed to start: ${e.message || "error"}`));
        };
        worker.postMessage(data);
      });
      worker.onmessage = null;
      worker.onerror = null;
      return { thread: { terminate: () => worker.terminate() }, grads };
    } catch (e) {
      worker.terminate();
      throw e;
    }
  };
}

/** a page's main thread: look at the done flag until the replica has answered */
function spinUntilDone(i32: Int32Array, seq: number): void {
  const t0 = performance.now();
  while (Atomics.load(i32, 1) !== seq) {
    if (performance.now() - t0 > SPIN_LIMIT_MS) throw new Error(`data-parallel replica did not answer within ${SPIN_LIMIT_MS / 1000} s`);
  }
}

export interface DataParallelOptions {
  /**
   * With two threads, the one that finishes its rows first does halves of the other's bigger
   * kernel calls (src/kernels/wasm/peer.ts; results are bit-identical either way). Default true.
   */
  shareWork?: boolean;
}

export class DataParallel {
  private constructor(
    private readonly model: GPT,
    private readonly replicas: Replica[],
    /** false on a browser page's main thread: waiting for a replica spins instead of Atomics.wait */
    private readonly canWait: boolean,
  ) {}

  /** kernel-call halves this thread did for the replica, and the replica for this thread, so far */
  get shared(): { helped: number; taken: number } {
    const link = this.replicas[0]?.peer;
    return { helped: link?.helped ?? 0, taken: link?.taken ?? 0 };
  }

  /** threads running the model (this one included) */
  get threads(): number {
    return this.replicas.length + 1;
  }

  /**
   * Replicas of `model` on threads - 1 worker threads, or null when there is nothing to split (one
   * thread), no worker_threads (not Node) or the backend is not wasm (ref tensors are still heap
   * tensors, but the point is speed).
   */
  static async create(model: GPT, threads: number, options: DataParallelOptions = {}): Promise<DataParallel | null> {
    if (threads <= 1 || backend().name !== "wasm") return null;
    if (!inNode && (typeof Worker === "undefined" || !canShareMemory())) return null;
    const canWait = inNode || atomicsWaitAllowed();
    const start = inNode ? await nodeStarter() : webStarter();
    const params = [...model.params].map(([name, t]) => [name, t.ptr, [...t.shape]] as [string, number, number[]]);
    const replicas: Replica[] = [];
    try {
      for (let r = 1; r < threads; r++) {
        const ctrl = new SharedArrayBuffer(CTRL_BYTES);
        // two threads share kernel calls while one waits for the other; with more, each would need a link
        // to every other, and this machine has two cores. A page's main thread, which may not block in
        // Atomics.wait, does not share: it spins on the replica's done flag instead.
        const sharing = threads === 2 && options.shareWork !== false && canWait;
        const peerBuffer = sharing ? new SharedArrayBuffer(PEER_BYTES) : null;
        const { thread, grads } = await start({ memory: heap().memory, config: model.config, params, ctrl, peerBuffer });
        const byName = new Map(grads);
        replicas.push({
          thread,
          i32: new Int32Array(ctrl, 0, 4),
          f64: new Float64Array(ctrl, 64, 8),
          text: new Uint8Array(ctrl, 256, 1024),
          seq: 0,
          grads: [...model.params].map(([name, t]) => Tensor.view(byName.get(name) as number, t.shape, "f32")),
          peer: peerBuffer ? new PeerLink(peerBuffer, 0) : null,
        });
      }
    } catch (e) {
      for (const r of replicas) r.thread.terminate();
      throw e;
    }
    return new DataParallel(model, replicas, canWait);
  }

  /**
   * Forward and backward of one micro-batch x, y (B,T) int32 split by rows over the threads; the
   * gradient of scale·(mean loss) is ADDED to the model's parameter gradients. Returns the mean loss.
   */
  forwardBackward(x: Tensor, y: Tensor, scale: number, dropoutRng?: Rng): number {
    const [B, T] = x.shape as [number, number];
    const parts = Math.min(this.threads, B);
    const yv = y.ints;
    const bounds = Array.from({ length: parts + 1 }, (_, i) => Math.round((B * i) / parts));
    const counts = Array.from({ length: parts }, (_, i) => countTargets(yv, T, bounds[i] as number, bounds[i + 1] as number));
    const total = counts.reduce((a, b) => a + b, 0);
    const dropping = dropoutRng !== undefined && this.model.config.dropout > 0;

    // start the replicas on rows [bounds[i], bounds[i+1]) (a part without targets is skipped)
    const started: Replica[] = [];
    for (let i = 1; i < parts; i++) {
      const rep = this.replicas[i - 1] as Replica;
      const r0 = bounds[i] as number;
      const rows = (bounds[i + 1] as number) - r0;
      const seed = dropping ? (dropoutRng as Rng).nextU32() : -1;
      if ((counts[i] as number) === 0) continue;
      const f = rep.f64;
      f[ARG.x] = x.ptr + r0 * T * 4;
      f[ARG.y] = y.ptr + r0 * T * 4;
      f[ARG.rows] = rows;
      f[ARG.T] = T;
      f[ARG.scale] = (scale * (counts[i] as number)) / total;
      f[ARG.seed] = seed;
      rep.i32[2] = CMD_STEP;
      rep.seq = nextSeq(rep.seq);
      post(rep.i32, rep.seq);
      rep.peer?.ringOther();
      started.push(rep);
    }

    // this thread's rows, then the replicas' results added in
    return this.onThisThread(() => {
      let loss = 0;
      const n0 = counts[0] as number;
      const be = backend() as Partial<WasmBackend>;
      let error: unknown = null;
      try {
        if (n0 > 0) {
          scope(() => {
            const rows = bounds[1] as number;
            const xs = Tensor.view(x.ptr, [rows, T], "i32");
            const ys = Tensor.view(y.ptr, [rows, T], "i32");
            const l = this.model.forward(xs, { targets: ys, dropoutRng }).loss as Tensor;
            l.backward(Float32Array.of((scale * n0) / total));
            loss += (l.item() * n0) / total;
          });
        }
      } catch (e) {
        error = e;
      }

      // collect: wait for each replica, then add its gradients into the model's
      const failures: string[] = [];
      for (const rep of started) {
        // with a link, take halves of the replica's kernel calls until it is done
        if (rep.peer && be.runPeerTask) {
          rep.peer.helpWhile(() => Atomics.load(rep.i32, 1) === rep.seq, be.runPeerTask.bind(be));
        }
        if (this.canWait) waitDone(rep.i32, rep.seq);
        else spinUntilDone(rep.i32, rep.seq);
        if (rep.i32[3] !== 0) {
          const end = rep.text.indexOf(0);
          failures.push(new TextDecoder().decode(rep.text.slice(0, end < 0 ? rep.text.length : end)));
        }
      }
      if (error) throw error;
      if (failures.length > 0) throw new Error(`data-parallel replica failed: ${failures[0]}`);
      const k = backend();
      for (let i = 1; i < bounds.length - 1; i++) {
        if ((counts[i] as number) === 0) continue;
        const rep = this.replicas[i - 1] as Replica;
        loss += ((rep.f64[ARG.loss] as number) * (counts[i] as number)) / total;
        let j = 0;
        for (const p of this.model.params.values()) {
          const g = rep.grads[j++] as Tensor;
          k.accumulate(p.ensureGrad().data, g.data, p.size);
        }
      }
      return total > 0 ? loss : Number.NaN;
    });
  }

  /**
   * Run fn with this thread's kernels on this thread only (the other cores run the replicas) and, with
   * two threads, offering halves of its bigger kernel calls to the replica while the replica waits.
   * forwardBackward runs in it; so should the optimizer step after it (AdamW goes over the
   * parameters element by element, work the otherwise idle replica can halve).
   */
  onThisThread<R>(fn: () => R): R {
    const be = backend() as Partial<WasmBackend>;
    const before = be.useThreads?.(1);
    be.setPeer?.(this.replicas.length === 1 ? (this.replicas[0] as Replica).peer : null);
    try {
      return fn();
    } finally {
      be.setPeer?.(null);
      if (before !== undefined) be.useThreads?.(before);
    }
  }

  /** Stop the replica threads. */
  dispose(): void {
    for (const rep of this.replicas) {
      rep.i32[2] = CMD_EXIT;
      rep.seq = nextSeq(rep.seq);
      post(rep.i32, rep.seq);
      rep.peer?.ringOther();
      rep.thread.terminate();
    }
    this.replicas.length = 0;
  }
}
