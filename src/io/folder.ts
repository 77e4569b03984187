/**
 * The model folder (what `train --out` writes and `--model` reads):
 *
 *   config.json, model.safetensors     a plain Hugging Face GPT-2 folder
 *   tokenizer.json, tokenizer_config.json
 *   metrics.jsonl, loss.svg            training history
 *   training/                          checkpoints for --resume (src/train/checkpoint.ts)
 *
 * A model and its tokenizer always travel together, so generation can never use a different
 * vocabulary than training did.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { fail } from "../errors.js";
import type { GPT } from "../nn/gpt.js";
import { tokenizerConfigJson, tokenizerFromHuggingFaceJson } from "../tokenizer/huggingface.js";
import type { Tokenizer } from "../tokenizer/types.js";
import { writeFileAtomic } from "./atomic.js";
import { loadModel, readJsonFile } from "./hf.js";
import { besideMissingFolder, tidyBeforeReading } from "./out-folder.js";

export interface ModelFolder {
  dir: string;
  model: GPT;
  tokenizer: Tokenizer;
  /** config.json's "minigpt" object (training summary, data name, ...) */
  info: Record<string, unknown>;
}

export function saveTokenizer(dir: string, tokenizer: Tokenizer): void {
  writeFileAtomic(join(dir, "tokenizer.json"), `${JSON.stringify(tokenizer.toHuggingFaceJson(), null, 2)}\n`);
  writeFileAtomic(join(dir, "tokenizer_config.json"), `${JSON.stringify(tokenizerConfigJson(tokenizer), null, 2)}\n`);
}

export function loadTokenizer(dir: string): Tokenizer {
  const file = join(dir, "tokenizer.json");
  if (!existsSync(file)) fail(`missing file ${file}: a minigpt model folder keeps its tokenizer beside the weights`);
  return tokenizerFromHuggingFaceJson(readJsonFile(file));
}

/**
 * Load a model folder's top level (the best model) with its tokenizer, checking they agree. What a
 * killed run left around the folder is put right first (out-folder.ts), said through `notice`.
 */
export function loadModelFolder(dir: string, notice: (text: string) => void = (text) => console.error(text)): ModelFolder {
  tidyBeforeReading(dir, notice);
  if (!existsSync(dir)) fail(`model folder ${dir} does not exist (train one with: minigpt train --out ${dir})${besideMissingFolder(dir)}`);
  const model = loadModel(dir);
  const tokenizer = loadTokenizer(dir);
  if (tokenizer.vocabSize > model.config.vocabSize) {
    model.dispose();
    fail(
      `${dir}: tokenizer.json has ${tokenizer.vocabSize} tokens but the model only ${model.config.vocabSize}; they come from different trainings`,
    );
  }
  return { dir, model, tokenizer, info: readFolderInfo(dir) };
}

/** config.json's "minigpt" object of a model folder ({} when there is none) */
export function readFolderInfo(dir: string): Record<string, unknown> {
  const file = join(dir, "config.json");
  const config = existsSync(file) ? readJsonFile(file) : {};
  return (typeof config.minigpt === "object" && config.minigpt !== null ? config.minigpt : {}) as Record<string, unknown>;
}

/** What a model folder says it was trained on (config.json's "minigpt" object), for eval's default. */
export type TrainingData =
  | { kind: "text" /** a path (absolute) or a built-in name */; source: string; specialsAsText: boolean }
  | { kind: "chat"; file: string }
  | { kind: "unknown" };

export function trainingData(info: Record<string, unknown>): TrainingData {
  if (typeof info.chat_data === "string") return { kind: "chat", file: info.chat_data };
  const specialsAsText = info.specials_as_text === true;
  if (typeof info.data_source === "string") return { kind: "text", source: info.data_source, specialsAsText };
  // folders written before data_source: "data" is the source's short name, a path only for built-ins
  if (info.data === "moby-dick" || info.data === "counting") return { kind: "text", source: info.data, specialsAsText };
  return { kind: "unknown" };
}
