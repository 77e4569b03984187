import { fail } from "../errors.js";
import { said, setting } from "../wording.js";
import { type BpeMerge, ByteLevelBpe, specialsPattern, splitSpecials } from "./bpe.js";
import { wtf8Encode } from "./bytes.js";
import { MinHeap } from "./heap.js";
import { UNSETTLED_WORDS, wordEnd } from "./pretokenize.js";
import { BPE_SPECIAL_TOKENS } from "./types.js";
import { WordTable } from "./words.js";

export interface BpeTrainOptions {
  /** Target vocabulary size, counting the 256 byte tokens and the special tokens. */
  vocabSize: number;
  /** Special tokens besides the built-in ones; like them they are never merged or split. */
  extraSpecials?: readonly string[];
}

/** The built-in special tokens followed by the user's, without duplicates; bad ones are errors. */
export function bpeSpecials(extra: readonly string[] = []): string[] {
  const out = [...BPE_SPECIAL_TOKENS];
  for (const s of extra) {
    if (s.length === 0) fail("a special token cannot be the empty string");
    if (!out.includes(s)) out.push(s);
  }
  return out;
}

/**
 * Learns byte-level BPE merges from `text` until the vocabulary reaches `vocabSize` (or no pair
 * occurs any more, for tiny texts).
 *
 * The text is cut into GPT-2 words and each distinct word is stored once with its count. Merging
 * a pair only touches the words that contain it (an index from pair to words), and only their
 * pair counts are adjusted, so each merge costs time proportional to where the pair occurs rather
 * than to the whole corpus.
 */
export function trainBpe(text: string, options: BpeTrainOptions): ByteLevelBpe {
  const specials = checkBpeOptions(options);
  const table = new WordTable();
  const counts: number[] = [];
  const specialIds = new Map(specials.map((s, i) => [s, i]));
  for (const part of splitSpecials(text, specialsPattern(specials), specialIds))
    if (typeof part === "string") countTextWords(part, table, counts);
  return trainBpeFromCounts(wordCountMap(table, counts), options);
}

/** The special tokens of a trained vocabulary; fails when vocabSize cannot hold the bytes and them. */
export function checkBpeOptions(options: BpeTrainOptions): string[] {
  const specials = bpeSpecials(options.extraSpecials);
  const minimum = 256 + specials.length;
  if (!Number.isInteger(options.vocabSize) || options.vocabSize < minimum) {
    fail(
      said`${setting("vocabSize")} must be an integer of at least ${minimum} (256 bytes + ${specials.length} special tokens), got ${options.vocabSize}`,
    );
  }
  return specials;
}

/**
 * Counts the words of `text` (ordinary text, no special tokens) into `table` and `counts` (the count
 * of the table's word e), in order of first sight (which training keeps), making no string of a word
 * seen before. Unless `final`, the text continues in a next chunk and its last UNSETTLED_WORDS words
 * are left for it; returns the length of what was counted.
 */
export function countTextWords(text: string, table: WordTable, counts: number[], final = true): number {
  const leave = final ? 0 : UNSETTLED_WORDS;
  // the starts of the words not counted yet; the last one ends at i
  const pending: number[] = [];
  for (let i = 0; i < text.length; ) {
    pending.push(i);
    i = wordEnd(text, i);
    if (pending.length <= leave) continue;
    const start = pending.shift() as number;
    const e = table.find(text, start, pending.length > 0 ? (pending[0] as number) : i);
    if (e === counts.length) counts.push(1);
    else counts[e] = (counts[e] as number) + 1;
  }
  return pending.length > 0 ? (pending[0] as number) : text.length;
}

/** The word counts of a WordTable as trainBpeFromCounts takes them (in the table's order). */
export function wordCountMap(table: WordTable, counts: readonly number[], into = new Map<string, number>()): Map<string, number> {
  table.words.forEach((w, e) => {
    into.set(w, (into.get(w) ?? 0) + (counts[e] as number));
  });
  return into;
}

/**
 * trainBpe from the text's word counts (GPT-2 words of the text between special tokens), which is
 * all it looks at: a corpus read in chunks trains the same vocabulary as the whole string.
 */
export function trainBpeFromCounts(wordCounts: ReadonlyMap<string, number>, options: BpeTrainOptions): ByteLevelBpe {
  const specials = checkBpeOptions(options);
  const targetTokens = options.vocabSize - specials.length;

  const words: Int32Array[] = [];
  const counts: number[] = [];
  for (const [w, c] of wordCounts) {
    words.push(Int32Array.from(wtf8Encode(w)));
    counts.push(c);
  }

  // Pair keys stay small integers (fast Map keys) as long as vocabSize^2 < 2^30.
  const base = options.vocabSize;
  const pairCounts = new Map<number, number>();
  const where = new Map<number, number[]>();
  // Only pairs with the new token can gain counts; `touched` collects those for the heap.
  const addPairs = (w: number, word: Int32Array, sign: number, touched?: Set<number>, newId = -1): void => {
    const c = sign * (counts[w] as number);
    for (let i = 0; i + 1 < word.length; i++) {
      const key = (word[i] as number) * base + (word[i + 1] as number);
      pairCounts.set(key, (pairCounts.get(key) ?? 0) + c);
      if (sign > 0) {
        let list = where.get(key);
        if (list === undefined) {
          list = [];
          where.set(key, list);
        }
        if (list[list.length - 1] !== w) list.push(w);
        if (word[i] === newId || word[i + 1] === newId) touched?.add(key);
      }
    }
  };
  for (let w = 0; w < words.length; w++) addPairs(w, words[w] as Int32Array, 1);

  // the most frequent pair first (its count pushed negated), then the smallest key so training is
  // deterministic; counts change all the time, so an entry whose count no longer matches is skipped
  const heap = new MinHeap();
  for (const [key, c] of pairCounts) heap.push(-c, key);

  const pieces: Uint8Array[] = [];
  const idOf = new Map<string, number>();
  for (let b = 0; b < 256; b++) {
    pieces.push(Uint8Array.of(b));
    idOf.set(String.fromCharCode(b), b);
  }
  const pieceKey = (p: Uint8Array) => String.fromCharCode(...p);
  const merges: BpeMerge[] = [];
  const seen = new Int32Array(words.length).fill(-1);

  while (pieces.length < targetTokens && heap.size > 0) {
    const count = -heap.key;
    const key = heap.tie;
    heap.pop();
    const current = pairCounts.get(key) ?? 0;
    if (current !== count) {
      if (current > 0) heap.push(-current, key);
      continue;
    }
    if (count <= 0) break;
    const a = Math.floor(key / base);
    const b = key % base;
    const left = pieces[a] as Uint8Array;
    const right = pieces[b] as Uint8Array;
    const joined = new Uint8Array(left.length + right.length);
    joined.set(left);
    joined.set(right, left.length);
    // A pair can spell a token that already exists (made from a different split); reuse its id.
    let merged = idOf.get(pieceKey(joined));
    if (merged === undefined) {
      merged = pieces.length;
      pieces.push(joined);
      idOf.set(pieceKey(joined), merged);
    }
    merges.push([a, b, merged]);

    const touched = new Set<number>();
    const step = merges.length;
    for (const w of where.get(key) ?? []) {
      if (seen[w] === step) continue;
      seen[w] = step;
      const word = words[w] as Int32Array;
      const out = new Int32Array(word.length);
      let n = 0;
      for (let i = 0; i < word.length; i++) {
        if (word[i] === a && word[i + 1] === b && i + 1 < word.length) {
          out[n++] = merged;
          i++;
        } else {
          out[n++] = word[i] as number;
        }
      }
      if (n === word.length) continue;
      addPairs(w, word, -1);
      const next = out.slice(0, n);
      words[w] = next;
      addPairs(w, next, 1, touched, merged);
    }
    where.delete(key);
    pairCounts.delete(key);
    for (const k of touched) {
      const c = pairCounts.get(k) ?? 0;
      if (c > 0) heap.push(-c, k);
    }
  }

  return new ByteLevelBpe({
    kind: "bpe",
    pieces,
    merges,
    specials: new Map(specials.map((s, i) => [s, pieces.length + i])),
  });
}
