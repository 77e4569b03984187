/**
 * The learning-rate schedule against nanoGPT's get_lr, written out here by hand (linear warmup
 * lr·(it+1)/(warmup+1), cosine decay to min_lr over [warmup, lr_decay_iters], then min_lr), and a
 * training run through the CLI whose metrics.jsonl must record exactly that lr at every step
 * (step k in the metrics is the k-th optimizer step, taken at it = k - 1, with lr_decay_iters = the
 * run's total steps).
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { readSafetensorsFile } from "../src/io/safetensors-file.js";
import { learningRate } from "../src/optim/schedule.js";
import { Rng } from "../src/random.js";
import { runCli, tempDir } from "./helpers.js";

const root = tempDir("minigpt-schedule-");

/** nanoGPT train.py get_lr, transcribed line by line. */
function nanoGptLr(it: number, learningRate: number, minLr: number, warmupIters: number, lrDecayIters: number): number {
  // 1) linear warmup for warmup_iters steps
  if (it < warmupIters) return (learningRate * (it + 1)) / (warmupIters + 1);
  // 2) if it > lr_decay_iters, return min learning rate
  if (it > lrDecayIters) return minLr;
  // 3) in between, use cosine decay down to min learning rate
  const decayRatio = (it - warmupIters) / (lrDecayIters - warmupIters);
  assert.ok(decayRatio >= 0 && decayRatio <= 1, `decay ratio ${decayRatio}`);
  const coeff = 0.5 * (1.0 + Math.cos(Math.PI * decayRatio));
  return minLr + coeff * (learningRate - minLr);
}

function assertClose(got: number, want: number, what: string): void {
  assert.ok(Number.isFinite(got), `${what}: got ${got}`);
  assert.ok(Math.abs(got - want) <= 1e-12 * Math.abs(want) + 1e-18, `${what}: got ${got}, want ${want}`);
}

test("learningRate equals nanoGPT's get_lr at every step, boundaries included", () => {
  const cases = [
    { lr: 1e-3, minLr: 1e-4, warmupSteps: 100, decaySteps: 1000 },
    { lr: 6e-4, minLr: 6e-5, warmupSteps: 7, decaySteps: 50 },
    { lr: 3e-3, minLr: 0, warmupSteps: 1, decaySteps: 2 },
    { lr: 1, minLr: 0.25, warmupSteps: 0, decaySteps: 10 },
    { lr: 2e-2, minLr: 2e-2, warmupSteps: 5, decaySteps: 20 },
  ];
  for (const s of cases) {
    const steps = new Set<number>();
    for (let it = 0; it <= s.decaySteps + 5; it++) steps.add(it);
    for (const it of [
      0,
      s.warmupSteps - 1,
      s.warmupSteps,
      s.warmupSteps + 1,
      s.decaySteps - 1,
      s.decaySteps,
      s.decaySteps + 1,
      10 * s.decaySteps,
    ])
      if (it >= 0) steps.add(it);
    for (const it of steps) {
      assertClose(learningRate(it, s), nanoGptLr(it, s.lr, s.minLr, s.warmupSteps, s.decaySteps), `${JSON.stringify(s)} step ${it}`);
    }
  }
});

test("schedule landmarks: warmup ramp, the peak, the cosine midpoint, the floor", () => {
  const s = { lr: 1e-3, minLr: 1e-4, warmupSteps: 9, decaySteps: 109 };
  // warmup: lr/10, 2lr/10, ..., 9lr/10 (never 0 at step 0), the peak exactly at step = warmupSteps
  for (let it = 0; it < 9; it++) assertClose(learningRate(it, s), (1e-3 * (it + 1)) / 10, `warmup step ${it}`);
  assertClose(learningRate(9, s), 1e-3, "peak");
  // halfway through the decay window the cosine is at 0: the mean of lr and minLr
  assertClose(learningRate(59, s), (1e-3 + 1e-4) / 2, "midpoint");
  // a quarter: cos(pi/4)
  assertClose(learningRate(34, s), 1e-4 + 0.5 * (1 + Math.SQRT1_2) * 9e-4, "quarter");
  assertClose(learningRate(109, s), 1e-4, "end of decay");
  assertClose(learningRate(5000, s), 1e-4, "after the decay");
  // strictly decreasing over the decay window
  for (let it = 10; it <= 109; it++) assert.ok(learningRate(it, s) < learningRate(it - 1, s), `not decreasing at ${it}`);
});

/**
 * Its own text, not tests/helpers.ts wordCorpus: the last test's share of weights moved by exactly
 * lr/(warmup+1) was set on this one (on wordCorpus 0.89 of them move by it, against the 0.9 asked).
 */
function corpus(): string {
  const data = join(root, "corpus.txt");
  const rng = new Rng(5);
  const words = ["the", "whale", "sea", "ship", "captain", "white", "ahab", "and", "of", "a"];
  let text = "";
  while (text.length < 4000) text += `${Array.from({ length: 4 + rng.int(6) }, () => words[rng.int(words.length)]).join(" ")}.\n`;
  writeFileSync(data, text);
  return data;
}

function metricsOf(out: string): { step: number; lr: number }[] {
  return readFileSync(join(out, "metrics.jsonl"), "utf8")
    .split("\n")
    .filter((l) => l.length > 0)
    .map((l) => JSON.parse(l) as { step: number; lr: number });
}

/** a tiny character-level training run through the CLI entry; returns its --out folder */
function trainRun(name: string, flags: string[]): string {
  const out = join(root, name);
  const tiny = ["--n-layer", "1", "--n-head", "2", "--n-embd", "8", "--block-size", "8", "--batch-size", "2", "--eval-steps", "1"];
  const rest = ["--sample-tokens", "0", "--threads", "1", "--eval-interval", "100", "--checkpoint-interval", "100"];
  const r = runCli(["train", "--data", corpus(), "--out", out, ...tiny, ...rest, ...flags]);
  assert.equal(r.status, 0, r.stderr);
  return out;
}

test("training uses the schedule: the lr in metrics.jsonl at every step is get_lr(step - 1)", () => {
  const [steps, warmup, lr, minLr] = [14, 4, 8e-3, 5e-4];
  const out = trainRun("metrics", [
    "--max-steps",
    String(steps),
    "--warmup-steps",
    String(warmup),
    "--lr",
    String(lr),
    "--min-lr",
    String(minLr),
  ]);
  assert.ok(readdirSync(out).includes("metrics.jsonl"), `no metrics.jsonl in ${readdirSync(out).join(", ")}`);
  const metrics = metricsOf(out);
  assert.deepEqual(
    metrics.map((m) => m.step),
    Array.from({ length: steps }, (_, i) => i + 1),
  );
  for (const m of metrics) assertClose(m.lr, nanoGptLr(m.step - 1, lr, minLr, warmup, steps), `metrics step ${m.step}`);
  // the first step is warmup's lr/(warmup+1), not 0 and not the peak; the peak is reached at step warmup+1
  assertClose(metrics[0]?.lr as number, lr / (warmup + 1), "first step");
  assertClose(metrics[warmup]?.lr as number, lr, "peak");
});

test("the optimizer really steps with the scheduled lr: AdamW's first update moves each weight by about lr/(warmup+1)", () => {
  // AdamW's first step (no weight decay, no clipping) moves a weight by lr·g/(|g| + eps): lr itself
  // for any gradient much larger than eps. With --warmup-steps 4, step 0 uses lr/5.
  const [warmup, lr] = [4, 1e-2];
  const out = trainRun("one-step", [
    "--max-steps",
    "1",
    "--warmup-steps",
    String(warmup),
    "--lr",
    String(lr),
    "--weight-decay",
    "0",
    "--grad-clip",
    "0",
  ]);
  const before = readSafetensorsFile(join(out, "training", "checkpoint-0", "model.safetensors")).tensors;
  const after = readSafetensorsFile(join(out, "training", "checkpoint-1", "model.safetensors")).tensors;
  const want = lr / (warmup + 1);
  let largest = 0;
  let nearWant = 0;
  let moved = 0;
  for (const [name, t0] of before) {
    const t1 = after.get(name);
    assert.ok(t1, `${name} missing after the step`);
    for (let i = 0; i < t0.data.length; i++) {
      const d = Math.abs(Number(t1.data[i]) - Number(t0.data[i]));
      largest = Math.max(largest, d);
      if (d > 0) moved++;
      if (Math.abs(d - want) < 1e-3 * want) nearWant++;
    }
  }
  assert.ok(Math.abs(largest - want) < 1e-3 * want, `largest update ${largest}, want ${want}`);
  assert.ok(nearWant > 0.9 * moved, `${nearWant} of ${moved} moved weights moved by lr/(warmup+1)`);
});

test("--resume with a new end re-plans the cosine from the current lr, prints the plan, and a later resume keeps it", () => {
  const [lr, minLr, newMinLr] = [1e-2, 1e-3, 1e-4];
  const out = trainRun("replan", ["--max-steps", "6", "--warmup-steps", "1", "--lr", String(lr), "--min-lr", String(minLr)]);
  const lrs = () => new Map(metricsOf(out).map((m) => [m.step, m.lr]));
  const resume = (flags: string[]) => {
    const r = runCli(["train", "--out", out, "--resume", "--sample-tokens", "0", "--threads", "1", ...flags]);
    assert.equal(r.status, 0, r.stderr);
    return r.stderr;
  };
  // the run ended at min-lr: twice as long goes on at min-lr, it does not climb back up the old cosine
  assert.match(
    resume(["--max-steps", "12"]),
    /^lr schedule: re-planned at step 6: cosine from 1\.0e-3 down to --min-lr 1\.0e-3 at step 12/m,
  );
  for (let k = 7; k <= 12; k++) assertClose(lrs().get(k) as number, minLr, `step ${k}`);
  // a new end, a new --min-lr and new data at once: cosine from the current lr (1e-3 at step 12) to 1e-4 at step 20
  const other = join(root, "other.txt");
  writeFileSync(other, readFileSync(corpus(), "utf8").split("\n").reverse().join("\n"));
  const said = resume(["--max-steps", "20", "--min-lr", String(newMinLr), "--checkpoint-interval", "4", "--data", other]);
  assert.match(
    said,
    /^lr schedule: re-planned at step 12: cosine from 1\.0e-3 down to --min-lr 1\.0e-4 at step 20 \(was 1\.0e-3 at step 12\)$/m,
  );
  assert.match(
    said,
    /^resume: --max-steps 12 -> 20, --min-lr 0\.001 -> 0\.0001, .*--data \S+corpus\.txt -> \S+other\.txt .*batches now come from the new data/m,
  );
  const planned = lrs();
  for (let k = 13; k <= 20; k++)
    assertClose(planned.get(k) as number, newMinLr + 0.5 * (1 + Math.cos((Math.PI * (k - 13)) / 8)) * (minLr - newMinLr), `step ${k}`);
  // a run stopped at step 16 (its checkpoint made the latest) resumes on the saved plan, to the bit
  writeFileSync(join(out, "training", "latest"), "checkpoint-16\n");
  assert.doesNotMatch(resume([]), /lr schedule|^resume:/m);
  assert.deepEqual(lrs(), planned);
});
