// The wasm kernels against their ref twins, on random data (seeded) and awkward shapes.
//
// This file runs in two modes:
// - parent (MINIGPT_WASM_SIMD unset): spawns itself once per SIMD flavour (plain, relaxed), each in
//   its own process with MINIGPT_WASM_SIMD set, and runs a few loader/plumbing tests in-process;
// - child (MINIGPT_WASM_SIMD=plain|relaxed): every kernel vs ref with 1 and with 2 threads.
//
// Tolerances: see tests/kernel-cases.ts (shared with the browser page).
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { after, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import type { FloatArray } from "../src/kernels/backend.js";
import { refBackend } from "../src/kernels/ref/index.js";
import type { KernelExports } from "../src/kernels/wasm/build/exports.js";
import { chooseMatmulTile, loadWasmBackend, type WasmBackend } from "../src/kernels/wasm/loader.js";
import { compile } from "../src/kernels/wasm/runtime.js";
import { Rng } from "../src/random.js";
import { heap } from "../src/tensor/memory.js";
import { activationCases, attentionCases, layernormCases, matmulCases, softmaxCrossEntropyCases } from "./kernel-cases.js";
import { copy, difference, f32, i32, maxAbs, rand } from "./kernel-data.js";

const SIMD = process.env.MINIGPT_WASM_SIMD;
const THIS_FILE = fileURLToPath(import.meta.url);

// ---- helpers ----------------------------------------------------------------------------------------

/** assert |got - want| <= rel·|want| + abs elementwise */
function close(what: string, got: ArrayLike<number>, want: ArrayLike<number>, rel: number, abs: number): void {
  assert.equal(got.length, want.length, `${what}: length`);
  const { worst, at } = difference(got, want, rel, abs);
  if (process.env.KERNELS_WASM_VERBOSE) console.log(`# ${what}: worst ${worst.toExponential(2)} of tolerance`);
  if (worst > 1) {
    assert.fail(`${what}: element ${at} got ${got[at]} want ${want[at]} (${worst.toFixed(2)}x the tolerance rel ${rel} abs ${abs})`);
  }
}

/** [M, K, N] for the matmul cases: awkward and big shapes */
const MATMUL_SHAPES: [number, number, number][] = [
  [1, 1, 1],
  [1, 7, 65],
  [7, 1, 127],
  [3, 65, 7],
  [4, 8, 8],
  [65, 127, 33],
  [127, 1023, 9],
  [5, 300, 17],
  [6, 20, 2100],
  [130, 300, 70],
  [64, 256, 64],
  [1, 1023, 65],
  [2, 65, 1023],
  [9, 0, 5],
  // one-token rows big enough that 2 threads split them (K·N >= 2^21 floats: K for a·b and aᵀ·b,
  // B's rows for a·bᵀ)
  [1, 2048, 1030],
  [3, 2051, 1027],
  // big, split over 2 threads at a row that is not a multiple of the 32-row blocks
  [517, 300, 450],
];

/** the batch sizes the decode's row products are tested at: every count of whole and partial tiles */
const ROW_COUNTS = Array.from({ length: 17 }, (_, i) => i + 1);

/** rows r < R of `all` (width w) equal `alone(r)`, bit for bit */
function sameRows(what: string, R: number, all: Float32Array, w: number, alone: (r: number) => Float32Array): void {
  for (let r = 0; r < R; r++) {
    const want = alone(r);
    const got = all.subarray(r * w, (r + 1) * w);
    const at = got.findIndex((v, i) => !Object.is(v, want[i]));
    assert.equal(at, -1, `${what}: row ${r} element ${at}: ${got[at]} in the batch, ${want[at]} alone`);
  }
}

/** row r of t (width w), copied to the heap */
function heapRow(t: Float32Array, r: number, w: number): Float32Array {
  return copy(t.subarray(r * w, (r + 1) * w));
}

// ---- child mode: every kernel vs ref ------------------------------------------------------------------

function kernelSuite(be: WasmBackend, threads: number): void {
  const rng = new Rng(1234 + threads);

  test("matmul, the three layouts, awkward shapes", () => {
    matmulCases(be, rng, MATMUL_SHAPES, close);
  });

  test("linear forward (bias fused into the matmul) and backward (dx and dw side by side)", () => {
    // [M, K, N]: small, odd, generation-sized and big enough to be split over threads (>= 2 MFLOP)
    for (const [M, K, N] of [
      [1, 7, 5],
      [3, 1100, 1001],
      [7, 13, 9],
      [65, 33, 127],
      [768, 128, 384],
      [130, 300, 70],
    ] as [number, number, number][]) {
      const x = rand(rng, M * K, 2);
      const w = rand(rng, K * N, 0.5);
      const bias = rand(rng, N);
      for (const withBias of [true, false]) {
        const got = rand(rng, M * N, 3);
        const want = new Float32Array(got.length);
        be.linearForward(got, x, w, withBias ? bias : null, M, K, N);
        refBackend.linearForward(want, x, w, withBias ? bias : null, M, K, N);
        close(
          `linearForward ${M}x${K}x${N} bias=${withBias}`,
          got,
          want,
          0,
          1e-6 * K * maxAbs(x) * maxAbs(w) + (withBias ? 1e-6 : 0) + 1e-30,
        );
      }
      const dy = rand(rng, M * N, 1);
      const init = [rand(rng, M * K, 3), rand(rng, K * N, 3), rand(rng, N, 3)] as const;
      const got = init.map(copy);
      const want = init.map((a) => new Float32Array(a));
      be.linearBackward(got[0] as Float32Array, got[1] as Float32Array, got[2] as Float32Array, dy, x, w, M, K, N);
      refBackend.linearBackward(want[0] as Float32Array, want[1] as Float32Array, want[2] as Float32Array, dy, x, w, M, K, N);
      const tolX = 1e-6 * N * maxAbs(dy) * maxAbs(w) + 1e-6 * 3;
      const tolW = 1e-6 * M * maxAbs(dy) * maxAbs(x) + 1e-6 * 3;
      close(`linearBackward dx ${M}x${K}x${N}`, got[0] as Float32Array, want[0] as Float32Array, 0, tolX);
      close(`linearBackward dw ${M}x${K}x${N}`, got[1] as Float32Array, want[1] as Float32Array, 0, tolW);
      close(`linearBackward db ${M}x${K}x${N}`, got[2] as Float32Array, want[2] as Float32Array, 0, 1e-6 * M * maxAbs(dy) + 1e-6 * 3);
      // one of the outputs skipped
      const onlyW = copy(init[1]);
      be.linearBackward(null, onlyW, null, dy, x, w, M, K, N);
      close(`linearBackward dw only ${M}x${K}x${N}`, onlyW, want[1] as Float32Array, 0, tolW);
      // overwriteDw: written over any values, the bits of += into zeros
      const zeroW = f32(K * N).fill(0);
      be.linearBackward(null, zeroW, null, dy, x, w, M, K, N);
      const junkW = rand(rng, K * N, 9);
      be.linearBackward(null, junkW, null, dy, x, w, M, K, N, false, true);
      close(`linearBackward dw overwritten ${M}x${K}x${N}`, junkW, zeroW, 0, 0);
      // dx written, not added (its buffer holds garbage, as a fresh gradient's does)
      const dxOver = rand(rng, M * K, 1e3);
      const dwOver = copy(init[1]);
      const wantOver = new Float32Array(M * K);
      be.linearBackward(dxOver, dwOver, null, dy, x, w, M, K, N, true);
      refBackend.linearBackward(wantOver, null, null, dy, x, w, M, K, N, true);
      close(`linearBackward dx overwritten ${M}x${K}x${N}`, dxOver, wantOver, 0, tolX);
      close(`linearBackward dw beside an overwritten dx ${M}x${K}x${N}`, dwOver, want[1] as Float32Array, 0, tolW);
    }
  });

  test("elementwise: addBias, sumRows, zero, copy, add, accumulate, scale, sumSquares, mul", () => {
    for (const [rows, cols] of [
      [1, 1],
      [7, 65],
      [127, 7],
      [3, 1023],
      [33, 8],
    ] as [number, number][]) {
      const n = rows * cols;
      const x = rand(rng, n, 3);
      const bias = rand(rng, cols);
      const got = copy(x);
      const want = new Float32Array(x);
      be.addBias(got, bias, rows, cols);
      refBackend.addBias(want, bias, rows, cols);
      close(`addBias ${rows}x${cols}`, got, want, 1e-6, 0);

      const s0 = rand(rng, cols);
      const gs = copy(s0);
      const ws = new Float32Array(s0);
      be.sumRows(gs, x, rows, cols);
      refBackend.sumRows(ws, x, rows, cols);
      close(`sumRows ${rows}x${cols}`, gs, ws, 1e-6, 1e-7);

      // zero and copy stop at n: the element past it (a guard) must keep its value
      const z = copy(rand(rng, n + 1));
      const guard = z[n] as number;
      be.zero(z, n);
      close(`zero ${n}`, z, [...new Float32Array(n), guard], 0, 0);
      const cp = copy(rand(rng, n + 1));
      const cguard = cp[n] as number;
      be.copy(cp, x, n);
      close(`copy ${n}`, cp, [...x, cguard], 0, 0);

      const y = rand(rng, n);
      const o = f32(n);
      const wo = new Float32Array(n);
      be.add(o, x, y, n);
      refBackend.add(wo, x, y, n);
      close(`add ${n}`, o, wo, 1e-6, 0);

      const d = copy(x);
      const wd = new Float32Array(x);
      be.accumulate(d, y, n);
      refBackend.accumulate(wd, y, n);
      close(`accumulate ${n}`, d, wd, 1e-6, 0);

      const sc = copy(x);
      const wsc = new Float32Array(x);
      be.scale(sc, n, 0.37);
      refBackend.scale(wsc, n, 0.37);
      close(`scale ${n}`, sc, wsc, 1e-6, 0);

      const ss = be.sumSquares(x, n);
      const wss = refBackend.sumSquares(x, n);
      close(`sumSquares ${n}`, [ss], [wss], 1e-12, 0);

      const mask = f32(n);
      for (let i = 0; i < n; i++) mask[i] = rng.random() < 0.3 ? 0 : 1 / 0.7;
      const mo = f32(n);
      const wmo = new Float32Array(n);
      be.mul(mo, x, mask, n);
      refBackend.mul(wmo, x, mask, n);
      close(`mul ${n}`, mo, wmo, 1e-6, 0);
    }
  });

  test("activations: gelu, relu forward and backward", () => {
    activationCases(be, rng, [1, 3, 7, 65, 1023, 4099, 200_003], close);
  });

  test("layernorm forward and backward", () => {
    const shapes: [number, number][] = [
      [1, 1],
      [7, 65],
      [3, 768],
      [65, 128],
      [2, 7],
    ];
    layernormCases(be, rng, shapes, close);
  });

  test("softmax and cross-entropy", () => {
    const shapes: [number, number][] = [
      [1, 1],
      [7, 65],
      [3, 1023],
      [65, 7],
      [3, 50257],
    ];
    softmaxCrossEntropyCases(be, rng, shapes, close);
  });

  test("embedding forward and backward", () => {
    for (const [N, V, C] of [
      [1, 1, 1],
      [7, 3, 65],
      [65, 10, 128],
      [33, 1023, 7],
    ] as [number, number, number][]) {
      const table = rand(rng, V * C);
      const ids = i32(N);
      for (let n = 0; n < N; n++) ids[n] = rng.int(V);
      const o = f32(N * C);
      const wo = new Float32Array(N * C);
      be.embeddingForward(o, ids, table, N, C);
      refBackend.embeddingForward(wo, ids, table, N, C);
      close(`embeddingForward ${N}x${C}`, o, wo, 0, 0);
      const dout = rand(rng, N * C);
      const dt = copy(table);
      const wdt = new Float32Array(table);
      be.embeddingBackward(dt, dout, ids, N, C);
      refBackend.embeddingBackward(wdt, dout, ids, N, C);
      close(`embeddingBackward ${N}x${C}`, dt, wdt, 1e-6, 1e-7);
    }
  });

  test("adamw", () => {
    for (const n of [1, 7, 65, 1023, 150_001]) {
      const p = rand(rng, n);
      const g = rand(rng, n, 0.1);
      const m = rand(rng, n, 0.01);
      const v = f32(n);
      for (let i = 0; i < n; i++) v[i] = rng.random() * 1e-3;
      const [gp, gm, gv] = [copy(p), copy(m), copy(v)];
      const [wp, wm, wv] = [new Float32Array(p), new Float32Array(m), new Float32Array(v)];
      const step = { lr: 3e-3, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, bc1: 1 - 0.9 ** 7, bc2: 1 - 0.95 ** 7, gradScale: 1 };
      be.adamw(gp, g, gm, gv, n, step);
      refBackend.adamw(wp, g, wm, wv, n, step);
      // m = b1·m + (1-b1)·g can cancel: the bound is relative to the terms
      close(`adamw m ${n}`, gm, wm, 1e-6, 1e-6 * (maxAbs(m) + 0.1 * maxAbs(g)));
      close(`adamw v ${n}`, gv, wv, 1e-6, 1e-15);
      close(`adamw p ${n}`, gp, wp, 1e-6, 1e-8);
    }
  });

  test("adamwMany: the whole update in one call, split over the threads, gives each tensor adamw's bits", () => {
    // sizes not multiples of 4 (scalar tails), one big enough to be split over 2 threads inside it
    const sizes = [5, 8, 13, 1, 64, 3, 150_001, 7];
    const tensors = sizes.map((n, i) => ({
      p: rand(rng, n),
      g: rand(rng, n, 0.1),
      m: rand(rng, n, 0.01),
      v: rand(rng, n, 1e-4),
      n,
      decays: i % 2 === 0,
    }));
    for (const t of tensors) for (let j = 0; j < t.n; j++) t.v[j] = Math.abs(t.v[j] as number);
    const step = { lr: 3e-3, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, bc1: 1 - 0.9 ** 7, bc2: 1 - 0.95 ** 7, gradScale: 1 };
    const each = tensors.map((t) => ({ p: copy(t.p), m: copy(t.m), v: copy(t.v) }));
    tensors.forEach((t, i) => {
      const e = each[i] as (typeof each)[number];
      be.adamw(e.p, t.g, e.m, e.v, t.n, t.decays ? step : { ...step, weightDecay: 0 });
    });
    const ref = tensors.map((t) => ({ ...t, p: new Float32Array(t.p), m: new Float32Array(t.m), v: new Float32Array(t.v) }));
    refBackend.adamwMany?.(ref, step);
    be.adamwMany?.(tensors, step);
    tensors.forEach((t, i) => {
      const e = each[i] as (typeof each)[number];
      const bits = (a: Float32Array) => [...new Uint32Array(a.buffer, a.byteOffset, a.length)];
      assert.deepEqual(bits(t.p), bits(e.p), `p of tensor ${i} (${t.n}): adamw's bits`);
      assert.deepEqual(bits(t.m), bits(e.m), `m of tensor ${i}`);
      assert.deepEqual(bits(t.v), bits(e.v), `v of tensor ${i}`);
      close(`adamwMany p ${t.n}`, t.p, (ref[i] as (typeof ref)[number]).p, 1e-6, 1e-8);
    });
  });

  test("AdamW with a clip's gradScale: the bits of scaling the gradients first, and the gradients left as they were", () => {
    const sizes = [5, 64, 150_001, 7];
    const tensors = sizes.map((n, i) => ({
      p: rand(rng, n),
      g: rand(rng, n, 0.1),
      m: rand(rng, n, 0.01),
      v: f32(n),
      n,
      decays: i % 2 === 0,
    }));
    for (const t of tensors) for (let j = 0; j < t.n; j++) t.v[j] = rng.random() * 1e-4;
    const step = {
      lr: 3e-3,
      beta1: 0.9,
      beta2: 0.95,
      eps: 1e-8,
      weightDecay: 0.1,
      bc1: 1 - 0.9 ** 7,
      bc2: 1 - 0.95 ** 7,
      gradScale: 0.3711,
    };
    // before: the elementwise scale kernel (clipGradNorm), then AdamW with the scaled gradients
    const scaled = tensors.map((t) => ({ ...t, p: copy(t.p), g: copy(t.g), m: copy(t.m), v: copy(t.v) }));
    for (const t of scaled) be.scale(t.g, t.n, step.gradScale);
    be.adamwMany?.(scaled, { ...step, gradScale: 1 });
    const g0 = tensors.map((t) => new Float32Array(t.g));
    const ref = tensors.map((t) => ({ ...t, p: new Float32Array(t.p), m: new Float32Array(t.m), v: new Float32Array(t.v) }));
    refBackend.adamwMany?.(ref, step);
    // the reference keeps the bits of its own scale-first too (its products rounded to float32)
    const refScaled = tensors.map((t) => ({ ...t, p: copy(t.p), g: copy(t.g), m: copy(t.m), v: copy(t.v) }));
    for (const t of refScaled) refBackend.scale(t.g, t.n, step.gradScale);
    refBackend.adamwMany?.(refScaled, { ...step, gradScale: 1 });
    be.adamwMany?.(tensors, step);
    const bits = (a: Float32Array) => [...new Uint32Array(a.buffer, a.byteOffset, a.length)];
    tensors.forEach((t, i) => {
      const s = scaled[i] as (typeof scaled)[number];
      assert.deepEqual(bits(t.p), bits(s.p), `p of tensor ${i} (${t.n})`);
      assert.deepEqual(bits(t.m), bits(s.m), `m of tensor ${i}`);
      assert.deepEqual(bits(t.v), bits(s.v), `v of tensor ${i}`);
      assert.deepEqual(bits(t.g), bits(g0[i] as Float32Array), `g of tensor ${i}: not written`);
      close(`adamwMany p ${t.n}, gradScale`, t.p, (ref[i] as (typeof ref)[number]).p, 1e-6, 1e-8);
      const r = ref[i] as (typeof ref)[number];
      const rs = refScaled[i] as (typeof refScaled)[number];
      assert.deepEqual(bits(r.p), bits(rs.p), `ref: p of tensor ${i}`);
      assert.deepEqual(bits(r.m), bits(rs.m), `ref: m of tensor ${i}`);
      assert.deepEqual(bits(r.v), bits(rs.v), `ref: v of tensor ${i}`);
    });
  });

  test("attention forward, backward and cached", () => {
    const shapes: [number, number, number, number][] = [
      [1, 1, 4, 1],
      [2, 7, 12, 3],
      [1, 65, 20, 2],
      [2, 33, 128, 4],
      [1, 17, 64, 1],
      [4, 64, 128, 4],
      [1, 127, 6, 2],
      // head size and T multiples of 8: the tiles read and write the tensors in place (attention.as)
      [3, 24, 48, 3],
      [2, 16, 16, 2],
      // head size a multiple of 8, T not: padded copies
      [2, 12, 32, 2],
    ];
    attentionCases(be, rng, shapes, close);
    for (const [Tn, pos0, C, nh] of [
      [1, 0, 4, 1],
      [1, 9, 12, 3],
      [5, 9, 20, 2],
      [3, 60, 128, 4],
      [1, 1000, 768, 12],
      [7, 0, 6, 2],
      // odd head size and an uneven split of 5 heads over 2 threads (>= 2e6 flops)
      [2, 700, 385, 5],
    ] as [number, number, number, number][]) {
      const Tmax = pos0 + Tn + 3;
      const qkv = rand(rng, Tn * 3 * C, 1.5);
      const k = rand(rng, Tmax * C, 1.5);
      const v = rand(rng, Tmax * C, 1.5);
      const out = f32(Tn * C);
      const wout = new Float32Array(Tn * C);
      be.attentionCached(out, qkv, k, v, Tn, pos0, C, nh);
      refBackend.attentionCached(wout, qkv, k, v, Tn, pos0, C, nh);
      close(`attentionCached ${Tn},${pos0},${C},${nh}`, out, wout, 0, 1e-6 * (C / nh + pos0 + Tn) * 1.5 * 1.5);
    }
  });

  test("fused one-token blocks (generation): mlpRows and attentionRows, one row", () => {
    // [C, H]: small, H not a multiple of 8, and big enough that 2 threads split the hidden units
    // (2·C·H >= 2^21 floats), evenly and not
    for (const [C, H] of [
      [4, 16],
      [7, 13],
      [512, 2052],
      [768, 3072],
    ] as [number, number][]) {
      for (const relu of [false, true]) {
        const a = rand(rng, C, 2);
        const wfc = rand(rng, C * H, 0.5);
        const bfc = rand(rng, H);
        const wproj = rand(rng, H * C, 0.5);
        const bproj = rand(rng, C);
        const [y, h] = [rand(rng, C, 3), rand(rng, H, 3)];
        const [wy, wh] = [new Float32Array(C), new Float32Array(H)];
        be.mlpRows(y, h, a, 1, wfc, bfc, wproj, bproj, C, H, relu);
        refBackend.mlpRows(wy, wh, a, 1, wfc, bfc, wproj, bproj, C, H, relu);
        const tolH = 1e-6 * C * maxAbs(a) * maxAbs(wfc) + 1e-6;
        close(`mlpRow h ${C}x${H} relu=${relu}`, h, wh, 0, tolH);
        close(`mlpRow y ${C}x${H} relu=${relu}`, y, wy, 0, 1e-6 * H * maxAbs(wh) * maxAbs(wproj) + 1e-6 * maxAbs(wy));
      }
    }
    // [C, nh, pos]: tiny, odd head sizes (10, 97), and big enough that 2 threads split the heads
    // (4·C² >= 2^21 floats): 12 heads, and 5 heads of 145 (an uneven split)
    for (const [C, nh, pos] of [
      [4, 1, 0],
      [12, 3, 5],
      [20, 2, 9],
      [388, 4, 70],
      [725, 5, 40],
      [768, 12, 300],
    ] as [number, number, number][]) {
      const Tmax = pos + 3;
      const a = rand(rng, C, 1);
      const wattn = rand(rng, C * 3 * C, 0.1);
      const battn = rand(rng, 3 * C, 0.5);
      const wproj = rand(rng, C * C, 0.5);
      const bproj = rand(rng, C);
      const k0 = rand(rng, Tmax * C, 1.5);
      const v0 = rand(rng, Tmax * C, 1.5);
      const [k, v, y, att, qkv] = [copy(k0), copy(v0), rand(rng, C, 3), rand(rng, C, 3), rand(rng, 3 * C, 3)];
      const [wk, wv] = [new Float32Array(k0), new Float32Array(v0)];
      const [wy, watt, wqkv] = [new Float32Array(C), new Float32Array(C), new Float32Array(3 * C)];
      be.attentionRows(y, att, qkv, a, [{ keys: k, values: v, pos }], wattn, battn, wproj, bproj, C, nh);
      refBackend.attentionRows(wy, watt, wqkv, a, [{ keys: wk, values: wv, pos }], wattn, battn, wproj, bproj, C, nh);
      const what = `attentionRow ${C},${nh},${pos}`;
      const tolQ = 1e-6 * C * maxAbs(a) * maxAbs(wattn) + 1e-6;
      close(`${what} qkv`, qkv, wqkv, 0, tolQ);
      close(`${what} k cache`, k, wk, 0, tolQ);
      close(`${what} v cache`, v, wv, 0, tolQ);
      // att and y: relative to their largest entry (the error model of a matmul chain through a
      // softmax is loose; the measured worst is ~1e-6 of the largest entry)
      close(`${what} att`, att, watt, 0, 2e-5 * maxAbs(watt));
      close(`${what} y`, y, wy, 0, 2e-5 * maxAbs(wy));
    }
  });

  test("the decode's row products for R = 1..17 rows (register tiles of 4 rows, ragged edges): each row's bits alone, close to ref", () => {
    // [K, N]: K past the eight streams' blocks by 0..7 rows (Kb = K >> 3 passes, chunks of passes
    // with a short last one), N with 8-column tiles, a 4-column tile and scalar columns; one shape
    // that 2 threads split (K·N >= 2^21 floats); rows 4 KiB apart (N = 1024: every row of B in one
    // L1 set, so from 5 rows on each tile's steps are copied first, chunks of 8 passes and a short one)
    for (const [K, N, rowCounts] of [
      [1, 3, ROW_COUNTS],
      [203, 1024, [2, 5, 8, 13, 16, 17]],
      [9, 13, ROW_COUNTS],
      [17, 67, ROW_COUNTS],
      [65, 31, ROW_COUNTS],
      [300, 5, ROW_COUNTS],
      [2048, 1030, [5, 17]],
    ] as [number, number, number[]][]) {
      const w = rand(rng, K * N, 0.5);
      const bias = rand(rng, N);
      const bt = rand(rng, N * K, 0.5);
      for (const R of rowCounts) {
        const x = rand(rng, R * K, 2);
        const tol = 1e-6 * K * maxAbs(x) * 0.5 + 1e-6;
        const out = f32(R * N);
        const want = new Float32Array(R * N);
        be.linearRows(out, x, w, bias, R, K, N);
        sameRows(`linearRows ${R}x${K}x${N}`, R, out, N, (r) => {
          const o = f32(N);
          be.linearRows(o, heapRow(x, r, K), w, bias, 1, K, N);
          return o;
        });
        refBackend.linearRows(want, x, w, bias, R, K, N);
        close(`linearRows ${R}x${K}x${N} vs ref`, out, want, 0, tol);
        be.matmulBTRows(out, x, bt, R, K, N);
        sameRows(`matmulBTRows ${R}x${K}x${N}`, R, out, N, (r) => {
          const o = f32(N);
          be.matmulBTRows(o, heapRow(x, r, K), bt, 1, K, N);
          return o;
        });
        refBackend.matmulBTRows(want, x, bt, R, K, N);
        close(`matmulBTRows ${R}x${K}x${N} vs ref`, out, want, 0, tol);
      }
    }
  });

  test("the decode's row products from B packed once (packRowsB): each row the bits of the row-major product's", () => {
    // [K, N]: K within one chunk of the packed layout's 256 steps, past it with K % 8 rows after the
    // eight streams' blocks, and three chunks; N one 4-column panel and several; R 2..17 (tiles of
    // 8 rows, a last tile of 1-8, one of 1-4 rows)
    for (const [K, N] of [
      [9, 4],
      [300, 12],
      [515, 40],
      [768, 8],
    ] as [number, number][]) {
      const x0 = (be as unknown as { x: KernelExports }).x; // the kernels themselves (WasmKernels.x)
      const w = rand(rng, K * N, 0.5);
      const packed = f32(K * N);
      x0.packRowsB(packed.byteOffset, w.byteOffset, K, N);
      for (const R of ROW_COUNTS.slice(1)) {
        const x = rand(rng, R * K, 2);
        const scratch = f32(x0.rowsScratchBytes(R, K) / 4);
        const got = f32(R * N);
        const want = f32(R * N);
        x0.matmulRowsPacked(got.byteOffset, x.byteOffset, packed.byteOffset, R, K, N, scratch.byteOffset);
        x0.matmulRows(0, want.byteOffset, x.byteOffset, w.byteOffset, R, K, N, K, 0, 0, N, scratch.byteOffset);
        sameRows(`packed ${R}x${K}x${N}`, R, got, N, (r) => want.subarray(r * N, (r + 1) * N));
      }
    }
  });

  test("the packed product of many rows (a server's joined prompts): each row the bits of a one-row call", () => {
    // rowsTimesPacked with more than 64 rows over several chunks of 256 steps: tiles of eight full
    // rows carry their accumulators between chunks as they are (TILE_RAW), a last tile of 5-7 rows
    // through out's rows, one of 1-4 rows in the four-row tile; a's groups of eight packed four
    // steps at a time (packEight) with Kb % 4 steps and K % 8 steps left over; the first chunk from
    // zero over whatever out held. Each row against matmulRows of that row alone (the one-row kernel).
    const x0 = (be as unknown as { x: KernelExports }).x;
    for (const [K, N, rowCounts] of [
      [600, 40, [72, 67, 70]],
      [515, 12, [65, 80]],
    ] as [number, number, number[]][]) {
      const w = rand(rng, K * N, 0.5);
      const packed = f32(K * N);
      x0.packRowsB(packed.byteOffset, w.byteOffset, K, N);
      for (const R of rowCounts) {
        const x = rand(rng, R * K, 2);
        const scratch = f32(x0.rowsScratchBytes(R, K) / 4);
        const got = rand(rng, R * N, 9); // not zero: a product without add must not read out
        x0.matmulRowsPacked(got.byteOffset, x.byteOffset, packed.byteOffset, R, K, N, scratch.byteOffset);
        sameRows(`packed ${R}x${K}x${N}`, R, got, N, (r) => {
          const xr = heapRow(x, r, K);
          const o = f32(N);
          x0.matmulRows(0, o.byteOffset, xr.byteOffset, w.byteOffset, 1, K, N, K, 0, 0, N, scratch.byteOffset);
          return o;
        });
      }
    }
  });

  test("the decode's row kernels: each of R ragged rows gets the bits of that row alone", () => {
    const R = 6;
    const same = (what: string, all: Float32Array, w: number, alone: (r: number) => Float32Array) => sameRows(what, R, all, w, alone);
    const row = heapRow;
    // [K, N]: odd, and big enough that 2 threads split K (a·b) or N (a·bᵀ)
    for (const [K, N] of [
      [7, 65],
      [300, 17],
      [2048, 1030],
    ] as [number, number][]) {
      const x = rand(rng, R * K);
      const w = rand(rng, K * N);
      const bias = rand(rng, N);
      const out = f32(R * N);
      be.linearRows(out, x, w, bias, R, K, N);
      same(`linearRows ${K}x${N}`, out, N, (r) => {
        const o = f32(N);
        be.linearRows(o, row(x, r, K), w, bias, 1, K, N);
        return o;
      });
      const bt = rand(rng, N * K);
      be.matmulBTRows(out, x, bt, R, K, N);
      same(`matmulBTRows ${K}x${N}`, out, N, (r) => {
        const o = f32(N);
        be.matmulBTRows(o, row(x, r, K), bt, 1, K, N);
        return o;
      });
    }
    for (const [C, H] of [
      [7, 13],
      [512, 2052],
    ] as [number, number][]) {
      const a = rand(rng, R * C, 2);
      const wfc = rand(rng, C * H, 0.5);
      const bfc = rand(rng, H);
      const wproj = rand(rng, H * C, 0.5);
      const bproj = rand(rng, C);
      const [y, h] = [f32(R * C), f32(R * H)];
      be.mlpRows(y, h, a, R, wfc, bfc, wproj, bproj, C, H, false);
      same(`mlpRows ${C}x${H}`, y, C, (r) => {
        const o = f32(C);
        be.mlpRows(o, f32(H), row(a, r, C), 1, wfc, bfc, wproj, bproj, C, H, false);
        return o;
      });
    }
    // ragged: every row its own cache and position; 4·C² >= 2^21 floats splits the heads on 2 threads
    for (const [C, nh] of [
      [20, 2],
      [768, 12],
    ] as [number, number][]) {
      const Tmax = 40;
      const positions = [0, 39, 5, 17, 17, 2];
      const a = rand(rng, R * C, 1);
      const wattn = rand(rng, C * 3 * C, 0.1);
      const battn = rand(rng, 3 * C, 0.5);
      const wproj = rand(rng, C * C, 0.5);
      const bproj = rand(rng, C);
      const caches = positions.map(() => ({ keys: rand(rng, Tmax * C, 1.5), values: rand(rng, Tmax * C, 1.5) }));
      const fresh = () => caches.map((c) => ({ keys: copy(c.keys), values: copy(c.values) }));
      const together = fresh();
      const y = f32(R * C);
      be.attentionRows(
        y,
        f32(R * C),
        f32(R * 3 * C),
        a,
        together.map((c, r) => ({ ...c, pos: positions[r] as number })),
        wattn,
        battn,
        wproj,
        bproj,
        C,
        nh,
      );
      same(`attentionRows ${C},${nh}`, y, C, (r) => {
        const alone = fresh()[r] as { keys: Float32Array; values: Float32Array };
        const o = f32(C);
        be.attentionRows(
          o,
          f32(C),
          f32(3 * C),
          row(a, r, C),
          [{ ...alone, pos: positions[r] as number }],
          wattn,
          battn,
          wproj,
          bproj,
          C,
          nh,
        );
        assert.deepEqual(together[r]?.keys, alone.keys, `attentionRows ${C},${nh}: row ${r}'s k cache`);
        return o;
      });
    }
  });

  test("a batch of 12 rows through the fused blocks (split by rows on 2 threads when the weights are small), a prompt's rows among them: each row's bits alone", () => {
    const C = 24;
    const nh = 2;
    const H = 4 * C;
    const Tmax = 32;
    // rows 4..8: one sequence's prompt at positions 10..14 (2 threads' cut at row 8 must move to row 4)
    const seqOf = [0, 1, 2, 3, 4, 4, 4, 4, 4, 5, 6, 7];
    const positions = [3, 0, 7, 31, 10, 11, 12, 13, 14, 1, 20, 5];
    const R = seqOf.length;
    const a = rand(rng, R * C, 1);
    const wfc = rand(rng, C * H, 0.5);
    const bfc = rand(rng, H);
    const wp = rand(rng, H * C, 0.5);
    const wattn = rand(rng, C * 3 * C, 0.3);
    const battn = rand(rng, 3 * C, 0.5);
    const wproj = rand(rng, C * C, 0.5);
    const bproj = rand(rng, C);
    const y = f32(R * C);
    const splits = be.stats.parallel;
    be.mlpRows(y, f32(R * H), a, R, wfc, bfc, wp, bproj, C, H, false);
    assert.equal(be.stats.parallel - splits, threads > 1 ? 1 : 0, "the rows were split over the threads");
    sameRows(`mlpRows of ${R} rows`, R, y, C, (r) => {
      const o = f32(C);
      be.mlpRows(o, f32(H), heapRow(a, r, C), 1, wfc, bfc, wp, bproj, C, H, false);
      return o;
    });
    const caches = Array.from({ length: 8 }, () => ({ keys: rand(rng, Tmax * C, 1.5), values: rand(rng, Tmax * C, 1.5) }));
    const fresh = () => caches.map((c) => ({ keys: copy(c.keys), values: copy(c.values) }));
    const together = fresh();
    const attend = (out: Float32Array, x: Float32Array, rows: { keys: Float32Array; values: Float32Array; pos: number }[]) =>
      be.attentionRows(out, f32(rows.length * C), f32(rows.length * 3 * C), x, rows, wattn, battn, wproj, bproj, C, nh);
    attend(
      y,
      a,
      seqOf.map((q, r) => ({ ...(together[q] as { keys: Float32Array; values: Float32Array }), pos: positions[r] as number })),
    );
    // alone: every sequence's rows in a call of their own (the prompt's five rows together)
    const alone = fresh();
    const want = f32(R * C);
    for (let q = 0; q < caches.length; q++) {
      const rs = seqOf.flatMap((sq, r) => (sq === q ? [r] : []));
      const o = f32(rs.length * C);
      const x = copy(new Float32Array(rs.flatMap((r) => Array.from(a.subarray(r * C, (r + 1) * C)))));
      attend(
        o,
        x,
        rs.map((r) => ({ ...(alone[q] as { keys: Float32Array; values: Float32Array }), pos: positions[r] as number })),
      );
      rs.forEach((r, i) => {
        want.set(o.subarray(i * C, (i + 1) * C), r * C);
      });
      assert.deepEqual(together[q]?.keys, alone[q]?.keys, `sequence ${q}'s k cache`);
    }
    sameRows(`attentionRows of ${R} rows`, R, y, C, (r) => want.subarray(r * C, (r + 1) * C));
  });

  test("the fast path was taken for every heap array", () => {
    assert.equal(be.stats.fallback, 0);
    assert.ok(be.stats.fast > 100, `fast calls: ${be.stats.fast}`);
    if (threads > 1) assert.ok(be.stats.parallel > 0, "big calls were split over threads");
    else assert.equal(be.stats.parallel, 0);
  });
}

/**
 * The 3x12 matmul tile (be uses it) against ref, and against the 4x8 tile (other) bit for bit: both
 * run the same FMA chain per output, so any difference is a packing or edge bug.
 */
function tileSuite(be: WasmBackend, other: WasmBackend, threads: number): void {
  const rng = new Rng(4321 + threads);
  test("matmul with the 3x12 tile, the three layouts, awkward shapes", () => {
    assert.equal(be.tile, "3x12");
    assert.equal(other.tile, "4x8");
    matmulCases(be, rng, MATMUL_SHAPES, close);
  });

  test("the 3x12 and 4x8 tiles give bit-identical matmuls and linear layers", () => {
    for (const [M, K, N] of [...MATMUL_SHAPES, [768, 128, 384], [61, 520, 47]] as [number, number, number][]) {
      const a = rand(rng, M * K, 2);
      const b = rand(rng, K * N, 0.5);
      const init = rand(rng, M * N, 3);
      const bias = rand(rng, N);
      for (const kind of ["matmul", "matmulBT", "matmulAT"] as const) {
        for (const acc of [false, true]) {
          const x = copy(init);
          const y = copy(init);
          be[kind](x, a, b, M, K, N, acc);
          other[kind](y, a, b, M, K, N, acc);
          sameFloats(`${kind} ${M}x${K}x${N} acc=${acc}`, x, y);
        }
      }
      const x = f32(M * N);
      const y = f32(M * N);
      be.linearForward(x, a, b, bias, M, K, N);
      other.linearForward(y, a, b, bias, M, K, N);
      sameFloats(`linearForward ${M}x${K}x${N}`, x, y);
    }
  });
}

/** got and want hold the same floats, element for element (Object.is: -0 is not 0, NaN is NaN) */
function sameFloats(what: string, got: FloatArray, want: FloatArray): void {
  assert.equal(got.length, want.length, `${what}: length`);
  for (let i = 0; i < got.length; i++) {
    if (!Object.is(got[i], want[i])) assert.fail(`${what}: element ${i} is ${got[i]} with one tile, ${want[i]} with the other`);
  }
}

if (SIMD) {
  for (const threads of [1, 2]) {
    const be = await loadWasmBackend({ threads });
    after(() => be.dispose());
    describe(`wasm kernels vs ref (${SIMD} SIMD, ${threads} thread${threads > 1 ? "s" : ""})`, () => {
      test("the requested SIMD flavour and thread count are in use", () => {
        assert.equal(be.simd, SIMD);
        assert.equal(be.threads, threads);
      });
      kernelSuite(be, threads);
    });
    const tiled = await loadWasmBackend({ threads, tile: "3x12" });
    const plain = await loadWasmBackend({ threads, tile: "4x8" });
    after(() => {
      tiled.dispose();
      plain.dispose();
    });
    describe(`wasm matmul tiles (${SIMD} SIMD, ${threads} thread${threads > 1 ? "s" : ""})`, () => {
      tileSuite(tiled, plain, threads);
    });
  }
} else {
  // ---- parent mode ------------------------------------------------------------------------------------
  describe("wasm backend", () => {
    for (const flavour of ["plain", "relaxed"]) {
      test(`every kernel matches ref with ${flavour} SIMD, 1 and 2 threads (child process)`, () => {
        // NODE_TEST_CONTEXT would make the child speak the runner's binary protocol instead of TAP
        const { NODE_TEST_CONTEXT: _, ...env } = process.env;
        const r = spawnSync(process.execPath, ["--import", "tsx", "--test-reporter=tap", THIS_FILE], {
          env: { ...env, MINIGPT_WASM_SIMD: flavour },
          encoding: "utf8",
          timeout: 300_000,
        });
        if (r.status !== 0) assert.fail(`child (${flavour}) failed, exit ${r.status}:\n${r.stdout}\n${r.stderr}`);
        assert.match(r.stdout, /# fail 0/);
        assert.match(r.stdout, /# pass [1-9]/);
      });
    }

    test("backends loaded at the same time get the same SIMD flavour (fresh process)", () => {
      // the second load once read the flag state while the first was still turning it on, and
      // got plain SIMD beside the first's relaxed
      const loader = new URL("../src/kernels/wasm/loader.ts", import.meta.url).href;
      const script = `import { loadWasmBackend } from ${JSON.stringify(loader)};
const bes = await Promise.all([1, 2, 3].map(() => loadWasmBackend({ threads: 1 })));
console.log(JSON.stringify(bes.map((b) => b.simd)));`;
      const { NODE_TEST_CONTEXT: _, MINIGPT_WASM_SIMD: __, ...env } = process.env;
      const r = spawnSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], { env, encoding: "utf8" });
      assert.equal(r.status, 0, r.stderr);
      assert.deepEqual(JSON.parse(r.stdout.trim()), ["relaxed", "relaxed", "relaxed"]);
    });

    test("attention reads nothing past its arrays: each array ending at the memory's last byte", async () => {
      // attention reads a batch's rows once before its heads (attention.as, touch): those reads must
      // stop at the array's end, which may be the end of the memory. Blocks of 288 and 96 bytes: not
      // whole groups of the four cache lines a pass reads at a time. Then hs 8 and T 8, where the
      // tiles read and write the arrays in place (no padded copies).
      for (const [B, T, C, nh] of [
        [2, 3, 8, 2],
        [2, 8, 16, 2],
      ] as const)
        for (const flavour of ["plain", "relaxed"] as const) {
          const sizes = { qkv: B * T * 3 * C, out: B * T * C, lse: B * nh * T, dqkv: B * T * 3 * C, dout: B * T * C };
          type Name = keyof typeof sizes;
          const memory = new WebAssembly.Memory({ initial: 32, maximum: 32, shared: true });
          const instance = await WebAssembly.instantiate(await compile(flavour), { env: { memory } });
          const x = instance.exports as unknown as Record<string, (...a: number[]) => number>;
          const end = memory.buffer.byteLength;
          /** forward then backward with every array at its own place above 1 MiB, `last` moved to end at the memory's end */
          const run = (last: Name | null) => {
            const at = {} as Record<Name, number>;
            let p = 1 << 20;
            for (const [name, n] of Object.entries(sizes) as [Name, number][]) {
              at[name] = p;
              p += n * 4 + 64;
            }
            if (last) at[last] = end - sizes[last] * 4;
            const view = (name: Name) => new Float32Array(memory.buffer, at[name], sizes[name]);
            view("qkv").set(Array.from({ length: sizes.qkv }, (_, i) => Math.sin(i * 0.7)));
            view("dout").set(Array.from({ length: sizes.dout }, (_, i) => Math.cos(i * 0.3)));
            view("dqkv").fill(0);
            x.attentionForward?.(at.out, at.lse, 0, at.qkv, B, T, C, nh, 0, B * nh, p);
            x.attentionBackward?.(at.dqkv, at.dout, at.qkv, at.out, at.lse, 0, 0, B, T, C, nh, 0, B * nh, p);
            return [...view("out"), ...view("dqkv")];
          };
          const want = run(null);
          for (const last of Object.keys(sizes) as Name[]) assert.deepEqual(run(last), want, `${flavour}, T ${T}: ${last} at the end`);
        }
    });

    test("MINIGPT_MATMUL_TILE picks the matmul tile; another value is an error", async () => {
      const before = process.env.MINIGPT_MATMUL_TILE;
      try {
        process.env.MINIGPT_MATMUL_TILE = "3x12";
        assert.equal(chooseMatmulTile(), "3x12");
        const be = await loadWasmBackend({ threads: 1 });
        assert.equal(be.tile, "3x12");
        be.dispose();
        process.env.MINIGPT_MATMUL_TILE = "4x8";
        assert.equal(chooseMatmulTile(), "4x8");
        process.env.MINIGPT_MATMUL_TILE = "8x8";
        assert.throws(() => chooseMatmulTile(), /MINIGPT_MATMUL_TILE=8x8: use 4x8 or 3x12/);
      } finally {
        if (before === undefined) delete process.env.MINIGPT_MATMUL_TILE;
        else process.env.MINIGPT_MATMUL_TILE = before;
      }
    });

    test("arrays outside the heap fall back to ref and are counted", async () => {
      const be = await loadWasmBackend({ threads: 1 });
      const a = new Float64Array([1, 2, 3, 4, 5, 6]);
      const b = new Float64Array([1, 0, 0, 1, 1, 1]);
      const out = new Float64Array(4);
      be.matmul(out, a, b, 2, 3, 2, false);
      assert.deepEqual([...out], [4, 5, 10, 11]);
      const plain = new Float32Array([1, -2, 3]);
      be.reluForward(plain, plain, 3);
      assert.deepEqual([...plain], [1, 0, 3]);
      assert.equal(be.stats.fallback, 2);
      assert.equal(be.stats.fast, 0);
    });

    test("views made before the memory grew still take the fast path", async () => {
      const be = await loadWasmBackend({ threads: 1 });
      const x = f32(5);
      x.set([1, -2, 3, -4, 5]);
      const before = heap().memory.buffer.byteLength;
      const big = heap().alloc(before); // forces a grow
      assert.ok(heap().memory.buffer.byteLength > before);
      assert.notEqual(x.buffer, heap().memory.buffer);
      be.reluForward(x, x, 5);
      assert.deepEqual([...x], [1, 0, 3, 0, 5]);
      assert.equal(be.stats.fast, 1);
      assert.equal(be.stats.fallback, 0);
      heap().release(big, before);
    });

    test("useBackend('wasm') loads it", async () => {
      const { useBackend, backend } = await import("../src/kernels/index.js");
      const be = await useBackend("wasm", { threads: 2 });
      assert.equal(be.name, "wasm");
      assert.equal(backend(), be);
      (be as WasmBackend).dispose();
      await useBackend("ref");
    });
  });
}

// keep the type import used when the file is type-checked alone
export type { FloatArray };
