import type { Tokenizer } from "../tokenizer/types.js";

/** context tokens kept in front of the new ones when decoding: enough for any tokenizer's joins */
const CONTEXT_IDS = 16;

/**
 * Turns generated token ids into printable text as they come. Two things make that more than
 * decoding each token alone:
 * - a token can end inside a multi-byte character (byte-level BPE): text is held back until the
 *   character is complete, so the stream never shows a replacement character that the final text
 *   would not have;
 * - a token's text can depend on the one before it (the counting task's word tokenizer puts a space
 *   between words): the new tokens are decoded after the last ids of the context, and only what they
 *   add is printed ("3 4 5" then " 6 7", not "3 4 56 7").
 */
export class TextStreamer {
  private readonly ids: number[];
  private readonly start: number;
  private printed: number;

  /** context: the ids the text so far was made of (the prompt), whose text is already shown */
  constructor(
    private readonly tokenizer: Tokenizer,
    context: readonly number[] = [],
  ) {
    this.ids = context.slice(-CONTEXT_IDS);
    // a context that ends inside a character shows that character once the new ids complete it
    this.start = this.decodeAll().replace(/\uFFFD+$/, "").length;
    this.printed = this.start;
  }

  /** the new complete text after adding `id` ("" while a character is incomplete) */
  push(id: number): string {
    this.ids.push(id);
    const text = this.decodeAll();
    if (text.endsWith("\uFFFD")) return "";
    const fresh = text.slice(this.printed);
    this.printed = text.length;
    return fresh;
  }

  /** the text of the ids pushed so far (complete or not) */
  get text(): string {
    return this.decodeAll().slice(this.start);
  }

  private decodeAll(): string {
    return this.tokenizer.decode(this.ids);
  }
}
