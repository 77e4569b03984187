/**
 * minigpt analyze: the parameter count from the model's real tensors against the independent closed
 * form, hand-computed figures for a tiny config, the activation count against the bytes the heap
 * really allocates, and the CLI (--json).
 */
import assert from "node:assert/strict";
import { appendFileSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { activationFloats, analyzeConfig, closedFormParameterCount, formatBytes, type ModelAnalysis } from "../src/analyze/analyze.js";
import { analyzeModel } from "../src/analyze/folder.js";
import { saveTokenizer } from "../src/io/folder.js";
import { saveModel } from "../src/io/hf.js";
import { makeConfig } from "../src/nn/config.js";
import { GPT } from "../src/nn/gpt.js";
import { heap } from "../src/tensor/memory.js";
import { scope, Tensor } from "../src/tensor/tensor.js";
import { CharTokenizer } from "../src/tokenizer/char.js";
import { runCli, tempDir, wordCorpus } from "./helpers.js";

/** GPT-2's parameter count in closed form, written out independently of the model code: V·d + P·d + L·(12d² + 13d) + 2d (n_inner = 4d). */
const closedFormParameters = (V: number, P: number, L: number, d: number) => V * d + P * d + L * (12 * d * d + 13 * d) + 2 * d;

test("GPT-2 124M: 124,439,808 parameters from the config's tensor shapes and from the closed form", () => {
  const c = makeConfig({ vocabSize: 50257, blockSize: 1024, nLayer: 12, nHead: 12, nEmbd: 768 });
  const a = analyzeConfig(c);
  assert.equal(a.parameters.total, 124_439_808);
  assert.equal(closedFormParameters(50257, 1024, 12, 768), 124_439_808);
  assert.equal(a.parameters.closedForm, 124_439_808);
  assert.equal(a.parameters.tensors.length, 2 + 12 * 12 + 2);
  // 2·124M·... sanity of the memory figures: weights are 4 bytes each
  assert.equal(a.memory.weights, 124_439_808 * 4);
  // KV cache: 2 (k, v) x 12 layers x 1024 positions x 768 floats x 4 bytes = 75,497,472
  assert.equal(a.memory.inference.kvCache, 75_497_472);
});

test("parameter count of real models' tensors equals the closed form (several configs)", () => {
  const configs = [
    makeConfig({ vocabSize: 65, blockSize: 32, nLayer: 2, nHead: 2, nEmbd: 16 }),
    makeConfig({ vocabSize: 100, blockSize: 19, nLayer: 3, nHead: 4, nEmbd: 24 }),
    makeConfig({ vocabSize: 7, blockSize: 5, nLayer: 1, nHead: 1, nEmbd: 8, nInner: 20, activation: "relu" }),
  ];
  for (const c of configs) {
    const model = new GPT(c);
    try {
      const a = analyzeModel(model);
      let real = 0;
      for (const t of model.params.values()) real += t.data.length;
      assert.equal(a.parameters.total, real);
      assert.equal(a.parameters.trainable, real);
      assert.equal(closedFormParameterCount(c), real);
      if (c.nInner === 4 * c.nEmbd) assert.equal(closedFormParameters(c.vocabSize, c.blockSize, c.nLayer, c.nEmbd), real);
      const groupSum = a.parameters.groups.reduce((s, g) => s + g.count, 0);
      assert.equal(groupSum, real);
      const pct = a.parameters.tensors.reduce((s, t) => s + t.percent, 0);
      assert.ok(Math.abs(pct - 100) < 1e-9);
    } finally {
      model.dispose();
    }
  }
});

test("hand-computed figures for a tiny config (V=10, P=8, L=1, d=4, 2 heads)", () => {
  const c = makeConfig({ vocabSize: 10, blockSize: 8, nLayer: 1, nHead: 2, nEmbd: 4 });
  const a = analyzeConfig(c, { batchSize: 2, blockSize: 8 });
  // wte 40 + wpe 32 + block (ln 8 + c_attn 48+12 + proj 16+4 + ln 8 + fc 64+16 + proj 64+4 = 244) + ln_f 8
  assert.equal(a.parameters.total, 324);
  assert.deepEqual(
    a.parameters.groups.map((g) => [g.name, g.count]),
    [
      ["embeddings", 72],
      ["h.0", 244],
      ["ln_f", 8],
    ],
  );
  assert.equal(a.memory.weights, 1296);
  assert.equal(a.memory.training.grads, 1296);
  assert.equal(a.memory.training.adamMoments, 2592);
  // k and v: 2 x 1 layer x 8 positions x 4 floats x 4 bytes
  assert.equal(a.memory.inference.kvCache, 256);
  // matmul parameters: wte 40 + c_attn 48 + c_proj 16 + c_fc 64 + mlp c_proj 64 = 232
  assert.equal(a.parameters.matmul, 232);
  // forward: 2·232 + 4·L·T·C = 464 + 128 = 592; training 3x
  assert.equal(a.flops.forwardPerToken, 592);
  assert.equal(a.flops.trainingPerToken, 1776);
  // activations at B=2, T=8 (BT=16, C=4, F=16, V=10, nh=2):
  //   differentiable: 2·BTC 128 + block (ln_1, qkv x3, attention, c_proj, residual, ln_2, c_proj, residual:
  //   10·BTC 640 + c_fc, activation: 2·BTF 512) + ln_f 64 + logits 160 + loss 1 = 1505
  //   statistics: block 4·BT 64 + B·nh·T 32, ln_f 32, cross-entropy 32; int inputs 32 => 192
  assert.deepEqual(activationFloats(c, 2, 8), { forwardFloats: 1505 + 192, gradientFloats: 1505 });
  assert.equal(a.memory.training.activations, (1505 + 192) * 4);
  assert.equal(a.memory.training.total, 1296 + 1296 + 2592 + (1505 + 192) * 4 + 1505 * 4);
});

test("the activation count matches a real forward pass; activation gradients bound the backward peak", () => {
  // sizes chosen as multiples of 16 floats so the allocator's 64-byte alignment adds nothing but the
  // scalar loss (1 float -> 64 bytes)
  const c = makeConfig({ vocabSize: 32, blockSize: 16, nLayer: 2, nHead: 2, nEmbd: 16 });
  const B = 2;
  const T = 8;
  const model = new GPT(c);
  try {
    const expected = activationFloats(c, B, T);
    const h = heap();
    model.zeroGrad();
    for (const p of model.params.values()) p.ensureGrad(); // parameter grads exist before measuring
    const ids = Array.from({ length: B * T }, (_, i) => (i * 7) % c.vocabSize);
    scope(() => {
      const before = h.stats().liveBytes;
      const idx = Tensor.ints(ids, [B, T]);
      const targets = Tensor.ints(
        ids.map((v) => (v + 1) % c.vocabSize),
        [B, T],
      );
      const { loss } = model.forward(idx, { targets });
      const afterForward = h.stats().liveBytes;
      const scalarPadding = 15 * 4;
      assert.equal(afterForward - before, expected.forwardFloats * 4 + scalarPadding);
      h.resetPeak();
      (loss as Tensor).backward();
      const { liveBytes: afterBackward, peakLiveBytes } = h.stats();
      // gradients of activations are freed as soon as they have been propagated, so the analysis's
      // figure (all of them at once) is an upper bound of the backward pass's peak, and only the
      // loss's own gradient outlives it
      assert.ok(peakLiveBytes - afterForward <= expected.gradientFloats * 4 + scalarPadding);
      assert.ok(peakLiveBytes - afterForward > 0);
      assert.equal(afterBackward - afterForward, 64);
    });
  } finally {
    model.dispose();
  }
});

test("minigpt analyze --json reads a model folder: tensors, files and training history", () => {
  const dir = tempDir("minigpt-analyze-");
  const tok = CharTokenizer.fromText("hello world");
  const c = makeConfig({ vocabSize: tok.vocabSize, blockSize: 16, nLayer: 2, nHead: 2, nEmbd: 16 });
  const model = new GPT(c);
  saveModel(model, dir);
  saveTokenizer(dir, tok);
  model.dispose();
  writeFileSync(join(dir, "metrics.jsonl"), "");
  for (const [step, loss, val] of [
    [1, 3.0, undefined],
    [2, 2.5, 2.6],
    [3, 2.0, 2.4],
    [4, 1.9, 2.45],
  ] as const)
    appendFileSync(join(dir, "metrics.jsonl"), `${JSON.stringify({ step, loss, ...(val !== undefined ? { val_loss: val } : {}) })}\n`);
  const r = runCli(["analyze", "--model", dir, "--json", "--batch-size", "3"]);
  assert.equal(r.status, 0, r.stderr);
  const a = JSON.parse(r.stdout) as ModelAnalysis;
  const want = closedFormParameterCount(c);
  assert.equal(a.parameters.total, want);
  assert.equal(a.memory.training.batchSize, 3);
  assert.equal(a.memory.training.blockSize, 16);
  assert.ok((a.files?.weightsBytes ?? 0) > want * 4);
  assert.deepEqual(a.history, { steps: 4, lastLoss: 1.9, bestValLoss: 2.4, lastValLoss: 2.45, evaluations: 3 });
  const text = runCli(["analyze", "--model", dir]);
  assert.equal(text.status, 0, text.stderr);
  assert.match(text.stdout, new RegExp(`parameters: ${want.toLocaleString("en-US")} total`));
  assert.match(text.stdout, /agrees/);
  assert.match(text.stdout, /training history: 4 steps/);
  const missing = runCli(["analyze", "--model", join(dir, "nope")]);
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /^minigpt analyze: model folder .* does not exist/);
});

test("analyze names one size for a folder's weights file: the file's, header included; training it writes float32; an int8/int4 folder says so first, and its memory as loaded", () => {
  const dir = "tests/models/char-before-fallback";
  const file = statSync(join(dir, "model.safetensors")).size;
  const a = JSON.parse(runCli(["analyze", "--model", dir, "--json"]).stdout) as ModelAnalysis;
  assert.equal(a.files?.weightsBytes, file);
  assert.equal(a.disk?.weightsBytes, file);
  assert.equal(a.disk?.runFolderBytes, file + 2 * 3 * file);
  const size = formatBytes(file).replace(".", "\\.");
  const text = runCli(["analyze", "--model", dir]).stdout;
  assert.match(text, new RegExp(`^model folder .*: model\\.safetensors ${size}; folder`, "m"));
  assert.match(text, new RegExp(`^on disk when trained: model\\.safetensors ${size} \\(float32\\); a training run's folder at least`, "m"));
  const float = JSON.parse(runCli(["analyze", "--model", dir, "--json"]).stdout) as ModelAnalysis;
  for (const [bits, label] of [
    ["8", "int8"],
    ["4", "int4 \\(groups of 32\\)"],
  ] as const) {
    const qdir = join(tempDir("minigpt-analyze-q-"), `q${bits}`);
    assert.equal(runCli(["quantize", "--model", dir, "--out", qdir, "--bits", bits]).status, 0);
    const q = JSON.parse(runCli(["analyze", "--model", qdir, "--json"]).stdout) as ModelAnalysis;
    assert.ok((q.files?.weightsBytes ?? 0) < file / 2);
    assert.equal(q.disk?.weightsBytes, file);
    // the loaded model holds its matrices packed: less memory than float32, what inference counts
    assert.equal(q.memory.training.weights, float.memory.weights);
    assert.ok(q.memory.weights < float.memory.weights / 2 && q.memory.inference.weights === q.memory.weights);
    // wte and the blocks' four matrices: the matmul parameters
    assert.equal(q.quantized?.parameters, float.parameters.matmul);
    // the first line says what the folder holds, with the file's true size
    const qsize = formatBytes(statSync(join(qdir, "model.safetensors")).size).replace(".", "\\.");
    const qtext = runCli(["analyze", "--model", qdir]).stdout;
    assert.match(
      qtext.split("\n")[0] ?? "",
      new RegExp(`^model folder .*: ${label} weights \\(.*\\), model\\.safetensors ${qsize}; folder`),
    );
    assert.match(qtext, new RegExp(`^  weights +${formatBytes(q.memory.weights).replace(".", "\\.")} as loaded`, "m"));
  }
});

test("a trained folder takes at least what analyze says a training run's folder takes", () => {
  const dir = tempDir("minigpt-analyze-run-");
  const out = join(dir, "run");
  const tiny = ["--n-layer", "1", "--n-head", "1", "--n-embd", "8", "--block-size", "16", "--batch-size", "2", "--sample-tokens", "0"];
  const run = ["--max-steps", "2", "--checkpoint-interval", "1", "--eval-interval", "2", "--eval-steps", "1"];
  const trained = runCli(["train", "--data", wordCorpus(dir, 2000), "--out", out, ...tiny, ...run]);
  assert.equal(trained.status, 0, trained.stderr);
  assert.equal(readdirSync(join(out, "training")).filter((n) => n.startsWith("checkpoint-")).length, 2);
  const a = JSON.parse(runCli(["analyze", "--model", out, "--json"]).stdout) as ModelAnalysis;
  const files = a.files?.folderBytes ?? 0;
  const estimate = a.disk?.runFolderBytes ?? 0;
  assert.ok(estimate <= files && estimate > 0, `${estimate} > ${files}`);
});
