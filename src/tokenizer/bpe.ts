import { fail } from "../errors.js";
import { bytesToUnicode, byteTokenName, utf8Text, wtf8Decode, wtf8Encode } from "./bytes.js";
import { MinHeap } from "./heap.js";
import { UNSETTLED_WORDS, wordEnd } from "./pretokenize.js";
import type { DecodeOptions, EncodeOptions, Tokenizer } from "./types.js";
import { WordTable } from "./words.js";

/** One merge rule: the adjacent pair (left, right) becomes `merged`. */
export type BpeMerge = readonly [left: number, right: number, merged: number];

export interface BpeSpec {
  kind: "bpe" | "gpt2";
  /** Bytes of every ordinary token, indexed by id; undefined at the ids of special tokens. */
  pieces: readonly (Uint8Array | undefined)[];
  /** In priority order. */
  merges: readonly BpeMerge[];
  /**
   * Priority of each merge (lower merges first); defaults to its index. tiktoken ranks a pair by
   * the id of the token it makes, so several splits of one token share a rank; ties then go to
   * the leftmost pair, as in tiktoken.
   */
  mergeRanks?: readonly number[];
  specials: ReadonlyMap<string, number>;
  /**
   * Hugging Face's `ignore_merges`: a word that is itself a token becomes that token without
   * running the merges. tiktoken always does this, so the GPT-2 encoding needs it to match OpenAI.
   */
  ignoreMerges?: boolean;
}

/**
 * Open-addressing hash table from a token pair to (rank, merged id). A Map keyed by
 * `left * 2^k + right` would leave the small-integer range for a 50k vocabulary and fall back to
 * hashing heap numbers, which costs a large share of encode time.
 */
class PairTable {
  private readonly mask: number;
  private readonly lefts: Int32Array;
  private readonly rights: Int32Array;
  readonly ranks: Int32Array;
  readonly merged: Int32Array;

  constructor(merges: readonly BpeMerge[], ranks: readonly number[] | undefined) {
    let capacity = 16;
    while (capacity < merges.length * 2) capacity *= 2;
    this.mask = capacity - 1;
    this.lefts = new Int32Array(capacity).fill(-1);
    this.rights = new Int32Array(capacity);
    this.ranks = new Int32Array(capacity);
    this.merged = new Int32Array(capacity);
    merges.forEach(([left, right, merged], i) => {
      let slot = this.hash(left, right);
      while (this.lefts[slot] !== -1) {
        // A repeated pair keeps its first (highest-priority) rule, as in Hugging Face's BPE.
        if (this.lefts[slot] === left && this.rights[slot] === right) return;
        slot = (slot + 1) & this.mask;
      }
      this.lefts[slot] = left;
      this.rights[slot] = right;
      this.ranks[slot] = ranks?.[i] ?? i;
      this.merged[slot] = merged;
    });
  }

  private hash(left: number, right: number): number {
    return (Math.imul(left, 0x9e3779b1) ^ Math.imul(right + 0x7f4a7c15, 0x85ebca77)) & this.mask;
  }

  /** Slot of the pair, or -1 when the pair never merges. */
  find(left: number, right: number): number {
    let slot = this.hash(left, right);
    for (;;) {
      const l = this.lefts[slot] as number;
      if (l === -1) return -1;
      if (l === left && this.rights[slot] === right) return slot;
      slot = (slot + 1) & this.mask;
    }
  }
}

const NO_MERGE = 0x7fffffff;
/** Words longer than this use the heap; shorter ones a rescan, which is faster when n is small. */
const HEAP_THRESHOLD = 48;
const MAX_CACHE = 200_000;
const MAX_CACHED_WORD = 256;

/**
 * Applies the merges to one word given as token ids (modified in place); returns the new length.
 * Always merges the pair with the lowest rank, the leftmost one on ties.
 */
function mergeWord(ids: Int32Array, n: number, table: PairTable, forceHeap = false): number {
  if (n < 2) return n;
  if (n > HEAP_THRESHOLD || forceHeap) return mergeWordHeap(ids, n, table);
  const slots = new Int32Array(n - 1);
  const rankOf = (i: number): number => {
    const s = table.find(ids[i] as number, ids[i + 1] as number);
    slots[i] = s;
    return s < 0 ? NO_MERGE : (table.ranks[s] as number);
  };
  const ranks = new Int32Array(n - 1);
  for (let i = 0; i < n - 1; i++) ranks[i] = rankOf(i);
  for (;;) {
    let best = NO_MERGE;
    let at = -1;
    for (let i = 0; i < n - 1; i++) {
      const r = ranks[i] as number;
      if (r < best) {
        best = r;
        at = i;
      }
    }
    if (at < 0) return n;
    ids[at] = table.merged[slots[at] as number] as number;
    ids.copyWithin(at + 1, at + 2, n);
    ranks.copyWithin(at + 1, at + 2, n - 1);
    slots.copyWithin(at + 1, at + 2, n - 1);
    n--;
    if (at < n - 1) ranks[at] = rankOf(at);
    if (at > 0) ranks[at - 1] = rankOf(at - 1);
  }
}

/** Same result as the rescan, in O(n log n): a linked list of parts and a heap of candidate pairs. */
function mergeWordHeap(ids: Int32Array, n: number, table: PairTable): number {
  const next = new Int32Array(n);
  const prev = new Int32Array(n);
  const version = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    next[i] = i + 1 < n ? i + 1 : -1;
    prev[i] = i - 1;
  }
  // Heap entries (rank, position, version of that position when pushed); stale ones are skipped.
  const heap = new MinHeap();
  const push = (pos: number): void => {
    const nx = next[pos] as number;
    if (nx < 0) return;
    const s = table.find(ids[pos] as number, ids[nx] as number);
    if (s < 0) return;
    heap.push(table.ranks[s] as number, pos, version[pos] as number);
  };
  for (let i = 0; i < n - 1; i++) push(i);
  while (heap.size > 0) {
    const pos = heap.tie;
    const stale = heap.value !== version[pos];
    heap.pop();
    if (stale) continue;
    const nx = next[pos] as number;
    const s = table.find(ids[pos] as number, ids[nx] as number);
    ids[pos] = table.merged[s] as number;
    const nn = next[nx] as number;
    next[pos] = nn;
    if (nn >= 0) prev[nn] = pos;
    version[nx] = -1;
    version[pos] = (version[pos] as number) + 1;
    push(pos);
    const pv = prev[pos] as number;
    if (pv >= 0) {
      version[pv] = (version[pv] as number) + 1;
      push(pv);
    }
  }
  let len = 0;
  for (let i = 0; i >= 0; i = next[i] as number) ids[len++] = ids[i] as number;
  return len;
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** Splits text around special-token strings: [text, id, text, id, ..., text]. Longest special wins. */
export function splitSpecials(text: string, pattern: RegExp | undefined, specials: ReadonlyMap<string, number>) {
  const parts: (string | number)[] = [];
  if (pattern === undefined) return [text];
  pattern.lastIndex = 0;
  let start = 0;
  for (let m = pattern.exec(text); m !== null; m = pattern.exec(text)) {
    parts.push(text.slice(start, m.index), specials.get(m[0]) as number);
    start = m.index + m[0].length;
  }
  parts.push(text.slice(start));
  return parts;
}

export function specialsPattern(specials: Iterable<string>): RegExp | undefined {
  const list = [...specials].sort((a, b) => b.length - a.length);
  return list.length === 0 ? undefined : new RegExp(list.map(escapeRegExp).join("|"), "g");
}

/** Byte-level BPE with GPT-2 pre-tokenization: trained vocabularies and GPT-2's own. */
export class ByteLevelBpe implements Tokenizer {
  readonly kind: "bpe" | "gpt2";
  readonly vocabSize: number;
  readonly specialTokens: readonly string[];
  readonly spec: BpeSpec;
  private readonly table: PairTable;
  private readonly byteToId = new Int32Array(256);
  private readonly tokens: Uint8Array[];
  private readonly specialIds: ReadonlyMap<string, number>;
  private readonly specialPattern: RegExp | undefined;
  /** the merged ids of the words seen before: word e's are ids[starts[e]] up to the next word's start */
  private readonly cache = { words: new WordTable(), starts: [] as number[], ids: [] as number[] };
  /** scratch: the ends of the words of the text being encoded */
  private readonly wordEnds: number[] = [];
  private readonly wholeWords: Map<string, number> | undefined;

  constructor(spec: BpeSpec) {
    this.spec = spec;
    this.kind = spec.kind;
    this.specialIds = spec.specials;
    this.specialTokens = [...spec.specials.keys()];
    this.vocabSize = Math.max(spec.pieces.length, ...[...spec.specials.values()].map((id) => id + 1));
    const encoder = new TextEncoder();
    this.tokens = new Array<Uint8Array>(this.vocabSize);
    this.byteToId.fill(-1);
    spec.pieces.forEach((piece, id) => {
      if (piece === undefined) return;
      this.tokens[id] = piece;
      if (piece.length === 1 && this.byteToId[piece[0] as number] === -1) this.byteToId[piece[0] as number] = id;
    });
    for (const [s, id] of spec.specials) this.tokens[id] = encoder.encode(s);
    for (let id = 0; id < this.vocabSize; id++) {
      if (this.tokens[id] === undefined) fail(`BPE vocabulary has no token with id ${id} (ids must be 0..${this.vocabSize - 1})`);
    }
    const missing = this.byteToId.indexOf(-1);
    if (missing >= 0) fail(`byte-level BPE vocabulary has no token for byte 0x${missing.toString(16)}, so some text could not be encoded`);
    this.table = new PairTable(spec.merges, spec.mergeRanks);
    this.specialPattern = specialsPattern(spec.specials.keys());
    if (spec.ignoreMerges) {
      this.wholeWords = new Map();
      spec.pieces.forEach((piece, id) => {
        if (piece !== undefined && piece.length > 1) this.wholeWords?.set(wtf8Decode(piece), id);
      });
    }
  }

  encode(text: string, options: EncodeOptions = {}): number[] {
    const out: number[] = [];
    const parts = options.specialsAsText ? [text] : splitSpecials(text, this.specialPattern, this.specialIds);
    for (const part of parts) {
      if (typeof part === "number") out.push(part);
      else this.encodeOrdinary(part, out);
    }
    return out;
  }

  private encodeOrdinary(text: string, out: number[]): void {
    this.encodeStart(text, true, out);
  }

  /**
   * Chunked encoding of ordinary text (no special tokens) that `text` only begins: encodes the words
   * whose cut cannot move when more text follows and returns how many code units they span (all of
   * `text` when `final`); see UNSETTLED_WORDS.
   */
  encodeStart(text: string, final: boolean, out: { push(id: number): void }): number {
    const ends = this.wordEnds;
    ends.length = 0;
    for (let i = 0; i < text.length; ) {
      i = wordEnd(text, i);
      ends.push(i);
    }
    const keep = final ? ends.length : Math.max(0, ends.length - UNSETTLED_WORDS);
    let start = 0;
    for (let w = 0; w < keep; w++) {
      const end = ends[w] as number;
      this.encodeWord(text, start, end, out);
      start = end;
    }
    return start;
  }

  /** The ids of the word text[start, end): from the cache of words seen before, else merged (and cached). */
  private encodeWord(text: string, start: number, end: number, out: { push(id: number): void }): void {
    if (end - start === 1) {
      const c = text.charCodeAt(start);
      if (c < 128) {
        out.push(this.byteToId[c] as number);
        return;
      }
    }
    if (end - start > MAX_CACHED_WORD) {
      for (const id of this.mergedIds(text.slice(start, end))) out.push(id);
      return;
    }
    const cache = this.cache;
    if (cache.words.size >= MAX_CACHE) {
      cache.words.clear();
      cache.starts.length = 0;
      cache.ids.length = 0;
    }
    const e = cache.words.find(text, start, end);
    if (e === cache.starts.length) {
      cache.starts.push(cache.ids.length);
      for (const id of this.mergedIds(cache.words.words[e] as string)) cache.ids.push(id);
    }
    const from = cache.starts[e] as number;
    const to = e + 1 < cache.starts.length ? (cache.starts[e + 1] as number) : cache.ids.length;
    for (let i = from; i < to; i++) out.push(cache.ids[i] as number);
  }

  /** The ids of a word by the merges (or, with ignoreMerges, the word's own token). */
  private mergedIds(word: string): number[] {
    const whole = this.wholeWords?.get(word);
    if (whole !== undefined) return [whole];
    let bytes: Uint8Array | undefined;
    let n = word.length;
    let ascii = true;
    for (let i = 0; i < n; i++) {
      if (word.charCodeAt(i) >= 128) {
        ascii = false;
        break;
      }
    }
    if (!ascii) {
      bytes = wtf8Encode(word);
      n = bytes.length;
    }
    const ids = new Int32Array(n);
    for (let i = 0; i < n; i++) ids[i] = this.byteToId[bytes ? (bytes[i] as number) : word.charCodeAt(i)] as number;
    const len = mergeWord(ids, n, this.table);
    return Array.from(ids.subarray(0, len));
  }

  /** Exposed for tests: the heap and the rescan merge loops must agree on every word. */
  mergeBytesForTest(bytes: Uint8Array, forceHeap: boolean): number[] {
    const ids = Int32Array.from(bytes, (b) => this.byteToId[b] as number);
    return Array.from(ids.subarray(0, mergeWord(ids, ids.length, this.table, forceHeap)));
  }

  decode(ids: readonly number[], options: DecodeOptions = {}): string {
    let total = 0;
    for (const id of ids) total += this.tokenBytes(id).length;
    const bytes = new Uint8Array(total);
    let at = 0;
    for (const id of ids) {
      const piece = this.tokens[id] as Uint8Array;
      bytes.set(piece, at);
      at += piece.length;
    }
    return options.textOnly ? utf8Text(bytes) : wtf8Decode(bytes);
  }

  tokenBytes(id: number): Uint8Array {
    const piece = this.tokens[id];
    if (piece === undefined) fail(`token id ${id} is outside this tokenizer's vocabulary of ${this.vocabSize}`);
    return piece;
  }

  tokenString(id: number): string {
    return pieceString(this.tokenBytes(id));
  }

  specialTokenId(token: string): number | undefined {
    return this.specialIds.get(token);
  }

  toHuggingFaceJson(): object {
    const vocab: Record<string, number> = {};
    const order = this.spec.merges.map((_, i) => i);
    const ranks = this.spec.mergeRanks;
    if (ranks) order.sort((a, b) => (ranks[a] as number) - (ranks[b] as number) || a - b);
    this.spec.pieces.forEach((piece, id) => {
      if (piece !== undefined) vocab[bytesToUnicode(piece)] = id;
    });
    for (const [s, id] of this.specialIds) vocab[s] = id;
    const name = (id: number) => bytesToUnicode(this.tokens[id] as Uint8Array);
    const merges = order.map((i) => {
      const [l, r] = this.spec.merges[i] as BpeMerge;
      return `${name(l)} ${name(r)}`;
    });
    const byteLevel = {
      type: "ByteLevel",
      add_prefix_space: false,
      trim_offsets: true,
      use_regex: true,
    };
    return tokenizerJson(this.specialIds, {
      preTokenizer: byteLevel,
      postProcessor: { ...byteLevel, trim_offsets: false },
      decoder: byteLevel,
      model: bpeModelJson(vocab, merges, this.spec.ignoreMerges ?? false),
    });
  }
}

/** A whole Hugging Face tokenizer.json around its parts (no normalizer, no truncation or padding). */
export function tokenizerJson(
  specialIds: ReadonlyMap<string, number>,
  parts: { preTokenizer: object | null; postProcessor?: object | null; decoder: object | null; model: object },
): object {
  return {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: addedTokensJson(specialIds),
    normalizer: null,
    pre_tokenizer: parts.preTokenizer,
    post_processor: parts.postProcessor ?? null,
    decoder: parts.decoder,
    model: parts.model,
  };
}

/** The "model" object of a Hugging Face tokenizer.json for a BPE vocabulary and its merges. */
export function bpeModelJson(vocab: Record<string, number>, merges: string[], ignoreMerges: boolean): object {
  return {
    type: "BPE",
    dropout: null,
    unk_token: null,
    continuing_subword_prefix: null,
    end_of_word_suffix: null,
    fuse_unk: false,
    byte_fallback: false,
    ignore_merges: ignoreMerges,
    vocab,
    merges,
  };
}

const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

/** A token's text when its bytes are whole UTF-8 characters, else its bytes as <0xNN>. */
export function pieceString(bytes: Uint8Array): string {
  try {
    return strictUtf8.decode(bytes);
  } catch {
    return Array.from(bytes, byteTokenName).join("");
  }
}

function addedTokensJson(specials: ReadonlyMap<string, number>): object[] {
  return [...specials]
    .sort((a, b) => a[1] - b[1])
    .map(([content, id]) => ({
      id,
      content,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true,
    }));
}
