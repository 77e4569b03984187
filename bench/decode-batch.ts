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
//        [--kernels]  (also where a step's wall time goes: every backend call timed, ms a step per
//                     kernel; a kernel's time on 2 threads includes waiting for the helper)
// The caches' rows the steps will write are touched once before the timing (a server's caches come
// from its heap's free list, already touched; fresh pages cost the first steps a page fault each:
// ~3-7 ms of GPT-2's 16-row step on 2 threads, all in attentionRows, which writes the k and v rows).
import { AttentionCache, DecodeBuffers, GPT, makeConfig, useBackend } from "../src/index.js";
import { arg, expectArgs } from "./args.js";
import { timeBackendCalls } from "./backend-calls.js";
import { BIGGER_SHAPE, GPT2_SHAPE } from "./shapes.js";
import { median } from "./stats.js";

expectArgs("bench/decode-batch.ts", ["model", "rows", "steps", "rounds", "threads", "pos", "prompt", "packed"], ["kernels"]);
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
// --kernels: ms per kernel, summed over the timed steps of every round, for the R being timed
const kernelMs = new Map<number, Map<string, number>>();
let timedR = 0;
if (process.argv.includes("--kernels")) {
  timeBackendCalls(
    () => timedR > 0,
    (name, _args, ms) => {
      const byName = kernelMs.get(timedR) ?? new Map<string, number>();
      byName.set(name, (byName.get(name) ?? 0) + ms);
      kernelMs.set(timedR, byName);
    },
  );
}
const wall: Record<number, number[]> = {};
const cpu: Record<number, number[]> = {};
for (let round = 0; round < rounds; round++) {
  for (const R of rowCounts) {
    const caches = Array.from({ length: R }, () =>
      Array.from({ length: shape.nLayer }, () => new AttentionCache(shape.blockSize, shape.nEmbd)),
    );
    const buffers = new DecodeBuffers(model.config, R * prompt);
    // the rows the steps write, touched (see above)
    const lastPos = prompt === 1 ? pos0 + R + steps : prompt;
    for (const layers of caches)
      for (const layer of layers)
        for (const t of [layer.keys, layer.values]) t.data.fill(0, 0, Math.min(lastPos + 1, shape.blockSize) * shape.nEmbd);
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
    timedR = R;
    for (let s = 1; s <= steps; s++) step(s);
    timedR = 0;
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
for (const [R, byName] of kernelMs) {
  const perStep = (ms: number) => ms / (steps * rounds);
  console.error(`  R=${String(R).padStart(2)} by kernel (ms a step, mean of all rounds):`);
  for (const [name, ms] of [...byName].sort((x, y) => y[1] - x[1])) console.error(`    ${perStep(ms).toFixed(2).padStart(8)}  ${name}`);
}
const kernels = Object.fromEntries(
  [...kernelMs].map(([R, byName]) => [R, Object.fromEntries([...byName].map(([n, ms]) => [n, ms / (steps * rounds)]))]),
);
console.log(
  JSON.stringify({ model: which, packed, steps, rounds, threads, pos: pos0, prompt, rows, ...(kernelMs.size > 0 ? { kernels } : {}) }),
);
