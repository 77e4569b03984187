import { backend, type DeviceArray, type DeviceMemory, deviceMemory, type KernelArray, type KernelInts } from "../kernels/index.js";
import { heap } from "./memory.js";

/**
 * A Tensor is a shape plus a slice of the shared WebAssembly heap (see memory.ts), so a wasm kernel
 * can work on it in place; or, made while a device backend is in use (webgpu), an array in that
 * device's memory (`device`), which kernels take as they take a heap view (`storage`) and which the
 * CPU reads only asynchronously (`await t.read()`): `data` then throws. Autograd is micrograd's idea applied to tensors: every op output
 * remembers its parents and a closure that pushes its gradient to theirs; `backward()` walks the
 * graph in reverse topological order.
 */
type DType = "f32" | "i32";

/** `data` of a tensor in GPU memory: the CPU can read it only asynchronously */
export class GpuReadError extends Error {
  constructor() {
    super(
      "this tensor is in GPU memory (the webgpu backend): read its values with `await t.read()`, or use the async forms (generateAsync, ...)",
    );
    this.name = "GpuReadError";
  }
}

let gradEnabled = true;
let scopeStack: Tensor[][] = [];

export class Tensor {
  readonly shape: readonly number[];
  readonly size: number;
  readonly dtype: DType;
  /** byte offset in the heap (-1 for a tensor in device memory) */
  readonly ptr: number;
  /** the tensor's array in a device's memory (a GPU's), or null: it lives in the heap */
  readonly device: DeviceArray | null = null;
  /** the memory `device` belongs to */
  private readonly memory: DeviceMemory | null = null;
  /** an int tensor in device memory keeps the values it was made from (kernels never write ints) */
  private hostInts: Int32Array | null = null;
  /** on a device: the gradient backward() was seeded with, when this is the tensor it started from */
  seed: number | null = null;
  requiresGrad: boolean;
  /** the gradient (read through `grad`, which first writes the zeros a zeroGrad() left pending) */
  private gradValue: Tensor | null = null;
  /** zeroGrad() made the gradient zero without writing it yet: see `grad` and freshGrad() */
  private gradZeroPending = false;
  /** set by ops: the inputs this tensor was computed from and how to push gradients back to them */
  parents: readonly Tensor[] = [];
  backwardFn: (() => void) | null = null;
  /** keep this op output's gradient after backward (PyTorch's retain_grad), for inspection */
  private keepsGrad = false;
  private disposed = false;
  /** false for a view of storage owned elsewhere (see Tensor.view): dispose does not free it */
  private owned = true;
  private f32Cache: Float32Array | null = null;
  private i32Cache: Int32Array | null = null;
  /** a device tensor's values read back for `withHostValues`, readable through `data` while it runs */
  private hostValues: Float32Array | null = null;

  constructor(shape: readonly number[], dtype: DType = "f32", requiresGrad = false, tracked = true, at?: number) {
    for (const d of shape) {
      if (!Number.isInteger(d) || d < 0) throw new Error(`invalid tensor shape [${shape.join(", ")}]`);
    }
    this.shape = [...shape];
    this.size = shape.reduce((a, b) => a * b, 1);
    this.dtype = dtype;
    this.requiresGrad = requiresGrad;
    const memory = at === undefined ? deviceMemory() : null;
    if (memory) {
      this.memory = memory;
      this.device = memory.alloc(Math.max(1, this.size));
      this.ptr = -1;
    } else if (at === undefined) {
      this.ptr = heap().alloc(this.size * 4);
    } else {
      this.ptr = at;
      this.owned = false;
    }
    const scope = scopeStack[scopeStack.length - 1];
    if (tracked && scope) scope.push(this);
  }

  /**
   * A tensor over existing heap storage at byte offset `ptr` (e.g. another thread's parameters or
   * batch): nothing is allocated or copied, and dispose() leaves the storage alone.
   */
  static view(ptr: number, shape: readonly number[], dtype: DType = "f32", requiresGrad = false): Tensor {
    return new Tensor(shape, dtype, requiresGrad, true, ptr);
  }

  /**
   * Run `fn`, synchronous code that only READS tensors (saving weights or a checkpoint), with the
   * current values of `tensors` readable through `data`: those in a device's memory are read back
   * first, all at once (one wait), and readable until `fn` returns; what `fn` writes into them is
   * lost. On the CPU backends it just runs `fn`.
   */
  static async withHostValues<R>(tensors: Iterable<Tensor>, fn: () => R): Promise<R> {
    const onDevice = [...tensors].filter((t) => t.device);
    const values = await Promise.all(onDevice.map((t) => t.read()));
    onDevice.forEach((t, i) => {
      t.hostValues = values[i] as Float32Array;
    });
    try {
      return fn();
    } finally {
      for (const t of onDevice) t.hostValues = null;
    }
  }

  static zeros(shape: readonly number[], requiresGrad = false): Tensor {
    const t = new Tensor(shape, "f32", requiresGrad);
    backend().zero(t.storage, t.size);
    return t;
  }

  static fromArray(values: ArrayLike<number>, shape: readonly number[], requiresGrad = false): Tensor {
    const t = new Tensor(shape, "f32", requiresGrad);
    if (values.length !== t.size) throw new Error(`fromArray: ${values.length} values for shape [${shape.join(", ")}]`);
    if (t.device) t.write(Float32Array.from(values));
    else t.data.set(values);
    return t;
  }

  static ints(values: ArrayLike<number>, shape: readonly number[]): Tensor {
    const t = new Tensor(shape, "i32");
    if (values.length !== t.size) throw new Error(`ints: ${values.length} values for shape [${shape.join(", ")}]`);
    if (t.device) {
      t.hostInts = Int32Array.from(values);
      t.write(t.hostInts);
    } else t.ints.set(values);
    return t;
  }

  /** Float32 view of this tensor's storage (valid across memory growth: the memory is shared). */
  get data(): Float32Array {
    if (this.dtype !== "f32") throw new Error("data: tensor is not f32");
    if (this.disposed) throw new Error("use of a disposed tensor");
    if (!this.f32Cache) {
      if (this.device) {
        if (this.hostValues) return this.hostValues;
        throw new GpuReadError();
      }
      this.f32Cache = new Float32Array(heap().memory.buffer, this.ptr, this.size);
    }
    return this.f32Cache;
  }

  /** The values of an int tensor (on a device: those it was made from; kernels never write ints). */
  get ints(): Int32Array {
    if (this.dtype !== "i32") throw new Error("ints: tensor is not i32");
    if (this.disposed) throw new Error("use of a disposed tensor");
    if (!this.i32Cache) {
      if (this.device) {
        if (!this.hostInts) throw new Error("this int tensor is in GPU memory without host values: read it with `await t.readInts()`");
        this.i32Cache = this.hostInts;
      } else this.i32Cache = new Int32Array(heap().memory.buffer, this.ptr, this.size);
    }
    return this.i32Cache;
  }

  /** What a kernel takes for this f32 tensor: its heap view, or its array in device memory. */
  get storage(): KernelArray {
    return this.device ?? this.data;
  }

  /** What a kernel takes for this i32 tensor. */
  get intStorage(): KernelInts {
    return this.device ?? this.ints;
  }

  /** Elements [offset, offset + length) as a kernel argument, in place (a heap subarray or a device view). */
  slice(offset: number, length: number): KernelArray {
    if (this.device) return (this.memory as DeviceMemory).view(this.device, offset, length);
    return this.data.subarray(offset, offset + length);
  }

  /** Copy `values` into this tensor (after every kernel already called on it). */
  write(values: Float32Array | Int32Array): void {
    if (this.device) (this.memory as DeviceMemory).write(this.device, values);
    else if (this.dtype === "f32") this.data.set(values);
    else this.ints.set(values);
  }

  /**
   * A copy of the values (elements [offset, offset + length), all by default), wherever the tensor
   * lives: the asynchronous read every backend offers (on a GPU it waits for the kernels called so
   * far; on the CPU it is a copy of `data`).
   */
  async read(offset = 0, length = this.size - offset): Promise<Float32Array> {
    if (this.dtype !== "f32") throw new Error("read: tensor is not f32");
    if (this.disposed) throw new Error("use of a disposed tensor");
    if (offset < 0 || length < 0 || offset + length > this.size)
      throw new Error(`read [${offset}, ${offset + length}) of ${this.size} elements`);
    if (this.device) {
      if (length === 0) return new Float32Array(0);
      // the copy is recorded now, before any later kernel or release of this storage
      const memory = this.memory as DeviceMemory;
      return new Float32Array(await memory.read(memory.view(this.device, offset, length)));
    }
    return this.data.slice(offset, offset + length);
  }

  async readInts(): Promise<Int32Array> {
    if (this.dtype !== "i32") throw new Error("readInts: tensor is not i32");
    if (this.disposed) throw new Error("use of a disposed tensor");
    if (this.device) return new Int32Array(await (this.memory as DeviceMemory).read(this.device)).subarray(0, this.size);
    return this.ints.slice();
  }

  /**
   * The gradient, or null before any. zeroGrad() zeroes it lazily: the zeros are written here, on
   * the first read, unless an op overwrote the whole gradient first (freshGrad).
   */
  get grad(): Tensor | null {
    if (this.gradZeroPending) {
      this.gradZeroPending = false;
      backend().zero((this.gradValue as Tensor).storage, this.size);
    }
    return this.gradValue;
  }

  set grad(g: Tensor | null) {
    this.gradValue = g;
    this.gradZeroPending = false;
  }

  /** The gradient tensor, created zeroed on first use. It lives as long as this tensor. */
  ensureGrad(): Tensor {
    if (!this.grad) {
      this.grad = new Tensor(this.shape, "f32", false, false);
      backend().zero(this.grad.storage, this.size);
    }
    return this.grad;
  }

  /**
   * For an op about to WRITE every element of this tensor's gradient (=, not +=): a gradient buffer
   * to write, not zeroed (a new one, or the one zeroGrad() left pending), or null when the gradient
   * holds values (then add into ensureGrad()). Most activations have one consumer, and a weight's
   * first gradient of a step overwrites the last step's, so their backward skips zeroing a buffer it
   * overwrites.
   */
  freshGrad(): Tensor | null {
    if (this.gradZeroPending) {
      this.gradZeroPending = false;
      return this.gradValue;
    }
    if (this.gradValue) return null;
    this.grad = new Tensor(this.shape, "f32", false, false);
    return this.grad;
  }

  /** Keep `.grad` of this intermediate tensor after backward (by default it is freed once spent). */
  retainGrad(): void {
    this.keepsGrad = true;
  }

  /** Make the gradient zero (lazily: see `grad`). */
  zeroGrad(): void {
    if (this.gradValue) this.gradZeroPending = true;
  }

  item(): number {
    if (this.size !== 1) throw new Error(`item: tensor has ${this.size} elements`);
    return this.data[0] as number;
  }

  /** Return the storage to the heap. Idempotent. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    if (this.device) (this.memory as DeviceMemory).release(this.device);
    else if (this.owned) heap().release(this.ptr, this.size * 4);
    this.gradValue?.dispose();
    this.grad = null;
    this.parents = [];
    this.backwardFn = null;
    this.f32Cache = null;
    this.i32Cache = null;
    this.hostInts = null;
  }

  get isDisposed(): boolean {
    return this.disposed;
  }

  /**
   * Reverse-mode autodiff from this scalar (or with an explicit upstream gradient): gradients are
   * ADDED into every `.grad` on the way, so a tensor used twice collects both contributions.
   */
  backward(upstream?: Float32Array): void {
    const order: Tensor[] = [];
    const seen = new Set<Tensor>();
    // iterative DFS: deep models would overflow a recursive one
    const stack: [Tensor, number][] = [[this, 0]];
    seen.add(this);
    while (stack.length > 0) {
      const top = stack[stack.length - 1] as [Tensor, number];
      const [node, i] = top;
      if (i < node.parents.length) {
        top[1] = i + 1;
        const p = node.parents[i] as Tensor;
        if (!seen.has(p) && p.requiresGrad) {
          seen.add(p);
          stack.push([p, 0]);
        }
      } else {
        stack.pop();
        order.push(node);
      }
    }
    const g = this.ensureGrad();
    if (this.device) {
      // on a device the seed is written, not added (a root's gradient is new: ensureGrad zeroed it),
      // and remembered for the ops that need it on the CPU (crossEntropy's scale)
      if (!upstream && this.size !== 1) throw new Error("backward() without a gradient needs a scalar");
      const seed = upstream ?? Float32Array.of(1);
      g.write(seed);
      this.seed = this.size === 1 ? (seed[0] as number) : null;
    } else if (upstream) {
      g.data.set(upstream);
    } else {
      if (this.size !== 1) throw new Error("backward() without a gradient needs a scalar");
      g.data[0] = (g.data[0] as number) + 1;
    }
    for (let i = order.length - 1; i >= 0; i--) {
      const node = order[i] as Tensor;
      if (!node.backwardFn) continue;
      node.backwardFn();
      // An op output's gradient is spent once pushed to its inputs: free it now rather than at the
      // end of the step, so peak memory holds activations plus only the gradients still in flight.
      if (node !== this && !node.keepsGrad) {
        node.grad?.dispose();
        node.grad = null;
      }
    }
  }
}

/** True while ops should record the graph. */
export function isGradEnabled(): boolean {
  return gradEnabled;
}

/** Run `fn` without recording the autograd graph (inference). */
export function noGrad<R>(fn: () => R): R {
  const prev = gradEnabled;
  gradEnabled = false;
  try {
    return fn();
  } finally {
    gradEnabled = prev;
  }
}

/**
 * Run `fn`, then free every tensor created inside it except `keep` and what it returns. The
 * training loop wraps each step in a scope, so activations go back to the heap's free lists and the
 * next step reuses the very same buffers.
 */
export function scope<R>(fn: () => R, keep: readonly Tensor[] = []): R {
  const created: Tensor[] = [];
  scopeStack.push(created);
  let result: R;
  try {
    result = fn();
  } catch (err) {
    for (const t of created) t.dispose();
    throw err;
  } finally {
    scopeStack.pop();
  }
  const spared = new Set<Tensor>(keep);
  if (result instanceof Tensor) spared.add(result);
  const outer = scopeStack[scopeStack.length - 1];
  for (const t of created) {
    if (spared.has(t)) outer?.push(t);
    else t.dispose();
  }
  return result;
}

/**
 * Run `fn` outside every open scope: the tensors it creates live until disposed (state a step makes
 * on first use and keeps, such as the gradient buffers of src/train/parallel.ts).
 */
export function unscoped<R>(fn: () => R): R {
  const open = scopeStack;
  scopeStack = [];
  try {
    return fn();
  } finally {
    scopeStack = open;
  }
}
