import { fail } from "../errors.js";
import { trainBpe } from "./bpeTrain.js";
import { CharTokenizer } from "./char.js";
import { gpt2Tokenizer } from "./gpt2.js";
import type { Tokenizer } from "./types.js";

export {
  type BpeMerge,
  type BpeSpec,
  ByteLevelBpe,
  pieceString,
} from "./bpe.js";
export { type BpeTrainOptions, bpeSpecials, trainBpe } from "./bpeTrain.js";
export {
  BYTE_TO_UNICODE,
  bytesToUnicode,
  UNICODE_TO_BYTE,
  unicodeToBytes,
  utf8Text,
  wtf8Decode,
  wtf8Encode,
} from "./bytes.js";
export { CharTokenizer, type CharTokenizerOptions, describeChar } from "./char.js";
export { gpt2Tokenizer } from "./gpt2.js";
export {
  type TokenizerConfigOptions,
  tokenizerConfigJson,
  tokenizerFromHuggingFaceJson,
} from "./huggingface.js";
export {
  GPT2_SPLIT_PATTERN,
  pretokenize,
  pretokenizeRegex,
} from "./pretokenize.js";
export {
  BPE_SPECIAL_TOKENS,
  CHAR_SPECIAL_TOKENS,
  type DecodeOptions,
  type EncodeOptions,
  type Tokenizer,
  type TokenizerKind,
} from "./types.js";

import { said, setting } from "../wording.js";

export { countingTokenizer, WordTokenizer } from "./word.js";

interface CreateTokenizerOptions {
  /** Target vocabulary for "bpe" (default 4096); ignored by the others. */
  vocabSize?: number;
  /** Special tokens besides the built-in ones ("char" and "bpe"). */
  extraSpecials?: string[];
}

const DEFAULT_BPE_VOCAB_SIZE = 4096;

/** The tokenizer `--tokenizer KIND` asks for; "char" and "bpe" are built from the training text. */
export function createTokenizer(kind: "char" | "bpe" | "gpt2", text: string, opts: CreateTokenizerOptions = {}): Tokenizer {
  switch (kind) {
    case "char":
      return CharTokenizer.fromText(text, opts.extraSpecials);
    case "bpe":
      return trainBpe(text, {
        vocabSize: opts.vocabSize ?? DEFAULT_BPE_VOCAB_SIZE,
        extraSpecials: opts.extraSpecials,
      });
    case "gpt2":
      if (opts.extraSpecials && opts.extraSpecials.length > 0) {
        fail(said`extra special tokens cannot be added to the fixed GPT-2 vocabulary; use ${setting("tokenizer")} bpe`);
      }
      return gpt2Tokenizer();
    default:
      return fail(`unknown tokenizer ${JSON.stringify(kind)}: choose char, bpe or gpt2`);
  }
}
