/**
 * Where the wasm backend runs: Node (worker_threads, node:fs, node:os) or a web runtime (Web Workers,
 * fetch, navigator). Nothing here imports a Node module, so the backend loads in a browser as it is;
 * the Node-only modules are imported dynamically, and only when `inNode`.
 */

/** true in Node (and runtimes that present themselves as Node), false in a browser page or Web Worker */
export const inNode: boolean = typeof process !== "undefined" && typeof process.versions?.node === "string";

/**
 * Whether shared memory can be handed to other threads: always in Node; in a browser only on a
 * cross-origin-isolated page (served with Cross-Origin-Opener-Policy: same-origin and
 * Cross-Origin-Embedder-Policy: require-corp), where SharedArrayBuffer exists.
 */
export function canShareMemory(): boolean {
  if (inNode) return true;
  return (globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated === true && typeof SharedArrayBuffer !== "undefined";
}

/** The default thread count: the available cores (Node), navigator.hardwareConcurrency (a cross-origin-isolated page), else 1. */
export async function defaultThreads(): Promise<number> {
  if (inNode) {
    const { availableParallelism } = await import("node:os");
    return availableParallelism();
  }
  if (!canShareMemory()) return 1;
  const nav = (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator;
  return nav?.hardwareConcurrency ?? 1;
}

/** Atomics.wait throws on a browser page's main thread; elsewhere (workers, Node) it is allowed. */
export function atomicsWaitAllowed(): boolean {
  try {
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 1, 0);
    return true;
  } catch {
    return false;
  }
}
