import { fail } from "../errors.js";
import { bpeModelJson } from "./bpe.js";
import { LookupTokenizer } from "./lookup.js";
import { CHAR_SPECIAL_TOKENS } from "./types.js";

function describeChar(ch: string): string {
  const cp = (ch.codePointAt(0) as number).toString(16).toUpperCase().padStart(4, "0");
  return `${JSON.stringify(ch)} (U+${cp})`;
}

/** One token per character (code point), plus special tokens: nanoGPT's Shakespeare tokenizer. */
export class CharTokenizer extends LookupTokenizer {
  readonly kind = "char";

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

  protected invalidPiece(piece: string): string | null {
    return [...piece].length === 1 ? null : "is not a single character";
  }

  protected split(text: string): Iterable<string> {
    return text;
  }

  protected unknownPiece(ch: string): string {
    return `character ${describeChar(ch)} is not in this model's character vocabulary: the model was trained on a different text`;
  }

  decode(ids: readonly number[]): string {
    let s = "";
    for (const id of ids) s += this.tokenString(id);
    return s;
  }

  /**
   * A BPE model with no merges and no pre-tokenizer is exactly a character lookup in Hugging
   * Face's tokenizers, and the Fuse decoder joins the pieces back without spaces.
   */
  toHuggingFaceJson(): object {
    return this.huggingFaceJson({
      preTokenizer: null,
      decoder: { type: "Fuse" },
      model: bpeModelJson(this.vocabJson(), [], false),
    });
  }
}
