/**
 * A model folder as bytes, without the file system: the four files that make a model (config.json,
 * model.safetensors, tokenizer.json, tokenizer_config.json) packed into a zip and read back. The
 * browser page downloads and loads such zips; the CLI's `--model model.zip` reads them through
 * loadModelFolder (io/folder.ts). Training history (metrics, checkpoints) is not part of a model and
 * is left out of a zip; a zip made by zipping a whole model folder (one top folder inside) loads too.
 */
import { strFromU8, strToU8, unzipSync, zipSync } from "fflate";
import { fail } from "../errors.js";
import { configFromHuggingFace, configToHuggingFace, type GPTConfig } from "../nn/config.js";
import { type GPT, parameterShapes } from "../nn/gpt.js";
import { tokenizerConfigJson, tokenizerFromHuggingFaceJson } from "../tokenizer/huggingface.js";
import type { Tokenizer } from "../tokenizer/types.js";
import { modelFromSafetensors } from "./model-weights.js";
import { type QuantizationConfig, quantizationFromConfig } from "./quantize.js";
import { readSafetensors, safetensorsFileBytes, type TensorToWrite, writeSafetensors } from "./safetensors.js";

/** the files of a model, by name; tokenizer_config.json is written but not needed to load */
export const MODEL_FILE_NAMES = ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"] as const;
const NEEDED = ["config.json", "model.safetensors", "tokenizer.json"] as const;

/** a model's files by name (MODEL_FILE_NAMES) */
export type ModelFiles = Record<string, Uint8Array>;

/** A model loaded from bytes: the model, its tokenizer and config.json's "minigpt" object. */
export interface LoadedModel {
  model: GPT;
  tokenizer: Tokenizer;
  info: Record<string, unknown>;
  /** set when the weights are quantized (minigpt quantize) */
  quantization?: QuantizationConfig;
}

/** every parameter as float32, in parameterShapes order: a quantized model's matrices dequantized (q·s) */
export function modelTensors(model: GPT): (TensorToWrite & { data: Float32Array })[] {
  return parameterShapes(model.config).map(([name, shape]) => ({ name, dtype: "F32" as const, shape, data: model.weightValues(name) }));
}

/** modelTensors on any backend: the weights read back asynchronously (a GPU's tensors) */
async function modelTensorsAsync(model: GPT): Promise<TensorToWrite[]> {
  const names = parameterShapes(model.config);
  const values = await Promise.all(names.map(([name]) => model.params.get(name)?.read() ?? model.weightValues(name)));
  return names.map(([name, shape], i) => ({ name, dtype: "F32" as const, shape, data: values[i] as Float32Array }));
}

/** model.safetensors's metadata, as PyTorch's save_file writes it */
const MODEL_METADATA = { format: "pt" };

/** model.safetensors bytes in HF layout: "format": "pt" metadata, no lm_head (tied). */
export function modelSafetensorsBytes(model: GPT, tensors: TensorToWrite[] = modelTensors(model)): Uint8Array {
  return writeSafetensors(tensors, MODEL_METADATA);
}

/** the size of the float32 model.safetensors a model of this config saves (its header included) */
export function modelSafetensorsFileBytes(config: GPTConfig): number {
  return safetensorsFileBytes(
    parameterShapes(config).map(([name, shape]) => ({ name, dtype: "F32" as const, shape })),
    MODEL_METADATA,
  );
}

const json = (value: unknown): Uint8Array => strToU8(`${JSON.stringify(value, null, 2)}\n`);

/** The files `minigpt train` writes for a model; `info` becomes config.json's "minigpt" object. */
export function modelFiles(model: GPT, tokenizer: Tokenizer, info: Record<string, unknown> = {}): ModelFiles {
  return filesOf(model, tokenizer, info, modelTensors(model));
}

/** modelFiles on any backend, the GPU's included: the weights read back asynchronously */
export async function modelFilesAsync(model: GPT, tokenizer: Tokenizer, info: Record<string, unknown> = {}): Promise<ModelFiles> {
  return filesOf(model, tokenizer, info, await modelTensorsAsync(model));
}

function filesOf(model: GPT, tokenizer: Tokenizer, info: Record<string, unknown>, tensors: TensorToWrite[]): ModelFiles {
  return {
    "config.json": json(configToHuggingFace(model.config, info)),
    "model.safetensors": modelSafetensorsBytes(model, tensors),
    "tokenizer.json": json(tokenizer.toHuggingFaceJson()),
    "tokenizer_config.json": json(tokenizerConfigJson(tokenizer, { modelMaxLength: model.config.blockSize })),
  };
}

/** A zip of a model's files, at the zip's top level (stored, not deflated: float weights barely shrink). */
export function zipModelFiles(files: ModelFiles): Uint8Array {
  return zipSync(Object.fromEntries(Object.entries(files).map(([name, bytes]) => [name, [bytes, { level: 0 }]])));
}

/** whether the bytes begin as a zip does (PK) */
export const isZip = (bytes: Uint8Array): boolean => bytes.length >= 4 && bytes[0] === 0x50 && bytes[1] === 0x4b;

/**
 * A model's files out of a zip (`label` names it in errors). They may sit at the top or inside one
 * folder (a zipped model folder); anything else in the zip (training/, metrics) is not read.
 */
export function unzipModelFiles(bytes: Uint8Array, label: string): ModelFiles {
  const notModel = `${label} is not a model folder zip`;
  if (!isZip(bytes)) fail(`${notModel}: it is not a zip file at all (a model zip holds config.json, model.safetensors and tokenizer.json)`);
  let entries: Record<string, Uint8Array>;
  try {
    entries = unzipSync(bytes, {
      filter: (f) => MODEL_FILE_NAMES.some((name) => f.name === name || (f.name.endsWith(`/${name}`) && f.name.split("/").length === 2)),
    });
  } catch (err) {
    fail(`${notModel}: it cannot be read as a zip (${(err as Error).message}); the file may be cut short`);
  }
  const tops = [...new Set(Object.keys(entries).map((n) => (n.includes("/") ? n.slice(0, n.indexOf("/") + 1) : "")))];
  if (tops.length > 1) fail(`${notModel}: it holds more than one model (${tops.map((t) => t || "(top level)").join(", ")}); zip one`);
  const prefix = tops[0] ?? "";
  const files: ModelFiles = {};
  for (const name of MODEL_FILE_NAMES) {
    const entry = entries[prefix + name];
    if (entry) files[name] = entry;
  }
  const missing = NEEDED.filter((n) => !files[n]);
  if (missing.length > 0)
    fail(`${notModel}: it has no ${missing.join(", ")} (a model zip holds config.json, model.safetensors and tokenizer.json)`);
  return files;
}

function parseJson(bytes: Uint8Array, label: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(strFromU8(bytes));
  } catch (err) {
    fail(`${label} is not valid JSON (${(err as Error).message})`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) fail(`${label} must hold a JSON object`);
  return value as Record<string, unknown>;
}

/** The tokenizer of a model's files. */
export function tokenizerFromFiles(files: ModelFiles, label: string): Tokenizer {
  const bytes = files["tokenizer.json"];
  if (!bytes) fail(`${label} is not a model folder: it has no tokenizer.json`);
  return tokenizerFromHuggingFaceJson(parseJson(bytes, `${label}: tokenizer.json`));
}

/** Build the model and tokenizer from a model's files (`label`: where they came from, for errors). */
export function loadModelFiles(files: ModelFiles, label: string): LoadedModel {
  const missing = NEEDED.filter((n) => !files[n]);
  if (missing.length > 0) fail(`${label} is not a model folder: it has no ${missing.join(", ")}`);
  const configJson = parseJson(files["config.json"] as Uint8Array, `${label}: config.json`);
  const config = configFromHuggingFace(configJson, `${label}: config.json`);
  const weightsLabel = `${label}: model.safetensors`;
  const quantization = quantizationFromConfig(configJson, `${label}: config.json`);
  const weights = readSafetensors(files["model.safetensors"] as Uint8Array, weightsLabel);
  const model = modelFromSafetensors(weights, quantization, config, weightsLabel);
  let tokenizer: Tokenizer;
  try {
    tokenizer = tokenizerFromFiles(files, label);
    if (tokenizer.vocabSize > config.vocabSize)
      fail(
        `${label}: tokenizer.json has ${tokenizer.vocabSize} tokens but the model only ${config.vocabSize}; they come from different trainings`,
      );
  } catch (err) {
    model.dispose();
    throw err;
  }
  const info = configJson.minigpt;
  return { model, tokenizer, info: typeof info === "object" && info !== null ? (info as Record<string, unknown>) : {}, quantization };
}
