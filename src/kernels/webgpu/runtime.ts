/// <reference types="@webgpu/types" />
/**
 * What every WebGPU kernel needs: storage buffers (GpuArray), compiled pipelines, a queue of
 * dispatches recorded into one compute pass, and reads back to the CPU.
 *
 * Ordering. Dispatches are recorded into one open command encoder and submitted together (at a
 * read, a write, or every MAX_PENDING dispatches); WebGPU runs them in order and makes each
 * dispatch's writes visible to the next. `queue.writeBuffer` would run BEFORE the not yet submitted
 * dispatches, so `write` submits what is recorded first. A buffer released to the pool and handed
 * out again is safe for the same reason: its next user's dispatches come after its last user's.
 *
 * Arguments. A kernel binds whole buffers and takes element offsets in its uniform parameters, so a
 * GpuArray can be a view into a bigger buffer (a row of the KV cache). WebGPU refuses one buffer
 * bound both writable and read-only in a dispatch (an in-place call such as gelu(h, h)): `run`
 * copies such a read-only argument to a temporary buffer first.
 */

import { MinigptError } from "../../errors.js";

/** Storage on the GPU: `length` elements (f32 or i32, 4 bytes each) from element `offset` of `buffer`. */
export interface GpuArray {
  readonly buffer: GPUBuffer;
  readonly offset: number;
  readonly length: number;
}

/** A kernel argument: a buffer read or written, or a scalar parameter (u32, i32 or f32, in declaration order). */
export type Param = { u32: number } | { i32: number } | { f32: number };

const MAX_PENDING = 512;

function mib(bytes: number): string {
  return `${(bytes / 2 ** 20).toFixed(bytes < 2 ** 20 ? 2 : 0)} MiB`;
}
const ALIGN = 256;

/** buffer sizes in 4 size classes per power of two, as the wasm heap's (at most 25% slack) */
function sizeClass(bytes: number): number {
  const a = Math.max(ALIGN, Math.ceil(bytes / ALIGN) * ALIGN);
  if (a <= 4 * ALIGN) return a;
  const step = 2 ** (Math.floor(Math.log2(a)) - 2);
  return Math.ceil(a / step) * step;
}

export class GpuRuntime {
  readonly device: GPUDevice;
  /** the device's GPU entry, kept reachable (see device.ts GpuContext.instance) */
  readonly instance: unknown;
  private readonly pipelines = new Map<string, GPUComputePipeline>();
  private readonly free = new Map<number, GPUBuffer[]>();
  private encoder: GPUCommandEncoder | null = null;
  private pass: GPUComputePassEncoder | null = null;
  private pending = 0;
  /** uniform and temporary buffers of the recorded dispatches: destroyed once submitted */
  private transient: GPUBuffer[] = [];
  private liveBytes = 0;

  constructor(device: GPUDevice, instance: unknown = null) {
    this.device = device;
    this.instance = instance;
    // a shader that does not compile or a bad binding is reported here, not thrown where it happened
    device.addEventListener("uncapturederror", (e) => {
      this.error ??= (e as GPUUncapturedErrorEvent).error.message;
    });
  }

  /** the first validation error since the last read, thrown by read (WebGPU reports them late) */
  private error: string | undefined;

  private throwIfFailed(): void {
    const message = this.error;
    if (message !== undefined) {
      this.error = undefined;
      throw new Error(`webgpu: ${message}`);
    }
  }

  // ---- storage -----------------------------------------------------------------------------------

  /**
   * n fresh (not zeroed) 4-byte elements. An array larger than the device allows one binding
   * (the adapter's maxStorageBufferBindingSize, which device.ts asks for) is a one-line error:
   * the model (or a batch's activations) does not fit this adapter.
   */
  alloc(n: number): GpuArray {
    const max = Math.min(this.device.limits.maxStorageBufferBindingSize, this.device.limits.maxBufferSize);
    if (n * 4 > max)
      throw new MinigptError(
        `webgpu: a tensor of ${mib(n * 4)} does not fit this adapter, whose largest buffer is ${mib(max)}: use a smaller model or batch, or the wasm backend`,
      );
    const size = sizeClass(n * 4);
    this.liveBytes += size;
    const list = this.free.get(size);
    const buffer =
      list?.pop() ?? this.device.createBuffer({ size, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
    return { buffer, offset: 0, length: n };
  }

  /** Give an alloc'd array's buffer back to the pool (dispatches already recorded still see its contents). */
  release(a: GpuArray): void {
    const size = a.buffer.size;
    this.liveBytes -= size;
    let list = this.free.get(size);
    if (!list) {
      list = [];
      this.free.set(size, list);
    }
    list.push(a.buffer);
  }

  /** A view of `length` elements from element `offset` of `a` */
  view(a: GpuArray, offset: number, length: number): GpuArray {
    if (offset < 0 || offset + length > a.length) throw new Error(`webgpu view [${offset}, ${offset + length}) out of ${a.length}`);
    return { buffer: a.buffer, offset: a.offset + offset, length };
  }

  stats(): { liveBytes: number } {
    return { liveBytes: this.liveBytes };
  }

  /** Copy `data` into `a` (after every dispatch recorded so far). */
  write(a: GpuArray, data: Float32Array | Int32Array): void {
    if (data.length > a.length) throw new Error(`webgpu write: ${data.length} values into ${a.length}`);
    this.submit();
    // Dawn takes no view of shared memory (the wasm heap is one): such data is copied out first
    const plain = data.buffer instanceof ArrayBuffer ? data : data.slice();
    this.device.queue.writeBuffer(a.buffer, a.offset * 4, plain.buffer, plain.byteOffset, plain.byteLength);
  }

  /** The values of `a` once every dispatch recorded so far has run. */
  async read(a: GpuArray): Promise<ArrayBuffer> {
    const bytes = a.length * 4;
    if (bytes === 0) return new ArrayBuffer(0);
    const staging = this.device.createBuffer({ size: Math.ceil(bytes / 4) * 4, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    this.endPass();
    (this.encoder ?? this.openEncoder()).copyBufferToBuffer(a.buffer, a.offset * 4, staging, 0, bytes);
    this.submit();
    await staging.mapAsync(GPUMapMode.READ);
    const out = staging.getMappedRange().slice(0);
    staging.unmap();
    staging.destroy();
    this.throwIfFailed();
    return out;
  }

  async readF32(a: GpuArray): Promise<Float32Array> {
    return new Float32Array(await this.read(a));
  }

  async readI32(a: GpuArray): Promise<Int32Array> {
    return new Int32Array(await this.read(a));
  }

  /** Submit what is recorded and wait until the GPU has run it (and report a validation error). */
  async finish(): Promise<void> {
    this.submit();
    await this.device.queue.onSubmittedWorkDone();
    this.throwIfFailed();
  }

  // ---- dispatch ----------------------------------------------------------------------------------

  /** The pipeline for WGSL `code` (entry point `main`), compiled once per distinct source. */
  pipeline(code: string): GPUComputePipeline {
    let p = this.pipelines.get(code);
    if (!p) {
      const module = this.device.createShaderModule({ code });
      p = this.device.createComputePipeline({ layout: "auto", compute: { module, entryPoint: "main" } });
      this.pipelines.set(code, p);
    }
    return p;
  }

  /**
   * Record one dispatch of `code` over `groups` workgroups. Bindings: 0 the uniform parameters, then
   * `reads` (var<storage, read>) and `writes` (var<storage, read_write>) in that order, as wgsl.ts's
   * declare() writes them; the parameters are `scalars` followed by each array's element offset, in
   * the same order.
   */
  run(code: string, groups: [number, number?, number?], scalars: Param[], reads: GpuArray[], writes: GpuArray[]): void {
    const [x, y = 1, z = 1] = groups;
    if (x === 0 || y === 0 || z === 0) return;
    const pipeline = this.pipeline(code);
    const params = [...scalars, ...reads.map((r) => ({ u32: r.offset })), ...writes.map((w) => ({ u32: w.offset }))];
    const entries: GPUBindGroupEntry[] = [{ binding: 0, resource: { buffer: this.uniforms(params) } }];
    let binding = 1;
    const written = new Set(writes.map((w) => w.buffer));
    for (const r of reads) {
      const buffer = written.has(r.buffer) ? this.temporaryCopy(r) : r.buffer;
      entries.push({ binding: binding++, resource: { buffer } });
    }
    for (const w of writes) entries.push({ binding: binding++, resource: { buffer: w.buffer } });
    const group = this.device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries });
    const pass = this.openPass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, group);
    pass.dispatchWorkgroups(x, y, z);
    if (++this.pending >= MAX_PENDING) this.submit();
  }

  /** Submit the recorded dispatches. */
  submit(): void {
    this.endPass();
    if (!this.encoder) return;
    this.device.queue.submit([this.encoder.finish()]);
    this.encoder = null;
    this.pending = 0;
    for (const b of this.transient) b.destroy();
    this.transient = [];
  }

  private uniforms(params: Param[]): GPUBuffer {
    const size = Math.max(16, Math.ceil((params.length * 4) / 16) * 16);
    const buffer = this.device.createBuffer({ size, usage: GPUBufferUsage.UNIFORM, mappedAtCreation: true });
    const range = buffer.getMappedRange();
    const u = new Uint32Array(range);
    const i = new Int32Array(range);
    const f = new Float32Array(range);
    params.forEach((p, k) => {
      if ("u32" in p) u[k] = p.u32;
      else if ("i32" in p) i[k] = p.i32;
      else f[k] = p.f32;
    });
    buffer.unmap();
    this.transient.push(buffer);
    return buffer;
  }

  /** a copy of the whole buffer under `a` (offsets stay valid), made in order with the dispatches */
  private temporaryCopy(a: GpuArray): GPUBuffer {
    const size = a.buffer.size;
    const copy = this.device.createBuffer({ size, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
    this.endPass();
    (this.encoder ?? this.openEncoder()).copyBufferToBuffer(a.buffer, 0, copy, 0, size);
    this.transient.push(copy);
    return copy;
  }

  private openEncoder(): GPUCommandEncoder {
    this.encoder = this.device.createCommandEncoder();
    return this.encoder;
  }

  private openPass(): GPUComputePassEncoder {
    if (!this.pass) this.pass = (this.encoder ?? this.openEncoder()).beginComputePass();
    return this.pass;
  }

  private endPass(): void {
    if (this.pass) {
      this.pass.end();
      this.pass = null;
    }
  }
}

/** Workgroups for `n` items of `perGroup` each, as [x, y] within the 65,535-per-dimension limit (a shader's flat index: wgsl.ts GROUP_1D). */
export function groups1d(n: number, perGroup: number): [number, number] {
  const g = Math.ceil(n / perGroup);
  if (g <= 65535) return [g, 1];
  const y = Math.ceil(g / 65535);
  return [Math.ceil(g / y), y];
}
