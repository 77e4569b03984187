import type { Activation } from "../nn/config.js";

export type TokenizerChoice = "char" | "bpe" | "gpt2";

export const TOKENIZER_CHOICES: readonly TokenizerChoice[] = ["char", "bpe", "gpt2"];

export function isTokenizerChoice(s: string): s is TokenizerChoice {
  return (TOKENIZER_CHOICES as readonly string[]).includes(s);
}

/** The command-line flag of a TrainConfig key, without its dashes: nEmbd -> n-embd. */
export function flagName(key: string): string {
  return key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

/** The TrainConfig key of a train flag: n-embd -> nEmbd (the inverse of flagName). */
export function configKey(flag: string): keyof TrainConfig {
  return flag.replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase()) as keyof TrainConfig;
}

/** Everything a training run depends on; printed at start and stored in every checkpoint. */
export interface TrainConfig {
  /** a text file, a folder of .txt files, or a built-in name (moby-dick, counting); "" with chat, or for DEFAULT_DATA */
  data: string;
  out: string;
  /**
   * char, bpe or gpt2; or a folder holding a tokenizer.json to use as it is (minigpt tokenizer
   * train). Resolved, it is what the run uses: with init, that folder's kind; "word" for counting.
   */
  tokenizer: TokenizerChoice | (string & {});
  /** the vocabulary bpe trains towards; resolved, the size of the tokenizer the run uses */
  vocabSize: number;
  nLayer: number;
  nHead: number;
  nEmbd: number;
  /** feed-forward width; 0 means 4·nEmbd (resolved, the width itself) */
  nInner: number;
  activation: Activation;
  blockSize: number;
  batchSize: number;
  /**
   * shards each micro-batch is cut into, each shard's gradient computed whole by one thread and the
   * shards' gradients added in a fixed order: the result depends on this, never on the thread count
   * (src/train/parallel.ts). Must divide batchSize; more threads than shards stay idle.
   */
  gradShards: number;
  gradAccum: number;
  /** optimizer steps; 0 means derive from epochs */
  maxSteps: number;
  epochs: number;
  lr: number;
  minLr: number;
  warmupSteps: number;
  beta1: number;
  beta2: number;
  weightDecay: number;
  gradClip: number;
  dropout: number;
  evalInterval: number;
  evalSteps: number;
  checkpointInterval: number;
  seed: number;
  /** start from this model folder's weights and tokenizer */
  init: string;
  /** with init: load only the tensors whose name and shape match */
  initPartial: boolean;
  specialsAsText: boolean;
  /** chat fine-tuning: a JSONL file of conversations (needs init); loss only on assistant tokens */
  chat: string;
  /**
   * LoRA: the rank of the adapters trained on init's frozen model (0 = train the whole model); the
   * run's model folder holds the adapter in PEFT's format (src/train/trained.ts)
   */
  loraRank: number;
  /** LoRA's alpha: the adapters' output is scaled by alpha / rank */
  loraAlpha: number;
  /** dropout on the adapters' input while training */
  loraDropout: number;
  /** the layers that get adapters, comma-separated names matched by suffix as PEFT's target_modules ("c_proj": attn.c_proj and mlp.c_proj) */
  loraTargets: string;
}

/** the data of a run that names none (and is not a chat fine-tune) */
export const DEFAULT_DATA = "moby-dick";

export const defaultTrainConfig: TrainConfig = {
  data: "",
  out: "out",
  tokenizer: "char",
  vocabSize: 4096,
  nLayer: 4,
  nHead: 4,
  nEmbd: 128,
  nInner: 0,
  activation: "gelu_new",
  blockSize: 64,
  batchSize: 12,
  gradShards: 2,
  gradAccum: 1,
  maxSteps: 1000,
  epochs: 0,
  lr: 1e-3,
  minLr: 1e-4,
  warmupSteps: 100,
  beta1: 0.9,
  beta2: 0.99,
  weightDecay: 0.1,
  gradClip: 1.0,
  dropout: 0,
  evalInterval: 100,
  evalSteps: 20,
  checkpointInterval: 100,
  seed: 1337,
  init: "",
  initPartial: false,
  specialsAsText: false,
  chat: "",
  loraRank: 0,
  // PEFT's defaults: lora_alpha 8, lora_dropout 0, and c_attn, its target for GPT-2
  loraAlpha: 8,
  loraDropout: 0,
  loraTargets: "c_attn",
};

/**
 * Keys that may change on resume: how long, how fast, how often, and the text the batches come
 * from (the tokenizer and the model stay the run's); everything else must match.
 */
export const RESUME_OVERRIDABLE: readonly (keyof TrainConfig)[] = [
  "maxSteps",
  "epochs",
  "lr",
  "minLr",
  "evalInterval",
  "evalSteps",
  "checkpointInterval",
  "data",
];

/** What a run really uses, known once its tokenizer and model are built. */
export interface RunFacts {
  tokenizerKind: string;
  vocabSize: number;
  nInner: number;
}

/**
 * The config with the values in effect where the requested ones were defaults or did not apply:
 * the tokenizer kind of an init folder or of the counting task, the vocabulary's real size, the
 * feed-forward width, no data for a chat fine-tune (its conversations are the data). This is what
 * a checkpoint saves and what the CLI prints, so the printed flags give the same run again.
 */
export function resolvedConfig(c: TrainConfig, facts: RunFacts): TrainConfig {
  const folder = !isTokenizerChoice(c.tokenizer) && !c.init && c.data !== "counting";
  return {
    ...c,
    data: c.chat ? "" : c.data,
    // a tokenizer folder is named by its path; every other tokenizer by its kind
    tokenizer: folder ? c.tokenizer : facts.tokenizerKind,
    vocabSize: facts.vocabSize,
    nInner: facts.nInner,
  };
}
