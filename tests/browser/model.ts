// The page script of tests/browser/model.html (compiled by tsc to dist/tests/browser/model.js): the
// whole engine in a browser. It fetches a PyTorch fixture folder (tests/fixtures/NAME) over HTTP,
// builds the model on the wasm backend (its Web Workers when threads > 1) and runs
// tests/fixture-check.ts: logits, loss, every gradient and the weights after AdamW steps against
// PyTorch's. tests/browser.test.ts drives it through Playwright and asserts. It imports the library
// through src/browser.ts, the entry without Node, as a web page would (model.html's import map
// resolves js-tiktoken's GPT-2 ranks, the library's one npm import).
import {
  configFromHuggingFace,
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

/** loss and every gradient of one forward/backward of a seeded model on the current backend */
function lossAndGrads(): { loss: number; grads: Map<string, Float32Array> } {
  const model = new GPT(makeConfig({ vocabSize: 301, blockSize: 64, nLayer: 2, nHead: 4, nEmbd: 256 }), 7);
  try {
    const rng = new Rng(3);
    const B = 8;
    const T = 64;
    const ids = Array.from({ length: B * (T + 1) }, () => rng.int(301));
    const x: number[] = [];
    const y: number[] = [];
    for (let b = 0; b < B; b++) {
      x.push(...ids.slice(b * (T + 1), b * (T + 1) + T));
      y.push(...ids.slice(b * (T + 1) + 1, (b + 1) * (T + 1)));
    }
    return scope(() => {
      const { loss } = model.forward(Tensor.ints(x, [B, T]), { targets: Tensor.ints(y, [B, T]) });
      if (!loss) throw new Error("no loss");
      loss.backward();
      const grads = new Map<string, Float32Array>();
      for (const [name, p] of model.params) grads.set(name, Float32Array.from((p.grad as Tensor).data));
      return { loss: loss.item(), grads };
    });
  } finally {
    model.dispose();
  }
}

const api: ModelPageApi = {
  gpt2: (text) => gpt2Tokenizer().encode(text),
  async backends(threads) {
    await useBackend("ref");
    const want = lossAndGrads();
    const be = (await useBackend("wasm", { threads })) as WasmBackend;
    try {
      const got = lossAndGrads();
      const grads: BackendsReport["grads"] = [];
      for (const [name, g] of want.grads) {
        const w = got.grads.get(name) as Float32Array;
        let diff = 0;
        let scale = 0;
        for (let i = 0; i < g.length; i++) {
          diff = Math.max(diff, Math.abs((w[i] as number) - (g[i] as number)));
          scale = Math.max(scale, Math.abs(g[i] as number));
        }
        grads.push({ name, relDiff: w.length === g.length ? diff / scale : Number.POSITIVE_INFINITY });
      }
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
