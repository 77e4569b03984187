/**
 * The model kept at the top level of --out is the one with the lowest validation loss of the run,
 * not the latest. A run with a constant, too-high learning rate (0.1, no clipping) evaluates every
 * 5 steps; its validation loss bottoms out in the middle and rises again, so the best and the last
 * model differ. Checked three ways: the recorded val losses (metrics.jsonl) and config.json agree on
 * the minimum; the top-level model, measured here on the same validation batches with a direct
 * forward pass, has that minimum loss; and its weights equal, bit for bit, the final weights of a
 * second run stopped at the best step (the schedule is constant, so the first k steps of both runs
 * are identical).
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { loadDataset } from "../src/data/dataset.js";
import { loadModelFolder } from "../src/io/folder.js";
import { loadModel } from "../src/io/hf.js";
import { readSafetensorsFile } from "../src/io/safetensors-file.js";
import type { GPT } from "../src/nn/gpt.js";
import { Rng } from "../src/random.js";
import { noGrad, scope, Tensor } from "../src/tensor/tensor.js";
import { runCli, tempDir, wordCorpus } from "./helpers.js";

const root = tempDir("minigpt-best-");

const SEED = 1337; // the default --seed; the trainer's val batches come from Rng(seed + 3)
const [BLOCK, BATCH, EVAL_STEPS] = [16, 4, 2];

function trainRun(data: string, out: string, steps: number): void {
  const flags = [
    ["--data", data],
    ["--out", out],
    ["--n-layer", "2"],
    ["--n-head", "2"],
    ["--n-embd", "16"],
    ["--block-size", String(BLOCK)],
    ["--batch-size", String(BATCH)],
    ["--eval-steps", String(EVAL_STEPS)],
    ["--eval-interval", "5"],
    ["--checkpoint-interval", "1000"],
    ["--max-steps", String(steps)],
    ["--lr", "0.1"],
    ["--min-lr", "0.1"],
    ["--warmup-steps", "0"],
    ["--grad-clip", "0"],
    ["--sample-tokens", "0"],
    ["--threads", "1"],
  ].flat();
  const r = runCli(["train", ...flags]);
  assert.equal(r.status, 0, r.stderr);
}

/** the trainer's validation loss, recomputed: mean over EVAL_STEPS val batches of the forward loss */
function valLoss(model: GPT, data: string, out: string): number {
  const { tokenizer } = loadModelFolder(out);
  const dataset = loadDataset({
    data,
    blockSize: BLOCK,
    batchSize: BATCH,
    tokenizer,
    tokenizerKind: "char",
    vocabSize: 0,
    specialsAsText: false,
  });
  const sampler = dataset.valSampler(new Rng(SEED + 3));
  let sum = 0;
  noGrad(() => {
    for (let i = 0; i < EVAL_STEPS; i++) {
      scope(() => {
        const { x, y } = sampler.next();
        const { loss } = model.forward(Tensor.ints(x, [BATCH, BLOCK]), { targets: Tensor.ints(y, [BATCH, BLOCK]) });
        sum += (loss as Tensor).item();
      });
    }
  });
  return sum / EVAL_STEPS;
}

test("the top-level model is the lowest-validation-loss model of the run, not the last", () => {
  const data = wordCorpus(root);
  const out = join(root, "run");
  trainRun(data, out, 60);

  const evals = readFileSync(join(out, "metrics.jsonl"), "utf8")
    .split("\n")
    .filter((l) => l.length > 0)
    .map((l) => JSON.parse(l) as { step: number; val_loss?: number })
    .filter((m) => m.val_loss !== undefined) as { step: number; val_loss: number }[];
  assert.deepEqual(
    evals.map((m) => m.step),
    [5, 10, 15, 20, 25, 30, 35, 40, 45, 50, 55, 60],
  );
  const best = evals.reduce((a, b) => (b.val_loss < a.val_loss ? b : a));
  const last = evals[evals.length - 1] as { step: number; val_loss: number };
  // the premise of the test: this run's validation loss rises after its minimum
  assert.ok(best.step !== last.step && last.val_loss > best.val_loss + 0.02, `best ${JSON.stringify(best)}, last ${JSON.stringify(last)}`);
  assert.ok(best.step !== evals[0]?.step, "the best eval should not be the first");

  const info = JSON.parse(readFileSync(join(out, "config.json"), "utf8")) as { minigpt: { best_val_loss: number; trained_steps: number } };
  assert.equal(info.minigpt.best_val_loss, best.val_loss);
  assert.equal(info.minigpt.trained_steps, 60);

  // measured here: the top-level model has the minimum loss, the last checkpoint the last one
  const top = loadModelFolder(out).model;
  const topLoss = valLoss(top, data, out);
  top.dispose();
  const latest = readFileSync(join(out, "training", "latest"), "utf8").trim();
  assert.equal(latest, "checkpoint-60");
  const lastModel = loadModel(out, join(out, "training", latest, "model.safetensors"));
  const lastLoss = valLoss(lastModel, data, out);
  lastModel.dispose();
  assert.ok(Math.abs(lastLoss - last.val_loss) < 1e-5, `last checkpoint: measured ${lastLoss}, recorded ${last.val_loss}`);
  assert.ok(
    Math.abs(topLoss - best.val_loss) < 1e-5,
    `top-level model: measured ${topLoss}, best recorded ${best.val_loss} at step ${best.step}`,
  );

  // and it is exactly the model after best.step steps: a second run stopped there ends with the same weights
  const short = join(root, "short");
  trainRun(data, short, best.step);
  const want = readSafetensorsFile(join(short, "training", `checkpoint-${best.step}`, "model.safetensors")).tensors;
  const got = readSafetensorsFile(join(out, "model.safetensors")).tensors;
  assert.deepEqual([...got.keys()].sort(), [...want.keys()].sort());
  for (const [name, t] of want) {
    const g = got.get(name);
    assert.ok(g);
    assert.deepEqual(
      new Uint32Array(Float32Array.from(g.data as Float32Array).buffer),
      new Uint32Array(Float32Array.from(t.data as Float32Array).buffer),
      name,
    );
  }
});
