/** The file-system part of the analysis (Node): a model folder's file sizes and training history. */
import { existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { withFs } from "../errors.js";
import { loraModules } from "../io/lora.js";
import { ADAPTER_WEIGHTS, hasLoraAdapter, loraBaseFolder, readLoraConfig } from "../io/lora-folder.js";
import { modelSafetensorsFileBytes } from "../io/model-zip.js";
import type { GPTConfig } from "../nn/config.js";
import { KEEP_CHECKPOINTS } from "../train/checkpoint.js";
import { readMetrics } from "../train/metrics.js";
import {
  type AnalyzeOptions,
  analyzeTensors,
  diskFigures,
  type HistoryFigures,
  type ModelAnalysis,
  type PackedMatrix,
  quantizedFigures,
} from "./analyze.js";

/**
 * Analyze a loaded model: parameter figures from its real tensors; files and history from `dir`
 * when it is a folder (a model zip has neither). A LoRA adapter folder's model is its base with the
 * adapter merged in: the figures of training it are the adapter's (its parameters train, the base's
 * stay frozen; its run writes the adapter), beside what a merge would write.
 */
export function analyzeModel(
  model: {
    config: GPTConfig;
    parameterInfo(): ReadonlyMap<string, { shape: readonly number[]; requiresGrad: boolean }>;
    /** a quantized model's matrices, held packed (GPT.quantized) */
    quantized?: ReadonlyMap<string, PackedMatrix>;
  },
  dir?: string,
  options: AnalyzeOptions = {},
): ModelAnalysis {
  const folder = dir !== undefined && !isFile(dir) ? dir : undefined;
  const files = folder === undefined ? undefined : withFs(`cannot read the folder ${folder}`, () => folderFiles(folder, model.config));
  const lora = files?.lora;
  // every parameter, a quantized model's matrices (held int8 / int4, not as tensors) included
  const params = model.parameterInfo();
  const tensors = lora ? [...params].map(([name, t]) => [name, { shape: t.shape, requiresGrad: false }] as const) : params;
  const quantized = quantizedFigures(model.quantized);
  const analysis = analyzeTensors(model.config, tensors, { ...options, adapterParameters: lora?.parameters, quantized });
  // the float32 files a run writes (a quantized folder's own file is smaller); an adapter's is the folder's own
  const modelFile = modelSafetensorsFileBytes(model.config);
  analysis.disk = lora
    ? { ...diskFigures(files?.weightsBytes ?? 0, KEEP_CHECKPOINTS, ADAPTER_WEIGHTS), mergedWeightsBytes: modelFile }
    : diskFigures(modelFile, KEEP_CHECKPOINTS);
  if (folder !== undefined) {
    analysis.files = files;
    const history = readHistory(folder);
    if (history) analysis.history = history;
  }
  return analysis;
}

/** a folder's weights file and size; an adapter folder's adapter (its parameters) and base */
function folderFiles(dir: string, model: GPTConfig): NonNullable<ModelAnalysis["files"]> {
  if (!hasLoraAdapter(dir)) return { dir, ...weightsFile(dir, "model.safetensors"), folderBytes: folderBytes(dir) };
  // an adapter folder holds no model.safetensors: the adapter's weights, and its base's folder
  const config = readLoraConfig(dir);
  const base = loraBaseFolder(dir, config);
  const parameters =
    loraModules(model, config.targets).reduce((n, m) => n + config.rank * (m.inFeatures + m.outFeatures), 0) +
    config.trainableTokens.length * model.nEmbd;
  return {
    dir,
    ...weightsFile(dir, ADAPTER_WEIGHTS),
    folderBytes: folderBytes(dir),
    lora: {
      rank: config.rank,
      targets: config.targets,
      parameters,
      base,
      baseWeightsBytes: weightsFile(base, "model.safetensors").weightsBytes,
    },
  };
}

function weightsFile(dir: string, name: string): { weightsFile: string; weightsBytes: number } {
  const file = join(dir, name);
  return { weightsFile: name, weightsBytes: existsSync(file) ? statSync(file).size : 0 };
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

function folderBytes(dir: string): number {
  let n = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    if (entry.isDirectory()) n += folderBytes(p);
    else if (entry.isFile()) n += statSync(p).size;
  }
  return n;
}

/** metrics.jsonl summary: steps, last train loss, best and last validation loss (a damaged file: one line naming it). */
export function readHistory(dir: string): HistoryFigures | undefined {
  let steps = 0;
  let lastLoss: number | null = null;
  let bestValLoss: number | null = null;
  let lastValLoss: number | null = null;
  let evaluations = 0;
  for (const m of readMetrics(dir)) {
    steps = Math.max(steps, m.step);
    lastLoss = m.loss;
    if (typeof m.val_loss === "number") {
      evaluations++;
      lastValLoss = m.val_loss;
      if (bestValLoss === null || m.val_loss < bestValLoss) bestValLoss = m.val_loss;
    }
  }
  if (steps === 0) return undefined;
  return { steps, lastLoss, bestValLoss, lastValLoss, evaluations };
}
