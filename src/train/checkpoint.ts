/**
 * Checkpoints for --resume, crash-safe:
 *
 *   OUT/training/checkpoint-<step>/   model.safetensors, optimizer.safetensors, state.json
 *   OUT/training/latest               the name of the newest complete checkpoint
 *
 * A checkpoint is written into a temporary folder, every file fsynced, then the folder is renamed
 * into place; only then is `latest` replaced (atomically), and only after that are older checkpoints
 * pruned. A kill at any moment therefore leaves `latest` naming a complete checkpoint.
 */
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync } from "node:fs";
import { join } from "node:path";
import { fail } from "../errors.js";
import { writeFileAtomic } from "../io/atomic.js";
import { writeSafetensors } from "../io/safetensors.js";
import { readSafetensorsFile } from "../io/safetensors-file.js";
import { weightsFromSafetensors } from "../io/weights.js";
import type { GPT } from "../nn/gpt.js";
import type { AdamW } from "../optim/adamw.js";
import type { ScheduleOptions } from "../optim/schedule.js";
import type { RngState } from "../random.js";
import type { Tensor } from "../tensor/tensor.js";

export const KEEP_CHECKPOINTS = 2;

export interface TrainingState {
  /** optimizer steps completed */
  step: number;
  rng: { data: RngState; dropout: RngState };
  bestValLoss: number | null;
  /** the resolved training config (TrainConfig), so --resume needs no flags */
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

export function trainingDir(out: string): string {
  return join(out, "training");
}

export function saveCheckpoint(out: string, model: GPT, optimizer: AdamW, state: TrainingState): string {
  const root = trainingDir(out);
  mkdirSync(root, { recursive: true });
  const name = `checkpoint-${state.step}`;
  const final = join(root, name);
  const tmp = join(root, `.${name}.tmp-${process.pid}`);
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp);
  const tensors = (map: Map<string, Tensor>, prefix: string) =>
    [...map].map(([n, t]) => ({ name: `${prefix}${n}`, dtype: "F32" as const, shape: [...t.shape], data: t.data.slice() }));
  writeFileAtomic(join(tmp, "model.safetensors"), writeSafetensors(tensors(model.params, ""), { format: "pt" }));
  writeFileAtomic(
    join(tmp, "optimizer.safetensors"),
    writeSafetensors([...tensors(optimizer.m, "m."), ...tensors(optimizer.v, "v.")], { step: String(optimizer.step) }),
  );
  writeFileAtomic(join(tmp, "state.json"), `${JSON.stringify(state, null, 2)}\n`);
  // re-saving the same step (e.g. Ctrl-C right after a scheduled checkpoint) replaces it
  if (existsSync(final)) {
    if (readLatestName(out) === name) return final;
    rmSync(final, { recursive: true, force: true });
  }
  renameSync(tmp, final);
  fsyncPath(root);
  writeFileAtomic(join(root, "latest"), `${name}\n`);
  pruneCheckpoints(root, name);
  return final;
}

function readLatestName(out: string): string | null {
  const file = join(trainingDir(out), "latest");
  if (!existsSync(file)) return null;
  return readFileSync(file, "utf8").trim();
}

function pruneCheckpoints(root: string, latest: string): void {
  const steps = readdirSync(root)
    .map((n) => /^checkpoint-(\d+)$/.exec(n))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => Number(m[1]))
    .sort((a, b) => b - a);
  const keep = new Set(steps.slice(0, KEEP_CHECKPOINTS).map((s) => `checkpoint-${s}`));
  keep.add(latest);
  for (const n of readdirSync(root)) {
    if ((n.startsWith("checkpoint-") && !keep.has(n)) || n.startsWith(".checkpoint-"))
      rmSync(join(root, n), { recursive: true, force: true });
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
  if (name === null) fail(`nothing to resume in ${out}: ${join(trainingDir(out), "latest")} does not exist (train without --resume first)`);
  const dir = join(trainingDir(out), name);
  if (!existsSync(dir)) fail(`${join(trainingDir(out), "latest")} names ${name}, which does not exist`);
  let state: TrainingState;
  try {
    state = JSON.parse(readFileSync(join(dir, "state.json"), "utf8")) as TrainingState;
  } catch (err) {
    fail(`cannot read ${join(dir, "state.json")}: ${(err as Error).message}`);
  }
  const weights = weightsFromSafetensors(readSafetensorsFile(join(dir, "model.safetensors")), join(dir, "model.safetensors"));
  const opt = readSafetensorsFile(join(dir, "optimizer.safetensors"));
  const moments = new Map<string, Float32Array>();
  for (const [n, t] of opt.tensors) if (t.data instanceof Float32Array) moments.set(n, t.data);
  return { dir, state, weights, moments, optimizerStep: Number(opt.metadata.step ?? state.step) };
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
      t.data.set(data);
    }
  }
  optimizer.step = ckpt.optimizerStep;
}
