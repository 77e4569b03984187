/**
 * What the trainer needs from data: a tokenizer, a sampler of training batches, a sampler of
 * validation batches and, for the counting task, the pattern-accuracy check.
 */
import { fail } from "../errors.js";
import { Rng } from "../random.js";
import { createTokenizer } from "../tokenizer/index.js";
import { LookupTokenizer } from "../tokenizer/lookup.js";
import type { EncodeOptions, Tokenizer } from "../tokenizer/types.js";
import { countingTokenizer } from "../tokenizer/word.js";
import { said, setting } from "../wording.js";
import { type Batch, BatchSampler, SequenceSampler, specialTargets, splitStream, splitTokens, type TokenStream } from "./batches.js";
import { loadChatDataset } from "./chat-dataset.js";
import { countingTrainSequences, countingValSequences } from "./counting.js";
import { describeFolderSource, findTextFiles, loadTextSource, type TextFiles, type TextSource } from "./text.js";
import { readTextChunks, sourceBytes } from "./text-chunks.js";
import { openTokenCache, rememberedPieces, type TokenizeProgress } from "./token-cache.js";
import { fitVocabulary, locatePiece, unencodable, type VocabularyFit } from "./vocabulary.js";

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
  /** the characters (words) the data needed and `tokenizer` appended to the given one (VocabularyFit.grow) */
  addedPieces?: readonly string[];
  /** a folder of text: which files were read and which skipped (describeFolderSource) */
  files?: string;
}

interface DatasetOptions {
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
  /** the token cache: its folder (default tokenCacheDir()) and the size from which a text uses it */
  tokenCache?: { dir?: string; minBytes?: number; chunkBytes?: number; threads?: number; maxPiece?: number };
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
  onUnknown?: EncodeOptions["onUnknown"],
): { ids: Int32Array; train: Int32Array; val: Int32Array } {
  const ids = Int32Array.from(tokenizer.encode(source.text, { specialsAsText, onUnknown }));
  return { ids, ...splitTokens(ids, VAL_FRACTION) };
}

export function loadDataset(o: DatasetOptions): Dataset {
  if (o.chat) {
    if (!o.tokenizer) fail(said`chat fine-tuning starts from a model: give ${setting("init")} DIR`);
    return loadChatDataset(o.chat, o.tokenizer, o.blockSize, o.batchSize, o.vocabulary);
  }
  if (o.data === "counting") {
    const tokenizer = o.tokenizer ?? countingTokenizer();
    const train = countingTrainSequences();
    const val = countingValSequences();
    if (o.blockSize < train[0]!.length - 1)
      fail(said`the counting task needs ${setting("blockSize")} of at least ${train[0]!.length - 1}, got ${o.blockSize}`);
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
  const bytes = sourceBytes(files.files);
  const grow = o.vocabulary?.grow ?? false;
  // data a given vocabulary cannot encode: the error names the file and line
  const unknownIn = (tokenizer: Tokenizer) => (piece: string) =>
    unencodable(locatePiece(files.files, piece, tokenizer.kind), tokenizer, piece, o.vocabulary?.hint);
  if (bytes >= (o.tokenCache?.minBytes ?? TOKEN_CACHE_MIN_BYTES)) {
    const chunks = function* () {
      for (const c of readTextChunks(files, o.tokenCache?.chunkBytes)) yield c.text;
    };
    // what a grown vocabulary adds is remembered beside the token cache: reading the text again to
    // find it would cost what the cache saves
    const fitBigText = (tokenizer: Tokenizer) => {
      if (!grow || !(tokenizer instanceof LookupTokenizer)) return { tokenizer, added: [] as string[] };
      const base = { source: files, tokenizer, specialsAsText: o.specialsAsText, dir: o.tokenCache?.dir };
      const added = rememberedPieces(base, () => fitVocabulary(tokenizer, chunks(), o.specialsAsText, true, true).added);
      return { tokenizer: added.length > 0 ? tokenizer.withPieces(added) : tokenizer, added };
    };
    const fitted = o.tokenizer ? fitBigText(o.tokenizer) : undefined;
    const cache = openTokenCache({
      source: files,
      tokenizer: fitted?.tokenizer,
      onUnknown: fitted ? unknownIn(fitted.tokenizer) : undefined,
      kind: o.tokenizerKind,
      vocabSize: o.vocabSize,
      specialsAsText: o.specialsAsText,
      dir: o.tokenCache?.dir,
      chunkBytes: o.tokenCache?.chunkBytes,
      threads: o.tokenCache?.threads,
      maxPiece: o.tokenCache?.maxPiece,
      onProgress: o.onTokenizeProgress,
      onMessage: o.onMessage,
    });
    return textDataset(
      o,
      files,
      { tokenizer: cache.tokenizer, added: fitted?.added ?? [] },
      splitStream(cache.tokens, VAL_FRACTION),
      cache.header.specialTargets,
    );
  }
  const source = loadTextSource(o.data);
  const fitted = o.tokenizer
    ? fitVocabulary(o.tokenizer, [source.text], o.specialsAsText, grow)
    : { tokenizer: createTokenizer(o.tokenizerKind, source.text, { vocabSize: o.vocabSize }), added: [] };
  const { ids, train, val } = textSplits(source, fitted.tokenizer, o.specialsAsText, unknownIn(fitted.tokenizer));
  return textDataset(o, files, fitted, { train, val }, specialTargets(fitted.tokenizer, [ids]));
}

/** The dataset of a tokenized text, split into training and validation tokens. */
function textDataset(
  o: DatasetOptions,
  files: TextFiles,
  { tokenizer, added }: { tokenizer: Tokenizer; added: readonly string[] },
  { train, val }: { train: Int32Array | TokenStream; val: Int32Array | TokenStream },
  targets: readonly string[],
): Dataset {
  const name = files.name;
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
    addedPieces: added,
    files: describeFolderSource(files),
  };
}
