import { fail } from "../errors.js";
import { addedTokensJson, specialsPattern, splitSpecials } from "./bpe.js";
import { wtf8Encode } from "./bytes.js";
import { CHAR_SPECIAL_TOKENS, type EncodeOptions, type Tokenizer } from "./types.js";

// Hugging Face's WhitespaceSplit cuts on Unicode White_Space, which JavaScript's \s does not match exactly.
const WHITESPACE = /\p{White_Space}+/u;

/** One token per whitespace-separated word of a fixed vocabulary (the `counting` task's numbers). */
export class WordTokenizer implements Tokenizer {
  readonly kind = "word";
  readonly vocabSize: number;
  readonly specialTokens: readonly string[];
  private readonly pieces: string[];
  private readonly ids = new Map<string, number>();
  private readonly specialIds = new Map<string, number>();
  private readonly specialPattern: RegExp | undefined;

  /** `pieces[id]` is the word (or special-token string) of each id. */
  constructor(pieces: readonly string[], specials: readonly string[]) {
    this.pieces = [...pieces];
    this.vocabSize = pieces.length;
    pieces.forEach((p, id) => {
      if (specials.includes(p)) this.specialIds.set(p, id);
      else if (p === "" || WHITESPACE.test(p))
        fail(`word vocabulary entry ${JSON.stringify(p)} (id ${id}) is empty or contains whitespace`);
      else this.ids.set(p, id);
    });
    this.specialTokens = [...this.specialIds.keys()];
    this.specialPattern = specialsPattern(this.specialTokens);
  }

  encode(text: string, options: EncodeOptions = {}): number[] {
    const out: number[] = [];
    const parts = options.specialsAsText ? [text] : splitSpecials(text, this.specialPattern, this.specialIds);
    for (const part of parts) {
      if (typeof part === "number") {
        out.push(part);
        continue;
      }
      for (const word of part.split(WHITESPACE)) {
        if (word === "") continue;
        const id = this.ids.get(word);
        if (id === undefined) {
          fail(`${JSON.stringify(word)} is not in this model's word vocabulary (${this.describeVocab()}); separate words with spaces`);
        }
        out.push(id);
      }
    }
    return out;
  }

  private describeVocab(): string {
    const words = [...this.ids.keys()];
    return words.length <= 4 ? words.join(", ") : `${words.slice(0, 3).join(", ")}, ..., ${words[words.length - 1]}`;
  }

  decode(ids: readonly number[]): string {
    return ids.map((id) => this.tokenString(id)).join(" ");
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
      pre_tokenizer: { type: "WhitespaceSplit" },
      post_processor: null,
      // Without a decoder Hugging Face joins the tokens with spaces, which is what we want.
      decoder: null,
      // An unk_token absent from the vocabulary makes unknown words an error there too, as here.
      model: { type: "WordLevel", vocab, unk_token: "<unk>" },
    };
  }
}

/** The `counting` task's tokenizer: the numbers 0..99 as words, then the special tokens. */
export function countingTokenizer(): WordTokenizer {
  const numbers = Array.from({ length: 100 }, (_, i) => String(i));
  return new WordTokenizer([...numbers, ...CHAR_SPECIAL_TOKENS], CHAR_SPECIAL_TOKENS);
}
