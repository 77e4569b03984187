/**
 * All tensor storage lives in one WebAssembly.Memory, shared from the start, so that the
 * WebAssembly kernels (and their worker threads) read and write tensors in place: no copy per op.
 * See docs/memory.md for why.
 *
 * The allocator is deliberately simple: a bump pointer plus free lists of size classes (four per
 * power of two, so at most 25% of a block is slack). The bump pointer lives in the memory itself and
 * moves with Atomics.add, so several threads can each run a heap on the same memory (data-parallel
 * training, src/train/parallel.ts): each thread keeps its own free lists and only ever frees its own
 * blocks. A training step allocates the same sizes every
 * step, so after the first step every request is served from a free list and memory stops growing;
 * and workloads whose sizes drift (generation without a cache, whose window grows by one token per
 * step) still reuse freed blocks of neighbouring sizes.
 */

const PAGE = 65536;
/** 65,536 pages = 4 GiB, the wasm32 limit. */
const MAX_PAGES = 65536;
/** Alignment of every allocation: a cache line, which is also enough for SIMD loads. */
const ALIGN = 64;

function aligned(bytes: number): number {
  return Math.max(ALIGN, Math.ceil(bytes / ALIGN) * ALIGN);
}

/** The block size serving a request: 64-byte aligned, rounded up to a size class 2^k·{1, 1.25, 1.5, 1.75}. */
function blockSize(bytes: number): number {
  const a = aligned(bytes);
  if (a <= 4 * ALIGN) return a;
  const step = 2 ** (Math.floor(Math.log2(a)) - 2);
  return Math.ceil(a / step) * step;
}

/**
 * The first bytes belong to the WebAssembly kernels (their stack and static data);
 * tensors start above them.
 */
const RESERVED_BYTES = 1 << 20;

/** Where the shared bump pointer lives (in ALIGN units, so 4 GiB fits an i32): the reserved region's last line. */
const TOP_CELL = RESERVED_BYTES - ALIGN;

/** WebAssembly.Memory's own `buffer` getter (undefined in a runtime without one: then no tracking) */
const bufferGetter = Object.getOwnPropertyDescriptor(WebAssembly.Memory.prototype, "buffer")?.get;
/** every buffer object each tracked memory has handed out in this thread */
const handedOut = new WeakMap<WebAssembly.Memory, WeakSet<ArrayBufferLike>>();

/**
 * Record every buffer object `memory.buffer` hands out in this thread from now on. A shared memory
 * hands out a new SharedArrayBuffer object after each grow (the older ones stay valid views of its
 * start), so a tensor made before a grow views an older object than memory.buffer is now; the record
 * lets isBufferOf tell such a view from a foreign buffer by identity alone.
 */
function trackBuffers(memory: WebAssembly.Memory): void {
  const get = bufferGetter;
  if (!get || handedOut.has(memory)) return;
  const seen = new WeakSet<ArrayBufferLike>();
  let last: ArrayBufferLike | null = null;
  Object.defineProperty(memory, "buffer", {
    configurable: true,
    get(this: WebAssembly.Memory): ArrayBufferLike {
      const b = get.call(this) as ArrayBufferLike;
      if (b !== last) {
        last = b;
        seen.add(b);
      }
      return b;
    },
  });
  handedOut.set(memory, seen);
}

/**
 * Whether `buffer` is (any grown-past version of) `memory`'s buffer, as handed out in this thread: a
 * lookup, with no probe written into the shared memory (which could race another thread using that
 * byte). A heap's memory is tracked from the heap's creation on.
 */
export function isBufferOf(memory: WebAssembly.Memory, buffer: ArrayBufferLike): boolean {
  const seen = handedOut.get(memory);
  return seen ? seen.has(buffer) : buffer === memory.buffer;
}

export class WasmHeap {
  readonly memory: WebAssembly.Memory;
  /** the shared bump pointer, in ALIGN units */
  private readonly top: Int32Array;
  private free = new Map<number, number[]>();
  private liveBytes = 0;
  private peakLiveBytes = 0;
  private f32: Float32Array;
  private i32: Int32Array;

  /** A heap on a new memory, or (memory given) one more heap on the memory another heap created. */
  constructor(initialBytes = 16 << 20, memory?: WebAssembly.Memory) {
    if (memory) {
      trackBuffers(memory);
      this.memory = memory;
      this.top = new Int32Array(memory.buffer, TOP_CELL, 1);
      if (Atomics.load(this.top, 0) === 0) throw new Error("WasmHeap: this memory has no heap to share");
    } else {
      const initial = Math.max(1, Math.ceil(initialBytes / PAGE));
      this.memory = new WebAssembly.Memory({ initial, maximum: MAX_PAGES, shared: true });
      trackBuffers(this.memory);
      this.top = new Int32Array(this.memory.buffer, TOP_CELL, 1);
      Atomics.store(this.top, 0, RESERVED_BYTES / ALIGN);
    }
    this.f32 = new Float32Array(this.memory.buffer);
    this.i32 = new Int32Array(this.memory.buffer);
  }

  /** Returns the byte offset of `bytes` fresh (not zeroed) bytes. */
  alloc(bytes: number): number {
    const size = blockSize(bytes);
    this.liveBytes += aligned(bytes);
    if (this.liveBytes > this.peakLiveBytes) this.peakLiveBytes = this.liveBytes;
    const list = this.free.get(size);
    if (list && list.length > 0) return list.pop() as number;
    const ptr = Atomics.add(this.top, 0, size / ALIGN) * ALIGN;
    const end = ptr + size;
    // another thread may grow the memory at the same time: grow until it is big enough
    while (end > this.memory.buffer.byteLength) {
      const needPages = Math.ceil((end - this.memory.buffer.byteLength) / PAGE);
      // grow geometrically so a model being built does not grow page by page
      const current = this.memory.buffer.byteLength / PAGE;
      const grow = Math.min(MAX_PAGES - current, Math.max(needPages, Math.ceil(current / 2)));
      if (grow < needPages) {
        throw new RangeError(
          `out of tensor memory: need ${(end / 2 ** 30).toFixed(2)} GiB, WebAssembly memory is limited to 4 GiB; use a smaller model or batch`,
        );
      }
      this.memory.grow(grow);
    }
    return ptr;
  }

  release(ptr: number, bytes: number): void {
    const size = blockSize(bytes);
    this.liveBytes -= aligned(bytes);
    let list = this.free.get(size);
    if (!list) {
      list = [];
      this.free.set(size, list);
    }
    list.push(ptr);
  }

  /** Views over the whole memory, re-derived when the memory has grown. */
  f32View(): Float32Array {
    if (this.f32.buffer.byteLength !== this.memory.buffer.byteLength) this.refresh();
    return this.f32;
  }

  i32View(): Int32Array {
    if (this.i32.buffer.byteLength !== this.memory.buffer.byteLength) this.refresh();
    return this.i32;
  }

  private refresh(): void {
    this.f32 = new Float32Array(this.memory.buffer);
    this.i32 = new Int32Array(this.memory.buffer);
  }

  /** Start measuring the peak of live tensor bytes afresh (e.g. around one training step). */
  resetPeak(): void {
    this.peakLiveBytes = this.liveBytes;
  }

  /** liveBytes: bytes of live tensors (64-byte aligned, without size-class slack); reservedBytes: the memory's size. */
  stats(): { reservedBytes: number; liveBytes: number; peakLiveBytes: number } {
    return { reservedBytes: this.memory.buffer.byteLength, liveBytes: this.liveBytes, peakLiveBytes: this.peakLiveBytes };
  }
}

let defaultHeap: WasmHeap | null = null;

/** The process-wide heap every tensor is allocated from. */
export function heap(): WasmHeap {
  if (!defaultHeap) defaultHeap = new WasmHeap();
  return defaultHeap;
}

/**
 * Make this thread's heap a second heap on `memory` (another thread's heap memory): for a worker
 * thread that runs ops on the same tensors. Must be called before this thread allocates anything.
 */
export function attachHeap(memory: WebAssembly.Memory): WasmHeap {
  if (defaultHeap) {
    if (defaultHeap.memory === memory) return defaultHeap;
    throw new Error("attachHeap: this thread already has its own heap");
  }
  defaultHeap = new WasmHeap(0, memory);
  return defaultHeap;
}
