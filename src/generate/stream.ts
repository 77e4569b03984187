import type { Tokenizer } from "../tokenizer/types.js";

/** context tokens kept in front of the new ones when decoding: enough for any tokenizer's joins */
const CONTEXT_IDS = 16;

/**
 * Turns generated token ids into printable text as they come. Two things make that more than
 * decoding each token alone:
 * - a token can end inside a multi-byte character (byte-level BPE, byte fallback), and a model can
 *   sample bytes that never form one: the ids are decoded as text only (Tokenizer.decode's
 *   textOnly), so a character is shown once its last byte comes, the bytes of one the generation
 *   did not finish are left out, and no replacement character (U+FFFD) is ever shown for them;
 * - a token's text can depend on the one before it (the counting task's word tokenizer puts a space
 *   between words): the new tokens are decoded after the last ids of the context, and only what they
 *   add is printed ("3 4 5" then " 6 7", not "3 4 56 7").
 * Decoded text only ever grows as ids are added (bytes left out stay left out unless a later byte
 * completes their character), so what push returns never has to be taken back.
 * Each push decodes a window of the last ids only (at most 2·CONTEXT_IDS): once it is full it is cut
 * back to its last CONTEXT_IDS, as the constructor cuts the context, so a token costs the same at
 * the thousandth as at the first (decoding every id so far made a long generation quadratic: the
 * server pushes every row's token each step).
 */
export class TextStreamer {
  /** the window: the last ids, whose text up to `printed` is already shown */
  private ids: number[];
  /** length of the window's text already shown: the context's, then what push returned */
  private printed: number;
  /** everything push returned */
  private shown = "";

  /** context: the ids the text so far was made of (the prompt), whose text is already shown */
  constructor(
    private readonly tokenizer: Tokenizer,
    context: readonly number[] = [],
  ) {
    this.ids = context.slice(-CONTEXT_IDS);
    this.printed = this.decodeAll().length;
  }

  /** the new text after adding `id` ("" while a character is incomplete) */
  push(id: number): string {
    this.ids.push(id);
    const text = this.decodeAll();
    const fresh = text.slice(this.printed);
    this.printed = text.length;
    this.shown += fresh;
    if (this.ids.length >= 2 * CONTEXT_IDS) {
      // the window cut back as the context was: a character still incomplete at its end stays in it
      this.ids = this.ids.slice(-CONTEXT_IDS);
      this.printed = this.decodeAll().length;
    }
    return fresh;
  }

  /**
   * At the end of a generation: what push has not shown, which is nothing (the bytes of a character
   * the generation did not finish are left out). Kept so that callers end a stream in one way.
   */
  finish(): string {
    return "";
  }

  /** the text of the ids pushed so far (what push returned: the text never changes behind it) */
  get text(): string {
    return this.shown;
  }

  private decodeAll(): string {
    return this.tokenizer.decode(this.ids, { textOnly: true });
  }
}
