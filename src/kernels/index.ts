import type { Backend } from "./backend.js";
import { refBackend } from "./ref/index.js";
import type { PeerLink } from "./wasm/peer.js";

export type BackendName = "ref" | "wasm";

export interface BackendOptions {
  /** worker threads for the wasm backend; default: MINIGPT_THREADS, else the available cores */
  threads?: number;
}

let current: Backend = refBackend;

/** The backend every op calls. `ref` until `useBackend` picks another. */
export function backend(): Backend {
  return current;
}

/**
 * Select the kernel backend: `name`, else MINIGPT_BACKEND from the environment, else "wasm".
 * Until this is awaited once, ops run on the plain TypeScript reference kernels.
 */
export async function useBackend(name?: BackendName, options: BackendOptions = {}): Promise<Backend> {
  const env = typeof process !== "undefined" ? process.env.MINIGPT_BACKEND : undefined;
  const wanted = name ?? (env as BackendName | undefined) ?? "wasm";
  if (wanted === "ref") {
    current = refBackend;
  } else if (wanted === "wasm") {
    const { loadWasmBackend } = await import("./wasm/loader.js");
    const envThreads = typeof process !== "undefined" ? Number(process.env.MINIGPT_THREADS) : Number.NaN;
    const threads = options.threads ?? (envThreads >= 1 ? envThreads : undefined);
    current = await loadWasmBackend({ ...options, threads });
  } else {
    throw new Error(`unknown backend "${String(wanted)}": use ref or wasm`);
  }
  return current;
}

/**
 * What a backend whose kernels run on threads offers data-parallel training (src/train/parallel.ts):
 * the wasm backend has it, ref has not.
 */
export interface KernelThreads {
  /** split kernels over at most n threads from now on (1: the calling thread only); returns the previous limit */
  useThreads(n: number): number;
  /** while `link`'s other thread waits, offer it halves of the bigger kernel calls (null: stop; wasm/peer.ts) */
  setPeer(link: PeerLink | null): void;
  /** do a kernel call the other thread of a link offered (PeerLink.helpWhile's exec) */
  runPeerTask(kernel: number, args: Float64Array): void;
}

/** The current backend's threading, or null when its kernels run only on the calling thread. */
export function kernelThreads(): KernelThreads | null {
  const b = current as Partial<KernelThreads>;
  return typeof b.useThreads === "function" && typeof b.setPeer === "function" && typeof b.runPeerTask === "function"
    ? (current as Backend & KernelThreads)
    : null;
}

export type { Backend, FloatArray } from "./backend.js";
// for threads that run kernels of their own beside the calling thread (the data-parallel replicas)
export { PEER_BYTES, PeerLink } from "./wasm/peer.js";
export { atomicsWaitAllowed, canShareMemory, inNode } from "./wasm/platform.js";
export { refBackend };
