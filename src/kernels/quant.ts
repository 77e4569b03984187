/**
 * Products with int8 / int4 weights (src/io/quantize.ts's format) on whatever backend is selected:
 * the wasm kernels (assembly/quant.as) when the backend has them and every array lies in the tensor
 * heap, else the reference loops (ref/quant.ts). Not a Backend method: the WebGPU backend has no
 * twin yet, and these calls are self-contained.
 *
 *   quantMatmul    out (M,N) = x (M,K) · W [+ bias]   W (in, out) = (K,N): the Conv1D layers
 *   quantMatmulBT  out (M,N) = x (M,K) · Wᵀ           W (out, in) = (N,K): the tied LM head
 *
 * With several threads a call is split by outputs at multiples of 16, so each output's bits are the
 * same on any thread count.
 */
import { heap, isBufferOf } from "../tensor/memory.js";
import type { FloatArray } from "./backend.js";
import { backend } from "./index.js";
import { qmatmul, qmatmulBT } from "./ref/quant.js";
import type { KernelCalls } from "./wasm/calls.js";

/** a quantized matrix as the kernels take it (see io/quantize.ts's QuantizedMatrix) */
export interface QuantWeights {
  bits: 8 | 4;
  /** inputs per scale (int8: K) */
  groupSize: number;
  q: Int8Array | Uint8Array;
  scales: Float32Array;
}

/** below this many weights a call runs on one thread (a pool round trip costs more than it saves) */
const SPLIT_WEIGHTS = 1 << 16;

/** the wasm calls of the selected backend, or null (ref, or a backend without these kernels) */
function wasmCalls(): KernelCalls | null {
  const b = backend() as unknown as Partial<KernelCalls>;
  return b.x && typeof b.x.qmatmulIO === "function" && b.parallel && b.sched ? (b as KernelCalls) : null;
}

function inHeap(arrays: readonly (ArrayBufferView | null)[]): boolean {
  const memory = heap().memory;
  return arrays.every((a) => a === null || isBufferOf(memory, a.buffer));
}

/** [j0, j1) ranges over N outputs, one per thread, cut at multiples of 16 */
function outputRanges(calls: KernelCalls, K: number, N: number): [number, number][] {
  const parts = K * N >= SPLIT_WEIGHTS ? Math.min(calls.sched.threads, Math.ceil(N / 16)) : 1;
  const ranges: [number, number][] = [];
  for (let p = 0; p < parts; p++) {
    const j0 = Math.round((N * p) / parts / 16) * 16;
    const j1 = p === parts - 1 ? N : Math.round((N * (p + 1)) / parts / 16) * 16;
    if (j1 > j0) ranges.push([j0, j1]);
  }
  return ranges;
}

export function quantMatmul(
  out: FloatArray,
  x: FloatArray,
  w: QuantWeights,
  bias: FloatArray | null,
  M: number,
  K: number,
  N: number,
): void {
  const calls = wasmCalls();
  if (!calls || !inHeap([out, x, w.q, w.scales, bias])) {
    qmatmul(out, x, w.q, w.scales, bias, M, K, N, w.bits, w.groupSize);
    return;
  }
  const p = [out.byteOffset, x.byteOffset, w.q.byteOffset, w.scales.byteOffset, bias ? bias.byteOffset : 0] as const;
  calls.parallel(
    "qmatmulIO",
    outputRanges(calls, K, N).map(([j0, j1]) => [...p, M, K, N, w.bits, w.groupSize, j0, j1]),
  );
}

export function quantMatmulBT(out: FloatArray, x: FloatArray, w: QuantWeights, M: number, K: number, N: number): void {
  const calls = wasmCalls();
  if (!calls || !inHeap([out, x, w.q, w.scales])) {
    qmatmulBT(out, x, w.q, w.scales, M, K, N, w.bits, w.groupSize);
    return;
  }
  const p = [out.byteOffset, x.byteOffset, w.q.byteOffset, w.scales.byteOffset] as const;
  calls.parallel(
    "qmatmulOI",
    outputRanges(calls, K, N).map(([j0, j1]) => [...p, M, K, N, w.bits, w.groupSize, j0, j1]),
  );
}
