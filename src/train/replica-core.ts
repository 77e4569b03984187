/**
 * One data-parallel replica (see parallel.ts), whatever the thread: it attaches a heap of its own to
 * the main thread's tensor memory, builds a GPT over the main thread's parameter storage with its
 * own gradient buffers, reports their pointers through `post`, then serves micro-batches until told
 * to exit: each command is "rows [x, y] at these pointers, seed the backward with this scale",
 * answered with the loss. The thread entries are replica.ts (Node's worker_threads) and
 * replica-web.ts (a module Web Worker); both only hand over the start data.
 */
import { useBackend } from "../kernels/index.js";
import { finish, waitTask } from "../kernels/wasm/handshake.js";
import type { WasmBackend } from "../kernels/wasm/loader.js";
import { PeerLink } from "../kernels/wasm/peer.js";
import type { GPTConfig } from "../nn/config.js";
import { GPT } from "../nn/gpt.js";
import { Rng } from "../random.js";
import { attachHeap } from "../tensor/memory.js";
import { scope, Tensor } from "../tensor/tensor.js";
import { ARG, CMD_EXIT } from "./parallel.js";

export interface ReplicaData {
  memory: WebAssembly.Memory;
  config: GPTConfig;
  params: [string, number, number[]][];
  ctrl: SharedArrayBuffer;
  /** with two threads: the link through which it and the main thread share work (src/kernels/wasm/peer.ts) */
  peerBuffer: SharedArrayBuffer | null;
}

/** the replica's whole life; `post` carries its one message to the main thread ({grads} or {error}) */
export async function serveReplica(data: ReplicaData, post: (message: unknown) => void): Promise<void> {
  const { memory, config, params, ctrl, peerBuffer } = data;
  const peer = peerBuffer ? new PeerLink(peerBuffer, 1) : null;
  let model: GPT;
  let be: WasmBackend;
  try {
    attachHeap(memory);
    // one thread: the other threads of the process are the other replicas
    be = (await useBackend("wasm", { threads: 1 })) as WasmBackend;
    be.setPeer(peer);
    model = new GPT(config, 0, new Map(params.map(([name, ptr, shape]) => [name, Tensor.view(ptr, shape, "f32", true)])));
    const grads: [string, number][] = [...model.params].map(([name, t]) => [name, t.ensureGrad().ptr]);
    post({ grads });
  } catch (e) {
    post({ error: e instanceof Error ? e.message : String(e) });
    throw e;
  }

  const i32 = new Int32Array(ctrl, 0, 4);
  const f64 = new Float64Array(ctrl, 64, 8);
  const text = new Uint8Array(ctrl, 256, 1024);
  let seen = 0;
  const help = (kernel: number, args: Float64Array) => be.runPeerTask(kernel, args);
  for (;;) {
    // waiting for the next micro-batch: meanwhile take halves of the main thread's kernel calls
    peer?.helpWhile(() => Atomics.load(i32, 0) !== seen, help);
    const seq = waitTask(i32, seen);
    seen = seq;
    if (i32[2] === CMD_EXIT) break;
    try {
      model.zeroGrad();
      scope(() => {
        const rows = f64[ARG.rows] as number;
        const T = f64[ARG.T] as number;
        const x = Tensor.view(f64[ARG.x] as number, [rows, T], "i32");
        const y = Tensor.view(f64[ARG.y] as number, [rows, T], "i32");
        const seed = f64[ARG.seed] as number;
        const l = model.forward(x, { targets: y, dropoutRng: seed >= 0 ? new Rng(seed) : undefined }).loss as Tensor;
        l.backward(Float32Array.of(f64[ARG.scale] as number));
        f64[ARG.loss] = l.item();
      });
      i32[3] = 0;
    } catch (e) {
      text.fill(0);
      new TextEncoder().encodeInto((e instanceof Error ? e.message : String(e)).slice(0, 1000), text);
      i32[3] = 1;
    }
    finish(i32, seq);
    peer?.ringOther();
  }
}
