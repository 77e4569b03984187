/**
 * Tokenizing on every core: the main thread reads and checks the text's bytes and cuts them where
 * the pieces can be tokenized on their own (syncPoint); worker threads (tokenize-worker.ts)
 * tokenize the pieces and write their ids into the token file themselves, each at its place
 * (WriteOrder); the answers (counts) come back in order. Pieces go to the threads in shared buffers
 * that are reused, so the main thread only reads, checks, cuts and copies. The API stays synchronous,
 * as the rest of dataset loading is: the main thread waits on a shared counter (Atomics.wait) and
 * takes each answer with receiveMessageOnPort, which needs no event loop. One pool serves both
 * passes of a cache (vocabulary, then tokens), so its threads start once.
 */
import { availableParallelism } from "node:os";
import { MessageChannel, type MessagePort, receiveMessageOnPort, Worker } from "node:worker_threads";
import { fail } from "../errors.js";
import { nodeWorker } from "../threads/workers.js";
import { WriteOrder } from "./write-order.js";

/** What every worker of a pool does with its pieces (TokenizePool.begin). */
export type TokenizeJob =
  /**
   * the ids, as uint16 (vocabularies under 65,536 tokens) or uint32, as the token cache stores
   * them, written by the worker into the file `fd` in the order of the pieces (WriteOrder)
   */
  | { mode: "encode"; tokenizer: object; specialsAsText: boolean; wide: boolean; fd: number }
  /** the word counts of a BPE vocabulary pass (its built-in specials cut out) */
  | { mode: "count" }
  /** the distinct characters of a char vocabulary pass */
  | { mode: "chars" };

export interface TokenizeAnswer {
  /** "encode": the ids written, the piece's length in UTF-16 code units, and the ids of the special tokens among its ids */
  tokens?: number;
  characters?: number;
  specials?: number[];
  /** "count": the distinct words of the piece in order of first sight, and how often each occurs */
  words?: string[];
  counts?: number[];
  /** "chars": the piece's distinct characters */
  seen?: string;
}

/** A message to a worker: a new job, or a piece (bytes [0, length) of a shared buffer) to tokenize. */
export type TokenizeMessage = { job: TokenizeJob } | { piece: number; buffer: SharedArrayBuffer; length: number };

/**
 * The end of the last place in the UTF-8 `text` where it can be cut into two texts that tokenize
 * on their own to the ids of the whole (or -1): before a newline that follows a printable ASCII
 * character that is not a space. No character tokenizer piece, GPT-2 pre-token or special token
 * (when none contains a newline) spans it: the pre-token before it ends there (a newline ends every
 * letter, number and punctuation run and completes every contraction), and a pre-token starting at
 * a newline is the same whatever came before. Both are ASCII bytes, never part of a longer character.
 */
export function syncPoint(text: Uint8Array): number {
  for (let p = text.lastIndexOf(10); p > 0; p = text.lastIndexOf(10, p - 1)) {
    const before = text[p - 1] as number;
    if (before >= 0x21 && before <= 0x7e) return p;
  }
  return -1;
}

/** A worker's silence after which the pool gives up (a worker that died cannot say so while we wait). */
const STALL_MS = 600_000;

/** Threads to tokenize with: one per core, none (tokenize on this thread) on a single core. */
export function tokenizeThreads(): number {
  const n = availableParallelism();
  return n > 1 ? n : 0;
}

export class TokenizePool {
  private readonly workers: { worker: Worker; port: MessagePort }[] = [];
  private readonly signal = new Int32Array(new SharedArrayBuffer(64 * 4));
  private readonly order = new WriteOrder();
  /** the pieces in flight, oldest first: the worker that has each and the buffer it is in */
  private readonly inFlight: { worker: number; buffer: SharedArrayBuffer }[] = [];
  /** shared buffers for pieces, reused: no fresh memory (and its page faults) for every piece */
  private readonly free: SharedArrayBuffer[] = [];
  private nextWorker = 0;
  private pieces = 0;

  constructor(threads: number) {
    for (let index = 0; index < Math.min(threads, this.signal.length); index++) {
      const { port1, port2 } = new MessageChannel();
      const workerData = { port: port2, signal: this.signal, index, order: this.order.memory };
      const worker = nodeWorker(Worker, { from: import.meta.url, name: "tokenize-worker" }, { workerData, transferList: [port2] });
      worker.unref();
      this.workers.push({ worker, port: port1 });
    }
  }

  get threads(): number {
    return this.workers.length;
  }

  get size(): number {
    return this.inFlight.length;
  }

  /** Starts a pass: the pieces submitted from now on are done as `job` says; an "encode" job's ids go to the file from `writeAt`. */
  begin(job: TokenizeJob, writeAt = 0): void {
    if (this.inFlight.length > 0) fail("a tokenizing pass began before the last one ended");
    this.order.reset(writeAt);
    this.pieces = 0;
    for (const { port } of this.workers) port.postMessage({ job } satisfies TokenizeMessage);
  }

  /** Hands a piece (whole UTF-8 characters: `parts` one after another, copied) to the next worker, round robin so that answers can be taken in order. */
  submit(parts: readonly Uint8Array[]): void {
    const length = parts.reduce((n, p) => n + p.length, 0);
    let buffer = this.free.pop();
    if (!buffer || buffer.byteLength < length) buffer = new SharedArrayBuffer(Math.max(length, buffer?.byteLength ?? 0));
    const bytes = new Uint8Array(buffer);
    let at = 0;
    for (const p of parts) {
      bytes.set(p, at);
      at += p.length;
    }
    const k = this.nextWorker;
    this.nextWorker = (k + 1) % this.workers.length;
    (this.workers[k] as { port: MessagePort }).port.postMessage({ piece: this.pieces++, buffer, length } satisfies TokenizeMessage);
    this.inFlight.push({ worker: k, buffer });
  }

  /** The answer to the oldest piece in flight; waits for it. */
  take(): TokenizeAnswer {
    const piece = this.inFlight.shift();
    if (piece === undefined) return fail("no tokenizing piece in flight");
    const k = piece.worker;
    const port = (this.workers[k] as { port: MessagePort }).port;
    for (;;) {
      const seen = Atomics.load(this.signal, k);
      const got = receiveMessageOnPort(port);
      if (got) {
        this.free.push(piece.buffer);
        const m = got.message as TokenizeAnswer & { error?: string; user?: boolean; code?: string };
        if (m.error !== undefined) {
          if (m.user) fail(m.error);
          // a file-system error keeps its code, for failFs's line
          throw Object.assign(new Error(m.error), m.code === undefined ? {} : { code: m.code });
        }
        return m;
      }
      if (Atomics.wait(this.signal, k, seen, STALL_MS) === "timed-out")
        throw new Error(`a tokenizing thread gave no answer for ${STALL_MS / 1000} s`);
    }
  }

  /**
   * Waits for the pieces in flight of a pass that failed, dropping their answers: their workers may
   * be writing into the token file, whose descriptor must not be closed (and reused) under them.
   */
  drain(): void {
    while (this.inFlight.length > 0) {
      try {
        this.take();
      } catch {
        // the pass has failed already; this piece's error adds nothing
      }
    }
  }

  /** Stops the threads (once the pieces in flight are done: drain). */
  close(): void {
    this.drain();
    for (const { worker, port } of this.workers) {
      port.close();
      void worker.terminate();
    }
  }
}
