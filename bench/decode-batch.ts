// The batched decode step on its own (GPT.decode of R rows, each its own sequence, position and KV
// cache): time per step and tokens per second for R = 1, 4, 16, in turns, one kernel thread (--threads). Both
// wall and CPU time (process.cpuUsage): on a machine shared with other jobs, CPU time says what the
// kernels cost and wall time what a client would have seen. Random weights (GPT-2 init, seeded).
//   big   the bigger recipe's model (6 layers, 384 wide, block 256, vocabulary 65)
//   gpt2  GPT-2 124M's shape (12 layers, 768 wide, block 1024, vocabulary 50,257)
//
//   node --import tsx bench/decode-batch.ts [--model big|gpt2] [--rows 1,4,16] [--steps S] [--rounds N] [--threads T]
//        [--pos P]   (row r starts at position P + r: its cache holds that many rows; default 16)
//        [--prompt N] (each of the R sequences feeds N rows a step, positions 0..N-1, logits for the
//                     last only: R prompts joining at once, as the server's prompt steps; default 1)
//        [--packed 1]  the blocks' matrices packed for many rows first, as the server does
//                      (GPT.packDecodeWeights); default 0: row-major only, as `minigpt generate`
import { AttentionCache, DecodeBuffers, GPT, makeConfig, useBackend } from "../src/index.js";
import { arg, expectArgs } from "./args.js";
import { BIGGER_SHAPE, GPT2_SHAPE } from "./shapes.js";
import { median } from "./stats.js";

expectArgs("bench/decode-batch.ts", ["model", "rows", "steps", "rounds", "threads", "pos", "prompt", "packed"]);
const which = arg("model", "big");
const rowCounts = arg("rows", "1,4,16").split(",").map(Number);
const shapes = {
  big: BIGGER_SHAPE,
  gpt2: GPT2_SHAPE,
} as const;
const shape = shapes[which as keyof typeof shapes];
if (!shape) throw new Error(`--model ${which}: use big or gpt2`);
const steps = Number(arg("steps", which === "big" ? "24" : "6"));
const rounds = Number(arg("rounds", "3"));
const threads = Number(arg("threads", "1"));
const pos0 = Number(arg("pos", "16"));
const prompt = Number(arg("prompt", "1"));
if (!(Number.isInteger(prompt) && prompt >= 1 && prompt <= shape.blockSize)) throw new Error(`--prompt ${prompt}: 1 to ${shape.blockSize}`);

await useBackend("wasm", { threads });
const model = new GPT(makeConfig({ ...shape, dropout: 0 }), 1337);
const packed = arg("packed", "0") === "1";
if (packed) model.packDecodeWeights();
const wall: Record<number, number[]> = {};
const cpu: Record<number, number[]> = {};
for (let round = 0; round < rounds; round++) {
  for (const R of rowCounts) {
    const caches = Array.from({ length: R }, () =>
      Array.from({ length: shape.nLayer }, () => new AttentionCache(shape.blockSize, shape.nEmbd)),
    );
    const buffers = new DecodeBuffers(model.config, R * prompt);
    // rows at positions pos0 + r (ragged), each step one position further; or each sequence's
    // prompt of `prompt` rows at positions 0.. (the same rows again every step)
    const step = (s: number) =>
      model.decode(
        prompt === 1
          ? caches.map((cache, r) => ({ id: (r + s) % shape.vocabSize, pos: pos0 + r + s, cache }))
          : caches.flatMap((cache, r) =>
              Array.from({ length: prompt }, (_, i) => ({ id: (r + i) % shape.vocabSize, pos: i, cache, logits: i === prompt - 1 })),
            ),
        buffers,
      );
    step(0);
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    for (let s = 1; s <= steps; s++) step(s);
    const c = process.cpuUsage(c0);
    wall[R] = [...(wall[R] ?? []), (performance.now() - t0) / steps];
    cpu[R] = [...(cpu[R] ?? []), (c.user + c.system) / 1000 / steps];
    buffers.dispose();
    for (const layers of caches) for (const layer of layers) layer.dispose();
  }
}
const rows = rowCounts.map((R) => {
  const w = median(wall[R] ?? []);
  const c = median(cpu[R] ?? []);
  return { rows: R, wall_ms_per_step: w, cpu_ms_per_step: c, tokens_per_s: (R * 1000) / w, tokens_per_cpu_s: (R * 1000) / c };
});
console.error(
  `decode-batch: ${which} model${packed ? " (packed)" : ""}, ${steps} steps x ${rounds} rounds, ${threads} kernel thread(s), ${prompt === 1 ? `rows from position ${pos0}` : `each R a prompt of ${prompt} rows`} (medians)`,
);
for (const r of rows)
  console.error(
    `  R=${String(r.rows).padStart(2)}: ${r.wall_ms_per_step.toFixed(1)} ms/step wall (${r.tokens_per_s.toFixed(0)} tokens/s), ${r.cpu_ms_per_step.toFixed(1)} ms CPU (${r.tokens_per_cpu_s.toFixed(0)} tokens per CPU-second)`,
  );
console.log(JSON.stringify({ model: which, packed, steps, rounds, threads, pos: pos0, prompt, rows }));
