import assert from "node:assert/strict";
import { test } from "node:test";
import { generate, nextLogitsUncached } from "../src/generate/generate.js";
import { KVCache } from "../src/generate/kvcache.js";
import { BACKEND_SOFTMAX_MIN_V, nextTokenProbs, sampleToken, withSuppressed } from "../src/generate/sample.js";
import { useBackend } from "../src/kernels/index.js";
import { makeConfig } from "../src/nn/config.js";
import { DecodeBuffers } from "../src/nn/decode-step.js";
import { GPT } from "../src/nn/gpt.js";
import { Rng } from "../src/random.js";
import { Tensor } from "../src/tensor/tensor.js";

const logits = [2.0, 1.0, 0.5, 3.0, -1.0];
const softmax = (x: number[]) => {
  const m = Math.max(...x);
  const e = x.map((v) => Math.exp(v - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
};

test("temperature divides the logits", () => {
  const p = nextTokenProbs(logits, { temperature: 0.5, topK: 0, topP: 1 });
  const want = softmax(logits.map((v) => v / 0.5));
  for (let i = 0; i < 5; i++) assert.ok(Math.abs((p[i] as number) - (want[i] as number)) < 1e-12);
});

test("top-k keeps the k largest and renormalises", () => {
  const p = nextTokenProbs(logits, { temperature: 1, topK: 2, topP: 1 });
  const want = softmax([2.0, 3.0]);
  assert.deepEqual([p[1], p[2], p[4]], [0, 0, 0]);
  assert.ok(Math.abs((p[0] as number) - (want[0] as number)) < 1e-12);
  assert.ok(Math.abs((p[3] as number) - (want[1] as number)) < 1e-12);
});

test("top-p keeps the smallest prefix whose mass reaches p", () => {
  const full = softmax(logits); // sorted: idx3 .665, idx0 .245, idx1 .090, idx2 .055, idx4 .012 (approx)
  const p = nextTokenProbs(logits, { temperature: 1, topK: 0, topP: 0.8 });
  // 0.665 < 0.8, so idx0 is kept too (0.665+0.245 = 0.91 >= 0.8), then stop
  const mass = (full[3] as number) + (full[0] as number);
  assert.ok(Math.abs((p[3] as number) - (full[3] as number) / mass) < 1e-12);
  assert.ok(Math.abs((p[0] as number) - (full[0] as number) / mass) < 1e-12);
  assert.deepEqual([p[1], p[2], p[4]], [0, 0, 0]);
  const tiny = nextTokenProbs(logits, { temperature: 1, topK: 0, topP: 0.01 });
  assert.equal(tiny[3], 1);
});

test("temperature 0 is greedy; sampling follows the distribution", () => {
  const rng = new Rng(3);
  assert.equal(sampleToken(logits, { temperature: 0, topK: 0, topP: 1 }, rng), 3);
  const counts = new Array(5).fill(0);
  for (let i = 0; i < 20000; i++) counts[sampleToken(logits, { temperature: 1, topK: 0, topP: 1 }, rng)]++;
  const want = softmax(logits);
  for (let i = 0; i < 5; i++) assert.ok(Math.abs(counts[i] / 20000 - (want[i] as number)) < 0.015, `token ${i}`);
});

test("KV cache: cached and uncached greedy generation agree for 3x blockSize tokens", () => {
  const model = new GPT(makeConfig({ vocabSize: 23, blockSize: 16, nLayer: 2, nHead: 2, nEmbd: 16 }), 12);
  // larger weights than the init so that the greedy path is not a constant
  for (const t of model.params.values()) for (let i = 0; i < t.size; i++) t.data[i] = (t.data[i] as number) * 50;
  const prompt = [1, 5, 7];
  const opts = { temperature: 0, maxNewTokens: 48 };
  const cached = generate(model, prompt, { ...opts, cache: true });
  const uncached = generate(model, prompt, { ...opts, cache: false });
  assert.equal(cached.length, 48);
  assert.deepEqual(cached, uncached);
  assert.ok(new Set(cached).size > 3, "the sequence should not be trivial");
  // and with sampling, the same seed gives the same text either way
  const s1 = generate(model, prompt, { temperature: 1, maxNewTokens: 40, seed: 5, cache: true });
  const s2 = generate(model, prompt, { temperature: 1, maxNewTokens: 40, seed: 5, cache: false });
  assert.deepEqual(s1, s2);
});

test("stop ids end generation", () => {
  const model = new GPT(makeConfig({ vocabSize: 5, blockSize: 8, nLayer: 1, nHead: 1, nEmbd: 4 }), 1);
  const out = generate(model, [0], { temperature: 0, maxNewTokens: 10, stopIds: [0, 1, 2, 3, 4] });
  assert.deepEqual(out, []);
});

test("suppressed ids are never drawn, under every sampling setting, cached or not", () => {
  const model = new GPT(makeConfig({ vocabSize: 23, blockSize: 16, nLayer: 2, nHead: 2, nEmbd: 16 }), 12);
  for (const t of model.params.values()) for (let i = 0; i < t.size; i++) t.data[i] = (t.data[i] as number) * 50;
  const prompt = [1, 5, 7];
  // the tokens greedy decoding picks most: suppressing them must change what comes out
  const greedy = generate(model, prompt, { temperature: 0, maxNewTokens: 40 });
  const counts = new Map<number, number>();
  for (const t of greedy) counts.set(t, (counts.get(t) ?? 0) + 1);
  const suppressIds = [...counts.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, 3)
    .map(([t]) => t);
  const settings = [
    { temperature: 0, topK: 0, topP: 1 },
    { temperature: 1.5, topK: 0, topP: 1 },
    { temperature: 1, topK: 4, topP: 1 },
    { temperature: 1, topK: 0, topP: 0.9 },
  ];
  for (const s of settings) {
    for (const cache of [true, false]) {
      const out = generate(model, prompt, { ...s, maxNewTokens: 60, seed: 9, cache, suppressIds });
      assert.equal(out.length, 60);
      const hit = out.filter((t) => suppressIds.includes(t));
      assert.deepEqual(hit, [], `${JSON.stringify(s)} cache ${cache}: drew suppressed ${hit.join(",")}`);
    }
  }
  // and without suppression the same settings do draw them (so the check above can fail)
  const free = settings.flatMap((s) => generate(model, prompt, { ...s, maxNewTokens: 60, seed: 9 }));
  assert.ok(free.some((t) => suppressIds.includes(t)));
});

test("withSuppressed: the suppressed logits become -Infinity in a copy; the wasm softmax draws none", async () => {
  const V = BACKEND_SOFTMAX_MIN_V + 5;
  const logits = new Float32Array(V).fill(-2);
  logits[7] = 30; // would win almost every draw
  logits[V - 1] = 29;
  const masked = withSuppressed(logits, [7, V - 1]);
  assert.equal(logits[7], 30, "the input is not modified");
  assert.equal(masked[7], -Infinity);
  assert.equal(withSuppressed(logits, []), logits);
  for (const name of ["ref", "wasm"] as const) {
    await useBackend(name, { threads: 1 });
    try {
      const rng = new Rng(4);
      for (let i = 0; i < 200; i++) {
        const t = sampleToken(masked, { temperature: 1, topK: 0, topP: 1 }, rng);
        assert.ok(t !== 7 && t !== V - 1, `${name}: drew ${t}`);
      }
      assert.notEqual(sampleToken(masked, { temperature: 0, topK: 0, topP: 1 }, rng), 7);
    } finally {
      await useBackend("ref");
    }
  }
});

test("plain temperature sampling draws what the float64 distribution gives, on the wasm backend too", async () => {
  const V = BACKEND_SOFTMAX_MIN_V * 2 + 3;
  const rng = new Rng(11);
  const logits = Float32Array.from({ length: V }, () => (rng.random() * 2 - 1) * 4);
  const o = { temperature: 0.7, topK: 0, topP: 1 };
  // the definition: walk nextTokenProbs (float64) from the same uniform draws
  const probs = nextTokenProbs(logits, o);
  const walk = (r: number) => {
    for (let i = 0; i < V; i++) {
      r -= probs[i] as number;
      if (r < 0) return i;
    }
    return V - 1;
  };
  const draws = (seed: number, n: number) => {
    const a = new Rng(seed);
    return Array.from({ length: n }, () => walk(a.random()));
  };
  const want = draws(3, 300);
  const onRef = new Rng(3);
  assert.deepEqual(
    Array.from({ length: 300 }, () => sampleToken(logits, o, onRef)),
    want,
  );
  await useBackend("wasm", { threads: 1 });
  try {
    // fp32 softmax: a draw may only differ where r lands within rounding of a token boundary
    const onWasm = new Rng(3);
    const got = Array.from({ length: 300 }, () => sampleToken(logits, o, onWasm));
    const differ = got.filter((t, i) => t !== want[i]).length;
    assert.ok(differ <= 1, `${differ} of 300 draws differ`);
  } finally {
    await useBackend("ref");
  }
});

test("plain temperature sampling on the wasm backend: logits on the heap (read in place) and off it draw the same", async () => {
  await useBackend("wasm", { threads: 1 });
  try {
    const V = 50257;
    const rng = new Rng(5);
    const onHeap = new Tensor([V], "f32", false, false);
    for (let i = 0; i < V; i++) onHeap.data[i] = (rng.random() * 2 - 1) * 5;
    const offHeap = Float32Array.from(onHeap.data);
    const plain = Array.from(offHeap);
    const o = { temperature: 0.8, topK: 0, topP: 1 };
    const draws = (logits: ArrayLike<number>) => {
      const r = new Rng(8);
      return Array.from({ length: 100 }, () => sampleToken(logits, o, r));
    };
    const want = draws(offHeap);
    assert.deepEqual(draws(onHeap.data), want);
    assert.deepEqual(draws(plain), want);
    assert.deepEqual(Array.from(onHeap.data), plain, "the logits are not modified");
    onHeap.dispose();
  } finally {
    await useBackend("ref");
  }
});

test("KV cache on the wasm backend (2 threads): one token at a time matches the uncached model", async () => {
  // wide enough that the one-token work is split over the threads (>= 2^21 floats of weights: the
  // attention block, the MLP and the LM head)
  const model = new GPT(makeConfig({ vocabSize: 2100, blockSize: 24, nLayer: 2, nHead: 4, nEmbd: 1024 }), 3);
  const ids = [5, 17, 3, 1000, 42, 7, 7, 900];
  const want = nextLogitsUncached(model, ids);
  await useBackend("wasm", { threads: 2 });
  try {
    const cache = new KVCache(model);
    let got: ArrayLike<number> = [];
    for (const id of ids) got = cache.append([id]);
    cache.dispose();
    let worst = 0;
    let scale = 0;
    for (let i = 0; i < want.length; i++) {
      worst = Math.max(worst, Math.abs((got[i] as number) - (want[i] as number)));
      scale = Math.max(scale, Math.abs(want[i] as number));
    }
    assert.ok(worst <= 1e-4 * scale, `max |diff| ${worst} with max |logit| ${scale}`);
  } finally {
    await useBackend("ref");
  }
});

test("a prompt as rows of one decode step (KVCache.decodeRows, the server's prefill): the last row's logits only, the uncached model's", async () => {
  const model = new GPT(makeConfig({ vocabSize: 70, blockSize: 24, nLayer: 2, nHead: 4, nEmbd: 64 }), 5);
  const ids = [5, 17, 3, 60, 42, 7, 7, 9, 1, 2, 3];
  for (const backend of ["ref", "wasm"] as const) {
    await useBackend(backend, { threads: 1 });
    try {
      const cache = new KVCache(model);
      const buffers = new DecodeBuffers(model.config, ids.length);
      // the prompt in two steps: the first without logits, the second's last row with them
      const first = model.decode(cache.decodeRows(ids.slice(0, 6), false), buffers);
      assert.equal(first.length, 0, "no row wanted logits");
      cache.advance(6);
      const rows = cache.decodeRows(ids.slice(6), true);
      assert.deepEqual(
        rows.map((r) => [r.pos, r.logits]),
        [6, 7, 8, 9, 10].map((p) => [p, p === 10]),
      );
      const got = model.decode(rows, buffers).slice();
      cache.advance(rows.length);
      assert.equal(got.length, model.config.vocabSize, "one row of logits");
      const close = (what: string, a: ArrayLike<number>, b: ArrayLike<number>) => {
        let worst = 0;
        for (let i = 0; i < b.length; i++) worst = Math.max(worst, Math.abs((a[i] as number) - (b[i] as number)));
        assert.ok(worst <= 1e-4, `${what}: max |diff| ${worst}`);
      };
      close(`${backend}: prompt rows`, got, nextLogitsUncached(model, ids));
      // the cache holds the prompt: the next token decodes against it
      close(`${backend}: next token`, cache.append([11]), nextLogitsUncached(model, [...ids, 11]));
      buffers.dispose();
      cache.dispose();
    } finally {
      await useBackend("ref");
    }
  }
});
