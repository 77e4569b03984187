// The model's one path (src/nn/): the layers built once and used by the training forward, the
// KV-cache prefill and the one-token decode; the Linear seam a LoRA adapter or quantized weights
// plug into; the ragged decode of several sequences in one step.
import assert from "node:assert/strict";
import { test } from "node:test";
import { KVCache } from "../src/generate/kvcache.js";
import { useBackend } from "../src/kernels/index.js";
import { AttentionCache } from "../src/nn/attention-cache.js";
import { makeConfig } from "../src/nn/config.js";
import { DecodeBuffers } from "../src/nn/decode-step.js";
import { GPT } from "../src/nn/gpt.js";
import { Linear } from "../src/nn/linear.js";
import type { Tensor } from "../src/tensor/tensor.js";

const backends = [
  { name: "ref", threads: 1 },
  { name: "wasm", threads: 1 },
] as const;

/** a Linear that is not "plain": the decode must take its rows() instead of a fused kernel */
class Opaque extends Linear {
  rowCalls = 0;
  override rows(out: Tensor, x: Tensor, M: number): void {
    this.rowCalls++;
    super.rows(out, x, M);
  }
  override plain(): null {
    return null;
  }
}

const config = (activation: "gelu_new" | "relu") =>
  makeConfig({ vocabSize: 97, blockSize: 24, nLayer: 2, nHead: 4, nEmbd: 32, dropout: 0, activation });

/** the logits of every position of `ids` through a KV cache: a prefill of `prefill` tokens, then one at a time */
function cachedLogits(model: GPT, ids: number[], prefill: number): Float32Array[] {
  const cache = new KVCache(model);
  const out = [cache.append(ids.slice(0, prefill))];
  for (const id of ids.slice(prefill)) out.push(cache.append([id]));
  cache.dispose();
  return out;
}

for (const be of backends) {
  test(`a Linear with no plain weights is decoded through its rows(), with the fused kernels' bits [${be.name}]`, async () => {
    await useBackend(be.name, { threads: be.threads });
    try {
      for (const activation of ["gelu_new", "relu"] as const) {
        const model = new GPT(config(activation), 11);
        const ids = [3, 50, 7, 96, 12, 0, 41, 41, 8];
        const want = cachedLogits(model, ids, 3);
        const opaque: Opaque[] = [];
        const wrap = (lin: Linear) => {
          const o = new Opaque(lin.weight, lin.bias);
          opaque.push(o);
          return o;
        };
        for (const block of model.h) {
          block.attn.c_attn = wrap(block.attn.c_attn);
          block.attn.c_proj = wrap(block.attn.c_proj);
          block.mlp.c_fc = wrap(block.mlp.c_fc);
          block.mlp.c_proj = wrap(block.mlp.c_proj);
        }
        const got = cachedLogits(model, ids, 3);
        assert.ok(
          opaque.every((o) => o.rowCalls === ids.length - 3),
          "every replaced layer computed each decoded row",
        );
        for (let i = 0; i < want.length; i++) assert.deepEqual(got[i], want[i], `${activation}: logits of step ${i} differ`);
      }
    } finally {
      await useBackend("ref");
    }
  });

  test(`a ragged decode step of several sequences gives each row the bits of that sequence decoded alone [${be.name}]`, async () => {
    await useBackend(be.name, { threads: be.threads });
    try {
      const model = new GPT(config("gelu_new"), 5);
      const { nLayer, blockSize, nEmbd, vocabSize: V } = model.config;
      const prompts = [[1, 2, 3], [40, 41, 42, 43, 44, 45, 46], [9], [60, 61]];
      const next = [5, 6, 7, 8];
      // alone: each sequence through its own KV cache
      const alone = prompts.map((p, r) => {
        const cache = new KVCache(model);
        if (p.length > 1) cache.append(p.slice(0, -1));
        cache.append([p[p.length - 1] as number]);
        const logits = cache.append([next[r] as number]);
        cache.dispose();
        return logits;
      });
      // together: the same prefills, then the last prompt token and the next one as two steps of all rows
      const caches = prompts.map(() => Array.from({ length: nLayer }, () => new AttentionCache(blockSize, nEmbd)));
      prompts.forEach((p, r) => {
        if (p.length > 1) model.prefill(p.slice(0, -1), caches[r] as AttentionCache[], 0);
      });
      const buffers = new DecodeBuffers(model.config, prompts.length);
      const step = (ids: number[], offset: number) =>
        model.decode(
          ids.map((id, r) => ({ id, pos: (prompts[r] as number[]).length - 1 + offset, cache: caches[r] as AttentionCache[] })),
          buffers,
        );
      step(
        prompts.map((p) => p[p.length - 1] as number),
        0,
      );
      const together = step(next, 1);
      for (let r = 0; r < prompts.length; r++) assert.deepEqual(together.slice(r * V, (r + 1) * V), alone[r], `row ${r}`);
      buffers.dispose();
      for (const c of caches) for (const layer of c) layer.dispose();
    } finally {
      await useBackend("ref");
    }
  });
}

test("the training forward, the prefill and the one-token decode are one set of layers over model.params", () => {
  const model = new GPT(config("gelu_new"), 2);
  const names = new Set<Tensor>();
  const add = (t: Tensor) => names.add(t);
  add(model.wte.weight);
  add(model.wpe.weight);
  for (const b of model.h) {
    for (const t of [b.ln_1.weight, b.ln_1.bias, b.ln_2.weight, b.ln_2.bias]) add(t);
    for (const l of [b.attn.c_attn, b.attn.c_proj, b.mlp.c_fc, b.mlp.c_proj]) {
      add(l.weight);
      add(l.bias);
    }
  }
  add(model.ln_f.weight);
  add(model.ln_f.bias);
  assert.deepEqual(new Set(model.params.values()), names);
});
