// A decode step's trunk for a model whose weights are split over the threads, in one pool call
// (src/kernels/wasm/assembly/trunk-split.as: the threads meet inside the kernel between the products
// and the row-wise work) gives the bits of the same step block by block (Block.decode:
// attentionRows, mlpRows, the adds and LayerNorms, each its own call): logits, the output of every
// row that wants one, and every cache row (of the rows that want no output too: later steps read
// them), for steps of 1-17 rows with prompts' rows among them. The split trunk skips the last
// block's attention and MLP for the rows that want no output (a prompt's rows before its last);
// block by block takes every row through, so their rows of x are compared instead with the model
// without its last block's (the work was skipped: what they are left holding, trunk-split.as).
import assert from "node:assert/strict";
import { test } from "node:test";
import { useBackend } from "../src/kernels/index.js";
import { makeConfig } from "../src/nn/config.js";
import { DecodeBuffers } from "../src/nn/decode-step.js";
import { GPT } from "../src/nn/gpt.js";
import type { Tensor } from "../src/tensor/tensor.js";
import { madeUpStep, type StepSequence } from "./decode-helpers.js";

const VOCAB = 40;

const KINDS = ["joining", "prompts", "silent"] as const;
type Kind = (typeof KINDS)[number];

/**
 * a step of R rows, of one of three kinds: "joining", a prompt's first rows (no logits), then
 * one-token rows at their own positions; "prompts", as joining with a second prompt, whole (its last
 * row wants logits and reads the k and v its earlier rows wrote in the same block), between them;
 * "silent", one prompt's rows, none wanting logits (no row goes through the last block's MLP)
 */
function sequences(R: number, kind: Kind): StepSequence[] {
  if (kind === "silent") return [{ pos: 3, n: R, logits: false }];
  const first = Math.floor(R / 3);
  const second = kind === "prompts" ? Math.floor(R / 4) : 0;
  const out: StepSequence[] = first > 0 ? [{ pos: 0, n: first, logits: false }] : [];
  if (second > 0) out.push({ pos: 1, n: second, logits: true });
  for (let i = first + second; i < R; i++) out.push({ pos: 2 + ((7 * i) % 19), n: 1, logits: true });
  return out;
}

/**
 * the step's logits, the x after the trunk of each row that wants logits, then every cache row; and
 * apart, the x of the rows that want none
 */
function step(m: GPT, R: number, kind: Kind): { outputs: Float32Array[]; unwanted: Float32Array } {
  const C = m.config.nEmbd;
  const { rows, caches } = madeUpStep(m.config, sequences(R, kind), (s, i) => (5 * s + 3 * i + R) % VOCAB);
  const buffers = new DecodeBuffers(m.config, R);
  const logits = m.decode(rows, buffers).slice();
  const x = buffers.x.data;
  const xOf = (wanted: boolean) =>
    Float32Array.from(rows.flatMap((r, i) => ((r.logits !== false) === wanted ? [...x.subarray(i * C, (i + 1) * C)] : [])));
  const outputs = [logits, xOf(true)];
  for (const layers of caches) for (const l of layers) outputs.push(l.keys.data.slice(), l.values.data.slice());
  buffers.dispose();
  for (const layers of caches) for (const l of layers) l.dispose();
  return { outputs, unwanted: xOf(false) };
}

/** whether two arrays hold the same bits */
function sameBits(a: Float32Array, b: Float32Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

const ROWS = [1, 2, 3, 5, 8, 16, 17];

for (const packed of [false, true]) {
  test(`the split trunk (one pool call a step, GPT-2's width on 2 threads) gives block by block's bits, ${packed ? "packed" : "row-major"} matrices [wasm, 2 threads]`, async () => {
    const kernels = await useBackend("wasm", { threads: 2 });
    // 4·C² >= 2^21 floats: the heads and the hidden units are split over the threads
    const shape = { vocabSize: VOCAB, blockSize: 40, nHead: 12, nEmbd: 768, dropout: 0 };
    const m = new GPT(makeConfig({ ...shape, nLayer: 3 }), 5);
    // GPT-2's init leaves the biases 0 and the LayerNorms the identity: made-up values, so that
    // adding them in another order would show
    for (const [name, t] of m.params)
      if (!name.endsWith("weight") || name.includes("ln"))
        for (let i = 0; i < t.data.length; i++) t.data[i] = ((i * 29 + name.length) % 37) / 60 - 0.3;
    // the same model without its last block: what the rows that want no output are left holding
    const short = new GPT(makeConfig({ ...shape, nLayer: 2 }), 5);
    for (const [name, t] of short.params) t.data.set((m.params.get(name) as Tensor).data);
    if (packed) m.packDecodeWeights();
    if (packed) short.packDecodeWeights();
    const trunkRows = kernels.trunkRows?.bind(kernels);
    assert.ok(trunkRows, "the wasm backend has trunkRows");
    try {
      let trunkSteps = 0;
      kernels.trunkRows = (t) => {
        const done = trunkRows(t);
        if (done) trunkSteps++;
        return done;
      };
      const cases = KINDS.flatMap((kind) => ROWS.map((R) => ({ kind, R })));
      const trunk = cases.map(({ kind, R }) => step(m, R, kind));
      assert.equal(trunkSteps, cases.length, "every step went through Backend.trunkRows");
      kernels.trunkRows = undefined;
      const blocks = cases.map(({ kind, R }) => step(m, R, kind));
      const shortBlocks = cases.map(({ kind, R }) => step(short, R, kind));
      for (const [i, { kind, R }] of cases.entries()) {
        const got = trunk[i]?.outputs as Float32Array[];
        const want = blocks[i]?.outputs as Float32Array[];
        assert.equal(got.length, want.length);
        for (const [j, t] of got.entries()) {
          assert.ok(
            sameBits(t, want[j] as Float32Array),
            `${R} rows (${kind}): output ${j} (0: logits, 1: the x of the rows that want logits, then each layer's k and v) bit for bit`,
          );
        }
        // the work skipped: the rows that want no output did not go through the last block's
        // attention and MLP (their x is the block before's output, not block by block's)
        assert.ok(
          sameBits(trunk[i]?.unwanted as Float32Array, shortBlocks[i]?.unwanted as Float32Array),
          `${R} rows (${kind}): the rows that want no output skip the last block's attention and MLP`,
        );
      }
    } finally {
      kernels.trunkRows = trunkRows;
      m.dispose();
      short.dispose();
      await useBackend("ref");
    }
  });
}
