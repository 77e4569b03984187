// Training the run: the trainer's step (the library's stepper on the CPU backends, the whole batch on
// the GPU), in slices of SLICE_MS that let the page's messages in; validation, samples, the metrics
// sent in batches, and a save every SAVE_MS.
import {
  BatchSampler,
  clipGradNorm,
  clipGradNormAsync,
  type GPT,
  generateTextAsync,
  learningRate,
  MinigptError,
  noGrad,
  Rng,
  type Stepper,
  scope,
  Tensor,
  type Tokenizer,
} from "minigpt-ts/browser";
import type { Metric } from "../protocol.js";
import { onGpu } from "./engine.js";
import { post, report, SLICE_MS, yieldToMessages } from "./page.js";
import { currentRun, eta, outOfMemory, type Run, summary } from "./run.js";
import { save } from "./save.js";

/**
 * save the run this often while it trains (and on pause, stop and at the end): a run should be saved at
 * least every 30 s, and a save (every tensor and its AdamW moments cloned into IndexedDB) costs CPU
 * the training threads would otherwise have; checked between steps, hence the margin
 */
const SAVE_MS = 25_000;
/**
 * send the page the steps' metrics at most this often: a message per step woke the page's main
 * thread (text, charts, layout, paint) ~18 times a second, CPU that a 2-core machine takes from the
 * training threads
 */
const METRICS_MS = 250;
/** validation windows per evaluation, and evaluations per run */
const EVAL_BATCHES = 4;
const EVALS_PER_RUN = 20;
/** new tokens of the samples shown while training */
const SAMPLE_TOKENS = 120;

function trainStep(r: Run): number {
  const lr = learningRate(r.step, r.schedule);
  const { model, preset } = r;
  const stepper = r.stepper as Stepper;
  model.zeroGrad();
  const loss = scope(() => {
    const { x, y } = r.sampler.next();
    const shape = [preset.batchSize, preset.blockSize];
    return stepper.forwardBackward(Tensor.ints(x, shape), Tensor.ints(y, shape), 1, undefined, true);
  });
  // on the CPU backends the loss is there at once; a GPU model trains through trainStepOnGpu
  if (typeof loss !== "number") throw new Error("trainStep is the CPU backends' step; a GPU model uses trainStepOnGpu");
  stepper.update(() => {
    clipGradNorm(model.params.values(), 1.0);
    r.optimizer.update(lr);
  });
  r.step++;
  return loss;
}

/**
 * trainStep on the GPU: the whole batch at once, clipped and updated there; the loss and the
 * gradient norm are read back together, the step's one wait.
 */
async function trainStepOnGpu(r: Run): Promise<number> {
  const lr = learningRate(r.step, r.schedule);
  const { model, preset } = r;
  model.zeroGrad();
  // the read starts inside the scope, ordered before the loss's memory is reused
  const loss = scope(() => {
    const { x, y } = r.sampler.next();
    const shape = [preset.batchSize, preset.blockSize];
    const l = model.forward(Tensor.ints(x, shape), { targets: Tensor.ints(y, shape) }).loss as Tensor;
    l.backward();
    return l.read();
  });
  const clipped = clipGradNormAsync(model.params.values(), 1.0);
  r.optimizer.update(lr);
  await clipped;
  r.step++;
  return (await loss)[0] as number;
}

async function validationLoss(r: Run): Promise<number> {
  const sampler = new BatchSampler(r.val, r.preset.blockSize, r.preset.batchSize, new Rng(7), "the validation split");
  const losses = noGrad(() =>
    Array.from({ length: EVAL_BATCHES }, () =>
      scope(() => {
        const { x, y } = sampler.next();
        const shape = [r.preset.batchSize, r.preset.blockSize];
        return (r.model.forward(Tensor.ints(x, shape), { targets: Tensor.ints(y, shape) }).loss as Tensor).read();
      }),
    ),
  );
  let sum = 0;
  for (const [loss] of await Promise.all(losses)) sum += loss as number;
  return sum / EVAL_BATCHES;
}

/** a short sample of what the model writes now, from a newline (greedy-free: temperature 0.8) */
async function sampleText(model: GPT, tokenizer: Tokenizer): Promise<string> {
  const prompt = tokenizer.encode("\n", { specialsAsText: true });
  const options = { maxNewTokens: SAMPLE_TOKENS, temperature: 0.8, topK: 40, seed: 1 };
  let text = "";
  for await (const piece of generateTextAsync(model, tokenizer, prompt.length > 0 ? prompt : [0], options)) text += piece;
  return text;
}

/**
 * Train `r` until it is paused, stopped, done, or no longer the run (discarded, or a new one
 * started); then save it and tell the page.
 */
export async function trainLoop(r: Run): Promise<void> {
  const evalEvery = Math.max(1, Math.floor(r.request.maxSteps / EVALS_PER_RUN));
  let lastSave = Date.now();
  /** a save is being written (training goes on meanwhile; the next waits for it) */
  let saving = false;
  let unsent: Metric[] = [];
  let lastSent = performance.now();
  const sendMetrics = (): void => {
    if (unsent.length === 0) return;
    post({ type: "metrics", metrics: unsent, step: r.step, etaS: eta(r) });
    unsent = [];
    lastSent = performance.now();
  };
  while (currentRun() === r) {
    const sliceEnd = performance.now() + SLICE_MS;
    while (r.status === "training" && r.step < r.request.maxSteps && performance.now() < sliceEnd) {
      const t0 = performance.now();
      let loss: number;
      try {
        loss = onGpu() ? await trainStepOnGpu(r) : trainStep(r);
      } catch (err) {
        // a step's activations are what usually runs out (the weights fitted): say what to do
        throw outOfMemory(err, r.preset);
      }
      if (currentRun() !== r) return; // discarded, or a new run started, while the GPU step was read
      const ms = performance.now() - t0;
      r.msPerStep = r.msPerStep === null ? ms : 0.9 * r.msPerStep + 0.1 * ms;
      const end = r.step === r.request.maxSteps;
      const metric: Metric = {
        step: r.step,
        loss,
        valLoss: r.step % evalEvery === 0 || end ? await validationLoss(r) : null,
        lr: learningRate(r.step - 1, r.schedule),
        tokensPerS: (r.preset.batchSize * r.preset.blockSize * 1000) / ms,
      };
      if (!Number.isFinite(loss))
        throw new MinigptError(`the loss became ${loss} at step ${r.step}: lower the learning rate or pick another preset`);
      r.metrics.push(metric);
      unsent.push(metric);
      if (performance.now() - lastSent >= METRICS_MS) sendMetrics();
      if (r.step % r.request.sampleEvery === 0 || end) {
        sendMetrics();
        const sample = { step: r.step, text: await sampleText(r.model, r.tokenizer) };
        r.samples.push(sample);
        post({ type: "sample", ...sample });
      }
    }
    if (r.step >= r.request.maxSteps) r.status = "done";
    if (r.status !== "training") {
      sendMetrics();
      await save(r);
      post({ type: "run", run: summary(r) });
      return;
    }
    if (!saving && Date.now() - lastSave >= SAVE_MS) {
      lastSave = Date.now();
      saving = true;
      save(r)
        .catch((err: unknown) => report(err, "saving the run"))
        .finally(() => {
          saving = false;
        });
    }
    // pause and stop get in here; the next slice sees them
    await yieldToMessages();
  }
}
