import type { Backend } from "./backend.js";
import { refBackend } from "./ref/index.js";

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

export type { Backend, FloatArray } from "./backend.js";
export { refBackend };
