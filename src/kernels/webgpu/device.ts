/// <reference types="@webgpu/types" />
/**
 * Getting a WebGPU device: in a browser from `navigator.gpu`, in Node from the optional npm package
 * `webgpu` (Google's Dawn). Dawn is imported only here, and this file only when webgpu is asked for,
 * so a user of the CPU backends never loads it (on a machine without Vulkan Dawn prints a stack-like
 * warning to stderr as it loads; `probeWebGpu` (probe.ts) asks in a child process instead, for automatic choice).
 *
 * The device asks the adapter for the limits a model needs: the default 128 MiB per storage binding
 * would not hold GPT-2 124M's token embedding with its gradient and moments in one buffer each.
 */
import { MinigptError } from "../../errors.js";
import { inNode } from "../wasm/platform.js";

export interface AdapterSummary {
  /** vendor, architecture and description as the adapter reports them, joined */
  description: string;
  /** a CPU implementation of WebGPU (SwiftShader, lavapipe, llvmpipe, WARP): correct, but slower than wasm */
  software: boolean;
  /** the largest storage buffer binding the adapter allows, in bytes */
  maxStorageBufferBindingSize: number;
  maxBufferSize: number;
}

interface GpuContext {
  device: GPUDevice;
  adapter: AdapterSummary;
  /** the GPU entry the device came from: held as long as the device (Dawn's instance dies when it is collected, and its device with it) */
  readonly instance: GPU;
}

const SOFTWARE = /swiftshader|lavapipe|llvmpipe|software|warp|basic render/i;

/** What an adapter reports of itself (GPUAdapterInfo's fields), as a probe in another process can pass it on */
export interface AdapterReport {
  vendor?: string;
  architecture?: string;
  description?: string;
  device?: string;
  isFallbackAdapter?: boolean;
  maxStorageBufferBindingSize: number;
  maxBufferSize: number;
}

/** an adapter's report: its fields as plain data */
function adapterReport(adapter: GPUAdapter): AdapterReport {
  const info = adapter.info;
  return {
    vendor: info?.vendor,
    architecture: info?.architecture,
    description: info?.description,
    device: info?.device,
    isFallbackAdapter:
      (adapter as GPUAdapter & { isFallbackAdapter?: boolean }).isFallbackAdapter === true || info?.isFallbackAdapter === true,
    maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize,
    maxBufferSize: adapter.limits.maxBufferSize,
  };
}

export function summarize(r: AdapterReport): AdapterSummary {
  const parts = [r.vendor, r.architecture, r.description, r.device].filter((s): s is string => !!s);
  const description = [...new Set(parts)].join(" ") || "unnamed adapter";
  return {
    description,
    software: r.isFallbackAdapter === true || SOFTWARE.test(description),
    maxStorageBufferBindingSize: r.maxStorageBufferBindingSize,
    maxBufferSize: r.maxBufferSize,
  };
}

/** navigator.gpu in a browser; in Node the `webgpu` package's, or an error naming what is missing */
async function gpuEntry(): Promise<GPU> {
  const nav = (globalThis as { navigator?: { gpu?: GPU } }).navigator;
  if (nav?.gpu) return nav.gpu;
  if (!inNode) throw new MinigptError("webgpu: this browser has no WebGPU (navigator.gpu is missing); use the wasm backend");
  let mod: { create(options: string[]): GPU; globals: Record<string, unknown> };
  try {
    // a variable keeps bundlers (the playground's vite) from trying to resolve the Node-only package
    const name = "webgpu";
    mod = (await import(name)) as typeof mod;
  } catch {
    throw new MinigptError(
      "webgpu: the optional package `webgpu` (Dawn for Node) is not installed; run `npm install webgpu` or use --backend wasm",
    );
  }
  // GPUBufferUsage, GPUMapMode, ... as globals, as a browser has them
  for (const [k, v] of Object.entries(mod.globals)) if (!(k in globalThis)) (globalThis as Record<string, unknown>)[k] = v;
  return mod.create([]);
}

/**
 * The adapter a device would come from, described, without making the device; null when there is
 * none. For choosing a backend: a page asks this before it commits to webgpu, and picks it only for
 * a hardware adapter (`software` false). In Node this loads Dawn, so ask it only when webgpu may be
 * used (see the top of this file).
 */
export async function findAdapter(): Promise<AdapterSummary | null> {
  const adapter = await (await gpuEntry()).requestAdapter({ powerPreference: "high-performance" });
  return adapter ? summarize(adapterReport(adapter)) : null;
}

/**
 * A device on the best adapter (high-performance preference). `allowSoftware` false refuses a
 * software adapter with a one-line error. Limits: the adapter's maximum buffer and binding sizes,
 * and at least 32 KiB of workgroup memory where it has them.
 */
export async function acquireDevice(options: { allowSoftware?: boolean } = {}): Promise<GpuContext> {
  const gpu = await gpuEntry();
  const adapter = await gpu.requestAdapter({ powerPreference: "high-performance" });
  if (!adapter) {
    throw new MinigptError(
      inNode
        ? "webgpu: no GPU adapter found (Dawn needs a Vulkan driver here: libvulkan1 and a GPU's ICD, or SwiftShader via VK_ICD_FILENAMES); use --backend wasm"
        : "webgpu: the browser offered no GPU adapter; use the wasm backend",
    );
  }
  const summary = summarize(adapterReport(adapter));
  if (summary.software && options.allowSoftware === false) {
    throw new MinigptError(`webgpu: only a software adapter is available (${summary.description}); wasm is faster here`);
  }
  const l = adapter.limits;
  const device = await adapter.requestDevice({
    requiredLimits: {
      maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
      maxBufferSize: l.maxBufferSize,
      maxStorageBuffersPerShaderStage: Math.min(l.maxStorageBuffersPerShaderStage, 10),
      maxComputeWorkgroupStorageSize: Math.min(l.maxComputeWorkgroupStorageSize, 32768),
      maxComputeInvocationsPerWorkgroup: Math.min(l.maxComputeInvocationsPerWorkgroup, 256),
    },
  });
  device.lost.then((info) => {
    if (info.reason !== "destroyed") console.error(`webgpu: device lost: ${info.message}`);
  });
  return { device, adapter: summary, instance: gpu };
}
