/**
 * Splits, batches and evaluation windows over a token stream.
 *
 * Shapes: B = batch size, T = block size (context length). A batch is x (B,T) and y (B,T) as flat
 * row-major Int32Arrays, with y[b,t] = the token after x[b,t].
 */
import { fail } from "../errors.js";
import type { Rng } from "../random.js";
import type { Tokenizer } from "../tokenizer/types.js";
import { said, setting } from "../wording.js";

export interface Batch {
  /** (B,T) inputs, row-major. */
  x: Int32Array;
  /** (B,T) next-token targets, row-major. */
  y: Int32Array;
}

/**
 * A token stream read by position: an array in memory, or a token cache on disk read at offsets
 * (src/data/token-cache.ts), so that a corpus bigger than memory still gives batches.
 */
export interface TokenStream {
  readonly length: number;
  /** copies tokens [start, end) into `into` from index `at` */
  read(start: number, end: number, into: Int32Array, at: number): void;
  /** tokens [start, end) as a stream of their own (no copy) */
  range(start: number, end: number): TokenStream;
}

/** An Int32Array as a TokenStream. */
export function arrayStream(ids: Int32Array): TokenStream {
  return {
    length: ids.length,
    read: (start, end, into, at) => into.set(ids.subarray(start, end), at),
    range: (start, end) => arrayStream(ids.subarray(start, end)),
  };
}

/** Where validation starts: the last round(n * valFraction) of n tokens are validation. */
function validationStart(n: number, valFraction: number): number {
  if (!(valFraction >= 0 && valFraction < 1)) fail(`the validation fraction must be in [0, 1), got ${valFraction}`);
  return n - Math.round(n * valFraction);
}

/**
 * Deterministic split by position: the first part is training, the last round(n * valFraction) tokens are
 * validation (so text near the end is never trained on). Returns subarray views of ids, not copies.
 */
export function splitTokens(ids: Int32Array, valFraction = 0.1): { train: Int32Array; val: Int32Array } {
  const nTrain = validationStart(ids.length, valFraction);
  return { train: ids.subarray(0, nTrain), val: ids.subarray(nTrain) };
}

/** splitTokens for a TokenStream: the same cut, as ranges of the stream. */
export function splitStream(tokens: TokenStream, valFraction = 0.1): { train: TokenStream; val: TokenStream } {
  const nTrain = validationStart(tokens.length, valFraction);
  return { train: tokens.range(0, nTrain), val: tokens.range(nTrain, tokens.length) };
}

/** `value` of the setting `name` (blockSize, batchSize: worded by each front end, src/wording.ts) is a positive integer */
function checkPositiveInt(value: number, name: string): void {
  if (!Number.isInteger(value) || value < 1) fail(said`${setting(name)} must be a positive integer, got ${value}`);
}

/** Random windows of a token stream: x = tokens[i..i+T), y = tokens[i+1..i+T+1), i uniform. */
export class BatchSampler {
  private readonly tokens: TokenStream;
  private readonly blockSize: number;
  private readonly batchSize: number;
  private readonly rng: Rng;
  /** one window, T+1 tokens */
  private readonly row: Int32Array;

  /** label names the token stream in errors ("the training split", "the validation split", ...). */
  constructor(tokens: Int32Array | TokenStream, blockSize: number, batchSize: number, rng: Rng, label = "the text") {
    checkPositiveInt(blockSize, "blockSize");
    checkPositiveInt(batchSize, "batchSize");
    if (tokens.length < blockSize + 1) {
      fail(
        said`${label} has only ${tokens.length} tokens, but ${setting("blockSize")} ${blockSize} needs at least ${blockSize + 1}; lower ${setting("blockSize")} or give more text`,
      );
    }
    this.tokens = tokens instanceof Int32Array ? arrayStream(tokens) : tokens;
    this.blockSize = blockSize;
    this.batchSize = batchSize;
    this.rng = rng;
    this.row = new Int32Array(blockSize + 1);
  }

  next(): Batch {
    const T = this.blockSize;
    const B = this.batchSize;
    const x = new Int32Array(B * T);
    const y = new Int32Array(B * T);
    const starts = this.tokens.length - T; // valid starts: 0..n-T-1, so i+T+1 <= n
    for (let b = 0; b < B; b++) {
      const i = this.rng.int(starts);
      this.tokens.read(i, i + T + 1, this.row, 0);
      x.set(this.row.subarray(0, T), b * T);
      y.set(this.row.subarray(1), b * T);
    }
    return { x, y };
  }
}

/**
 * Batches of whole fixed-length sequences (the counting task): each sequence s of length L gives
 * x = s[0..L-1), y = s[1..L), so T = L - 1. Sequences are drawn uniformly with replacement.
 */
export class SequenceSampler {
  private readonly sequences: number[][];
  private readonly batchSize: number;
  private readonly rng: Rng;
  readonly blockSize: number;

  constructor(sequences: number[][], batchSize: number, rng: Rng) {
    checkPositiveInt(batchSize, "batchSize");
    const first = sequences[0];
    if (first === undefined) fail("the sequence sampler needs at least one sequence");
    if (first.length < 2) fail(`sequences need at least 2 tokens (one input, one target), got ${first.length}`);
    for (const [k, s] of sequences.entries()) {
      if (s.length !== first.length) fail(`sequence ${k} has ${s.length} tokens but sequence 0 has ${first.length}; all must be equal`);
    }
    this.sequences = sequences;
    this.batchSize = batchSize;
    this.rng = rng;
    this.blockSize = first.length - 1;
  }

  next(): Batch {
    const T = this.blockSize;
    const B = this.batchSize;
    const x = new Int32Array(B * T);
    const y = new Int32Array(B * T);
    for (let b = 0; b < B; b++) {
      const s = this.sequences[this.rng.int(this.sequences.length)] as number[];
      for (let t = 0; t < T; t++) {
        x[b * T + t] = s[t] as number;
        y[b * T + t] = s[t + 1] as number;
      }
    }
    return { x, y };
  }
}

/**
 * The exact evaluation windows over ids: non-overlapping windows x = ids[i*T .. i*T+T),
 * y = ids[i*T+1 .. i*T+T+1); the last window is shorter when ids does not divide evenly. Every token but
 * the first is a target exactly once, so the mean loss over all windows is the loss of the whole text.
 * Returns subarray views (no copies). Fewer than 2 tokens give no windows.
 */
export function evalWindows(ids: Int32Array, T: number): Batch[] {
  checkPositiveInt(T, "blockSize");
  const windows: Batch[] = [];
  const lastTarget = ids.length - 1; // number of (input, target) pairs
  for (let start = 0; start < lastTarget; start += T) {
    const len = Math.min(T, lastTarget - start);
    windows.push({ x: ids.subarray(start, start + len), y: ids.subarray(start + 1, start + len + 1) });
  }
  return windows;
}

/**
 * evalWindows over a TokenStream, reading only the windows whose indices `pick` returns (given how
 * many there are; null for all), so that a sample of a corpus bigger than memory can be scored.
 */
export function readEvalWindows(tokens: TokenStream, T: number, pick: (count: number) => number[] | null): Batch[] {
  checkPositiveInt(T, "blockSize");
  const lastTarget = tokens.length - 1;
  const count = Math.max(0, Math.ceil(lastTarget / T));
  const chosen = pick(count) ?? Array.from({ length: count }, (_, k) => k);
  return chosen.map((k) => {
    const start = k * T;
    const len = Math.min(T, lastTarget - start);
    const row = new Int32Array(len + 1);
    tokens.read(start, start + len + 1, row, 0);
    return { x: row.subarray(0, len), y: row.subarray(1) };
  });
}

/** The special tokens of `tokenizer` among the ids of `targets` (negative ids are masked positions). */
export function specialTargets(tokenizer: Tokenizer, targets: Iterable<ArrayLike<number>>): string[] {
  const byId = new Map<number, string>();
  for (const s of tokenizer.specialTokens) {
    const id = tokenizer.specialTokenId(s);
    if (id !== undefined) byId.set(id, s);
  }
  const found = new Set<string>();
  for (const ids of targets) {
    for (let i = 0; i < ids.length && found.size < byId.size; i++) {
      const s = byId.get(ids[i] as number);
      if (s !== undefined) found.add(s);
    }
  }
  return tokenizer.specialTokens.filter((s) => found.has(s));
}
