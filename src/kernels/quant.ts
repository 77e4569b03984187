/**
 * Products with int8 / int4 weights (src/io/quantize.ts's format, repacked by quant-packed.ts) on
 * whatever backend is selected: the wasm kernels (assembly/quant-int.as) when the backend has them
 * and every array lies in the tensor heap, else the reference loops (ref/quant-int.ts). Not a
 * Backend method: the WebGPU backend has no twin yet, and these calls are self-contained.
 *
 *   quantRows      out (M,N) = x (M,K) · W [+ bias]   W packed, from either layout of the file: the
 *                  quantized model's kernel (decode, prefill, eval), with each row of x quantized to
 *                  int8 (ref/quant-int.ts)
 *   dequantize     W's float values q·s (ref/dequant.ts, assembly/dequant.as): a training step's
 *                  weights (QLoRA) and the embedding's rows; one thread (a GPT-2 matrix takes ~1 ms)
 *
 * With several threads a product is shared with a pool helper that stays looking for work between
 * calls (assembly/quant-share.as: chunks of outputs, multiples of 16, taken by whichever thread comes
 * first; the caller never waits for the helper to wake); where no helper can be left running (a
 * browser page's main thread) a call big enough to be worth a wake-up is split (packedRanges). Each
 * output's bits are the same on any thread count either way.
 */
import { heap, isBufferOf } from "../tensor/memory.js";
import { Tensor } from "../tensor/tensor.js";
import type { FloatArray } from "./backend.js";
import { backend } from "./index.js";
import { PANEL, type PackedShape } from "./quant-packed.js";
import { dequantPacked } from "./ref/dequant.js";
import { qmatvecPacked, quantizeActivations } from "./ref/quant-int.js";
import type { KernelCalls } from "./wasm/calls.js";

/** the wasm calls of the selected backend, or null (ref, or a backend without these kernels) */
function wasmCalls(): KernelCalls | null {
  const b = backend() as unknown as Partial<KernelCalls>;
  return b.x && typeof b.x.qmatvecPacked === "function" && b.parallel && b.sched ? (b as KernelCalls) : null;
}

function inHeap(arrays: readonly (ArrayBufferView | null)[]): boolean {
  const memory = heap().memory;
  return arrays.every((a) => a === null || isBufferOf(memory, a.buffer));
}

/**
 * [j0, j1) ranges of a packed product of M rows over the threads, cut at multiples of 16: split as
 * the float one-token work is (Schedule.rowParts / shares), counting its bytes of weights and scales
 * as floats read (/4) once per row. A one-token call is split only when it reads as much as a float
 * one that is worth a helper's wake-up (~100-300 µs here): GPT-2's LM head, not its blocks' layers
 * (splitting those made 2-thread int4 decode slower than 1 thread's).
 */
function packedRanges(calls: KernelCalls, s: PackedShape, M: number): [number, number][] {
  const floats = (M * (s.bytes + 4 * s.scaleCount)) / 4;
  const parts = calls.sched.rowParts(floats, s.panels);
  if (parts <= 1) return [[0, s.N]];
  const bounds = calls.sched.shares(s.N, parts, floats, PANEL);
  const ranges: [number, number][] = [];
  for (let p = 0; p < parts; p++) if (bounds[p + 1]! > bounds[p]!) ranges.push([bounds[p]!, bounds[p + 1]!]);
  return ranges;
}

/**
 * A product on 2+ threads is cut into about this many chunks of outputs that the calling thread and a
 * helper take as they go (assembly/quant-share.as): enough that the helper's last chunk, which the
 * caller may wait for, is short (GPT-2's head: ~40 µs), few enough that taking one (an atomic
 * compare-exchange between the cores) costs nothing next to it.
 */
const SHARE_CHUNKS = 32;
/** the helper's empty looks for a product before it returns to the pool: ~1 ms here, longer than the gaps of a decode step */
const HELPER_IDLE_LOOKS = 1 << 19;
/** i32 indices of the control block's DONE and QUIT (quant-share.as) */
const CTRL_DONE = 2;
const CTRL_QUIT = 3;
/** i32 index of HELPED: the chunks the helper has taken (tests) */
const CTRL_HELPED = 4;

/**
 * Waiting longer than this for the helper's last chunk means it lost its core: to another process
 * when it happens again within LATE_AGAIN_MS (a lone gap is host noise: an idle 2-vCPU VM here shows
 * a few gaps > 1 ms a second). Then the products stay on one thread for CALM_MS (the helper told to
 * return), as a shared product would wait that long again and again (measured: 2 threads ~3x slower
 * than 1 on a busy machine).
 */
const LATE_MS = 0.25;
const LATE_AGAIN_MS = 100;
const CALM_MS = 200;

/** a backend's control block for shared products (in the heap for the kernels), and its calm rule */
interface ShareControl {
  i32: Int32Array;
  calmUntil: number;
  /** when the helper was last late (performance.now()) */
  lateAt: number;
}
const controls = new WeakMap<KernelCalls, ShareControl>();

/**
 * The control block through which this product is shared with a pool helper left looking for work
 * (posted again when it has returned), or null: one thread (no helper, calls on one thread now, or
 * calm after a late helper).
 */
function sharing(calls: KernelCalls): ShareControl | null {
  if (calls.sched.threads < 2) return null;
  let ctrl = controls.get(calls);
  if (!ctrl) {
    const bytes = calls.x.qmatvecSharedCtrlBytes();
    const t = new Tensor([bytes / 4], "i32", false, false);
    ctrl = { i32: new Int32Array(heap().memory.buffer, t.ptr, bytes / 4), calmUntil: 0, lateAt: Number.NEGATIVE_INFINITY };
    ctrl.i32.fill(0);
    controls.set(calls, ctrl);
  }
  if (ctrl.calmUntil > 0) {
    if (performance.now() < ctrl.calmUntil) return null;
    ctrl.calmUntil = 0;
  }
  const i32 = ctrl.i32;
  if (calls.detachedReturned()) Atomics.store(i32, CTRL_QUIT, 0);
  return calls.detach("qmatvecHelper", [i32.byteOffset, HELPER_IDLE_LOOKS], () => Atomics.store(i32, CTRL_QUIT, 1)) ? ctrl : null;
}

/** wait until the helper has finished its chunks of a shared product (calm for a while if that took long) */
function awaitHelper(calls: KernelCalls, ctrl: ShareControl, chunks: number): void {
  const t0 = performance.now();
  while (Atomics.load(ctrl.i32, CTRL_DONE) < chunks) {
    if (calls.detachedReturned() && Atomics.load(ctrl.i32, CTRL_DONE) < chunks) {
      calls.settleDetached();
      throw new Error("quantRows: the pool helper returned without finishing its part");
    }
  }
  const t1 = performance.now();
  if (t1 - t0 > LATE_MS) {
    if (t1 - ctrl.lateAt < LATE_AGAIN_MS) {
      ctrl.calmUntil = t1 + CALM_MS;
      Atomics.store(ctrl.i32, CTRL_QUIT, 1);
    }
    ctrl.lateAt = t1;
  }
}

/** how many chunks of shared products the pool helper has taken so far on this backend (tests) */
export function helperChunks(): number {
  const calls = wasmCalls();
  const ctrl = calls && controls.get(calls);
  return ctrl ? Atomics.load(ctrl.i32, CTRL_HELPED) : 0;
}

/** a matrix in the integer kernels' layout (quant-packed.ts) */
export interface PackedWeights {
  shape: PackedShape;
  bytes: Uint8Array;
  scales: Float32Array;
  /** int8: each output's Σ q; int4: empty */
  sums: Int32Array;
}

/** the quantized activations' buffers in the tensor heap, grown as needed, reused by every call */
let scratch: { tensor: Tensor; xq: Int8Array; xsum: Int32Array; xscale: Float32Array } | null = null;

function activationScratch(M: number, s: PackedShape): NonNullable<typeof scratch> {
  // int8 rows, then int32 group sums, then float32 scales; 4-byte aligned parts
  const qBytes = Math.ceil((M * s.Kp) / 4) * 4;
  const need = qBytes + M * s.groups * 4 + M * 4;
  if (!scratch || scratch.tensor.size * 4 < need) {
    scratch?.tensor.dispose();
    const tensor = new Tensor([Math.ceil(need / 4) * 2], "f32", false, false);
    scratch = { tensor, xq: new Int8Array(0), xsum: new Int32Array(0), xscale: new Float32Array(0) };
  }
  const buffer = heap().memory.buffer;
  const byteOffset = scratch.tensor.ptr;
  scratch.xq = new Int8Array(buffer, byteOffset, M * s.Kp);
  scratch.xsum = new Int32Array(buffer, byteOffset + qBytes, M * s.groups);
  scratch.xscale = new Float32Array(buffer, byteOffset + qBytes + M * s.groups * 4, M);
  return scratch;
}

export function quantRows(out: FloatArray, x: FloatArray, w: PackedWeights, bias: FloatArray | null, M: number): void {
  const s = w.shape;
  const a = activationScratch(M, s);
  const calls = wasmCalls();
  if (!calls || !inHeap([out, x, w.bytes, w.scales, w.sums, bias])) {
    quantizeActivations(a.xq, a.xsum, a.xscale, x, M, s.K, s.G, s.Gp, s.groups, s.xmax);
    qmatvecPacked(out, a.xq, a.xsum, a.xscale, w.bytes, w.scales, bias, M, s.N, s.bits, s.Gp, s.groups);
    return;
  }
  calls.x.quantizeActivations(a.xq.byteOffset, a.xsum.byteOffset, a.xscale.byteOffset, x.byteOffset, M, s.K, s.G, s.Gp, s.groups, s.xmax);
  // the product's operands, as both the shared and the split kernel take them (then their range)
  const operands = [
    out.byteOffset,
    a.xq.byteOffset,
    a.xsum.byteOffset,
    a.xscale.byteOffset,
    w.bytes.byteOffset,
    w.scales.byteOffset,
    w.sums.byteOffset,
    bias ? bias.byteOffset : 0,
    M,
    s.N,
    s.bits,
    s.Gp,
    s.groups,
  ] as const;
  const ctrl = sharing(calls);
  if (ctrl) {
    const chunk = Math.max(PANEL, Math.ceil(s.N / SHARE_CHUNKS / PANEL) * PANEL);
    const chunks = calls.x.qmatvecShared(ctrl.i32.byteOffset, ...operands, chunk);
    // the helper may still be finishing a chunk it took (a few µs, unless it lost its core)
    if (Atomics.load(ctrl.i32, CTRL_DONE) < chunks) awaitHelper(calls, ctrl, chunks);
    return;
  }
  calls.parallel(
    "qmatvecPacked",
    packedRanges(calls, s, M).map(([j0, j1]) => [...operands, j0, j1]),
  );
}

/**
 * Outputs n0..n1 of w as floats: output n's input k to out[(n - n0)·nStride + k·kStride] (nStride 1,
 * kStride N: the (in, out) matrix; nStride K, kStride 1: rows of the (out, in) one).
 */
export function dequantize(w: PackedWeights, out: Float32Array, n0: number, n1: number, nStride: number, kStride: number): void {
  const calls = wasmCalls();
  if (!calls || !inHeap([out, w.bytes, w.scales])) {
    dequantPacked(out, w.bytes, w.scales, w.shape, n0, n1, nStride, kStride);
    return;
  }
  const { K, N, bits, G, Gp, groups } = w.shape;
  calls.x.dequantPacked(out.byteOffset, w.bytes.byteOffset, w.scales.byteOffset, K, N, bits, G, Gp, groups, n0, n1, nStride, kStride);
}
