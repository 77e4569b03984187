/**
 * The model folder (what `train --out` writes and `--model` reads):
 *
 *   config.json, model.safetensors     a plain Hugging Face GPT-2 folder
 *   tokenizer.json, tokenizer_config.json
 *   metrics.jsonl, loss.svg            training history
 *   training/                          checkpoints for --resume (src/train/checkpoint.ts)
 *
 * A model and its tokenizer always travel together, so generation can never use a different
 * vocabulary than training did. Nothing but this code and the trainer writes into a model folder:
 * another command's output file there (an attention map named model.safetensors, a tokenizer.json)
 * could break the model for good, so commands check their targets with enclosingModelFolder.
 */
import { existsSync, realpathSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fail } from "../errors.js";
import type { GPT } from "../nn/gpt.js";
import { tokenizerConfigJson, tokenizerFromHuggingFaceJson } from "../tokenizer/huggingface.js";
import type { Tokenizer } from "../tokenizer/types.js";
import { writeFileAtomic } from "./atomic.js";
import { loadModel, readJsonFile } from "./hf.js";

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

/** Load a model folder's top level (the best model) with its tokenizer, checking they agree. */
export function loadModelFolder(dir: string): ModelFolder {
  if (!existsSync(dir)) fail(`model folder ${dir} does not exist (train one with: minigpt train --out ${dir})`);
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

/** is `dir` a model folder (weights, or a training run's checkpoints)? */
export function isModelFolder(dir: string): boolean {
  return existsSync(join(dir, "model.safetensors")) || existsSync(join(dir, "training", "latest"));
}

/**
 * The model folder that `path` (a file or folder to be written, existing or not) lies inside, or
 * null. Symbolic links are followed, so a link to a model folder is that folder.
 */
export function enclosingModelFolder(path: string): string | null {
  // the real path of the nearest folder above `path` that exists
  let dir = dirname(resolve(path));
  while (!existsSync(dir) && dirname(dir) !== dir) dir = dirname(dir);
  let real: string;
  try {
    real = realpathSync(dir);
  } catch {
    real = dir;
  }
  for (let d = real; ; d = dirname(d)) {
    if (isModelFolder(d)) return d;
    if (dirname(d) === d) return null;
  }
}
