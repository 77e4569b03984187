// The training run: what it trains (a preset's new model, or a loaded model trained further), on
// which text, with what optimizer and schedule; made, restored from a save, summarised for the page
// and freed. training.ts runs it; save.ts keeps it in IndexedDB.
import {
  AdamW,
  analyzeConfig,
  BatchSampler,
  CharTokenizer,
  createStepper,
  GPT,
  type GPTConfig,
  MinigptError,
  makeConfig,
  Rng,
  type ScheduleOptions,
  type Stepper,
  splitTokens,
  type Tokenizer,
  tokenizerFromHuggingFaceJson,
  trainBpe,
} from "minigpt-ts/browser";
import { smallerPresets, tooShortAdvice } from "../presets.js";
import { type Metric, PRESETS, type Preset, type PresetEstimate, type RunStatus, type RunSummary, type TrainRequest } from "../protocol.js";
import type { SavedRun } from "../store.js";
import { onGpu, threads } from "./engine.js";
import { forgetModel, takeLoaded, useRunModel } from "./model.js";
import { restoreState } from "./save.js";

/** data-parallel shards of a batch (as `minigpt train --grad-shards 2`: the same bits on 1 or 2 threads) */
export const SHARDS = 2;
/**
 * what one thread does per second, for the presets' expected tokens/s: an estimate (the tiny preset
 * trained at ~25-33k tokens/s on 2 threads of a loaded 2-core VM, which this predicts at 35k)
 */
const FLOPS_PER_THREAD = 4e9;
/** a model's memory need, checked before it is made: wasm32 memory ends at 4 GiB */
const WASM_LIMIT_BYTES = 4 * 2 ** 30;

export interface Run {
  request: TrainRequest;
  preset: Preset;
  tokenizer: Tokenizer;
  model: GPT;
  optimizer: AdamW;
  /** forward/backward and update: data parallel over Web Workers when isolated (the trainer's stepper) */
  stepper: Stepper | null;
  train: Int32Array;
  val: Int32Array;
  batchRng: Rng;
  sampler: BatchSampler;
  schedule: ScheduleOptions;
  step: number;
  metrics: Metric[];
  samples: { step: number; text: string }[];
  status: RunStatus;
  msPerStep: number | null;
  savedAt: number | null;
}

let run: Run | null = null;

/** the run there is (training, paused, stopped or done), if any */
export const currentRun = (): Run | null => run;

export function makeTokenizer(text: string, kind: TrainRequest["tokenizer"], vocabSize: number): Tokenizer {
  return kind === "char" ? CharTokenizer.fromText(text) : trainBpe(text, { vocabSize });
}

function configOf(preset: Preset, vocabSize: number): GPTConfig {
  return makeConfig({ vocabSize, nLayer: preset.nLayer, nHead: preset.nHead, nEmbd: preset.nEmbd, blockSize: preset.blockSize });
}

/** every preset's size, training memory and expected speed for a vocabulary of `vocabSize` */
export function estimates(vocabSize: number): PresetEstimate[] {
  return PRESETS.map((p) => {
    const a = analyzeConfig(configOf(p, vocabSize), { batchSize: p.batchSize });
    return {
      parameters: a.parameters.total,
      trainingBytes: a.memory.training.total,
      tokensPerS: (FLOPS_PER_THREAD * threads()) / a.flops.trainingPerToken,
    };
  });
}

export function summary(r: Run): RunSummary {
  return {
    status: r.status,
    label: runLabel(r.request),
    step: r.step,
    maxSteps: r.request.maxSteps,
    parameters: r.model.parameterCount(),
    tokenizer: r.tokenizer.kind,
    vocabSize: r.tokenizer.vocabSize,
    metrics: r.metrics,
    samples: r.samples,
    etaS: eta(r),
    savedAt: r.savedAt,
  };
}

/** no run */
export function emptySummary(): RunSummary {
  return {
    status: "idle",
    label: "",
    step: 0,
    maxSteps: 0,
    parameters: 0,
    tokenizer: "",
    vocabSize: 0,
    metrics: [],
    samples: [],
    etaS: null,
    savedAt: null,
  };
}

/** seconds to the run's end at its current speed */
export const eta = (r: Run): number | null => (r.msPerStep === null ? null : ((r.request.maxSteps - r.step) * r.msPerStep) / 1000);

/** what a run's model is called: the text it learns, and the model it started from */
const runLabel = (r: TrainRequest): string => (r.base ? `${r.base.label} trained further on ${r.source}` : r.source);

/** what a run's downloaded model says of itself (info.json), when `model` is the run's; else null */
export function runInfo(model: GPT): Record<string, unknown> | null {
  if (!run || model !== run.model) return null;
  return {
    data: run.request.source,
    steps: run.step,
    trained_in: "minigpt web",
    ...(run.request.base ? { init: run.request.base.label } : {}),
  };
}

/** what a loaded model trains with: its own shape, and `minigpt train --init DIR`'s batch and learning rate */
function loadedShape(base: NonNullable<TrainRequest["base"]>): Preset {
  const c = base.config;
  return { name: base.label, nLayer: c.nLayer, nHead: c.nHead, nEmbd: c.nEmbd, blockSize: c.blockSize, batchSize: 12, lr: 1e-3 };
}

/** the training text's tokens; a vocabulary made elsewhere may lack some of its characters */
function encodeText(tokenizer: Tokenizer, text: string, base: TrainRequest["base"]): Int32Array {
  const unknown = new Set<string>();
  const ids = tokenizer.encode(text, { specialsAsText: true, onUnknown: (p) => unknown.add(p) });
  if (unknown.size > 0) {
    const shown = [...unknown].slice(0, 8).map((p) => JSON.stringify(p));
    throw new MinigptError(
      `the text has ${unknown.size} character${unknown.size === 1 ? "" : "s"} that ${base ? base.label : "the model"}'s vocabulary lacks (${shown.join(" ")}${unknown.size > 8 ? " …" : ""}): remove them, or start a new model on this text`,
    );
  }
  return Int32Array.from(ids);
}

/**
 * Make the run `request` asks for (the one before it is freed), or rebuild a saved one (paused);
 * its model becomes the current model. A request refused (text too short, a vocabulary that lacks
 * its characters, too big a preset) leaves the run before as it was: it is freed only once the new
 * one is sure to be made.
 */
export async function startRun(request: TrainRequest, saved?: SavedRun): Promise<Run> {
  // a loaded model trained further: its weights now (a restored run gets them from the save)
  const init = request.continueLoaded && !saved ? takeLoaded() : null;
  if (init) request = { ...request, base: { label: init.label, config: init.model.config } };
  const preset = request.base ? loadedShape(request.base) : (PRESETS[request.preset] as Preset);
  const tokenizer = saved
    ? tokenizerFromHuggingFaceJson(saved.tokenizer)
    : (init?.tokenizer ?? makeTokenizer(request.text, request.tokenizer, request.vocabSize));
  const ids = encodeText(tokenizer, request.text, request.base);
  const { train, val } = splitTokens(ids);
  const need = preset.blockSize + 1;
  if (val.length < need)
    throw new MinigptError(
      request.base
        ? `the text is too short for ${request.base.label} (context ${preset.blockSize}): ${ids.length} tokens, and its validation tenth needs at least ${need}; paste more text`
        : `the text is too short for the ${preset.name} preset: ${ids.length} tokens, and its validation tenth needs at least ${need}; ${tooShortAdvice(preset, val.length)}`,
    );
  const config = request.base?.config ?? configOf(preset, tokenizer.vocabSize);
  const memory = analyzeConfig(config, { batchSize: preset.batchSize }).memory.training.total;
  if (memory > WASM_LIMIT_BYTES * 0.75)
    throw new MinigptError(
      `${request.base ? request.base.label : `the ${preset.name} preset`} needs about ${(memory / 2 ** 30).toFixed(1)} GiB to train, more than a page may use${smallerPresets(preset).length > 0 ? "; pick a smaller one" : ""}`,
    );
  disposeRun();
  let model: GPT;
  try {
    // every weight trains: a loaded quantized model's int8/int4 matrices become float32 first
    if (init && init.model.quantized.size > 0) init.model.dequantize();
    model = init?.model ?? new GPT(config, request.seed);
  } catch (err) {
    throw outOfMemory(err, preset);
  }
  const optimizer = new AdamW(model.params, { lr: preset.lr, beta1: 0.9, beta2: 0.99, weightDecay: 0.1 });
  const batchRng = new Rng(request.seed + 1);
  const schedule: ScheduleOptions = {
    lr: preset.lr,
    minLr: preset.lr / 10,
    warmupSteps: Math.min(100, Math.floor(request.maxSteps / 10)),
    decaySteps: request.maxSteps,
  };
  const r: Run = {
    request,
    preset,
    tokenizer,
    model,
    optimizer,
    stepper: null,
    train,
    val,
    batchRng,
    sampler: new BatchSampler(train, preset.blockSize, preset.batchSize, batchRng, "the training split"),
    schedule,
    step: 0,
    metrics: [],
    samples: [],
    status: "training",
    msPerStep: null,
    savedAt: null,
  };
  run = r;
  if (saved) restoreState(r, saved);
  // data parallel splits a step over CPU threads; on the GPU the step runs whole (trainStepOnGpu)
  r.stepper = onGpu() ? null : await createStepper(model, threads(), SHARDS);
  useRunModel(model, tokenizer, runLabel(request));
  return r;
}

/** an out-of-memory error as what to do about it; any other error as it is */
export function outOfMemory(err: unknown, preset: Preset): Error {
  const text = err instanceof Error ? err.message : String(err);
  if (err instanceof RangeError || /memory/i.test(text))
    return new MinigptError(
      PRESETS.includes(preset)
        ? `out of memory for the ${preset.name} preset (${text}); ${smallerPresets(preset).length > 0 ? "pick a smaller preset, or " : ""}close other tabs and try again`
        : `out of memory training ${preset.name} (${text}); close other tabs and try again, or train a smaller model`,
    );
  return err instanceof Error ? err : new Error(text);
}

/** free the run: its model (the current one no more), optimizer state and threads */
export function disposeRun(): void {
  if (!run) return;
  run.stepper?.dispose();
  forgetModel(run.model);
  run.model.dispose();
  for (const t of [...run.optimizer.m.values(), ...run.optimizer.v.values()]) t.dispose();
  run = null;
}
