/**
 * explainTrainingStep and `minigpt explain-step` against a training step done here directly: the
 * loss is the float64 cross-entropy of the model's logits for x = the first T tokens and y = the
 * next T (log-softmax written in this file), and every reported gradient norm is sqrt(Σ g²) of the
 * gradients from a direct forward/backward. Those gradients are themselves checked by finite
 * differences: the loss's slope along a group's own unit gradient direction is that group's norm.
 */
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { explainTrainingStep } from "../src/explain/explain.js";
import { saveTokenizer } from "../src/io/folder.js";
import { saveModel } from "../src/io/hf.js";
import { makeConfig } from "../src/nn/config.js";
import { GPT } from "../src/nn/gpt.js";
import { noGrad, scope, Tensor } from "../src/tensor/tensor.js";
import { CharTokenizer } from "../src/tokenizer/char.js";
import { runCli, tempDir } from "./helpers.js";

const root = tempDir("minigpt-explainstep-");

const TEXT = "call me ishmael. some years ago, never mind how long precisely, having little money in my purse";
const T = 16;
const tokenizer = CharTokenizer.fromText(TEXT);

function makeModel(): GPT {
  const model = new GPT(makeConfig({ vocabSize: tokenizer.vocabSize, blockSize: T, nLayer: 2, nHead: 2, nEmbd: 16 }), 3);
  // larger embeddings than the 0.02 init, so the loss is not ln(V) and the gradients are not tiny
  const wte = model.param("transformer.wte.weight");
  for (let i = 0; i < wte.size; i++) wte.data[i] = (wte.data[i] as number) * 20;
  return model;
}

/** mean cross-entropy of y given x, from the raw logits, in float64 */
function referenceLoss(model: GPT, x: number[], y: number[]): number {
  const V = model.config.vocabSize;
  const logits = noGrad(() => scope(() => Float64Array.from(model.forward(Tensor.ints(x, [1, x.length])).logits.data)));
  let sum = 0;
  for (let t = 0; t < x.length; t++) {
    let max = -Infinity;
    for (let v = 0; v < V; v++) max = Math.max(max, logits[t * V + v] as number);
    let z = 0;
    for (let v = 0; v < V; v++) z += Math.exp((logits[t * V + v] as number) - max);
    sum += max + Math.log(z) - (logits[t * V + (y[t] as number)] as number);
  }
  return sum / x.length;
}

/** gradients of the mean loss by a direct forward/backward, copied out per tensor */
function directGradients(model: GPT, x: number[], y: number[]): Map<string, Float64Array> {
  model.zeroGrad();
  scope(() => {
    const { loss } = model.forward(Tensor.ints(x, [1, x.length]), { targets: Tensor.ints(y, [1, y.length]) });
    (loss as Tensor).backward();
  });
  const grads = new Map<string, Float64Array>();
  for (const [name, t] of model.params) grads.set(name, Float64Array.from(t.grad ? t.grad.data : new Float32Array(t.size)));
  model.zeroGrad();
  return grads;
}

const groupOf = (name: string) => {
  const m = /^transformer\.h\.(\d+)\./.exec(name);
  return m ? `h.${m[1]}` : name.startsWith("transformer.ln_f") ? "ln_f" : "embeddings";
};
const sumSq = (g: Float64Array) => g.reduce((s, v) => s + v * v, 0);
const rel = (a: number, b: number) => Math.abs(a - b) / Math.max(Math.abs(b), 1e-12);

test("explainTrainingStep: the loss and every gradient norm equal a direct forward/backward on the same tokens", () => {
  const model = makeModel();
  const ids = tokenizer.encode(TEXT);
  const x = ids.slice(0, T);
  const y = ids.slice(1, T + 1);
  const before = new Map([...model.params].map(([n, t]) => [n, Float32Array.from(t.data)]));

  const e = explainTrainingStep(model, x, y);
  const wantLoss = referenceLoss(model, x, y);
  assert.ok(Math.abs(wantLoss - Math.log(tokenizer.vocabSize)) > 0.2, `the loss ${wantLoss} should be away from ln(V)`);
  assert.ok(rel(e.loss, wantLoss) < 1e-5, `loss ${e.loss}, reference ${wantLoss}`);
  // the weights are untouched
  for (const [n, t] of model.params) assert.deepEqual(t.data, before.get(n), `${n} changed`);

  const grads = directGradients(model, x, y);
  let total = 0;
  const groups = new Map<string, number>();
  for (const [name, g] of grads) {
    const s = sumSq(g);
    total += s;
    groups.set(groupOf(name), (groups.get(groupOf(name)) ?? 0) + s);
    const reported = e.tensors.find((t) => t.name === name);
    assert.ok(reported, `${name} missing from the report`);
    assert.ok(rel(reported.gradNorm, Math.sqrt(s)) < 1e-4 || Math.sqrt(s) < 1e-9, `${name}: ${reported.gradNorm} vs ${Math.sqrt(s)}`);
    const w = Float64Array.from(model.param(name).data);
    assert.ok(rel(reported.weightNorm, Math.sqrt(sumSq(w))) < 1e-5, `${name} weight norm`);
  }
  assert.equal(e.tensors.length, grads.size);
  assert.deepEqual(
    e.groups.map((g) => g.name),
    [...groups.keys()],
  );
  for (const g of e.groups) assert.ok(rel(g.gradNorm, Math.sqrt(groups.get(g.name) as number)) < 1e-4, `group ${g.name}`);
  assert.ok(rel(e.gradNorm, Math.sqrt(total)) < 1e-4, `global norm ${e.gradNorm} vs ${Math.sqrt(total)}`);
  model.dispose();
});

test("the direct gradients are the loss's gradients: finite differences along each group's unit gradient give its norm", () => {
  const model = makeModel();
  const ids = tokenizer.encode(TEXT);
  const x = ids.slice(0, T);
  const y = ids.slice(1, T + 1);
  const grads = directGradients(model, x, y);
  const e = explainTrainingStep(model, x, y);
  for (const group of e.groups) {
    const names = [...grads.keys()].filter((n) => groupOf(n) === group.name);
    const norm = Math.sqrt(names.reduce((s, n) => s + sumSq(grads.get(n) as Float64Array), 0));
    const saved = new Map(names.map((n) => [n, Float32Array.from(model.param(n).data)]));
    const shift = (h: number) => {
      for (const n of names) {
        const t = model.param(n);
        const g = grads.get(n) as Float64Array;
        const w0 = saved.get(n) as Float32Array;
        for (let i = 0; i < t.size; i++) t.data[i] = (w0[i] as number) + (h * (g[i] as number)) / norm;
      }
    };
    const h = 1e-2;
    shift(h);
    const up = referenceLoss(model, x, y);
    shift(-h);
    const down = referenceLoss(model, x, y);
    shift(0);
    const slope = (up - down) / (2 * h);
    assert.ok(rel(slope, group.gradNorm) < 0.02, `${group.name}: slope along its gradient ${slope}, reported norm ${group.gradNorm}`);
  }
  model.dispose();
});

test("minigpt explain-step reports the loss and group gradient norms of x = the first T tokens, y = the next T", () => {
  const model = makeModel();
  const dir = join(root, "model");
  mkdirSync(dir);
  saveModel(model, dir);
  saveTokenizer(dir, tokenizer);
  const ids = tokenizer.encode(TEXT);
  const x = ids.slice(0, T);
  const y = ids.slice(1, T + 1);
  const wantLoss = referenceLoss(model, x, y);
  const grads = directGradients(model, x, y);
  model.dispose();

  const r = runCli(["explain-step", "--model", dir, "--text", TEXT, "--explain-level", "full", "--backend", "ref"]);
  assert.equal(r.status, 0, r.stderr);
  const loss = Number(/== loss: mean cross-entropy of predicting each next token = (\S+)/.exec(r.stdout)?.[1]);
  assert.ok(Math.abs(loss - wantLoss) <= 0.00005 + 1e-6, `printed loss ${loss}, reference ${wantLoss.toFixed(6)}`);

  const groups = new Map<string, number>();
  for (const [name, g] of grads) groups.set(groupOf(name), (groups.get(groupOf(name)) ?? 0) + sumSq(g));
  const printed = new Map<string, number>();
  for (const m of r.stdout.matchAll(/^ {3}(embeddings|h\.\d+|ln_f) +(\S+) +(\S+) +\S+$/gm)) printed.set(m[1] as string, Number(m[2]));
  assert.deepEqual([...printed.keys()], [...groups.keys()]);
  for (const [name, s] of groups) {
    // printed with 4 significant digits
    assert.ok(rel(printed.get(name) as number, Math.sqrt(s)) < 1e-3, `${name}: printed ${printed.get(name)}, reference ${Math.sqrt(s)}`);
  }
  // the full level lists every tensor's gradient norm too
  for (const [name, g] of grads) {
    const m = new RegExp(`^ {3}${name.replace(/\./g, "\\.")} +\\[[\\d,]+\\] +grad (\\S+)`, "m").exec(r.stdout);
    assert.ok(m, `${name} not listed`);
    const want = Math.sqrt(sumSq(g));
    assert.ok(rel(Number(m[1]), want) < 1e-3 || want < 1e-9, `${name}: printed ${m[1]}, reference ${want}`);
  }
});
