/**
 * The token cache: a corpus tokenized once into a flat file of token ids (nanoGPT's train.bin) and
 * read back at offsets, so that a corpus of any size trains in bounded memory and later runs on the
 * same text start at once. The text is read and tokenized chunk by chunk (text-chunks.ts,
 * tokenizer/chunked.ts), with exactly the ids tokenizing the whole string gives.
 *
 * Where: $MINIGPT_CACHE_DIR, else $XDG_CACHE_HOME/minigpt, else ~/.cache/minigpt; never beside the
 * data. Its tokens/ folder holds, named by a hash of the source files' paths and the tokenizer:
 *   KEY.tokens      the ids (layout below), reused while every source file keeps its size and mtime
 *   KEY.vocab.json  a tokenizer built from the text (char, bpe), so a reuse skips that pass too
 * Any of them may be deleted at any time; the next run writes them again.
 *
 * KEY.tokens, little-endian:
 *   0   8 bytes  magic "MGPTTOKS"
 *   8   u32      version (TOKEN_CACHE_VERSION)
 *   12  u32      H, the header's length in bytes
 *   16  H bytes  header: JSON (TokenCacheHeader) padded with spaces
 *   16 + H, rounded up to 8: the ids, uint16 when the vocabulary fits (< 65,536 tokens), else uint32
 * The file is written under a temporary name and renamed when complete, so a cache that exists is whole.
 */
import { createHash } from "node:crypto";
import {
  closeSync,
  fstatSync,
  fsync,
  fsyncSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  renameSync,
  unlinkSync,
  writeSync,
} from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { fail, failFs, MinigptError, withFs } from "../errors.js";
import { writeFileAtomic } from "../io/atomic.js";
import { makeFolder } from "../io/lock.js";
import { bpeVocabulary, ChunkedEncoder, type ChunkedVocabulary, charVocabulary, type IdArray } from "../tokenizer/chunked.js";
import { gpt2Tokenizer } from "../tokenizer/gpt2.js";
import { tokenizerFromHuggingFaceJson } from "../tokenizer/huggingface.js";
import type { EncodeOptions, Tokenizer } from "../tokenizer/types.js";
import type { TokenStream } from "./batches.js";
import type { TextFiles } from "./text.js";
import { type FileStamp, readTextBytes, sourceBytes, stampFiles } from "./text-chunks.js";
import { syncPoint, type TokenizeAnswer, type TokenizeJob, TokenizePool, tokenizeThreads } from "./tokenize-pool.js";
import { decodeUtf8 } from "./utf8.js";

const MAGIC = "MGPTTOKS";
const TOKEN_CACHE_VERSION = 1;
const PREAMBLE = 16;

export interface TokenCacheHeader {
  /** sha256 (16 hex digits) of the tokenizer's tokenizer.json */
  vocabHash: string;
  vocabSize: number;
  dtype: "uint16" | "uint32";
  /** null while the file is being written */
  tokens: number | null;
  /** length of the text in UTF-16 code units (JavaScript's string length), files joined */
  characters: number | null;
  specialsAsText: boolean;
  /** the files read, in order; a change in any size or mtime makes the cache stale */
  sources: FileStamp[];
  /** the special tokens that occur in the ids (Dataset.specialTargets) */
  specialTargets: string[];
}

/** One pass over the text: building the tokenizer ("vocabulary") or writing the ids ("tokens"). */
export interface TokenizeProgress {
  pass: "vocabulary" | "tokens";
  bytesRead: number;
  totalBytes: number;
  /** ids written so far (0 in the vocabulary pass) */
  tokens: number;
  seconds: number;
  done: boolean;
}

export interface TokenCacheOptions {
  source: TextFiles;
  /** encode with this tokenizer; without it one of `kind` is built from the text first */
  tokenizer?: Tokenizer;
  kind: "char" | "bpe" | "gpt2";
  /** for kind "bpe" */
  vocabSize: number;
  specialsAsText: boolean;
  /** a piece `tokenizer` cannot encode (a vocabulary without byte fallback); without it, an error */
  onUnknown?: EncodeOptions["onUnknown"];
  /** the cache folder (default: tokenCacheDir()) */
  dir?: string;
  /** bytes read per step (tests make it small to cut the text everywhere) */
  chunkBytes?: number;
  /** worker threads that tokenize (default tokenizeThreads(): one per core); 0 tokenizes on this thread */
  threads?: number;
  /** characters without a place to cut after which this thread takes over (default MAX_PIECE; tests make it small) */
  maxPiece?: number;
  onProgress?(p: TokenizeProgress): void;
  onMessage?(text: string): void;
}

export interface TokenCache {
  path: string;
  tokenizer: Tokenizer;
  header: TokenCacheHeader;
  tokens: TokenStream;
  /** false when this call wrote the file */
  reused: boolean;
  /** source bytes (all files) */
  bytes: number;
  close(): void;
}

/** The cache folder: $MINIGPT_CACHE_DIR, else $XDG_CACHE_HOME/minigpt, else ~/.cache/minigpt. */
export function tokenCacheDir(): string {
  const env = process.env;
  return env.MINIGPT_CACHE_DIR || join(env.XDG_CACHE_HOME || join(homedir(), ".cache"), "minigpt");
}

function hash(value: unknown): string {
  return createHash("sha256").update(JSON.stringify(value)).digest("hex").slice(0, 16);
}

function vocabHash(tokenizer: Tokenizer): string {
  return hash(tokenizer.toHuggingFaceJson());
}

function sameSources(a: readonly FileStamp[], b: readonly FileStamp[]): string | null {
  if (a.length !== b.length) return `the source now has ${b.length} files, not ${a.length}`;
  for (let i = 0; i < a.length; i++) {
    const x = a[i] as FileStamp;
    const y = b[i] as FileStamp;
    if (x.path !== y.path) return `${y.path} is new`;
    if (x.size !== y.size || x.mtimeMs !== y.mtimeMs) return `${y.path} changed`;
  }
  return null;
}

/** The token cache of a text and tokenizer: reused when it is current, else written now. */
export function openTokenCache(o: TokenCacheOptions): TokenCache {
  return withPools(o.threads ?? tokenizeThreads(), (pools) => openWith(o, pools));
}

/** The tokenizing threads of a cache's passes (undefined: tokenize on this thread). */
type Pools = (() => TokenizePool) | undefined;

/** `body` with `threads` tokenizing threads (0: none), started when a pass first needs them and closed after */
function withPools<T>(threads: number, body: (pools: Pools) => T): T {
  let pool: TokenizePool | undefined;
  const started = (): TokenizePool => {
    pool ??= new TokenizePool(threads);
    return pool;
  };
  try {
    return body(threads > 0 ? started : undefined);
  } finally {
    pool?.close();
  }
}

function openWith(o: TokenCacheOptions, pools: Pools): TokenCache {
  const folder = tokensFolder(o.dir);
  removeDeadTemporaries(folder, o.onMessage);
  const stamps = stampFiles(o.source.files);
  const paths = stamps.map((s) => s.path);
  const bytes = stamps.reduce((sum, s) => sum + s.size, 0);
  const tokenizer = o.tokenizer ?? (o.kind === "gpt2" ? gpt2Tokenizer() : builtVocabulary(o, o.kind, pools, folder, stamps, bytes));
  const vocab = vocabHash(tokenizer);
  const path = join(folder, `${hash({ paths, vocab, specialsAsText: o.specialsAsText })}.tokens`);
  const existing = readTokenFile(path);
  if (existing) {
    const stale = sameSources(existing.header.sources, stamps);
    if (stale === null && existing.header.vocabHash === vocab) {
      o.onMessage?.(`token cache: reusing ${path} (${existing.header.tokens?.toLocaleString("en-US")} tokens)`);
      return { path, tokenizer, header: existing.header, tokens: existing.tokens, reused: true, bytes, close: existing.close };
    }
    existing.close();
    o.onMessage?.(`token cache: ${stale ?? "the tokenizer changed"} since ${path} was written; tokenizing again`);
  }
  writeTokenFile(path, tokenizer, o, pools, stamps, bytes);
  const written = readTokenFile(path);
  if (!written) return fail(`the token cache ${path} just written cannot be read back; is the disk full?`);
  o.onMessage?.(`token cache: wrote ${path} (${written.header.tokens?.toLocaleString("en-US")} tokens)`);
  return { path, tokenizer, header: written.header, tokens: written.tokens, reused: false, bytes, close: written.close };
}

/** The cache's tokens/ folder under `dir` (default tokenCacheDir()), created when missing. */
function tokensFolder(dir = tokenCacheDir()): string {
  const folder = join(dir, "tokens");
  withFs(`cannot create the token cache folder ${folder} (set MINIGPT_CACHE_DIR to use another)`, () => makeFolder(folder));
  return folder;
}

/**
 * The pieces (characters, words) a big text needs beyond a character or word `tokenizer`
 * (fitVocabulary's `added`, which `find` works out by reading the whole text), remembered in the
 * cache folder while the text's files are unchanged: a fine-tune (--init) on a text seen before
 * then reads neither the text nor, through the token cache, tokenizes it again.
 */
export function rememberedPieces(
  o: { source: TextFiles; tokenizer: Tokenizer; specialsAsText: boolean; dir?: string },
  find: () => string[],
): string[] {
  const folder = tokensFolder(o.dir);
  const stamps = stampFiles(o.source.files);
  const key = { paths: stamps.map((s) => s.path), base: vocabHash(o.tokenizer), specialsAsText: o.specialsAsText };
  const path = join(folder, `${hash(key)}.pieces.json`);
  let saved: { version?: unknown; sources?: FileStamp[]; added?: unknown } | undefined;
  try {
    saved = JSON.parse(readFileSync(path, "utf8"));
  } catch {
    saved = undefined; // missing or unreadable: work it out
  }
  const added = saved?.added;
  if (
    saved?.version === TOKEN_CACHE_VERSION &&
    Array.isArray(saved.sources) &&
    sameSources(saved.sources, stamps) === null &&
    Array.isArray(added) &&
    added.every((p) => typeof p === "string")
  )
    return added;
  const found = find();
  writeFileAtomic(path, JSON.stringify({ version: TOKEN_CACHE_VERSION, sources: stamps, added: found }));
  return found;
}

/**
 * A cache file a killed run left half-written (KEY.tokens.tmp-PID, or writeFileAtomic's
 * .NAME.tmp-PID-HEX of a vocabulary or the sources' list, of a process that is gone; the tokens can be
 * gigabytes): remove it.
 */
function removeDeadTemporaries(folder: string, onMessage?: (text: string) => void): void {
  for (const name of readdirSync(folder)) {
    const m = /\.tmp-(\d+)(?:-[0-9a-f]+)?$/.exec(name);
    if (!m || Number(m[1]) === process.pid || processAlive(Number(m[1]))) continue;
    try {
      unlinkSync(join(folder, name));
      onMessage?.(`token cache: removed ${join(folder, name)}, left by a run that was stopped while writing it`);
    } catch {
      // another run removed it first
    }
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Throttled progress events of one pass (at most four a second, and one when it is done). */
function progressMeter(pass: TokenizeProgress["pass"], totalBytes: number, onProgress?: (p: TokenizeProgress) => void) {
  const start = performance.now();
  let last = start;
  return (bytesRead: number, tokens: number, done: boolean): void => {
    if (!onProgress) return;
    const now = performance.now();
    if (!done && now - last < 250) return;
    last = now;
    onProgress({ pass, bytesRead, totalBytes, tokens, seconds: (now - start) / 1000, done });
  };
}

/** The char or bpe tokenizer built from the text: from KEY.vocab.json when the text is unchanged. */
function builtVocabulary(
  o: TokenCacheOptions,
  kind: "char" | "bpe",
  pools: Pools,
  folder: string,
  stamps: FileStamp[],
  bytes: number,
): Tokenizer {
  // byteFallback: a char vocabulary saved before minigpt had byte fallback is not reused
  const recipe = { kind, vocabSize: kind === "bpe" ? o.vocabSize : undefined, byteFallback: kind === "char" || undefined };
  const path = join(folder, `${hash({ paths: stamps.map((s) => s.path), ...recipe })}.vocab.json`);
  let saved: { version?: unknown; sources?: FileStamp[]; tokenizer?: unknown } | undefined;
  try {
    saved = JSON.parse(readFileSync(path, "utf8"));
  } catch {
    saved = undefined; // missing or unreadable: build it
  }
  if (saved?.version === TOKEN_CACHE_VERSION && Array.isArray(saved.sources)) {
    const stale = sameSources(saved.sources, stamps);
    let damage: string | undefined;
    if (stale === null) {
      try {
        return tokenizerFromHuggingFaceJson(saved.tokenizer, path);
      } catch (err) {
        if (!(err instanceof MinigptError)) throw err;
        damage = err.message; // a damaged cache file is built again, as a missing one is
      }
    }
    o.onMessage?.(`token cache: ${damage ?? `${stale} since ${path} was written`}; building the ${kind} vocabulary again`);
  }
  const tokenizer = vocabularyPass({ ...o, kind }, pools, bytes);
  writeFileAtomic(path, JSON.stringify({ version: TOKEN_CACHE_VERSION, sources: stamps, tokenizer: tokenizer.toHuggingFaceJson() }));
  return tokenizer;
}

/** What a vocabulary pass reads and builds: a char or bpe tokenizer from the text's chunks */
interface VocabularyPassOptions extends Pick<TokenCacheOptions, "source" | "vocabSize" | "chunkBytes" | "maxPiece" | "onProgress"> {
  kind: "char" | "bpe";
  /** special tokens besides the built-in ones (their words are counted on this thread: the pool cuts out only the built-in ones) */
  extraSpecials?: readonly string[];
}

/**
 * A char or BPE tokenizer built from a text of any size, as CharTokenizer.fromText or trainBpe would
 * build it from the whole text: read in chunks (never one string), on `threads` worker threads
 * (default one per core), with progress. The token cache's vocabulary pass, without the cache.
 */
export function tokenizerFromTextFiles(o: VocabularyPassOptions & { threads?: number }): Tokenizer {
  const threads = (o.extraSpecials?.length ?? 0) > 0 ? 0 : (o.threads ?? tokenizeThreads());
  return withPools(threads, (pools) => vocabularyPass(o, pools, sourceBytes(o.source.files)));
}

function vocabularyPass(o: VocabularyPassOptions, pools: Pools, bytes: number): Tokenizer {
  const extraSpecials = o.extraSpecials ?? [];
  const progress = progressMeter("vocabulary", bytes, o.onProgress);
  let tokenizer: Tokenizer;
  if (o.kind === "char" && pools && extraSpecials.length === 0) {
    const chars = charVocabulary();
    inPieces(
      o,
      pools(),
      { mode: "chars" },
      chars,
      (answer) => chars.add(answer.seen as string, false),
      (read) => progress(read, 0, false),
    );
    tokenizer = chars.finish();
  } else if (o.kind === "bpe" && pools && extraSpecials.length === 0) {
    // the word counts of the pieces, merged in order: the order of first sight of the whole text
    const counts = new Map<string, number>();
    const vocabulary = bpeVocabulary({ vocabSize: o.vocabSize }, counts);
    const merge = (answer: TokenizeAnswer): void => {
      const words = answer.words as string[];
      const n = answer.counts as number[];
      for (let i = 0; i < words.length; i++) {
        const w = words[i] as string;
        counts.set(w, (counts.get(w) ?? 0) + (n[i] as number));
      }
    };
    inPieces(o, pools(), { mode: "count" }, vocabulary, merge, (read) => progress(read, 0, false));
    tokenizer = vocabulary.finish();
  } else {
    const chars = o.kind === "char" ? charVocabulary(extraSpecials) : undefined;
    const vocabulary: ChunkedVocabulary = chars ?? bpeVocabulary({ vocabSize: o.vocabSize, extraSpecials });
    for (const chunk of readTextBytes(o.source, o.chunkBytes)) {
      if (chars) chars.addUtf8(chunk.bytes);
      else vocabulary.add(decodeUtf8(chunk.bytes), false);
      progress(chunk.bytesRead, 0, false);
    }
    vocabulary.add("", true);
    tokenizer = vocabulary.finish();
  }
  progress(bytes, 0, true);
  return tokenizer;
}

/** Text that never reaches a place where it can be cut (syncPoint) is tokenized on this thread past this many bytes. */
const MAX_PIECE = 64 << 20;

/**
 * One pass over the text on the pool's threads: the text's bytes are cut at sync points into
 * pieces, each tokenized by a worker (an "encode" job's worker writes the ids itself, the first
 * piece's at `writeAt`), the answers taken in order. A text that has no sync point for
 * MAX_PIECE bytes continues on this thread (`sequential`), from the last cut, after the answers
 * before it. `onChunk` sees every chunk as it is read.
 */
function inPieces(
  o: Pick<TokenCacheOptions, "source" | "chunkBytes" | "maxPiece">,
  pool: TokenizePool,
  job: TokenizeJob,
  sequential: { add(text: string, final: boolean): void },
  onAnswer: (answer: TokenizeAnswer) => void,
  onChunk: (bytesRead: number) => void,
  writeAt?: number,
): void {
  pool.begin(job, writeAt);
  try {
    // the bytes since the last cut, in the chunks they came in
    let carry: Uint8Array[] = [];
    let carried = 0;
    let serial = false;
    for (const chunk of readTextBytes(o.source, o.chunkBytes)) {
      onChunk(chunk.bytesRead);
      if (serial) {
        sequential.add(decodeUtf8(chunk.bytes), false);
        continue;
      }
      const cut = syncPoint(chunk.bytes);
      if (cut > 0) {
        pool.submit([...carry, chunk.bytes.subarray(0, cut)]);
        carry = [chunk.bytes.slice(cut)];
        carried = chunk.bytes.length - cut;
      } else {
        carry.push(chunk.bytes.slice());
        carried += chunk.bytes.length;
        if (carried > (o.maxPiece ?? MAX_PIECE)) {
          while (pool.size > 0) onAnswer(pool.take());
          serial = true;
          sequential.add(decodeUtf8(joined(carry)), false);
          carry = [];
          carried = 0;
        }
      }
      // two pieces a thread in flight: the workers never wait for us, memory stays bounded
      while (pool.size > 2 * pool.threads) onAnswer(pool.take());
    }
    if (carried > 0) pool.submit(carry);
    while (pool.size > 0) onAnswer(pool.take());
    if (serial) sequential.add("", true);
  } catch (err) {
    pool.drain();
    throw err;
  }
}

/** `parts` one after another, in a buffer of their own */
function joined(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function headerBytes(header: TokenCacheHeader, length?: number): Uint8Array {
  const json = JSON.stringify(header);
  const padded = length === undefined ? json : json.padEnd(length, " ");
  return new TextEncoder().encode(padded);
}

function dataOffset(headerLength: number): number {
  return Math.ceil((PREAMBLE + headerLength) / 8) * 8;
}

/**
 * Ids written between two background flushes of the token file: small enough that the disk starts
 * early (the kernel itself would wait for gigabytes of dirty pages), large enough to be few.
 */
const FLUSH_EVERY = 64 << 20;

function writeAll(fd: number, bytes: Uint8Array, position?: number): void {
  let done = 0;
  while (done < bytes.length) done += writeSync(fd, bytes, done, bytes.length - done, position === undefined ? null : position + done);
}

/** Tokenizes the source into `path` (through a temporary file beside it). */
function writeTokenFile(path: string, tokenizer: Tokenizer, o: TokenCacheOptions, pools: Pools, sources: FileStamp[], bytes: number): void {
  const wide = tokenizer.vocabSize > 0x10000;
  const width = wide ? 4 : 2;
  const header: TokenCacheHeader = {
    vocabHash: vocabHash(tokenizer),
    vocabSize: tokenizer.vocabSize,
    dtype: wide ? "uint32" : "uint16",
    tokens: null,
    characters: null,
    specialsAsText: o.specialsAsText,
    sources,
    specialTargets: [],
  };
  // room for the final header: every special listed and the largest token count
  const most = Number.MAX_SAFE_INTEGER;
  const room = headerBytes({ ...header, tokens: most, characters: most, specialTargets: [...tokenizer.specialTokens] }).length;
  const seen = new Uint8Array(tokenizer.vocabSize);
  const tmp = `${path}.tmp-${process.pid}`;
  const progress = progressMeter("tokens", bytes, o.onProgress);
  let fd: number | undefined;
  try {
    fd = openSync(tmp, "w");
    const preamble = new Uint8Array(PREAMBLE);
    preamble.set(new TextEncoder().encode(MAGIC));
    const view = new DataView(preamble.buffer);
    view.setUint32(8, TOKEN_CACHE_VERSION, true);
    view.setUint32(12, room, true);
    writeAll(fd, preamble, 0);
    writeAll(fd, headerBytes(header, room), PREAMBLE);
    let position = dataOffset(room);
    let count = 0;
    let read = 0;
    let characters = 0;
    let flushedTo = 0;
    /** `tokens` ids written at `position` (by this thread: `ids`), and the special tokens among them */
    const put = (tokens: number, specials: Iterable<number>, ids?: IdArray): void => {
      for (const id of specials) seen[id] = 1;
      if (ids) writeAll(fd as number, new Uint8Array(ids.buffer, ids.byteOffset, ids.byteLength), position);
      position += tokens * width;
      count += tokens;
      if (position - flushedTo >= FLUSH_EVERY) {
        // a flush in the background (the thread pool's fsync): the disk writes while we tokenize,
        // instead of all of it in the fsync at the end
        fsync(fd as number, () => {});
        flushedTo = position;
      }
    };
    const idType = wide ? Uint32Array : Uint16Array;
    const encoder = new ChunkedEncoder(tokenizer, { specialsAsText: o.specialsAsText, onUnknown: o.onUnknown }, idType);
    const sequential = {
      add: (text: string, final: boolean) => {
        characters += text.length;
        const ids = encoder.push(text, final);
        put(ids.length, encoder.specialIds, ids);
      },
    };
    const specials = o.specialsAsText ? [] : tokenizer.specialTokens;
    // onUnknown is a function, which cannot go to another thread: such a text is tokenized here
    if (pools && !o.onUnknown && !specials.some((s) => s.includes("\n"))) {
      const job: TokenizeJob = { mode: "encode", tokenizer: tokenizer.toHuggingFaceJson(), specialsAsText: o.specialsAsText, wide, fd };
      inPieces(
        o,
        pools(),
        job,
        sequential,
        (answer) => {
          characters += answer.characters as number;
          put(answer.tokens as number, answer.specials as number[]);
        },
        (r) => {
          read = r;
          progress(read, count, false);
        },
        position,
      );
    } else {
      for (const chunk of readTextBytes(o.source, o.chunkBytes)) {
        sequential.add(decodeUtf8(chunk.bytes), false);
        read = chunk.bytesRead;
        progress(read, count, false);
      }
      sequential.add("", true);
    }
    const specialTargets = tokenizer.specialTokens.filter((s) => seen[tokenizer.specialTokenId(s) as number]);
    writeAll(fd, headerBytes({ ...header, tokens: count, characters, specialTargets }, room), PREAMBLE);
    fsyncSync(fd);
    closeSync(fd);
    fd = undefined;
    renameSync(tmp, path);
    progress(read, count, true);
  } catch (err) {
    if (fd !== undefined) closeSync(fd);
    try {
      unlinkSync(tmp);
    } catch {
      // never created
    }
    failFs(`cannot write the token cache ${tmp} (set MINIGPT_CACHE_DIR to use another folder)`, err);
  }
}

/** A token cache file opened for reading, or null when it is missing, of another version or incomplete. */
function readTokenFile(path: string): { header: TokenCacheHeader; tokens: TokenStream; close(): void } | null {
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch {
    return null;
  }
  try {
    const preamble = new Uint8Array(PREAMBLE);
    if (readSync(fd, preamble, 0, PREAMBLE, 0) !== PREAMBLE) throw new Error("short");
    const view = new DataView(preamble.buffer);
    if (new TextDecoder().decode(preamble.subarray(0, 8)) !== MAGIC || view.getUint32(8, true) !== TOKEN_CACHE_VERSION)
      throw new Error("not ours");
    const length = view.getUint32(12, true);
    const json = new Uint8Array(length);
    if (readSync(fd, json, 0, length, PREAMBLE) !== length) throw new Error("short");
    const header = JSON.parse(new TextDecoder().decode(json)) as TokenCacheHeader;
    const width = header.dtype === "uint32" ? 4 : 2;
    const tokens = header.tokens;
    if (
      typeof tokens !== "number" ||
      typeof header.characters !== "number" ||
      !Array.isArray(header.sources) ||
      !Array.isArray(header.specialTargets)
    )
      throw new Error("incomplete");
    if (fstatSync(fd).size !== dataOffset(length) + tokens * width) throw new Error("truncated");
    return { header, tokens: new TokenFile(fd, dataOffset(length), width, 0, tokens), close: () => closeSync(fd) };
  } catch {
    closeSync(fd);
    return null;
  }
}

/** Tokens [base, base + length) of a token cache file, read at offsets into a small buffer. */
class TokenFile implements TokenStream {
  private scratch = new Uint8Array(0);

  constructor(
    private readonly fd: number,
    private readonly offset: number,
    private readonly width: 2 | 4,
    private readonly base: number,
    readonly length: number,
  ) {}

  read(start: number, end: number, into: Int32Array, at: number): void {
    const n = end - start;
    if (start < 0 || end > this.length || n < 0) fail(`token range [${start}, ${end}) is outside the ${this.length} tokens`);
    const bytes = n * this.width;
    if (this.scratch.length < bytes) this.scratch = new Uint8Array(bytes);
    let done = 0;
    while (done < bytes) {
      const got = readSync(this.fd, this.scratch, done, bytes - done, this.offset + (this.base + start) * this.width + done);
      if (got === 0) fail("the token cache file ended early: it was changed while in use; run again to rebuild it");
      done += got;
    }
    const ids = this.width === 2 ? new Uint16Array(this.scratch.buffer, 0, n) : new Uint32Array(this.scratch.buffer, 0, n);
    for (let i = 0; i < n; i++) into[at + i] = ids[i] as number;
  }

  range(start: number, end: number): TokenStream {
    return new TokenFile(this.fd, this.offset, this.width, this.base + start, end - start);
  }
}
