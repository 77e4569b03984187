/**
 * One data-parallel replica (see parallel.ts), whatever the thread: it attaches a heap of its own to
 * the main thread's tensor memory, builds a GPT over the main thread's parameter storage with its
 * own gradient buffers (one set per slot: per shard of a micro-batch it may be given), reports their
 * pointers through `post`, then serves micro-batches until told to exit: each command is a list of
 * shards, "rows [x, y] at these pointers, seed the backward with this scale", each answered with its
 * loss and its gradient, computed whole into slot j's zeroed buffers. The thread's entry, replica.ts
 * (Node's worker_threads or a module Web Worker), only hands over the start data.
 */
import { type KernelThreads, kernelThreads, PeerLink, useBackend } from "../kernels/index.js";
import { Rng } from "../random.js";
import { attachHeap } from "../tensor/memory.js";
import { scope, Tensor } from "../tensor/tensor.js";
import { ControlBlock, EXIT, Field, Waiter } from "../threads/control.js";
import { buildTwin, JOB, JOB_F64, type ReplicaModel, replicaShape, type Twin } from "./parallel.js";

export interface ReplicaData {
  memory: WebAssembly.Memory;
  /** the model over the main thread's storage (and the LoRA adapter that trains, if one does) */
  model: ReplicaModel;
  ctrl: SharedArrayBuffer;
  /** gradient buffer sets: the most shards a command gives (parallel.ts replicaShape) */
  slots: number;
  /** with two threads: the link through which it and the main thread share work (src/kernels/wasm/peer.ts) */
  peerBuffer: SharedArrayBuffer | null;
}

/** the replica's whole life; `post` carries its one message to the main thread ({grads} or {error}) */
export async function serveReplica(data: ReplicaData, post: (message: unknown) => void): Promise<void> {
  const { memory, model: recipe, ctrl, slots, peerBuffer } = data;
  const peer = peerBuffer ? new PeerLink(peerBuffer, 1) : null;
  let models: Twin[];
  let be: KernelThreads;
  try {
    attachHeap(memory);
    // one thread: the other threads of the process are the other replicas
    await useBackend("wasm", { threads: 1 });
    const threads = kernelThreads();
    if (!threads) throw new Error("the wasm backend did not load with its threading");
    be = threads;
    be.setPeer(peer);
    models = Array.from({ length: slots }, () => buildTwin(recipe));
    const grads = models.map((m) => [...m.params].map(([name, t]) => [name, t.ensureGrad().ptr] as [string, number]));
    post({ grads });
  } catch (e) {
    post({ error: e instanceof Error ? e.message : String(e) });
    throw e;
  }

  const block = new ControlBlock(ctrl, 0, 1, replicaShape(slots));
  const waiter = new Waiter();
  const help = (kernel: number, args: Float64Array) => be.runPeerTask(kernel, args);
  for (;;) {
    // waiting for the next micro-batch: meanwhile take halves of the main thread's kernel calls
    peer?.helpWhile(() => block.posted(), help);
    if (block.next(waiter) === EXIT) break;
    try {
      for (let j = 0; j < block.field(Field.count); j++) {
        const f = block.args.subarray(j * JOB_F64, (j + 1) * JOB_F64);
        const { model, params } = models[j] as Twin;
        for (const t of params.values()) t.zeroGrad();
        scope(() => {
          const rows = f[JOB.rows] as number;
          const T = f[JOB.T] as number;
          const x = Tensor.view(f[JOB.x] as number, [rows, T], "i32");
          const y = Tensor.view(f[JOB.y] as number, [rows, T], "i32");
          const seed = f[JOB.seed] as number;
          const l = model.forward(x, { targets: y, dropoutRng: seed >= 0 ? new Rng(seed) : undefined }).loss as Tensor;
          l.backward(Float32Array.of(f[JOB.scale] as number));
          f[JOB.loss] = l.item();
          // the main thread reads these buffers directly: a gradient the backward never wrote gets
          // the zeros zeroGrad() left pending (Tensor.grad)
          for (const t of params.values()) t.ensureGrad();
        });
      }
      block.finish();
    } catch (e) {
      block.finish(e);
    }
    peer?.ringOther();
  }
}
