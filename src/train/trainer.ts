/**
 * The training loop, in one plain function: sample a batch, forward, backward, clip, AdamW step;
 * evaluate and checkpoint now and then. Everything a user sees (progress line, plots) is driven by
 * the events it emits, so the CLI, a server or a test can each render it their own way. How a run
 * starts (fresh, from another model's weights, a chat fine-tune, a resume) is setup.ts's; what it
 * writes into its model folder, run-folder.ts's; who computes each step (one thread or data
 * parallel), stepper.ts's.
 */
import { join } from "node:path";
import type { Dataset } from "../data/dataset.js";
import type { TokenizeProgress } from "../data/token-cache.js";
import { fail, outOfMemory } from "../errors.js";
import type { LoraConfig } from "../io/lora.js";
import { backend } from "../kernels/index.js";
import type { GPTConfig } from "../nn/config.js";
import type { GPT } from "../nn/gpt.js";
import { clipForUpdate } from "../optim/adamw.js";
import { learningRate, replanSchedule, type ScheduleOptions } from "../optim/schedule.js";
import { Rng } from "../random.js";
import { noGrad, scope, Tensor } from "../tensor/tensor.js";
import type { Tokenizer } from "../tokenizer/types.js";
import { type Message, said, setting } from "../wording.js";
import { saveCheckpoint, type TrainingState } from "./checkpoint.js";
import type { TrainConfig } from "./config.js";
import { countingAccuracyAsync } from "./evaluate.js";
import { readMetrics } from "./metrics.js";
import { RunFolder } from "./run-folder.js";
import { setUp } from "./setup.js";
import { createStepper, type Stepper } from "./stepper.js";

export interface StepMetrics {
  step: number;
  loss: number;
  lr: number;
  /** wall-clock ms of the optimizer step: batch sampling + all micro-steps, no eval or checkpoint */
  ms: number;
  tokens_per_s: number;
  grad_norm: number;
  val_loss?: number;
  pattern_accuracy?: number;
  /** on the first step a resume trained: the checkpoint's step it continued from (loss.svg marks it) */
  resumed_from?: number;
}

export interface StartInfo {
  config: TrainConfig;
  model: GPTConfig;
  parameters: number;
  /** the parameters that train: all of them, or a LoRA adapter's */
  trainableParameters: number;
  /** the adapter a LoRA run trains (its base the rest of the model, frozen) */
  lora?: LoraConfig;
  dataset: { name: string; trainTokens: number; valTokens: number; vocabSize: number; tokenizer: string };
  totalSteps: number;
  resumedFrom: number | null;
  /** resume: the settings that differ from the run's saved ones (all in RESUME_OVERRIDABLE) */
  resumeChanges?: { key: keyof TrainConfig; from: unknown; to: unknown }[];
  /** the learning-rate schedule of the steps to come */
  schedule: ScheduleOptions;
  /** resume with a new end or new rates: the plan the run had before (schedule is the new one) */
  replacedSchedule?: ScheduleOptions;
  /** initPartial: which tensors were loaded, skipped (shape differs) and new */
  initReport?: { loaded: string[]; skipped: string[]; fresh: string[] };
  /** chat: special tokens the init vocabulary lacked, added with new embedding rows */
  chatTokensAdded?: string[];
  /** init: characters (words) the data needs that the character (word) vocabulary lacked, added with new embedding rows */
  piecesAdded?: readonly string[];
  /** threads running the model on shares of each batch (data parallel; 1 = off) */
  dataParallelThreads: number;
}

export interface TrainEvents {
  onStart?(info: StartInfo): void;
  onStep?(m: StepMetrics, totalSteps: number): void;
  onEval?(m: StepMetrics): void;
  onCheckpoint?(dir: string, step: number): void;
  /** hints and notices meant for the user */
  onMessage?(text: Message): void;
  /** a big text being tokenized into the token cache (src/data/token-cache.ts) */
  onTokenizeProgress?(p: TokenizeProgress): void;
  /** polled between steps (Ctrl-C): when true, a checkpoint is saved and training returns */
  shouldStop?(): boolean;
}

export interface TrainResult {
  model: GPT;
  tokenizer: Tokenizer;
  steps: number;
  bestValLoss: number | null;
  lastValLoss: number | null;
  patternAccuracy: number | null;
  interrupted: boolean;
  history: StepMetrics[];
  /**
   * the special tokens the model was trained to predict (in this run's data, or before it: the
   * init folder's, or all of its specials when that folder does not say); unseenSpecialIds
   * turns the rest into ids that sampling suppresses
   */
  specialTargets: readonly string[];
}

/** A flat (B·T) batch as a (B,T) int tensor. */
function batchTensor(values: Int32Array, T: number): Tensor {
  return Tensor.ints(values, [values.length / T, T]);
}

/** Mean loss over `steps` batches from a fixed-seed sampler, so evals are comparable across steps. */
export function estimateLoss(model: GPT, dataset: Dataset, steps: number, seed: number): number {
  return mean(valLosses(model, dataset, steps, seed, (loss) => loss.item()));
}

/** estimateLoss on any backend: on a GPU every batch's loss is read back together, one wait for all */
export async function estimateLossAsync(model: GPT, dataset: Dataset, steps: number, seed: number): Promise<number> {
  return mean(await Promise.all(valLosses(model, dataset, steps, seed, async (loss) => (await loss.read())[0] as number)));
}

/** `read` of each of `steps` validation batches' mean loss (a scalar tensor, freed after read returns) */
function valLosses<R>(model: GPT, dataset: Dataset, steps: number, seed: number, read: (loss: Tensor) => R): R[] {
  const sampler = dataset.valSampler(new Rng(seed));
  return noGrad(() =>
    Array.from({ length: steps }, () =>
      scope(() => {
        const { x, y } = sampler.next();
        return read(model.forward(batchTensor(x, dataset.batchT), { targets: batchTensor(y, dataset.batchT) }).loss as Tensor);
      }),
    ),
  );
}

function mean(values: readonly number[]): number {
  let sum = 0;
  for (const v of values) sum += v;
  return sum / values.length;
}

/** The options of train() besides the config. */
export interface TrainOptions {
  /** continue the run in config.out from its latest checkpoint */
  resume?: boolean;
  /** the settings the user gave explicitly (on resume only RESUME_OVERRIDABLE ones may change) */
  overrides?: Partial<TrainConfig>;
  /** replace a model folder already in config.out */
  overwrite?: boolean;
  /** how threads share the work: "batch" (default: data parallel, one replica per thread) or "kernels" (big kernels split) */
  parallel?: "batch" | "kernels";
}

/** train(), with OUT open (locked) as `folder`. */
async function runTraining(requested: TrainConfig, options: TrainOptions, events: TrainEvents, folder: RunFolder): Promise<TrainResult> {
  const {
    config,
    dataset,
    model,
    trained,
    optimizer,
    resumed,
    resumeChanges,
    initReport,
    chatTokensAdded,
    piecesAdded,
    specialTargets,
    legacyShards,
  } = setUp(requested, options.resume ?? false, options.overrides ?? {}, events);
  const out = config.out;
  const tokensPerStep = config.batchSize * dataset.batchT * config.gradAccum;
  const stepsOf = (c: TrainConfig) =>
    c.epochs > 0 ? Math.max(1, Math.ceil((c.epochs * dataset.trainTokens) / tokensPerStep)) : c.maxSteps;
  const totalSteps = stepsOf(config);
  if (!(totalSteps >= 1)) fail(said`nothing to train: give ${setting("maxSteps")} or ${setting("epochs")}`);
  if (config.minLr > config.lr)
    fail(said`${setting("minLr")} ${config.minLr} is above ${setting("lr")} ${config.lr}: the decay would raise the learning rate`);
  if (config.batchSize % config.gradShards !== 0) {
    const divisors = Array.from({ length: config.batchSize }, (_, i) => i + 1).filter((d) => config.batchSize % d === 0);
    fail(
      said`${setting("batchSize")} ${config.batchSize} does not divide by ${setting("gradShards")} ${config.gradShards}: every shard takes an equal share of each batch (give one of ${divisors.join(", ")})`,
    );
  }
  const planOf = (c: TrainConfig): ScheduleOptions => ({ lr: c.lr, minLr: c.minLr, warmupSteps: c.warmupSteps, decaySteps: stepsOf(c) });
  // a resumed run goes on with its saved plan (checkpoints before plans were saved: the one its config gives)
  const planned = resumed ? (resumed.state.schedule ?? planOf(resumed.state.config as unknown as TrainConfig)) : planOf(config);
  const schedule = resumed ? replanSchedule(planned, resumed.state.step, planOf(config)) : planned;

  // PRNG streams: one for batches, one for dropout; both saved in checkpoints so resume is exact
  const dataRng = new Rng(config.seed + 1);
  const dropoutRng = new Rng(config.seed + 2);
  let step = 0;
  let bestValLoss: number | null = null;
  let elapsed = 0;
  if (resumed) {
    step = resumed.state.step;
    dataRng.setState(resumed.state.rng.data);
    dropoutRng.setState(resumed.state.rng.dropout);
    bestValLoss = resumed.state.bestValLoss;
    elapsed = resumed.state.elapsedSeconds;
  }
  const sampler = dataset.trainSampler(dataRng);

  // on resume, the steps after the checkpoint are done again
  const history = resumed ? readMetrics(out).filter((m) => m.step <= step) : [];
  const info = {
    data: dataset.name,
    // what eval needs to score this run's validation split again: the data as resolved, and how it was encoded
    ...(config.chat ? { chat_data: config.chat } : { data_source: config.data }),
    specials_as_text: config.specialsAsText,
    tokenizer: dataset.tokenizer.kind,
    special_targets: specialTargets,
    trained_steps: step,
    best_val_loss: bestValLoss,
  };
  // threads and shards do not change a bit of the result; the kernels' rounding does
  const kernels = backend() as { name: string; simd?: string };
  const arithmetic = kernels.simd ? `${kernels.name} ${kernels.simd} SIMD` : kernels.name;
  const state = (): TrainingState => ({
    step,
    rng: { data: dataRng.getState(), dropout: dropoutRng.getState() },
    bestValLoss,
    config: config as unknown as Record<string, unknown>,
    schedule,
    elapsedSeconds: elapsed,
    arithmetic,
  });
  const warn = (text: string) => events.onMessage?.(text);
  // what the saves read (the model, the trained tensors, AdamW's moments): on a GPU read back once per save
  const saved = new Set([...model.params.values(), ...trained.params.values(), ...optimizer.m.values(), ...optimizer.v.values()]);
  if (resumed) folder.resume(history);
  else
    await Tensor.withHostValues(saved, () =>
      folder.create({
        trained,
        tokenizer: dataset.tokenizer,
        info,
        checkpoint: (dir) => saveCheckpoint(dir, trained, optimizer, state(), warn),
        overwrite: options.overwrite ?? false,
        data: config.data,
      }),
    );

  // threads: each runs the model on its shards of every batch (data parallel, see parallel.ts), unless
  // the caller asked for kernel-level threading only; the shards make the result the same either way
  const threads = options.parallel === "kernels" ? 1 : ((backend() as { threads?: number }).threads ?? 1);
  const fromScratch = !resumed && (config.init === "" || config.initPartial);
  let stepper: Stepper;
  try {
    stepper = await createStepper(model, threads, config.gradShards, trained.lora);
  } catch (e) {
    folder.failed(memoryAdvice(e, config, model.config, fromScratch), !resumed);
  }
  events.onStart?.({
    config,
    model: model.config,
    parameters: model.parameterCount(),
    trainableParameters: [...trained.params.values()].reduce((n, t) => n + t.size, 0),
    lora: trained.lora?.config,
    dataset: {
      name: dataset.name,
      trainTokens: dataset.trainTokens,
      valTokens: dataset.valTokens,
      vocabSize: dataset.tokenizer.vocabSize,
      tokenizer: dataset.tokenizer.kind,
    },
    totalSteps,
    resumedFrom: resumed ? step : null,
    resumeChanges,
    schedule,
    replacedSchedule: schedule !== planned ? planned : undefined,
    initReport,
    chatTokensAdded,
    piecesAdded,
    dataParallelThreads: stepper.threads,
  });
  if (dataset.files) events.onMessage?.(`files: ${dataset.files}`);
  const savedArithmetic = resumed?.state.arithmetic;
  if (savedArithmetic !== undefined && savedArithmetic !== arithmetic)
    events.onMessage?.(
      said`notice: ${out} was trained with ${savedArithmetic} kernels and continues with ${arithmetic}, which round differently: the run goes on correctly, but not bit-identical to continuing with ${savedArithmetic} (${setting("backend")} and MINIGPT_WASM_SIMD choose them)`,
    );
  if (legacyShards !== null)
    events.onMessage?.(
      said`notice: ${out} was saved before runs recorded ${setting("gradShards")}, so its remaining steps match what the version that saved it would have done only for the same split: it continues with ${setting("gradShards")} ${legacyShards}, as that version trained on ${setting("threads")} ${legacyShards} without ${setting("dropout")} or ${setting("gradAccum")} (for a run it trained on N threads give ${setting("gradShards")} N; 1 for one thread or ${setting("parallel")} kernels)`,
    );
  if (config.warmupSteps >= totalSteps)
    events.onMessage?.(
      said`hint: ${setting("warmupSteps")} ${config.warmupSteps} is not below the run's ${totalSteps} steps, so the learning rate never reaches ${setting("lr")} ${config.lr}; lower ${setting("warmupSteps")}`,
    );
  if (resumed && step >= totalSteps) {
    const length =
      config.epochs > 0
        ? said`the ${totalSteps} steps of ${setting("epochs")} ${config.epochs}`
        : said`${setting("maxSteps")} ${totalSteps}`;
    events.onMessage?.(said`the run is already at step ${step}, not below ${length}: nothing to train; raise it to continue`);
  }

  let lastValLoss: number | null = null;
  let lastAccuracy: number | null = null;
  let interrupted = false;
  const checkpoint = async () => {
    const dir = await Tensor.withHostValues(saved, () => saveCheckpoint(out, trained, optimizer, state(), warn));
    events.onCheckpoint?.(dir, step);
  };

  try {
    while (step < totalSteps) {
      if (events.shouldStop?.()) {
        interrupted = true;
        break;
      }
      const t0 = performance.now();
      const lr = learningRate(step, schedule);
      trained.zeroGrad();
      // each micro-batch's loss: a number, or on a GPU its read back, all awaited together below
      const microLosses: (number | Promise<number>)[] = [];
      for (let micro = 0; micro < config.gradAccum; micro++) {
        scope(() => {
          const { x, y } = sampler.next();
          // the mean over micro-batches: each contributes 1/gradAccum of the gradient
          microLosses.push(
            stepper.forwardBackward(
              batchTensor(x, dataset.batchT),
              batchTensor(y, dataset.batchT),
              1 / config.gradAccum,
              dropoutRng,
              micro === 0,
            ),
          );
        });
      }
      let loss = 0;
      for (const microLoss of await Promise.all(microLosses)) loss += microLoss / config.gradAccum;
      if (!Number.isFinite(loss)) {
        fail(
          resumed || step > 0
            ? said`the loss became ${loss} at step ${step + 1}; training stopped and the last good checkpoint in ${join(out, "training")} is kept (try a lower ${setting("lr")} or ${setting("gradClip")})`
            : said`the loss became ${loss} at step ${step + 1}; training stopped (try a lower ${setting("lr")} or ${setting("gradClip")})`,
        );
      }
      const gradNorm = await stepper.update(() => {
        // on a GPU the clipping is done there and only the norm comes back, awaited after AdamW is
        // queued; on the CPU AdamW applies the clip's factor as it reads each gradient
        const { norm, gradScale } = clipForUpdate(trained.params.values(), config.gradClip);
        optimizer.update(lr, gradScale);
        return norm;
      });
      step++;
      const ms = performance.now() - t0;
      elapsed += ms / 1000;
      const m: StepMetrics = { step, loss, lr, ms, tokens_per_s: (tokensPerStep * 1000) / ms, grad_norm: gradNorm };
      if (resumed && step === resumed.state.step + 1) m.resumed_from = resumed.state.step;
      // only a model from random weights: one from init has learned, and starts below ln(vocab)
      if (step === 1 && !resumed && config.init === "") {
        const expected = Math.log(model.config.vocabSize);
        if (Math.abs(loss - expected) > 1) {
          events.onMessage?.(
            said`hint: the first loss ${loss.toFixed(2)} is far from ln(vocab) = ${expected.toFixed(2)}; an untrained model should start near it (check the data and the model's settings)`,
          );
        }
      }

      if (step % config.evalInterval === 0 || step === totalSteps) {
        m.val_loss = await estimateLossAsync(model, dataset, config.evalSteps, config.seed + 3);
        lastValLoss = m.val_loss;
        if (dataset.counting) {
          m.pattern_accuracy = await countingAccuracyAsync(model);
          lastAccuracy = m.pattern_accuracy;
        }
        if (bestValLoss === null || m.val_loss < bestValLoss) {
          bestValLoss = m.val_loss;
          await Tensor.withHostValues(saved, () => folder.saveBest(trained));
        }
      }
      history.push(m);
      folder.appendMetrics(m);
      events.onStep?.(m, totalSteps);
      if (m.val_loss !== undefined) {
        folder.savePlot(history, `minigpt on ${dataset.name}`);
        events.onEval?.(m);
      }
      if (step % config.checkpointInterval === 0 || step === totalSteps) await checkpoint();
      // let signal handlers (Ctrl-C) run between steps
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  } catch (e) {
    // a new run that failed before its first step has no work in OUT to keep
    folder.failed(memoryAdvice(e, config, model.config, fromScratch), !resumed && step === 0);
  } finally {
    stepper.dispose();
  }
  if (interrupted) await checkpoint();
  folder.finish({ ...info, trained_steps: step, best_val_loss: bestValLoss }, interrupted);
  return {
    model,
    tokenizer: dataset.tokenizer,
    steps: step,
    bestValLoss,
    lastValLoss,
    patternAccuracy: lastAccuracy,
    interrupted,
    history,
    specialTargets,
  };
}

/**
 * Out of tensor memory (tensor/memory.ts's RangeError) in a training run, as a user error that names
 * the settings a step's memory grows with (the activations its backward pass keeps: (B,T,C) tensors
 * in every layer); any other error as it is. A model from a folder (init, resume) has its shape.
 */
function memoryAdvice(e: unknown, config: TrainConfig, model: GPTConfig, fromScratch: boolean): unknown {
  const sizes = said`${setting("blockSize")} ${model.blockSize} times ${setting("batchSize")} ${config.batchSize}`;
  return outOfMemory(
    e,
    fromScratch
      ? said`A training step's memory grows with ${sizes}, and with ${setting("nEmbd")} ${model.nEmbd} and ${setting("nLayer")} ${model.nLayer}: lower one of them`
      : said`A training step's memory grows with ${sizes}: lower one of them`,
  );
}

/**
 * Train (or, with resume, continue) the run described by `config`. `overrides` are the settings the
 * user gave explicitly; on resume only the run length and eval/checkpoint cadence may change.
 * The run holds OUT's lock (io/lock.ts) from start to end, so a second writer of OUT is refused, and
 * first puts right what a killed run left around OUT (io/out-folder.ts).
 */
export async function train(requested: TrainConfig, options: TrainOptions = {}, events: TrainEvents = {}): Promise<TrainResult> {
  const folder = RunFolder.open(requested.out, options.resume ?? false, (text) => events.onMessage?.(text));
  try {
    return await runTraining(requested, options, events, folder);
  } finally {
    folder.close();
  }
}
