// A decode step's trunk for a model whose weights are split over the threads, in one pool call
// (src/kernels/wasm/assembly/trunk-split.as: the threads meet inside the kernel between the products
// and the row-wise work) gives the bits of the same step block by block (Block.decode:
// attentionRows, mlpRows, the adds and LayerNorms, each its own call): logits, every row's output and
// every cache row, for steps of 1-17 rows with a prompt's rows among them.
import assert from "node:assert/strict";
import { test } from "node:test";
import { useBackend } from "../src/kernels/index.js";
import { makeConfig } from "../src/nn/config.js";
import { DecodeBuffers } from "../src/nn/decode-step.js";
import { GPT } from "../src/nn/gpt.js";
import { madeUpStep, type StepSequence } from "./decode-helpers.js";

const VOCAB = 40;

/** a step of R rows: a prompt's first rows (no logits), then one-token rows at their own positions */
function sequences(R: number): StepSequence[] {
  const prompt = Math.floor(R / 3);
  const out: StepSequence[] = prompt > 0 ? [{ pos: 0, n: prompt, logits: false }] : [];
  for (let i = prompt; i < R; i++) out.push({ pos: 2 + ((7 * i) % 19), n: 1, logits: true });
  return out;
}

/** the step's logits, every row's x after the trunk and every cache row */
function step(m: GPT, R: number): Float32Array[] {
  const C = m.config.nEmbd;
  const { rows, caches } = madeUpStep(m.config, sequences(R), (s, i) => (5 * s + 3 * i + R) % VOCAB);
  const buffers = new DecodeBuffers(m.config, R);
  const out = [m.decode(rows, buffers).slice(), buffers.x.data.slice(0, R * C)];
  for (const layers of caches) for (const l of layers) out.push(l.keys.data.slice(), l.values.data.slice());
  buffers.dispose();
  for (const layers of caches) for (const l of layers) l.dispose();
  return out;
}

const ROWS = [1, 2, 3, 5, 8, 16, 17];

for (const packed of [false, true]) {
  test(`the split trunk (one pool call a step, GPT-2's width on 2 threads) gives block by block's bits, ${packed ? "packed" : "row-major"} matrices [wasm, 2 threads]`, async () => {
    const kernels = await useBackend("wasm", { threads: 2 });
    // 4·C² >= 2^21 floats: the heads and the hidden units are split over the threads
    const m = new GPT(makeConfig({ vocabSize: VOCAB, blockSize: 40, nLayer: 3, nHead: 12, nEmbd: 768, dropout: 0 }), 5);
    // GPT-2's init leaves the biases 0 and the LayerNorms the identity: made-up values, so that
    // adding them in another order would show
    for (const [name, t] of m.params)
      if (!name.endsWith("weight") || name.includes("ln"))
        for (let i = 0; i < t.data.length; i++) t.data[i] = ((i * 29 + name.length) % 37) / 60 - 0.3;
    if (packed) m.packDecodeWeights();
    const trunkRows = kernels.trunkRows?.bind(kernels);
    assert.ok(trunkRows, "the wasm backend has trunkRows");
    try {
      let trunkSteps = 0;
      kernels.trunkRows = (t) => {
        const done = trunkRows(t);
        if (done) trunkSteps++;
        return done;
      };
      const trunk = ROWS.map((R) => step(m, R));
      assert.equal(trunkSteps, ROWS.length, "every step went through Backend.trunkRows");
      kernels.trunkRows = undefined;
      const blocks = ROWS.map((R) => step(m, R));
      for (const [i, R] of ROWS.entries()) {
        const got = trunk[i] as Float32Array[];
        const want = blocks[i] as Float32Array[];
        assert.equal(got.length, want.length);
        for (const [j, t] of got.entries()) {
          const same = Buffer.from(t.buffer).equals(Buffer.from((want[j] as Float32Array).buffer));
          assert.ok(same, `${R} rows: output ${j} (0: logits, 1: the rows' x, then each layer's k and v) bit for bit`);
        }
      }
    } finally {
      kernels.trunkRows = trunkRows;
      m.dispose();
      await useBackend("ref");
    }
  });
}
