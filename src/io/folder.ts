/**
 * The model folder (what `train --out` writes and `--model` reads):
 *
 *   config.json, model.safetensors     a plain Hugging Face GPT-2 folder
 *   tokenizer.json, tokenizer_config.json
 *   metrics.jsonl, loss.svg            training history
 *   training/                          checkpoints for --resume (src/train/checkpoint.ts); each loads
 *                                      as a model too (locateModel)
 *
 * A model and its tokenizer always travel together, so generation can never use a different
 * vocabulary than training did. Nothing but this code and the trainer writes into a model folder:
 * another command's output file there (an attention map named model.safetensors, a tokenizer.json)
 * could break the model for good, so commands check their targets with enclosingModelFolder.
 */
import { existsSync, readdirSync, readFileSync, realpathSync, statSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { fail, failFs, withFs } from "../errors.js";
import type { GPT } from "../nn/gpt.js";
import { gpt2SlowTokenizerJson, tokenizerConfigJson, tokenizerFromHuggingFaceJson } from "../tokenizer/huggingface.js";
import type { Tokenizer } from "../tokenizer/types.js";
import { said, setting } from "../wording.js";
import { writeFileAtomic } from "./atomic.js";

import { loadModel, readJsonFile, readQuantization } from "./hf.js";
import type { LoraConfig } from "./lora.js";
import { ADAPTER_WEIGHTS, hasLoraAdapter, loadLoraModelFolder } from "./lora-folder.js";
import { isZip, loadModelFiles, type ModelFiles, tokenizerFromFiles, unzipModelFiles } from "./model-zip.js";
import { besideMissingFolder, tidyBeforeReading } from "./out-folder.js";
import { type QuantizationConfig, quantizationLabel } from "./quantize.js";

export interface ModelFolder {
  dir: string;
  model: GPT;
  tokenizer: Tokenizer;
  /** config.json's "minigpt" object (training summary, data name, ...); a checkpoint's is its run's */
  info: Record<string, unknown>;
  /** set when `dir` is a checkpoint (OUT/training/checkpoint-N): its step */
  checkpointStep?: number;
  /** set when the folder holds quantized weights (minigpt quantize), or its LoRA adapter's base does */
  quantization?: QuantizationConfig;
  /** set when the folder is a LoRA adapter on a base model (merged into the weights on loading) */
  lora?: { config: LoraConfig; base: string };
}

/**
 * tokenizer.json and tokenizer_config.json; `modelMaxLength` is the model's context (blockSize) when
 * the folder holds a model, which Hugging Face's tokenizer then truncates to and warns past
 */
export function saveTokenizer(dir: string, tokenizer: Tokenizer, modelMaxLength?: number): void {
  writeFileAtomic(join(dir, "tokenizer.json"), `${JSON.stringify(tokenizer.toHuggingFaceJson(), null, 2)}\n`);
  writeFileAtomic(join(dir, "tokenizer_config.json"), `${JSON.stringify(tokenizerConfigJson(tokenizer, { modelMaxLength }), null, 2)}\n`);
}

/**
 * The model files of `path` when it is a file (a model folder zipped, as the web page downloads
 * it), else null: a folder, or nothing there (locateModel says what is wrong then).
 */
export function readModelZip(path: string): ModelFiles | null {
  let bytes: Uint8Array;
  try {
    if (!statSync(path).isFile()) return null;
    bytes = readFileSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return null;
    failFs(`cannot read ${path}`, err);
  }
  if (!isZip(bytes)) {
    const folder = folderOfModelFile(path);
    if (folder) fail(folder);
  }
  return unzipModelFiles(bytes, path);
}

/**
 * A file of a model folder or checkpoint given where the model is wanted (out/model.safetensors,
 * out/training/checkpoint-300/model.safetensors, out/training/latest): what to give instead, or
 * null for any other file. Listing a folder shows the files, so this is the likely mistake, and
 * "not a zip file" alone would not say what to do.
 */
function folderOfModelFile(path: string): string | null {
  const dir = dirname(path);
  // latest names the newest checkpoint (a line of text); it is not one
  if (basename(path) === "latest" && basename(resolve(dir)) === "training") {
    const names = checkpointNames(dir);
    if (names.length > 0)
      return `${path} only names its run's newest checkpoint: give that checkpoint's folder (${join(dir, names[0] as string)}) or the run's model folder ${dirname(dir)}`;
  }
  const checkpoint = CHECKPOINT_NAME.test(basename(resolve(dir))) && existsSync(join(dir, "state.json"));
  if (checkpoint || existsSync(join(dir, "config.json")) || hasLoraAdapter(dir))
    return `${path} is one file of the model folder ${dir}: give the folder itself (${dir}), which holds the model's config, weights and tokenizer together`;
  return null;
}

/** The tokenizer of a model folder, one of its checkpoints, or a model zip. */
export function loadModelTokenizer(path: string): Tokenizer {
  const zipped = readModelZip(path);
  if (zipped) return tokenizerFromFiles(zipped, path);
  return loadTokenizer(locateModel(path).root);
}

/** a folder's tokenizer files: tokenizer.json, or (a Hugging Face GPT-2 folder saved by the slow tokenizer, GPT2Tokenizer) vocab.json and merges.txt */
function tokenizerFiles(dir: string): { json: string } | { vocab: string; merges: string } | null {
  const json = join(dir, "tokenizer.json");
  if (existsSync(json)) return { json };
  const vocab = join(dir, "vocab.json");
  const merges = join(dir, "merges.txt");
  return existsSync(vocab) && existsSync(merges) ? { vocab, merges } : null;
}

/**
 * The folder of a tokenizer given by one of its files (DIR/tokenizer.json, or the slow tokenizer's
 * vocab.json or merges.txt: what a listing shows): DIR; any other path as it is.
 */
export function tokenizerFolder(path: string): string {
  const tokenizerFile = ["tokenizer.json", "vocab.json", "merges.txt"].includes(basename(path));
  return tokenizerFile && existsSync(path) && statSync(path).isFile() ? dirname(path) : path;
}

/** whether loadTokenizer finds a tokenizer in dir (tokenizer.json, or vocab.json and merges.txt) */
export function hasTokenizer(dir: string): boolean {
  return tokenizerFiles(dir) !== null;
}

export function loadTokenizer(dir: string): Tokenizer {
  const files = tokenizerFiles(dir);
  if (files && "json" in files) return tokenizerFromHuggingFaceJson(readJsonFile(files.json), files.json);
  if (files) {
    const { vocab, merges } = files;
    const mergesText = withFs(`cannot read ${merges}`, () => readFileSync(merges, "utf8"));
    return tokenizerFromHuggingFaceJson(gpt2SlowTokenizerJson(readJsonFile(vocab), mergesText), `${vocab} and ${merges}`);
  }
  return fail(
    `missing file ${join(dir, "tokenizer.json")} (or Hugging Face's vocab.json and merges.txt): a model folder keeps its tokenizer beside the weights; for a Hugging Face GPT-2 model, in Python: GPT2TokenizerFast.from_pretrained("gpt2").save_pretrained(DIR) writes it`,
  );
}

/**
 * Where the parts of a model are. A model folder holds them all. A checkpoint of a run
 * (OUT/training/checkpoint-N: model.safetensors, optimizer.safetensors, state.json) holds only
 * weights: its config.json, tokenizer and "minigpt" record are the run's, in OUT two levels up.
 */
export interface ModelLocation {
  /** the folder whose config.json and tokenizer.json describe the model */
  root: string;
  weights: string;
  /** the step of a checkpoint; undefined for a model folder's best model */
  checkpointStep?: number;
}

const CHECKPOINT_NAME = /^checkpoint-(\d+)$/;

/** the files any model folder has one of (a LoRA adapter from PEFT has only its adapter_config.json) */
const MODEL_FOLDER_FILES = ["config.json", "model.safetensors", "tokenizer.json", "adapter_config.json"];

/** The checkpoint-N folders of a run's training folder that hold weights (or, of a LoRA run, an adapter), newest first. */
export function checkpointNames(trainingFolder: string): string[] {
  let names: string[];
  try {
    names = readdirSync(trainingFolder);
  } catch {
    return [];
  }
  return names
    .filter(
      (n) =>
        CHECKPOINT_NAME.test(n) &&
        (existsSync(join(trainingFolder, n, "model.safetensors")) || existsSync(join(trainingFolder, n, ADAPTER_WEIGHTS))),
    )
    .sort((a, b) => Number(CHECKPOINT_NAME.exec(b)?.[1]) - Number(CHECKPOINT_NAME.exec(a)?.[1]));
}

/** "A/checkpoint-300, A/checkpoint-200" (at most three, newest first) */
function checkpointList(trainingFolder: string, names: readonly string[]): string {
  const shown = names.slice(0, 3).map((n) => join(trainingFolder, n));
  return shown.join(", ") + (names.length > 3 ? ` and ${names.length - 3} older` : "");
}

/** Resolve a path given as a model (a model folder or one of its checkpoints); errors say which paths would do. */
export function locateModel(dir: string): ModelLocation {
  const parent = dirname(resolve(dir));
  const inTraining = basename(parent) === "training";
  if (!existsSync(dir)) {
    const names = inTraining ? checkpointNames(parent) : [];
    if (names.length > 0) fail(`${dir} does not exist; the checkpoints of that run are ${checkpointList(dirname(dir), names)}`);
    fail(`model folder ${dir} does not exist (train one with: minigpt train --out ${dir})${besideMissingFolder(dir)}`);
  }
  if (existsSync(join(dir, "config.json"))) return { root: dir, weights: join(dir, "model.safetensors") };
  const step = CHECKPOINT_NAME.exec(basename(resolve(dir)));
  if (step && existsSync(join(dir, "state.json"))) {
    const root = dirname(dirname(dir));
    if (!existsSync(join(root, "config.json")))
      fail(`${dir} is a checkpoint, and its run's folder ${root} has no config.json to say the model's shape`);
    return { root, weights: join(dir, "model.safetensors"), checkpointStep: Number(step[1]) };
  }
  const names = checkpointNames(dir);
  if (names.length > 0)
    fail(
      `${dir} holds the checkpoints of a training run, not a model: give one of them (${checkpointList(dir, names)}) or the run's model folder ${dirname(dir)}`,
    );
  const inner = checkpointNames(join(dir, "training"));
  if (inner.length > 0)
    fail(`${dir} has no config.json; its checkpoints (${checkpointList(join(dir, "training"), inner)}) still hold the weights`);
  // none of a model's files (a folder of texts, say): not "missing file config.json", as if one were lost
  if (!MODEL_FOLDER_FILES.some((f) => existsSync(join(dir, f))))
    fail(
      `${dir} is not a model folder: a model folder holds config.json, model.safetensors and tokenizer.json (minigpt train --out DIR writes one)`,
    );
  return { root: dir, weights: join(dir, "model.safetensors") };
}

/**
 * What the caller does with a quantized folder's int8/int4 weights, for the line loadModelFolder says
 * when it loads one: "decode" (generate, chat, serve), "score" (eval), "run" (a forward pass), "read"
 * (the weights only) or "quiet" (no line: the caller says what it does with them).
 */
export type QuantizedUse = "decode" | "score" | "run" | "read" | "quiet";

const QUANTIZED_USE: Record<Exclude<QuantizedUse, "quiet">, string> = {
  decode: ", decoding with int kernels",
  score: ", scoring with int kernels",
  run: ", running with int kernels",
  read: "",
};

/**
 * Load a model folder's best model, or a checkpoint of it (OUT/training/checkpoint-N), with the
 * tokenizer, checking they agree. What a killed run left around the folder is put right first
 * (out-folder.ts), said through `notice`, and so is a quantized folder's weights, worded by `use`.
 */
export function loadModelFolder(
  dir: string,
  notice: (text: string) => void = (text) => console.error(text),
  use: QuantizedUse = "read",
): ModelFolder {
  const folder = loadModelOrZip(dir, notice, use);
  if (folder.quantization && !folder.lora && use !== "quiet")
    notice(`${dir} holds ${quantizationLabel(folder.quantization)} weights (quantized)${QUANTIZED_USE[use]}`);
  return folder;
}

function loadModelOrZip(dir: string, notice: (text: string) => void, use: QuantizedUse): ModelFolder {
  const zipped = readModelZip(dir);
  if (zipped) return { dir, ...loadModelFiles(zipped, dir) };
  tidyBeforeReading(dir, notice);
  if (hasLoraAdapter(dir) && !existsSync(join(dir, "model.safetensors")))
    return loadLoraModelFolder(dir, (base) => loadModelFolder(base, notice, use), notice);
  const where = locateModel(dir);
  // a folder from `tokenizer train` (tokenizer.json alone) given as a model: not "missing file config.json",
  // as if a model had lost a file (a tokenizer folder is still fine where only a tokenizer is read)
  if (where.checkpointStep === undefined && !existsSync(join(dir, "config.json")) && !existsSync(where.weights) && hasTokenizer(dir))
    fail(
      said`${dir} is not a model folder: it holds a tokenizer only, no config.json or model.safetensors (to train a model with this tokenizer, give the folder as a training run's ${setting("tokenizer")})`,
    );
  const model = loadModel(where.root, where.weights);
  const tokenizer = loadTokenizer(where.root);
  if (tokenizer.vocabSize > model.config.vocabSize) {
    model.dispose();
    fail(
      `${where.root}: tokenizer.json has ${tokenizer.vocabSize} tokens but the model only ${model.config.vocabSize}; they come from different trainings`,
    );
  }
  const quantization = readQuantization(where.root);
  return { dir, model, tokenizer, info: readFolderInfo(where.root), checkpointStep: where.checkpointStep, quantization };
}

/** config.json's "minigpt" object of a model folder ({} when there is none) */
export function readFolderInfo(dir: string): Record<string, unknown> {
  const file = join(dir, "config.json");
  const config = existsSync(file) ? readJsonFile(file) : {};
  return (typeof config.minigpt === "object" && config.minigpt !== null ? config.minigpt : {}) as Record<string, unknown>;
}

/** is `dir` a model folder (weights, or a training run's checkpoints)? */
export function isModelFolder(dir: string): boolean {
  return existsSync(join(dir, "model.safetensors")) || existsSync(join(dir, "training", "latest")) || hasLoraAdapter(dir);
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
