/**
 * `minigpt eval` and evaluateIds against a loss computed here: the text cut into non-overlapping
 * windows of block-size tokens by a loop in this file (the last one shorter), each window run
 * through the model on its own (B = 1, a different batching than evaluate.ts's groups of 16), the
 * cross-entropy of every target taken from the raw logits with a float64 log-softmax, and the
 * nats summed over all tokens and divided by their count. The text is chosen so that evaluate.ts
 * forms groups of unequal size (16 windows, 3 windows, one short window): a mean of per-group
 * means would differ from the per-token mean.
 */
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { saveTokenizer } from "../src/io/folder.js";
import { saveModel } from "../src/io/hf.js";
import { makeConfig } from "../src/nn/config.js";
import { GPT } from "../src/nn/gpt.js";
import { Rng } from "../src/random.js";
import { noGrad, scope, Tensor } from "../src/tensor/tensor.js";
import { CharTokenizer } from "../src/tokenizer/char.js";
import { evaluateIds } from "../src/train/evaluate.js";
import { runCli, tempDir } from "./helpers.js";

const root = tempDir("minigpt-evalloss-");

const T = 16;
// 19 full windows + a 6-token one: 19·16 + 6 targets, so 19·16 + 7 tokens
const N_TOKENS = 19 * T + 7;

/** a text of exactly N_TOKENS characters, some of them multi-byte (so bytes ≠ characters) */
function makeText(): string {
  const rng = new Rng(21);
  const alphabet = "abcdefghij .,é—ü";
  let s = "";
  while ([...s].length < N_TOKENS) s += alphabet[rng.int(alphabet.length)];
  return s;
}

/** a model whose predictions are far from uniform: embeddings scaled up so logits spread out */
function makeModel(vocabSize: number): GPT {
  const model = new GPT(makeConfig({ vocabSize, blockSize: T, nLayer: 2, nHead: 2, nEmbd: 16 }), 7);
  const wte = model.param("transformer.wte.weight");
  for (let i = 0; i < wte.size; i++) wte.data[i] = (wte.data[i] as number) * 60;
  return model;
}

/** the reference: total nats and token count by per-window forward passes and a float64 log-softmax */
function referenceLoss(model: GPT, ids: number[]): { nats: number; tokens: number; perToken: number[] } {
  const V = model.config.vocabSize;
  let nats = 0;
  let tokens = 0;
  const perToken: number[] = [];
  for (let start = 0; start + 1 < ids.length; start += T) {
    const len = Math.min(T, ids.length - 1 - start);
    const x = ids.slice(start, start + len);
    const y = ids.slice(start + 1, start + len + 1);
    const logits = noGrad(() => scope(() => Float64Array.from(model.forward(Tensor.ints(x, [1, len])).logits.data)));
    assert.equal(logits.length, len * V);
    for (let t = 0; t < len; t++) {
      let max = -Infinity;
      for (let v = 0; v < V; v++) max = Math.max(max, logits[t * V + v] as number);
      let z = 0;
      for (let v = 0; v < V; v++) z += Math.exp((logits[t * V + v] as number) - max);
      const nll = -((logits[t * V + (y[t] as number)] as number) - max - Math.log(z));
      perToken.push(nll);
      nats += nll;
      tokens++;
    }
  }
  return { nats, tokens, perToken };
}

const text = makeText();
const tokenizer = CharTokenizer.fromText(text);
const ids = tokenizer.encode(text);
const bytes = new TextEncoder().encode(text).length;

test("the test text has the intended shape", () => {
  assert.equal(ids.length, N_TOKENS);
  assert.ok(bytes > text.length, "some characters are multi-byte");
});

test("evaluateIds: loss, token count, perplexity and bits per byte equal the per-token reference", () => {
  const model = makeModel(tokenizer.vocabSize);
  const ref = referenceLoss(model, ids);
  const want = ref.nats / ref.tokens;
  // the premise: per-token losses vary a lot, so weighting the groups wrongly shows
  const spread = Math.max(...ref.perToken) - Math.min(...ref.perToken);
  assert.ok(spread > 5, `per-token losses spread only ${spread}`);
  const got = evaluateIds(model, Int32Array.from(ids), bytes);
  assert.equal(got.tokens, N_TOKENS - 1);
  assert.ok(Math.abs(got.loss - want) < 1e-5 * want, `loss ${got.loss}, reference ${want}`);
  assert.ok(Math.abs(got.perplexity - Math.exp(want)) < 1e-5 * Math.exp(want), `perplexity ${got.perplexity}`);
  const bpb = ref.nats / Math.LN2 / bytes;
  assert.ok(Math.abs(got.bits_per_byte - bpb) < 1e-5 * bpb, `bits/byte ${got.bits_per_byte}, reference ${bpb}`);
  // other batch sizes group the windows differently but must give the same per-token mean
  for (const batchSize of [1, 3, 7]) {
    const other = evaluateIds(model, Int32Array.from(ids), bytes, { batchSize });
    assert.equal(other.tokens, N_TOKENS - 1);
    assert.ok(Math.abs(other.loss - want) < 1e-5 * want, `batch size ${batchSize}: loss ${other.loss}, reference ${want}`);
  }
  model.dispose();
});

test("minigpt eval --json on a saved model equals the reference", () => {
  const model = makeModel(tokenizer.vocabSize);
  const ref = referenceLoss(model, ids);
  const dir = join(root, "model");
  mkdirSync(dir);
  saveModel(model, dir);
  saveTokenizer(dir, tokenizer);
  model.dispose();
  const file = join(root, "text.txt");
  writeFileSync(file, text);
  for (const backend of ["ref", "wasm"]) {
    const r = runCli(["eval", "--model", dir, "--data", file, "--json", "--backend", backend, "--threads", "1"]);
    assert.equal(r.status, 0, r.stderr);
    const got = JSON.parse(r.stdout) as { loss: number; perplexity: number; tokens: number; bits_per_byte: number };
    const want = ref.nats / ref.tokens;
    assert.equal(got.tokens, N_TOKENS - 1, backend);
    assert.ok(Math.abs(got.loss - want) < 1e-5 * want, `${backend}: loss ${got.loss}, reference ${want}`);
    const bpb = ref.nats / Math.LN2 / bytes;
    assert.ok(Math.abs(got.bits_per_byte - bpb) < 1e-5 * bpb, `${backend}: bits/byte ${got.bits_per_byte}, reference ${bpb}`);
  }
});

test("eval out of tensor memory names --batch-size with its value, in one line, and a lower one scores", () => {
  // logits over a 2^20-token vocabulary (the tokenizer uses a few of them): 16 windows of 96 tokens
  // scored together need 6 GiB, more than WebAssembly's 4; one window needs 0.4 GiB
  const blockSize = 96;
  const model = new GPT(makeConfig({ vocabSize: 1 << 20, blockSize, nLayer: 1, nHead: 1, nEmbd: 4 }), 7);
  const dir = join(root, "wide-vocab");
  mkdirSync(dir);
  saveModel(model, dir);
  const alphabet = "abcdefghij";
  const wide = Array.from({ length: 16 * blockSize + 1 }, (_, i) => alphabet[(i * 7) % alphabet.length]).join("");
  saveTokenizer(dir, CharTokenizer.fromText(wide));
  model.dispose();
  const file = join(root, "wide.txt");
  writeFileSync(file, wide);
  const failed = runCli(["eval", "--model", dir, "--data", file, "--json"]);
  assert.equal(failed.status, 1, failed.stderr);
  assert.match(failed.stderr, /(^|\n)minigpt eval: out of tensor memory: need [^\n]*--batch-size 16 [^\n]*: lower it\n?$/);
  assert.ok(!/\n\s+at /.test(failed.stderr), "no stack trace");
  assert.ok(!/smaller model or batch/.test(failed.stderr), failed.stderr);
  // the setting it names is the one that helps: a sample of 2 windows, one at a time
  const fits = runCli(["eval", "--model", dir, "--data", file, "--json", "--batch-size", "1", "--eval-tokens", String(2 * blockSize)]);
  assert.equal(fits.status, 0, fits.stderr);
  assert.equal((JSON.parse(fits.stdout) as { tokens: number }).tokens, 2 * blockSize);
});
