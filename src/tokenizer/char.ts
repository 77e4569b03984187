import { fail } from "../errors.js";
import { addedTokensJson, specialsPattern, splitSpecials } from "./bpe.js";
import { wtf8Encode } from "./bytes.js";
import { CHAR_SPECIAL_TOKENS, type EncodeOptions, type Tokenizer } from "./types.js";

function describeChar(ch: string): string {
  const cp = (ch.codePointAt(0) as number).toString(16).toUpperCase().padStart(4, "0");
  return `${JSON.stringify(ch)} (U+${cp})`;
}

/** One token per character (code point), plus special tokens: nanoGPT's Shakespeare tokenizer. */
export class CharTokenizer implements Tokenizer {
  readonly kind = "char";
  readonly vocabSize: number;
  readonly specialTokens: readonly string[];
  private readonly pieces: string[];
  private readonly ids: Map<string, number>;
  private readonly specialIds: Map<string, number>;
  private readonly specialPattern: RegExp | undefined;

  /** `pieces[id]` is the character (or special-token string) of each id. */
  constructor(pieces: readonly string[], specials: readonly string[]) {
    this.pieces = [...pieces];
    this.vocabSize = pieces.length;
    this.ids = new Map();
    this.specialIds = new Map();
    pieces.forEach((p, id) => {
      if (specials.includes(p)) this.specialIds.set(p, id);
      else if ([...p].length !== 1) fail(`character vocabulary entry ${JSON.stringify(p)} (id ${id}) is not a single character`);
      else this.ids.set(p, id);
    });
    this.specialTokens = [...this.specialIds.keys()];
    this.specialPattern = specialsPattern(this.specialTokens);
  }

  /** Vocabulary: the text's distinct characters by code point, then the special tokens. */
  static fromText(text: string, extraSpecials: readonly string[] = []): CharTokenizer {
    if (text.length === 0) fail("cannot build a character vocabulary from an empty text");
    const chars = [...new Set(text)].sort((a, b) => (a.codePointAt(0) as number) - (b.codePointAt(0) as number));
    const specials = [...CHAR_SPECIAL_TOKENS];
    for (const s of extraSpecials) {
      if (s.length === 0) fail("a special token cannot be the empty string");
      if (!specials.includes(s)) specials.push(s);
    }
    return new CharTokenizer([...chars, ...specials], specials);
  }

  encode(text: string, options: EncodeOptions = {}): number[] {
    const out: number[] = [];
    const parts = options.specialsAsText ? [text] : splitSpecials(text, this.specialPattern, this.specialIds);
    for (const part of parts) {
      if (typeof part === "number") {
        out.push(part);
        continue;
      }
      for (const ch of part) {
        const id = this.ids.get(ch);
        if (id === undefined) {
          fail(`character ${describeChar(ch)} is not in this model's character vocabulary: the model was trained on a different text`);
        }
        out.push(id);
      }
    }
    return out;
  }

  decode(ids: readonly number[]): string {
    let s = "";
    for (const id of ids) s += this.tokenString(id);
    return s;
  }

  tokenString(id: number): string {
    const p = this.pieces[id];
    if (p === undefined) fail(`token id ${id} is outside this tokenizer's vocabulary of ${this.vocabSize}`);
    return p;
  }

  tokenBytes(id: number): Uint8Array {
    return wtf8Encode(this.tokenString(id));
  }

  specialTokenId(token: string): number | undefined {
    return this.specialIds.get(token);
  }

  /**
   * A BPE model with no merges and no pre-tokenizer is exactly a character lookup in Hugging
   * Face's tokenizers, and the Fuse decoder joins the pieces back without spaces.
   */
  toHuggingFaceJson(): object {
    const vocab: Record<string, number> = {};
    this.pieces.forEach((p, id) => {
      vocab[p] = id;
    });
    return {
      version: "1.0",
      truncation: null,
      padding: null,
      added_tokens: addedTokensJson(this.specialIds),
      normalizer: null,
      pre_tokenizer: null,
      post_processor: null,
      decoder: { type: "Fuse" },
      model: {
        type: "BPE",
        dropout: null,
        unk_token: null,
        continuing_subword_prefix: null,
        end_of_word_suffix: null,
        fuse_unk: false,
        byte_fallback: false,
        ignore_merges: false,
        vocab,
        merges: [],
      },
    };
  }
}
