import { fail } from "../errors.js";
import { bpeModelJson } from "./bpe.js";
import { byteTokenName, utf8Text, wtf8Decode, wtf8Encode } from "./bytes.js";
import { LookupTokenizer } from "./lookup.js";
import { CHAR_SPECIAL_TOKENS, type DecodeOptions } from "./types.js";

/** `"ë" (U+00EB)`: a character as messages name it. */
export function describeChar(ch: string): string {
  const cp = (ch.codePointAt(0) as number).toString(16).toUpperCase().padStart(4, "0");
  return `${JSON.stringify(ch)} (U+${cp})`;
}

const BYTE_TOKEN = /^<0x[0-9A-F]{2}>$/;

export interface CharTokenizerOptions {
  /**
   * Byte fallback, as Hugging Face's BPE has it: a character outside the vocabulary is encoded as
   * the tokens of its UTF-8 bytes, `<0x00>` ... `<0xFF>`, which the vocabulary must hold; decoding
   * joins runs of byte tokens back into text. Without it (folders made before minigpt had it) an
   * unknown character cannot be encoded.
   */
  byteFallback?: boolean;
}

/**
 * One token per character (code point), plus special tokens: nanoGPT's Shakespeare tokenizer,
 * with Hugging Face's byte fallback so that no text is out of vocabulary.
 */
export class CharTokenizer extends LookupTokenizer {
  readonly kind = "char";
  readonly byteFallback: boolean;
  /** byte fallback: the id of each byte's token, and the byte of each such id */
  private readonly byteIds: number[] = [];
  private readonly idBytes = new Map<number, number>();

  constructor(pieces: readonly string[], specials: readonly string[], options: CharTokenizerOptions = {}) {
    super(pieces, specials);
    this.byteFallback = options.byteFallback ?? false;
    if (!this.byteFallback) return;
    for (let b = 0; b < 256; b++) {
      const id = this.ids.get(byteTokenName(b));
      if (id === undefined) fail(`a character vocabulary with byte fallback needs all 256 byte tokens, and ${byteTokenName(b)} is missing`);
      this.byteIds.push(id);
      this.idBytes.set(id, b);
    }
  }

  /**
   * Vocabulary: the text's distinct characters by code point, then (with byte fallback, the
   * default) the 256 byte tokens, then the special tokens.
   */
  static fromText(
    text: string,
    extraSpecials: readonly string[] = [],
    options: CharTokenizerOptions = { byteFallback: true },
  ): CharTokenizer {
    if (text.length === 0) fail("cannot build a character vocabulary from an empty text");
    const chars = [...new Set(text)].sort((a, b) => (a.codePointAt(0) as number) - (b.codePointAt(0) as number));
    const bytes = options.byteFallback ? Array.from({ length: 256 }, (_, b) => byteTokenName(b)) : [];
    const specials = [...CHAR_SPECIAL_TOKENS];
    for (const s of extraSpecials) {
      if (s.length === 0) fail("a special token cannot be the empty string");
      if (!specials.includes(s)) specials.push(s);
    }
    return new CharTokenizer([...chars, ...bytes, ...specials], specials, options);
  }

  withPieces(pieces: readonly string[]): CharTokenizer {
    return new CharTokenizer([...this.pieces, ...pieces], this.specialTokens, { byteFallback: this.byteFallback });
  }

  protected invalidPiece(piece: string): string | null {
    return [...piece].length === 1 || BYTE_TOKEN.test(piece) ? null : "is not a single character";
  }

  protected split(text: string): Iterable<string> {
    return text;
  }

  /**
   * A character's UTF-8 bytes as byte tokens. A lone surrogate (possible only in a JavaScript
   * string) is written as WTF-8, as in the byte-level BPE, so decode(encode(s)) === s always.
   */
  protected override fallback(ch: string, out: number[]): boolean {
    if (!this.byteFallback) return false;
    for (const b of wtf8Encode(ch)) out.push(this.byteIds[b] as number);
    return true;
  }

  protected unknownPiece(ch: string): string {
    return `character ${describeChar(ch)} is not in this model's character vocabulary: the model was trained on a different text`;
  }

  /** Characters are joined as they are; each run of byte tokens is decoded as UTF-8 (Hugging Face's ByteFallback, then Fuse). */
  decode(ids: readonly number[], options: DecodeOptions = {}): string {
    const bytesText = options.textOnly ? utf8Text : wtf8Decode;
    let s = "";
    let run: number[] = [];
    for (const id of ids) {
      const b = this.idBytes.get(id);
      if (b !== undefined) {
        run.push(b);
        continue;
      }
      if (run.length > 0) s += bytesText(Uint8Array.from(run));
      run = [];
      s += this.tokenString(id);
    }
    return run.length > 0 ? s + bytesText(Uint8Array.from(run)) : s;
  }

  override tokenBytes(id: number): Uint8Array {
    const b = this.idBytes.get(id);
    return b === undefined ? super.tokenBytes(id) : Uint8Array.of(b);
  }

  /**
   * A BPE model with no merges and no pre-tokenizer is exactly a character lookup in Hugging
   * Face's tokenizers, and the Fuse decoder joins the pieces back without spaces. Byte fallback is
   * that BPE's `byte_fallback`, decoded by ByteFallback before Fuse.
   */
  toHuggingFaceJson(): object {
    return this.huggingFaceJson({
      preTokenizer: null,
      decoder: this.byteFallback ? { type: "Sequence", decoders: [{ type: "ByteFallback" }, { type: "Fuse" }] } : { type: "Fuse" },
      model: { ...bpeModelJson(this.vocabJson(), [], false), byte_fallback: this.byteFallback },
    });
  }
}
