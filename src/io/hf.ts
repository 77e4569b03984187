/**
 * Hugging Face GPT-2 folders: config.json + model.safetensors, loaded into and saved from a GPT.
 * Accepts keys with or without the "transformer." prefix, ignores the attn.bias / attn.masked_bias
 * buffers older checkpoints carry, and re-ties lm_head to wte (we never write lm_head).
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fail } from "../errors.js";
import { configFromHuggingFace, configToHuggingFace, type GPTConfig } from "../nn/config.js";
import { GPT } from "../nn/gpt.js";
import { writeFileAtomic } from "./atomic.js";
import { readSafetensorsFile, type SafetensorsFile, type TensorToWrite, writeSafetensors } from "./safetensors.js";

export function readJsonFile(path: string): Record<string, unknown> {
  if (!existsSync(path)) fail(`missing file ${path}`);
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, "utf8"));
  } catch (err) {
    fail(`${path} is not valid JSON (${(err as Error).message})`);
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) fail(`${path} must hold a JSON object`);
  return json as Record<string, unknown>;
}

export function readModelConfig(dir: string): GPTConfig {
  const file = join(dir, "config.json");
  return configFromHuggingFace(readJsonFile(file), file);
}

/** Weights by our (prefixed) names from a safetensors file in HF GPT-2 layout. */
export function weightsFromSafetensors(file: SafetensorsFile, label: string): Map<string, { shape: number[]; data: Float32Array }> {
  const out = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [rawName, t] of file.tensors) {
    if (rawName.endsWith(".attn.bias") || rawName.endsWith(".attn.masked_bias")) continue; // causal-mask buffers
    if (rawName === "lm_head.weight") continue; // tied to wte
    const name = rawName.startsWith("transformer.") ? rawName : `transformer.${rawName}`;
    if (!(t.data instanceof Float32Array)) fail(`${label}: tensor ${rawName} has dtype ${t.dtype}, expected a float type`);
    out.set(name, { shape: t.shape, data: t.data });
  }
  return out;
}

/** Load config.json + model.safetensors (or a given weights file) from a folder. */
export function loadModel(dir: string, weightsFile = join(dir, "model.safetensors")): GPT {
  const config = readModelConfig(dir);
  if (!existsSync(weightsFile)) fail(`missing file ${weightsFile}`);
  const weights = weightsFromSafetensors(readSafetensorsFile(weightsFile), weightsFile);
  const model = new GPT(config);
  try {
    model.loadWeights(weights, weightsFile);
  } catch (err) {
    model.dispose();
    throw err;
  }
  return model;
}

export function modelTensors(model: GPT): TensorToWrite[] {
  return [...model.params].map(([name, t]) => ({ name, dtype: "F32" as const, shape: [...t.shape], data: t.data.slice() }));
}

/** model.safetensors bytes in HF layout: "format": "pt" metadata, no lm_head (tied). */
export function modelSafetensorsBytes(model: GPT): Uint8Array {
  return writeSafetensors(modelTensors(model), { format: "pt" });
}

/** Write config.json and model.safetensors, each atomically. `extra` goes to config's "minigpt" key. */
export function saveModel(model: GPT, dir: string, extra: Record<string, unknown> = {}): void {
  writeFileAtomic(join(dir, "config.json"), `${JSON.stringify(configToHuggingFace(model.config, extra), null, 2)}\n`);
  writeFileAtomic(join(dir, "model.safetensors"), modelSafetensorsBytes(model));
}
