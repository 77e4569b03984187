// The page script of tests/browser/model.html (compiled by tsc to dist/tests/browser/model.js): the
// whole engine in a browser. `fixture` fetches a PyTorch fixture folder (served at /fixtures/<i>/) over
// HTTP, builds the model on the wasm backend (its Web Workers when threads > 1) and runs
// tests/fixture-check.ts: logits, loss, every gradient and the weights after AdamW steps against
// PyTorch's; `fixtureOnWebGpu` does the same on the webgpu backend through navigator.gpu, and `samplingOnWebGpu` checks its temperature sampling. `backends` holds a wider model's step on split kernels against ref, `dataParallel`
// data parallel against one thread (on this page and in a worker), `gpt2` the GPT-2 tokenizer.
// tests/browser.test.ts drives it through Playwright and asserts. It imports the library
// through src/browser.ts, the entry without Node, as a web page would (model.html's import map
// resolves js-tiktoken's GPT-2 ranks, the library's one npm import).
import { configFromHuggingFace, GPT, gpt2Tokenizer, readSafetensors, useBackend, weightsFromSafetensors } from "../../src/browser.js";
import type { SimdFlavour, WasmBackend } from "../../src/kernels/wasm/loader.js";
import type { WebGpuBackend } from "../../src/kernels/webgpu/index.js";
import { checkFixture, type FixtureCheck, type FixtureData } from "../fixture-check.js";
import { type TemperatureDraws, temperatureDraws } from "../temperature-draws.js";
import { type DataParallelReport, dataParallelReport, lossAndGrads, relDiff } from "./steps.js";

export interface ModelReport {
  crossOriginIsolated: boolean;
  simd: SimdFlavour;
  threads: number;
  /** kernel calls the backend split over its Web Workers */
  parallel: number;
  checks: FixtureCheck[];
  ms: number;
}

export type GpuFixtureReport =
  | {
      /** the adapter the backend's device came from, as it describes itself */
      adapter: string;
      software: boolean;
      checks: FixtureCheck[];
      ms: number;
    }
  /** why this browser gives no WebGPU adapter (one line) */
  | { unavailable: string };

export interface BackendsReport {
  threads: number;
  /** kernel calls the wasm backend split over its Web Workers during the step */
  parallel: number;
  /** |loss_wasm - loss_ref| */
  lossDiff: number;
  /** per parameter: max |grad_wasm - grad_ref| / max |grad_ref| */
  grads: { name: string; relDiff: number }[];
}

export interface ModelPageApi {
  /** run the fixture folder served at URL path `base` ("/fixtures/0/") on the wasm backend with `threads` threads */
  fixture(base: string, threads: number): Promise<ModelReport>;
  /** the same on the webgpu backend (navigator.gpu), or why the browser has no adapter */
  fixtureOnWebGpu(base: string): Promise<GpuFixtureReport>;
  /** plain temperature sampling on the webgpu backend against its float64 definition (tests/temperature-draws.ts), or why there is no adapter */
  samplingOnWebGpu(): Promise<(TemperatureDraws & { adapter: string }) | { unavailable: string }>;
  /**
   * One training step's loss and gradients of a model big enough that its kernels are split over
   * the Web Workers (256 wide, 512 rows a batch), on the wasm backend with `threads` threads against
   * the ref backend, same seeded weights and batch.
   */
  backends(threads: number): Promise<BackendsReport>;
  /** GPT-2 token ids of `text` */
  gpt2(text: string): number[];
  /**
   * The same model's forward/backward split over 2 threads by rows (DataParallel: a replica in a
   * module Web Worker) against one forward/backward with the kernels split, on the wasm backend;
   * and the median time of each over a few steps
   */
  dataParallel(): Promise<DataParallelReport>;
  /** the same, run inside a module Web Worker (as a web app would train) */
  dataParallelInWorker(): Promise<DataParallelReport>;
}

async function fetchBytes(url: string): Promise<Uint8Array> {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
  return new Uint8Array(await r.arrayBuffer());
}

async function fetchJson(url: string): Promise<Record<string, unknown>> {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
  return (await r.json()) as Record<string, unknown>;
}

interface FixtureFiles {
  config: Record<string, unknown>;
  weights: Uint8Array;
  expected: Uint8Array;
  json: Record<string, unknown>;
  batch: Uint8Array;
}

async function fetchFixture(base: string): Promise<FixtureFiles> {
  const [config, weights, expected, json, batch] = await Promise.all([
    fetchJson(`${base}config.json`),
    fetchBytes(`${base}model.safetensors`),
    fetchBytes(`${base}expected.safetensors`),
    fetchJson(`${base}expected.json`),
    fetchBytes(`${base}batch.safetensors`),
  ]);
  return { config, weights, expected, json, batch };
}

/** the fixture's model on the current backend, checked against PyTorch */
async function runFixture(files: FixtureFiles, base: string): Promise<{ checks: FixtureCheck[]; ms: number }> {
  const model = new GPT(configFromHuggingFace(files.config, `${base}config.json`));
  const t0 = performance.now();
  try {
    model.loadWeights(weightsFromSafetensors(readSafetensors(files.weights, `${base}model.safetensors`), base), base);
    const data: FixtureData = {
      expected: readSafetensors(files.expected, `${base}expected.safetensors`).tensors,
      json: files.json as unknown as FixtureData["json"],
      batch: readSafetensors(files.batch, `${base}batch.safetensors`).tensors,
    };
    return { checks: await checkFixture(model, data), ms: performance.now() - t0 };
  } finally {
    model.dispose();
  }
}

const api: ModelPageApi = {
  gpt2: (text) => gpt2Tokenizer().encode(text),
  dataParallel: () => dataParallelReport(),
  dataParallelInWorker: () =>
    new Promise<DataParallelReport>((resolve, reject) => {
      // training where a web app would run it: a module worker, which may Atomics.wait, so data
      // parallel waits and shares kernel halves as in Node (the replica is a worker of this worker)
      const worker = new Worker(new URL("./train-worker.js", import.meta.url), { type: "module" });
      worker.onmessage = (e: MessageEvent<DataParallelReport | { error: string }>) => {
        worker.terminate();
        if ("error" in e.data) reject(new Error(e.data.error));
        else resolve(e.data);
      };
      worker.onerror = (e) => {
        e.preventDefault();
        worker.terminate();
        reject(new Error(`train worker: ${e.message || "error"}`));
      };
      worker.postMessage("run");
    }),
  async backends(threads) {
    await useBackend("ref");
    const want = lossAndGrads();
    const be = (await useBackend("wasm", { threads })) as WasmBackend;
    try {
      const got = lossAndGrads();
      const grads = [...want.grads].map(([name, g]) => ({ name, relDiff: relDiff(got.grads.get(name), g) }));
      return { threads: be.threads, parallel: be.stats.parallel, lossDiff: Math.abs(got.loss - want.loss), grads };
    } finally {
      await useBackend("ref");
      be.dispose();
    }
  },

  async fixture(base, threads) {
    const data = await fetchFixture(base);
    const be = (await useBackend("wasm", { threads })) as WasmBackend;
    try {
      const { checks, ms } = await runFixture(data, base);
      return {
        crossOriginIsolated: globalThis.crossOriginIsolated,
        simd: be.simd,
        threads: be.threads,
        parallel: be.stats.parallel,
        checks,
        ms,
      };
    } finally {
      await useBackend("ref");
      be.dispose();
    }
  },

  async fixtureOnWebGpu(base) {
    const gpu = (navigator as Navigator & { gpu?: GPU }).gpu;
    if (!gpu) return { unavailable: "this Chromium has no navigator.gpu (WebGPU is off: --enable-unsafe-webgpu)" };
    if (!(await gpu.requestAdapter()))
      return { unavailable: "this Chromium offers no WebGPU adapter (no GPU, and no --use-webgpu-adapter=swiftshader)" };
    const data = await fetchFixture(base);
    const be = (await useBackend("webgpu")) as WebGpuBackend;
    try {
      return { adapter: be.adapter.description, software: be.adapter.software, ...(await runFixture(data, base)) };
    } finally {
      await useBackend("ref");
      be.runtime.device.destroy();
    }
  },
  async samplingOnWebGpu() {
    const gpu = (navigator as Navigator & { gpu?: GPU }).gpu;
    if (!gpu) return { unavailable: "this Chromium has no navigator.gpu (WebGPU is off: --enable-unsafe-webgpu)" };
    if (!(await gpu.requestAdapter()))
      return { unavailable: "this Chromium offers no WebGPU adapter (no GPU, and no --use-webgpu-adapter=swiftshader)" };
    const be = (await useBackend("webgpu")) as WebGpuBackend;
    try {
      return { adapter: be.adapter.description, ...(await temperatureDraws()) };
    } finally {
      await useBackend("ref");
      be.runtime.device.destroy();
    }
  },
};

(globalThis as unknown as { minigptModel: ModelPageApi }).minigptModel = api;
