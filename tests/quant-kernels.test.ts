/**
 * The quantized model's integer kernels (src/kernels/quant.ts's quantRows: assembly/quant-int.as on
 * wasm) against their ref twin (src/kernels/ref/quant-int.ts) bit for bit on random data and awkward
 * shapes (odd K, short last groups, N not a multiple of 16 or 4, G not a multiple of 16), both SIMD
 * builds, 1 and 2 threads (split only where worth it). And the ref twin against the integer sums of
 * the file's own values and scales (io/quantize.ts). The same for dequantize (ref/dequant.ts and
 * assembly/dequant.as): the file's q·s, bit for bit, in both layouts and on ranges of outputs.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { type QuantBits, type QuantizedMatrix, quantizedScale, quantizedValue, quantizeMatrix } from "../src/io/quantize.js";
import { useBackend } from "../src/kernels/index.js";
import { dequantize, helperChunks, type PackedWeights, quantRows } from "../src/kernels/quant.js";
import { inputAt, packedShape, packQuantized } from "../src/kernels/quant-packed.js";
import { dequantPacked } from "../src/kernels/ref/dequant.js";
import { qmatvecPacked, quantizeActivations } from "../src/kernels/ref/quant-int.js";
import type { KernelCalls } from "../src/kernels/wasm/calls.js";
import type { WasmBackend } from "../src/kernels/wasm/loader.js";
import { Rng } from "../src/random.js";
import { heap } from "../src/tensor/memory.js";
import { Tensor } from "../src/tensor/tensor.js";

/** [M, K, N, G] */
const SHAPES: [number, number, number, number][] = [
  [1, 1, 1, 2],
  [1, 33, 7, 32],
  [3, 64, 50, 16],
  [5, 100, 37, 8],
  [2, 48, 16, 48],
  [1, 40, 21, 6],
  [4, 130, 68, 32],
  [1, 256, 1031, 32], // one token: not worth splitting over 2 threads
];

const rng = new Rng(7);
const randn = (n: number) => new Float32Array(n).map(() => rng.normal());

/** the task counts of the pool calls `be` makes to the kernels `wanted` picks (a silent fallback to ref makes none) */
function countPoolCalls(be: WasmBackend, wanted: (fn: string) => boolean): number[] {
  const calls = be as unknown as { parallel: (fn: string, tasks: unknown[][]) => void };
  const parallel = calls.parallel.bind(be);
  const split: number[] = [];
  calls.parallel = (fn, tasks) => {
    if (wanted(fn)) split.push(tasks.length);
    parallel(fn, tasks);
  };
  return split;
}

/** the same random numbers for both thread counts */
function randnSeeded(n: number, seed: number): Float32Array {
  const r = new Rng(seed);
  return new Float32Array(n).map(() => r.normal());
}

/** the matrix packed for the integer kernels, in the heap (as src/nn/quantized.ts does) */
function packedOnHeap(m: QuantizedMatrix, keep: Tensor[]): PackedWeights {
  const shape = packedShape(m.bits, m.inFeatures, m.outFeatures, m.groupSize);
  const bytes = new Tensor([Math.ceil(shape.bytes / 4)], "i32");
  const scales = new Tensor([shape.scaleCount], "f32");
  const sums = new Tensor([Math.max(shape.sumCount, 1)], "i32");
  keep.push(bytes, scales, sums);
  const buffer = heap().memory.buffer;
  const w = {
    shape,
    bytes: new Uint8Array(buffer, bytes.ptr, shape.bytes),
    scales: scales.data as Float32Array,
    sums: new Int32Array(buffer, sums.ptr, shape.sumCount),
  };
  packQuantized(m, shape, w.bytes, w.scales, w.sums);
  return w;
}

test("packed int8/int4 ref twin: activations within half a step, products equal the integer sums", () => {
  for (const bits of [8, 4] as QuantBits[])
    for (const [M, K, N, G] of SHAPES.slice(0, 7)) {
      const x = randn(M * K);
      x[0] = 0; // a zero and a row of zeros
      if (M > 1) x.fill(0, K, 2 * K);
      const io = quantizeMatrix(randn(K * N), K, N, "in-out", bits, G);
      const oi = quantizeMatrix(randn(N * K), K, N, "out-in", bits, G);
      const bias = randn(N);
      for (const m of [io, oi]) {
        const shape = packedShape(bits, K, N, m.groupSize);
        const bytes = new Uint8Array(shape.bytes);
        const scales = new Float32Array(shape.scaleCount);
        const sums = new Int32Array(shape.sumCount);
        packQuantized(m, shape, bytes, scales, sums);
        const xq = new Int8Array(M * shape.Kp);
        const xsum = new Int32Array(M * shape.groups);
        const xscale = new Float32Array(M);
        quantizeActivations(xq, xsum, xscale, x, M, K, shape.G, shape.Gp, shape.groups, shape.xmax);
        const got = new Float32Array(M * N);
        qmatvecPacked(got, xq, xsum, xscale, bytes, scales, bias, M, N, bits, shape.Gp, shape.groups);
        const label = `int${bits} ${m.layout} [${M},${K},${N}] G${G}`;
        for (let r = 0; r < M; r++) {
          // each activation within half a step of its value; the padding zero
          for (let kk = 0; kk < shape.Kp; kk++) {
            const k = inputAt(shape, kk);
            const v = xq[r * shape.Kp + kk]!;
            if (k < 0) assert.equal(v, 0, `${label}: padding`);
            else assert.ok(Math.abs(v * xscale[r]! - x[r * K + k]!) <= xscale[r]! * 0.5 * (1 + 1e-6), `${label}: xq ${r},${k}`);
          }
          for (let n = 0; n < N; n++) {
            let want = 0;
            let mag = 0;
            for (let g = 0; g < shape.groups; g++) {
              let s = 0;
              for (let k = g * shape.G; k < Math.min(K, (g + 1) * shape.G); k++)
                s += xq[r * shape.Kp + g * shape.Gp + (k - g * shape.G)]! * quantizedValue(m, k, n);
              want += s * quantizedScale(m, g, n);
              mag += Math.abs(s * quantizedScale(m, g, n));
            }
            want = want * xscale[r]! + bias[n]!;
            assert.ok(Math.abs(got[r * N + n]! - want) <= 1e-6 * (mag * xscale[r]! + Math.abs(bias[n]!) + 1), `${label}: out ${r},${n}`);
          }
        }
      }
    }
});

/**
 * [M, K, N, G] of a prefill big enough that 2 threads split it (M rows of 256 x 256 int4 / int8
 * weights read as much as a float one-token call worth a wake-up, Schedule.rowParts), unlike the
 * one-token calls of SHAPES (GPT-2's blocks' layers are not split either)
 */
const SPLIT_SHAPE: [number, number, number, number] = [208, 256, 256, 32];

/** the ref twin's output, computed once per key (it does not depend on the backend) */
const refOutputs = new Map<string, Float32Array>();

for (const simd of ["plain", "relaxed"] as const)
  test(`wasm ${simd} SIMD: packed integer kernels equal the ref twin bit for bit on 1 and 2 threads`, async () => {
    process.env.MINIGPT_WASM_SIMD = simd;
    for (const threads of [1, 2]) {
      const be = (await useBackend("wasm", { threads })) as WasmBackend;
      assert.equal(be.simd, simd);
      const split = countPoolCalls(be, (fn) => fn === "qmatvecPacked");
      for (const bits of [8, 4] as QuantBits[])
        for (const [M, K, N, G] of [...SHAPES, [2, 768, 200, 32] as [number, number, number, number], SPLIT_SHAPE]) {
          const keep: Tensor[] = [];
          const x = Tensor.fromArray(randnSeeded(M * K, K + N), [M, K]);
          const layout = N % 2 ? "in-out" : "out-in";
          const m = quantizeMatrix(randnSeeded(K * N, 3 * K + N), K, N, layout, bits, G);
          const bias = Tensor.fromArray(randnSeeded(N, N), [N]);
          const out = Tensor.zeros([M, N]);
          keep.push(x, bias, out);
          const w = packedOnHeap(m, keep);
          const before = split.length;
          quantRows(out.data, x.data, w, bias.data, M);
          const noBias = Tensor.zeros([M, N]);
          keep.push(noBias);
          quantRows(noBias.data, x.data, w, null, M);
          const label = `${simd} ${threads}t int${bits} [${M},${K},${N}] G${G}`;
          // 1 thread: both calls on wasm, unsplit; 2: shared with the pool's helper (quant-share.as), not split
          assert.equal(split.length, before + (threads === 1 ? 2 : 0), `${label}: both calls ran on wasm`);
          if (threads === 1) assert.equal(split.at(-1), 1, `${label}: one thread`);
          const s = w.shape;
          for (const [b, got] of [
            [bias.data, out.data],
            [null, noBias.data],
          ] as const) {
            const key = `int${bits} [${M},${K},${N}] G${G} bias ${b !== null}`;
            if (!refOutputs.has(key)) {
              const xq = new Int8Array(M * s.Kp);
              const xsum = new Int32Array(M * s.groups);
              const xscale = new Float32Array(M);
              quantizeActivations(xq, xsum, xscale, x.data, M, K, s.G, s.Gp, s.groups, s.xmax);
              const want = new Float32Array(M * N);
              qmatvecPacked(want, xq, xsum, xscale, w.bytes.slice(), w.scales.slice(), b, M, N, bits, s.Gp, s.groups);
              refOutputs.set(key, want);
            }
            assert.deepEqual(got, refOutputs.get(key), `${label} bias ${b !== null}`);
          }
          for (const t of keep) t.dispose();
        }
      be.dispose();
    }
    delete process.env.MINIGPT_WASM_SIMD;
  });

/**
 * M rows of K activations that meet every rounding case: random values, ties at .5 after scaling
 * (each row's largest value is its xmax, so the scale is exactly 1), -0, a zero row, a NaN and an
 * infinity (whose rows quantize to zeros with a NaN scale)
 */
function awkwardActivations(M: number, K: number, xmax: number, seed: number): Float32Array {
  const x = randnSeeded(M * K, seed);
  for (let k = 0; k < K; k++) x[k] = k === K - 1 ? -xmax : (k % 7) - 3 + 0.5;
  if (K > 1) x[1] = -0;
  if (M > 1) x.fill(0, K, 2 * K);
  if (M > 2) x[2 * K + (K >> 1)] = Number.NaN;
  if (M > 3) x[3 * K] = Number.POSITIVE_INFINITY;
  return x;
}

for (const simd of ["plain", "relaxed"] as const)
  test(`wasm ${simd} SIMD: quantizeActivations equals the ref twin bit for bit (ties, -0, zeros, NaN, infinity)`, async () => {
    process.env.MINIGPT_WASM_SIMD = simd;
    const be = (await useBackend("wasm", { threads: 1 })) as WasmBackend;
    const k = (be as unknown as KernelCalls).x;
    // [bits, K, G]: whole groups of 16 (the vector loop) and the rest (the scalar one)
    const shapes: [QuantBits, number, number][] = [
      [4, 64, 32],
      [4, 768, 32],
      [8, 64, 64],
      [8, 768, 768],
      [4, 48, 16],
      [4, 33, 32],
      [4, 40, 8],
      [8, 33, 33],
      [4, 48, 24],
    ];
    for (const [bits, K, G] of shapes) {
      const M = 5;
      const s = packedShape(bits, K, 16, G);
      const x = Tensor.fromArray(awkwardActivations(M, K, s.xmax, K + G), [M, K]);
      const xq = new Tensor([Math.ceil((M * s.Kp) / 4)], "i32");
      const xsum = new Tensor([M * s.groups], "i32");
      const xscale = new Tensor([M], "f32");
      k.quantizeActivations(xq.ptr, xsum.ptr, xscale.ptr, x.ptr, M, K, s.G, s.Gp, s.groups, s.xmax);
      const want = { xq: new Int8Array(M * s.Kp), xsum: new Int32Array(M * s.groups), xscale: new Float32Array(M) };
      quantizeActivations(want.xq, want.xsum, want.xscale, x.data, M, K, s.G, s.Gp, s.groups, s.xmax);
      const label = `${simd} int${bits} K ${K} G ${G}`;
      const buffer = heap().memory.buffer;
      assert.deepEqual(new Int8Array(buffer, xq.ptr, M * s.Kp), want.xq, `${label}: xq`);
      assert.deepEqual(new Int32Array(buffer, xsum.ptr, M * s.groups), want.xsum, `${label}: xsum`);
      assert.deepEqual(xscale.data, want.xscale, `${label}: xscale`);
      for (const t of [x, xq, xsum, xscale]) t.dispose();
    }
    be.dispose();
    delete process.env.MINIGPT_WASM_SIMD;
  });

test("wasm, 2 threads: the pool's helper takes chunks of shared products, with the same bits as one thread", async () => {
  const [M, K, N, G] = SPLIT_SHAPE;
  const keep: Tensor[] = [];
  const x = Tensor.fromArray(randnSeeded(M * K, 11), [M, K]);
  const bias = Tensor.fromArray(randnSeeded(N, 12), [N]);
  keep.push(x, bias);
  const results: Float32Array[] = [];
  for (const threads of [1, 2]) {
    const be = (await useBackend("wasm", { threads })) as WasmBackend;
    const w = packedOnHeap(quantizeMatrix(randnSeeded(K * N, 13), K, N, "in-out", 4, G), keep);
    const out = Tensor.zeros([M, N]);
    keep.push(out);
    quantRows(out.data, x.data, w, bias.data, M);
    results.push(out.data.slice());
    if (threads === 2) {
      // the helper wakes while the first calls run, then stays looking between calls: on a busy
      // machine it may take a while to get a core, so call again until it has taken a chunk
      const start = helperChunks();
      const until = performance.now() + 20_000;
      while (helperChunks() === start && performance.now() < until) {
        out.data.fill(0);
        quantRows(out.data, x.data, w, bias.data, M);
        assert.deepEqual(out.data, results[0], "2 threads, shared");
      }
      assert.ok(helperChunks() > start, "the helper took part");
    }
    be.dispose();
  }
  assert.deepEqual(results[1], results[0]);
  for (const t of keep) t.dispose();
});

/** [K, N, G]: short last groups, G not a multiple of 4 or 8 (padded inputs), ragged last panels */
const DEQUANT_SHAPES: [number, number, number][] = [
  [1, 1, 2],
  [33, 7, 32],
  [64, 50, 16],
  [100, 37, 8],
  [40, 21, 6],
  [130, 68, 32],
  [48, 16, 48],
  [768, 64, 32],
];

/** float32 bits, so that -0, NaN and every rounding count */
const bitsOf = (a: Float32Array) => new Uint32Array(a.buffer.slice(a.byteOffset, a.byteOffset + a.byteLength));

for (const simd of ["plain", "relaxed"] as const)
  test(`wasm ${simd} SIMD: dequantPacked equals the ref twin and the file's q·s bit for bit (both layouts, ranges, padding untouched)`, async () => {
    process.env.MINIGPT_WASM_SIMD = simd;
    const be = (await useBackend("wasm", { threads: 1 })) as WasmBackend;
    const k = (be as unknown as KernelCalls).x;
    const keep: Tensor[] = [];
    for (const bits of [8, 4] as QuantBits[])
      for (const [K, N, G] of DEQUANT_SHAPES)
        for (const layout of ["in-out", "out-in"] as const) {
          const m = quantizeMatrix(randnSeeded(K * N, K + N + G), K, N, layout, bits, G);
          const w = packedOnHeap(m, keep);
          const s = w.shape;
          // [n0, n1, nStride, kStride]: the whole matrix in its layout, and a range of outputs in each
          const calls: [number, number, number, number][] = [
            layout === "in-out" ? [0, N, 1, N] : [0, N, K, 1],
            [Math.min(3, N - 1), N, K, 1],
            [Math.min(5, N - 1), Math.max(Math.min(5, N - 1) + 1, N - 2), 1, N],
          ];
          for (const [n0, n1, nStride, kStride] of calls) {
            const label = `${simd} int${bits} ${layout} K ${K} N ${N} G ${G} outputs ${n0}..${n1} strides ${nStride},${kStride}`;
            const size = (n1 - n0 - 1) * nStride + (K - 1) * kStride + 1;
            const got = Tensor.fromArray(new Float32Array(size).fill(Number.NaN), [size]);
            keep.push(got);
            k.dequantPacked(got.ptr, w.bytes.byteOffset, w.scales.byteOffset, K, N, bits, s.G, s.Gp, s.groups, n0, n1, nStride, kStride);
            const want = new Float32Array(size).fill(Number.NaN);
            dequantPacked(want, w.bytes, w.scales, s, n0, n1, nStride, kStride);
            assert.deepEqual(bitsOf(got.data as Float32Array), bitsOf(want), label);
            // the dispatcher takes the wasm kernel for heap arrays: the same bits
            const viaQuant = Tensor.fromArray(new Float32Array(size).fill(Number.NaN), [size]);
            keep.push(viaQuant);
            dequantize(w, viaQuant.data as Float32Array, n0, n1, nStride, kStride);
            assert.deepEqual(bitsOf(viaQuant.data as Float32Array), bitsOf(want), `${label}: dequantize`);
            for (let n = n0; n < n1; n++)
              for (let i = 0; i < K; i++) {
                const v = Math.fround(quantizedValue(m, i, n) * quantizedScale(m, Math.floor(i / s.G), n));
                assert.ok(Object.is(want[(n - n0) * nStride + i * kStride], v), `${label}: ref (${n}, ${i})`);
              }
          }
        }
    for (const t of keep) t.dispose();
    be.dispose();
    delete process.env.MINIGPT_WASM_SIMD;
  });
