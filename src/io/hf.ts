/**
 * Hugging Face GPT-2 folders: config.json + model.safetensors, loaded into and saved from a GPT.
 * Accepts keys with or without the "transformer." prefix, ignores the attn.bias / attn.masked_bias
 * buffers older checkpoints carry, and re-ties lm_head to wte (we never write lm_head).
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fail, withFs } from "../errors.js";
import { configFromHuggingFace, configToHuggingFace, type GPTConfig } from "../nn/config.js";
import type { GPT } from "../nn/gpt.js";
import { writeFileAtomic } from "./atomic.js";
import { modelFromSafetensors } from "./model-weights.js";
import { modelSafetensorsBytes, modelTensors } from "./model-zip.js";
import { type QuantizationConfig, quantizationConfigJson, quantizationFromConfig, quantizedTensors } from "./quantize.js";
import { writeSafetensors } from "./safetensors.js";
import { readSafetensorsFile } from "./safetensors-file.js";

export function readJsonFile(path: string): Record<string, unknown> {
  if (!existsSync(path)) fail(`missing file ${path}`);
  const text = withFs(`cannot read ${path}`, () => readFileSync(path, "utf8"));
  let json: unknown;
  try {
    json = JSON.parse(text);
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

/** config.json's quantization_config (undefined: float32 weights) */
export function readQuantization(dir: string): QuantizationConfig | undefined {
  const file = join(dir, "config.json");
  return quantizationFromConfig(readJsonFile(file), file);
}

/**
 * Load config.json + model.safetensors (or a given weights file) from a folder. Quantized weights
 * (minigpt quantize) stay quantized (io/model-weights.ts).
 */
export function loadModel(dir: string, weightsFile = join(dir, "model.safetensors")): GPT {
  const config = readModelConfig(dir);
  const quantization = readQuantization(dir);
  if (!existsSync(weightsFile)) {
    // a Hugging Face folder saved before safetensors was the default holds PyTorch's pickle instead
    if (existsSync(join(dir, "pytorch_model.bin")))
      fail(
        `missing file ${weightsFile}: ${dir} holds pytorch_model.bin (PyTorch's pickle format), which minigpt does not read; save it as safetensors, in Python: GPT2LMHeadModel.from_pretrained(DIR).save_pretrained(DIR)`,
      );
    fail(`missing file ${weightsFile}`);
  }
  return modelFromSafetensors(readSafetensorsFile(weightsFile), quantization, config, weightsFile);
}

/** Write config.json and model.safetensors, each atomically. `extra` goes to config's "minigpt" key. */
export function saveModel(model: GPT, dir: string, extra: Record<string, unknown> = {}): void {
  writeFileAtomic(join(dir, "config.json"), `${JSON.stringify(configToHuggingFace(model.config, extra), null, 2)}\n`);
  writeFileAtomic(join(dir, "model.safetensors"), modelSafetensorsBytes(model));
}

/** saveModel with the matrices quantized (io/quantize.ts): config.json says quantization_config. */
export function saveQuantizedModel(model: GPT, dir: string, quantization: QuantizationConfig, extra: Record<string, unknown> = {}): void {
  const config = { ...configToHuggingFace(model.config, extra), quantization_config: quantizationConfigJson(quantization) };
  writeFileAtomic(join(dir, "config.json"), `${JSON.stringify(config, null, 2)}\n`);
  const tensors = quantizedTensors(
    modelTensors(model).map((t) => [t.name, t]),
    quantization,
  );
  writeFileAtomic(join(dir, "model.safetensors"), writeSafetensors(tensors, { format: "pt" }));
}
