// The page script of tests/browser/model.html (compiled by tsc to dist/tests/browser/model.js): the
// whole engine in a browser. It fetches a PyTorch fixture folder (tests/fixtures/NAME) over HTTP,
// builds the model on the wasm backend (its Web Workers when threads > 1) and runs
// tests/fixture-check.ts: logits, loss, every gradient and the weights after AdamW steps against
// PyTorch's. tests/browser.test.ts drives it through Playwright and asserts. It imports the library
// through src/browser.ts, the entry without Node, as a web page would (model.html's import map
// resolves js-tiktoken's GPT-2 ranks, the library's one npm import).
import {
  configFromHuggingFace,
  DataParallel,
  GPT,
  gpt2Tokenizer,
  makeConfig,
  Rng,
  readSafetensors,
  scope,
  Tensor,
  useBackend,
  weightsFromSafetensors,
} from "../../src/browser.js";
import type { SimdFlavour, WasmBackend } from "../../src/kernels/wasm/loader.js";
import { checkFixture, type FixtureCheck, type FixtureData } from "../fixture-check.js";

export interface ModelReport {
  crossOriginIsolated: boolean;
  simd: SimdFlavour;
  threads: number;
  /** kernel calls the backend split over its Web Workers */
  parallel: number;
  checks: FixtureCheck[];
  ms: number;
}

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
  /** run the fixture tests/fixtures/NAME on the wasm backend with `threads` threads */
  fixture(name: string, threads: number): Promise<ModelReport>;
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
}

export interface DataParallelReport {
  /** DataParallel.create gave replicas (null means the page cannot run them) */
  created: boolean;
  threads: number;
  lossDiff: number;
  /** worst over parameters of max |grad_dp - grad_one| / max |grad_one| */
  worstRelDiff: number;
  /** median ms of a forward/backward: data parallel, and kernels split over the pool */
  msDataParallel: number;
  msKernels: number;
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

const B = 8;
const T = 64;

/** a seeded batch of B rows of T tokens (inputs and next-token targets) over 301 ids */
function seededBatch(): { x: number[]; y: number[] } {
  const rng = new Rng(3);
  const ids = Array.from({ length: B * (T + 1) }, () => rng.int(301));
  const x: number[] = [];
  const y: number[] = [];
  for (let b = 0; b < B; b++) {
    x.push(...ids.slice(b * (T + 1), b * (T + 1) + T));
    y.push(...ids.slice(b * (T + 1) + 1, (b + 1) * (T + 1)));
  }
  return { x, y };
}

const seededModel = () => new GPT(makeConfig({ vocabSize: 301, blockSize: T, nLayer: 2, nHead: 4, nEmbd: 256 }), 7);

function gradsOf(model: GPT): Map<string, Float32Array> {
  const grads = new Map<string, Float32Array>();
  for (const [name, p] of model.params) grads.set(name, Float32Array.from((p.grad as Tensor).data));
  return grads;
}

/** worst over tensors of max |a - b| / max |b| */
function worstRelDiff(a: Map<string, Float32Array>, b: Map<string, Float32Array>): number {
  let worst = 0;
  for (const [name, want] of b) {
    const got = a.get(name);
    if (!got || got.length !== want.length) return Number.POSITIVE_INFINITY;
    let diff = 0;
    let scale = 0;
    for (let i = 0; i < want.length; i++) {
      diff = Math.max(diff, Math.abs((got[i] as number) - (want[i] as number)));
      scale = Math.max(scale, Math.abs(want[i] as number));
    }
    worst = Math.max(worst, diff / scale);
  }
  return worst;
}

const median = (xs: number[]) => [...xs].sort((p, q) => p - q)[xs.length >> 1] as number;

/** loss and every gradient of one forward/backward of a seeded model on the current backend */
function lossAndGrads(): { loss: number; grads: Map<string, Float32Array> } {
  const model = seededModel();
  try {
    const { x, y } = seededBatch();
    return scope(() => {
      const { loss } = model.forward(Tensor.ints(x, [B, T]), { targets: Tensor.ints(y, [B, T]) });
      if (!loss) throw new Error("no loss");
      loss.backward();
      return { loss: loss.item(), grads: gradsOf(model) };
    });
  } finally {
    model.dispose();
  }
}

const api: ModelPageApi = {
  gpt2: (text) => gpt2Tokenizer().encode(text),
  async dataParallel() {
    const be = (await useBackend("wasm", { threads: 2 })) as WasmBackend;
    const model = seededModel();
    const dp = await DataParallel.create(model, 2);
    try {
      const { x, y } = seededBatch();
      const one = (): number =>
        scope(() => {
          model.zeroGrad();
          const l = model.forward(Tensor.ints(x, [B, T]), { targets: Tensor.ints(y, [B, T]) }).loss as Tensor;
          l.backward();
          return l.item();
        });
      const split = (): number =>
        scope(() => {
          model.zeroGrad();
          return (dp as DataParallel).forwardBackward(Tensor.ints(x, [B, T]), Tensor.ints(y, [B, T]), 1);
        });
      const lossOne = one();
      const want = gradsOf(model);
      if (!dp) return { created: false, threads: 1, lossDiff: Number.NaN, worstRelDiff: Number.NaN, msDataParallel: 0, msKernels: 0 };
      const lossDp = split();
      const got = gradsOf(model);
      const time = (f: () => number) =>
        median(
          Array.from({ length: 5 }, () => {
            const t0 = performance.now();
            f();
            return performance.now() - t0;
          }),
        );
      return {
        created: true,
        threads: dp.threads,
        lossDiff: Math.abs(lossDp - lossOne),
        worstRelDiff: worstRelDiff(got, want),
        msDataParallel: time(split),
        msKernels: time(one),
      };
    } finally {
      dp?.dispose();
      model.dispose();
      await useBackend("ref");
      be.dispose();
    }
  },
  async backends(threads) {
    await useBackend("ref");
    const want = lossAndGrads();
    const be = (await useBackend("wasm", { threads })) as WasmBackend;
    try {
      const got = lossAndGrads();
      const grads: BackendsReport["grads"] = [...want.grads].map(([name, g]) => ({
        name,
        relDiff: worstRelDiff(new Map([[name, got.grads.get(name) ?? new Float32Array(0)]]), new Map([[name, g]])),
      }));
      return { threads: be.threads, parallel: be.stats.parallel, lossDiff: Math.abs(got.loss - want.loss), grads };
    } finally {
      await useBackend("ref");
      be.dispose();
    }
  },

  async fixture(name, threads) {
    const base = `/tests/fixtures/${name}/`;
    const [config, weights, expected, json, batch] = await Promise.all([
      fetchJson(`${base}config.json`),
      fetchBytes(`${base}model.safetensors`),
      fetchBytes(`${base}expected.safetensors`),
      fetchJson(`${base}expected.json`),
      fetchBytes(`${base}batch.safetensors`),
    ]);
    const be = (await useBackend("wasm", { threads })) as WasmBackend;
    try {
      const model = new GPT(configFromHuggingFace(config, `${base}config.json`));
      const t0 = performance.now();
      let checks: FixtureCheck[];
      try {
        model.loadWeights(weightsFromSafetensors(readSafetensors(weights, `${base}model.safetensors`), base), base);
        const data: FixtureData = {
          expected: readSafetensors(expected, `${base}expected.safetensors`).tensors,
          json: json as unknown as FixtureData["json"],
          batch: readSafetensors(batch, `${base}batch.safetensors`).tensors,
        };
        checks = checkFixture(model, data);
      } finally {
        model.dispose();
      }
      return {
        crossOriginIsolated: globalThis.crossOriginIsolated,
        simd: be.simd,
        threads: be.threads,
        parallel: be.stats.parallel,
        checks,
        ms: performance.now() - t0,
      };
    } finally {
      await useBackend("ref");
      be.dispose();
    }
  },
};

(globalThis as unknown as { minigptModel: ModelPageApi }).minigptModel = api;
