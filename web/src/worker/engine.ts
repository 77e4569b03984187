// Which backend the model worker runs on. WebGPU when the browser offers a hardware GPU adapter,
// else WebAssembly: a software adapter (SwiftShader, lavapipe, WARP: WebGPU on the CPU) is correct but
// slower than the wasm kernels, so the automatic choice never takes one. The page passes on
// `?backend=webgpu` (WebGPU on any adapter: the tests train on SwiftShader's) or `?backend=wasm`.
import { findAdapter, useBackend } from "minigpt-ts/browser";
import type { BackendChoice, Engine } from "./protocol.js";

/** Select the backend `choice` asks for (see the top of this file); `threads` for wasm. */
export async function startEngine(choice: BackendChoice, threads: number): Promise<Engine> {
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
