// Quality parity with nanoGPT: its CPU recipe on tiny Shakespeare, trained with the library's train(),
// one run per seed, one at a time. Records wall time, the final val loss (200 val batches after the
// last step) and writes each run's curve (metrics.jsonl + loss.svg) to OUT/seed-<seed>/.
//
//   node --import tsx bench/quality.ts [--seeds 1337,1338,1339] [--out tmp/bench/quality]
//        [--data ../shared/data/tinyshakespeare/input.txt] [--backend wasm|ref] [--threads N]
//        [--max-steps 2000] [--eval-interval 250] [--eval-steps 200]
//
// The same run from the CLI (one seed):
//   minigpt train --data ../shared/data/tinyshakespeare/input.txt --n-layer 4 --n-head 4 --n-embd 128
//     --block-size 64 --batch-size 12 --max-steps 2000 --lr 1e-3 --min-lr 1e-4 --warmup-steps 100
//     --beta2 0.99 --dropout 0 --tokenizer char --eval-steps 200 --seed S
// except that the CLI's char tokenizer adds 256 byte-fallback tokens (docs/tokenizers.md) that the
// text never uses; this benchmark trains on nanoGPT's vocabulary, the text's 65 characters alone.
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { CharTokenizer, defaultTrainConfig, loadTextSource, saveTokenizer, type TrainConfig, train, useBackend } from "../src/index.js";
import { arg, expectArgs } from "./args.js";
import { median } from "./stats.js";

expectArgs("bench/quality.ts", ["seeds", "out", "data", "backend", "threads", "max-steps", "eval-interval", "eval-steps"]);

const repoRoot = resolve(fileURLToPath(new URL("..", import.meta.url)));

const seeds = arg("seeds", "1337,1338,1339")
  .split(",")
  .filter((s) => s.trim() !== "")
  .map((s) => Number.parseInt(s, 10));
const outRoot = resolve(repoRoot, arg("out", "tmp/bench/quality"));
const data = resolve(repoRoot, arg("data", "../shared/data/tinyshakespeare/input.txt"));
const backendName = arg("backend", "wasm") as "wasm" | "ref";
const threads = Number(arg("threads", String(availableParallelism())));
const maxSteps = Number(arg("max-steps", "2000"));
const evalInterval = Number(arg("eval-interval", "250"));
const evalSteps = Number(arg("eval-steps", "200"));

if (!existsSync(data)) {
  console.error(`quality: ${data} not found (tiny Shakespeare is expected in ../shared/data/tinyshakespeare/input.txt)`);
  process.exit(1);
}

await useBackend(backendName, { threads });

interface RunResult {
  seed: number;
  steps: number;
  /** final val loss: 200 val batches after the last step */
  val_loss: number;
  best_val_loss: number;
  final_train_loss: number;
  /** the whole train() call: data loading, tokenizer, training, evals, checkpoint writes */
  wall_s: number;
  /** sum of the per-step times (batch sampling + forward + backward + clip + AdamW), no evals */
  train_s: number;
  median_step_ms: number;
  curve: { step: number; val_loss: number; loss: number }[];
  out: string;
}

const results: RunResult[] = [];
mkdirSync(outRoot, { recursive: true });
// nanoGPT's vocabulary (no byte fallback), so the output layer has its size
const tokenizerDir = join(outRoot, "tokenizer");
mkdirSync(tokenizerDir, { recursive: true });
saveTokenizer(tokenizerDir, CharTokenizer.fromText(loadTextSource(data).text, [], { byteFallback: false }));
console.error(
  `quality: tiny Shakespeare, nanoGPT CPU recipe, seeds ${seeds.join(", ")}, backend ${backendName} (${threads} threads), out ${outRoot}`,
);
for (const seed of seeds) {
  const out = join(outRoot, `seed-${seed}`);
  const config: TrainConfig = {
    ...defaultTrainConfig,
    data,
    out,
    tokenizer: tokenizerDir,
    nLayer: 4,
    nHead: 4,
    nEmbd: 128,
    nInner: 0,
    blockSize: 64,
    batchSize: 12,
    gradAccum: 1,
    maxSteps,
    epochs: 0,
    lr: 1e-3,
    minLr: 1e-4,
    warmupSteps: 100,
    beta1: 0.9,
    beta2: 0.99,
    weightDecay: 0.1,
    gradClip: 1.0,
    dropout: 0,
    evalInterval,
    evalSteps,
    checkpointInterval: maxSteps,
    seed,
  };
  const t0 = performance.now();
  let lastLog = t0;
  const result = await train(
    config,
    { overwrite: true },
    {
      onStep(m, total) {
        const now = performance.now();
        if (m.val_loss !== undefined || now - lastLog > 30_000) {
          lastLog = now;
          const val = m.val_loss !== undefined ? ` val ${m.val_loss.toFixed(4)}` : "";
          console.error(
            `  seed ${seed} step ${m.step}/${total} loss ${m.loss.toFixed(4)}${val} ${m.ms.toFixed(1)} ms/step ${((now - t0) / 1000).toFixed(0)} s`,
          );
        }
      },
    },
  );
  const wall = (performance.now() - t0) / 1000;
  const ms = result.history.map((m) => m.ms);
  const last = result.history[result.history.length - 1];
  const r: RunResult = {
    seed,
    steps: result.steps,
    val_loss: result.lastValLoss ?? Number.NaN,
    best_val_loss: result.bestValLoss ?? Number.NaN,
    final_train_loss: last?.loss ?? Number.NaN,
    wall_s: wall,
    train_s: ms.reduce((a, b) => a + b, 0) / 1000,
    median_step_ms: median(ms),
    curve: result.history
      .filter((m) => m.val_loss !== undefined)
      .map((m) => ({ step: m.step, val_loss: m.val_loss as number, loss: m.loss })),
    out,
  };
  result.model.dispose();
  results.push(r);
  writeFileSync(join(out, "quality.json"), `${JSON.stringify(r, null, 2)}\n`);
  console.error(
    `seed ${seed}: val loss ${r.val_loss.toFixed(4)} after ${r.steps} steps, wall ${r.wall_s.toFixed(1)} s (training steps ${r.train_s.toFixed(1)} s, median ${r.median_step_ms.toFixed(1)} ms/step) -> ${out}`,
  );
}

const goal = 1.9;
console.log(
  JSON.stringify(
    {
      backend: backendName,
      threads,
      goal,
      passed: results.every((r) => r.val_loss <= goal),
      runs: results.map(({ curve, ...rest }) => rest),
    },
    null,
    2,
  ),
);
writeFileSync(join(outRoot, `summary-${seeds.join("-")}.json`), `${JSON.stringify(results, null, 2)}\n`);
