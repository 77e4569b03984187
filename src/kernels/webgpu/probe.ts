/**
 * Is there a WebGPU adapter here, and which? Asked in a child process (Node only): on a machine
 * without Vulkan, Dawn (the npm package `webgpu`) prints a stack-like warning to stderr as it
 * loads, which must not reach a user who did not ask for webgpu; a child's stderr is dropped. The
 * probe costs a Node start and Dawn's load (~0.3-1 s), so automatic choice asks only where a
 * hardware adapter can be at all (`gpuDevicePresent`).
 */
import { execFile } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";
import { type AdapterReport, type AdapterSummary, summarize } from "./device.js";

export type ProbeResult = { adapter: AdapterSummary } | { adapter: null; why: string };

/** the child: Dawn's adapter (high-performance preference) as device.ts's AdapterReport, or null */
const CHILD = `
const m = await import(process.argv[1]);
const a = await m.create([]).requestAdapter({ powerPreference: "high-performance" });
const i = a?.info ?? {};
process.stdout.write(JSON.stringify(a && {
  vendor: i.vendor, architecture: i.architecture, description: i.description, device: i.device,
  isFallbackAdapter: a.isFallbackAdapter === true || i.isFallbackAdapter === true,
  maxStorageBufferBindingSize: a.limits.maxStorageBufferBindingSize, maxBufferSize: a.limits.maxBufferSize,
}));
process.exit(0);
`;

const PROBE_TIMEOUT_MS = 30_000;

/** The adapter Dawn would give this process (its environment: VK_ICD_FILENAMES, ...), or why there is none. */
export async function probeWebGpu(): Promise<ProbeResult> {
  let dawn: string;
  try {
    dawn = pathToFileURL(createRequire(import.meta.url).resolve("webgpu")).href;
  } catch {
    return { adapter: null, why: "the optional package `webgpu` (Dawn for Node) is not installed (npm install webgpu)" };
  }
  const said = await new Promise<{ out: string; failed: boolean }>((resolve) => {
    execFile(
      process.execPath,
      ["--input-type=module", "-e", CHILD, dawn],
      { timeout: PROBE_TIMEOUT_MS, encoding: "utf8" },
      (error, stdout) => resolve({ out: stdout.trim(), failed: error !== null }),
    );
  });
  let report: AdapterReport | null = null;
  try {
    report = JSON.parse(said.out) as AdapterReport | null;
  } catch {
    return { adapter: null, why: `Dawn failed to start${said.failed ? "" : " (no answer)"}` };
  }
  if (!report) return { adapter: null, why: "no GPU adapter found (Dawn needs a Vulkan driver here: libvulkan1 and the GPU's ICD)" };
  return { adapter: summarize(report) };
}

/**
 * Whether this machine has a GPU device a hardware adapter could use. Linux: a DRM render node
 * (Mesa's AMD and Intel drivers), NVIDIA's device files, or WSL's /dev/dxg; elsewhere (Metal,
 * Direct3D) assume so and let the probe answer.
 */
export function gpuDevicePresent(): boolean {
  if (process.platform !== "linux") return true;
  if (existsSync("/dev/nvidia0") || existsSync("/dev/dxg")) return true;
  try {
    return readdirSync("/dev/dri").some((name) => name.startsWith("renderD"));
  } catch {
    return false;
  }
}
