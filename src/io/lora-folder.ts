/**
 * A LoRA adapter folder on disk (Node only; the format is io/lora.ts): adapter_config.json and
 * adapter_model.safetensors, as PEFT's save_pretrained writes them, so `PeftModel.from_pretrained`
 * loads what minigpt trains and minigpt loads what PEFT trained.
 */
import { existsSync } from "node:fs";
import { isAbsolute, join, resolve } from "node:path";
import type { GPTConfig } from "../nn/config.js";
import { writeFileAtomic } from "./atomic.js";
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
