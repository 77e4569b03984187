/// <reference types="@webgpu/types" />
/**
 * The WebGPU backend: the Backend interface over GpuArrays (device memory), one WGSL kernel family
 * per file beside its ref twin in spirit (matmul, elementwise, layernorm, activations, softmax and
 * cross-entropy, attention, embedding, adamw, decode). fp32 throughout.
 *
 * A method records dispatches and returns at once; values reach the CPU only through `read`
 * (asynchronous). `sumSquares` is the one Backend method that returns a number, so on the GPU it is
 * `sumSquaresInto` (into device memory) and the gradient clipping reads nothing (`clipByNorm`).
 */
import type { Backend, DeviceMemory, DeviceReductions } from "../backend.js";
import * as activations from "./activations.js";
import { adamw } from "./adamw.js";
import * as attention from "./attention.js";
import { attentionRows, linearRows, matmulBTRows, mlpRows } from "./decode.js";
import { type AdapterSummary, acquireDevice } from "./device.js";
import * as elementwise from "./elementwise.js";
import { embeddingBackward, embeddingForward } from "./embedding.js";
import { layernormBackward, layernormForward } from "./layernorm.js";
import { linearBackward, matmul } from "./matmul.js";
import { type GpuArray, GpuRuntime } from "./runtime.js";
import * as softmax from "./softmax.js";

export type { GpuArray } from "./runtime.js";
export { GpuRuntime } from "./runtime.js";

export interface WebGpuBackend extends Backend<GpuArray, GpuArray>, DeviceReductions<GpuArray> {
  readonly runtime: GpuRuntime;
  /** where tensors live while this backend is in use (the runtime's buffers) */
  readonly memory: DeviceMemory<GpuArray>;
  readonly adapter: AdapterSummary;
}

/** The Backend methods on `rt`. */
function webgpuBackend(rt: GpuRuntime, adapter: AdapterSummary): WebGpuBackend {
  return {
    name: "webgpu",
    runtime: rt,
    memory: rt,
    adapter,
    matmul: (out, a, b, M, K, N, acc) => matmul(rt, "nn", out, a, b, null, M, K, N, acc),
    matmulBT: (out, a, b, M, K, N, acc) => matmul(rt, "nt", out, a, b, null, M, K, N, acc),
    matmulAT: (out, a, b, M, K, N, acc) => matmul(rt, "tn", out, a, b, null, M, K, N, acc),
    linearForward: (out, x, w, bias, M, K, N) => matmul(rt, "nn", out, x, w, bias, M, K, N, false),
    linearBackward: (dx, dw, db, dy, x, w, M, K, N, overwriteDx = false, overwriteDw = false) =>
      linearBackward(rt, dx, dw, db, dy, x, w, M, K, N, overwriteDx, overwriteDw),
    addBias: (out, bias, rows, cols) => elementwise.addBias(rt, out, bias, rows, cols),
    sumRows: (out, x, rows, cols) => elementwise.sumRows(rt, out, x, rows, cols),
    zero: (x, n) => elementwise.zero(rt, x, n),
    copy: (dst, src, n) => elementwise.copy(rt, dst, src, n),
    add: (out, a, b, n) => elementwise.add(rt, out, a, b, n),
    accumulate: (dst, src, n) => elementwise.accumulate(rt, dst, src, n),
    scale: (x, n, s) => elementwise.scale(rt, x, n, s),
    sumSquares: () => {
      throw new Error("webgpu: sumSquares returns a number, which needs a readback; use sumSquaresInto and read the result");
    },
    sumSquaresInto: (out, x, n) => elementwise.sumSquares(rt, out, x, n),
    clipByNorm: (x, n, sums, count, maxNorm) => elementwise.clipByNorm(rt, x, n, sums, count, maxNorm),
    mul: (out, x, mask, n) => elementwise.mul(rt, out, x, mask, n),
    layernormForward: (out, mean, rstd, x, w, b, N, C, eps) => layernormForward(rt, out, mean, rstd, x, w, b, N, C, eps),
    layernormBackward: (dx, dw, db, dout, x, w, mean, rstd, N, C) => layernormBackward(rt, dx, dw, db, dout, x, w, mean, rstd, N, C),
    geluForward: (out, x, n) => activations.geluForward(rt, out, x, n),
    geluBackward: (dx, x, dout, n) => activations.geluBackward(rt, dx, x, dout, n),
    geluForwardGrad: (out, dgelu, x, n) => activations.geluForwardGrad(rt, out, dgelu, x, n),
    reluForward: (out, x, n) => activations.reluForward(rt, out, x, n),
    reluBackward: (dx, x, dout, n) => activations.reluBackward(rt, dx, x, dout, n),
    attentionForward: (out, lse, qkv, B, T, C, nh) => attention.attentionForward(rt, out, lse, qkv, B, T, C, nh),
    attentionBackward: (dqkv, dout, qkv, out, lse, B, T, C, nh, _probs, overwrite) => {
      // (the kernels add: = is an add into zeros; probs are not kept on the GPU)
      if (overwrite) elementwise.zero(rt, dqkv, B * T * 3 * C);
      attention.attentionBackward(rt, dqkv, dout, qkv, out, lse, B, T, C, nh);
    },
    attentionCached: (out, qkv, k, v, Tn, pos0, C, nh) => attention.attentionCached(rt, out, qkv, k, v, Tn, pos0, C, nh),
    linearRows: (out, x, w, bias, M, K, N) => linearRows(rt, out, x, w, bias, M, K, N),
    matmulBTRows: (out, a, b, M, K, N) => matmulBTRows(rt, out, a, b, M, K, N),
    mlpRows: (y, h, a, R, wfc, bfc, wproj, bproj, C, H, relu) => mlpRows(rt, y, h, a, R, wfc, bfc, wproj, bproj, C, H, relu),
    attentionRows: (y, att, qkv, a, rows, wattn, battn, wproj, bproj, C, nh) =>
      attentionRows(rt, y, att, qkv, a, rows, wattn, battn, wproj, bproj, C, nh),
    softmax: (out, x, rows, cols) => softmax.softmax(rt, out, x, rows, cols),
    crossEntropyForward: (losses, lse, logits, targets, N, V) => softmax.crossEntropyForward(rt, losses, lse, logits, targets, N, V),
    crossEntropyBackward: (d, logits, lse, targets, N, V, s) => softmax.crossEntropyBackward(rt, d, logits, lse, targets, N, V, s),
    embeddingForward: (out, ids, table, N, C) => embeddingForward(rt, out, ids, table, N, C),
    embeddingBackward: (dtable, dout, ids, N, C) => embeddingBackward(rt, dtable, dout, ids, N, C),
    adamw: (param, g, m, v, n, step) => adamw(rt, param, g, m, v, n, step),
  };
}

/** A device (see device.ts) and the backend on it. */
export async function loadWebGpuBackend(options: { allowSoftware?: boolean } = {}): Promise<WebGpuBackend> {
  const { device, adapter, instance } = await acquireDevice(options);
  return webgpuBackend(new GpuRuntime(device, instance), adapter);
}
