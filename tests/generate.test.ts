import assert from "node:assert/strict";
import { test } from "node:test";
import { generate } from "../src/generate/generate.js";
import { nextTokenProbs, sampleToken } from "../src/generate/sample.js";
import { makeConfig } from "../src/nn/config.js";
import { GPT } from "../src/nn/gpt.js";
import { Rng } from "../src/random.js";

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
