/**
 * GPT-2's byte-to-unicode table. Byte-level BPE works on UTF-8 bytes, but vocab files and merge
 * lists are text, and a raw byte such as 0x20 (space) or 0x0A (newline) would be invisible or
 * would clash with the space that separates the two halves of a "a b" merge line. GPT-2 therefore
 * gives every byte a printable stand-in: bytes that already are printable Latin-1 characters
 * ('!'..'~', '¡'..'¬', '®'..'ÿ') stand for themselves, and the 68 others are mapped, in byte order,
 * to U+0100, U+0101, ... That is why a leading space shows up as 'Ġ' (U+0120) and a newline as
 * 'Ċ' (U+010A) in GPT-2 style vocabularies.
 */
export const BYTE_TO_UNICODE: readonly string[] = (() => {
  const table: string[] = new Array<string>(256);
  let next = 256;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
    table[b] = String.fromCharCode(printable ? b : next++);
  }
  return table;
})();

export const UNICODE_TO_BYTE: ReadonlyMap<string, number> = new Map(BYTE_TO_UNICODE.map((ch, b) => [ch, b]));

/** The GPT-2 printable form of a byte string, as written in tokenizer.json vocabularies. */
export function bytesToUnicode(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += BYTE_TO_UNICODE[b];
  return s;
}

/** Inverse of bytesToUnicode; undefined when a character is not one of the 256 stand-ins. */
export function unicodeToBytes(s: string): Uint8Array | undefined {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) {
    const b = UNICODE_TO_BYTE.get(s[i] as string);
    if (b === undefined) return undefined;
    out[i] = b;
  }
  return out;
}

/**
 * The name of a byte token in Hugging Face vocabularies with byte fallback (SentencePiece, Llama,
 * minigpt's character tokenizer): byte 0xE2 is "<0xE2>", two hex digits in capitals.
 */
export function byteTokenName(byte: number): string {
  return `<0x${byte.toString(16).toUpperCase().padStart(2, "0")}>`;
}

const utf8Encoder = new TextEncoder();
// ignoreBOM: a byte order mark is text like any other (TextDecoder would drop one at the start)
const utf8Decoder = new TextDecoder("utf-8", { ignoreBOM: true });
// In unicode mode a surrogate pair is one code point, so only unpaired halves match.
const LONE_SURROGATE = /\p{Cs}/u;

/**
 * UTF-8 of a JavaScript string, except that a lone surrogate is written as its own 3-byte
 * sequence (WTF-8) instead of being replaced by U+FFFD. JavaScript strings may hold lone
 * surrogates (a string cut in the middle of an emoji, say), and this is what lets
 * decode(encode(s)) === s hold for every string, not just well-formed ones.
 */
export function wtf8Encode(s: string): Uint8Array {
  if (!LONE_SURROGATE.test(s)) return utf8Encoder.encode(s);
  const out: number[] = [];
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdfff) {
      const d = s.charCodeAt(i + 1);
      if (c <= 0xdbff && d >= 0xdc00 && d <= 0xdfff) {
        const cp = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
        out.push(0xf0 | (cp >> 18), 0x80 | ((cp >> 12) & 63), 0x80 | ((cp >> 6) & 63), 0x80 | (cp & 63));
        i++;
      } else {
        out.push(0xe0 | (c >> 12), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
      }
    } else {
      for (const b of utf8Encoder.encode(String.fromCharCode(c))) out.push(b);
    }
  }
  return Uint8Array.from(out);
}

/**
 * Inverse of wtf8Encode. Byte sequences that are neither UTF-8 nor an encoded surrogate (a model
 * can sample any token order) become U+FFFD, as TextDecoder does.
 */
export function wtf8Decode(bytes: Uint8Array): string {
  let start = 0;
  let out = "";
  for (let i = 0; i + 2 < bytes.length; i++) {
    if (bytes[i] !== 0xed) continue;
    const b1 = bytes[i + 1] as number;
    const b2 = bytes[i + 2] as number;
    if (b1 < 0xa0 || b1 > 0xbf || b2 < 0x80 || b2 > 0xbf) continue;
    out += utf8Decoder.decode(bytes.subarray(start, i));
    out += String.fromCharCode(0xd000 | ((b1 & 63) << 6) | (b2 & 63));
    start = i + 3;
    i += 2;
  }
  return start === 0 ? utf8Decoder.decode(bytes) : out + utf8Decoder.decode(bytes.subarray(start));
}

/**
 * How a UTF-8 character starting at bytes[i] runs: its length (1 to 4) when it is whole, or minus
 * the length of the bytes that start one but do not finish it (cut short, or followed by a byte
 * that cannot come next), which is what a decoder skips as one: the "maximal subpart" of the
 * Unicode standard that TextDecoder turns into one U+FFFD. RFC 3629's table: the second byte's
 * range depends on the first (no overlong forms, no surrogates, nothing past U+10FFFF).
 */
function utf8Step(bytes: Uint8Array, i: number): number {
  const b = bytes[i] as number;
  if (b < 0x80) return 1;
  let following: number;
  let lo = 0x80;
  let hi = 0xbf;
  if (b >= 0xc2 && b <= 0xdf) following = 1;
  else if (b >= 0xe0 && b <= 0xef) {
    following = 2;
    if (b === 0xe0) lo = 0xa0;
    if (b === 0xed) hi = 0x9f;
  } else if (b >= 0xf0 && b <= 0xf4) {
    following = 3;
    if (b === 0xf0) lo = 0x90;
    if (b === 0xf4) hi = 0x8f;
  } else return -1;
  for (let k = 1; k <= following; k++) {
    const c = bytes[i + k];
    if (c === undefined || c < lo || c > hi) return -k;
    lo = 0x80;
    hi = 0xbf;
  }
  return following + 1;
}

/**
 * The characters of `bytes`, leaving out the bytes that do not form one (where wtf8Decode writes
 * U+FFFD or a lone surrogate): the text is well-formed, ready to print or send. Generated text is
 * decoded this way: a model can sample any byte after any other, and a generation can stop inside
 * a character.
 */
export function utf8Text(bytes: Uint8Array): string {
  let out = "";
  let start = 0;
  let i = 0;
  while (i < bytes.length) {
    const step = utf8Step(bytes, i);
    if (step > 0) {
      i += step;
      continue;
    }
    out += utf8Decoder.decode(bytes.subarray(start, i));
    i -= step;
    start = i;
  }
  return start === 0 ? utf8Decoder.decode(bytes) : out + utf8Decoder.decode(bytes.subarray(start));
}
