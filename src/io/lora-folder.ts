/**
 * A LoRA adapter folder on disk (Node only; the format is io/lora.ts): adapter_config.json and
 * adapter_model.safetensors, as PEFT's save_pretrained writes them, so `PeftModel.from_pretrained`
 * loads what minigpt trains and minigpt loads what PEFT trained.
 */
import { existsSync } from "node:fs";
import { basename, dirname, isAbsolute, join, resolve } from "node:path";
import { fail } from "../errors.js";
import type { GPTConfig } from "../nn/config.js";
import { attachLora, mergeLora } from "../nn/lora.js";
import { withVocabulary } from "../nn/vocabulary.js";
import { tokenizerFromHuggingFaceJson } from "../tokenizer/huggingface.js";
import { writeFileAtomic } from "./atomic.js";
import { type ModelFolder, readFolderInfo } from "./folder.js";
import { readJsonFile } from "./hf.js";
import {
  type LoraAdapter,
  type LoraConfig,
  loraAdapterFromSafetensors,
  loraAdapterTensors,
  loraConfigFromJson,
  loraConfigToJson,
} from "./lora.js";
import { safetensorsFileBytes } from "./safetensors.js";
import { readSafetensorsFile, writeSafetensorsFile } from "./safetensors-file.js";

const ADAPTER_CONFIG = "adapter_config.json";
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

/**
 * The adapter's tokenizer.json (a fine-tune may add tokens): the folder's, or for a checkpoint of a
 * LoRA run (OUT/training/checkpoint-N) the run's; null when the adapter uses its base's.
 */
function adapterTokenizerFile(dir: string): string | null {
  const own = join(dir, "tokenizer.json");
  if (existsSync(own)) return own;
  const run = dirname(dirname(resolve(dir)));
  const ofRun = join(run, "tokenizer.json");
  const isCheckpoint = /^checkpoint-\d+$/.test(basename(resolve(dir))) && existsSync(join(dir, "state.json"));
  return isCheckpoint && existsSync(ofRun) ? ofRun : null;
}

/** adapter_model.safetensors's metadata, as PEFT writes it */
const ADAPTER_METADATA = { format: "pt" };

/** Write both files, each atomically. */
export function writeLoraAdapter(dir: string, adapter: LoraAdapter): void {
  writeFileAtomic(join(dir, ADAPTER_CONFIG), `${JSON.stringify(loraConfigToJson(adapter.config), null, 2)}\n`);
  writeSafetensorsFile(join(dir, ADAPTER_WEIGHTS), loraAdapterTensors(adapter), ADAPTER_METADATA);
}

/** the size of the adapter_model.safetensors writeLoraAdapter writes for `adapter` (its header included) */
export function loraAdapterFileBytes(adapter: LoraAdapter): number {
  return safetensorsFileBytes(loraAdapterTensors(adapter), ADAPTER_METADATA);
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
      `${join(dir, ADAPTER_CONFIG)} names the base model ${config.base}, which is not a folder here (${baseDir}: a relative path counts from the adapter's folder); put the base model's folder there, or set base_model_name_or_path to where it is (a Hub name such as gpt2 is not downloaded: download it first)`,
    );
  const base = loadBase(baseDir);
  let model = base.model;
  try {
    const tokenizerFile = adapterTokenizerFile(dir);
    const tokenizer = tokenizerFile ? tokenizerFromHuggingFaceJson(readJsonFile(tokenizerFile), tokenizerFile) : base.tokenizer;
    const baseVocab = model.config.vocabSize;
    if (tokenizer.vocabSize > baseVocab) {
      // tokens the fine-tune added: the base's table grows by them (as PEFT's users resize_token_embeddings)
      // and the adapter holds their rows (trainable_token_indices)
      const added = Array.from({ length: tokenizer.vocabSize - baseVocab }, (_, i) => baseVocab + i);
      if (!added.every((id) => config.trainableTokens.includes(id)) || base.quantization)
        fail(
          `${tokenizerFile} has ${tokenizer.vocabSize} tokens but the base model ${baseDir} only ${baseVocab}${base.quantization ? " (quantized, which cannot grow)" : ", and the adapter holds no rows for the others (trainable_token_indices)"}; the adapter was trained on another base`,
        );
      model = withVocabulary(model, tokenizer.vocabSize);
    }
    const adapter = readLoraAdapter(dir, model.config);
    mergeLora(model, attachLora(model, config, adapter));
    notice(`${dir}: a LoRA adapter (r ${config.rank}, ${JSON.stringify(config.targets)}) on ${baseDir}, merged into its weights to run`);
    // the run's record (minigpt train --lora-rank writes one): what eval scores again
    const info = existsSync(join(dir, "config.json")) ? readFolderInfo(dir) : base.info;
    return { ...base, model, info, dir, tokenizer, lora: { config, base: baseDir } };
  } catch (err) {
    model.dispose();
    throw err;
  }
}
