/**
 * A LoRA adapter folder on disk (Node only; the format is io/lora.ts): adapter_config.json and
 * adapter_model.safetensors, as PEFT's save_pretrained writes them, so `PeftModel.from_pretrained`
 * loads what minigpt trains and minigpt loads what PEFT trained.
 */
import { existsSync } from "node:fs";
import { isAbsolute, join, resolve } from "node:path";
import { fail } from "../errors.js";
import type { GPTConfig } from "../nn/config.js";
import { attachLora, mergeLora } from "../nn/lora.js";
import { tokenizerFromHuggingFaceJson } from "../tokenizer/huggingface.js";
import { writeFileAtomic } from "./atomic.js";
import type { ModelFolder } from "./folder.js";
import { readJsonFile } from "./hf.js";
import {
  type LoraAdapter,
  type LoraConfig,
  loraAdapterFromSafetensors,
  loraAdapterTensors,
  loraConfigFromJson,
  loraConfigToJson,
} from "./lora.js";
import { readSafetensorsFile, writeSafetensorsFile } from "./safetensors-file.js";

export const ADAPTER_CONFIG = "adapter_config.json";
export const ADAPTER_WEIGHTS = "adapter_model.safetensors";

/** does `dir` hold a LoRA adapter? */
export function hasLoraAdapter(dir: string): boolean {
  return existsSync(join(dir, ADAPTER_CONFIG));
}

export function readLoraConfig(dir: string): LoraConfig {
  const file = join(dir, ADAPTER_CONFIG);
  return loraConfigFromJson(readJsonFile(file), file);
}

/** The adapter in `dir`, checked against the base model's config. */
export function readLoraAdapter(dir: string, model: GPTConfig): LoraAdapter {
  const config = readLoraConfig(dir);
  const file = join(dir, ADAPTER_WEIGHTS);
  return loraAdapterFromSafetensors(readSafetensorsFile(file), config, model, file);
}

/** The base model's folder: base_model_name_or_path, relative to the adapter's folder unless absolute. */
export function loraBaseFolder(dir: string, config: LoraConfig): string {
  return isAbsolute(config.base) ? config.base : resolve(dir, config.base);
}

/** Write both files, each atomically. */
export function writeLoraAdapter(dir: string, adapter: LoraAdapter): void {
  writeFileAtomic(join(dir, ADAPTER_CONFIG), `${JSON.stringify(loraConfigToJson(adapter.config), null, 2)}\n`);
  writeSafetensorsFile(join(dir, ADAPTER_WEIGHTS), loraAdapterTensors(adapter), { format: "pt" });
}

/**
 * A folder holding a LoRA adapter and no weights of its own (what PEFT's save_pretrained writes, and
 * minigpt's LoRA training): the base model it names (base_model_name_or_path, loaded by `loadBase`,
 * quantized or not) with the adapter merged in to run, and the folder's tokenizer.json when it has
 * one (a fine-tune may add tokens), else the base's.
 */
export function loadLoraModelFolder(dir: string, loadBase: (dir: string) => ModelFolder, notice: (text: string) => void): ModelFolder {
  const config = readLoraConfig(dir);
  const baseDir = loraBaseFolder(dir, config);
  if (!existsSync(baseDir))
    fail(
      `${join(dir, ADAPTER_CONFIG)} names the base model ${config.base}, which is not a folder here (${baseDir}); download the base model and set base_model_name_or_path to its folder`,
    );
  const base = loadBase(baseDir);
  try {
    const adapter = readLoraAdapter(dir, base.model.config);
    const tokenizerFile = join(dir, "tokenizer.json");
    const tokenizer = existsSync(tokenizerFile) ? tokenizerFromHuggingFaceJson(readJsonFile(tokenizerFile), tokenizerFile) : base.tokenizer;
    if (tokenizer.vocabSize > base.model.config.vocabSize)
      fail(
        `${tokenizerFile} has ${tokenizer.vocabSize} tokens but the base model ${baseDir} only ${base.model.config.vocabSize}; the adapter was trained on another base`,
      );
    mergeLora(base.model, attachLora(base.model, config, adapter));
    if (adapter.tokenRows) {
      const C = base.model.config.nEmbd;
      const wte = base.model.wte.weight.data;
      config.trainableTokens.forEach((id, i) => {
        wte.set((adapter.tokenRows as Float32Array).subarray(i * C, (i + 1) * C), id * C);
      });
    }
    notice(`${dir}: a LoRA adapter (r ${config.rank}, ${JSON.stringify(config.targets)}) on ${baseDir}, merged into its weights to run`);
    return { ...base, dir, tokenizer, lora: { config, base: baseDir } };
  } catch (err) {
    base.model.dispose();
    throw err;
  }
}
