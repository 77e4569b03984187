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
 * Shards make the result independent of the thread count. Each micro-batch is cut into S shards of
 * rows (S fixed by the run, not by the machine); a shard's gradient is computed whole, by one thread,
 * into gradient buffers of its own that start at zero, and the shards' gradients are added into the
 * model's in shard order. Which thread computes a shard changes nothing: every thread runs the same
 * single-thread kernels on the same rows. So 1, 2 or more threads give bit-identical gradients (and
 * so weights); with fewer threads than shards a thread does several shards one after another, and
 * with one thread all of them (on the wasm backend its kernels may then be split over the kernel
 * pool, whose splits do not change a result either: src/kernels/wasm/loader.ts).
 *
 * The result is the gradient of the mean loss over the whole micro-batch: shard s seeds its backward
 * with scale·n_s/n, n_s its rows' counted targets (not -1) and n all of them. Dropout: shard s's mask
 * stream is seeded by the s-th of S numbers drawn from the caller's dropout PRNG per micro-batch, so
 * checkpoints that save that PRNG resume bit-exactly, on any thread count.
 * With two threads, the one that finishes its shards first does halves of the other's bigger kernel
 * calls instead of waiting (src/kernels/wasm/peer.ts); that changes who computes which rows, never
 * the arithmetic, so the step is bit-identical with or without it.
 *
 * The replicas are worker_threads in Node and module Web Workers on a cross-origin-isolated page
 * (entry replica.ts, started by src/threads/workers.ts; the replica itself is replica-core.ts). Without shared memory or
 * workers, or for one thread, the shards all run on this thread; `DataParallel.create` returns null
 * only when there is nothing to split (one shard): createStepper (stepper.ts) then runs it whole on this thread.
 */

import type { LoraConfig } from "../io/lora.js";
import { atomicsWaitAllowed, backend, canShareMemory, inNode, kernelThreads, PEER_BYTES, PeerLink } from "../kernels/index.js";
import type { GPTConfig } from "../nn/config.js";
import { GPT } from "../nn/gpt.js";
import { attachLora, type LoraAttachment } from "../nn/lora.js";
import { QuantizedWeight, type SharedQuantizedWeight } from "../nn/quantized.js";
import { IGNORE_INDEX } from "../ops/crossentropy.js";
import { Rng } from "../random.js";
import { heap } from "../tensor/memory.js";
import { scope, Tensor, unscoped } from "../tensor/tensor.js";
import { ControlBlock, EXIT, type Shape, Waiter } from "../threads/control.js";
import { startWorker, type Thread, type WorkerEntry } from "../threads/workers.js";
import type { ReplicaData } from "./replica-core.js";
import type { Stepper } from "./stepper.js";

/**
 * A replica's control block (src/threads/control.ts): a task is a command (op) with `count` shards,
 * one record of JOB's f64 fields each in the block's args (up to the slots it was made with); a
 * failure's message in its text.
 */
/** f64 fields of one job record: a shard's rows [x, y] at these pointers (rows x T), its backward seed, dropout seed (-1: none), and the loss it answers */
export const JOB = { x: 0, y: 1, rows: 2, T: 3, scale: 4, seed: 5, loss: 6 } as const;
export const JOB_F64 = 8;
/** the control block's shape for a replica with `slots` gradient buffer sets */
export function replicaShape(slots: number): Shape {
  return { args: slots * JOB_F64, text: 1024 };
}
const CMD_STEP = 1;

interface Replica {
  thread: Thread;
  block: ControlBlock;
  /** per slot, the replica's gradient of each parameter (views of its buffers), in model.params order */
  grads: Tensor[][];
  /** with one replica: the link through which it and this thread share kernel calls (src/kernels/wasm/peer.ts) */
  peer: PeerLink | null;
}

/** Sum a micro-batch's counted targets (not IGNORE_INDEX) in rows [r0, r1) of y (B,T). */
function countTargets(y: Int32Array, T: number, r0: number, r1: number): number {
  let n = 0;
  for (let i = r0 * T; i < r1 * T; i++) if (y[i] !== IGNORE_INDEX) n++;
  return n;
}

/** [first, end) of `parts` near-equal contiguous ranges of `units` */
function cut(units: number, parts: number): number[] {
  return Array.from({ length: parts + 1 }, (_, i) => Math.round((units * i) / parts));
}

/**
 * What a replica (or this thread's twin) builds to run shards: the model's parameters and, when a LoRA
 * adapter trains, the adapter's tensors, each as (name, pointer into the shared heap, shape).
 */
export interface ReplicaModel {
  config: GPTConfig;
  params: [string, number, number[]][];
  /** a QLoRA base's matrices, held int8 / int4 (nn/quantized.ts), by name */
  quantized: [string, SharedQuantizedWeight][];
  lora: { config: LoraConfig; params: [string, number, number[]][] } | null;
}

function replicaModelOf(model: GPT, lora: LoraAttachment | null): ReplicaModel {
  const list = (m: Map<string, Tensor>) => [...m].map(([name, t]) => [name, t.ptr, [...t.shape]] as [string, number, number[]]);
  return {
    config: model.config,
    params: list(model.params),
    quantized: [...model.quantized].map(([name, q]) => [name, q.shared()]),
    lora: lora ? { config: lora.config, params: list(lora.params) } : null,
  };
}

/** A trainable replica: a model over the shared storage and the tensors that train, with gradient buffers of their own. */
export interface Twin {
  model: GPT;
  params: Map<string, Tensor>;
}

/**
 * A model over the parameter (and adapter) storage `recipe` names, with gradient buffers of its own
 * for what trains, made now and zeroed: a backward then always adds into them.
 */
export function buildTwin(recipe: ReplicaModel): Twin {
  const views = (list: [string, number, number[]][]) =>
    new Map(list.map(([name, ptr, shape]) => [name, Tensor.view(ptr, shape, "f32", true)]));
  const quantized = new Map(recipe.quantized.map(([name, q]) => [name, QuantizedWeight.fromShared(q)]));
  const model = new GPT(recipe.config, 0, views(recipe.params), quantized);
  const params = recipe.lora ? attachLora(model, recipe.lora.config, views(recipe.lora.params)).params : model.params;
  for (const t of params.values()) t.ensureGrad();
  return { model, params };
}

/** how long a page's main thread spins on a replica before deciding it died (a step of a big model takes seconds) */
const SPIN_LIMIT_MS = 300_000;

/** the replica thread's entry, replica.ts, started as every minigpt worker thread is (src/threads/workers.ts) */
const replicaEntry: WorkerEntry = {
  from: import.meta.url,
  name: "replica",
  // the replica loads the wasm kernels from next to their module (import.meta.url)
  bundle: false,
  // written in this one form, which bundlers (Vite, webpack) recognise, so a bundled page gets the replica as a worker chunk
  web: () => new Worker(new URL("./replica.js", import.meta.url), { type: "module", name: "minigpt-replica" }),
};

/** starts one replica thread; resolves with its gradient buffers' pointers once it is ready */
async function startReplica(data: ReplicaData): Promise<{ thread: Thread; grads: [string, number][][] }> {
  const { thread, message } = await startWorker<{ grads: [string, number][][] }>(replicaEntry, data, "data-parallel replica");
  thread.detach();
  return { thread, grads: message.grads };
}

export interface DataParallelOptions {
  /**
   * With two threads, the one that finishes first does halves of the other's bigger
   * kernel calls (src/kernels/wasm/peer.ts; results are bit-identical either way). Default true.
   */
  shareWork?: boolean;
  /**
   * Shards each micro-batch is cut into (by rows; the result depends on this, not on the threads).
   * Default: one per thread.
   */
  shards?: number;
  /** the LoRA adapter that trains on the model (then only it has gradients) */
  lora?: LoraAttachment | null;
}

export class DataParallel implements Stepper {
  /** a model over the parameters with gradient buffers of its own, for this thread's shards that cannot write the model's (made on first use) */
  private twin: Twin | null = null;

  private constructor(
    private readonly model: GPT,
    /** how a replica builds the model, and the tensors that train, in that order */
    private readonly recipe: ReplicaModel,
    private readonly trainable: Map<string, Tensor>,
    /** the shards of a micro-batch */
    readonly shards: number,
    private readonly replicas: Replica[],
    /** how this thread waits for a replica (a browser page's main thread spins instead of Atomics.wait) */
    private readonly waiter: Waiter,
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
   * Shards of `model` run on up to `threads` threads (replicas on threads - 1 worker threads, never
   * more threads than shards), or null when there is nothing to split: one shard. Replicas need the
   * wasm backend (ref tensors are still heap tensors, but the point is speed) and worker threads
   * with shared memory; without them every shard runs on this thread, with the same result.
   */
  static async create(model: GPT, threads: number, options: DataParallelOptions = {}): Promise<DataParallel | null> {
    const shards = Math.max(1, Math.floor(options.shards ?? threads));
    if (shards <= 1) return null;
    let workers = Math.max(1, Math.min(Math.floor(threads), shards));
    if (backend().name !== "wasm" || (!inNode && (typeof Worker === "undefined" || !canShareMemory()))) workers = 1;
    const canWait = inNode || atomicsWaitAllowed();
    const waiter = new Waiter({
      noBlock: canWait
        ? undefined
        : { stallMs: SPIN_LIMIT_MS, stalled: () => `data-parallel replica did not answer within ${SPIN_LIMIT_MS / 1000} s` },
    });
    const lora = options.lora ?? null;
    const recipe = replicaModelOf(model, lora);
    const trainable = lora ? lora.params : model.params;
    if (workers === 1) return new DataParallel(model, recipe, trainable, shards, [], waiter);
    // a replica's gradient buffer sets: one for each shard it may be given
    const owners = cut(shards, workers);
    const slots = Math.max(...owners.slice(1).map((end, t) => end - (owners[t] as number)));
    const replicas: Replica[] = [];
    try {
      for (let r = 1; r < workers; r++) {
        const { buffer: ctrl, blocks } = ControlBlock.create(replicaShape(slots));
        // two threads share kernel calls while one waits for the other; with more, each would need a link
        // to every other, and this machine has two cores. A page's main thread, which may not block in
        // Atomics.wait, does not share: it spins on the replica's done flag instead.
        const sharing = workers === 2 && options.shareWork !== false && canWait;
        const peerBuffer = sharing ? new SharedArrayBuffer(PEER_BYTES) : null;
        const { thread, grads } = await startReplica({ memory: heap().memory, model: recipe, ctrl, slots, peerBuffer });
        replicas.push({
          thread,
          block: blocks[0] as ControlBlock,
          grads: grads.map((slot) => {
            const byName = new Map(slot);
            return [...trainable].map(([name, t]) => Tensor.view(byName.get(name) as number, t.shape, "f32"));
          }),
          peer: peerBuffer ? new PeerLink(peerBuffer, 0) : null,
        });
      }
    } catch (e) {
      for (const r of replicas) r.thread.terminate();
      throw e;
    }
    return new DataParallel(model, recipe, trainable, shards, replicas, waiter);
  }

  /**
   * Forward and backward of one micro-batch x, y (B,T) int32 cut into the shards; the gradient of
   * scale·(mean loss) is ADDED to the model's parameter gradients. `gradsZero`: the model's gradients
   * are all zero (the step's first micro-batch), so the first shard may write them directly instead of
   * going through a buffer of its own (the same sums, one pass over the parameters fewer). Returns the
   * mean loss.
   */
  forwardBackward(x: Tensor, y: Tensor, scale: number, dropoutRng?: Rng, gradsZero = false): number {
    const [B, T] = x.shape as [number, number];
    const S = this.shards;
    const yv = y.ints;
    const rows = cut(B, S);
    const counts = Array.from({ length: S }, (_, s) => countTargets(yv, T, rows[s] as number, rows[s + 1] as number));
    const total = counts.reduce((a, b) => a + b, 0);
    const dropping = dropoutRng !== undefined && (this.model.config.dropout > 0 || (this.recipe.lora?.config.dropout ?? 0) > 0);
    // one seed per shard whoever runs it (and whether it has targets), so the masks do not depend on the threads
    const seeds = counts.map(() => (dropping ? (dropoutRng as Rng).nextU32() : -1));
    // thread t runs shards [owners[t], owners[t + 1]); a shard without targets adds nothing and is skipped
    const owners = cut(S, this.threads);
    const shardsOf = (t: number) =>
      Array.from({ length: (owners[t + 1] as number) - (owners[t] as number) }, (_, i) => (owners[t] as number) + i).filter(
        (s) => (counts[s] as number) > 0,
      );
    const shardScale = (s: number) => (scale * (counts[s] as number)) / total;

    // start the replicas on their shards
    const started: [Replica, number[]][] = [];
    this.replicas.forEach((rep, r) => {
      const mine = shardsOf(r + 1);
      if (mine.length === 0) return;
      mine.forEach((s, j) => {
        const f = rep.block.args.subarray(j * JOB_F64, (j + 1) * JOB_F64);
        const r0 = rows[s] as number;
        f[JOB.x] = x.ptr + r0 * T * 4;
        f[JOB.y] = y.ptr + r0 * T * 4;
        f[JOB.rows] = (rows[s + 1] as number) - r0;
        f[JOB.T] = T;
        f[JOB.scale] = shardScale(s);
        f[JOB.seed] = seeds[s] as number;
      });
      rep.block.post(CMD_STEP, mine.length);
      rep.peer?.ringOther();
      started.push([rep, mine]);
    });

    // this thread's shards, then the replicas' gradients added in, in shard order
    return this.onThisThread(() => {
      const k = backend();
      let loss = 0;
      let error: unknown = null;
      try {
        for (const s of shardsOf(0)) {
          // only the micro-batch's first shard may write the model's gradients while they are zero
          const direct = gradsZero && s === 0;
          const twin = direct ? null : this.ownTwin();
          const runner = twin ? twin.model : this.model;
          if (twin) for (const t of twin.params.values()) t.zeroGrad();
          scope(() => {
            const r0 = rows[s] as number;
            const n = (rows[s + 1] as number) - r0;
            const xs = Tensor.view(x.ptr + r0 * T * 4, [n, T], "i32");
            const ys = Tensor.view(y.ptr + r0 * T * 4, [n, T], "i32");
            const seed = seeds[s] as number;
            const l = runner.forward(xs, { targets: ys, dropoutRng: seed >= 0 ? new Rng(seed) : undefined }).loss as Tensor;
            l.backward(Float32Array.of(shardScale(s)));
            loss += (l.item() * (counts[s] as number)) / total;
          });
          if (twin)
            addGradients(
              k,
              this.trainable,
              [...twin.params.values()].map((t) => t.ensureGrad()),
            );
        }
      } catch (e) {
        error = e;
      }

      // collect: wait for each replica, then add its shards' gradients into the model's
      const failures: string[] = [];
      const threads = kernelThreads();
      for (const [rep] of started) {
        // with a link, take halves of the replica's kernel calls until it is done
        if (rep.peer && threads) {
          rep.peer.helpWhile(() => rep.block.finished(), threads.runPeerTask.bind(threads));
        }
        const failure = rep.block.await(this.waiter);
        if (failure !== null) failures.push(failure);
      }
      if (error) throw error;
      if (failures.length > 0) throw new Error(`data-parallel replica failed: ${failures[0]}`);
      for (const [rep, mine] of started) {
        mine.forEach((s, j) => {
          loss += ((rep.block.args[j * JOB_F64 + JOB.loss] as number) * (counts[s] as number)) / total;
          addGradients(k, this.trainable, rep.grads[j] as Tensor[]);
        });
      }
      return total > 0 ? loss : Number.NaN;
    });
  }

  /** this thread's twin of the model (gradient buffers of its own), made on first use */
  private ownTwin(): Twin {
    if (!this.twin) this.twin = unscoped(() => buildTwin(this.recipe));
    return this.twin;
  }

  /**
   * Run fn with this thread's kernels on this thread only (the other cores run the replicas) and, with
   * two threads, offering halves of its bigger kernel calls to the replica while the replica waits.
   * forwardBackward runs in it; so should the optimizer step after it (AdamW goes over the
   * parameters element by element, work the otherwise idle replica can halve). Without replicas fn
   * runs as it is (with the kernel pool's threads, if any).
   */
  onThisThread<R>(fn: () => R): R {
    if (this.replicas.length === 0) return fn();
    const threads = kernelThreads();
    const before = threads?.useThreads(1);
    threads?.setPeer(this.replicas.length === 1 ? (this.replicas[0] as Replica).peer : null);
    try {
      return fn();
    } finally {
      threads?.setPeer(null);
      if (before !== undefined) threads?.useThreads(before);
    }
  }

  /** the optimizer update after forwardBackward: on this thread, with the replica taking halves of its kernels */
  update<R>(fn: () => R): R {
    return this.onThisThread(fn);
  }

  /** Stop the replica threads and free the gradient buffers of this thread's twin. */
  dispose(): void {
    for (const rep of this.replicas) {
      rep.block.post(EXIT);
      rep.peer?.ringOther();
      rep.thread.terminate();
    }
    this.replicas.length = 0;
    if (this.twin) for (const t of this.twin.params.values()) t.grad?.dispose();
    this.twin = null;
  }
}

/** the gradients of what trains += `grads` (one per tensor, in that order) */
function addGradients(k: ReturnType<typeof backend>, trainable: Map<string, Tensor>, grads: readonly Tensor[]): void {
  let j = 0;
  for (const p of trainable.values()) {
    const g = grads[j++] as Tensor;
    k.accumulate(p.ensureGrad().data, g.data, p.size);
  }
}
