import { LookupTokenizer } from "./lookup.js";
import { CHAR_SPECIAL_TOKENS } from "./types.js";

// Hugging Face's WhitespaceSplit cuts on Unicode White_Space, which JavaScript's \s does not match exactly.
const WHITESPACE = /\p{White_Space}+/u;

/** One token per whitespace-separated word of a fixed vocabulary (the `counting` task's numbers). */
export class WordTokenizer extends LookupTokenizer {
  readonly kind = "word";

  withPieces(pieces: readonly string[]): WordTokenizer {
    return new WordTokenizer([...this.pieces, ...pieces], this.specialTokens);
  }

  protected invalidPiece(piece: string): string | null {
    return piece === "" || WHITESPACE.test(piece) ? "is empty or contains whitespace" : null;
  }

  protected split(text: string): Iterable<string> {
    return text.split(WHITESPACE).filter((w) => w !== "");
  }

  protected unknownPiece(word: string): string {
    return `${JSON.stringify(word)} is not in this model's word vocabulary (${this.describeVocab()}); separate words with spaces`;
  }

  private describeVocab(): string {
    const words = [...this.ids.keys()];
    return words.length <= 4 ? words.join(", ") : `${words.slice(0, 3).join(", ")}, ..., ${words[words.length - 1]}`;
  }

  decode(ids: readonly number[]): string {
    return ids.map((id) => this.tokenString(id)).join(" ");
  }

  toHuggingFaceJson(): object {
    return this.huggingFaceJson({
      preTokenizer: { type: "WhitespaceSplit" },
      // Without a decoder Hugging Face joins the tokens with spaces, which is what we want.
      decoder: null,
      // An unk_token absent from the vocabulary makes unknown words an error there too, as here.
      model: { type: "WordLevel", vocab: this.vocabJson(), unk_token: "<unk>" },
    });
  }
}

/** The `counting` task's tokenizer: the numbers 0..99 as words, then the special tokens. */
export function countingTokenizer(): WordTokenizer {
  const numbers = Array.from({ length: 100 }, (_, i) => String(i));
  return new WordTokenizer([...numbers, ...CHAR_SPECIAL_TOKENS], CHAR_SPECIAL_TOKENS);
}
