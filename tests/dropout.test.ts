/**
 * Inverted dropout (src/ops/dropout.ts) checked from its definition: on 200,000 elements the share
 * of zeros is p within 6 binomial standard deviations, zeros are independent of their neighbours
 * (adjacent pairs both zero at rate p²), every kept value is x/(1-p) computed here in float64, the
 * backward pass sends upstream/(1-p) through kept positions and 0 through dropped ones (and adds
 * into an existing gradient), p = 0 and a model run without a dropout PRNG are the identity, and
 * the same seed gives the same mask.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { makeConfig } from "../src/nn/config.js";
import { GPT } from "../src/nn/gpt.js";
import { dropout } from "../src/ops/index.js";
import { Rng } from "../src/random.js";
import { noGrad, scope, Tensor } from "../src/tensor/tensor.js";

const N = 200_000;

/** inputs that are never 0, so a 0 in the output can only be a dropped element */
function inputs(seed: number): Float32Array {
  const r = new Rng(seed);
  return Float32Array.from({ length: N }, () => (r.random() < 0.5 ? -1 : 1) * (0.25 + r.random() * 4));
}

/** |got - want| within 2 float32 ulps of want */
function nearF32(got: number, want: number): boolean {
  return Math.abs(got - want) <= 2 ** -22 * Math.abs(want);
}

for (const p of [0.1, 0.5]) {
  test(`p = ${p}: the share of zeros is p (6 sigma), zeros are independent, kept values are x/(1-p)`, () => {
    const xv = inputs(1);
    const out = scope(() => Float32Array.from(dropout(Tensor.fromArray(xv, [400, 500]), p, new Rng(123)).data));
    let zeros = 0;
    let pairs = 0;
    let firstHalf = 0;
    for (let i = 0; i < N; i++) {
      const o = out[i] as number;
      if (o === 0) {
        zeros++;
        if (i < N / 2) firstHalf++;
        if (i > 0 && out[i - 1] === 0) pairs++;
      } else {
        const want = (xv[i] as number) / (1 - p);
        assert.ok(nearF32(o, want), `element ${i}: kept value ${o}, want x/(1-p) = ${want}`);
      }
    }
    const sigma = Math.sqrt(N * p * (1 - p));
    assert.ok(Math.abs(zeros - N * p) < 6 * sigma, `${zeros} zeros of ${N}, expected ${N * p} ± ${6 * sigma}`);
    const halfSigma = Math.sqrt((N / 2) * p * (1 - p));
    assert.ok(Math.abs(firstHalf - (N / 2) * p) < 6 * halfSigma, `${firstHalf} zeros in the first half`);
    // adjacent (i-1, i) both dropped: N-1 pairs at rate p², variance below (N-1)·p²·(1+2p) for this
    // 1-dependent sum; the bound uses 3p to stay loose
    const pairSigma = Math.sqrt((N - 1) * p * p * (1 + 3 * p));
    assert.ok(Math.abs(pairs - (N - 1) * p * p) < 6 * pairSigma, `${pairs} adjacent zero pairs, expected ${(N - 1) * p * p}`);
  });

  test(`p = ${p}: the mean is preserved (inverted dropout needs no rescaling at inference)`, () => {
    // x = 1 everywhere: each output is 0 or 1/(1-p), mean 1, variance p/(1-p)
    const out = scope(() => Float32Array.from(dropout(Tensor.fromArray(new Float32Array(N).fill(1), [N]), p, new Rng(9)).data));
    const mean = out.reduce((s, v) => s + v, 0) / N;
    const sigma = Math.sqrt(p / (1 - p) / N);
    assert.ok(Math.abs(mean - 1) < 6 * sigma, `mean ${mean}, expected 1 ± ${6 * sigma}`);
  });

  test(`p = ${p}: backward passes upstream/(1-p) through kept positions only, and accumulates`, () => {
    const xv = inputs(2);
    const r = new Rng(77);
    const up = Float32Array.from({ length: N }, () => r.normal());
    scope(() => {
      const x = Tensor.fromArray(xv, [N], true);
      const y = dropout(x, p, new Rng(5));
      const kept = Array.from(y.data, (v) => v !== 0);
      y.backward(up);
      const once = Float32Array.from((x.grad as Tensor).data);
      // the graph walked again: the gradient adds into x.grad (the other backward branch)
      y.backward(up);
      const twice = (x.grad as Tensor).data;
      let keptCount = 0;
      for (let i = 0; i < N; i++) {
        const want = kept[i] ? (up[i] as number) / (1 - p) : 0;
        if (kept[i]) keptCount++;
        assert.ok(kept[i] ? nearF32(once[i] as number, want) : once[i] === 0, `dx[${i}] = ${once[i]}, want ${want}`);
        assert.ok(kept[i] ? nearF32(twice[i] as number, 2 * want) : twice[i] === 0, `twice dx[${i}] = ${twice[i]}, want ${2 * want}`);
      }
      assert.ok(keptCount > 0 && keptCount < N);
    });
  });
}

test("the same seed gives the same mask, another seed another mask", () => {
  const xv = inputs(3);
  const run = (seed: number) => scope(() => Float32Array.from(dropout(Tensor.fromArray(xv, [N]), 0.3, new Rng(seed)).data));
  const a = run(42);
  const b = run(42);
  const c = run(43);
  assert.deepEqual(a, b);
  let differ = 0;
  for (let i = 0; i < N; i++) if ((a[i] === 0) !== (c[i] === 0)) differ++;
  // two independent masks disagree at rate 2p(1-p) = 0.42
  assert.ok(differ > 0.3 * N, `only ${differ} positions differ between seeds 42 and 43`);
});

test("p = 0 is the identity and p >= 1 is refused", () => {
  const xv = inputs(4);
  scope(() => {
    const x = Tensor.fromArray(xv, [N], true);
    const y = dropout(x, 0, new Rng(1));
    assert.deepEqual(Float32Array.from(y.data), xv);
    assert.throws(() => dropout(x, 1, new Rng(1)), RangeError);
  });
});

test("a model with dropout is deterministic without a dropout PRNG (inference) and equals the same weights with dropout 0", () => {
  const c = { vocabSize: 13, blockSize: 12, nLayer: 2, nHead: 2, nEmbd: 16 };
  const withDrop = new GPT(makeConfig({ ...c, dropout: 0.5 }), 8);
  const noDrop = new GPT(makeConfig({ ...c, dropout: 0 }), 8);
  const r = new Rng(4);
  const ids = Array.from({ length: 2 * 12 }, () => r.int(13));
  const logits = (m: GPT, rng?: Rng) =>
    noGrad(() => scope(() => Float32Array.from(m.forward(Tensor.ints(ids, [2, 12]), { dropoutRng: rng }).logits.data)));
  const ref = logits(noDrop);
  assert.deepEqual(logits(withDrop), ref);
  assert.deepEqual(logits(withDrop), ref);
  // dropout 0 with a PRNG: still the identity
  assert.deepEqual(logits(noDrop, new Rng(1)), ref);
  // and training mode really drops: the logits change
  const train = logits(withDrop, new Rng(1));
  let changed = 0;
  for (let i = 0; i < ref.length; i++) if (Math.abs((train[i] as number) - (ref[i] as number)) > 1e-6) changed++;
  assert.ok(changed > ref.length / 2, `only ${changed} of ${ref.length} logits changed with dropout 0.5`);
  withDrop.dispose();
  noDrop.dispose();
});
