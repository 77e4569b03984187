export interface EncodeOptions {
  /** Default false: special-token strings in the text become their special ids. */
  specialsAsText?: boolean;
  /**
   * A piece the vocabulary cannot encode (a character or word tokenizer without byte fallback:
   * a model made before it, the counting task's words) is left out and passed here; without this
   * option it is an error. Byte-level tokenizers and byte fallback encode everything.
   */
  onUnknown?: (piece: string) => void;
}

export interface DecodeOptions {
  /**
   * Default false: bytes that do not form a character become U+FFFD (as TextDecoder makes them)
   * and a surrogate's WTF-8 a lone surrogate, so that decode(encode(s)) === s. True: they are left
   * out, so the text is well-formed; for generated text, where a model can sample any byte after any
   * other and a generation can stop inside a character (see utf8Text).
   */
  textOnly?: boolean;
}

export type TokenizerKind = "char" | "bpe" | "gpt2" | "word";

export interface Tokenizer {
  readonly kind: TokenizerKind;
  /** Including special tokens. */
  readonly vocabSize: number;
  encode(text: string, options?: EncodeOptions): number[];
  decode(ids: readonly number[], options?: DecodeOptions): string;
  /** Bytes of one token's piece (minigpt tokenize shows their count); specials give their string's UTF-8. */
  tokenBytes(id: number): Uint8Array;
  /** Readable piece for display. */
  tokenString(id: number): string;
  specialTokenId(token: string): number | undefined;
  readonly specialTokens: readonly string[];
  /** Hugging Face tokenizer.json (an object, to be JSON.stringified). */
  toHuggingFaceJson(): object;
}

/** Special tokens of the character and word tokenizers (the chat format's markers plus end of text). */
export const CHAR_SPECIAL_TOKENS: readonly string[] = ["<|endoftext|>", "<|user|>", "<|assistant|>", "<|end|>"];

/** Special tokens every trained byte-level BPE vocabulary reserves. */
export const BPE_SPECIAL_TOKENS: readonly string[] = ["<|endoftext|>", "<|pad|>", "<|user|>", "<|assistant|>", "<|end|>"];
