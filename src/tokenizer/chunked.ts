/**
 * Tokenizing a text that arrives in chunks (a corpus too big for one string), with exactly the
 * vocabulary and the ids that the whole string gives. Three things can straddle a chunk boundary: a
 * UTF-8 sequence (the reader's streaming decoder holds those back), a special-token string (the
 * SpecialSplitter holds back the tail that could still begin one), and a piece of the tokenizer's
 * own split (each tokenizer consumes only the start of a chunk that more text cannot change; the
 * rest waits for the next chunk).
 */
import { ByteLevelBpe, specialsPattern } from "./bpe.js";
import { checkBpeOptions, countTextWords, trainBpeFromCounts, wordCountMap } from "./bpeTrain.js";
import { CharTokenizer } from "./char.js";
import type { EncodeOptions, Tokenizer } from "./types.js";
import { WordTable } from "./words.js";

/** The typed arrays ids are written into: Int32Array in memory, the token cache's Uint16Array or Uint32Array on disk. */
export type IdArray = Int32Array | Uint16Array | Uint32Array;
type IdArrayType = { new (length: number): IdArray };

/**
 * A growing list of ids in a typed array (pushing millions of ids onto a JS array is many times
 * slower); of the width they are stored in, so that the token cache writes them as they are.
 */
export class IdBuffer {
  ids: IdArray;
  length = 0;

  constructor(private readonly type: IdArrayType = Int32Array) {
    this.ids = new type(1 << 16);
  }

  push(id: number): void {
    if (this.length === this.ids.length) this.reserve(1);
    this.ids[this.length++] = id;
  }

  /** room for n more ids */
  reserve(n: number): void {
    if (this.length + n <= this.ids.length) return;
    const grown = new this.type(Math.max(this.ids.length * 2, this.length + n));
    grown.set(this.ids.subarray(0, this.length));
    this.ids = grown;
  }

  /** the ids so far (a view of a buffer of their own, which may be transferred), and an empty buffer for the next ones */
  take(): IdArray {
    const out = this.ids.subarray(0, this.length);
    this.ids = new this.type(Math.max(1 << 16, this.length));
    this.length = 0;
    return out;
  }
}

/**
 * Takes ordinary text (no special tokens) that may continue in the next chunk; handles a settled
 * start of it (all of it when `final`) and returns that start's length in UTF-16 code units.
 */
type OrdinaryText = (text: string, final: boolean) => number;

/**
 * Cuts a chunked text at its special-token strings, as splitSpecials cuts a whole string: the
 * leftmost match first, the longest special at a position. A match is only taken once every special
 * that could start there fits in what has arrived, so the last (longest special - 1) characters of a
 * chunk wait for the next one.
 */
export class SpecialSplitter {
  private pending = "";
  private readonly pattern: RegExp | undefined;
  private readonly holdBack: number;

  /** specials: the strings to cut out; none when they are read as text */
  constructor(specials: readonly string[]) {
    this.pattern = specialsPattern(specials);
    this.holdBack = Math.max(0, ...specials.map((s) => s.length - 1));
  }

  /** Hands the settled text to `ordinary` and the specials to `special`, in order; `final` ends the text. */
  push(text: string, final: boolean, ordinary: OrdinaryText, special: (token: string) => void): void {
    const buf = this.pending + text;
    const limit = final ? buf.length : buf.length - this.holdBack;
    let pos = 0;
    if (this.pattern !== undefined) {
      this.pattern.lastIndex = 0;
      for (let m = this.pattern.exec(buf); m !== null && m.index < limit; m = this.pattern.exec(buf)) {
        if (m.index > pos) ordinary(buf.slice(pos, m.index), true);
        special(m[0]);
        pos = m.index + m[0].length;
      }
    }
    if (limit > pos) pos += ordinary(buf.slice(pos, limit), final);
    this.pending = buf.slice(pos);
  }
}

/** Encodes a chunked text: push each chunk, the last one with final = true. */
export class ChunkedEncoder {
  private readonly splitter: SpecialSplitter;
  private readonly encodeStart: (text: string, final: boolean, out: IdBuffer) => number;
  private readonly out: IdBuffer;
  /** the ids of the special tokens cut out of the text so far (no other path makes a special's id) */
  readonly specialIds = new Set<number>();

  /** `idType`: the typed array the ids come in (default Int32Array) */
  constructor(
    private readonly tokenizer: Tokenizer,
    options: EncodeOptions = {},
    idType?: IdArrayType,
  ) {
    this.out = new IdBuffer(idType);
    this.splitter = new SpecialSplitter(options.specialsAsText ? [] : tokenizer.specialTokens);
    this.encodeStart =
      tokenizer instanceof ByteLevelBpe
        ? (text, final, out) => tokenizer.encodeStart(text, final, out)
        : tokenizer.kind === "char"
          ? charEncoder(tokenizer, options.onUnknown)
          : wordEncoder(tokenizer, options.onUnknown);
  }

  /** The ids of `text` that are settled; the rest come out of a later push. */
  push(text: string, final = false): IdArray {
    const out = this.out;
    this.splitter.push(
      text,
      final,
      (t, f) => this.encodeStart(t, f, out),
      (s) => {
        const id = this.tokenizer.specialTokenId(s) as number;
        this.specialIds.add(id);
        out.push(id);
      },
    );
    return out.take();
  }
}

/**
 * A character tokenizer's ids by table lookup (a Map per character is 5x slower). The table holds
 * the characters of its vocabulary; anything else goes through the tokenizer's own encode, which
 * decides what an unknown character becomes.
 */
function charEncoder(tokenizer: Tokenizer, onUnknown: EncodeOptions["onUnknown"]): (text: string, final: boolean, out: IdBuffer) => number {
  const { table, astral } = charTable(tokenizer);
  return (text, final, out) => {
    let end = text.length;
    // a chunk cut between the two halves of a surrogate pair: keep the first half for the next one
    const last = text.charCodeAt(end - 1);
    if (!final && last >= 0xd800 && last <= 0xdbff) end--;
    let i = 0;
    while (i < end) {
      // the fast lane: a run of characters in the table, written straight into the buffer
      out.reserve(end - i);
      const ids = out.ids;
      let n = out.length;
      for (; i < end; i++) {
        const id = table[text.charCodeAt(i)] as number;
        if (id < 0) break;
        ids[n++] = id;
      }
      out.length = n;
      if (i === end) break;
      // the slow lane: an astral character (a surrogate pair), or one the table lacks
      const c = text.charCodeAt(i);
      const ch = c >= 0xd800 && c <= 0xdbff && i + 1 < end ? text.slice(i, i + 2) : text.charAt(i);
      const known = astral.get(ch);
      if (known !== undefined) out.push(known);
      else for (const id of tokenizer.encode(ch, { specialsAsText: true, onUnknown })) out.push(id);
      i += ch.length;
    }
    return end;
  };
}

/** A character vocabulary's ids: of BMP characters by code unit (-1: none), of astral ones by their two-unit string. */
function charTable(tokenizer: Tokenizer): { table: Int32Array; astral: Map<string, number> } {
  const table = new Int32Array(0x10000).fill(-1);
  const astral = new Map<string, number>();
  for (let id = 0; id < tokenizer.vocabSize; id++) {
    const piece = tokenizer.tokenString(id);
    if (tokenizer.specialTokenId(piece) === id) continue;
    const c = piece.charCodeAt(0);
    if (piece.length === 1 && (c < 0xd800 || c > 0xdfff)) table[c] = id;
    else if (piece.length === 2 && piece.codePointAt(0) !== c) astral.set(piece, id);
  }
  return { table, astral };
}

/**
 * A character tokenizer's ids straight from whole, valid UTF-8, with no string made (making the
 * string is most of the cost of tokenizing a big text): what ChunkedEncoder gives for the decoded
 * text pushed as final, where the text holds no special-token string to cut out (the caller checks).
 * Appends the ids to `out` and returns the text's length in UTF-16 code units (JavaScript's length).
 */
export function charUtf8Encoder(
  tokenizer: Tokenizer,
  onUnknown?: EncodeOptions["onUnknown"],
): (bytes: Uint8Array, out: IdBuffer) => number {
  const { table, astral } = charTable(tokenizer);
  return (b, out) => {
    const n = b.length;
    // at most one id per byte (an unknown character's byte fallback is one id per byte)
    out.reserve(n);
    let ids = out.ids;
    let k = out.length;
    let units = 0;
    for (let i = 0; i < n; ) {
      const c = b[i] as number;
      let cp = c;
      if (c < 0x80) i++;
      else if (c < 0xe0) {
        cp = ((c & 0x1f) << 6) | ((b[i + 1] as number) & 0x3f);
        i += 2;
      } else if (c < 0xf0) {
        cp = ((c & 0x0f) << 12) | (((b[i + 1] as number) & 0x3f) << 6) | ((b[i + 2] as number) & 0x3f);
        i += 3;
      } else {
        cp =
          ((c & 0x07) << 18) | (((b[i + 1] as number) & 0x3f) << 12) | (((b[i + 2] as number) & 0x3f) << 6) | ((b[i + 3] as number) & 0x3f);
        i += 4;
      }
      if (cp < 0x10000) {
        units++;
        const id = table[cp] as number;
        if (id >= 0) {
          ids[k++] = id;
          continue;
        }
      } else units += 2;
      // the slow lane, as charEncoder's: an astral character, or one the table lacks
      out.length = k;
      const ch = String.fromCodePoint(cp);
      const known = astral.get(ch);
      if (known !== undefined) out.push(known);
      else for (const id of tokenizer.encode(ch, { specialsAsText: true, onUnknown })) out.push(id);
      ids = out.ids;
      k = out.length;
    }
    out.length = k;
    return units;
  };
}

const LAST_WHITESPACE = /\p{White_Space}(?!.*\p{White_Space})/su;

/** Any other tokenizer (the word tokenizer): its pieces never span whitespace, so cut after the last. */
function wordEncoder(tokenizer: Tokenizer, onUnknown: EncodeOptions["onUnknown"]): (text: string, final: boolean, out: IdBuffer) => number {
  return (text, final, out) => {
    const m = final ? null : LAST_WHITESPACE.exec(text);
    const end = final ? text.length : m === null ? 0 : m.index + m[0].length;
    for (const id of tokenizer.encode(text.slice(0, end), { specialsAsText: true, onUnknown })) out.push(id);
    return end;
  };
}

/** The vocabulary pass of a chunked text: add every chunk in order, then build the tokenizer. */
export interface ChunkedVocabulary {
  add(text: string, final: boolean): void;
  finish(): Tokenizer;
}

interface CharVocabulary extends ChunkedVocabulary {
  addUtf8(bytes: Uint8Array): void;
  /** the distinct characters so far, one each */
  characters(): string;
}

/**
 * What CharTokenizer.fromText(whole text) builds, from the text's distinct characters. The text
 * comes as strings (add) or as whole UTF-8 characters (addUtf8: no string is made, which is most of
 * the cost of a vocabulary pass over a big corpus).
 */
export function charVocabulary(extraSpecials: readonly string[] = []): CharVocabulary {
  const seen = new Uint8Array(0x10000);
  const astral = new Set<string>();
  let pendingHigh = "";
  const characters = (): string => {
    let chars = "";
    for (let c = 0; c < 0x10000; c++) if (seen[c]) chars += String.fromCharCode(c);
    for (const ch of astral) chars += ch;
    return chars;
  };
  return {
    addUtf8(b) {
      const n = b.length;
      let i = 0;
      while (i < n) {
        const c = b[i] as number;
        if (c < 0x80) {
          seen[c] = 1;
          i++;
        } else if (c < 0xe0) {
          seen[((c & 0x1f) << 6) | ((b[i + 1] as number) & 0x3f)] = 1;
          i += 2;
        } else if (c < 0xf0) {
          seen[((c & 0x0f) << 12) | (((b[i + 1] as number) & 0x3f) << 6) | ((b[i + 2] as number) & 0x3f)] = 1;
          i += 3;
        } else {
          const cp =
            ((c & 0x07) << 18) |
            (((b[i + 1] as number) & 0x3f) << 12) |
            (((b[i + 2] as number) & 0x3f) << 6) |
            ((b[i + 3] as number) & 0x3f);
          astral.add(String.fromCodePoint(cp));
          i += 4;
        }
      }
    },
    add(chunk, final) {
      const text = pendingHigh + chunk;
      pendingHigh = "";
      const n = text.length;
      for (let i = 0; i < n; i++) {
        const c = text.charCodeAt(i);
        if (c >= 0xd800 && c <= 0xdbff) {
          if (i + 1 === n && !final) {
            pendingHigh = text[i] as string;
            break;
          }
          const d = text.charCodeAt(i + 1);
          if (d >= 0xdc00 && d <= 0xdfff) {
            astral.add(text.slice(i, i + 2));
            i++;
            continue;
          }
        }
        seen[c] = 1;
      }
    },
    characters,
    finish: () => CharTokenizer.fromText(characters(), extraSpecials),
  };
}

/**
 * What trainBpe(whole text) learns, from the word counts of the chunks. `counts` may already hold the
 * counts of the text before the first chunk (counted elsewhere, in order of first sight).
 */
export function bpeVocabulary(
  options: { vocabSize: number; extraSpecials?: readonly string[] },
  counts = new Map<string, number>(),
): ChunkedVocabulary {
  const specials = checkBpeOptions(options);
  const splitter = new SpecialSplitter(specials);
  // the chunks' counts, added after those `counts` holds (their words are seen later)
  const table = new WordTable();
  const chunkCounts: number[] = [];
  const ordinary: OrdinaryText = (text, final) => countTextWords(text, table, chunkCounts, final);
  return {
    add: (text, final) => splitter.push(text, final, ordinary, () => {}),
    finish: () => trainBpeFromCounts(wordCountMap(table, chunkCounts, counts), options),
  };
}
