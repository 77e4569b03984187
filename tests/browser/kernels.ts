// The page script of tests/browser/kernels.html (compiled by tsc to dist/tests/browser/kernels.js, so
// it imports the compiled dist/src modules a browser would load). It runs the wasm kernels against
// their ref twins in the page and reports the differences; tests/browser.test.ts drives it through
// Playwright and asserts. It uses no Node API.
//
// Tolerances as in tests/kernels-wasm.test.ts (fp32 kernels vs the float64-accumulating reference):
// - matmul:       |diff| <= 1e-6 · K · max|A| · max|B|  (+ 1e-6 · max|out before| when accumulating)
// - elementwise:  |diff| <= 1e-6 · |ref| (+ a small floor where exp/cancellation makes that meaningless near 0)
// - attention:    |diff| <= 1e-6 · (hs + T) · max|qkv|
import { refBackend } from "../../src/kernels/ref/index.js";
import { loadWasmBackend, type SimdFlavour, type WasmBackend } from "../../src/kernels/wasm/loader.js";
import { Rng } from "../../src/random.js";
import { copy, difference, f32, maxAbs, rand } from "../kernel-data.js";

export interface RunOptions {
  /** threads for loadWasmBackend; undefined: its default (navigator.hardwareConcurrency here) */
  threads?: number;
  simd?: SimdFlavour;
}

export interface CaseReport {
  name: string;
  /** max |wasm - ref| over the case's elements (Infinity when a NaN appeared) */
  maxAbsDiff: number;
  /** max over elements of |diff| / tolerance: <= 1 passes */
  worst: number;
}

export interface KernelReport {
  crossOriginIsolated: boolean;
  hardwareConcurrency: number;
  simd: SimdFlavour;
  threads: number;
  stats: { fast: number; fallback: number; parallel: number };
  cases: CaseReport[];
  ms: number;
}

export interface PageApi {
  /** load the backend, run every case, dispose it */
  run(options: RunOptions): Promise<KernelReport>;
  /** load the backend with its defaults and report simd and threads only */
  defaults(): Promise<{ simd: SimdFlavour; threads: number; hardwareConcurrency: number }>;
}

/** compare elementwise with tolerance rel·|want| + abs */
function compare(name: string, got: ArrayLike<number>, want: ArrayLike<number>, rel: number, abs: number): CaseReport {
  const { maxAbsDiff, worst } = difference(got, want, rel, abs);
  return { name: got.length === want.length ? name : `${name} (length ${got.length} vs ${want.length})`, maxAbsDiff, worst };
}

function suite(be: WasmBackend, rng: Rng): CaseReport[] {
  const out: CaseReport[] = [];

  // matmul: odd shapes, and 256x128x300, which 2 threads split
  const shapes: [number, number, number][] = [
    [1, 1, 1],
    [1, 7, 65],
    [7, 1, 127],
    [3, 65, 7],
    [65, 127, 33],
    [127, 65, 1],
    [7, 127, 65],
    [256, 128, 300],
  ];
  for (const [M, K, N] of shapes) {
    for (const kind of ["matmul", "matmulBT", "matmulAT"] as const) {
      for (const acc of [false, true]) {
        const a = rand(rng, M * K, 2);
        const b = rand(rng, K * N, 0.5);
        const init = rand(rng, M * N, 3);
        const got = copy(init);
        const want = new Float32Array(init);
        be[kind](got, a, b, M, K, N, acc);
        refBackend[kind](want, a, b, M, K, N, acc);
        const tol = 1e-6 * K * maxAbs(a) * maxAbs(b) + (acc ? 1e-6 * maxAbs(init) : 0) + 1e-30;
        out.push(compare(`${kind} ${M}x${K}x${N} acc=${acc}`, got, want, 0, tol));
      }
    }
  }

  // layernorm forward and backward
  for (const [N, C] of [
    [1, 1],
    [7, 65],
    [3, 768],
    [65, 127],
  ] as [number, number][]) {
    const x = rand(rng, N * C, 2);
    for (let i = 0; i < N * C; i++) x[i] = (x[i] as number) + 0.5;
    const w = rand(rng, C);
    const b = rand(rng, C);
    const o = f32(N * C);
    const mean = f32(N);
    const rstd = f32(N);
    const wo = new Float32Array(N * C);
    const wmean = new Float32Array(N);
    const wrstd = new Float32Array(N);
    be.layernormForward(o, mean, rstd, x, w, b, N, C, 1e-5);
    refBackend.layernormForward(wo, wmean, wrstd, x, w, b, N, C, 1e-5);
    out.push(compare(`layernorm mean ${N}x${C}`, mean, wmean, 1e-6, 1e-7));
    out.push(compare(`layernorm rstd ${N}x${C}`, rstd, wrstd, 1e-6, 0));
    out.push(compare(`layernorm out ${N}x${C}`, o, wo, 1e-6, 1e-6 * maxAbs(wo)));

    const dout = rand(rng, N * C);
    const dx = f32(N * C).fill(0);
    const dw = f32(C).fill(0);
    const db = f32(C).fill(0);
    const wdx = new Float32Array(N * C);
    const wdw = new Float32Array(C);
    const wdb = new Float32Array(C);
    be.layernormBackward(dx, dw, db, dout, x, w, copy(wmean), copy(wrstd), N, C);
    refBackend.layernormBackward(wdx, wdw, wdb, dout, x, w, wmean, wrstd, N, C);
    const s = maxAbs(wrstd) * maxAbs(w);
    out.push(compare(`layernorm dx ${N}x${C}`, dx, wdx, 1e-6, 1e-6 * (4 * s + 1)));
    out.push(compare(`layernorm dw ${N}x${C}`, dw, wdw, 1e-6, 1e-6 * N * 4));
    out.push(compare(`layernorm db ${N}x${C}`, db, wdb, 1e-6, 1e-6 * N));
  }

  // gelu: 200,003 elements are split over 2 threads
  for (const n of [1, 7, 65, 1023, 200_003]) {
    const x = rand(rng, n, 6);
    const o = f32(n);
    const wo = new Float32Array(n);
    be.geluForward(o, x, n);
    refBackend.geluForward(wo, x, n);
    out.push(compare(`geluForward ${n}`, o, wo, 1e-6, 1e-7));
    const dout = rand(rng, n);
    const g = f32(n).fill(0);
    const wg = new Float32Array(n);
    be.geluBackward(g, x, dout, n);
    refBackend.geluBackward(wg, x, dout, n);
    out.push(compare(`geluBackward ${n}`, g, wg, 1e-6, 1e-6));
  }

  // softmax: 3x50257 is split over 2 threads
  for (const [N, V] of [
    [1, 1],
    [7, 65],
    [65, 7],
    [3, 50257],
  ] as [number, number][]) {
    const x = rand(rng, N * V, 8);
    const o = f32(N * V);
    const wo = new Float32Array(N * V);
    be.softmax(o, x, N, V);
    refBackend.softmax(wo, x, N, V);
    out.push(compare(`softmax ${N}x${V}`, o, wo, 1e-6, 1e-6 * maxAbs(wo)));
  }

  // attention forward: 4,64,128,4 is split over 2 threads
  for (const [B, T, C, nh] of [
    [1, 1, 4, 1],
    [2, 7, 12, 3],
    [1, 65, 20, 2],
    [1, 127, 6, 2],
    [4, 64, 128, 4],
  ] as [number, number, number, number][]) {
    const qkv = rand(rng, B * T * 3 * C, 1.5);
    const o = f32(B * T * C);
    const lse = f32(B * nh * T);
    const wo = new Float32Array(B * T * C);
    const wlse = new Float32Array(B * nh * T);
    be.attentionForward(o, lse, qkv, B, T, C, nh);
    refBackend.attentionForward(wo, wlse, qkv, B, T, C, nh);
    const tol = 1e-6 * (C / nh + T) * maxAbs(qkv);
    out.push(compare(`attentionForward ${B},${T},${C},${nh} out`, o, wo, 0, tol));
    out.push(compare(`attentionForward ${B},${T},${C},${nh} lse`, lse, wlse, 0, tol * maxAbs(qkv)));
  }
  return out;
}

function hardwareConcurrency(): number {
  return globalThis.navigator?.hardwareConcurrency ?? 0;
}

const api: PageApi = {
  async run(options) {
    const t0 = performance.now();
    const be = await loadWasmBackend(options);
    try {
      const cases = suite(be, new Rng(1234 + (options.threads ?? 0)));
      return {
        crossOriginIsolated: globalThis.crossOriginIsolated,
        hardwareConcurrency: hardwareConcurrency(),
        simd: be.simd,
        threads: be.threads,
        stats: { ...be.stats },
        cases,
        ms: performance.now() - t0,
      };
    } finally {
      be.dispose();
    }
  },
  async defaults() {
    const be = await loadWasmBackend();
    be.dispose();
    return { simd: be.simd, threads: be.threads, hardwareConcurrency: hardwareConcurrency() };
  },
};

(globalThis as unknown as { minigptKernels: PageApi }).minigptKernels = api;
