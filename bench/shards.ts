// What --grad-shards costs a 1-thread training step. Shards (src/train/parallel.ts) make a run's
// weights the same bits on any thread count; on one thread they cost a forward/backward per shard
// instead of one over the whole micro-batch, plus zeroing a second set of gradient buffers and adding
// it into the model's. Two models of the same recipe train in one process, one with the whole
// micro-batch (--grad-shards 1: the 1-thread step before shards), one with S shards, in alternating
// blocks of steps (A B, then B A, ...), so that a slow minute of a shared machine hits both alike.
// Prints one JSON object: each setting's median step time, and the ratio S shards / whole per block
// (median, min, max), in wall time and in the process's CPU time (user + system): on a machine shared
// with other busy processes the wall time mostly measures the others, a step's CPU time much less.
//
//   node --import tsx bench/shards.ts [--recipe small|big] [--shards S] [--blocks N] [--block-steps K] [--warmup W]

import { BatchSampler } from "../src/data/batches.js";
import { backend, createStepper, GPT, makeConfig, Rng, useBackend } from "../src/index.js";
import { AdamW } from "../src/optim/adamw.js";
import { arg, expectArgs } from "./args.js";
import { median } from "./stats.js";
import { makeTrainStep, RECIPES } from "./step.js";

expectArgs("bench/shards.ts", ["recipe", "shards", "blocks", "block-steps", "warmup"]);
const recipeName = arg("recipe", "small") as keyof typeof RECIPES;
const recipe = RECIPES[recipeName];
if (!recipe) throw new Error(`--recipe ${recipeName}: use small or big`);
const shards = Number(arg("shards", "2"));
const blocks = Number(arg("blocks", "20"));
const blockSteps = Number(arg("block-steps", recipeName === "small" ? "5" : "1"));
const warmup = Number(arg("warmup", recipeName === "small" ? "5" : "1"));
// as bench/train-step.ts: the bigger recipe's batch runs as 4 micro-batches of 16
const accum = recipeName === "small" ? 1 : 4;
if ((recipe.batchSize / accum) % shards !== 0)
  throw new Error(`--shards ${shards} must divide the micro-batch ${recipe.batchSize / accum}`);

await useBackend("wasm", { threads: 1 });
// random tokens over 65 ids (tiny Shakespeare's vocabulary): the time of a step does not depend on them
const vocabSize = 65;
const rng = new Rng(0);
const tokens = Int32Array.from({ length: 1_000_000 }, () => Math.floor(rng.random() * vocabSize));
const schedule = { lr: 1e-3, minLr: 1e-4, warmupSteps: 100, decaySteps: 2000 };

interface Setting {
  step: () => number;
  /** wall ms of each step */
  times: number[];
}

async function setting(s: number): Promise<Setting> {
  const model = new GPT(makeConfig({ vocabSize, ...recipe, dropout: 0 }), 1337);
  const optimizer = new AdamW(model.params, { lr: 1e-3, beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: 0.1 });
  const sampler = new BatchSampler(tokens, recipe.blockSize, recipe.batchSize / accum, new Rng(1338));
  const stepper = await createStepper(model, 1, s);
  const step = makeTrainStep({ model, optimizer, sampler, T: recipe.blockSize, accum, stepper, schedule });
  for (let i = 0; i < warmup; i++) step();
  return { step, times: [] };
}

const whole = await setting(1);
const sharded = await setting(shards);
/** per block: S shards / whole, in wall time and in CPU time */
const ratios: number[] = [];
const cpuRatios: number[] = [];
/** run `blockSteps` steps of x; returns [wall ms, CPU ms] */
function block(x: Setting): [number, number] {
  const cpu0 = process.cpuUsage();
  let sum = 0;
  for (let i = 0; i < blockSteps; i++) {
    const t0 = performance.now();
    x.step();
    const ms = performance.now() - t0;
    x.times.push(ms);
    sum += ms;
  }
  const cpu = process.cpuUsage(cpu0);
  return [sum, (cpu.user + cpu.system) / 1000];
}
for (let b = 0; b < blocks; b++) {
  // A B, then B A: a machine getting slower or faster within a pair favours neither
  const pair = b % 2 === 0 ? [block(whole), block(sharded)] : [block(sharded), block(whole)].reverse();
  const [w, s] = pair as [[number, number], [number, number]];
  ratios.push(s[0] / w[0]);
  cpuRatios.push(s[1] / w[1]);
}
const b = backend() as { simd?: string; tile?: string };
console.log(
  JSON.stringify({
    part: `shards-${recipeName}`,
    threads: 1,
    simd: b.simd,
    tile: b.tile,
    shards,
    blocks,
    block_steps: blockSteps,
    whole_median_ms: median(whole.times),
    sharded_median_ms: median(sharded.times),
    ratio_median: median(ratios),
    ratio_min: Math.min(...ratios),
    ratio_max: Math.max(...ratios),
    cpu_ratio_median: median(cpuRatios),
    cpu_ratio_min: Math.min(...cpuRatios),
    cpu_ratio_max: Math.max(...cpuRatios),
  }),
);
process.exit(0);
