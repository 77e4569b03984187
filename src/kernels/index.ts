import type { Backend, DeviceArray, DeviceMemory, DeviceReductions, FloatArray } from "./backend.js";
import { refBackend } from "./ref/index.js";
import type { PeerLink } from "./wasm/peer.js";

export type BackendName = "ref" | "wasm" | "webgpu";

/** What a kernel argument can be: a CPU array, or an array in a device's memory (a tensor's `storage`) */
export type KernelArray = FloatArray | DeviceArray;
export type KernelInts = Int32Array | DeviceArray;

export interface BackendOptions {
  /** worker threads for the wasm backend; default: MINIGPT_THREADS, else the available cores */
  threads?: number;
  /** webgpu: accept a software adapter (SwiftShader, lavapipe); default true when webgpu is asked for by name */
  allowSoftware?: boolean;
}

let current: Backend<KernelArray, KernelInts> = refBackend;
let memory: DeviceMemory | null = null;
let reductions: DeviceReductions | null = null;

/** The backend every op calls. `ref` until `useBackend` picks another. */
export function backend(): Backend<KernelArray, KernelInts> {
  return current;
}

/** The current backend's reductions into device memory; null on the CPU backends. */
export function deviceReductions(): DeviceReductions | null {
  return reductions;
}

/** The current backend's device memory, where new tensors are made; null on the CPU backends (the wasm heap). */
export function deviceMemory(): DeviceMemory | null {
  return memory;
}

/**
 * Select the kernel backend: `name`, else MINIGPT_BACKEND from the environment, else "wasm".
 * Until this is awaited once, ops run on the plain TypeScript reference kernels.
 */
export async function useBackend(name?: BackendName, options: BackendOptions = {}): Promise<Backend<KernelArray, KernelInts>> {
  const env = typeof process !== "undefined" ? process.env.MINIGPT_BACKEND : undefined;
  const wanted = name ?? (env as BackendName | undefined) ?? "wasm";
  if (wanted === "ref") {
    current = refBackend;
  } else if (wanted === "wasm") {
    const { loadWasmBackend } = await import("./wasm/loader.js");
    const envThreads = typeof process !== "undefined" ? Number(process.env.MINIGPT_THREADS) : Number.NaN;
    const threads = options.threads ?? (envThreads >= 1 ? envThreads : undefined);
    current = await loadWasmBackend({ ...options, threads });
  } else if (wanted === "webgpu") {
    const { loadWebGpuBackend } = await import("./webgpu/index.js");
    const gpu = await loadWebGpuBackend({ allowSoftware: options.allowSoftware ?? true });
    current = gpu;
    memory = gpu.memory;
    reductions = gpu;
    return current;
  } else {
    throw new Error(`unknown backend "${String(wanted)}": use ref, wasm or webgpu`);
  }
  memory = null;
  reductions = null;
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

export type { AdamwStep, AdamwTensor, Backend, DeviceArray, DeviceMemory, DeviceReductions, FloatArray } from "./backend.js";
// for threads that run kernels of their own beside the calling thread (the data-parallel replicas)
export { PEER_BYTES, PeerLink } from "./wasm/peer.js";
export { atomicsWaitAllowed, canShareMemory, inNode } from "./wasm/platform.js";
export { refBackend };
