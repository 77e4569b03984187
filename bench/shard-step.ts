// The CPU recipe's training step as one thread of the 2-thread data-parallel step runs it: nanoGPT's
// CPU recipe on tiny Shakespeare, the wasm backend with one kernel thread, two shards on that thread
// (each shard is what one thread of the data-parallel step sees). Shared by the benchmarks that time
// the step's kernels inside a real step (bench/step-kernels.ts, bench/kernel-insitu.ts), so both
// time the same step. Node only (reads the corpus from ../shared).
import { setFlagsFromString } from "node:v8";
import {
  AdamW,
  BatchSampler,
  CharTokenizer,
  createStepper,
  GPT,
  loadTextSource,
  makeConfig,
  Rng,
  splitTokens,
  useBackend,
} from "../src/index.js";
import { makeTrainStep, RECIPES } from "./step.js";

/** the step (returns its loss) and a dispose for its stepper */
export async function shardStep(): Promise<{ step: () => number; dispose: () => void }> {
  setFlagsFromString("--experimental-wasm-relaxed-simd");
  await useBackend("wasm", { threads: 1 });
  const DATA = new URL("../../shared/data/tinyshakespeare/input.txt", import.meta.url);
  const text = loadTextSource(DATA.pathname).text;
  const ids = CharTokenizer.fromText(text).encode(text, { specialsAsText: true });
  const tokens = splitTokens(Int32Array.from(ids), 0.1).train;
  const recipe = RECIPES.small;
  const model = new GPT(makeConfig({ vocabSize: 65, ...recipe, dropout: 0 }), 1337);
  const optimizer = new AdamW(model.params, { lr: 1e-3, beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: 0.1 });
  const sampler = new BatchSampler(tokens, recipe.blockSize, recipe.batchSize, new Rng(1338));
  const stepper = await createStepper(model, 1, 2);
  const schedule = { lr: 1e-3, minLr: 1e-4, warmupSteps: 100, decaySteps: 2000 };
  const step = makeTrainStep({ model, optimizer, sampler, T: recipe.blockSize, accum: 1, stepper, schedule });
  return { step, dispose: () => stepper.dispose() };
}
