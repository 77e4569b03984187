/**
 * What the trainer needs from data: a tokenizer, a sampler of training batches, a sampler of
 * validation batches and, for the counting task, the pattern-accuracy check.
 */
import { fail } from "../errors.js";
import { Rng } from "../random.js";
import { createTokenizer } from "../tokenizer/index.js";
import type { Tokenizer } from "../tokenizer/types.js";
import { countingTokenizer } from "../tokenizer/word.js";
import { type Batch, BatchSampler, SequenceSampler, specialTargets, splitTokens } from "./batches.js";
import { loadChatDataset } from "./chat-dataset.js";
import { countingTrainSequences, countingValSequences } from "./counting.js";
import { describeFolderSource, loadTextSource, type TextSource } from "./text.js";

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
  /** a folder of text: which files were read and which skipped (describeFolderSource) */
  files?: string;
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
  const source = loadTextSource(o.data);
  const tokenizer = o.tokenizer ?? createTokenizer(o.tokenizerKind, source.text, { vocabSize: o.vocabSize });
  const { ids, train, val } = textSplits(source, tokenizer, o.specialsAsText);
  // construct once here so that too-short data fails before any model is built
  new BatchSampler(train, o.blockSize, o.batchSize, new Rng(0), `the training split of ${source.name}`);
  new BatchSampler(val, o.blockSize, o.batchSize, new Rng(0), `the validation split of ${source.name} (the last 10%)`);
  return {
    name: source.name,
    tokenizer,
    trainTokens: train.length,
    valTokens: val.length,
    batchT: o.blockSize,
    trainSampler: (rng) => new BatchSampler(train, o.blockSize, o.batchSize, rng, "the training split"),
    valSampler: (rng) => new BatchSampler(val, o.blockSize, o.batchSize, rng, "the validation split"),
    counting: false,
    specialTargets: specialTargets(tokenizer, [ids]),
    files: describeFolderSource(source),
  };
}
