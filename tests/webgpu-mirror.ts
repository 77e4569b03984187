// A Backend over CPU Float32Arrays made of the webgpu backend, so that the kernel cases written for
// the CPU backends (tests/kernel-cases.ts) run unchanged on the GPU: each array argument is uploaded
// on first use (later calls reuse its GPU copy, so results chain on the device as they would in a
// model), and `flush()` reads every array back into its CPU twin. A case's checks must wait for the
// flush: collect them and compare after it.
import type { Backend } from "../src/kernels/backend.js";
import type { GpuArray, WebGpuBackend } from "../src/kernels/webgpu/index.js";

type Host = Float32Array | Int32Array;

export interface Mirror extends Backend {
  flush(): Promise<void>;
}

export function mirrorBackend(gpu: WebGpuBackend): Mirror {
  const rt = gpu.runtime;
  const copies = new Map<Host, GpuArray>();
  const onGpu = (a: Host): GpuArray => {
    let g = copies.get(a);
    if (!g) {
      g = rt.alloc(Math.max(1, a.length));
      rt.write(g, a);
      copies.set(a, g);
    }
    return { buffer: g.buffer, offset: 0, length: a.length };
  };
  const convert = (v: unknown): unknown => {
    if (v instanceof Float32Array || v instanceof Int32Array) return onGpu(v);
    // attentionRows' rows: each row's cache arrays
    if (Array.isArray(v))
      return v.map((row: Record<string, unknown>) => ({ ...row, keys: convert(row.keys), values: convert(row.values) }));
    return v;
  };
  const mirror = {
    name: "webgpu",
    async flush(): Promise<void> {
      for (const [host, g] of copies) {
        if (host.length === 0) continue;
        const back = await rt.read({ buffer: g.buffer, offset: 0, length: host.length });
        host.set(host instanceof Int32Array ? new Int32Array(back) : new Float32Array(back));
        rt.release(g);
      }
      copies.clear();
    },
  } as Record<string, unknown>;
  for (const key of Object.keys(gpu)) {
    const f = (gpu as unknown as Record<string, unknown>)[key];
    if (typeof f !== "function" || key in mirror) continue;
    mirror[key] = (...args: unknown[]) => (f as (...a: unknown[]) => unknown)(...args.map(convert));
  }
  return mirror as unknown as Mirror;
}
