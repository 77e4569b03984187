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
  private readonly contextText: string;
  /** length of the text already shown (the context's part of it settles with the first complete text) */
  private printed = -1;

  /** context: the ids the text so far was made of (the prompt), whose text is already shown */
  constructor(
    private readonly tokenizer: Tokenizer,
    context: readonly number[] = [],
  ) {
    this.ids = context.slice(-CONTEXT_IDS);
    this.contextText = this.decodeAll();
  }

  /** the new complete text after adding `id` ("" while a character is incomplete) */
  push(id: number): string {
    this.ids.push(id);
    const text = this.decodeAll();
    if (text.endsWith("\uFFFD")) return "";
    if (this.printed < 0) this.printed = this.shownOf(text);
    const fresh = text.slice(this.printed);
    this.printed = text.length;
    return fresh;
  }

  /** the rest at the end of a generation: what push has not shown, an incomplete character included */
  finish(): string {
    const text = this.decodeAll();
    const from = this.printed < 0 ? this.shownOf(text) : this.printed;
    this.printed = text.length;
    return text.slice(from);
  }

  /** the text of the ids pushed so far (complete or not) */
  get text(): string {
    const text = this.decodeAll();
    return text.slice(this.shownOf(text));
  }

  /**
   * How much of `text` the context showed: their common prefix. A context that ends inside a
   * character decodes to a replacement character there, which the new ids turn into the real one
   * (not shown yet); a replacement character that is really in the text stays in the prefix.
   */
  private shownOf(text: string): number {
    const c = this.contextText;
    let n = 0;
    while (n < c.length && n < text.length && c.charCodeAt(n) === text.charCodeAt(n)) n++;
    return n;
  }

  private decodeAll(): string {
    return this.tokenizer.decode(this.ids);
  }
}
