import { fail } from "../errors.js";
import { specialsPattern, splitSpecials, tokenizerJson } from "./bpe.js";
import { wtf8Encode } from "./bytes.js";
import type { DecodeOptions, EncodeOptions, Tokenizer, TokenizerKind } from "./types.js";

/**
 * A tokenizer that is a plain lookup table: every piece of the text (a character, a word) is one id.
 * The character and word tokenizers differ only in how they cut text into pieces, what a valid
 * piece is, and how they join pieces back; special tokens and the Hugging Face file work the same.
 */
export abstract class LookupTokenizer implements Tokenizer {
  abstract readonly kind: TokenizerKind;
  readonly vocabSize: number;
  readonly specialTokens: readonly string[];
  protected readonly pieces: string[];
  protected readonly ids = new Map<string, number>();
  protected readonly specialIds = new Map<string, number>();
  private readonly specialPattern: RegExp | undefined;

  /** `pieces[id]` is the piece (or special-token string) of each id. */
  constructor(pieces: readonly string[], specials: readonly string[]) {
    this.pieces = [...pieces];
    this.vocabSize = pieces.length;
    pieces.forEach((p, id) => {
      if (specials.includes(p)) this.specialIds.set(p, id);
      else {
        const problem = this.invalidPiece(p);
        if (problem) fail(`vocabulary entry ${JSON.stringify(p)} (id ${id}) ${problem}`);
        this.ids.set(p, id);
      }
    });
    this.specialTokens = [...this.specialIds.keys()];
    this.specialPattern = specialsPattern(this.specialTokens);
  }

  /** why `piece` cannot be an ordinary vocabulary entry, or null when it can */
  protected abstract invalidPiece(piece: string): string | null;
  /** cut text (without special tokens) into pieces */
  protected abstract split(text: string): Iterable<string>;
  /** the one-line error for a piece outside the vocabulary */
  protected abstract unknownPiece(piece: string): string;
  abstract decode(ids: readonly number[], options?: DecodeOptions): string;

  encode(text: string, options: EncodeOptions = {}): number[] {
    const out: number[] = [];
    const parts = options.specialsAsText ? [text] : splitSpecials(text, this.specialPattern, this.specialIds);
    for (const part of parts) {
      if (typeof part === "number") {
        out.push(part);
        continue;
      }
      for (const piece of this.split(part)) {
        const id = this.ids.get(piece);
        if (id !== undefined) out.push(id);
        else if (!this.fallback(piece, out)) {
          if (!options.onUnknown) fail(this.unknownPiece(piece));
          options.onUnknown(piece);
        }
      }
    }
    return out;
  }

  /** Encode a piece outside the vocabulary some other way (byte fallback), appending to `out`; false when there is none. */
  protected fallback(_piece: string, _out: number[]): boolean {
    return false;
  }

  /**
   * The distinct pieces of `text` that are not vocabulary entries, in order of first appearance,
   * whether or not a fallback could encode them: what a fine-tune on this text adds (withPieces).
   */
  unknownPieces(text: string, options: EncodeOptions = {}): string[] {
    const unknown = new Set<string>();
    const parts = options.specialsAsText ? [text] : splitSpecials(text, this.specialPattern, this.specialIds);
    for (const part of parts) {
      if (typeof part === "number") continue;
      for (const piece of this.split(part)) if (!this.ids.has(piece)) unknown.add(piece);
    }
    return [...unknown];
  }

  /** This tokenizer with `pieces` appended as new ids; the ids it had keep their meaning. */
  abstract withPieces(pieces: readonly string[]): LookupTokenizer;

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

  abstract toHuggingFaceJson(): object;

  /** The Hugging Face tokenizer.json around a model, pre-tokenizer and decoder. */
  protected huggingFaceJson(parts: { preTokenizer: object | null; decoder: object | null; model: object }): object {
    return tokenizerJson(this.specialIds, parts);
  }

  /** piece -> id for the HF model's vocab (special tokens included, as HF expects) */
  protected vocabJson(): Record<string, number> {
    const vocab: Record<string, number> = {};
    this.pieces.forEach((p, id) => {
      vocab[p] = id;
    });
    return vocab;
  }
}
