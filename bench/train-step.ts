// One training step of minigpt, timed like the trainer runs it: batch sampling, forward, backward
// inside scope(), global-norm clip 1.0, AdamW. Warm-up steps are excluded; the median is reported.
// Also measures memory growth per step after warm-up (the tensor heap and the JS process).
// Prints one JSON object on stdout (bench/run.ts runs one process per setting).
//
//   node --expose-gc --import tsx bench/train-step.ts [--recipe small|big] [--backend wasm|ref]
//        [--threads N] [--parallel batch|kernels] [--grad-shards S] [--warmup W] [--steps N] [--grad-accum K] [--serve]
//
// --serve: after the warm-up, print {"ready":true}, then for each line N read from stdin run N steps
// and print {"times":[ms, ...]}, until stdin closes. bench/run.ts times minigpt and PyTorch so, in
// alternating blocks, each process warm and waiting while the other runs.
//
// --parallel as `minigpt train --parallel`: batch (default) = data parallel, each thread runs the
// model on its rows of the batch (src/train/parallel.ts); kernels = big kernels split over threads.
// --grad-shards as `minigpt train --grad-shards` (default 2, as there): each micro-batch is cut into S
// shards whose gradients are added in order, the same bits on any thread count; 1 = the whole
// micro-batch in one forward/backward (what a 1-thread step was before shards). What shards cost a
// 1-thread step: --threads 1 --grad-shards 1 against --grad-shards 2, in turns.
//
// small = nanoGPT's CPU recipe (4 layers, 4 heads, 128 wide, block 64, batch 12);
// big   = 6 layers, 6 heads, 384 wide, block 256, batch 64. Vocabulary: tiny Shakespeare's 65
// characters (random tokens over 65 ids when the file is absent).
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import {
  AdamW,
  BatchSampler,
  backend,
  CharTokenizer,
  createStepper,
  GPT,
  heap,
  loadTextSource,
  makeConfig,
  Rng,
  splitTokens,
  useBackend,
} from "../src/index.js";
import { arg, expectArgs } from "./args.js";
import { median } from "./stats.js";
import { makeTrainStep, RECIPES } from "./step.js";

expectArgs("bench/train-step.ts", ["recipe", "backend", "threads", "parallel", "grad-shards", "warmup", "steps", "grad-accum"], ["serve"]);

const repoRoot = resolve(fileURLToPath(new URL("..", import.meta.url)));
const DATA = resolve(repoRoot, "../shared/data/tinyshakespeare/input.txt");

const recipeName = arg("recipe", "small") as keyof typeof RECIPES;
const recipe = RECIPES[recipeName];
if (!recipe) throw new Error(`--recipe ${recipeName}: use small or big`);
const backendName = arg("backend", "wasm") as "wasm" | "ref";
const threads = Number(arg("threads", "1"));
const parallelMode = arg("parallel", "batch");
if (parallelMode !== "batch" && parallelMode !== "kernels") throw new Error(`--parallel ${parallelMode}: use batch or kernels`);
const warmup = Number(arg("warmup", recipeName === "small" ? "5" : "1"));
const steps = Number(arg("steps", recipeName === "small" ? "30" : "3"));
// Micro-batches per step (gradient accumulation, as the trainer's --grad-accum). The bigger recipe's
// batch of 64 x 256 in one piece needs more than wasm32's 4 GiB (every activation and its gradient
// live until the step's scope ends), so by default it runs as 4 micro-batches of 16: the same work.
const accum = Number(arg("grad-accum", recipeName === "small" ? "1" : "4"));
if (recipe.batchSize % accum !== 0) throw new Error(`--grad-accum ${accum} must divide the batch size ${recipe.batchSize}`);
const shards = Number(arg("grad-shards", "2"));
if ((recipe.batchSize / accum) % shards !== 0)
  throw new Error(`--grad-shards ${shards} must divide the micro-batch ${recipe.batchSize / accum}`);

await useBackend(backendName, { threads });

// data: tiny Shakespeare through the char tokenizer, as the quality benchmark trains on it
let tokens: Int32Array;
let dataName: string;
if (existsSync(DATA)) {
  const text = loadTextSource(DATA).text;
  const tok = CharTokenizer.fromText(text);
  tokens = splitTokens(Int32Array.from(tok.encode(text, { specialsAsText: true })), 0.1).train;
  dataName = "tiny shakespeare";
} else {
  const rng = new Rng(0);
  tokens = Int32Array.from({ length: 1_000_000 }, () => Math.floor(rng.random() * 65));
  dataName = "random tokens";
}
const vocabSize = 65;
const config = makeConfig({ vocabSize, ...recipe, dropout: 0 });
const model = new GPT(config, 1337);
const optimizer = new AdamW(model.params, { lr: 1e-3, beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: 0.1 });
const sampler = new BatchSampler(tokens, recipe.blockSize, recipe.batchSize / accum, new Rng(1338));
const schedule = { lr: 1e-3, minLr: 1e-4, warmupSteps: 100, decaySteps: 2000 };
const T = recipe.blockSize;
const stepper = await createStepper(model, parallelMode === "batch" ? threads : 1, shards);

const trainStep = makeTrainStep({ model, optimizer, sampler, T, accum, stepper, schedule });

const gc = (globalThis as { gc?: () => void }).gc;
function snapshot() {
  gc?.();
  const m = process.memoryUsage();
  const h = heap().stats();
  return {
    rss: m.rss,
    heapUsed: m.heapUsed,
    external: m.external,
    arrayBuffers: m.arrayBuffers,
    wasmReserved: h.reservedBytes,
    wasmLive: h.liveBytes,
  };
}

for (let i = 0; i < warmup; i++) trainStep();

let lastLoss = 0;
function timedSteps(n: number): number[] {
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    lastLoss = trainStep();
    times.push(performance.now() - t0);
  }
  return times;
}

if (process.argv.includes("--serve")) {
  console.log(JSON.stringify({ ready: true }));
  for await (const line of createInterface({ input: process.stdin })) {
    const n = Number(line);
    if (!(n >= 1)) continue;
    console.log(JSON.stringify({ times: timedSteps(n) }));
  }
  stepper.dispose();
  (backend() as { dispose?: () => void }).dispose?.();
  process.exit(0);
}

const before = snapshot();
const times = timedSteps(steps);
const after = snapshot();
const medianMs = median(times);
const perStep = (k: keyof typeof before) => (after[k] - before[k]) / steps;
const b = backend() as { stats?: { fast: number; fallback: number; parallel: number }; simd?: string; tile?: string; threads?: number };

console.log(
  JSON.stringify({
    part: `train-${recipeName}`,
    backend: backendName,
    threads: backendName === "wasm" ? (b.threads ?? threads) : 1,
    parallel: parallelMode,
    data_parallel_threads: stepper.threads,
    grad_shards: shards,
    simd: b.simd,
    tile: b.tile,
    data: dataName,
    median_ms: medianMs,
    min_ms: Math.min(...times),
    steps,
    warmup,
    grad_accum: accum,
    tokens_per_s: (recipe.batchSize * recipe.blockSize * 1000) / medianMs,
    params: model.parameterCount(),
    last_loss: lastLoss,
    // bytes per step after warm-up (gc'd before each snapshot when run with --expose-gc)
    growth_per_step: {
      wasm_reserved: perStep("wasmReserved"),
      wasm_live: perStep("wasmLive"),
      js_heap_used: perStep("heapUsed"),
      external: perStep("external"),
      rss: perStep("rss"),
    },
    gc_exposed: gc !== undefined,
    wasm_reserved_mb: after.wasmReserved / 2 ** 20,
    kernel_calls: b.stats,
    peak_rss_mb: process.resourceUsage().maxRSS / 1024,
  }),
);
stepper.dispose();
(backend() as { dispose?: () => void }).dispose?.();
process.exit(0);
