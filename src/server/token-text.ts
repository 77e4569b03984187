/**
 * How a token is written in a log-probability answer. A byte-level token can be part of a character
 * (GPT-2 cuts "’" into two tokens, the bytes e2 80 and 99): it has no text of its own. OpenAI's API
 * names such a token by its bytes, `bytes:\xe2\x80` (a recorded gpt-3.5-turbo-instruct answer has
 * `"tokens": ["，", "bytes:\\xe9\\x80", "bytes:\\x82", "合", ...]` in JSON for "，适合"), and keeps the
 * real bytes in `bytes`; a client joins the `bytes` of consecutive tokens to get the character. A
 * U+FFFD in its place says nothing of which token it was and looks like text.
 */
import { utf8Text } from "../tokenizer/bytes.js";

/** accepts only well-formed UTF-8 (no lone surrogates), so a part of a character throws */
const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

function isWholeText(bytes: Uint8Array): boolean {
  try {
    strictUtf8.decode(bytes);
    return true;
  } catch {
    return false;
  }
}

/** one byte as Python's bytes repr writes it (what OpenAI's names show): printable ASCII as itself */
function escapeByte(b: number): string {
  if (b === 0x5c) return "\\\\";
  if (b === 0x09) return "\\t";
  if (b === 0x0a) return "\\n";
  if (b === 0x0d) return "\\r";
  if (b >= 0x20 && b < 0x7f) return String.fromCharCode(b);
  return `\\x${b.toString(16).padStart(2, "0")}`;
}

/**
 * The `token` string of a token: its text (`decoded`, the tokenizer's decode of it alone) when its
 * bytes are whole UTF-8 characters, else "bytes:" and its bytes escaped, as OpenAI writes it.
 */
export function tokenName(decoded: string, bytes: Uint8Array): string {
  if (isWholeText(bytes)) return decoded;
  let name = "bytes:";
  for (const b of bytes) name += escapeByte(b);
  return name;
}

/**
 * Where each generated token starts in the prompt and text the client gets (completions'
 * `text_offset`, in UTF-16 code units as JavaScript counts a string): a token that continues a
 * character starts where that character does, as OpenAI's offsets do, and bytes that form no
 * character are left out of the count as they are out of the text (`utf8Text`).
 */
export class TextOffsets {
  /** the offset where the bytes not yet known to end a character begin */
  private settled: number;
  /** bytes since the last ASCII byte (an ASCII byte ends whatever came before it, so a cut after one is clean) */
  private pending: number[] = [];

  constructor(start: number) {
    this.settled = start;
  }

  /** where a token with these bytes starts; then moves past it */
  next(bytes: readonly number[]): number {
    const start = this.settled + utf8Text(Uint8Array.from(this.pending)).length;
    this.pending.push(...bytes);
    const last = bytes[bytes.length - 1];
    if (last !== undefined && last < 0x80) {
      this.settled += utf8Text(Uint8Array.from(this.pending)).length;
      this.pending = [];
    }
    return start;
  }
}
