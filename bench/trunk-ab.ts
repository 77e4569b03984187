// A decode step's trunk two ways in one process, alternated by round so the machine's drift falls
// on both alike: Backend.trunkRows (the wasm backend: every block in one pool call; for GPT-2's
// width on 2 threads trunk-split.as, the threads meeting inside it) and block by block (Block.decode:
// attentionRows, mlpRows, two pool round trips a block). The same bits either way
// (tests/trunk-split.test.ts); this says which is faster. The steps are decode-batch.ts's (rows r at
// position 16 + r, or R prompts of --prompt rows), the matrices packed as the server packs them.
// A third way, "kept-all", is Backend.trunkRows told that every row wants its output (no keep
// flags): a prompt's rows before its last then go through the last block's attention and MLP too,
// as before the trunk skipped them; with --prompt N it says what that skip gives.
//
//   node --import tsx bench/trunk-ab.ts [--model gpt2|big] [--rows 1,16] [--rounds 10] [--steps 6]
//        [--prompt N] [--threads 2] [--ways blocks,trunk[,kept-all]]
//
// Prints per R the median ms a step of each way (and their ranges) and, per way after the first,
// its time / the first's per round. The ways' order rotates by round.
import { AttentionCache, DecodeBuffers, GPT, makeConfig, useBackend } from "../src/index.js";
import { arg, expectArgs } from "./args.js";
import { BIGGER_SHAPE, GPT2_SHAPE } from "./shapes.js";
import { median } from "./stats.js";

expectArgs("bench/trunk-ab.ts", ["model", "rows", "rounds", "steps", "prompt", "threads", "ways"]);
const shape = arg("model", "gpt2") === "big" ? BIGGER_SHAPE : GPT2_SHAPE;
const rowCounts = arg("rows", "1,16").split(",").map(Number);
const rounds = Number(arg("rounds", "10"));
const steps = Number(arg("steps", "6"));
const prompt = Number(arg("prompt", "1"));
const WAYS = ["blocks", "trunk", "kept-all"];
const ways = arg("ways", "blocks,trunk").split(",");
for (const w of ways) if (!WAYS.includes(w)) throw new Error(`--ways: ${w} is not one of ${WAYS.join(", ")}`);
const kernels = await useBackend("wasm", { threads: Number(arg("threads", "2")) });
const model = new GPT(makeConfig({ ...shape, dropout: 0 }), 1337);
model.packDecodeWeights();
const trunkRows = kernels.trunkRows?.bind(kernels);
const ms = new Map<string, number[]>();
for (let round = 0; round < rounds; round++) {
  // which way goes first rotates too
  const order = ways.map((_, i) => ways[(i + round) % ways.length] as string);
  for (const R of rowCounts)
    for (const way of order) {
      kernels.trunkRows =
        way === "blocks" || !trunkRows ? undefined : way === "trunk" ? trunkRows : (t) => trunkRows({ ...t, outputs: undefined });
      const caches = Array.from({ length: R }, () =>
        Array.from({ length: shape.nLayer }, () => new AttentionCache(shape.blockSize, shape.nEmbd)),
      );
      const buffers = new DecodeBuffers(model.config, R * prompt);
      // the rows the steps write, touched first (as decode-batch.ts does)
      const lastPos = prompt === 1 ? 16 + R + steps : prompt;
      for (const layers of caches)
        for (const l of layers) for (const t of [l.keys, l.values]) t.data.fill(0, 0, Math.min(lastPos + 1, shape.blockSize) * shape.nEmbd);
      const step = (s: number) =>
        model.decode(
          prompt === 1
            ? caches.map((cache, r) => ({ id: (r + s) % shape.vocabSize, pos: 16 + r + s, cache }))
            : caches.flatMap((cache, r) =>
                Array.from({ length: prompt }, (_, i) => ({ id: (r + i) % shape.vocabSize, pos: i, cache, logits: i === prompt - 1 })),
              ),
          buffers,
        );
      step(0);
      const t0 = performance.now();
      for (let s = 1; s <= steps; s++) step(s);
      const key = `${way} ${R}`;
      ms.set(key, [...(ms.get(key) ?? []), (performance.now() - t0) / steps]);
      buffers.dispose();
      for (const layers of caches) for (const l of layers) l.dispose();
    }
}
kernels.trunkRows = trunkRows;
const f = (a: number[]) => `${median(a).toFixed(1)} (${Math.min(...a).toFixed(1)}-${Math.max(...a).toFixed(1)})`;
for (const R of rowCounts) {
  const first = ms.get(`${ways[0]} ${R}`) ?? [];
  const parts = ways.map((w) => `${w} ${f(ms.get(`${w} ${R}`) ?? [])} ms`);
  for (const w of ways.slice(1)) {
    const ratios = (ms.get(`${w} ${R}`) ?? []).map((t, i) => t / (first[i] as number));
    parts.push(
      `${w} / ${ways[0]} per round ${median(ratios).toFixed(3)} (${Math.min(...ratios).toFixed(3)}-${Math.max(...ratios).toFixed(3)})`,
    );
  }
  console.log(`R=${R}${prompt > 1 ? ` (prompts of ${prompt})` : ""}: ${parts.join("; ")}`);
}
process.exit(0);
