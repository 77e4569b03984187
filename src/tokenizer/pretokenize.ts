/**
 * GPT-2's pre-tokenizer: text is cut into words (a letter run, a digit run, a punctuation run,
 * each optionally led by one space; English contractions; whitespace) and BPE never merges across
 * these cuts. It is the pattern of OpenAI's encoder.py / tiktoken's "gpt2" encoding.
 *
 * `\s` is spelled `\p{White_Space}`: tiktoken's Rust regex uses the Unicode White_Space property,
 * while JavaScript's `\s` also counts U+FEFF and misses U+0085, which would give different ids.
 */
export const GPT2_SPLIT_PATTERN =
  "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\p{White_Space}\\p{L}\\p{N}]+|\\p{White_Space}+(?!\\P{White_Space})|\\p{White_Space}+";

const SPLIT = new RegExp(GPT2_SPLIT_PATTERN, "gu");

/** The pattern applied with a regular expression: the definition `pretokenize` is tested against. */
export function pretokenizeRegex(text: string): string[] {
  return text.match(SPLIT) ?? [];
}

const UNKNOWN = 0;
const LETTER = 1;
const NUMBER = 2;
const SPACE = 3;
const OTHER = 4;

/** Class of each BMP code unit, filled on first sight (property regexes are too slow per character). */
const bmpClass = new Uint8Array(65536);
const IS_LETTER = /\p{L}/u;
const IS_NUMBER = /\p{N}/u;
const IS_SPACE = /\p{White_Space}/u;

function classify(ch: string): number {
  return IS_LETTER.test(ch) ? LETTER : IS_NUMBER.test(ch) ? NUMBER : IS_SPACE.test(ch) ? SPACE : OTHER;
}

for (let c = 0; c < 0xd800; c++) bmpClass[c] = c < 128 ? classify(String.fromCharCode(c)) : UNKNOWN;
// Surrogates: an unpaired one is "other" in unicode-mode regexes; paired ones are classified as astral code points.
bmpClass.fill(OTHER, 0xd800, 0xe000);

/** Class of the BMP code unit at i. */
function classAt(text: string, i: number): number {
  const c = text.charCodeAt(i);
  let k = bmpClass[c] as number;
  if (k === UNKNOWN) {
    k = classify(String.fromCharCode(c));
    bmpClass[c] = k;
  }
  return k;
}

function astral(text: string, i: number): number {
  const c = text.charCodeAt(i);
  if (c < 0xd800 || c > 0xdbff) return 0;
  const d = text.charCodeAt(i + 1);
  return d >= 0xdc00 && d <= 0xdfff ? 2 : 0;
}

/** Class of the code point at i, plus 8 when it is a surrogate pair (two code units wide). */
function codePointClass(text: string, i: number): number {
  if (astral(text, i) === 2) return classify(text.slice(i, i + 2)) | 8;
  return classAt(text, i);
}

/** End of the run of class `k` starting at i. */
function runEnd(text: string, i: number, k: number): number {
  const n = text.length;
  while (i < n) {
    const c = codePointClass(text, i);
    if ((c & 7) !== k) break;
    i += c & 8 ? 2 : 1;
  }
  return i;
}

/**
 * Text that arrives in chunks: only the last two words of a chunk's split can still change when more
 * text follows. The scanner decides where a word ends by looking at most two characters past its
 * start ('r of 're) or one past its end (the character that ends a run, or that a whitespace run
 * leaves to lead the next word), and such a character is inside the next word or the one after, so
 * every word but the last UNSETTLED_WORDS is already what the whole text gives.
 */
export const UNSETTLED_WORDS = 2;

/**
 * The end of the GPT-2 word that starts at `i` in `text` (i < text.length). A hand-written scanner
 * equivalent to GPT2_SPLIT_PATTERN (tests compare the two). Splitting is most of the encoding time
 * once the per-word cache is warm, and this is 1.4-2x faster than V8 running the regex; callers that
 * walk the words by their ends (the BPE encoder, the word counts of a vocabulary pass) make no
 * string of a word they have seen before.
 */
export function wordEnd(text: string, i: number): number {
  const n = text.length;
  const c = text.charCodeAt(i);
  if (c === 39 /* ' */ && i + 1 < n) {
    const a = text.charCodeAt(i + 1);
    const b = i + 2 < n ? text.charCodeAt(i + 2) : 0;
    if (a === 115 || a === 116 || a === 109 || a === 100) return i + 2; // 's 't 'm 'd
    if ((a === 114 && b === 101) || (a === 118 && b === 101) || (a === 108 && b === 108)) return i + 3; // 're 've 'll
    return runEnd(text, i, OTHER);
  }
  const k = codePointClass(text, i) & 7;
  if (k !== SPACE) return runEnd(text, i, k);
  const next = c === 32 && i + 1 < n ? codePointClass(text, i + 1) & 7 : SPACE;
  if (next !== SPACE) return runEnd(text, i + 1, next);
  // Whitespace: the run, but leave its last character to lead the following word.
  const end = runEnd(text, i, SPACE);
  return end < n && end - i > 1 ? end - 1 : end;
}

/** The GPT-2 words of `text`; their concatenation is `text`. */
export function pretokenize(text: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < text.length; ) {
    const end = wordEnd(text, i);
    out.push(text.slice(i, end));
    i = end;
  }
  return out;
}
