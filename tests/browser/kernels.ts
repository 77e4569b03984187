// The page script of tests/browser/kernels.html (compiled by tsc to dist/tests/browser/kernels.js, so
// it imports the compiled dist/src modules a browser would load). It runs the wasm kernels against
// their ref twins in the page and reports the differences; tests/browser.test.ts drives it through
// Playwright and asserts. It uses no Node API.
//
// The cases and their tolerances are tests/kernel-cases.ts, shared with tests/kernels-wasm.test.ts.
import { loadWasmBackend, type MatmulTile, type SimdFlavour, type WasmBackend } from "../../src/kernels/wasm/loader.js";
import { Rng } from "../../src/random.js";
import {
  activationCases,
  attentionCases,
  type Check,
  layernormCases,
  matmulCases,
  sampleTemperatureCases,
  softmaxCrossEntropyCases,
} from "../kernel-cases.js";
import { difference } from "../kernel-data.js";

export interface RunOptions {
  /** threads for loadWasmBackend; undefined: its default (navigator.hardwareConcurrency here) */
  threads?: number;
  simd?: SimdFlavour;
  /** matmul's register tile; undefined: the loader's default (4x8 in a browser) */
  tile?: MatmulTile;
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
  tile: MatmulTile;
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
  const check: Check = (name, got, want, rel, abs) => {
    out.push(compare(name, got, want, rel, abs));
  };
  // matmul: odd shapes, and 256x128x300, which 2 threads split
  matmulCases(
    be,
    rng,
    [
      [1, 1, 1],
      [1, 7, 65],
      [7, 1, 127],
      [3, 65, 7],
      [65, 127, 33],
      [127, 65, 1],
      [7, 127, 65],
      [256, 128, 300],
    ],
    check,
  );
  layernormCases(
    be,
    rng,
    [
      [1, 1],
      [7, 65],
      [3, 768],
      [65, 127],
    ],
    check,
  );
  // gelu and relu: 200,003 elements are split over 2 threads
  activationCases(be, rng, [1, 7, 65, 1023, 200_003], check);
  // softmax: 3x50257 is split over 2 threads
  softmaxCrossEntropyCases(
    be,
    rng,
    [
      [1, 1],
      [7, 65],
      [65, 7],
      [3, 50257],
    ],
    check,
  );
  // sampling: one draw from softmax(logits / T), on the logits where they are (this thread only),
  // up to GPT-2's 50,257 logits; the webgpu backend has no such kernel (sampleToken copies its
  // logits to the heap and draws there, tests/webgpu-generate.test.ts)
  sampleTemperatureCases(be, rng, [1, 7, 255, 257, 4099, 50257], check);
  // attention: 4,64,128,4 is split over 2 threads
  attentionCases(
    be,
    rng,
    [
      [1, 1, 4, 1],
      [2, 7, 12, 3],
      [1, 65, 20, 2],
      [1, 127, 6, 2],
      [4, 64, 128, 4],
    ],
    check,
  );
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
        tile: be.tile,
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
