/**
 * Which kernels a command runs on: --backend, else MINIGPT_BACKEND, else auto. Auto takes a GPU
 * (webgpu) only for the commands that run there, only when it is a hardware adapter (a software
 * one, SwiftShader or lavapipe, is slower than wasm), and asks Dawn only in a child process and only
 * where a GPU device exists: Dawn's stack-like stderr on a machine without Vulkan never reaches a
 * user who did not ask for webgpu. Asked for by name, webgpu is probed the same way first, so that
 * no adapter is one line. The chosen adapter is printed on stderr.
 */
import { fail, gpuDevicePresent, probeWebGpu, useBackend } from "../index.js";
import type { ParsedFlags } from "./flags.js";

export async function selectBackend(flags: ParsedFlags, choices: readonly string[]): Promise<void> {
  const env = process.env.MINIGPT_BACKEND;
  const requested = flags.has("backend") ? flags.string("backend") : env && choices.includes(env) ? env : "auto";
  const threads = flags.int("threads") || undefined;
  if (requested === "ref" || requested === "wasm") {
    await useBackend(requested, { threads });
    return;
  }
  if (requested === "webgpu") {
    const probe = await probeWebGpu();
    if (!probe.adapter) fail(`--backend webgpu: ${probe.why}; use --backend wasm`);
    await useGpu(probe.adapter);
    return;
  }
  if (choices.includes("webgpu") && gpuDevicePresent()) {
    const probe = await probeWebGpu();
    if (probe.adapter && !probe.adapter.software) {
      await useGpu(probe.adapter);
      return;
    }
  }
  try {
    await useBackend("wasm", { threads });
  } catch {
    await useBackend("ref");
  }
}

async function useGpu(adapter: { description: string; software: boolean }): Promise<void> {
  await useBackend("webgpu", { allowSoftware: true });
  console.error(`backend: webgpu on ${adapter.description}${adapter.software ? " (a software adapter: slower than wasm)" : ""}`);
}
