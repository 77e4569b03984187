/**
 * What the trainer needs from data: a tokenizer, a sampler of training batches, a sampler of
 * validation batches and, for the counting task, the pattern-accuracy check.
 */
import { fail } from "../errors.js";
import { Rng } from "../random.js";
import { createTokenizer } from "../tokenizer/index.js";
import type { Tokenizer } from "../tokenizer/types.js";
import { countingTokenizer } from "../tokenizer/word.js";
import { type Batch, BatchSampler, SequenceSampler, specialTargets, splitStream, splitTokens, type TokenStream } from "./batches.js";
import { loadChatDataset } from "./chat-dataset.js";
import { countingTrainSequences, countingValSequences } from "./counting.js";
import { findTextFiles, loadTextSource, type TextSource } from "./text.js";
import { stampFiles } from "./text-chunks.js";
import { openTokenCache, type TokenizeProgress } from "./token-cache.js";

/**
 * Texts of at least this many bytes go through the token cache (token-cache.ts): tokenized once, in
 * chunks, into a file read at offsets. Smaller ones are tokenized in memory, as before (a string and
 * an array of ids cost about 27 bytes per character, so 8 MiB stays well under 300 MB).
 */
export const TOKEN_CACHE_MIN_BYTES = 8 << 20;

export interface Dataset {
  name: string;
  tokenizer: Tokenizer;
  trainTokens: number;
  valTokens: number;
  /** T of every batch: the block size, or 19 for the counting task's 20-token sequences */
  batchT: number;
  /** training batches drawn with `rng` (whose state the checkpoint saves) */
  trainSampler(rng: Rng): { next(): Batch };
  valSampler(rng: Rng): { next(): Batch };
  /** true for the counting task: pattern accuracy is meaningful */
  counting: boolean;
  /** the tokenizer's special tokens that occur as a target (a token to predict) anywhere in the data */
  specialTargets: readonly string[];
}

export interface DatasetOptions {
  data: string;
  blockSize: number;
  batchSize: number;
  /** use this tokenizer (resume, --init); otherwise build `tokenizerKind` from the text */
  tokenizer?: Tokenizer;
  tokenizerKind: "char" | "bpe" | "gpt2";
  vocabSize: number;
  specialsAsText: boolean;
  /** chat fine-tuning: a JSONL file of conversations; `tokenizer` must carry the chat tokens */
  chat?: string;
  /** the token cache: its folder (default tokenCacheDir()) and the size from which a text uses it */
  tokenCache?: { dir?: string; minBytes?: number; chunkBytes?: number };
  /** progress of tokenizing a text into the token cache */
  onTokenizeProgress?(p: TokenizeProgress): void;
  /** notices for the user (the token cache reused or written) */
  onMessage?(text: string): void;
}

/** The share of a text's tokens held out for validation: the last 10%, by position. */
export const VAL_FRACTION = 0.1;

/**
 * A text's token ids and the training and validation splits cut from them, exactly as training
 * cuts them (eval scores the same positions through this function).
 */
export function textSplits(
  source: TextSource,
  tokenizer: Tokenizer,
  specialsAsText: boolean,
): { ids: Int32Array; train: Int32Array; val: Int32Array } {
  const ids = Int32Array.from(tokenizer.encode(source.text, { specialsAsText }));
  return { ids, ...splitTokens(ids, VAL_FRACTION) };
}

export function loadDataset(o: DatasetOptions): Dataset {
  if (o.chat) {
    if (!o.tokenizer) fail("chat fine-tuning starts from a model: give --init DIR");
    return loadChatDataset(o.chat, o.tokenizer, o.blockSize, o.batchSize);
  }
  if (o.data === "counting") {
    const tokenizer = o.tokenizer ?? countingTokenizer();
    const train = countingTrainSequences();
    const val = countingValSequences();
    if (o.blockSize < train[0]!.length - 1)
      fail(`the counting task needs --block-size of at least ${train[0]!.length - 1}, got ${o.blockSize}`);
    return {
      name: "counting",
      tokenizer,
      trainTokens: train.length * train[0]!.length,
      valTokens: val.length * val[0]!.length,
      batchT: train[0]!.length - 1,
      trainSampler: (rng) => new SequenceSampler(train, o.batchSize, rng),
      valSampler: (rng) => new SequenceSampler(val, o.batchSize, rng),
      counting: true,
      specialTargets: specialTargets(tokenizer, [...train, ...val]),
    };
  }
  const files = findTextFiles(o.data);
  const bytes = stampFiles(files.files).reduce((sum, f) => sum + f.size, 0);
  if (bytes >= (o.tokenCache?.minBytes ?? TOKEN_CACHE_MIN_BYTES)) {
    const cache = openTokenCache({
      source: files,
      tokenizer: o.tokenizer,
      kind: o.tokenizerKind,
      vocabSize: o.vocabSize,
      specialsAsText: o.specialsAsText,
      dir: o.tokenCache?.dir,
      chunkBytes: o.tokenCache?.chunkBytes,
      onProgress: o.onTokenizeProgress,
      onMessage: o.onMessage,
    });
    return textDataset(o, files.name, cache.tokenizer, splitStream(cache.tokens, VAL_FRACTION), cache.header.specialTargets);
  }
  const source = loadTextSource(o.data);
  const tokenizer = o.tokenizer ?? createTokenizer(o.tokenizerKind, source.text, { vocabSize: o.vocabSize });
  const { ids, train, val } = textSplits(source, tokenizer, o.specialsAsText);
  return textDataset(o, source.name, tokenizer, { train, val }, specialTargets(tokenizer, [ids]));
}

/** The dataset of a tokenized text, split into training and validation tokens. */
function textDataset(
  o: DatasetOptions,
  name: string,
  tokenizer: Tokenizer,
  { train, val }: { train: Int32Array | TokenStream; val: Int32Array | TokenStream },
  targets: readonly string[],
): Dataset {
  // construct once here so that too-short data fails before any model is built
  new BatchSampler(train, o.blockSize, o.batchSize, new Rng(0), `the training split of ${name}`);
  new BatchSampler(val, o.blockSize, o.batchSize, new Rng(0), `the validation split of ${name} (the last 10%)`);
  return {
    name,
    tokenizer,
    trainTokens: train.length,
    valTokens: val.length,
    batchT: o.blockSize,
    trainSampler: (rng) => new BatchSampler(train, o.blockSize, o.batchSize, rng, "the training split"),
    valSampler: (rng) => new BatchSampler(val, o.blockSize, o.batchSize, rng, "the validation split"),
    counting: false,
    specialTargets: targets,
  };
}
