// The decode's matrices packed once for steps of many rows (GPT.packDecodeWeights ->
// Backend.packDecodeLayer: the wasm backend's 4-column panels, src/kernels/wasm/packed-layer.ts) are a
// layout only: every step's logits, residual rows and cache rows are bit for bit those of the
// row-major matrices, whichever path the step takes (trunkRows, or attentionRows and mlpRows with
// the projections split over the threads by K, each share packed on its own), and a packed copy is
// never read once the weights changed.
import assert from "node:assert/strict";
import { test } from "node:test";
import { useBackend } from "../src/kernels/index.js";
import { PACK_BUDGET_BYTES, WasmPackedLayer } from "../src/kernels/wasm/packed-layer.js";
import { makeConfig } from "../src/nn/config.js";
import { DecodeBuffers } from "../src/nn/decode-step.js";
import { GPT } from "../src/nn/gpt.js";
import { attachLora, mergeLora } from "../src/nn/lora.js";
import { Rng } from "../src/random.js";
import { heap } from "../src/tensor/memory.js";
import { Tensor } from "../src/tensor/tensor.js";
import { madeUpStep, type StepSequence } from "./decode-helpers.js";

const VOCAB = 50;

function model(nEmbd: number, nHead: number, seed = 9): GPT {
  return new GPT(makeConfig({ vocabSize: VOCAB, blockSize: 48, nLayer: 2, nHead, nEmbd, dropout: 0 }), seed);
}

/** the bytes of a, b equal */
function same(a: Float32Array, b: Float32Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

/** the outputs of two runs of step(), bit for bit (0: logits, then x rows, then k and v) */
function assertSame(got: Float32Array[], want: Float32Array[], what: string): void {
  assert.equal(got.length, want.length, what);
  for (const [j, t] of got.entries())
    assert.ok(same(t, want[j] as Float32Array), `${what}: output ${j} (0: logits, then x rows, then k and v)`);
}

/**
 * One decode step of R rows as the server builds them: a prompt's rows first (positions 0.., no
 * logits but, for odd R, its last), then one-token rows of other sequences at their own positions,
 * over fresh caches holding the same made-up earlier k and v each time. Its logits, the rows' x
 * after the trunk (those with logits) and every cache row.
 */
function step(m: GPT, R: number): Float32Array[] {
  const C = m.config.nEmbd;
  const prompt = Math.floor(R / 3);
  const sequences: StepSequence[] = prompt > 0 ? [{ pos: 0, n: prompt, logits: R % 2 === 1 }] : [];
  for (let i = prompt; i < R; i++) sequences.push({ pos: 3 + ((5 * i) % 17), n: 1, logits: true });
  const { rows, caches } = madeUpStep(m.config, sequences, (s, i) => (7 * s + 3 * i + R) % VOCAB);
  const buffers = new DecodeBuffers(m.config, R);
  const out = [m.decode(rows, buffers).slice()];
  rows.forEach((row, r) => {
    if (row.logits !== false) out.push(buffers.x.data.slice(r * C, (r + 1) * C));
  });
  for (const layers of caches) for (const l of layers) out.push(l.keys.data.slice(), l.values.data.slice());
  buffers.dispose();
  for (const layers of caches) for (const l of layers) l.dispose();
  return out;
}

/** counts the calls that were handed a packed copy (WasmPackedLayer.pick answering one) while fn runs */
function countPicks(fn: () => void): number {
  const pick = WasmPackedLayer.prototype.pick;
  let n = 0;
  WasmPackedLayer.prototype.pick = function (...args: Parameters<typeof pick>) {
    const p = pick.apply(this, args);
    if (p !== 0) n++;
    return p;
  };
  try {
    fn();
  } finally {
    WasmPackedLayer.prototype.pick = pick;
  }
  return n;
}

const ROWS = Array.from({ length: 17 }, (_, i) => i + 1);

for (const shape of [
  // weights too small to split: the rows are, each thread's through every block (trunkRows)
  { threads: 1, nEmbd: 64, nHead: 4 },
  { threads: 2, nEmbd: 64, nHead: 4 },
  // GPT-2's width: on 2 threads attentionRows and mlpRows split the heads and hidden units, the
  // projections by K (each share packed in its own step order)
  { threads: 1, nEmbd: 768, nHead: 12 },
  { threads: 2, nEmbd: 768, nHead: 12 },
]) {
  test(`decode steps of 1-17 rows (prompt rows without logits among them) read the packed matrices and give the row-major ones' bits [wasm, C ${shape.nEmbd}, ${shape.threads} thread(s)]`, async () => {
    const kernels = await useBackend("wasm", { threads: shape.threads });
    const m = model(shape.nEmbd, shape.nHead);
    try {
      const rowMajor = ROWS.map((R) => step(m, R));
      const bytes = m.packDecodeWeights();
      const { nEmbd: C, nInner: H, nLayer } = m.config;
      assert.equal(bytes, nLayer * 4 * (3 * C * C + C * C + 2 * C * H), "every block's four matrices, once more");
      let packed: Float32Array[][] = [];
      const picks = countPicks(() => {
        packed = ROWS.map((R) => step(m, R));
      });
      // (the trunk's table is written once: each matrix picked once; the split path picks every step)
      assert.ok(picks >= nLayer * 4, `the steps were handed the packed copies (${picks} picks)`);
      for (const [i, R] of ROWS.entries()) assertSame(packed[i] as Float32Array[], rowMajor[i] as Float32Array[], `${R} rows`);
      if (shape.threads === 2 && "useThreads" in kernels) {
        // one thread now: the projections packed per share no longer match the call's split (the
        // call reads the row-major matrix), the other two still do; the bits are one thread's
        (kernels as { useThreads(n: number): number }).useThreads(1);
        const one = step(m, 9);
        m.dropPackedWeights();
        const oneRowMajor = step(m, 9);
        assertSame(one, oneRowMajor, "one thread");
      }
    } finally {
      m.dispose();
      await useBackend("ref");
    }
  });
}

test("a packed copy is dropped when the weights change: loadWeights, param(), a merged LoRA adapter, a forward that records the tape [wasm, 1 thread]", async () => {
  await useBackend("wasm", { threads: 1 });
  const m = model(64, 4);
  const other = model(64, 4, 21);
  const R = 9;
  try {
    // loadWeights: the other model's weights, so the step is the other model's
    m.packDecodeWeights();
    m.loadWeights(new Map([...other.params].map(([name, t]) => [name, { shape: t.shape, data: t.data }])), "test");
    const expected = step(other, R);
    assertSame(step(m, R), expected, "after loadWeights");

    /** the step after `change` equals the step with the row-major matrices after it */
    const check = (what: string, change: () => void) => {
      m.packDecodeWeights();
      change();
      const got = step(m, R);
      m.dropPackedWeights();
      const want = step(m, R);
      assertSame(got, want, `after ${what}`);
    };
    check("a write through param()", () => {
      const w = m.param("transformer.h.1.mlp.c_fc.weight").data;
      for (let i = 0; i < w.length; i += 7) w[i] = (w[i] as number) + 0.25;
    });
    check("a LoRA adapter merged into the weights", () => {
      const lora = attachLora(m, { rank: 2, alpha: 4, dropout: 0, targets: ["c_fc", "c_attn"], base: "", trainableTokens: [] }, new Rng(3));
      // B starts at zero (the adapter changes nothing): give it values so that the merge changes W
      for (const [key, t] of lora.params) if (key.includes("lora_B")) t.data.fill(0.05);
      mergeLora(m, lora);
    });
    check("a training forward and a write to params", () => {
      const idx = Tensor.ints([1, 2, 3, 4], [1, 4]);
      m.forward(idx).logits.dispose();
      idx.dispose();
      const w = (m.params.get("transformer.h.0.attn.c_attn.weight") as Tensor).data as Float32Array;
      for (let i = 0; i < w.length; i += 5) w[i] = -(w[i] as number);
    });
  } finally {
    m.dispose();
    other.dispose();
    await useBackend("ref");
  }
});

test("the trunk's layer table is written once per model, again only when a layer's packed copy changes [wasm, 1 thread]", async () => {
  await useBackend("wasm", { threads: 1 });
  const m = model(64, 4);
  const pick = WasmPackedLayer.prototype.pick;
  let writes = 0;
  WasmPackedLayer.prototype.pick = function (...args: Parameters<typeof pick>) {
    writes++;
    return pick.apply(this, args);
  };
  try {
    const { nLayer } = m.config;
    m.packDecodeWeights();
    const first = step(m, 5);
    step(m, 6);
    assertSame(step(m, 5), first, "the third step");
    assert.equal(writes, nLayer * 4, "the packed pointers were written for the first step only");
    assert.equal(m.h[0]?.trunkLayer(m.config.layerNormEps), m.h[0]?.trunkLayer(m.config.layerNormEps), "Block.trunkLayer: the same object");
    // new copies: the table is written again, pointing at them (the old ones are freed)
    m.packDecodeWeights();
    assertSame(step(m, 5), first, "after packing again");
    step(m, 5);
    assert.equal(writes, 2 * nLayer * 4, "written again once");
  } finally {
    WasmPackedLayer.prototype.pick = pick;
    m.dispose();
    await useBackend("ref");
  }
});

test("no packed copy is made past the heap's budget for them: the model decodes from its row-major matrices [wasm, 1 thread]", async () => {
  await useBackend("wasm", { threads: 1 });
  const m = model(64, 4);
  const h = heap();
  const stats = h.stats.bind(h);
  try {
    const want = step(m, 5);
    // a heap whose live tensors are one byte short of the budget: no block has room
    h.stats = () => ({ ...stats(), liveBytes: PACK_BUDGET_BYTES - 1 });
    assert.equal(m.packDecodeWeights(), 0, "nothing packed");
    h.stats = stats;
    assertSame(step(m, 5), want, "the step");
    assert.ok(m.packDecodeWeights() > 0, "packed with room");
  } finally {
    h.stats = stats;
    m.dispose();
    await useBackend("ref");
  }
});
