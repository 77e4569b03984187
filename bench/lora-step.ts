// A LoRA training step against a full fine-tuning step on a GPT-2 124M-shaped model (12 layers, 12
// heads, 768 wide, 50,257 tokens, 1,024 positions; random weights), sequences of 256 tokens, batch
// 4, one kernel thread: the peak of live tensor bytes on the wasm heap during a step (its high-water
// mark: the model, what trains, its gradients and AdamW moments, and the step's activations), the
// heap's reserved size, ms per step and tokens/s. LoRA: rank 8 on c_attn (PEFT's default target),
// the base frozen: no gradient buffers and no moments for it (src/nn/lora.ts, src/train/trained.ts).
//
//   node --import tsx bench/lora-step.ts [--rounds 2] [--steps 2] [--batch 4] [--limit]
//
// Each measurement is its own process (a wasm heap never shrinks, so one process per figure gives
// each its own high-water mark), the two modes in turns, `--rounds` times; the medians and ranges are
// printed. The step is the trainer's (bench/step.ts: forward and backward in a scope, clip 1.0,
// AdamW) with the whole micro-batch in one shard (--grad-shards 1; the default 2 adds a second set
// of gradient buffers for what trains: 0.5 GB more for the full model, ~0 for LoRA).
// --limit: where full fine-tuning meets wasm32's 4 GiB: the peak's growth per sequence from batch 1
// and 4, the batch that would cross 4 GiB, and one step tried at that batch (it must fail cleanly).
//
// One child: node --import tsx bench/lora-step.ts --child full|lora --batch B --steps N -> one JSON line.
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import {
  AdamW,
  attachLora,
  BatchSampler,
  createStepper,
  GPT,
  heap,
  makeConfig,
  outOfMemory,
  Rng,
  type Tensor,
  useBackend,
} from "../src/index.js";
import { arg, expectArgs } from "./args.js";
import { GPT2_SHAPE } from "./shapes.js";
import { median } from "./stats.js";
import { makeTrainStep } from "./step.js";

expectArgs("bench/lora-step.ts", ["rounds", "steps", "batch", "child", "warmup"], ["limit"]);

const T = 256;
const GPT2 = { ...GPT2_SHAPE, dropout: 0 };
const RANK = 8;
const GiB = 2 ** 30;

interface ChildResult {
  mode: string;
  batch: number;
  parameters: number;
  trainable: number;
  /** live tensor bytes once the model, adapter and optimizer exist, before a step */
  setupBytes: number;
  /** the peak of live tensor bytes over the steps: the heap's high-water mark */
  peakBytes: number;
  reservedBytes: number;
  ms: number[];
  error?: string;
}

async function child(mode: "full" | "lora", batch: number, steps: number, warmup: number): Promise<ChildResult> {
  await useBackend("wasm", { threads: 1 });
  const model = new GPT(makeConfig(GPT2), 1337);
  const params: Map<string, Tensor> =
    mode === "lora"
      ? attachLora(model, { rank: RANK, alpha: 16, dropout: 0, targets: ["c_attn"], base: "", trainableTokens: [] }, new Rng(1)).params
      : model.params;
  const optimizer = new AdamW(params, { lr: 1e-4, beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: 0.1 });
  const rng = new Rng(2);
  const tokens = Int32Array.from({ length: 200_000 }, () => rng.int(GPT2.vocabSize));
  const sampler = new BatchSampler(tokens, T, batch, new Rng(3));
  const stepper = await createStepper(model, 1, 1, null);
  const step = makeTrainStep({
    model,
    optimizer,
    sampler,
    T,
    accum: 1,
    stepper,
    schedule: { lr: 1e-4, minLr: 1e-5, warmupSteps: 0, decaySteps: 100 },
    params,
  });
  let trainable = 0;
  for (const t of params.values()) trainable += t.size;
  const h = heap();
  const setupBytes = h.stats().liveBytes;
  h.resetPeak();
  const result: ChildResult = {
    mode,
    batch,
    parameters: model.parameterCount(),
    trainable,
    setupBytes,
    peakBytes: 0,
    reservedBytes: 0,
    ms: [],
  };
  try {
    for (let i = 0; i < warmup + steps; i++) {
      const t0 = performance.now();
      step();
      if (i >= warmup) result.ms.push(performance.now() - t0);
    }
  } catch (e) {
    // out of tensor memory names what this benchmark's step grows with, as minigpt train does
    const error = outOfMemory(e, `A step's memory grows with --batch ${batch} (sequences of ${T} tokens): lower it`);
    result.error = error instanceof Error ? error.message : String(error);
  }
  const s = h.stats();
  result.peakBytes = s.peakLiveBytes;
  result.reservedBytes = s.reservedBytes;
  return result;
}

function runChild(mode: "full" | "lora", batch: number, steps: number, warmup: number): ChildResult {
  const script = fileURLToPath(import.meta.url);
  const r = spawnSync(
    process.execPath,
    ["--import", "tsx", script, "--child", mode, "--batch", String(batch), "--steps", String(steps), "--warmup", String(warmup)],
    { encoding: "utf8", maxBuffer: 1 << 24 },
  );
  const line = r.stdout.trim().split("\n").pop() ?? "";
  try {
    return JSON.parse(line) as ChildResult;
  } catch {
    throw new Error(`bench/lora-step.ts --child ${mode} failed (status ${r.status}): ${r.stderr.slice(-2000)}`);
  }
}

const gb = (b: number) => `${(b / GiB).toFixed(3)} GiB`;
const range = (xs: number[], f: (x: number) => string) => `${f(median(xs))} (${f(Math.min(...xs))}-${f(Math.max(...xs))})`;

const childMode = arg("child", "");
if (childMode === "full" || childMode === "lora") {
  const r = await child(childMode, Number(arg("batch", "4")), Number(arg("steps", "2")), Number(arg("warmup", "1")));
  console.log(JSON.stringify(r));
  process.exit(0);
}

const rounds = Number(arg("rounds", "2"));
const steps = Number(arg("steps", "2"));
const batch = Number(arg("batch", "4"));
const results: Record<"full" | "lora", ChildResult[]> = { full: [], lora: [] };
for (let round = 0; round < rounds; round++)
  for (const mode of round % 2 === 0 ? (["lora", "full"] as const) : (["full", "lora"] as const)) {
    const r = runChild(mode, batch, steps, 1);
    if (r.error) throw new Error(`${mode}: ${r.error}`);
    results[mode].push(r);
    console.error(`round ${round + 1} ${mode}: peak ${gb(r.peakBytes)}, steps ${r.ms.map((m) => (m / 1000).toFixed(2)).join(", ")} s`);
  }
const tokensPerStep = batch * T;
const summary = (mode: "full" | "lora") => {
  const rs = results[mode];
  const ms = rs.flatMap((r) => r.ms);
  const first = rs[0] as ChildResult;
  return {
    mode,
    trainable: first.trainable,
    setupBytes: median(rs.map((r) => r.setupBytes)),
    peakBytes: median(rs.map((r) => r.peakBytes)),
    reservedBytes: median(rs.map((r) => r.reservedBytes)),
    msMedian: median(ms),
    line: `${mode.padEnd(4)}  trains ${first.trainable.toLocaleString("en-US").padStart(11)} of ${first.parameters.toLocaleString("en-US")}  before a step ${gb(median(rs.map((r) => r.setupBytes)))}  peak ${range(
      rs.map((r) => r.peakBytes),
      gb,
    )}  reserved ${gb(median(rs.map((r) => r.reservedBytes)))}  step ${range(ms, (m) => `${(m / 1000).toFixed(2)} s`)}  ${range(
      ms.map((m) => (tokensPerStep * 1000) / m),
      (x) => `${x.toFixed(0)} tok/s`,
    )}`,
  };
};
const full = summary("full");
const lora = summary("lora");
console.log(`GPT-2 124M shape, T ${T}, batch ${batch}, 1 thread, ${rounds} rounds x ${steps} timed steps (medians, ranges):`);
console.log(full.line);
console.log(lora.line);
console.log(
  `LoRA (rank ${RANK}, c_attn) / full: peak ${((100 * lora.peakBytes) / full.peakBytes).toFixed(1)}% (goal <= 60%), step time ${((100 * lora.msMedian) / full.msMedian).toFixed(1)}% (${(full.msMedian / lora.msMedian).toFixed(2)}x faster)`,
);

if (process.argv.includes("--limit")) {
  const one = runChild("full", 1, 1, 0);
  const four = full.peakBytes;
  const perSequence = (four - one.peakBytes) / (batch - 1);
  const fixed = one.peakBytes - perSequence;
  const limitBatch = Math.floor((4 * GiB - fixed) / perSequence);
  console.log(
    `full fine-tuning: peak ${gb(fixed)} + ${gb(perSequence)} per sequence of ${T}: the largest batch under 4 GiB is ${limitBatch} (${gb(fixed + limitBatch * perSequence)})`,
  );
  const over = runChild("full", limitBatch + 1, 1, 0);
  console.log(`  batch ${limitBatch + 1}: ${over.error ? `fails: ${over.error}` : `ran, peak ${gb(over.peakBytes)}`}`);
}
