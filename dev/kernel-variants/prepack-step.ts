// The batched decode step (bench/decode-batch.ts's) with the trunk's weight matrices packed once
// (rows-prepacked-b.patch: packRegister, rowsTimesB looks each B up by address) against the
// shipped path, in turns in one process on one model (packUse switches the lookup off and on).
// Every row product of 2+ rows finds its matrix (a projection's share of K, where the threads split
// GPT-2's weights, is packed as its own); one row takes the one-row kernel as shipped.
//   git apply dev/kernel-variants/rows-prepacked-b.patch && npm run build:wasm
//   node --import tsx dev/kernel-variants/prepack-step.ts [--model big|gpt2] [--rows 1,8,16] [--threads T] [--steps S] [--rounds N]
//        [--prompt N] (R prompts of N rows a step, as decode-batch's)
import { AttentionCache, DecodeBuffers, GPT, makeConfig, useBackend } from "../../src/index.js";
import { arg } from "../../bench/args.js";
import { median } from "../../bench/stats.js";
import { heap } from "../../src/tensor/memory.js";
import { BIGGER_SHAPE, GPT2_SHAPE } from "../../bench/shapes.js";

const which = arg("model", "big");
const rowCounts = arg("rows", "1,8,16").split(",").map(Number);
const shapes = {
  big: BIGGER_SHAPE,
  gpt2: GPT2_SHAPE,
} as const;
const shape = shapes[which as keyof typeof shapes];
if (!shape) throw new Error(`--model ${which}: use big or gpt2`);
const steps = Number(arg("steps", which === "big" ? "24" : "6"));
const rounds = Number(arg("rounds", "3"));
const threads = Number(arg("threads", "1"));
const pos0 = 16;
const prompt = Number(arg("prompt", "1"));

// biome-ignore lint/suspicious/noExplicitAny: the backend's kernel exports, an experiment's extra ones
const be = (await useBackend("wasm", { threads })) as any;
const x = be.x as Record<string, (...a: number[]) => number>;
if (!x.packRegister) throw new Error("this build has no packRegister: apply the patches and build");
const model = new GPT(makeConfig({ ...shape, dropout: 0 }), 1337);
const C = shape.nEmbd;
let registered = 0;
// biome-ignore lint/suspicious/noExplicitAny: the blocks' linear layers
for (const block of model.h as any[]) {
  for (const [lin, K, N] of [
    [block.attn.c_attn, C, 3 * C],
    [block.attn.c_proj, C, C],
    [block.mlp.c_fc, C, 4 * C],
    [block.mlp.c_proj, 4 * C, C],
  ]) {
    const w = lin.plain().weight;
    const bp = heap().alloc(x.rowsPackedBytes?.(K, N) as number);
    registered += x.packRegister?.(bp, w.ptr, K, N) as number;
  }
  // the projections' shares of K where the threads split a block's weights (decode.ts's bounds)
  const H = 4 * C;
  const nh = shape.nHead;
  const share = (w: number, k0: number, k1: number) => {
    const bp = heap().alloc(x.rowsPackedBytes?.(k1 - k0, C) as number);
    registered += x.packRegister?.(bp, w + k0 * C * 4, k1 - k0, C) as number;
  };
  if (be.sched.rowParts(2 * C * H, Math.floor(H / 8)) > 1) {
    const bounds = be.sched.shares(H, be.sched.rowParts(2 * C * H, Math.floor(H / 8)), 2 * C * H, 8) as number[];
    for (let t = 0; t + 1 < bounds.length; t++) share(block.mlp.c_proj.plain().weight.ptr, bounds[t] as number, bounds[t + 1] as number);
  }
  if (be.sched.rowParts(4 * C * C, nh) > 1) {
    const bounds = be.sched.shares(nh, be.sched.rowParts(4 * C * C, nh), 4 * C * C, 1) as number[];
    for (let t = 0; t + 1 < bounds.length; t++)
      share(block.attn.c_proj.plain().weight.ptr, ((bounds[t] as number) * C) / nh, ((bounds[t + 1] as number) * C) / nh);
  }
}
console.log(`${which}, ${threads} thread(s)${prompt > 1 ? `, prompts of ${prompt}` : ""}: ${registered} matrices packed; ms a step (wall) per round, shipped | packed in turns`);
for (const R of rowCounts) {
  const caches = Array.from({ length: R }, () => Array.from({ length: shape.nLayer }, () => new AttentionCache(shape.blockSize, shape.nEmbd)));
  const buffers = new DecodeBuffers(model.config, R * prompt);
  const step = (s: number) =>
    model.decode(
      prompt === 1
        ? caches.map((cache, r) => ({ id: (r + s) % shape.vocabSize, pos: pos0 + r + (s % 32), cache }))
        : caches.flatMap((cache, r) =>
            Array.from({ length: prompt }, (_, i) => ({ id: (r + i) % shape.vocabSize, pos: i, cache, logits: i === prompt - 1 })),
          ),
      buffers,
    );
  const t: number[][] = [[], []];
  const hits: number[] = [];
  let logits: Float32Array[] = [];
  for (let round = 0; round < rounds; round++)
    for (const use of [0, registered]) {
      x.packUse?.(use);
      step(0);
      x.packHits?.();
      const t0 = performance.now();
      for (let s = 1; s <= steps; s++) step(s);
      t[use ? 1 : 0]?.push((performance.now() - t0) / steps);
      if (use) hits.push(x.packHits?.() as number);
      // the same inputs both ways: bits compared on the first round
      if (round === 0) logits.push(Float32Array.from(step(1)));
    }
  const [a = new Float32Array(), b = new Float32Array()] = logits;
  let same = a.length === b.length;
  for (let i = 0; i < a.length && same; i++) same = Object.is(a[i], b[i]);
  logits = [];
  const f = (v: number[]) => v.map((m) => m.toFixed(2)).join(" / ");
  console.log(
    `R ${String(R).padStart(2)}: shipped ${f(t[0] as number[])}  packed ${f(t[1] as number[])}  (medians ${median(t[0] as number[]).toFixed(2)} -> ${median(t[1] as number[]).toFixed(2)}, ${(median(t[0] as number[]) / median(t[1] as number[])).toFixed(2)}x; packed calls a round ${hits.join(" ")}; logits ${same ? "identical" : "DIFFER"})`,
  );
  buffers.dispose();
}
