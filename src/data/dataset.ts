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
import { loadTextSource } from "./text.js";
import { fitVocabulary, locatePiece, unencodable, type VocabularyFit } from "./vocabulary.js";

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
  /** the characters (words) the data needed and `tokenizer` appended to the given one (VocabularyFit.grow) */
  addedPieces?: readonly string[];
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
  /** what to do with data a given character or word `tokenizer` cannot encode (default: an error) */
  vocabulary?: VocabularyFit;
}

export function loadDataset(o: DatasetOptions): Dataset {
  if (o.chat) {
    if (!o.tokenizer) fail("chat fine-tuning starts from a model: give --init DIR");
    return loadChatDataset(o.chat, o.tokenizer, o.blockSize, o.batchSize, o.vocabulary);
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
  const fitted = o.tokenizer
    ? fitVocabulary(o.tokenizer, [source.text], o.specialsAsText, o.vocabulary?.grow ?? false)
    : { tokenizer: createTokenizer(o.tokenizerKind, source.text, { vocabSize: o.vocabSize }), added: [] };
  const tokenizer = fitted.tokenizer;
  const onUnknown = (piece: string) => unencodable(locatePiece(source.files, piece, tokenizer.kind), tokenizer, piece, o.vocabulary?.hint);
  const ids = Int32Array.from(tokenizer.encode(source.text, { specialsAsText: o.specialsAsText, onUnknown }));
  const { train, val } = splitTokens(ids, 0.1);
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
    addedPieces: fitted.added,
  };
}
