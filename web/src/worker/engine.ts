// Which backend the model worker runs on. WebGPU when the browser offers a hardware GPU adapter,
// else WebAssembly: a software adapter (SwiftShader, lavapipe, WARP: WebGPU on the CPU) is correct but
// slower than the wasm kernels, so the automatic choice never takes one. The page passes on
// `?backend=webgpu` (WebGPU on any adapter: the tests train on SwiftShader's) or `?backend=wasm`.
// The wasm kernels get threads only where the page is cross-origin isolated (SharedArrayBuffer).
import { findAdapter, useBackend } from "minigpt-ts/browser";
import type { BackendChoice, Engine } from "../protocol.js";

/** what the worker's models run on: set once, when the page says hello */
let chosen = { threads: 1, onGpu: false };

/** the threads the wasm backend was started with (1 before the engine starts) */
export const threads = (): number => chosen.threads;

/** the models live on the GPU (the webgpu backend): their values are read asynchronously */
export const onGpu = (): boolean => chosen.onGpu;

export const isolated = (): boolean => (globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated === true;

/** Start the backend `choice` asks for (see the top of this file), with at most `maxThreads` for wasm. */
export async function startEngine(choice: BackendChoice, maxThreads: number): Promise<Engine> {
  const threads = isolated() ? Math.max(1, Math.min(maxThreads, navigator.hardwareConcurrency || 1)) : 1;
  const engine = await chooseBackend(choice, threads);
  chosen = { threads, onGpu: engine.backend === "webgpu" };
  return engine;
}

async function chooseBackend(choice: BackendChoice, threads: number): Promise<Engine> {
  let why = "";
  if (choice !== "wasm") {
    const hasWebGpu = "gpu" in navigator;
    const adapter = hasWebGpu ? await findAdapter().catch(() => null) : null;
    if (adapter && (choice === "webgpu" || !adapter.software)) {
      try {
        await useBackend("webgpu");
        return { backend: "webgpu", adapter: adapter.description, software: adapter.software };
      } catch (err) {
        why = `the GPU (${adapter.description}) gave no device: ${err instanceof Error ? err.message : String(err)}`;
      }
    } else if (adapter) why = `its only WebGPU adapter (${adapter.description}) runs on the CPU, slower than WebAssembly`;
    else why = hasWebGpu ? "this browser offers no WebGPU adapter" : "this browser has no WebGPU";
  }
  const be = (await useBackend("wasm", { threads })) as { simd?: string };
  return { backend: "wasm", simd: be.simd ?? "no", threads, notGpu: choice === "wasm" ? "asked for by the address" : why };
}
