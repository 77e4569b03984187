/**
 * Which kernels a command runs on: --backend, else MINIGPT_BACKEND, else auto. Auto takes a GPU
 * (webgpu) only for the commands that run there, only when it is a hardware adapter (a software
 * one, SwiftShader or lavapipe, is slower than wasm), and asks Dawn only in a child process and only
 * where a GPU device exists: Dawn's stack-like stderr on a machine without Vulkan never reaches a
 * user who did not ask for webgpu. Asked for by name, webgpu is probed the same way first, so that
 * no adapter is one line. The chosen adapter is printed on stderr.
 */
import { type BackendName, fail, gpuDevicePresent, probeWebGpu, useBackend } from "../index.js";
import type { ParsedFlags } from "./flags.js";

export async function selectBackend(flags: ParsedFlags, choices: readonly string[]): Promise<void> {
  const name = await chooseBackend(flags, choices);
  if (name === "auto") {
    try {
      await useBackend("wasm", { threads: flags.int("threads") || undefined });
    } catch {
      await useBackend("ref");
    }
  } else await useBackend(name, { threads: flags.int("threads") || undefined, allowSoftware: true });
}

/**
 * The backend a command runs on, webgpu probed and its adapter printed, without loading it (serve's
 * generation thread loads it): webgpu, wasm or ref, or "auto" for the CPU's best (wasm, else ref).
 */
export async function chooseBackend(flags: ParsedFlags, choices: readonly string[]): Promise<BackendName | "auto"> {
  const env = process.env.MINIGPT_BACKEND;
  const requested = flags.has("backend") ? flags.string("backend") : env && choices.includes(env) ? env : "auto";
  if (requested === "ref" || requested === "wasm") return requested;
  if (requested === "webgpu") {
    const probe = await probeWebGpu();
    if (!probe.adapter) fail(`--backend webgpu: ${probe.why}; use --backend wasm`);
    return onGpu(probe.adapter);
  }
  if (choices.includes("webgpu") && gpuDevicePresent()) {
    const probe = await probeWebGpu();
    if (probe.adapter && !probe.adapter.software) return onGpu(probe.adapter);
  }
  return "auto";
}

function onGpu(adapter: { description: string; software: boolean }): "webgpu" {
  console.error(`backend: webgpu on ${adapter.description}${adapter.software ? " (a software adapter: slower than wasm)" : ""}`);
  return "webgpu";
}
