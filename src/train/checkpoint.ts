/**
 * Checkpoints for resume, crash-safe:
 *
 *   OUT/training/checkpoint-<step>/   model.safetensors, optimizer.safetensors, state.json
 *                                     (a LoRA run: adapter_config.json and adapter_model.safetensors
 *                                     in place of model.safetensors, the moments the adapter's only)
 *   OUT/training/latest               the name of the newest complete checkpoint
 *
 * A checkpoint is written into a temporary folder, every file fsynced, then the folder is renamed
 * into place; only then is `latest` replaced (atomically), and only after that are older checkpoints
 * pruned. A kill at any moment therefore leaves `latest` naming a complete checkpoint.
 */
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync } from "node:fs";
import { join } from "node:path";
import { fail, failFs, fsErrorMessage, MinigptError, withFs } from "../errors.js";
import { writeFileAtomic } from "../io/atomic.js";
import { ADAPTER_WEIGHTS } from "../io/lora-folder.js";
import { writeSafetensors } from "../io/safetensors.js";
import { readSafetensorsFile } from "../io/safetensors-file.js";
import { checkFinite, weightsFromSafetensors } from "../io/weights.js";
import type { AdamW } from "../optim/adamw.js";
import type { ScheduleOptions } from "../optim/schedule.js";
import type { RngState } from "../random.js";
import type { Tensor } from "../tensor/tensor.js";
import { said, setting } from "../wording.js";
import { defaultTrainConfig } from "./config.js";
import { holdsAdapter, type Trained } from "./trained.js";

export const KEEP_CHECKPOINTS = 2;

export interface TrainingState {
  /** optimizer steps completed */
  step: number;
  rng: { data: RngState; dropout: RngState };
  bestValLoss: number | null;
  /** the resolved training config (TrainConfig), so a resume needs no settings repeated */
  config: Record<string, unknown>;
  /** the learning-rate plan, re-planned when a resume changed the end (absent in older checkpoints) */
  schedule?: ScheduleOptions;
  /** wall-clock seconds of training so far */
  elapsedSeconds: number;
  /**
   * the kernels whose rounding the run's weights carry (backend and SIMD flavour: "wasm relaxed
   * SIMD", "ref"): the same bits on any thread count, not across these (absent before it was recorded)
   */
  arithmetic?: string;
}

function fsyncPath(path: string): void {
  const fd = openSync(path, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function trainingDir(out: string): string {
  return join(out, "training");
}

/**
 * Save a checkpoint and make it the latest. On a disk error the checkpoint before it stays the
 * latest, whatever this one left is removed, and the error is one line (failFs). Old checkpoints
 * are pruned afterwards; a prune that fails is only `warn`ed about: the new checkpoint is safe.
 */
export function saveCheckpoint(
  out: string,
  trained: Trained,
  optimizer: AdamW,
  state: TrainingState,
  warn: (text: string) => void,
): string {
  const root = trainingDir(out);
  const name = `checkpoint-${state.step}`;
  const final = join(root, name);
  const tmp = join(root, `.${name}.tmp-${process.pid}`);
  let placed = false;
  try {
    mkdirSync(root, { recursive: true });
    rmSync(tmp, { recursive: true, force: true });
    mkdirSync(tmp);
    const tensors = (map: Map<string, Tensor>, prefix: string) =>
      [...map].map(([n, t]) => ({ name: `${prefix}${n}`, dtype: "F32" as const, shape: [...t.shape], data: t.data.slice() }));
    trained.saveWeights(tmp);
    writeFileAtomic(
      join(tmp, "optimizer.safetensors"),
      writeSafetensors([...tensors(optimizer.m, "m."), ...tensors(optimizer.v, "v.")], { step: String(optimizer.step) }),
    );
    writeFileAtomic(join(tmp, "state.json"), `${JSON.stringify(state, null, 2)}\n`);
    // re-saving the same step (e.g. Ctrl-C right after a scheduled checkpoint) replaces it
    if (existsSync(final)) {
      if (readLatestName(out) === name) {
        rmSync(tmp, { recursive: true, force: true });
        return final;
      }
      rmSync(final, { recursive: true, force: true });
    }
    renameSync(tmp, final);
    placed = true;
    fsyncPath(root);
    writeFileAtomic(join(root, LATEST), `${name}\n`);
  } catch (err) {
    // `latest` still names the checkpoint before this one: remove what this one left
    for (const left of placed ? [tmp, final] : [tmp]) {
      try {
        rmSync(left, { recursive: true, force: true });
      } catch {
        // the next checkpoint's prune removes it (a disk that fails the save may fail this too)
      }
    }
    failFs(`cannot save the checkpoint ${final}`, err);
  }
  pruneCheckpoints(root, name, warn);
  return final;
}

/** training/latest holds the folder name of the newest complete checkpoint, and nothing else */
const LATEST = "latest";
const CHECKPOINT_NAME = /^checkpoint-(\d+)$/;

/** the name in training/latest (null when there is none); anything but a checkpoint-N name is damage */
function readLatestName(out: string): string | null {
  const file = join(trainingDir(out), LATEST);
  if (!existsSync(file)) return null;
  const name = withFs(`cannot read ${file}`, () => readFileSync(file, "utf8")).trim();
  if (!CHECKPOINT_NAME.test(name))
    fail(
      `${file} names ${JSON.stringify(name)}, which is not a checkpoint folder of ${trainingDir(out)}; write the name of one of its checkpoint-N folders there`,
    );
  return name;
}

function pruneCheckpoints(root: string, latest: string, warn: (text: string) => void): void {
  const failed = (doing: string, err: unknown) =>
    warn(`warning: ${fsErrorMessage(doing, err)}. Training goes on: the new checkpoint ${latest} is saved`);
  let entries: string[];
  try {
    entries = readdirSync(root);
  } catch (err) {
    failed(`cannot list ${root} to remove old checkpoints`, err);
    return;
  }
  const steps = entries
    .map((n) => CHECKPOINT_NAME.exec(n))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => Number(m[1]))
    .sort((a, b) => b - a);
  const keep = new Set(steps.slice(0, KEEP_CHECKPOINTS).map((s) => `checkpoint-${s}`));
  keep.add(latest);
  for (const n of entries) {
    if ((n.startsWith("checkpoint-") && !keep.has(n)) || n.startsWith(".checkpoint-")) {
      try {
        rmSync(join(root, n), { recursive: true, force: true });
      } catch (err) {
        failed(`cannot remove the old checkpoint ${join(root, n)}`, err);
      }
    }
  }
}

export interface LoadedCheckpoint {
  dir: string;
  state: TrainingState;
  weights: Map<string, { shape: number[]; data: Float32Array }>;
  moments: Map<string, Float32Array>;
  optimizerStep: number;
}

/** Read OUT/training/latest. Errors say what to do when there is nothing to resume. */
export function loadLatestCheckpoint(out: string): LoadedCheckpoint {
  const name = readLatestName(out);
  if (name === null) {
    const latest = join(trainingDir(out), LATEST);
    // a model that no run of train made here (quantize's, merge's, Hugging Face's): "train without
    // resume first" would only be refused for the model it holds
    if (existsSync(join(out, "model.safetensors")) || existsSync(join(out, "adapter_config.json")))
      fail(
        said`nothing to resume in ${out}: it holds a model but no training run (no ${latest}); to train it further, start a new run from its weights with ${setting("init")} ${out} and another ${setting("out")}`,
      );
    fail(said`nothing to resume in ${out}: ${latest} does not exist (train without ${setting("resume")} first)`);
  }
  const dir = join(trainingDir(out), name);
  if (!existsSync(dir)) fail(`${join(trainingDir(out), LATEST)} names ${name}, which does not exist`);
  const stateFile = join(dir, "state.json");
  let json: unknown;
  try {
    json = JSON.parse(withFs(`cannot read ${stateFile}`, () => readFileSync(stateFile, "utf8")));
  } catch (err) {
    if (err instanceof MinigptError) throw err;
    fail(`${stateFile} is not valid JSON (${(err as Error).message}); ${DAMAGED}`);
  }
  const state = checkState(json, stateFile);
  const weights = holdsAdapter(dir)
    ? adapterWeights(join(dir, ADAPTER_WEIGHTS))
    : weightsFromSafetensors(readSafetensorsFile(join(dir, "model.safetensors")), join(dir, "model.safetensors"));
  const optimizerFile = join(dir, "optimizer.safetensors");
  const opt = readSafetensorsFile(optimizerFile);
  const moments = new Map<string, Float32Array>();
  for (const [n, t] of opt.tensors) {
    if (!(t.data instanceof Float32Array)) continue;
    checkFinite(t.data, optimizerFile, n);
    moments.set(n, t.data);
  }
  return { dir, state, weights, moments, optimizerStep: Number(opt.metadata.step ?? state.step) };
}

/** a LoRA checkpoint's adapter tensors by their (PEFT) names */
function adapterWeights(file: string): LoadedCheckpoint["weights"] {
  const out: LoadedCheckpoint["weights"] = new Map();
  for (const [name, t] of readSafetensorsFile(file).tensors) {
    if (!(t.data instanceof Float32Array)) fail(`${file}: tensor ${name} has dtype ${t.dtype}, expected a float type`);
    checkFinite(t.data, file, name);
    out.set(name, { shape: t.shape, data: t.data });
  }
  return out;
}

const DAMAGED = "the checkpoint is damaged: write the name of an older checkpoint folder into training/latest to resume from it";

/** settings added to TrainConfig after checkpoints were first saved: an older checkpoint lacks them (the trainer fills them in) */
const ADDED_LATER = new Set<string>(["gradShards", "loraRank", "loraAlpha", "loraDropout", "loraTargets"]);

/** state.json as a TrainingState, every field checked: damage is one line naming the file and the field */
function checkState(json: unknown, file: string): TrainingState {
  const bad = (field: string, value: unknown, want: string): never =>
    fail(`${file}: "${field}" is ${JSON.stringify(value) ?? "missing"}, not ${want}; ${DAMAGED}`);
  if (typeof json !== "object" || json === null || Array.isArray(json)) return bad("(the whole file)", json, "a JSON object");
  const s = json as Record<string, unknown>;
  if (!Number.isInteger(s.step) || (s.step as number) < 0) bad("step", s.step, "a step number");
  const rng = s.rng as Record<string, unknown> | null | undefined;
  if (typeof rng !== "object" || rng === null) bad("rng", rng, "the random generators' states");
  for (const key of ["data", "dropout"] as const) {
    const words = (rng as Record<string, unknown>)[key];
    const isState =
      Array.isArray(words) &&
      words.length === 4 &&
      words.every((w) => Number.isInteger(w) && w >= 0 && w <= 0xffffffff) &&
      words.some((w) => w !== 0);
    if (!isState) bad(`rng.${key}`, words, "four 32-bit words, not all zero");
  }
  if (s.bestValLoss !== null && !Number.isFinite(s.bestValLoss)) bad("bestValLoss", s.bestValLoss, "a number or null");
  if (!Number.isFinite(s.elapsedSeconds) || (s.elapsedSeconds as number) < 0) bad("elapsedSeconds", s.elapsedSeconds, "seconds");
  const config = s.config;
  if (typeof config !== "object" || config === null || Array.isArray(config)) return bad("config", config, "the run's settings");
  for (const [key, value] of Object.entries(defaultTrainConfig)) {
    const saved = (config as Record<string, unknown>)[key];
    if (saved === undefined && ADDED_LATER.has(key)) continue;
    if (typeof value === "number" ? !Number.isFinite(saved) : typeof saved !== typeof value)
      bad(`config.${key}`, saved, typeof value === "number" ? "a number" : `a ${typeof value}`);
  }
  if (s.schedule !== undefined) {
    const plan = s.schedule as Record<string, unknown> | null;
    if (typeof plan !== "object" || plan === null) bad("schedule", plan, "the learning-rate plan");
    for (const key of ["lr", "minLr", "warmupSteps", "decaySteps"])
      if (!Number.isFinite((plan as Record<string, unknown>)[key]))
        bad(`schedule.${key}`, (plan as Record<string, unknown>)[key], "a number");
    const from = (plan as Record<string, unknown>).from as Record<string, unknown> | null | undefined;
    if (from !== undefined && (typeof from !== "object" || from === null || !Number.isFinite(from.step) || !Number.isFinite(from.lr)))
      bad("schedule.from", from, "{ step, lr }");
  }
  return s as unknown as TrainingState;
}

/** Put checkpointed moments back into the optimizer (names must match the model's). */
export function restoreOptimizer(optimizer: AdamW, ckpt: LoadedCheckpoint): void {
  for (const [kind, map] of [
    ["m", optimizer.m],
    ["v", optimizer.v],
  ] as const) {
    for (const [name, t] of map) {
      const data = ckpt.moments.get(`${kind}.${name}`);
      if (!data || data.length !== t.size) fail(`${ckpt.dir}/optimizer.safetensors: missing or mis-shaped ${kind}.${name}`);
      t.write(data);
    }
  }
  optimizer.step = ckpt.optimizerStep;
}
