// The server's continuous batched decode (src/server/engine.ts): the rows of every request in flight
// share one GPT.decode call a step, requests join and leave between steps, and each request's
// tokens, text and log probabilities are bit for bit those of the request decoded alone.
import assert from "node:assert/strict";
import { test } from "node:test";
import type { ModelFolder } from "../src/io/folder.js";
import { useBackend } from "../src/kernels/index.js";
import { makeConfig } from "../src/nn/config.js";
import { DecodeBuffers, type DecodeRow } from "../src/nn/decode-step.js";
import { GPT } from "../src/nn/gpt.js";
import { Engine, type EngineEvent } from "../src/server/engine.js";
import type { GenerationRequest } from "../src/server/params.js";
import { CharTokenizer } from "../src/tokenizer/char.js";
import { madeUpStep, type StepSequence } from "./decode-helpers.js";

const TEXT = "the sea and the whale, the ship and the sailor; a storm at night.\n";

function folder(nEmbd: number, nHead: number): ModelFolder {
  const tokenizer = CharTokenizer.fromText(TEXT);
  const model = new GPT(makeConfig({ vocabSize: tokenizer.vocabSize, blockSize: 64, nLayer: 2, nHead, nEmbd, dropout: 0 }), 9);
  return { dir: "mem", model, tokenizer, info: {}, checkpointStep: undefined };
}

function request(k: number): GenerationRequest {
  return {
    kind: "completion",
    model: "t",
    // prompts of different lengths: the batch is ragged (each row its own position and cache length)
    prompt: TEXT.slice(0, 3 + 5 * k),
    messages: [],
    maxTokens: 6 + 2 * k,
    temperature: 1,
    topP: 1,
    topK: 0,
    stop: [],
    seed: 100 + k,
    n: 1 + (k % 2),
    logprobs: 2,
    stream: false,
    includeUsage: false,
  };
}

/** steps the engine until every request is done; per request id, its events in order */
function drain(engine: Engine): Map<number, EngineEvent[]> {
  const out = new Map<number, EngineEvent[]>();
  for (let guard = 0; engine.busy; guard++) {
    assert.ok(guard < 1000, "the engine never finished");
    for (const e of engine.step()) out.set(e.id, [...(out.get(e.id) ?? []), e]);
  }
  return out;
}

for (const be of [
  { name: "ref", threads: 1, nEmbd: 32, nHead: 4, trunk: false },
  // 4·C² >= 2^21 floats: the attention's heads and the MLP's hidden units are split over 2 threads,
  // every block in one call (Backend.trunkRows: trunk-split.as)
  { name: "wasm", threads: 2, nEmbd: 768, nHead: 12, trunk: true },
  // weights too small to split: the rows are, whole sequences to a thread, each taken through every
  // block in one call (Backend.trunkRows)
  { name: "wasm", threads: 2, nEmbd: 64, nHead: 4, trunk: true },
] as const) {
  test(`8 requests decoded together (one GPT.decode a step) equal each decoded alone, bit for bit [${be.name}, ${be.threads} thread(s)]`, async () => {
    const kernels = await useBackend(be.name, { threads: be.threads });
    const f = folder(be.nEmbd, be.nHead);
    const trunkRows = kernels.trunkRows?.bind(kernels);
    let trunkSteps = 0;
    if (trunkRows)
      kernels.trunkRows = (t) => {
        const done = trunkRows(t);
        if (done && t.R >= 8) trunkSteps++;
        return done;
      };
    const decode = f.model.decode.bind(f.model);
    const batchSizes: number[] = [];
    f.model.decode = (rows: readonly DecodeRow[], buffers: DecodeBuffers) => {
      // the rows that get logits (a prompt's rows before its last get none)
      batchSizes.push(rows.filter((r) => r.logits !== false).length);
      return decode(rows, buffers);
    };
    try {
      const alone: EngineEvent[][] = [];
      for (let k = 0; k < 8; k++) {
        const engine = new Engine(f, "t");
        engine.start(k, request(k));
        alone.push(drain(engine).get(k) ?? []);
      }
      assert.ok(Math.max(...batchSizes) <= 2, "alone, a request decodes its n rows together");
      batchSizes.length = 0;
      const engine = new Engine(f, "t");
      // four start at once, the others join between steps; each leaves when its max_tokens are out
      for (let k = 0; k < 4; k++) engine.start(k, request(k));
      const together = new Map<number, EngineEvent[]>();
      const collect = (events: EngineEvent[]) => {
        for (const e of events) together.set(e.id, [...(together.get(e.id) ?? []), e]);
      };
      collect(engine.step());
      collect(engine.step());
      for (let k = 4; k < 8; k++) engine.start(k, request(k));
      for (const [id, events] of drain(engine)) for (const e of events) collect([{ ...e, id }]);
      assert.ok(Math.max(...batchSizes) >= 8, `the rows shared decode calls (most rows in one: ${Math.max(...batchSizes)})`);
      for (let k = 0; k < 8; k++) assert.deepEqual(together.get(k), alone[k], `request ${k}`);
      assert.equal(trunkSteps > 0, be.trunk, "steps of 8 rows or more went through Backend.trunkRows");
    } finally {
      if (trunkRows) kernels.trunkRows = trunkRows;
      f.model.dispose();
      await useBackend("ref");
    }
  });
}

test("stepAsync (the GPU's step) gives step's events bit for bit; requests started or cancelled while it waits join or leave cleanly [wasm]", async () => {
  await useBackend("wasm", { threads: 1 });
  const f = folder(32, 4);
  try {
    const collect = (into: Map<number, EngineEvent[]>, events: EngineEvent[]) => {
      for (const e of events) into.set(e.id, [...(into.get(e.id) ?? []), e]);
    };
    // step(): requests 0-3 at once, 4 and 5 after the second step
    const sync = new Engine(f, "t");
    const expected = new Map<number, EngineEvent[]>();
    for (let k = 0; k < 4; k++) sync.start(k, request(k));
    collect(expected, sync.step());
    collect(expected, sync.step());
    for (let k = 4; k < 6; k++) sync.start(k, request(k));
    for (const events of drain(sync).values()) collect(expected, events);

    // stepAsync(): 4 and 5 start while the second step waits, so they join the third, as above;
    // request 6 (a prompt of several steps) is cancelled while a step waits: nothing more of it
    const async = new Engine(f, "t");
    const got = new Map<number, EngineEvent[]>();
    for (let k = 0; k < 4; k++) async.start(k, request(k));
    async.start(6, { ...request(6), prompt: TEXT.slice(0, 50), maxTokens: 2 });
    collect(got, await async.stepAsync());
    const second = async.stepAsync();
    for (let k = 4; k < 6; k++) async.start(k, request(k));
    async.cancel(6);
    collect(got, await second);
    for (let guard = 0; async.busy; guard++) {
      assert.ok(guard < 1000, "the engine never finished");
      collect(got, await async.stepAsync());
    }
    assert.equal(got.has(6), false, "the cancelled request has no events");
    for (let k = 0; k < 6; k++) assert.deepEqual(got.get(k), expected.get(k), `request ${k}`);
  } finally {
    f.model.dispose();
    await useBackend("ref");
  }
});

for (const threads of [1, 2]) {
  test(`a prompt's rows before its last skip the last block's attention and MLP in Backend.trunkRows; logits and every cache row keep the bits of all rows through every block [wasm, ${threads} thread(s)]`, async () => {
    const kernels = await useBackend("wasm", { threads });
    const f = folder(64, 4);
    const { nEmbd: C, vocabSize: V } = f.model.config;
    // a step as the engine builds it, prompts first: a prompt's first chunk (no logits at all: with
    // 2 threads, alone on one), a whole prompt, a chunk that ends a prompt, then one-token rows
    const sequences: StepSequence[] = [
      { pos: 0, n: 12, logits: false },
      { pos: 0, n: 5, logits: true },
      { pos: 3, n: 4, logits: true },
      { pos: 7, n: 1, logits: true },
      { pos: 2, n: 1, logits: true },
    ];
    /** the step's rows over fresh caches (earlier positions: the same made-up k and v each run), its logits, x and the caches */
    const run = () => {
      const { rows, caches } = madeUpStep(f.model.config, sequences, (s, i) => (5 * s + 3 * i) % V);
      const buffers = new DecodeBuffers(f.model.config, rows.length);
      const logits = f.model.decode(rows, buffers).slice();
      const x = buffers.x.data.slice(0, rows.length * C);
      const kv = caches.flatMap((layers) => layers.flatMap((l) => [l.keys.data.slice(), l.values.data.slice()]));
      buffers.dispose();
      for (const layers of caches) for (const l of layers) l.dispose();
      return { rows, logits, x, kv };
    };
    const trunkRows = kernels.trunkRows?.bind(kernels);
    assert.ok(trunkRows, "the wasm backend has trunkRows");
    let trunkSteps = 0;
    try {
      kernels.trunkRows = (t) => {
        const done = trunkRows(t);
        if (done) trunkSteps++;
        return done;
      };
      const trunk = run();
      assert.equal(trunkSteps, 1, "the step went through Backend.trunkRows");
      // block by block (Block.decode): every row through every block
      kernels.trunkRows = undefined;
      const blocks = run();
      assert.deepEqual(trunk.logits, blocks.logits, "the logits");
      assert.equal(trunk.logits.length, 4 * V);
      assert.ok(
        trunk.kv.every((a, i) => Buffer.from(a.buffer).equals(Buffer.from((blocks.kv[i] as Float32Array).buffer))),
        "every layer's k and v rows, bit for bit",
      );
      // the rows that want logits leave the trunk with the same x; the others skipped the last block
      let skipped = 0;
      trunk.rows.forEach((row, r) => {
        const a = trunk.x.subarray(r * C, (r + 1) * C);
        const b = blocks.x.subarray(r * C, (r + 1) * C);
        if (row.logits) assert.deepEqual(a, b, `row ${r}'s output`);
        else if (a.some((v, i) => v !== b[i])) skipped++;
      });
      assert.equal(skipped, trunk.rows.filter((row) => !row.logits).length, "every row without logits skipped the last block");
    } finally {
      if (trunkRows) kernels.trunkRows = trunkRows;
      f.model.dispose();
      await useBackend("ref");
    }
  });
}
