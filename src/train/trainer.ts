/**
 * The training loop, in one plain function: sample a batch, forward, backward, clip, AdamW step;
 * evaluate and checkpoint now and then. Everything a user sees (progress line, plots) is driven by
 * the events it emits, so the CLI, a server or a test can each render it their own way. How a run
 * starts (fresh, --init, --init-partial, --chat, --resume) is setup.ts's.
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { diskFigures, formatBytes } from "../analyze/analyze.js";
import type { Dataset } from "../data/dataset.js";
import type { TokenizeProgress } from "../data/token-cache.js";
import { fail, MinigptError, withFs } from "../errors.js";
import { appendWhole, writeFileAtomic } from "../io/atomic.js";
import { saveTokenizer } from "../io/folder.js";
import { saveModel } from "../io/hf.js";
import { lockFolder } from "../io/lock.js";
import { modelSafetensorsBytes } from "../io/model-zip.js";
import { besideMissingFolder, finishReplacement, pendingReplacement, prepareOutFolder, tidyModelFolder } from "../io/out-folder.js";
import { backend } from "../kernels/index.js";
import type { GPTConfig } from "../nn/config.js";
import type { GPT } from "../nn/gpt.js";
import { clipGradNorm } from "../optim/adamw.js";
import { learningRate, replanSchedule, type ScheduleOptions } from "../optim/schedule.js";
import { Rng } from "../random.js";
import { noGrad, scope, Tensor } from "../tensor/tensor.js";
import type { Tokenizer } from "../tokenizer/types.js";
import { KEEP_CHECKPOINTS, saveCheckpoint, type TrainingState } from "./checkpoint.js";
import { flagName, type TrainConfig } from "./config.js";
import { countingAccuracy } from "./evaluate.js";
import { metricsPath as metricsFile, readMetrics } from "./metrics.js";
import { DataParallel } from "./parallel.js";
import { lossPlotSvg } from "./plot.js";
import { setUp } from "./setup.js";

/** a model folder above this size is announced before it is written */
export const LARGE_FOLDER_BYTES = 100e6;

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
  /** on the first step a --resume trained: the checkpoint's step it continued from (loss.svg marks it) */
  resumed_from?: number;
}

export interface StartInfo {
  config: TrainConfig;
  model: GPTConfig;
  parameters: number;
  dataset: { name: string; trainTokens: number; valTokens: number; vocabSize: number; tokenizer: string };
  totalSteps: number;
  resumedFrom: number | null;
  /** resume: the settings that differ from the run's saved ones (all in RESUME_OVERRIDABLE) */
  resumeChanges?: { key: keyof TrainConfig; from: unknown; to: unknown }[];
  /** the learning-rate schedule of the steps to come */
  schedule: ScheduleOptions;
  /** resume with a new end or new rates: the plan the run had before (schedule is the new one) */
  replacedSchedule?: ScheduleOptions;
  /** --init-partial: which tensors were loaded, skipped (shape differs) and new */
  initReport?: { loaded: string[]; skipped: string[]; fresh: string[] };
  /** --chat: special tokens the --init vocabulary lacked, added with new embedding rows */
  chatTokensAdded?: string[];
  /** --init: characters (words) the data needs that the character (word) vocabulary lacked, added with new embedding rows */
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
  onMessage?(text: string): void;
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
   * --init folder's, or all of its specials when that folder does not say); unseenSpecialIds
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
  const sampler = dataset.valSampler(new Rng(seed));
  let sum = 0;
  noGrad(() => {
    for (let i = 0; i < steps; i++) {
      scope(() => {
        const { x, y } = sampler.next();
        const { loss } = model.forward(batchTensor(x, dataset.batchT), { targets: batchTensor(y, dataset.batchT) });
        sum += (loss as Tensor).item();
      });
    }
  });
  return sum / steps;
}

/** train(), holding OUT's lock. */
async function runTraining(
  requested: TrainConfig,
  options: {
    resume?: boolean;
    overrides?: Partial<TrainConfig>;
    overwrite?: boolean;
    /** how threads share the work: "batch" (default: data parallel, one replica per thread) or "kernels" (big kernels split) */
    parallel?: "batch" | "kernels";
  } = {},
  events: TrainEvents = {},
): Promise<TrainResult> {
  const {
    config,
    dataset,
    model,
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
  if (!(totalSteps >= 1)) fail("nothing to train: give --max-steps or --epochs");
  if (config.minLr > config.lr) fail(`--min-lr ${config.minLr} is above --lr ${config.lr}: the decay would raise the learning rate`);
  if (config.batchSize % config.gradShards !== 0) {
    const divisors = Array.from({ length: config.batchSize }, (_, i) => i + 1).filter((d) => config.batchSize % d === 0);
    fail(
      `--batch-size ${config.batchSize} does not divide by --${flagName("gradShards")} ${config.gradShards}: every shard takes an equal share of each batch (give one of ${divisors.join(", ")})`,
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

  const metricsPath = metricsFile(out);
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
  // --overwrite: the model folder this run replaced, kept until the run ends well (a run that fails
  // at step 2 on a typo'd flag must not have cost the user the model it replaced)
  let replaced: string | null = resumed ? pendingReplacement(out) : null;
  if (!resumed) {
    // said before anything is written: the GPT-2 tokenizer's 50,257 rows alone make a 128-wide model 206 MB
    const disk = diskFigures(model.parameterCount(), KEEP_CHECKPOINTS);
    if (disk.runFolderBytes > LARGE_FOLDER_BYTES)
      events.onMessage?.(
        `note: ${out} will take about ${formatBytes(disk.runFolderBytes)} on disk (model.safetensors ${formatBytes(disk.weightsBytes)} and ${KEEP_CHECKPOINTS} checkpoints of weights and AdamW moments, ${formatBytes(disk.checkpointBytes)} each); a smaller vocabulary or model shrinks it`,
      );
    // The folder appears complete or not at all: config, tokenizer, initial weights and checkpoint 0
    // are written to a temporary folder that is then renamed to OUT. So OUT is loadable and
    // resumable from the first moment it exists.
    replaced = prepareOutFolder(out, options.overwrite ?? false, config.data, (tmp) => {
      writeFileSync(join(tmp, "metrics.jsonl"), "");
      saveTokenizer(tmp, dataset.tokenizer);
      saveModel(model, tmp, info);
      saveCheckpoint(tmp, model, optimizer, state(), warn);
    });
  } else {
    writeFileAtomic(metricsPath, history.map((m) => JSON.stringify(m)).join("\n") + (history.length > 0 ? "\n" : ""));
  }

  // threads: each runs the model on its shards of every batch (data parallel, see parallel.ts), unless
  // the caller asked for kernel-level threading only; the shards make the result the same either way
  const threads = options.parallel === "kernels" ? 1 : ((backend() as { threads?: number }).threads ?? 1);
  const parallel = await DataParallel.create(model, threads, { shards: config.gradShards });
  events.onStart?.({
    config,
    model: model.config,
    parameters: model.parameterCount(),
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
    dataParallelThreads: parallel?.threads ?? 1,
  });
  if (dataset.files) events.onMessage?.(`files: ${dataset.files}`);
  const savedArithmetic = resumed?.state.arithmetic;
  if (savedArithmetic !== undefined && savedArithmetic !== arithmetic)
    events.onMessage?.(
      `notice: ${out} was trained with ${savedArithmetic} kernels and continues with ${arithmetic}, which round differently: the run goes on correctly, but not bit-identical to continuing with ${savedArithmetic} (--backend and MINIGPT_WASM_SIMD choose them)`,
    );
  if (legacyShards !== null)
    events.onMessage?.(
      `notice: ${out} was saved before runs recorded --${flagName("gradShards")}, so its remaining steps match what the version that saved it would have done only for the same split: it continues with --${flagName("gradShards")} ${legacyShards}, as that version trained on --threads ${legacyShards} without --dropout or --grad-accum (for a run it trained on N threads give --${flagName("gradShards")} N; 1 for one thread or --parallel kernels)`,
    );
  if (config.warmupSteps >= totalSteps)
    events.onMessage?.(
      `hint: --warmup-steps ${config.warmupSteps} is not below the run's ${totalSteps} steps, so the learning rate never reaches --lr ${config.lr}; lower --warmup-steps`,
    );
  if (resumed && step >= totalSteps) {
    const length = config.epochs > 0 ? `the ${totalSteps} steps of --epochs ${config.epochs}` : `--max-steps ${totalSteps}`;
    events.onMessage?.(`the run is already at step ${step}, not below ${length}: nothing to train; raise it to continue`);
  }

  let lastValLoss: number | null = null;
  let lastAccuracy: number | null = null;
  let interrupted = false;
  const checkpoint = () => {
    const dir = saveCheckpoint(out, model, optimizer, state(), warn);
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
      model.zeroGrad();
      let loss = 0;
      for (let micro = 0; micro < config.gradAccum; micro++) {
        scope(() => {
          const { x, y } = sampler.next();
          const xt = batchTensor(x, dataset.batchT);
          const yt = batchTensor(y, dataset.batchT);
          // the mean over micro-batches: each contributes 1/gradAccum of the gradient
          if (parallel) {
            loss += parallel.forwardBackward(xt, yt, 1 / config.gradAccum, dropoutRng, micro === 0) / config.gradAccum;
            return;
          }
          // one shard: the whole micro-batch on this thread
          const l = model.forward(xt, { targets: yt, dropoutRng }).loss as Tensor;
          l.backward(Float32Array.of(1 / config.gradAccum));
          loss += l.item() / config.gradAccum;
        });
      }
      if (!Number.isFinite(loss)) {
        fail(
          `the loss became ${loss} at step ${step + 1}; training stopped and the last good checkpoint in ${join(out, "training")} is kept (try a lower --lr or --grad-clip)`,
        );
      }
      const update = () => {
        const norm = clipGradNorm(model.params.values(), config.gradClip);
        optimizer.update(lr);
        return norm;
      };
      // data parallel: the replicas' threads, idle meanwhile, take halves of the update
      const gradNorm = parallel ? parallel.onThisThread(update) : update();
      step++;
      const ms = performance.now() - t0;
      elapsed += ms / 1000;
      const m: StepMetrics = { step, loss, lr, ms, tokens_per_s: (tokensPerStep * 1000) / ms, grad_norm: gradNorm };
      if (resumed && step === resumed.state.step + 1) m.resumed_from = resumed.state.step;
      if (step === 1 && !resumed && !config.chat) {
        const expected = Math.log(model.config.vocabSize);
        if (Math.abs(loss - expected) > 1) {
          events.onMessage?.(
            `hint: the first loss ${loss.toFixed(2)} is far from ln(vocab) = ${expected.toFixed(2)}; an untrained model should start near it (check --init or the data)`,
          );
        }
      }

      if (step % config.evalInterval === 0 || step === totalSteps) {
        m.val_loss = estimateLoss(model, dataset, config.evalSteps, config.seed + 3);
        lastValLoss = m.val_loss;
        if (dataset.counting) {
          m.pattern_accuracy = countingAccuracy(model);
          lastAccuracy = m.pattern_accuracy;
        }
        if (bestValLoss === null || m.val_loss < bestValLoss) {
          bestValLoss = m.val_loss;
          writeFileAtomic(join(out, "model.safetensors"), modelSafetensorsBytes(model));
        }
      }
      history.push(m);
      appendWhole(metricsPath, `${JSON.stringify(m)}\n`);
      events.onStep?.(m, totalSteps);
      if (m.val_loss !== undefined) {
        writeFileAtomic(join(out, "loss.svg"), lossPlotSvg(history, `minigpt on ${dataset.name}`));
        events.onEval?.(m);
      }
      if (step % config.checkpointInterval === 0 || step === totalSteps) checkpoint();
      // let signal handlers (Ctrl-C) run between steps
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  } catch (e) {
    if (replaced) {
      const kept = `The model folder --overwrite replaced is kept in ${replaced} (put it back with: rm -r ${out} && mv ${replaced} ${out})`;
      if (e instanceof MinigptError) fail(`${e.message}. ${kept}`);
      if (e instanceof Error) e.message = `${e.message}. ${kept}`;
    }
    throw e;
  } finally {
    parallel?.dispose();
  }
  if (interrupted) checkpoint();
  // the summary in config.json
  const finalInfo = { ...info, trained_steps: step, best_val_loss: bestValLoss };
  const configFile = join(out, "config.json");
  const saved = withFs(`cannot read ${configFile}`, () => readFileSync(configFile, "utf8"));
  writeFileAtomic(configFile, `${JSON.stringify({ ...JSON.parse(saved), minigpt: { version: 1, ...finalInfo } }, null, 2)}\n`);
  // the replaced model survives any interruption (Ctrl-C, SIGTERM, kill -9, an error) and goes only
  // when the run that replaced it has finished normally, here or in a later --resume
  if (interrupted && replaced) {
    events.onMessage?.(
      `the model folder --overwrite replaced is kept in ${replaced} until this run finishes (continue it with --resume), or put it back with: rm -r ${out} && mv ${replaced} ${out}`,
    );
  } else if (!interrupted) {
    const kept = finishReplacement(out);
    if (kept !== null) events.onMessage?.(kept);
  }
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
 * Train (or, with resume, continue) the run described by `config`. `overrides` are the settings the
 * user gave explicitly; on resume only the run length and eval/checkpoint cadence may change.
 * The run holds OUT's lock (io/lock.ts) from start to end, so a second writer of OUT is refused, and
 * first puts right what a killed run left around OUT (io/out-folder.ts).
 */
export async function train(
  requested: TrainConfig,
  options: Parameters<typeof runTraining>[1] = {},
  events: TrainEvents = {},
): Promise<TrainResult> {
  const notice = (text: string) => events.onMessage?.(text);
  const lock = lockFolder(requested.out, notice);
  try {
    tidyModelFolder(requested.out, notice);
    if (options.resume && !existsSync(requested.out))
      fail(
        `nothing to resume: the model folder ${requested.out} does not exist (train without --resume first)${besideMissingFolder(requested.out)}`,
      );
    return await runTraining(requested, options, events);
  } finally {
    lock.release();
  }
}
